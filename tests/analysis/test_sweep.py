"""Sweep engine on a tiny random BERT saved to disk (accuracy source 'none': no training)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import tiny_classifier

from analysis import SweepSpace, load_space, sweep
from analysis.store import ResultStore
from hwsim import load_config


@pytest.fixture
def tiny_model_dir(tmp_path):
    path = tmp_path / "tiny-bert"
    tiny_classifier("bert").save_pretrained(path)
    return path


def space_for(model_dir, **overrides):
    base = {"model": str(model_dir), "accuracy": "none", "blocks": ["8x8", "16x16"], "sparsities": [0.0, 0.5, 0.75],
            "configs": ["asic-16x16-int8", "asic-32x32-int8"], "seq_lens": [16]}  # fmt: skip
    return SweepSpace(**{**base, **overrides})


def test_sweep_table_has_every_point_once(tiny_model_dir, tmp_path):
    space = space_for(tiny_model_dir)
    table = sweep(space, out_dir=tmp_path / "out", progress=False)
    assert len(table) == len(space.hardware_points()) == 10  # (1 dense + 2x2) x 2 configs
    assert table["point_id"].is_unique
    assert table["error"].isna().all()
    dense = table[table["method"] == "dense"].set_index("config")["cycles"]
    sparse = table[(table["target_sparsity"] == 0.75)].groupby("config")["cycles"].min()
    assert (sparse < dense).all()
    on_disk = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert len(on_disk) == 10
    again = sweep(space, out_dir=tmp_path / "out", progress=False)  # resume: nothing recomputed
    assert len(ResultStore(tmp_path / "out" / "points.jsonl").path.read_text().splitlines()) == 10
    assert set(again["point_id"]) == set(table["point_id"])


def test_truncated_last_line_is_ignored_and_recomputed(tiny_model_dir, tmp_path):
    space = space_for(tiny_model_dir, configs=["asic-16x16-int8"])
    out = tmp_path / "out"
    table = sweep(space, out_dir=out, progress=False)
    lines = (out / "points.jsonl").read_text().splitlines()
    (out / "points.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    again = sweep(space, out_dir=out, progress=False)
    assert len(again) == len(table) and again["point_id"].is_unique
    assert set(again["point_id"]) == set(table["point_id"])


def test_resume_after_kill_is_complete_and_duplicate_free(tiny_model_dir, tmp_path):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({
        "model": str(tiny_model_dir), "accuracy": "none", "blocks": ["4x4", "8x8"],
        "sparsities": [0.0, 0.25, 0.5, 0.75, 0.9], "configs": ["asic-16x16-int8", "asic-32x32-int8"],
        "seq_lens": [16, 32],
    }))  # fmt: skip
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import importlib, time
        s = importlib.import_module("analysis.sweep")
        original = s.simulate_point
        def slow(task):
            time.sleep(0.15)
            return original(task)
        s.simulate_point = slow
        s.sweep({str(space_file)!r}, out_dir={str(out)!r}, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    points = out / "points.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not points.exists() or len(points.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(points.read_text().splitlines())
    total = len(load_space(space_file).hardware_points())
    assert 5 <= partial < total
    table = sweep(space_file, out_dir=out, progress=False)
    assert len(table) == total == 36
    assert table["point_id"].is_unique
    assert table["error"].isna().all()


def test_dask_local_cluster_gives_same_table(tiny_model_dir, tmp_path):
    from dask.distributed import Client, LocalCluster

    space = space_for(tiny_model_dir, configs=["asic-16x16-int8"])
    local = sweep(space, out_dir=tmp_path / "local", progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:  # fmt: skip
        distributed = sweep(space, out_dir=tmp_path / "dask", client=client, progress=False)
    key = ["point_id", "cycles", "energy_pj"]
    pd.testing.assert_frame_equal(
        local[key].sort_values("point_id").reset_index(drop=True),
        distributed[key].sort_values("point_id").reset_index(drop=True),
    )


def test_batched_cached_points_replay_exactly_through_the_unbatched_simulator(tiny_model_dir, tmp_path):
    from hwsim import build_workload, read_hf_config, simulate
    from hwsim.config import derive_config
    from hwsim.simulate import clear_timing_cache
    from pruning.masks import load_masks

    space = space_for(tiny_model_dir, hardware_axes={"clock_mhz": [100, 1000], "dram.bw_gb_per_s": [0.5, 50]})
    out = tmp_path / "out"
    table = sweep(space, out_dir=out, workers=2, progress=False)
    assert len(table) == 40 and table["error"].isna().all()
    for row in table.to_dict("records"):  # each point alone, caches cleared, the per-op table built
        clear_timing_cache()
        masks = load_masks(out / row["masks_path"]) if isinstance(row["masks_path"], str) else {}
        workload = build_workload(read_hf_config(tiny_model_dir), masks, batch=row["batch"], seq_len=row["seq_len"])
        config = derive_config(row["config"], json.loads(row["hw_overrides"]))
        totals = simulate(config, workload, trace=True).totals  # trace: the simpy pipeline, not the closed form
        assert row["cycles"] == totals["cycles"] and row["stall_cycles"] == totals["stall_cycles"]
        assert row["energy_pj"] == pytest.approx(totals["energy_pj"], rel=1e-12)
    assert table["stall_cycles"].max() > 0  # the slow DRAM points do stall: the pipeline is exercised


def test_process_pool_records_infeasible_buffers_as_results(tiny_model_dir, tmp_path):
    small = tmp_path / "tiny.yaml"
    data = yaml.safe_load(load_config("asic-16x16-int8").to_yaml())
    data["name"] = "too-small"
    data["buffers"]["weight_bytes"] = 64  # cannot hold one fold -> infeasible by design, the sweep goes on
    small.write_text(yaml.safe_dump(data))
    space = space_for(tiny_model_dir, configs=["asic-16x16-int8", str(small)], sparsities=[0.0, 0.5],
                      blocks=["8x8"])  # fmt: skip
    table = sweep(space, out_dir=tmp_path / "out", workers=2, progress=False)
    assert len(table) == 4 and table["error"].isna().all()
    infeasible = table[table["feasible"] == False]  # noqa: E712
    assert set(infeasible["config"]) == {str(small)} and len(infeasible) == 2
    assert infeasible["infeasible_reason"].str.contains("buffers.weight_bytes").all()


def test_a_point_that_fails_is_recorded_with_its_error_not_raised(tmp_path):
    from analysis.sweep import simulate_point

    task = {"hf_config_dir": str(tmp_path / "no-such-model"), "masks_path": None, "batch": 1, "seq_len": 16,
            "config": "asic-16x16-int8", "hw_overrides": "{}"}  # fmt: skip
    result = simulate_point(task)
    assert result["error"] and "no-such-model" in result["error"] and "feasible" not in result


def test_unreachable_scheduler_is_a_clear_error(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="no Dask scheduler answered"):
        sweep(space_for(tiny_model_dir, configs=["asic-16x16-int8"]), out_dir=tmp_path / "o",
              dask_scheduler="tcp://127.0.0.1:9", progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("blokcs: [8x8]\n", "unknown keys \\['blokcs'\\]"),
        ("blocks: []\n", "non-empty list"),
        ("sparsities: [1.5]\n", "target_sparsity"),
        ("configs: [asic-1x1]\n", "neither a preset"),
        ("accuracy: magic\n", "sweep.accuracy"),
        ("budget: {epoch: 2}\n", "sweep.budget: unknown keys"),
        ("blocks: 8x8\n", "must be a non-empty list"),
    ],
)
def test_bad_sweep_files(tmp_path, yaml_text, match):
    path = tmp_path / "s.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=match):
        load_space(path)


def test_hardware_axes_cross_tie_and_record_infeasible_points(tiny_model_dir, tmp_path):
    axes = {"clock_mhz": [250, 1000], "pe_array.rows,pe_array.cols": [[8, 8], [64, 128]]}
    space = space_for(tiny_model_dir, configs=["asic-16x16-int8", "fpga-zcu102"], sparsities=[0.5],
                      blocks=["8x8"], hardware_axes=axes)  # fmt: skip
    table = sweep(space, out_dir=tmp_path / "out", progress=False)
    assert len(table) == space.n_points == 1 * 2 * 2 * 2
    assert set(zip(table["pe_array.rows"], table["pe_array.cols"], strict=True)) == {(8, 8), (64, 128)}
    bad = table[table["feasible"] == False]  # noqa: E712
    assert set(bad["config"]) == {"fpga-zcu102"} and set(bad["pe_array.rows"]) == {64}
    assert bad["infeasible_reason"].str.contains("fpga.dsp: pe_array 64x128 needs 4096 DSPs").all()
    good = table[table["feasible"] == True].set_index(["config", "pe_array.rows", "clock_mhz"])  # noqa: E712
    # latency = cycles / clock; both presets give their off-chip DRAM in GB/s, so a faster clock gets fewer
    # bytes per cycle: at least as many cycles, never fewer compute cycles
    for config, rows in (("asic-16x16-int8", 8), ("asic-16x16-int8", 64), ("fpga-zcu102", 8)):
        slow, fast = good.loc[(config, rows, 250)], good.loc[(config, rows, 1000)]
        assert slow["cycles"] <= fast["cycles"]
        assert slow["latency_s"] == pytest.approx(slow["cycles"] / 250e6)
        assert fast["latency_s"] == pytest.approx(fast["cycles"] / 1000e6)
    # a derived point equals a hand-written config with the same fields
    from hwsim import build_workload, read_hf_config, simulate
    from hwsim.config import derive_config
    from pruning.masks import load_masks

    row = good.loc[("asic-16x16-int8", 64, 1000)]
    config = derive_config("asic-16x16-int8", {"clock_mhz": 1000, "pe_array.rows": 64, "pe_array.cols": 128})
    assert not Path(row["masks_path"]).is_absolute()  # tables do not embed this machine's paths
    workload = build_workload(read_hf_config(tiny_model_dir), load_masks(tmp_path / "out" / row["masks_path"]),
                              seq_len=16)  # fmt: skip
    assert simulate(config, workload).totals["cycles"] == row["cycles"]


def test_bad_hardware_axes_are_refused_at_load(tiny_model_dir):
    with pytest.raises(ValueError, match=r"pe_array\.rowz names no field"):
        space_for(tiny_model_dir, hardware_axes={"pe_array.rowz": [8]})
    with pytest.raises(ValueError, match="tied axes take one list of 2 values"):
        space_for(tiny_model_dir, hardware_axes={"pe_array.rows,pe_array.cols": [8, 16]})
    with pytest.raises(ValueError, match="must be a non-empty list"):
        space_for(tiny_model_dir, hardware_axes={"clock_mhz": []})


def test_derive_config_validates_like_a_file():
    from hwsim.config import ConfigError, derive_config

    config = derive_config("fpga-zcu102", {"dram.bw_bytes_per_cycle": 64.0, "buffers.weight_bytes": "1 MiB"})
    assert config.dram.bw_gb_per_s is None and config.dram_bytes_per_cycle == 64.0
    assert config.buffers.weight_bytes == 1 << 20
    with pytest.raises(ConfigError, match=r"pe_array\.rows"):
        derive_config("fpga-zcu102", {"pe_array.rows": True})


def test_search_finds_front_points_that_a_full_sweep_agrees_with(tiny_model_dir, tmp_path):
    from analysis.pareto import pareto_front
    from analysis.search import search

    space = space_for(tiny_model_dir, configs=["asic-16x16-int8"], sparsities=[0.0, 0.5, 0.75],
                      hardware_axes={"clock_mhz": [250, 1000]})  # fmt: skip
    found = search(space, trials=20, out_dir=tmp_path / "s", progress=False)
    full = sweep(space, out_dir=tmp_path / "s", progress=False)  # every searched point is reused, not redone
    assert set(found["point_id"]) <= set(full["point_id"])
    merged = full.set_index("point_id").loc[found["point_id"]]
    assert (merged["cycles"].to_numpy() == found["cycles"].to_numpy()).all()
    objectives = {"latency_s": "min", "energy_pj": "min"}
    true_front = set(pareto_front(full, objectives)["point_id"])
    assert set(pareto_front(found, objectives)["point_id"]) == true_front  # 20 trials over 10 points: all of it


def test_array_sizes_that_buffers_cannot_hold_are_infeasible_rows_not_failures(tiny_model_dir, tmp_path, capsys):
    """Issue 28: an os preset with small buffers swept over array sizes. Which sizes fit is worked out from
    the GEMM shapes alone: one fold streams ``min(N, C) * K`` int8 weights through a weight slot; its
    results need a whole M-tile of ``min(N, C)`` 32-bit sums per row in an output slot, or -- stored as
    they drain column by column -- ``min(M, R)`` sums of one beat."""
    from bsp_cli.main import main
    from hwsim import build_workload, read_hf_config

    weight_slot, output_slot, seq = 1024, 64, 16
    sizes = [[4, 4], [8, 8], [16, 16], [32, 32], [64, 8], [8, 64]]
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({
        "model": str(tiny_model_dir), "accuracy": "none", "blocks": ["8x8"], "sparsities": [0.0],
        "configs": ["asic-16x16-int8"], "seq_lens": [seq],
        "hardware_axes": {"pe_array.rows,pe_array.cols": sizes, "buffers.weight_bytes": [2 * weight_slot],
                          "buffers.output_bytes": [2 * output_slot]}}))  # fmt: skip
    assert load_config("asic-16x16-int8").microarch.drain.value == "columns"

    def fits(rows, cols):
        for op in build_workload(read_hf_config(tiny_model_dir), {}, seq_len=seq).gemms:
            width = min(op.N, cols)
            if width * op.K > weight_slot:
                return False
            whole_tiles = output_slot // (width * 4) >= min(op.M, rows)
            if not whole_tiles and min(op.M, rows) * 4 > output_slot:
                return False
        return True

    expected = {tuple(size) for size in sizes if not fits(*size)}
    assert expected and len(expected) < len(sizes)  # the case has both kinds
    assert main(["sweep", str(space_file), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(sizes)} points: {len(sizes) - len(expected)} evaluated, {len(expected)} infeasible by design, " \
           "0 failed" in printed
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    bad = table[table["feasible"] == False]  # noqa: E712
    assert set(zip(bad["pe_array.rows"], bad["pe_array.cols"], strict=True)) == expected
    reason = r"buffers\.(?:weight|output)_bytes: .* smallest size that works is"
    assert bad["infeasible_reason"].str.contains(reason).all()
    assert table["error"].isna().all()
    # each design's area is in its row, grows with the array, and has its own plot
    good = table[table["feasible"] != False].assign(pes=lambda t: t["pe_array.rows"] * t["pe_array.cols"])  # noqa: E712
    by_pes = good.sort_values("pes")
    assert by_pes["area_mm2"].is_monotonic_increasing and by_pes["static_power_mw"].is_monotonic_increasing
    assert (tmp_path / "out" / "pareto_area.png").is_file() and "area_mm2:min" in printed


def test_an_edited_accuracy_table_is_read_again_not_reused(tiny_model_dir, tmp_path):
    table_file = tmp_path / "acc.csv"
    row = "block,granularity,target_sparsity,method,accuracy\n8x8,block,0.5,magnitude,{}\n"
    table_file.write_text(row.format(0.81))
    space = space_for(tiny_model_dir, accuracy=f"table:{table_file}", blocks=["8x8"], sparsities=[0.5],
                      configs=["asic-16x16-int8"])  # fmt: skip
    assert sweep(space, out_dir=tmp_path / "out", progress=False)["accuracy"].tolist() == [0.81]
    table_file.write_text(row.format(0.64))
    assert sweep(space, out_dir=tmp_path / "out", progress=False)["accuracy"].tolist() == [0.64]


def test_a_renamed_copy_of_a_preset_is_a_point_of_its_own(tiny_model_dir, tmp_path):
    copy = tmp_path / "my-array.yaml"
    data = yaml.safe_load(load_config("asic-16x16-int8").to_yaml())
    data["name"] = "my-array"
    copy.write_text(yaml.safe_dump(data))
    space = space_for(tiny_model_dir, blocks=["8x8"], sparsities=[0.0, 0.5], configs=["asic-16x16-int8", str(copy)])
    table = sweep(space, out_dir=tmp_path / "out", progress=False)
    assert len(table) == 4 and table["point_id"].is_unique
    by_config = table.groupby("config")["cycles"].apply(sorted)
    assert by_config["asic-16x16-int8"] == by_config[str(copy)]  # the same hardware, counted under both names


@pytest.mark.parametrize(("rows", "message"), [
    ("8x8,block,0.5,magnitude,7.5\n", r"acc.csv:2: column 'accuracy' holds 7.5; it must be a number in \[0, 1\]"),
    ("8x8,block,0.5,magnitude,-3\n", r"acc.csv:2: column 'accuracy' holds -3"),
    ("8x8,block,0.5,magnitude,0.8\n8x8,block,0.5,magnitude,high\n", r"acc.csv:3: column 'accuracy' holds 'high'"),
    ("8x8,block,0.5,magnitude,0.8\n8x8,block,0.5,magnitude,0.7\n", r"lines \[2, 3\] list the point 8x8 block 0.5"),
])  # fmt: skip
def test_bad_accuracy_tables_are_refused_before_any_point(tiny_model_dir, tmp_path, rows, message):
    table_file = tmp_path / "acc.csv"
    table_file.write_text("block,granularity,target_sparsity,method,accuracy\n" + rows)
    space = space_for(tiny_model_dir, accuracy=f"table:{table_file}", blocks=["8x8"], sparsities=[0.5],
                      configs=["asic-16x16-int8"])  # fmt: skip
    with pytest.raises(ValueError, match=message):
        sweep(space, out_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "points.jsonl").exists()


def test_a_text_value_in_a_stored_metric_is_recomputed_not_tabled(tiny_model_dir, tmp_path):
    space = space_for(tiny_model_dir, blocks=["8x8"], sparsities=[0.0, 0.5], configs=["asic-16x16-int8"])
    out = tmp_path / "out"
    sweep(space, out_dir=out, progress=False)
    lines = (out / "points.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["tops_per_w"] = "high"  # a hand edit: a number became text
    (out / "points.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    table = sweep(space, out_dir=out, progress=False)
    assert len(table) == 2 and table.attrs["evaluated_now"] == 1
    assert pd.api.types.is_float_dtype(pd.read_parquet(out / "sweep.parquet")["tops_per_w"])


@pytest.mark.parametrize("problem", ["missing glue dir", "unreachable scheduler"])
def test_refusals_after_set_up_leave_no_output_behind(tiny_model_dir, tmp_path, problem):
    overrides = {"accuracy": "train", "data": "glue:sst-2", "glue_dir": str(tmp_path / "no-glue")}
    scheduler = None
    if problem == "unreachable scheduler":
        overrides, scheduler = {}, "tcp://127.0.0.1:9"
    with pytest.raises((ValueError, FileNotFoundError), match=r"glue|Dask scheduler"):
        sweep(space_for(tiny_model_dir, **overrides), out_dir=tmp_path / "out", dask_scheduler=scheduler,
              progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_search_refuses_objectives_it_cannot_optimise_in_one_line(tiny_model_dir, tmp_path, capsys):
    """Optuna's own warning and traceback stay silent; the refusal names the objective and what exists."""
    from bsp_cli.main import main

    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({"model": str(tiny_model_dir), "accuracy": "none", "blocks": ["8x8"],
                                          "sparsities": [0.0, 0.5], "configs": ["asic-16x16-int8"],
                                          "seq_lens": [8]}))  # fmt: skip
    assert main(["search", str(space_file), "--trials", "3", "--objectives", "accuracy:max", "--out",
                 str(tmp_path / "a"), "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "objectives: 'accuracy' needs a space with an accuracy source" in err and not (tmp_path / "a").exists()
    assert main(["search", str(space_file), "--trials", "3", "--objectives", "latency_ms:min", "--out",
                 str(tmp_path / "b"), "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "objectives: ['latency_ms'] not columns of a sweep point" in err and "'latency_s'" in err
    assert "Traceback" not in err and "Trial" not in err and err.count("\n") == 1


def test_search_takes_area_as_an_objective(tiny_model_dir, tmp_path):
    from analysis.pareto import pareto_front
    from analysis.search import search

    space = space_for(tiny_model_dir, configs=["asic-16x16-int8"], sparsities=[0.0, 0.5],
                      hardware_axes={"pe_array.rows,pe_array.cols": [[8, 8], [16, 16], [32, 32]]})  # fmt: skip
    objectives = {"latency_s": "min", "area_mm2": "min"}
    found = search(space, trials=20, objectives=objectives, out_dir=tmp_path / "s", progress=False)
    full = sweep(space, out_dir=tmp_path / "s", progress=False)
    assert set(pareto_front(found, objectives)["point_id"]) == set(pareto_front(full, objectives)["point_id"])
    assert full.groupby("pe_array.rows")["area_mm2"].first().is_monotonic_increasing


def test_tampered_store_lines_are_reported_by_line_and_their_points_evaluated_again(tiny_model_dir, tmp_path,
                                                                                    caplog):
    space = space_for(tiny_model_dir, blocks=["8x8"], sparsities=[0.0, 0.5], configs=["asic-16x16-int8"])
    first = sweep(space, out_dir=tmp_path / "out", progress=False).set_index("point_id")
    store = tmp_path / "out" / "points.jsonl"
    lines = store.read_text().splitlines()
    record = json.loads(lines[0])
    tampered = {**record, "cycles": -5, "energy_pj": "abc"}
    store.write_text("\n".join([json.dumps(tampered), "[" * 100_000, "[1, 2, 3]", *lines[1:]]) + "\n")
    with caplog.at_level("WARNING"):
        again = sweep(space, out_dir=tmp_path / "out", progress=False).set_index("point_id")
    warned = " ".join(r.getMessage() for r in caplog.records)
    for line_no, why in ((1, "cycles is -5"), (2, "expected a JSON object"), (3, "expected a JSON object")):
        assert f"points.jsonl:{line_no}: skipped ({why}" in warned
    assert again.attrs["evaluated_now"] == 1  # the tampered point, evaluated again; the others reused
    assert again.loc[record["point_id"], "cycles"] == first.loc[record["point_id"], "cycles"]


def test_a_store_that_is_a_symbolic_link_is_refused(tiny_model_dir, tmp_path):
    space = space_for(tiny_model_dir, blocks=["8x8"], sparsities=[0.0], configs=["asic-16x16-int8"])
    sweep(space, out_dir=tmp_path / "out", progress=False)
    store = tmp_path / "out" / "points.jsonl"
    store.rename(tmp_path / "real.jsonl")
    store.symlink_to(tmp_path / "real.jsonl")
    with pytest.raises(ValueError, match="is a symbolic link"):
        sweep(space, out_dir=tmp_path / "out", progress=False)


@pytest.mark.parametrize("answer", [b"", b"SSH-2.0-OpenSSH_9.2\r\n"])
def test_an_address_where_no_dask_scheduler_answers_is_refused_in_bounded_time(tiny_model_dir, tmp_path, answer):
    """An HTTP server says nothing until asked; a banner reads as an absurd frame size. Neither hangs."""
    import socket
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        connection, _ = server.accept()
        connection.sendall(answer)
        time.sleep(3)
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    start = time.monotonic()
    with pytest.raises(ValueError, match="but not a Dask scheduler"):
        from analysis.executor import _check_dask_handshake

        _check_dask_handshake(f"tcp://127.0.0.1:{port}", timeout_s=1.0)
    assert time.monotonic() - start < 5
    server.close()


def test_a_real_scheduler_passes_the_handshake_check():
    from dask.distributed import LocalCluster

    from analysis.executor import _check_dask_handshake

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        _check_dask_handshake(cluster.scheduler_address, timeout_s=5.0)


def test_a_garbage_cache_record_is_named_and_its_point_computed_again(tiny_model_dir, tmp_path, caplog):
    space = space_for(tiny_model_dir, blocks=["8x8"], sparsities=[0.5], configs=["asic-16x16-int8"])
    first = sweep(space, out_dir=tmp_path / "out", progress=False)
    record = next((tmp_path / "out" / "cache").glob("*/point.json"))
    record.write_bytes(b"\x00garbage{")
    (tmp_path / "out" / "points.jsonl").unlink()  # so that the point is simulated, and its record read, again
    with caplog.at_level("WARNING"):
        again = sweep(space, out_dir=tmp_path / "out", progress=False)
    assert f"cache record {record} is not a JSON object" in caplog.text
    assert again["cycles"].tolist() == first["cycles"].tolist() and json.loads(record.read_text())["block"] == "8x8"


def test_rows_without_an_accuracy_are_named_counted_and_noted_in_the_report(tiny_model_dir, tmp_path, capsys):
    """An accuracy table that lacks a combination: a note naming it, a count in the summary, and the report
    counts the points it draws."""
    from analysis.report import build_report
    from bsp_cli.main import main

    table_file = tmp_path / "acc.csv"
    table_file.write_text("block,granularity,target_sparsity,method,accuracy\ndense,none,0.0,dense,0.8\n"
                          "8x8,block,0.5,score,0.7\n")  # fmt: skip
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({"model": str(tiny_model_dir), "accuracy": f"table:{table_file}",
                                          "blocks": ["8x8", "16x16"], "sparsities": [0.0, 0.5],
                                          "configs": ["asic-16x16-int8"], "seq_lens": [16]}))  # fmt: skip
    assert main(["sweep", str(space_file), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "3 points: 3 evaluated (1 without accuracy)" in out
    assert "note: 1 of 3 rows have no accuracy from table:" in err and "16x16 block 0.5 score (1 rows)" in err
    page = build_report(tmp_path / "out", tmp_path / "r.html", detail=0).read_text()
    assert "2 points (1 without accuracy, not plotted)" in page
    assert main(["pareto", str(tmp_path / "out"), "--objectives", "accuracy:max,latency_s:min"]) == 0
    assert "note: 1 of 3 rows have no accuracy and are on no front" in capsys.readouterr().err


def test_paths_in_a_sweep_file_are_relative_to_the_file(tiny_model_dir, tmp_path, monkeypatch, caplog):
    from analysis.space import load_space

    project = tmp_path / "project"
    project.mkdir()
    (project / "my-array.yaml").write_text(load_config("asic-16x16-int8").to_yaml())
    (project / "acc.csv").write_text("block,granularity,target_sparsity,method,accuracy\n")
    (project / "space.yaml").write_text(yaml.safe_dump({
        "model": str(tiny_model_dir), "configs": ["my-array.yaml", "asic-32x32-int8"], "accuracy": "table:acc.csv"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    space = load_space(project / "space.yaml")
    assert space.configs == [str(project / "my-array.yaml"), "asic-32x32-int8"]
    assert space.accuracy == f"table:{project / 'acc.csv'}"
    # the older rule still works where only the working directory has the file, with a warning
    (elsewhere / "cwd-array.yaml").write_text(load_config("asic-16x16-int8").to_yaml())
    (project / "space.yaml").write_text(yaml.safe_dump({"model": str(tiny_model_dir),
                                                        "configs": ["cwd-array.yaml"], "accuracy": "none"}))
    with caplog.at_level("WARNING"):
        assert load_space(project / "space.yaml").configs == ["cwd-array.yaml"]
    assert "configs entry 'cwd-array.yaml' was found relative to the working directory" in caplog.text
