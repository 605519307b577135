"""CI smoke test of the paper-figure pipeline on a tiny random BERT (python -m paper_figs.reproduce --quick)."""

import json

import pandas as pd
import pytest

from paper_figs import tune
from paper_figs.reproduce import main


def test_quick_reproduction_writes_consistent_outputs(tmp_path):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    results = pd.read_csv(tmp_path / "results.csv")
    # 2 dense seeds + 3 methods x 2 rates x 2 seeds + the second block's 2 rates (the first block's are the
    # headline's seed-0 points), each on 2 accelerators
    assert len(results) == (2 + 12 + 2) * 2
    assert sorted(results["seed"].unique()) == [0, 1]
    assert results["error"].isna().all()
    assert set(results["config"]) == {"asic-32x32-int8", "fpga-zcu102"}
    pruned = results[results["method"] != "dense"]
    assert (abs(pruned["compression_rate"] - 1 / (1 - pruned["target_sparsity"])) < 0.1).all()
    summary = json.loads((tmp_path / "summary.json").read_text())
    dense = results[results["method"] == "dense"].drop_duplicates("cache_key")["accuracy"]
    assert abs(summary["headline"]["dense_accuracy_mean"] - dense.mean()) < 1e-12
    assert summary["git_commit"] and summary["wall_s"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "| reweighted - group-lasso | 4x |" in table and "| score | 2x | 2 |" in table
    asic = pruned[pruned["config"] == "asic-32x32-int8"]
    assert set(asic["method"]) == {"score", "reweighted", "group-lasso"}  # default recipe + the comparison
    for value in asic["accuracy"]:
        assert f"{value:.4f}" in table
    for stem in ("fig_accuracy_vs_compression", "fig_methods", "fig_pareto_cycles", "fig_pareto_energy"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
    # the first seed's points in the sweep's table format, read back by a sweep as `accuracy: table:PATH`
    accuracy_table = pd.read_csv(tmp_path / "accuracy_table.csv")
    seed0 = results[results["seed"] == 0].drop_duplicates(["block", "granularity", "target_sparsity", "method"])
    assert len(accuracy_table) == len(seed0) == 1 + 6 + 2  # dense, 3 methods x 2 rates, second block x 2 rates
    from analysis.accuracy import PointCache
    from analysis.space import SweepSpace

    lookup = PointCache(SweepSpace(model="minilm", accuracy=f"table:{tmp_path / 'accuracy_table.csv'}"),
                        tmp_path / "lookup")  # fmt: skip
    for _, row in seed0.iterrows():
        point = {k: row[k] for k in ("block", "granularity", "target_sparsity", "method")}
        assert lookup._table_accuracy(point) == pytest.approx(row["accuracy"])

    # the budget's schedule reaches the trainer: --quick trains 3 epochs of 64 examples at batch 32 (2 steps
    # each) and the cubic ramp reaches the target at epoch 2, i.e. at step 4 ("half of the epochs" would give 3)
    configs = sorted(tmp_path.glob("sweep/cache/*/model/pruning_config.json"))
    schedules = [json.loads(p.read_text())["extra"]["schedule"] for p in configs]
    pruned = [s for s in schedules if s["prune_at_step"] != 6]  # dense runs "prune" (at sparsity 0) at the end
    assert pruned and all(s["pruned_at_step"] == 4 and s["schedule"] == "cubic" for s in pruned)
    # two-stage: every pruned run starts from (and distils from) the dense run of its seed, trained once
    teachers = {json.loads(p.read_text())["extra"]["teacher_dir"] for p in configs}
    assert len(teachers) == 2 and all("/sweep/cache/teachers/dense-" in t for t in teachers)


def test_reproduce_rejects_prune_epoch_past_the_end(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--quick", "--out", str(tmp_path), "--epochs", "2", "--prune-at-epoch", "3"])
    assert "--prune-at-epoch: must be in [0, epochs=2], got 3" in capsys.readouterr().err


def test_tune_quick_runs_resumes_and_summarises(tmp_path, capsys):
    assert tune.main(["--quick", "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "tune.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(r["name"] for r in records) == ["magnitude", "reweighted lam=2 every=10"]
    assert all(abs(r["compression_rate"] - 2.0) < 0.1 and 0 <= r["dev_accuracy"] <= 1 for r in records)
    summary = pd.read_csv(tmp_path / "tune.csv")
    assert sorted(summary["name"]) == sorted(r["name"] for r in records)
    # a cut-short last line is run again; finished points are not
    (tmp_path / "tune.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # a kill mid-write
    capsys.readouterr()
    assert tune.main(["--quick", "--out", str(tmp_path)]) == 0
    assert "2 points, 1 already done, 1 to run" in capsys.readouterr().err
    assert len([json.loads(x) for x in (tmp_path / "tune.jsonl").read_text().splitlines()[2:]]) == 1
    # "--rates 2.0" names the same points as the default 2 (rates are part of the key)
    assert tune.main(["--quick", "--out", str(tmp_path), "--rates", "2.0"]) == 0
    assert "2 points, 2 already done, 0 to run" in capsys.readouterr().err


def test_tune_grid_is_seed_major_with_a_dense_reference():
    points = tune.grid(rates=(2, 3), seeds=(0, 1))
    assert points[0] == {"name": "dense", "method": "score", "block": "16x16", "rate": 1, "seed": 0}
    first_seed1 = next(i for i, p in enumerate(points) if p["seed"] == 1)
    assert all(p["seed"] == 0 for p in points[:first_seed1]) and len(points) == 2 * first_seed1
    assert len({tune.point_key(p) for p in points}) == len(points)


def test_paired_differences_by_hand():
    rows = [("magnitude", 2, 0, 0.60, 0.50), ("magnitude", 2, 1, 0.70, 0.50), ("x", 2, 0, 0.62, 0.49),
            ("x", 2, 1, 0.69, 0.53), ("dense", 1, 0, 0.9, 0.9)]  # fmt: skip
    records = pd.DataFrame(rows, columns=["name", "rate", "seed", "dev_accuracy", "test_accuracy"])
    paired = tune.paired_differences(records).set_index("name")
    # x - magnitude: dev +2 and -1 points (mean +0.5, worst -1), test -1 and +3 (mean +1)
    assert paired.loc["x", "dev_2x"] == pytest.approx(0.5)
    assert paired.loc["x", "worst_dev_2x"] == pytest.approx(-1.0)
    assert paired.loc["x", "test_mean"] == pytest.approx(1.0)
    assert paired.loc["magnitude", "dev_mean"] == 0 and "dense" not in paired.index


def test_codesign_study_quick_prunes_plans_and_uniform_front_shares_runs_and_resumes(tmp_path, capsys):
    from paper_figs import codesign

    assert codesign.main(["--quick", "--out", str(tmp_path)]) == 0
    results = pd.read_csv(tmp_path / "results.csv")
    assert sorted(results["plan"].unique()) == ["codesign 2x", "uniform 16x16 2x", "uniform 8x8 2x"]
    assert len(results) == 2 * 3  # 2 accelerators x (plan + the uniform front: 2 blocks at 2x) x 1 seed
    for config, table in results.groupby("config"):
        plan = table[table["plan"] == "codesign 2x"].iloc[0]
        for block in ("8x8", "16x16"):
            twin = table[table["plan"] == f"uniform {block} 2x"].iloc[0]
            assert json.loads(twin["layers"]).keys() == json.loads(plan["layers"]).keys()  # the same layers
            assert set(json.loads(twin["layers"]).values()) == {0.5} and twin["block"] == block
            assert twin["compression_rate"] == pytest.approx(2.0, rel=0.1)
        summary = json.loads((tmp_path / config / "summary.json").read_text())  # the plan's budget: the twin's loss
        assert summary["predicted"]["estimated_loss_increase"] <= min(
            u["fisher"] for u in pd.read_csv(tmp_path / config / "uniform.csv").to_dict("records")
            if u["sparsity"] == 0.5) + 1e-12
        assert (tmp_path / f"fig_codesign_{config}.png").stat().st_size > 1000
    report = (tmp_path / "results.md").read_text()
    assert "| asic-32x32-int8 | codesign 2x | uniform " in report and "fastest uniform at ≥ its dev" in report
    assert len(pd.read_csv(tmp_path / "front.csv")) == 2
    # the uniform plans are the same on both accelerators: trained once, for the first, and simulated on each
    uniform = results[results["plan"] == "uniform 8x8 2x"].set_index("config")
    assert list(uniform["trained_for"]) == ["asic-32x32-int8", "asic-32x32-int8"]
    assert uniform.loc["fpga-zcu102", "dev_accuracy"] == uniform.loc["asic-32x32-int8", "dev_accuracy"]
    assert uniform.loc["fpga-zcu102", "latency_s"] != uniform.loc["asic-32x32-int8", "latency_s"]
    assert not (tmp_path / "runs" / "fpga-zcu102-uniform 8x8 2x-seed0").exists()
    assert (tmp_path / "runs" / "fpga-zcu102-codesign 2x-seed0" / "config.json").is_file()
    capsys.readouterr()
    assert codesign.main(["--quick", "--out", str(tmp_path)]) == 0  # resumes: nothing retrained
    assert len(pd.read_csv(tmp_path / "results.csv")) == 6


def test_codesign_front_comparison_by_hand():
    from paper_figs.codesign import front_comparison

    def row(plan, seed, dev, latency_ms):
        return {"config": "a", "plan": plan, "seed": seed, "dev_accuracy": dev, "test_accuracy": dev - 0.01,
                "latency_s": latency_ms / 1e3, "compression_rate": 2.0}

    results = pd.DataFrame([
        row("codesign 2x", 0, 0.70, 1.0), row("codesign 2x", 1, 0.72, 1.0),  # mean dev 0.71, 1 ms
        row("uniform A", 0, 0.72, 2.0), row("uniform A", 1, 0.72, 2.0),  # more accurate, slower
        row("uniform B", 0, 0.71, 1.5), row("uniform B", 1, 0.71, 1.5),  # as accurate (0.71), faster: chosen
        row("uniform C", 0, 0.69, 0.9), row("uniform C", 1, 0.70, 0.9),  # faster, less accurate: at latency
        row("uniform D", 0, 0.80, 0.5),  # only seed 0: not comparable over the plan's seeds
    ])  # fmt: skip
    front = front_comparison(results).iloc[0]
    assert front["seeds"] == 2 and front["dev"] == pytest.approx(0.71)
    assert front["at_accuracy"] == "uniform B" and front["latency_change"] == pytest.approx(1.0 / 1.5 - 1)
    assert front["at_latency"] == "uniform C" and front["dev_gain"] == pytest.approx(0.71 - 0.695)
    assert front["dev_se"] == pytest.approx(0.01)  # std 0.01414 / sqrt 2


def test_codesign_loss_fits_the_stored_study_and_plans_no_slower_than_uniform(tmp_path):
    """On the committed study (no training): every plan keeps the uniform plan's predicted accuracy, is no
    slower, and no faster than the hardware allows at its compression; the plan files recount to the table."""
    from codesign.loss_model import load_loss_model
    from codesign.plan import load_plan
    from paper_figs import codesign_loss

    assert codesign_loss.main(["--out", str(tmp_path)]) == 0
    model = load_loss_model(tmp_path / "loss_model.json")
    plans = pd.read_csv(tmp_path / "plans.csv")
    assert set(plans["config"]) == {"asic-32x32-int8", "fpga-zcu102"} and set(plans["rate"]) == {2.0, 4.0}
    candidates = pd.read_csv(codesign_loss.OUT / "codesign" / "fpga-zcu102" / "candidates.csv")
    sizes = candidates[candidates["block"] == "32x32"].groupby("layer")["kept_weights"].max().to_dict()
    for row in plans.itertuples():
        plan = load_plan(tmp_path / f"plan_{row.config}_{row.rate:g}x.yaml")
        uniform_drop = model.predict_drop(dict.fromkeys(plan.layers, row.uniform_sparsity), sizes)
        assert row.uniform_predicted_drop == pytest.approx(uniform_drop)
        assert model.predict_drop(plan.layers, sizes) == pytest.approx(row.predicted_drop)
        assert row.predicted_drop <= uniform_drop * (1 + 1e-6)
        assert row.hardware_optimal_latency_s <= row.latency_s <= row.uniform_latency_s * (1 + 1e-12)
        assert row.differs == any(s != row.uniform_sparsity for s in plan.layers.values())
    fit = pd.read_csv(tmp_path / "fit.csv")
    assert len(fit) == model.fit["plans"] and fit["left_out_error"].notna().all()


def test_codesign_blocks_quick_prunes_each_block_once_simulates_it_on_every_config_and_resumes(tmp_path, capsys):
    from safetensors.numpy import load_file

    from paper_figs import codesign_blocks

    argv = ["--quick", "--blocks", "8x8", "16x4", "--configs", "asic-16x16-int8", "fpga-zcu102",
            "--out", str(tmp_path)]  # fmt: skip
    assert codesign_blocks.main(argv) == 0
    results = pd.read_json(tmp_path / "results.jsonl", lines=True)
    assert len(results) == 2 * 2  # 2 blocks x 2 accelerators, one seed and rate in --quick
    for block, table in results.groupby("block"):
        assert table["dev_accuracy"].nunique() == 1  # one pruned model per block, simulated on both
        weights = load_file(str(tmp_path / "runs" / f"uniform_{block}_2x-seed0" / "model.safetensors"))
        rows, cols = map(int, block.split("x"))
        pruned = [w for name, w in weights.items() if ".encoder." in name and w.ndim == 2]
        assert len(pruned) == 2 * 6
        for w in pruned:  # independent recount from the saved weights: half the blocks of every layer are zero
            grid = w.reshape(w.shape[0] // rows, rows, w.shape[1] // cols, cols)
            assert (grid == 0).all(axis=(1, 3)).mean() == pytest.approx(0.5)
    report = (tmp_path / "results.md").read_text()
    assert "| asic-16x16-int8 | uniform 16x4 2x | uniform 8x8 2x | 1 |" in report
    assert (tmp_path / "fig_codesign_fpga-zcu102.png").stat().st_size > 1000
    written = (tmp_path / "results.jsonl").read_text()
    assert codesign_blocks.main(argv) == 0 and (tmp_path / "results.jsonl").read_text() == written  # resumes


def test_studies_on_two_local_workers_equal_their_serial_runs(tmp_path):
    """reproduce (all experiments' pruning points at once) and the co-design study (one task per pruned model)."""
    from paper_figs import codesign

    keys = ["method", "block", "target_sparsity", "seed", "config", "accuracy", "cycles"]
    tables = []
    for name, argv in (("serial", []), ("parallel", ["--workers", "2"])):
        assert main(["--quick", "--out", str(tmp_path / name), *argv]) == 0
        tables.append(pd.read_csv(tmp_path / name / "results.csv")[keys].sort_values(keys).reset_index(drop=True))
    pd.testing.assert_frame_equal(*tables)
    tables = []
    for name, argv in (("codesign-serial", []), ("codesign-parallel", ["--workers", "2"])):
        assert codesign.main(["--quick", "--out", str(tmp_path / name), *argv]) == 0
        table = pd.read_csv(tmp_path / name / "results.csv")[["config", "plan", "dev_accuracy", "latency_s"]]
        tables.append(table.sort_values(["config", "plan"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(*tables)


@pytest.mark.parametrize("module", ["reproduce", "recipes", "tune", "codesign", "codesign_blocks"])
@pytest.mark.parametrize(("option", "value", "message"), [("--data", "tweets", "data"),
                                                          ("--model", "no/such/model", "model")])  # fmt: skip
def test_studies_refuse_bad_inputs_before_making_their_output(module, option, value, message, tmp_path, capsys):
    import importlib

    study = importlib.import_module(f"paper_figs.{module}")
    with pytest.raises(SystemExit) as stop:
        study.main([option, value, "--out", str(tmp_path / "out")])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
