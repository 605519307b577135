import json
import subprocess
import sys

import pytest
from conftest import tiny_classifier, tiny_text_task

from bsp_cli import main
from pruning import BlockPruner, PruneSettings, save_pruned


@pytest.fixture
def pruned_dir(tmp_path):
    model = tiny_classifier("bert")
    settings = PruneSettings(block="8x8", method="score", target_sparsity=0.75)
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    pruner.prune()
    return save_pruned(tmp_path / "pruned", model, pruner.finalize(), settings)


def test_simulate_json_csv_trace(pruned_dir, tmp_path, capsys):
    rc = main(
        [
            "simulate",
            "--config",
            "asic-16x16-int8",
            "--model",
            str(pruned_dir),
            "--seq-len",
            "8",
            "--json",
            "--csv",
            str(tmp_path / "ops.csv"),
            "--trace",
            str(tmp_path / "trace.json"),
            "--plot",
            str(tmp_path / "layers.png"),
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["total"]) >= {"cycles", "latency_s", "energy_pj", "utilization"}
    assert {"name", "M", "K", "N", "cycles"} <= set(out["ops"][0])
    assert out["ops"][0]["name"] == "layer0.q"
    assert (tmp_path / "ops.csv").read_text().startswith("op,layer,kind,M,K,N")
    assert json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert (tmp_path / "layers.png").stat().st_size > 1000
    rc = main(
        [
            "simulate",
            "--config",
            "asic-16x16-int8",
            "--hf-config",
            str(pruned_dir / "config.json"),
            "--seq-len",
            "8",
            "--json",
        ]
    )
    dense = json.loads(capsys.readouterr().out)
    assert dense["total"]["cycles"] > out["total"]["cycles"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--config", "nope", "--hf-config", "x.json"], "neither a preset"),
        (["simulate", "--config", "asic-16x16-int8", "--model", "/nonexistent"], "config.json"),
        (
            [
                "prune",
                "--model",
                "minilm",
                "--data",
                "sentiment",
                "--block",
                "0x4",
                "--target-sparsity",
                "0.5",
                "--out",
                "x",
            ],
            "block rows",
        ),
        (
            ["prune", "--model", "minilm", "--data", "sentiment", "--target-sparsity", "1.5", "--out", "x"],
            "target_sparsity",
        ),
        (
            [
                "prune",
                "--model",
                "minilm",
                "--data",
                "sentiment",
                "--method",
                "magic",
                "--target-sparsity",
                "0.5",
                "--out",
                "x",
            ],
            "method",
        ),
        (["configs", "show"], "preset name"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_configs_validate_prints_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nname: x\npe_array: {rows: 0}\nfoo: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bsp_cli", "configs", "validate", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "pe_array.rows" in proc.stderr and "foo: unknown key" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "bsp_cli", "configs", "list"], capture_output=True, text=True)
    assert "fpga-zcu102" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "bsp_cli", "configs", "list", "fpga-zcu102"], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 2 and "configs list: takes no name (got 'fpga-zcu102')" in proc.stderr


def test_simulate_scalesim_compat(tmp_path, capsys):
    cfg = tmp_path / "arch.cfg"
    cfg.write_text(
        "[general]\nrun_name = t\n[architecture_presets]\nArrayHeight: 4\nArrayWidth: 4\n"
        "IfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: os\n"
    )
    topo = tmp_path / "topo.csv"
    topo.write_text("Layer name, M, N, K,\na, 16, 16, 16,\nb, 33, 20, 17,\n")
    assert (
        main(["simulate", "--scalesim-cfg", str(cfg), "--topology", str(topo), "--compat", "scalesim", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert [op["cycles"] for op in out["ops"]] == [351, 1034]  # SCALE-Sim 3.0.0, see tests/hwsim/test_scalesim.py
    assert main(["simulate", "--scalesim-cfg", str(cfg), "--topology", str(topo), "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert ours["total"]["cycles"] > 0


def test_export_cli_errors(pruned_dir, tmp_path, capsys):
    rc = main(
        [
            "export",
            "--model",
            str(pruned_dir),
            "--config",
            "asic-16x16-int8",
            "--out",
            str(tmp_path / "r"),
            "--word-bits",
            "12",
        ]
    )
    assert rc == 2
    assert "word_bits: 12" in capsys.readouterr().err
    rc = main(["export", "--model", str(pruned_dir), "--config", "asic-16x16-int8", "--out", str(tmp_path / "r")])
    assert rc == 2  # saved without a tokenizer: golden vectors cannot be made
    assert "tokenizer" in capsys.readouterr().err


def test_prune_cli_end_to_end_on_glue_fixture(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    out = tmp_path / "pruned"
    rc = main(
        [
            "prune",
            "--model",
            str(model_dir),
            "--data",
            "glue:sst-2",
            "--glue-dir",
            str(glue_dir),
            "--block",
            "4x4",
            "--granularity",
            "column",
            "--method",
            "reweighted",
            "--penalty-mode",
            "proximal",
            "--lam",
            "0.5",
            "--reweight-interval-steps",
            "1",
            "--target-sparsity",
            "0.5",
            "--epochs",
            "2",
            "--max-train-samples",
            "16",
            "--batch-size",
            "8",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "compression_rate" in printed
    record = json.loads((out / "pruning_config.json").read_text())
    assert record["settings"]["penalty_mode"] == "proximal"
    assert record["settings"]["reweight_interval_steps"] == 1
    assert record["settings"]["granularity"] == "column"
    assert record["summary"]["compression_rate"] == pytest.approx(2.0, rel=0.01)
    assert record["extra"]["schedule"]["pruned_at_step"] == 2
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".bsp-output.json"]  # no .trainer
    assert [p.name for p in tmp_path.iterdir() if ".bsp-tmp-" in p.name] == []


def test_prune_cli_gradual_schedule_with_distillation(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    out = tmp_path / "pruned"
    rc = main(["prune", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
               "--block", "4x4", "--method", "reweighted", "--penalty-mode", "proximal", "--lam", "50",
               "--relative-norms", "--score", "taylor", "--schedule", "cubic", "--prune-at-epoch", "3",
               "--prune-frequency-steps", "2", "--teacher", "distill", "--teacher-model", str(model_dir),
               "--target-sparsity", "0.75", "--epochs", "4", "--max-train-samples", "16", "--batch-size", "8",
               "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    record = json.loads((out / "pruning_config.json").read_text())
    schedule = record["extra"]["schedule"]
    assert schedule["schedule"] == "cubic" and schedule["pruned_at_step"] == 6 and schedule["mask_updates"] == 3
    assert record["settings"]["score"] == "taylor" and record["extra"]["budget"]["distill_alpha"] == 0.5
    assert record["summary"]["compression_rate"] == pytest.approx(4.0, rel=0.01)
    assert record["extra"]["teacher_dir"] == str(model_dir)
    rc = main(["prune", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
               "--target-sparsity", "0.5", "--teacher", "none", "--teacher-model", str(model_dir),
               "--out", str(tmp_path / "x")])  # fmt: skip
    assert rc == 2 and "teacher: " in capsys.readouterr().err


def test_prune_cli_default_recipe_trains_the_dense_teacher_once_and_starts_from_it(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    common = ["prune", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir), "--block", "4x4",
              "--epochs", "2", "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "cache")]
    assert main([*common, "--target-sparsity", "0.5", "--out", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    (teacher,) = (tmp_path / "cache" / "teachers").iterdir()
    record = json.loads((tmp_path / "a" / "pruning_config.json").read_text())
    assert record["extra"]["teacher_dir"] == str(teacher) and record["extra"]["budget"]["teacher"] == "two-stage"
    teacher_record = json.loads((teacher / "pruning_config.json").read_text())
    assert teacher_record["summary"]["compression_rate"] == pytest.approx(1.0)  # the dense fine-tune
    summary = json.loads(printed[printed.index("{"):])  # the run's summary: the teacher's accuracy beside its own
    assert summary["teacher_dev_accuracy"] == teacher_record["extra"]["dev_accuracy"]
    assert summary["dev_accuracy"] == record["extra"]["dev_accuracy"]
    written = (teacher / "model.safetensors").stat().st_mtime_ns
    assert main([*common, "--target-sparsity", "0.75", "--out", str(tmp_path / "b")]) == 0
    assert [p.name for p in (tmp_path / "cache" / "teachers").iterdir()] == [teacher.name]
    assert (teacher / "model.safetensors").stat().st_mtime_ns == written  # reused, not retrained


def test_prune_cli_defaults_are_the_train_budget_defaults():
    from bsp_cli.commands.prune import _BUDGET_OPTIONS
    from bsp_cli.main import build_parser
    from pruning.settings import TrainBudget

    assert sorted(_BUDGET_OPTIONS.values()) == sorted(TrainBudget.__dataclass_fields__)  # every field has an option
    args = build_parser().parse_args(["prune", "--model", "m", "--data", "sentiment", "--out", "o"])
    assert TrainBudget(**{field: getattr(args, dest) for dest, field in _BUDGET_OPTIONS.items()}) == TrainBudget()


def test_a_resumed_sweep_says_what_it_reused(tmp_path, capsys):
    model = tmp_path / "tiny"
    tiny_classifier("bert").save_pretrained(model)
    space = tmp_path / "space.yaml"
    space.write_text(f"model: {model}\naccuracy: none\nblocks: [8x8]\nsparsities: [0.0, 0.5]\n"
                     "configs: [asic-16x16-int8]\nseq_lens: [8]\n")  # fmt: skip
    argv = ["sweep", str(space), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    assert "2 computed in this run (2 pruning points), 0 stored before" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 computed in this run (0 pruning points), 2 stored before" in capsys.readouterr().out


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"bsp-codesign {version('bsp-codesign')}"


def test_configs_show_annotated_keeps_the_presets_sources_and_adds_the_derived_costs(capsys):
    from hwsim.config import load_config, preset_text

    assert main(["configs", "show", "asic-128x128-int8", "--annotated"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(preset_text("asic-128x128-int8")) and "Jouppi et al., ISCA 2017" in out
    assert f"area {load_config('asic-128x128-int8').cost.area_mm2:.4g} mm²" in out.splitlines()[-1]
