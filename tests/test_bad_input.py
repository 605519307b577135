"""Hostile and careless input against every entry point: one test per finding of the bad-input review.

Each case states what must happen: exit code 2 (or a ``ValueError`` from the API) with a message naming
the field/file, nothing outside ``--out`` written, nothing that existed before deleted or changed. Cases
that could destroy data if a guard regressed stop before any work: ``run_pruning`` is replaced by a
function that fails the test, so a guard that lets the target through is caught before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import tiny_classifier, tiny_text_task

from analysis.store import ResultStore, write_table_atomic
from analysis.sweep import sweep
from bsp_cli import main
from bsp_common.outputs import (
    MARKER_FILENAME,
    OutputError,
    atomic_output_dir,
    check_output_dir,
    read_marker,
    umask_mode,
)
from bsp_common.strict_json import dumps
from hwsim import load_config
from pruning import BlockPruner, PruneSettings, save_pruned


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove nothing was deleted or changed)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a command gets as far as training (its guards must refuse before)."""

    def refuse(*args, **kwargs):
        raise AssertionError("run_pruning was reached: the output guard let the target through")

    monkeypatch.setattr("pruning.train.run_pruning", refuse)


@pytest.fixture
def text_task(tmp_path):
    return tiny_text_task(tmp_path / "task")


@pytest.fixture
def pruned_with_tokenizer(tmp_path, text_task):
    from transformers import AutoTokenizer

    model_dir, _ = text_task
    model = tiny_classifier("bert", num_labels=2)
    settings = PruneSettings(block="8x8", method="score", target_sparsity=0.5)
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    pruner.prune()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return save_pruned(tmp_path / "pruned", model, pruner.finalize(), settings, tokenizer=tokenizer)


def scalesim_cfg(root: Path, rows: int, extra: str = "") -> Path:
    """A minimal SCALE-Sim .cfg for a rows x rows ws array (64 KiB SRAMs)."""
    path = root / "arch.cfg"
    path.write_text(f"[architecture_presets]\nArrayHeight: {rows}\nArrayWidth: {rows}\nIfmapSramSzkB: 64\n"
                    f"FilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: ws\n{extra}")  # fmt: skip
    return path


def prune_argv(text_task, out) -> list[str]:
    model_dir, glue_dir = text_task
    return ["prune", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
            "--block", "4x4", "--method", "score", "--target-sparsity", "0.5", "--epochs", "1",
            "--max-train-samples", "8", "--batch-size", "8", "--out", str(out)]  # fmt: skip


# -- 1. output ownership --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/", "HOME", "CWD", "CWD_PARENT"])
def test_prune_refuses_root_home_and_cwd_before_any_work(target, text_task, tmp_path, monkeypatch, capsys,
                                                         no_training):  # fmt: skip
    home, work = tmp_path / "home", tmp_path / "home" / "work"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    out = {"/": "/", "HOME": str(home), "CWD": ".", "CWD_PARENT": ".."}[target]
    before = snapshot(home)
    assert main(prune_argv(text_task, out)) == 2
    err = capsys.readouterr().err
    assert "bsp never writes there" in err and "--out" in err
    assert snapshot(home) == before


def test_export_to_cwd_keeps_the_users_files(pruned_with_tokenizer, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.c").write_text("int main(void) { return 0; }\n")
    (work / "results.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(work)
    assert main(["export", "--model", str(pruned_with_tokenizer), "--config", "asic-16x16-int8", "--out", "."]) == 2
    assert "current directory" in capsys.readouterr().err
    assert sorted(p.name for p in work.iterdir()) == ["main.c", "results.csv"]


@pytest.mark.parametrize(("options", "notes"), [
    (["--method", "score", "--lam", "5", "--nm", "1:4"],
     ["--nm 1:4 has no effect with --method score (it applies to nm)",
      "--lam 5.0 has no effect with --method score (it applies to reweighted and group-lasso)"]),
    (["--method", "unstructured", "--block", "8x8", "--eps", "0.5"],
     ["--eps 0.5 has no effect with --method unstructured (it applies to reweighted)",
      "--block 8x8 has no effect with --method unstructured (it applies to reweighted, group-lasso and score)"]),
    (["--method", "reweighted", "--block", "8x8", "--lam", "5", "--eps", "0.5"], []),
])  # fmt: skip
def test_options_the_method_does_not_read_are_named(text_task, tmp_path, capsys, monkeypatch, options, notes):
    def stop(*args, **kwargs):
        raise ValueError("stopped before training")

    monkeypatch.setattr("pruning.train.run_pruning", stop)
    model_dir, glue_dir = text_task
    argv = ["prune", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
            "--target-sparsity", "0.5", "--out", str(tmp_path / "out"), *options]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert [line.removeprefix("note: ") for line in err.splitlines() if line.startswith("note: ")] == notes


@pytest.mark.parametrize(("data", "message"), [
    (["--data", "glue:foo"], r"glue: unknown task 'foo'; allowed: cola"),
    (["--data", "bogus"], r"data: unknown dataset 'bogus'; allowed: sentiment, bbc, glue:TASK"),
    (["--data", "glue:sst-2", "--glue-dir", "nowhere"], r"glue: no train.tsv for task 'sst-2' under nowhere"),
])  # fmt: skip
def test_prune_refuses_data_it_cannot_read_without_leaving_an_output(text_task, tmp_path, capsys, data, message):
    model_dir, glue_dir = text_task
    argv = ["prune", "--model", str(model_dir), "--glue-dir", str(glue_dir), "--target-sparsity", "0.5",
            "--out", str(tmp_path / "out"), *data]  # fmt: skip
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_prune_into_a_users_directory_is_refused_before_loading(text_task, tmp_path, capsys, no_training):
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("keep me")
    assert main(prune_argv(text_task, user_dir)) == 2
    assert "bsp did not write" in capsys.readouterr().err
    assert (user_dir / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in user_dir.iterdir()) == ["notes.txt"]


def test_export_onto_its_own_model_is_refused(pruned_with_tokenizer, capsys):
    before = snapshot(pruned_with_tokenizer)
    argv = ["export", "--model", str(pruned_with_tokenizer), "--config", "asic-16x16-int8"]
    assert main([*argv, "--out", str(pruned_with_tokenizer), "--overwrite"]) == 2
    assert "is (or contains) the input" in capsys.readouterr().err
    assert main([*argv, "--out", str(pruned_with_tokenizer.parent)]) == 2  # a parent of the model, too
    assert snapshot(pruned_with_tokenizer) == before


def test_overwrite_replaces_only_bsp_outputs_of_the_same_kind(tmp_path):
    out = tmp_path / "model"
    with atomic_output_dir(out, "pruned-model") as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(OutputError, match="pass --overwrite"):
        check_output_dir(out, "pruned-model")
    with pytest.raises(OutputError, match="holds a bsp pruned-model output, not a rtl-export"):
        check_output_dir(out, "rtl-export", overwrite=True)
    with pytest.raises(RuntimeError), atomic_output_dir(out, "pruned-model", overwrite=True) as tmp:
        (tmp / "v").write_text("2")
        raise RuntimeError("killed mid-write")
    assert (out / "v").read_text() == "1"  # a failed replacement leaves the old output untouched
    with atomic_output_dir(out, "pruned-model", overwrite=True) as tmp:
        (tmp / "v").write_text("2")
    assert (out / "v").read_text() == "2"
    assert read_marker(out)["kind"] == "pruned-model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or set-aside directory left


def test_empty_directory_is_a_valid_target_and_existing_file_is_not(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_output_dir(tmp_path / "empty", "figures") as tmp:
        (tmp / "a.png").write_bytes(b"x")
    assert (tmp_path / "empty" / "a.png").is_file()
    (tmp_path / "file").write_text("data")
    with pytest.raises(OutputError, match="is a file"):
        check_output_dir(tmp_path / "file" / "sub", "figures")


# -- 2. bounded inputs ----------------------------------------------------------------------------------------


def test_billion_laughs_config_is_refused_quickly(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bsp_cli", "configs", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert "expands to more than" in proc.stderr and str(path) in proc.stderr
    assert len(proc.stderr) < 2000
    assert time.perf_counter() - start < 60


def test_huge_topology_is_refused_with_the_estimate(tmp_path, capsys):
    cfg = scalesim_cfg(tmp_path, rows=32)
    topo = tmp_path / "topo.csv"
    topo.write_text("Layer name, M, N, K,\nhuge, 1000000, 100000, 100000,\n")
    assert main(["simulate", "--scalesim-cfg", str(cfg), "--topology", str(topo)]) == 2
    err = capsys.readouterr().err
    # ceil(1e5/32)^2 folds per pass, and ceil(1e6/256) passes: a 32 KiB slot of the 64 KiB double-buffered
    # output SRAM holds 256 token rows of 32 columns of 32-bit partial sums (buffer-aware tiling)
    assert f"{3125**2 * 3907:,} array folds" in err and "--max-folds" in err


def test_huge_sweep_is_refused_unless_confirmed(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"accuracy": "none", "blocks": [f"{b}x{b}" for b in (2, 4, 8, 16, 32)],
                                     "sparsities": [round(0.001 * i, 3) for i in range(1, 900)],
                                     "configs": ["asic-16x16-int8", "asic-32x32-int8"],
                                     "seq_lens": list(range(16, 16 + 100))}))  # fmt: skip
    start = time.perf_counter()
    assert main(["sweep", str(space), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "the space has 899,000 points" in err and "--yes" in err
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "out").exists()


# -- 3. strict numbers ----------------------------------------------------------------------------------------


def preset_with(tmp_path, path: str, value) -> Path:
    data = yaml.safe_load(load_config("asic-16x16-int8").to_yaml())
    node = data
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[int(key) if key.isdigit() else key]
    node[int(leaf) if leaf.isdigit() else leaf] = value
    out = tmp_path / "c.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("energy.static_power_mw", float("nan"), "finite"),
        ("energy.mac_pj", float("inf"), "finite"),
        ("vector_unit.cycles_per_element.softmax", float("nan"), "finite"),
        ("buffers.weight_bytes", 10**25, "less than or equal to 1099511627776"),
        ("pe_array.rows", True, "valid integer"),
        ("pe_array.rows", 1.7, "valid integer"),
        ("clock_mhz", "fast", "valid number"),
        ("dram.bw_bytes_per_cycle", 1e300, "less than or equal"),
    ],
)
def test_config_numbers_are_strict(tmp_path, field, value, message, capsys):
    path = preset_with(tmp_path, field, value)
    assert main(["configs", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert field in err and message in err


@pytest.mark.parametrize(("cell", "message"), [("1.7", "got '1.7'"), ("inf", "got 'inf'"), ("-4", "got '-4'"),
                                               ("true", "got 'true'")])  # fmt: skip
def test_topology_dimensions_are_whole_positive_numbers(tmp_path, cell, message, capsys):
    topo = tmp_path / "topo.csv"
    topo.write_text(f"Layer name, M, N, K,\nfc, 16, {cell}, 16,\n")
    assert main(["simulate", "--config", "asic-16x16-int8", "--topology", str(topo)]) == 2
    err = capsys.readouterr().err
    assert f"{topo}:2: field 3 must be a whole number" in err and message in err


@pytest.mark.parametrize("option", [["--seq-len", "0"], ["--seq-len", "1e9"], ["--batch", "2.5"], ["--batch", "-1"]])
def test_simulate_shape_options_are_bounded(tmp_path, option, capsys):
    config = tmp_path / "config.json"
    tiny_classifier("bert").config.to_json_file(config)
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--config", "asic-16x16-int8", "--hf-config", str(config), *option])
    assert exit_info.value.code == 2
    assert option[0] in capsys.readouterr().err


def test_target_sparsity_that_empties_a_layer_is_refused(text_task, tmp_path, capsys):
    argv = prune_argv(text_task, tmp_path / "out")
    argv[argv.index("--target-sparsity") + 1] = "0.99999999"
    assert main(argv) == 2
    assert "leaves the layer empty; use at most" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_json_written_by_bsp_is_always_json():
    text = dumps({"compression_rate": float("inf"), "accuracy": float("nan"), "ok": 1.5})
    assert json.loads(text) == {"compression_rate": None, "accuracy": None, "ok": 1.5}
    assert "Infinity" not in text and "NaN" not in text


# -- 4. consistency of saved models --------------------------------------------------------------------------


def test_simulate_refuses_tampered_weights_and_missing_masks(pruned_with_tokenizer, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    weights_path = pruned_with_tokenizer / "model.safetensors"
    tensors = load_file(weights_path)
    name = "bert.encoder.layer.0.attention.self.query.weight"
    tensors[name] = tensors[name] + 1.0  # pruned positions are no longer zero
    save_file(tensors, weights_path, metadata={"format": "pt"})
    argv = ["simulate", "--config", "asic-16x16-int8", "--model", str(pruned_with_tokenizer), "--seq-len", "8"]
    assert main(argv) == 2
    assert "does not match its masks" in capsys.readouterr().err
    (pruned_with_tokenizer / "block_masks.safetensors").unlink()
    assert main(argv) == 2
    assert "no block_masks.safetensors although its pruning_config.json says it was pruned" in capsys.readouterr().err


def test_simulate_says_dense_for_a_plain_model(tmp_path, capsys):
    plain = tmp_path / "plain"
    tiny_classifier("bert").save_pretrained(plain)
    assert main(["simulate", "--config", "asic-16x16-int8", "--model", str(plain), "--seq-len", "8", "--json"]) == 0
    captured = capsys.readouterr()
    assert "simulating the dense model" in captured.err
    assert json.loads(captured.out)["total"]["cycles"] > 0


# -- 5. tracebacks become exit 2 ------------------------------------------------------------------------------


def test_pareto_refuses_repeated_objectives_and_non_numeric_cells(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("cycles,accuracy\n10,0.5\nfast,0.7\n20,0.9\n")
    assert main(["pareto", str(table), "--objectives", "cycles:min,cycles:max"]) == 2
    assert "'cycles' given more than once" in capsys.readouterr().err
    assert main(["pareto", str(table), "--objectives", "cycles:min,accuracy:max"]) == 2
    assert "column 'cycles' holds a non-numeric value 'fast' in row 1" in capsys.readouterr().err


def test_sweep_budget_is_validated_at_load(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("accuracy: none\nbudget: 5\n")
    assert main(["sweep", str(space), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "sweep.budget: expected a mapping" in capsys.readouterr().err
    space.write_text("accuracy: none\nbudget: {epochs: .nan}\n")
    assert main(["sweep", str(space), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "budget.epochs: must be a number" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failed_points_are_retried_on_resume(tmp_path):
    store = ResultStore(tmp_path / "points.jsonl")
    store.append({"point_id": "a", "error": "RuntimeError: flaky"})
    store.append({"point_id": "b", "cycles": 5, "error": None})
    assert store.done_ids() == {"b"} and store.failed_ids() == {"a"}
    store.append({"point_id": "a", "cycles": 7, "error": None})
    store.append({"point_id": "a", "error": "RuntimeError: later failure"})  # a success is final
    table = store.load().set_index("point_id")
    assert store.done_ids() == {"a", "b"} and table.loc["a", "cycles"] == 7 and len(table) == 2


@pytest.mark.parametrize("command", ["prune", "sweep", "plot", "pareto", "simulate-csv"])
def test_out_of_the_wrong_type_is_refused_before_loading(command, text_task, tmp_path, capsys, no_training):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    table = tmp_path / "t.csv"
    table.write_text("cycles,accuracy\n10,0.5\n")
    config = tmp_path / "config.json"
    tiny_classifier("bert").config.to_json_file(config)
    argv = {
        "prune": prune_argv(text_task, tmp_path / "a_file"),
        "sweep": ["sweep", "--out", str(tmp_path / "a_file"), "--no-progress"],
        "plot": ["plot", str(table), "--out", str(tmp_path / "a_file")],
        "pareto": ["pareto", str(table), "--objectives", "cycles:min", "--out", str(tmp_path / "a_dir")],
        "simulate-csv": ["simulate", "--config", "asic-16x16-int8", "--hf-config", str(config),
                         "--csv", str(tmp_path / "a_dir")],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is a file" in err or "is a directory" in err or "bsp did not write" in err
    assert (tmp_path / "a_file").read_text() == "x" and not any((tmp_path / "a_dir").iterdir())


def test_plot_of_a_table_with_nothing_to_draw_is_refused_without_an_output(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    assert main(["plot", str(table), "--out", str(tmp_path / "figs")]) == 2
    assert "has none of the columns any figure needs" in capsys.readouterr().err
    assert not (tmp_path / "figs").exists()


def test_simulate_csv_does_not_overwrite_without_asking(tmp_path, capsys):
    config = tmp_path / "config.json"
    tiny_classifier("bert").config.to_json_file(config)
    csv = tmp_path / "ops.csv"
    csv.write_text("mine\n")
    argv = ["simulate", "--config", "asic-16x16-int8", "--hf-config", str(config), "--seq-len", "8", "--csv", str(csv)]
    assert main(argv) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and csv.read_text() == "mine\n"
    assert main([*argv, "--overwrite"]) == 0
    assert csv.read_text().startswith("op,layer")


def test_unreadable_files_get_one_line_naming_the_file(pruned_with_tokenizer, tmp_path, capsys, caplog):
    weights = pruned_with_tokenizer / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    assert main(["export", "--model", str(pruned_with_tokenizer), "--config", "asic-16x16-int8",
                 "--out", str(tmp_path / "rtl")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert str(pruned_with_tokenizer) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    (pruned_with_tokenizer / "config.json").write_text("{not json")
    assert main(["export", "--model", str(pruned_with_tokenizer), "--config", "asic-16x16-int8",
                 "--out", str(tmp_path / "rtl")]) == 2  # fmt: skip
    assert "config.json is not a readable model config" in capsys.readouterr().err
    store = tmp_path / "sweep"
    store.mkdir()
    (store / MARKER_FILENAME).write_text('{"kind": "sweep"}')
    (store / "points.jsonl").write_text("[1,2,3]\n")  # reported once by line and skipped: the sweep runs
    with caplog.at_level("WARNING"):
        assert main(["sweep", "--out", str(store), "--no-progress"]) == 0
    capsys.readouterr()
    assert caplog.text.count("points.jsonl:1: skipped (expected a JSON object with a 'point_id', got [1, 2, 3])") == 1
    for name, argv in (("c.yaml", ["configs", "validate"]), ("s.yaml", ["sweep"]),
                       ("t.csv", ["simulate", "--config", "asic-16x16-int8", "--topology"])):  # fmt: skip
        path = tmp_path / name
        path.write_bytes(b"\xff\xfe rows: 4\n")
        extra = ["--out", str(tmp_path / "o"), "--no-progress"] if argv == ["sweep"] else []
        assert main([*argv, str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "not UTF-8" in err
    cfg = scalesim_cfg(tmp_path, rows=4, extra="Bandwidth: abc\n")
    topo = tmp_path / "ok.csv"
    topo.write_text("Layer name, M, N, K,\na, 16, 16, 16,\n")
    assert main(["simulate", "--scalesim-cfg", str(cfg), "--topology", str(topo)]) == 2
    assert f"scalesim cfg {cfg}: [architecture_presets] Bandwidth must be a positive number" in capsys.readouterr().err


def test_internal_errors_are_one_line_unless_verbose(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr("bsp_cli.commands.configs.run", broken)
    assert main(["configs", "list"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "bsp configs: internal error: RuntimeError: boom (run with -v for the traceback)"
    assert main(["-v", "configs", "list"]) == 1
    assert "Traceback" in capsys.readouterr().err


# -- kills, locks, workers, modes -----------------------------------------------------------------------------


def test_stale_temporary_directories_of_killed_runs_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.bsp-tmp-{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / MARKER_FILENAME).write_text('{"kind": "pruned-model"}')
    foreign = tmp_path / f".model.bsp-tmp-{int(dead.stdout)}-xyz"  # no marker: not ours, never removed
    foreign.mkdir()
    with atomic_output_dir(tmp_path / "model", "pruned-model") as tmp:
        (tmp / "w").write_text("1")
    assert not stale.exists() and foreign.exists()


def test_a_symlinked_results_store_in_a_sweep_directory_is_refused_not_followed(tmp_path):
    model_dir = tmp_path / "tiny"
    tiny_classifier("bert").save_pretrained(model_dir)
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER_FILENAME).write_text('{"kind": "sweep"}')
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    (out / "points.jsonl").symlink_to(outside)
    space = {"model": str(model_dir), "accuracy": "none", "blocks": ["8x8"], "sparsities": [0.5],
             "configs": ["asic-16x16-int8"], "seq_lens": [8]}  # fmt: skip
    from analysis import SweepSpace

    with pytest.raises(ValueError, match=r"points.jsonl: is a symbolic link"):
        sweep(SweepSpace(**space), out_dir=out, progress=False)
    assert outside.read_text() == "keep me\n"


def test_pool_workers_die_with_a_killed_parent(tmp_path):
    pids = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import os, time
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        from analysis.executor import _init_worker

        def work(i):
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(60)

        if __name__ == "__main__":
            with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=_init_worker,
                                     initargs=(os.getpid(), None)) as pool:
                list(pool.map(work, range(2)))
    """)
    path = tmp_path / "parent.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path)], cwd=os.getcwd())
    deadline = time.time() + 60
    while time.time() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.1)
    workers = [int(p) for p in pids.read_text().split()]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    alive = workers
    while alive and time.time() < deadline:
        alive = [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
        time.sleep(0.1)
    assert alive == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output_dir(tmp_path / "out", "figures") as tmp:
            (tmp / "f").write_text("1")
        write_table_atomic(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
        assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755 == umask_mode("dir")
        assert (tmp_path / "t.csv").stat().st_mode & 0o777 == 0o644 == umask_mode("file")
    finally:
        os.umask(old)


def _bert(**dims):
    from transformers import BertConfig

    return BertConfig(**{"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1,
                         "intermediate_size": 64, **dims})  # fmt: skip


def _gemm(**kwargs):
    from hwsim.workload import Gemm

    return Gemm("g", 4, 4, 4, **kwargs)


def _workload(**dims):
    from hwsim.workload import build_workload

    return build_workload(_bert(**dims), seq_len=8)


def _empty_mask():
    import torch

    from pruning.masks import BlockMask
    from pruning.spec import BlockSpec, Granularity

    return BlockMask(torch.ones(0, 0, dtype=torch.bool), BlockSpec(4, 4), Granularity.BLOCK, (0, 0))


def _space(**kwargs):
    from analysis.space import SweepSpace

    return SweepSpace(accuracy="none", **kwargs)


def _load_space_text(tmp_path, text: str):
    from analysis import load_space

    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return load_space(path)


def _load_config(value):
    from hwsim.config import load_config

    return load_config(value)


def _simulate(workload):
    from hwsim import simulate

    return simulate("asic-16x16-int8", workload)


def _workload_with_masks(masks):
    from hwsim.workload import build_workload

    return build_workload(_bert(), masks, seq_len=8)


def _pareto_front(table):
    from analysis.pareto import pareto_front

    return pareto_front(table, "a:min")


def _sweep(space, out_dir):
    from analysis import sweep

    return sweep(space, out_dir=out_dir, progress=False)


def _pruner(settings):
    from pruning import BlockPruner

    return BlockPruner(settings)


def _prepare(model):
    from pruning import BlockPruner, PruneSettings

    return BlockPruner(PruneSettings(block="8x8", target_sparsity=0.5)).prepare(model)


API_ROUND_TWO = {  # hardening round two, API cases: the call (given tmp_path) and what its message must say
    "gemm negative bits": (lambda _: _gemm(weight_bits=-8), r"weight_bits must be an integer in \[1, 64\], got -8"),
    "gemm zero act bits": (lambda _: _gemm(act_bits=0), r"act_bits must be an integer in \[1, 64\], got 0"),
    "gemm zero block": (lambda _: _gemm(block=(0, 0)), r"block must be \(rows, cols\) of positive integers"),
    "gemm text block": (lambda _: _gemm(block="16x16"), r"block must be .* got '16x16'"),
    "load_config of a number": (lambda _: _load_config(123), r"expected a preset name, a YAML path .* got int"),
    "block mask of an empty weight": (lambda _: _empty_mask(), r"weight_shape: must be \(out_features, in_features\)"),
    "heads that do not divide hidden": (lambda _: _workload(num_attention_heads=3),
                                        r"hidden_size 32 is not a multiple of num_attention_heads 3"),
    "five million layers": (lambda _: _workload(num_hidden_layers=5_000_000),
                            r"num_hidden_layers must be at most 10,000 .* got 5,000,000"),
    "NaN in a hardware axis": (lambda _: _space(hardware_axes={"clock_mhz": [200, float("nan")]}),
                               r"sweep.hardware_axes.clock_mhz: values must be finite numbers"),
    "inf in a tied hardware axis": (lambda _: _space(hardware_axes={"pe_array.rows,pe_array.cols": [[16, math.inf]]}),
                                    r"sweep.hardware_axes.pe_array.rows,pe_array.cols: values must be finite"),
    "zero rows in a hardware axis": (lambda _: _space(hardware_axes={"pe_array.rows": [16, 0]}),
                                     r"sweep.hardware_axes.pe_array.rows: Input should be greater than 0 \(got 0\)"),
    "bad size in a tied axis": (lambda _: _space(hardware_axes={"pe_array.rows,buffers.weight_bytes": [[16, "1 XB"]]}),
                                r"pe_array.rows,buffers.weight_bytes: buffers.weight_bytes: expected a size"),
    "simulate a list of GEMMs": (lambda _: _simulate([_gemm()]), r"workload: expected a hwsim Workload .* got list"),
    "masks given as a path": (lambda _: _workload_with_masks("masks.safetensors"),
                              r"masks: expected a mapping of weight name -> BlockMask .* got str"),
    "pareto of a list": (lambda _: _pareto_front([1, 2]), r"table: expected a pandas DataFrame .* got list"),
    "sweep into no directory": (lambda _: _sweep(_space(), None), r"--out: expected a directory path, got NoneType"),
    "sweep space of a number": (lambda _: _sweep(3, "out"), r"sweep space: expected a SweepSpace, a dict .* got int"),
    "pruner of a dict": (lambda _: _pruner({"block": "8x8"}), r"settings: expected a PruneSettings.* got dict"),
    "pruner on a path": (lambda _: _prepare("model_dir"), r"model: expected a torch nn.Module .* got str"),
    "sweep file that is a list": (lambda tmp: _load_space_text(tmp, "[]\n"), r"sweep.yaml: expected a mapping, got "
                                  "list"),
    "sweep file that is false": (lambda tmp: _load_space_text(tmp, "false\n"), r"sweep.yaml: expected a mapping, got "
                                 "bool"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(API_ROUND_TWO))
def test_api_bad_input_round_two_is_refused_by_name(name, tmp_path):
    call, message = API_ROUND_TWO[name]
    with pytest.raises((ValueError, TypeError), match=message):
        call(tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", r"nested deeper than 64 levels"),
    ("x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 80)) + "  " * 80 + "v: 1\n", r"nested deeper than 64"),
    ("clock_mhz: 1000\nname: a\nclock_mhz: 5\n", r"key 'clock_mhz' appears twice in one mapping \(line 3\)"),
])  # fmt: skip
def test_deep_and_repeated_yaml_is_refused_with_the_reason(text, message):
    from bsp_common.safe_yaml import YamlInputError, load_yaml_text

    with pytest.raises(YamlInputError, match=message):
        load_yaml_text(text, "in.yaml")


def test_a_deeply_nested_config_json_is_one_clear_error(tmp_path):
    from hwsim.workload import read_hf_config

    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"hf config .*config.json: not a JSON object"):
        read_hf_config(tmp_path)


def test_file_outputs_never_replace_inputs_links_or_each_other(tmp_path, capsys):
    model_dir = tmp_path / "tiny"
    tiny_classifier("bert").save_pretrained(model_dir)
    weights = model_dir / "model.safetensors"
    before = weights.read_bytes()
    simulate = ["simulate", "--config", "asic-16x16-int8", "--model", str(model_dir), "--seq-len", "8"]
    cases = [
        ([*simulate, "--trace", str(weights), "--overwrite"],
         r"--trace: .*model.safetensors' is \(or is inside\) the input"),
        ([*simulate, "--csv", str(tmp_path / "o.csv"), "--trace", str(tmp_path / "o.csv")],
         r"--csv: .*o.csv' is also the --trace output"),
    ]  # fmt: skip
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere" / "x.csv")
    cases.append(([*simulate, "--csv", str(dangling)], r"--csv: .*dangling.csv' is a symbolic link"))
    table = tmp_path / "results.csv"
    table.write_text("accuracy,cycles\n0.9,10\n0.8,5\n")
    cases.append((["pareto", str(table), "--objectives", "accuracy:max,cycles:min", "--out", str(table),
                   "--overwrite"], r"--out: .*results.csv' is \(or is inside\) the input"))  # fmt: skip
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert re.search(message, capsys.readouterr().err), argv
    assert weights.read_bytes() == before and dangling.is_symlink() and not (tmp_path / "nowhere").exists()
    assert table.read_text() == "accuracy,cycles\n0.9,10\n0.8,5\n"


def test_a_cache_dir_that_is_a_file_is_named_before_anything_is_written(text_task, tmp_path, capsys):
    blocker = tmp_path / "cache-file"
    blocker.write_text("not a directory")
    assert main([*prune_argv(text_task, tmp_path / "out"), "--cache-dir", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"--cache-dir: .*cache-file is a file, not a directory", err), err
    assert not (tmp_path / "out").exists() and blocker.read_text() == "not a directory"


@pytest.mark.parametrize(("split", "content", "message"), [
    ("train.tsv", b"sentence\tlabel\n", r"train.tsv has a header but no examples"),
    ("train.tsv", b"", r"train.tsv is empty"),
    ("dev.tsv", b"sentence\tlabel\ngood movie\t1\n", r"dev.tsv has 1 example; it needs at least 2"),
    ("train.tsv", b"sentence\tlabel\ngood movie\t1\tx\ty\n", r"train.tsv:2: 4 tab-separated fields, the header has 2"),
    ("train.tsv", b"sentence\tlabel\nbon\xe9 film\t1\n", r"train.tsv is not UTF-8 text \(byte \d+\)"),
])  # fmt: skip
def test_broken_glue_splits_are_named(tmp_path, split, content, message):
    from pruning.data import load_dataset

    task = tmp_path / "SST-2"
    task.mkdir()
    good = b"sentence\tlabel\ngood movie\t1\nbad plot\t0\n"
    for name in ("train.tsv", "dev.tsv"):
        (task / name).write_bytes(content if name == split else good)
    with pytest.raises(ValueError, match=message):
        load_dataset("glue:sst-2", glue_dir=tmp_path)


@pytest.mark.parametrize("command", ["sweep", "simulate-csv"])
def test_a_symbolic_link_loop_as_the_output_is_named(tmp_path, capsys, command):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    argv = {"sweep": ["sweep", "--out", str(loop / "sub")],
            "simulate-csv": ["simulate", "--config", "asic-16x16-int8", "--hf-config", str(tmp_path / "none.json"),
                             "--csv", str(loop / "ops.csv")]}[command]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(r"(--out|--csv): .*loop.* cannot be resolved", err), err
    assert loop.is_symlink()


def test_a_truncated_weights_file_is_named_before_training(text_task, tmp_path, capsys):
    model_dir, _ = text_task
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert main(prune_argv(text_task, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert re.search(r"model: cannot read the weights in .*tiny .*truncated", err), err
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_location_is_refused_before_any_work(text_task, tmp_path, capsys, monkeypatch,
                                                                   no_training):  # fmt: skip
    import bsp_common.outputs as outputs

    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    # a read-only mount (EROFS) as root: os.access is what reports it; permissions cannot show it to root
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if Path(p) == read_only else real_access(p, mode))
    assert main(prune_argv(text_task, read_only / "out")) == 2
    assert re.search(r"--out: .*ro is not writable \(a read-only file system", capsys.readouterr().err)
    assert main(["pareto", str(tmp_path / "t.csv"), "--objectives", "a:min,b:min", "--out",
                 str(read_only / "front.csv")]) == 2  # fmt: skip
    assert "is not writable" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_pseudo_file_system_that_access_calls_writable_is_refused_before_any_work(tmp_path, capsys):
    """Root's os.access says /proc is writable; creating a file there fails. Found before simulating."""
    config = tmp_path / "config.json"
    tiny_classifier("bert").config.to_json_file(config)
    for option, target in (("--csv", "/proc/ops.csv"), ("--plot", "/proc/sub/layers")):
        argv = ["simulate", "--config", "asic-16x16-int8", "--hf-config", str(config), "--seq-len", "8", option, target]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{option}: " in err and "/proc is not writable" in err and "note:" not in err  # before the model


def test_a_name_longer_than_file_systems_allow_is_named_with_its_option(tmp_path, capsys):
    config = tmp_path / "config.json"
    tiny_classifier("bert").config.to_json_file(config)
    long = "a" * 300
    simulate = ["simulate", "--config", "asic-16x16-int8", "--hf-config", str(config), "--seq-len", "8"]
    for argv, option in (([*simulate, "--csv", str(tmp_path / f"{long}.csv")], "--csv"),
                         ([*simulate, "--plot", str(tmp_path / long / "layers")], "--plot"),
                         (["sweep", "--out", str(tmp_path / long), "--no-progress"], "--out")):  # fmt: skip
        assert main(argv) == 2
        assert re.search(rf"{option}: a name in the path is 30\d bytes long .* at most 255", capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    for argv, option in (([*simulate[:3], "--hf-config", str(tmp_path / f"{long}.json")], "--hf-config"),
                         (["pareto", str(tmp_path / f"{long}.csv"), "--objectives", "a:min"], "results")):  # fmt: skip
        assert main(argv) == 2  # an input: the system's refusal, named by the option that gave the path
        assert re.search(rf"error: {option}: File name too long: '.*\.\.\.a+\.(json|csv)'$", capsys.readouterr().err)


def test_a_swap_killed_between_its_renames_leaves_the_old_output_recoverable(tmp_path, monkeypatch):
    """Where the one-step exchange is unavailable, a kill between the two renames leaves the old output set
    aside; the next run puts it back under its own name instead of deleting it."""
    import bsp_common.outputs as outputs

    out = tmp_path / "model"
    with atomic_output_dir(out, "pruned-model") as tmp:
        (tmp / "v").write_text("old")
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    real_replace = os.replace

    def killed_after_the_first_rename(src, dst):
        real_replace(src, dst)
        if Path(src) == out:
            raise KeyboardInterrupt("SIGKILL stand-in: nothing after the first rename runs")

    monkeypatch.setattr(outputs.os, "replace", killed_after_the_first_rename)
    with pytest.raises(KeyboardInterrupt), atomic_output_dir(out, "pruned-model", overwrite=True) as tmp:
        (tmp / "v").write_text("new")
    monkeypatch.setattr(outputs.os, "replace", real_replace)
    assert not out.exists()  # the state a kill leaves: the old output aside, under a hidden name
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for aside in tmp_path.glob(".model.bsp-old-*"):  # as if its process were gone
        aside.rename(aside.with_name(f".model.bsp-old-{int(dead.stdout)}-x"))
    outputs._remove_stale_siblings(out)
    assert (out / "v").read_text() == "old" and read_marker(out)["kind"] == "pruned-model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_overwrite_swaps_in_one_step_where_the_kernel_can(tmp_path, monkeypatch):
    import bsp_common.outputs as outputs

    out = tmp_path / "model"
    with atomic_output_dir(out, "pruned-model") as tmp:
        (tmp / "v").write_text("old")
    calls = []
    real = outputs._exchange
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: calls.append((a, b)) or real(a, b))
    with atomic_output_dir(out, "pruned-model", overwrite=True) as tmp:
        (tmp / "v").write_text("new")
    assert (out / "v").read_text() == "new" and len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(("axes", "words"), [
    ({"dram.bw_gb_per_s": [10.0], "dram.bw_bytes_per_cycle": [8.0]},
     "dram.bw_bytes_per_cycle and dram.bw_gb_per_s exclude each other"),
    ({"clock_mhz": [500, 500, 500.0]}, "sweep.hardware_axes.clock_mhz: 500 repeats 500"),
    ({"buffers.weight_bytes": ["256 KiB", 262144]}, "262144 repeats '256 KiB'"),
    ({"pe_array.rows,pe_array.cols": [[16, 16], [16.0, 16]]}, "repeats [16, 16]"),
    ({"pe_array.rows": [16], "pe_array.rows,pe_array.cols": [[32, 32]]}, "pe_array.rows is an axis more than once"),
    ({"clock_mhz": [1e-300]}, "greater than or equal to 1"),
])  # fmt: skip
def test_sweep_axes_that_cannot_mean_distinct_points_are_refused_by_name(axes, words):
    from analysis.space import SweepSpace

    with pytest.raises(ValueError) as info:
        SweepSpace(configs=["asic-32x32-int8"], accuracy="none", hardware_axes=axes)
    assert words in str(info.value), str(info.value)


def test_overwrite_refuses_to_delete_a_file_bsp_did_not_write(tmp_path):
    from bsp_common.outputs import OutputError, atomic_output_dir

    target = tmp_path / "out"
    with atomic_output_dir(target, "rtl-export") as tmp:
        (tmp / "layer").mkdir()
        (tmp / "layer" / "weights.hex").write_text("00\n")
    (target / "mynotes.txt").write_text("mine")
    (target / "layer" / "review.md").write_text("mine too")
    with (pytest.raises(OutputError, match=r"holds layer/review\.md, mynotes\.txt, which bsp did not write"),
          atomic_output_dir(target, "rtl-export", overwrite=True) as tmp):
        (tmp / "new.hex").write_text("01\n")
    assert (target / "mynotes.txt").read_text() == "mine" and (target / "layer" / "weights.hex").is_file()
    (target / "mynotes.txt").unlink()
    (target / "layer" / "review.md").unlink()
    with atomic_output_dir(target, "rtl-export", overwrite=True) as tmp:  # only bsp's own files: replaced
        (tmp / "new.hex").write_text("01\n")
    assert sorted(p.name for p in target.iterdir()) == [".bsp-output.json", "new.hex"]


def test_an_out_that_is_a_dangling_link_is_refused_and_nothing_created(tmp_path):
    from bsp_common.outputs import OutputError, prepare_output_dir

    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputError, match="is a symbolic link to a missing"):
        prepare_output_dir(tmp_path / "out", "sweep")
    assert not (tmp_path / "elsewhere").exists()


def test_api_round_three_names_what_is_wrong():
    from transformers import BertConfig

    from hwsim import build_workload, load_config

    hf = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    with pytest.raises(TypeError, match=r"masks\['encoder.layer.0.attention.self.query.weight'\]: expected a "
                                        r"BlockMask .* got int"):  # fmt: skip
        build_workload(hf, masks={"encoder.layer.0.attention.self.query.weight": 5})
    with pytest.raises(FileNotFoundError, match="is neither a preset nor a readable YAML path"):
        load_config("x" * 5000)
