"""Design-space sweeps: pruning settings x accelerators x shapes -> one tidy DataFrame.

>>> from analysis import SweepSpace, sweep                                   # doctest: +SKIP
>>> space = SweepSpace(blocks=["16x16", "32x32"], sparsities=[0.0, 0.5, 0.8],
...                    configs=["asic-32x32-int8", "fpga-zcu102"], accuracy="none")
>>> table = sweep(space, out_dir="results/hw-only", workers=2)              # doctest: +SKIP
>>> table[["block", "target_sparsity", "config", "cycles", "energy_pj"]]    # doctest: +SKIP

One task graph for both stages, on one :class:`analysis.executor.TaskRunner`: this process
(``workers=1``), local worker processes (``workers=N``; ``gpus=`` one per GPU) or a Dask cluster
(``client=`` or ``dask_scheduler=``; workers must see ``out_dir`` on shared storage). (1) One pruning task
per distinct pruning setting (a :class:`analysis.accuracy.PointCache` entry, shared by all accelerators);
(2) as soon as a pruning point is done, its hardware points (accelerator x seq_len x batch) are simulated
in batches, so workers keep their workloads and timings cached.

Each finished point is appended to ``<out_dir>/points.jsonl`` at once; a re-run skips the points already
there, so an interrupted sweep resumes without losing or duplicating points. A point that fails is recorded
with its ``error`` and the sweep goes on; the next run evaluates it again. The table of this run's space is
written atomically to ``<out_dir>/sweep.parquet``.

``out_dir`` is a bsp sweep directory (:mod:`bsp_common.outputs`): new, empty, or an earlier sweep's (which
is resumed). Several sweep processes, on one host or many, may share it: a pruning point is claimed before
it is trained and every hardware point before it is simulated (:mod:`bsp_common.claims`, ``claims/`` in the
sweep directory), so none is computed twice -- a process skips the points another one holds, then waits for
them (saying on stderr for whom) or takes over those whose owner died; ``sweep.parquet`` then holds the table
of the run that finished last. A space larger than ``max_points`` is
refused unless raised, and local worker processes die with the sweep's process.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
import time
from pathlib import Path

import pandas as pd

from analysis.accuracy import PointCache
from analysis.executor import TaskRunner, check_runner, dask_client
from analysis.space import SweepSpace, load_space
from analysis.store import RESULTS_FILENAME, ResultStore, write_table_atomic
from bsp_common.claims import ClaimSet, describe_owner
from bsp_common.outputs import check_output_dir, prepare_output_dir
from bsp_common.progress import progress_bar
from bsp_common.strict_json import content_hash

__all__ = ["MAX_POINTS", "OUTPUT_KIND", "RESULTS_FILENAME", "missing_accuracy", "prune_point", "prune_points",
           "pruned_workload", "simulate_point", "simulate_points", "sweep"]  # fmt: skip

log = logging.getLogger(__name__)

POINTS_FILENAME = "points.jsonl"
OUTPUT_KIND = "sweep"
MAX_POINTS = 20_000  # default guard: ~a minute of hardware-only simulation; training points cost far more
SIM_BATCH_POINTS = 64  # hardware points per simulation task: ~0.1-0.5 s of work, little scheduling overhead
CLAIM_POLL_S = 1.0  # how often a sweep looks again at points another process is simulating
_TOTAL_COLUMNS = ("cycles", "latency_s", "energy_pj", "utilization", "compute_cycles", "stall_cycles",
                  "first_load_cycles", "last_store_cycles", "ideal_cycles",
                  "dram_bytes", "tops_per_w", "macs_useful", "energy_dram_pj", "energy_mac_pj", "energy_leakage_pj",
                  "area_mm2", "static_power_mw", "tech_node_nm", "fpga_dsp", "fpga_lut", "fpga_ff",
                  "fpga_bram36")  # fmt: skip
_CARRIED = ("accuracy", "test_accuracy", "sparsity", "compression_rate", "model_compression_rate",
            "accuracy_source", "masks_path", "hf_config_dir", "cache_key", "prune_wall_s")  # fmt: skip
_BAD_INPUT = (ValueError, FileNotFoundError, ModuleNotFoundError)


@functools.lru_cache(maxsize=8)  # consecutive points share a pruning point and shape: build its workload once
def pruned_workload(hf_config_dir: str, masks_path: str | None, batch: int, seq_len: int):
    """The workload of a (pruned) model: its HF config, the masks of a mask file or saved pruned-model
    directory (``None``: dense), ``batch`` x ``seq_len`` tokens. Memoised by path, so only for paths whose
    content never changes (the sweep's content-addressed cache)."""
    from hwsim import build_workload, read_hf_config
    from pruning.masks import load_masks

    masks = load_masks(masks_path) if masks_path else {}
    return build_workload(read_hf_config(hf_config_dir), masks, batch=batch, seq_len=seq_len)


@functools.lru_cache(maxsize=256)  # a sweep's points repeat a few (base, overrides) pairs thousands of times
def _derived_config(base: str, overrides_json: str, base_stamp: tuple):
    from hwsim.config import derive_config

    return derive_config(base, json.loads(overrides_json or "{}"))


def _file_stamp(base: str) -> tuple:
    """What identifies a config file's content for :func:`_derived_config`'s memo (a preset: nothing)."""
    try:
        stat = Path(base).stat()
    except OSError:
        return ()
    return (stat.st_mtime_ns, stat.st_size)


def simulate_point(task: dict) -> dict:
    """Simulate one hardware point (picklable; runs in a worker process or on a Dask worker)."""
    from hwsim.mapping import TilingError
    from hwsim.simulate import simulate_totals

    try:
        workload = pruned_workload(task["hf_config_dir"], task.get("masks_path"), task["batch"], task["seq_len"])
        config = _derived_config(task["config"], task.get("hw_overrides") or "{}", _file_stamp(task["config"]))
        totals = simulate_totals(config, workload)
        return {**task, **{k: totals[k] for k in _TOTAL_COLUMNS}, "feasible": True, "error": None}
    except TilingError as err:  # buffers too small for the array's smallest tile: a result, as FPGA over-use is
        return {**task, "feasible": False, "infeasible_reason": str(err), "error": None}
    except Exception as err:  # a failing point is recorded, the sweep goes on
        return {**task, "error": f"{type(err).__name__}: {err}"}


def simulate_points(tasks: list[dict]) -> list[dict]:
    """:func:`simulate_point` of each task: one call per batch, so a worker reuses workloads and timings."""
    return [simulate_point(task) for task in tasks]


_POINT_CACHES: dict[tuple, PointCache] = {}  # per process: keeps the data set and tables loaded


def _cache_ident(space: SweepSpace, cache_dir, inputs_sha256) -> tuple:
    # the inputs' content too: a model or accuracy table edited between two sweeps of this process is read again
    return content_hash(space.to_dict()), str(cache_dir), inputs_sha256


def _share_in_process(cache: PointCache) -> None:
    """Let :func:`prune_point` tasks run in this process (``workers=1``) use ``cache`` instead of a twin."""
    _POINT_CACHES.clear()
    _POINT_CACHES[_cache_ident(cache.space, cache.cache_dir, cache.inputs_sha256)] = cache


def prune_point(job: dict) -> dict:
    """The pruning record of ``job["point"]`` in ``job["space"]``'s cache at ``job["cache_dir"]``: computed
    once across every process that shares the directory (picklable; runs on any worker)."""
    space = job["space"]
    ident = _cache_ident(space, job["cache_dir"], job["inputs_sha256"])
    if ident not in _POINT_CACHES:
        from pruning.models import quiet_transformers

        quiet_transformers()  # workers' model-load reports would interleave with the sweep's progress
        _POINT_CACHES.clear()
        _POINT_CACHES[ident] = PointCache(space, job["cache_dir"])
    return _POINT_CACHES[ident].get(job["point"])


def _portable(record: dict, out_dir: str, model_dir: str, model: str) -> dict:
    """Paths in a stored row that do not depend on this machine: relative to ``out_dir``, or the model's name.
    (String prefixes, not pathlib: the driver does this for every point of a sweep.)"""
    record = dict(record)
    prefix = out_dir.rstrip("/") + "/"
    for key in ("masks_path", "hf_config_dir"):
        value = record.get(key)
        if not value:
            continue
        if value.rstrip("/") == model_dir:
            record[key] = model
        elif value.startswith(prefix):
            record[key] = value[len(prefix) :]
    return record


def sweep(
    space: SweepSpace | dict | str | Path | None = None,
    out_dir: str | Path = "results",
    workers: int = 1,
    client=None,
    dask_scheduler: str | None = None,
    progress: bool = True,
    max_points: int | None = MAX_POINTS,
    results_file: str | None = RESULTS_FILENAME,
    gpus: list[int] | str | None = None,
) -> pd.DataFrame:
    """Run (or resume) a sweep; returns one row per point of ``space`` with parameters and metrics.

    ``workers`` local processes, or ``gpus`` (``"auto"`` or device ids: one worker per GPU, on a Dask
    ``client`` the pruning tasks ask for the worker resource ``GPU``), or a Dask cluster run both stages.
    ``max_points`` refuses, before any work, a space with more points (``None``: no limit). The table is
    also written to ``out_dir/results_file`` (``None``: not written; :func:`analysis.search.search` uses that).
    """
    space = space if isinstance(space, SweepSpace) else load_space(space)
    gpus = check_runner(workers, gpus, distributed=client is not None or dask_scheduler is not None)
    for note in space.pinned_dependents():
        print(f"note: {note}", file=sys.stderr)
    n_points = space.n_points
    if max_points is not None and n_points > max_points:
        raise ValueError(f"sweep: the space has {n_points:,} points, more than the limit of {max_points:,}; "
                         "confirm with --yes (max_points=None) or shrink the space")  # fmt: skip
    from pruning.models import resolve_model_path

    # refused before the output directory is made: a bad Dask address, a data set that cannot be read
    inputs = [resolve_model_path(space.model)]
    check_output_dir(out_dir, OUTPUT_KIND, update=True, inputs=inputs)
    runner = TaskRunner(workers, dask_client(client, dask_scheduler), gpus)
    dataset = None
    if space.accuracy in ("train", "proxy"):
        from pruning.data import load_dataset

        dataset = load_dataset(space.data, glue_dir=space.glue_dir)
    out_dir = prepare_output_dir(out_dir, OUTPUT_KIND, inputs=inputs)
    table = _SweepRun(space, out_dir, runner, progress, dataset).run()
    missing = missing_accuracy(table) if space.accuracy != "none" else []
    table.attrs["without_accuracy"] = int(sum(count for _, count in missing))
    if missing:
        shown = ", ".join(f"{' '.join(map(str, key))} ({count} rows)" for key, count in missing[:6])
        print(f"note: {table.attrs['without_accuracy']} of {len(table)} rows have no accuracy from "
              f"{space.accuracy} -- no entry for {shown}{' ...' if len(missing) > 6 else ''} (block, "
              "granularity, sparsity, method); fronts that rank accuracy leave them out", file=sys.stderr)
    if results_file:
        write_table_atomic(table, out_dir / results_file)
    return table


def missing_accuracy(table: pd.DataFrame) -> list[tuple[tuple, int]]:
    """``((block, granularity, target_sparsity, method), rows)`` of evaluated rows whose accuracy is missing (a
    combination the accuracy table does not hold), most rows first."""
    if "accuracy" not in table or not len(table):
        return []
    rows = table[table["accuracy"].isna()]
    if "error" in rows:
        rows = rows[rows["error"].isna()]
    if "feasible" in rows:
        rows = rows[rows["feasible"] != False]  # noqa: E712 -- NaN-safe
    keys = [k for k in ("block", "granularity", "target_sparsity", "method") if k in rows]
    counts = rows.groupby(keys, sort=False).size().sort_values(ascending=False, kind="stable")
    return [(key if isinstance(key, tuple) else (key,), int(n)) for key, n in counts.items()]


def prune_points(spaces: list[SweepSpace], out_dir: str | Path, runner: TaskRunner | None = None,
                 progress: bool = True) -> int:
    """Compute every pruning point of ``spaces`` into the cache of the sweep directory ``out_dir`` on
    ``runner``'s workers, all at once -- a study of many small spaces keeps every worker busy -- so that the
    sweeps of these spaces afterwards only simulate. A point that fails is logged and left for its sweep to
    record (and retry). Returns how many points were computed now."""
    from pruning.models import resolve_model_path

    runner = runner or TaskRunner()
    out_dir = prepare_output_dir(out_dir, OUTPUT_KIND, inputs=[resolve_model_path(s.model) for s in spaces])
    cache_dir, submitted = out_dir / "cache", set()
    for space in spaces:
        cache = PointCache(space, cache_dir)
        for point in space.pruning_points():
            key = cache.key(point)
            if key not in submitted and cache.lookup(point) is None:
                submitted.add(key)
                job = {"space": space, "cache_dir": str(cache_dir), "point": point,
                       "inputs_sha256": cache.inputs_sha256}  # fmt: skip
                runner.submit(prune_point, job, key=point, gpu=True)
    computed = 0
    with progress_bar(progress, total=len(submitted), desc="prune", unit="pt") as bar:
        for point, _, error in runner.results():
            if error is None:
                computed += 1
            else:
                log.error("pruning point %s failed: %s: %s", point, type(error).__name__, error)
            bar.update()
    return computed


_LAYOUT_FREE_PREFIXES = ("clock_mhz", "dram.", "energy.")  # fields the fold plan does not depend on


def _locality_key(task: dict) -> tuple:
    overrides = json.loads(task["hw_overrides"] or "{}")
    layout = sorted((k, str(v)) for k, v in overrides.items() if not k.startswith(_LAYOUT_FREE_PREFIXES))
    rest = sorted((k, str(v)) for k, v in overrides.items() if k.startswith(_LAYOUT_FREE_PREFIXES))
    return task["seq_len"], task["batch"], task["config"], layout, rest


class _SweepRun:
    """One run of a sweep over ``out_dir``: plan the points, run both stages on ``runner``, store as they finish."""

    def __init__(self, space: SweepSpace, out_dir: Path, runner: TaskRunner, progress: bool, dataset=None) -> None:
        self.space, self.out_dir, self.runner, self.progress = space, out_dir, runner, progress
        self.store = ResultStore(out_dir / POINTS_FILENAME, numeric_fields=_TOTAL_COLUMNS)
        self.cache = PointCache(space, out_dir / "cache", dataset)
        self.claims = ClaimSet(out_dir / "claims")  # hardware points this process is simulating
        self.deferred: list[dict] = []  # tasks another live process holds
        self.computed = 0  # points this process evaluated (stored) in this run
        if not runner.parallel:  # tasks run here: the planning cache computes them (one fingerprint, one load)
            _share_in_process(self.cache)

    def _config_labels(self) -> tuple[dict, dict]:
        """Per (base config, hw_overrides JSON) as the points carry them: the derived config's content hash,
        or (if the combination cannot be built) a hash of the pair, and the reasons."""
        config_hashes, infeasible = {}, {}
        for base, overrides, config, reason in self.space.derived_configs():
            label = (base, json.dumps(overrides))
            if config is None:
                config_hashes[label] = content_hash({"base": base, "overrides": label[1]})
                infeasible[label] = reason
            else:  # the name too: a renamed copy of a preset is a point of its own, not the preset's
                config_hashes[label] = content_hash(config.model_dump(mode="json"))
        return config_hashes, infeasible

    def _plan(self) -> tuple[list[str], dict[str, dict]]:
        """Every point's id, and the points still to evaluate grouped by pruning key; infeasible hardware
        combinations are stored at once (a result, not a failure)."""
        done = self.store.done_ids()
        config_hashes, infeasible = self._config_labels()
        wanted, groups, infeasible_rows = [], {}, []
        prune_keys = ("block", "granularity", "target_sparsity", "method")
        for point in self.space.hardware_points():
            prune = {k: point[k] for k in prune_keys}
            key = self.cache.key(prune)
            label = (point["config"], point["hw_overrides"])
            point_id = content_hash({"prune": key, "config": config_hashes[label],
                                     "seq_len": point["seq_len"], "batch": point["batch"]})  # fmt: skip
            wanted.append(point_id)
            if point_id in done:
                continue
            row = {**point, "point_id": point_id, "model": self.space.model, "data": self.space.data}
            if label in infeasible:
                infeasible_rows.append({**row, "feasible": False, "infeasible_reason": infeasible[label],
                                        "error": None})  # fmt: skip
                continue
            groups.setdefault(key, {"prune": prune, "rows": []})["rows"].append(row)
        self._store(self._claimed(infeasible_rows)[0])
        log.info("%d points, %d done before, %d to evaluate", len(wanted), len(done & set(wanted)),
                 sum(len(g["rows"]) for g in groups.values()))  # fmt: skip
        return wanted, groups

    def _claimed(self, rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """``(mine, theirs)``: the rows this process now holds claims on and that no process has stored yet, and
        those another live process holds; rows stored meanwhile are dropped (their claims given back)."""
        mine, theirs = [], []
        for row in rows:
            (mine if self.claims.take(row["point_id"]) else theirs).append(row)
        if mine:  # stored by another process between our plan and our claim
            done = self.store.done_ids()
            self.claims.release([row["point_id"] for row in mine if row["point_id"] in done])
            mine = [row for row in mine if row["point_id"] not in done]
        return mine, theirs

    def _submit_simulations(self, rows: list[dict], record: dict) -> int:
        tasks = [{**row, **{k: record.get(k) for k in _CARRIED}} for row in rows]
        tasks, theirs = self._claimed(tasks)
        self.deferred += theirs
        self._submit_batches(tasks)
        return len(tasks)

    def _submit_batches(self, tasks: list[dict]) -> None:
        # batches of neighbouring points -- same workload, then same array and buffers, clock and DRAM last --
        # so that a worker plans each GEMM's folds once for all the points that differ only in those
        if not tasks:
            return
        tasks.sort(key=_locality_key)
        n_batches = max(1, math.ceil(len(tasks) / SIM_BATCH_POINTS))
        size = math.ceil(len(tasks) / n_batches)
        for i in range(0, len(tasks), size):
            batch = tasks[i : i + size]
            self.runner.submit(simulate_points, batch, key=("simulate", batch))

    def _store(self, results: list[dict]) -> None:
        """Append ``results`` and only then give their claims back (a process that claims one next finds it)."""
        out_dir, model_dir = str(self.out_dir), str(self.cache.model_dir).rstrip("/")
        self.store.extend([_portable(r, out_dir, model_dir, self.space.model) for r in results])
        self.claims.release([r["point_id"] for r in results])
        self.computed += len(results)

    def _wait_for_deferred(self, bars: dict) -> None:
        """Points another process held when this one came to them: done by it meanwhile, taken over when its
        claim expires (its process died), or waited for -- saying once on stderr for whom."""
        said = False
        while self.deferred:
            done = self.store.done_ids()
            pending = [task for task in self.deferred if task["point_id"] not in done]
            mine, self.deferred = self._claimed(pending)
            if mine:
                bars["simulate"].total += len(mine)
                self._submit_batches(mine)
                self._collect(bars, {})
                continue
            if self.deferred and not said:
                owner = self.claims.owner(self.deferred[0]["point_id"])
                log.warning("%d points are being simulated by another sweep process (%s); waiting for them",
                            len(self.deferred), describe_owner(owner))  # fmt: skip
                said = True
            if self.deferred:
                time.sleep(CLAIM_POLL_S)

    def run(self) -> pd.DataFrame:
        wanted, groups = self._plan()
        bars = {stage: progress_bar(self.progress, total=0, desc=stage, unit="pt", dynamic_ncols=True)
                for stage in ("prune", "simulate")}  # fmt: skip
        self.counts = {"failed": 0, "pruned ok": 0}
        try:
            for key, group in groups.items():
                record = self.cache.lookup(group["prune"])
                if record is not None:  # pruned before (this run's cache or another process's)
                    bars["simulate"].total += self._submit_simulations(group["rows"], record)
                else:
                    job = {"space": self.space, "cache_dir": str(self.cache.cache_dir), "point": group["prune"],
                           "inputs_sha256": self.cache.inputs_sha256}  # fmt: skip
                    self.runner.submit(prune_point, job, key=("prune", key), gpu=True)
                    bars["prune"].total += 1
            for bar in bars.values():
                bar.refresh()
            self._collect(bars, groups)
            self._wait_for_deferred(bars)
        finally:
            for bar in bars.values():
                bar.close()
            self.claims.close()
        table = self.store.load()
        table = table[table["point_id"].isin(set(wanted))].reset_index(drop=True)
        # what this run did, for summaries: points evaluated now (by this process), the rest stored before or
        # by another process sharing the directory
        table.attrs["evaluated_now"] = self.computed
        table.attrs["pruned_now"] = self.counts["pruned ok"]
        return table

    def _collect(self, bars: dict, groups: dict) -> None:
        """Store every finished task's results; a finished pruning point submits its simulations."""
        counts = self.counts
        for (stage, payload), result, error in self.runner.results():
            if stage == "simulate":
                if error is not None:  # the batch's worker kept dying: every point of it failed
                    result = [{**task, "error": f"{type(error).__name__}: {error}"} for task in payload]
                self._store(result)
                bars["simulate"].update(len(result))
                continue
            group = groups[payload]
            if error is None:
                counts["pruned ok"] += 1
                bars["simulate"].total += self._submit_simulations(group["rows"], result)
                bars["simulate"].refresh()
            elif isinstance(error, _BAD_INPUT) and not counts["pruned ok"]:
                raise error  # bad input shows on the first point: stop with the clear error
            else:
                log.error("pruning point %s failed: %s: %s", group["prune"], type(error).__name__, error)
                counts["failed"] += 1
                self._store([{**row, "error": f"{type(error).__name__}: {error}"} for row in group["rows"]])
            bars["prune"].update()
            bars["prune"].set_postfix(running=self.runner.running,
                                      failed=counts["failed"], refresh=False)  # fmt: skip
