"""Design-space sweeps: pruning settings x accelerators x shapes -> one tidy DataFrame.

>>> from analysis import SweepSpace, sweep                                   # doctest: +SKIP
>>> space = SweepSpace(blocks=["16x16", "32x32"], sparsities=[0.0, 0.5, 0.8],
...                    configs=["asic-32x32-int8", "fpga-zcu102"], accuracy="none")
>>> table = sweep(space, out_dir="results/hw-only")                         # doctest: +SKIP
>>> table[["block", "target_sparsity", "config", "cycles", "energy_pj"]]    # doctest: +SKIP

Two stages. (1) Pruning, in this process (training uses every core already): one cached
:class:`analysis.accuracy.PointCache` entry per distinct pruning setting, shared by all accelerators.
(2) Simulation of every (pruning point, accelerator, seq_len, batch), in-process, in a local process
pool (``workers > 1``) or on a Dask cluster (``client=`` or ``dask_scheduler=``). Each finished point is
appended to ``<out_dir>/points.jsonl`` at once; a re-run skips the points already there, so an
interrupted sweep resumes without losing or duplicating points. A point that fails is recorded with
its ``error`` and the sweep goes on; the next run evaluates it again. The final table is written
atomically to ``<out_dir>/sweep.parquet``.

``out_dir`` is a bsp sweep directory (:mod:`bsp_common.outputs`): new, empty, or an earlier sweep's (which
is resumed). One sweep at a time may write it (a lock file; a second run is refused), a space larger than
``max_points`` is refused unless raised, and local worker processes die with the sweep's process.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from analysis.accuracy import PointCache
from analysis.space import SweepSpace, load_space
from analysis.store import ResultStore, write_table_atomic
from bsp_common.outputs import prepare_output_dir
from bsp_common.strict_json import content_hash

__all__ = ["MAX_POINTS", "OUTPUT_KIND", "RESULTS_FILENAME", "pruned_workload", "simulate_point", "sweep"]

log = logging.getLogger(__name__)

RESULTS_FILENAME = "sweep.parquet"
POINTS_FILENAME = "points.jsonl"
LOCK_FILENAME = ".sweep.lock"
OUTPUT_KIND = "sweep"
MAX_POINTS = 20_000  # default guard: ~a few minutes of hardware-only simulation; training points cost far more
_TOTAL_COLUMNS = ("cycles", "latency_s", "energy_pj", "utilization", "compute_cycles", "stall_cycles",
                  "first_load_cycles", "last_store_cycles", "ideal_cycles",
                  "dram_bytes", "tops_per_w", "macs_useful", "energy_dram_pj", "energy_mac_pj")  # fmt: skip


@functools.lru_cache(maxsize=8)  # consecutive points share a pruning point and shape: build its workload once
def pruned_workload(hf_config_dir: str, masks_path: str | None, batch: int, seq_len: int):
    """The workload of a (pruned) model: its HF config, the masks of a mask file or saved pruned-model
    directory (``None``: dense), ``batch`` x ``seq_len`` tokens. Memoised by path, so only for paths whose
    content never changes (the sweep's content-addressed cache)."""
    from hwsim import build_workload, read_hf_config
    from pruning.masks import load_masks

    masks = load_masks(masks_path) if masks_path else {}
    return build_workload(read_hf_config(hf_config_dir), masks, batch=batch, seq_len=seq_len)


def simulate_point(task: dict) -> dict:
    """Simulate one hardware point (picklable; runs in a worker process or on a Dask worker)."""
    from hwsim import simulate
    from hwsim.config import derive_config
    from hwsim.mapping import TilingError

    try:
        workload = pruned_workload(task["hf_config_dir"], task.get("masks_path"), task["batch"], task["seq_len"])
        config = derive_config(task["config"], json.loads(task.get("hw_overrides") or "{}"))
        totals = simulate(config, workload).totals
        return {**task, **{k: totals[k] for k in _TOTAL_COLUMNS}, "feasible": True, "error": None}
    except TilingError as err:  # buffers too small for the array's smallest tile: a result, as FPGA over-use is
        return {**task, "feasible": False, "infeasible_reason": str(err), "error": None}
    except Exception as err:  # a failing point is recorded, the sweep goes on
        return {**task, "error": f"{type(err).__name__}: {err}"}


def _dask_client(client, dask_scheduler: str | None):
    if client is not None or dask_scheduler is None:
        return client
    from dask.distributed import Client

    try:
        return Client(dask_scheduler, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise ValueError(f"--dask-scheduler: no Dask scheduler answered at {dask_scheduler!r} ({err})") from None


def _portable(record: dict, out_dir: Path, model_dir: Path, model: str) -> dict:
    """Paths in a stored row that do not depend on this machine: relative to ``out_dir``, or the model's name."""
    record = dict(record)
    for key in ("masks_path", "hf_config_dir"):
        value = record.get(key)
        if not value:
            continue
        path = Path(value)
        if path == model_dir:
            record[key] = model
        elif path.is_relative_to(out_dir):
            record[key] = str(path.relative_to(out_dir))
    return record


def _die_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: the kernel kills this worker when the sweep's process dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: workers end when they next find the pool gone
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


@contextmanager
def _sweep_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive lock on ``out_dir`` for this process; a second sweep on it is refused at once."""
    path = out_dir / LOCK_FILENAME
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ValueError(f"--out: another bsp sweep ({holder}) is writing to {out_dir}; wait for it to finish "
                             "or use another --out") from None  # fmt: skip
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock; the file stays (removing it would race a waiting run)


def _run_tasks(tasks: list[dict], record: Callable[[dict], None], workers: int, client, progress: bool) -> None:
    bar = tqdm(total=len(tasks), desc="simulate", unit="pt", disable=not progress, file=sys.stderr)
    try:
        if client is not None:
            from dask.distributed import as_completed as dask_completed

            futures = client.map(simulate_point, tasks, pure=False)
            for future in dask_completed(futures):
                record(future.result())
                bar.update()
        elif workers > 1:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_die_with_parent,
                                     initargs=(os.getpid(),)) as pool:  # fmt: skip
                for future in as_completed([pool.submit(simulate_point, t) for t in tasks]):
                    record(future.result())
                    bar.update()
        else:
            for task in tasks:
                record(simulate_point(task))
                bar.update()
    finally:
        bar.close()


def sweep(
    space: SweepSpace | str | Path | None = None,
    out_dir: str | Path = "results",
    workers: int = 1,
    client=None,
    dask_scheduler: str | None = None,
    progress: bool = True,
    max_points: int | None = MAX_POINTS,
    results_file: str | None = RESULTS_FILENAME,
) -> pd.DataFrame:
    """Run (or resume) a sweep; returns one row per point of ``space`` with parameters and metrics.

    ``max_points`` refuses, before any work, a space with more points (``None``: no limit). The table is
    also written to ``out_dir/results_file`` (``None``: not written; :func:`analysis.search.search` uses that).
    """
    space = space if isinstance(space, SweepSpace) else load_space(space)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: must be a positive integer, got {workers!r}")
    n_points = space.n_points
    if max_points is not None and n_points > max_points:
        raise ValueError(f"sweep: the space has {n_points:,} points, more than the limit of {max_points:,}; "
                         "confirm with --yes (max_points=None) or shrink the space")  # fmt: skip
    from pruning.models import resolve_model_path

    out_dir = prepare_output_dir(out_dir, OUTPUT_KIND, inputs=[resolve_model_path(space.model)])
    with _sweep_lock(out_dir):
        table = _sweep_locked(space, out_dir, workers, client, dask_scheduler, progress)
        if results_file:
            write_table_atomic(table, out_dir / results_file)
    return table


def _sweep_locked(space: SweepSpace, out_dir: Path, workers: int, client, dask_scheduler: str | None,
                  progress: bool) -> pd.DataFrame:  # fmt: skip

    store = ResultStore(out_dir / POINTS_FILENAME)
    done = store.done_ids()
    cache = PointCache(space, out_dir / "cache")
    # per (base config, hw_overrides JSON) as the points carry them: the derived config's content hash, or (if
    # the combination cannot be built) a hash of the pair and the reason
    config_hashes, infeasible = {}, {}
    for base, overrides, config, reason in space.derived_configs():
        label = (base, json.dumps(overrides))
        if config is None:
            config_hashes[label] = content_hash({"base": base, "overrides": label[1]})
            infeasible[label] = reason
        else:
            config_hashes[label] = content_hash(config.model_dump(mode="json", exclude={"name"}))

    wanted, tasks, failed = [], [], []
    pruning_records: dict[str, dict] = {}
    hardware_points = space.hardware_points()
    prune_keys = ("block", "granularity", "target_sparsity", "method")
    for point in hardware_points:
        prune_point = {k: point[k] for k in prune_keys}
        key = cache.key(prune_point)
        label = (point["config"], point["hw_overrides"])
        point_id = content_hash({"prune": key, "config": config_hashes[label],
                                 "seq_len": point["seq_len"], "batch": point["batch"]})  # fmt: skip
        wanted.append(point_id)
        if point_id in done:
            continue
        if label in infeasible:  # a result, not a failure: the hardware combination cannot be built
            store.append({**point, "point_id": point_id, "model": space.model, "data": space.data,
                          "feasible": False, "infeasible_reason": infeasible[label], "error": None})  # fmt: skip
            continue
        if key not in pruning_records:
            try:
                pruning_records[key] = cache.get(prune_point)
            except Exception as err:
                if isinstance(err, ValueError | FileNotFoundError | ModuleNotFoundError) and not pruning_records:
                    raise  # bad input shows on the first point: stop with the clear error
                log.exception("pruning point %s failed", prune_point)
                pruning_records[key] = {"error": f"{type(err).__name__}: {err}"}
        record = pruning_records[key]
        row = {**point, "point_id": point_id, "model": space.model, "data": space.data}
        if "error" in record:
            failed.append({**row, "error": record["error"]})
            continue
        carried = ("accuracy", "test_accuracy", "sparsity", "compression_rate", "model_compression_rate",
                   "accuracy_source", "masks_path", "hf_config_dir", "cache_key", "prune_wall_s")  # fmt: skip
        tasks.append({**row, **{k: record.get(k) for k in carried}})
    for row in failed:
        store.append(row)
    log.info("%d points, %d done before, %d to simulate", len(hardware_points), len(done), len(tasks))
    def record(result: dict) -> None:
        store.append(_portable(result, out_dir, cache.model_dir, space.model))

    _run_tasks(tasks, record, workers, _dask_client(client, dask_scheduler), progress)

    table = store.load()
    table = table[table["point_id"].isin(set(wanted))].reset_index(drop=True)
    return table
