"""Sweeps whose pruning runs in parallel: local workers, a Dask cluster, several processes on one --out."""

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pandas as pd
import pytest
from conftest import tiny_text_task

from analysis import SweepSpace, sweep
from analysis.executor import TaskRunner, WorkerDiedError
from analysis.space import AccuracyBudget
from bsp_common.claims import claim_owner

BUDGET = AccuracyBudget(epochs=2.0, max_train_samples=16, max_eval_samples=8, batch_size=8, learning_rate=5e-3)


def training_space(model_dir, glue_dir, **overrides) -> SweepSpace:
    """Three trained pruning points and the dense one (which is also the pruned runs' distillation teacher)."""
    base = {"model": str(model_dir), "data": "glue:sst-2", "glue_dir": str(glue_dir), "accuracy": "train",
            "blocks": ["4x4"], "sparsities": [0.0, 0.25, 0.5, 0.75], "methods": ["magnitude"],
            "configs": ["asic-16x16-int8"], "seq_lens": [8], "budget": BUDGET}  # fmt: skip
    return SweepSpace(**{**base, **overrides})


COLUMNS = ["point_id", "accuracy", "sparsity", "cycles", "energy_pj"]


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    return table[COLUMNS].sort_values("point_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return tiny_text_task(tmp_path_factory.mktemp("task"))


@pytest.fixture(scope="module")
def serial_table(task, tmp_path_factory):
    return sweep(training_space(*task), out_dir=tmp_path_factory.mktemp("serial") / "out", progress=False)


def test_two_worker_local_cluster_trains_the_same_table_as_the_serial_run(task, serial_table, tmp_path):
    from dask.distributed import Client, LocalCluster

    assert serial_table["error"].isna().all() and serial_table["accuracy"].notna().all()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:  # fmt: skip
        table = sweep(training_space(*task), out_dir=tmp_path / "out", client=client, progress=False)
    pd.testing.assert_frame_equal(_sorted(table), _sorted(serial_table))  # accuracies to the last digit
    assert len(list((tmp_path / "out" / "cache" / "teachers").glob("dense-*"))) == 1  # one teacher for all


def test_local_workers_train_the_same_table_and_share_one_teacher(task, serial_table, tmp_path):
    table = sweep(training_space(*task), out_dir=tmp_path / "out", workers=2, progress=False)
    pd.testing.assert_frame_equal(_sorted(table), _sorted(serial_table))
    assert not list((tmp_path / "out" / "cache").rglob("*.claim"))  # every claim released


_COUNTING_SWEEP = """
import json, os, sys
import pruning.train as train
from analysis import sweep
from analysis.space import load_space
original = train.run_pruning
def counted(model, data, settings, out_dir, *args, **kwargs):
    with open({log!r}, "a") as log:  # one line per training run: which process trained what
        log.write(json.dumps({{"pid": os.getpid(), "out": str(out_dir)}}) + "\\n")
    return original(model, data, settings, out_dir, *args, **kwargs)
train.run_pruning = counted
table = sweep(load_space({space!r}), out_dir={out!r}, progress=False)
print(json.dumps(sorted(table["point_id"])))
"""


def test_two_sweep_processes_on_one_out_split_the_points_and_train_none_twice(task, serial_table, tmp_path):
    import yaml

    space = training_space(*task)
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({**space.to_dict(), "budget": BUDGET.__dict__}))
    log, out = tmp_path / "trained.jsonl", tmp_path / "out"
    script = textwrap.dedent(_COUNTING_SWEEP.format(log=str(log), space=str(space_file), out=str(out)))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    trained = [run["out"] for run in runs]
    assert len(trained) == len(set(trained)) == 4  # the teacher and three pruned points, each once
    expected = sorted(serial_table["point_id"])
    assert [json.loads(text.strip().splitlines()[-1]) for text in outputs] == [expected, expected]
    from analysis.store import ResultStore

    stored = ResultStore(out / "points.jsonl").load()
    assert sorted(stored["point_id"]) == expected and stored["error"].isna().all()
    # the two processes' pruning records are one and the same: the accuracies equal the serial run's
    key = ["point_id", "accuracy"]
    pd.testing.assert_frame_equal(_sorted(stored)[key], _sorted(serial_table)[key])


def test_a_worker_killed_mid_point_is_retried_and_the_table_is_complete(task, serial_table, tmp_path):
    out = tmp_path / "out"
    killed = []

    def kill_the_first_trainer() -> None:  # SIGKILL whichever worker first holds a pruned point's claim
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            for claim in (out / "cache").glob("*.claim"):
                owner = claim_owner(claim) or {}
                if owner.get("pid") and owner["pid"] != os.getpid():
                    os.kill(owner["pid"], signal.SIGKILL)
                    killed.append(owner["pid"])
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_the_first_trainer)
    watcher.start()
    table = sweep(training_space(*task), out_dir=out, workers=2, progress=False)
    watcher.join()
    assert killed, "no worker was seen training a point"
    assert table["error"].isna().all()
    pd.testing.assert_frame_equal(_sorted(table), _sorted(serial_table))


def test_gpu_workers_each_see_their_own_device():
    runner = TaskRunner(gpus=[3, 5])
    show = functools.partial(subprocess.check_output, text=True)  # a shell started by the worker inherits its env
    for i in range(6):
        runner.submit(show, ["sh", "-c", "sleep 0.5; echo $CUDA_VISIBLE_DEVICES"], key=i)
    seen = {result.strip() for _, result, error in runner.results() if error is None}
    assert seen == {"3", "5"}


def test_a_task_that_kills_its_worker_fails_alone_after_three_attempts():
    runner = TaskRunner(workers=2)
    run = functools.partial(subprocess.check_output, text=True)
    runner.submit(run, ["sh", "-c", "sleep 0.2; kill -9 $PPID"], key="suicide")
    for i in range(3):
        runner.submit(run, ["sh", "-c", f"sleep 0.3; echo {i}"], key=i)
    results = {key: (result, error) for key, result, error in runner.results()}
    assert isinstance(results["suicide"][1], WorkerDiedError) and "3 times" in str(results["suicide"][1])
    assert {results[i][0].strip() for i in range(3)} == {"0", "1", "2"}  # the others were retried and finished


def test_gpus_auto_without_cuda_is_refused_before_work(task, tmp_path):
    with pytest.raises(ValueError, match=r"--gpus: 'auto' found no CUDA device"):
        sweep(training_space(*task), out_dir=tmp_path / "out", gpus="auto", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"--gpus: expected 'auto' or a list"):
        sweep(training_space(*task), out_dir=tmp_path / "out", gpus=[-1], progress=False)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gpus": [7]}, r"--gpus: device 7 is not visible to this process \(visible: "),
    ({"workers": 2, "dask_scheduler": "tcp://127.0.0.1:9"}, r"--workers 2: with a Dask scheduler its workers run"),
    ({"dask_scheduler": "notanaddress"}, r"--dask-scheduler: 'notanaddress' is not a scheduler address"),
])  # fmt: skip
def test_runner_options_that_cannot_work_are_refused_before_work(task, tmp_path, monkeypatch, kwargs, message):
    import analysis.executor as executor

    monkeypatch.setattr(executor, "visible_gpus", lambda: [0, 1])  # two devices, whatever this machine has
    with pytest.raises(ValueError, match=message):
        sweep(training_space(*task), out_dir=tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"--workers 4 with --gpus 0,1: one worker runs per GPU"):
        executor.check_runner(4, [0, 1], distributed=False)
    assert executor.check_runner(1, [1], distributed=False) == [1]


_HARDWARE_SWEEP = """
import json, sys
from analysis import sweep
from analysis.space import load_space
table = sweep(load_space({space!r}), out_dir={out!r}, progress=False)
print(json.dumps({{"evaluated_now": table.attrs["evaluated_now"], "points": len(table)}}))
"""


def test_two_hardware_sweeps_on_one_out_simulate_each_point_once(task, tmp_path):
    """Started together, the two processes split the simulated points: no id is stored twice, and the points
    each says it evaluated add up to the space."""
    import yaml

    model_dir, _ = task
    space = {"model": str(model_dir), "accuracy": "none", "blocks": ["4x4", "8x8"], "sparsities": [0.0, 0.5, 0.75],
             "configs": ["asic-16x16-int8", "asic-32x32-int8"], "seq_lens": [8, 16],
             "hardware_axes": {"clock_mhz": [250, 500, 750, 1000], "buffers.weight_bytes": ["64 KiB", "256 KiB"],
                               "pe_array.rows,pe_array.cols": [[8, 8], [16, 16], [32, 32]]}}  # fmt: skip
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    out = tmp_path / "out"
    script = textwrap.dedent(_HARDWARE_SWEEP.format(space=str(space_file), out=str(out)))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    reports = [json.loads(proc.communicate(timeout=600)[0].strip().splitlines()[-1]) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    total = 5 * 2 * 2 * 4 * 2 * 3  # pruning points x configs x seq_lens x clocks x buffers x arrays
    assert [r["points"] for r in reports] == [total, total]
    ids = [json.loads(line)["point_id"] for line in (out / "points.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == total  # every point stored once
    assert sum(r["evaluated_now"] for r in reports) == total, reports
    assert not list((out / "claims").glob("*.claim"))  # every claim given back
