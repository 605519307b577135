"""The retrained loss model: closed forms, exact recovery of known parameters, convexity by brute force, its use
in the knapsack and bad input."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_text_task

from bsp_cli.main import main
from codesign.loop import allocate_block
from codesign.loss_model import (
    RetrainedLossModel,
    candidate_drops,
    concentration_curve,
    fit_retrained_loss,
    load_loss_model,
)
from codesign.plan import load_plan


def test_concentration_curve_closed_forms():
    s = np.array([0.0, 0.25, 0.5, 0.75, 0.875])
    assert concentration_curve(s, 1.0) == pytest.approx(s / (1 - s))  # compression rate - 1
    assert concentration_curve(s, 0.0) == pytest.approx(-np.log(1 - s))
    assert concentration_curve(s, -0.5) == pytest.approx(2 * (1 - np.sqrt(1 - s)))
    assert concentration_curve(s, 0.5) == pytest.approx(2 * (1 / np.sqrt(1 - s) - 1))


def _synthetic(power, slope, plans, sizes, intercepts):
    rows = []
    for group, intercept in intercepts.items():
        for label, layers in plans.items():
            n = np.array([sizes[k] for k in layers], float)
            drop = slope * n @ concentration_curve(list(layers.values()), power) / n.sum()
            rows.append({"plan": label, "group": group, "accuracy": intercept - drop, "layers": json.dumps(layers)})
    return pd.DataFrame(rows)


def test_fit_recovers_the_parameters_that_generated_noise_free_data():
    sizes = {"a": 100, "b": 300, "c": 50}
    plans = {"uniform 2x": dict.fromkeys(sizes, 0.5), "uniform 4x": dict.fromkeys(sizes, 0.75),
             "concentrated": {"a": 0.875, "b": 0.25, "c": 0.875}, "mild": {"a": 0.25, "b": 0.5, "c": 0.0}}
    data = _synthetic(0.7, 0.02, plans, sizes, {"seed0": 0.80, "seed1": 0.78, "cpu seed0": 0.75})
    model, table = fit_retrained_loss(data, sizes)
    assert model.power == pytest.approx(0.7) and model.slope == pytest.approx(0.02)
    assert model.fit["rmse"] == pytest.approx(0.0, abs=1e-9) and model.fit["left_out_rmse"] == pytest.approx(0.0,
                                                                                                          abs=1e-9)
    # measured change against the group intercept is exactly the drop the generating model gives
    for row in table.itertuples():
        assert row.measured_change == pytest.approx(-model.predict_drop(plans[row.plan], sizes))
        assert row.fitted_change == pytest.approx(row.measured_change)


def test_uniform_loses_least_among_plans_of_equal_compression_by_brute_force():
    model = RetrainedLossModel(power=0.5, slope=0.03)
    sizes = {"a": 64, "b": 64, "c": 128}
    grid = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]
    uniform = model.predict_drop(dict.fromkeys(sizes, 0.5), sizes)
    same_compression = [dict(zip(sizes, s, strict=True)) for s in itertools.product(grid, repeat=3)
                        if 64 * s[0] + 64 * s[1] + 128 * s[2] == 0.5 * 256]  # fmt: skip
    assert len(same_compression) > 5
    assert all(model.predict_drop(p, sizes) >= uniform - 1e-15 for p in same_compression)


def test_candidate_drops_sum_to_the_plan_prediction_and_drive_the_knapsack():
    model = RetrainedLossModel(power=1.0, slope=0.01)
    sizes = {"a": 100, "b": 300}
    latency = {"a": {0.0: 10.0, 0.5: 4.0, 0.75: 1.0}, "b": {0.0: 30.0, 0.5: 20.0, 0.75: 15.0}}
    candidates = pd.DataFrame([{"config": "hw", "block": "8x8", "layer": k, "sparsity": s,
                                "kept_weights": int(sizes[k] * (1 - s)), "latency_s": v}
                               for k, by_s in latency.items() for s, v in by_s.items()])  # fmt: skip
    candidates["retrained"] = candidate_drops(candidates, model)
    budget = model.predict_drop({"a": 0.5, "b": 0.5}, sizes)  # equal predicted accuracy to uniform 2x
    chosen, solution = allocate_block(candidates, "latency_s", "retrained", budget)
    # brute force over the 9 plans: fastest within the budget
    feasible = [(latency["a"][x] + latency["b"][y], {"a": x, "b": y}) for x in latency["a"] for y in latency["b"]
                if model.predict_drop({"a": x, "b": y}, sizes) <= budget + 1e-15]  # fmt: skip
    best_latency, best_plan = min(feasible, key=lambda t: t[0])
    assert solution.value == pytest.approx(best_latency)
    assert dict(zip(chosen["layer"], chosen["sparsity"], strict=True)) == best_plan
    assert solution.weight == pytest.approx(model.predict_drop(best_plan, sizes))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"power": -1.0, "slope": 0.01}, "loss model power: must be a finite number > -1"),
    ({"power": 0.5, "slope": 0.0}, "loss model slope: must be a finite number > 0, got 0.0"),
    ({"power": float("nan"), "slope": 0.01}, "loss model power"),
])  # fmt: skip
def test_bad_parameters_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RetrainedLossModel(**kwargs)


def test_files_round_trip_and_bad_files_name_the_file(tmp_path):
    model = RetrainedLossModel(power=0.4, slope=0.02, fit={"rmse": 0.001})
    assert load_loss_model(model.save(tmp_path / "m.json")) == model
    (tmp_path / "bad.json").write_text('{"power": 0.4}')
    with pytest.raises(ValueError, match=r"bad.json: needs 'power' and 'slope'"):
        load_loss_model(tmp_path / "bad.json")
    (tmp_path / "neg.json").write_text('{"power": 0.4, "slope": -1}')
    with pytest.raises(ValueError, match=r"neg.json: slope: must be a finite number > 0, got -1"):
        load_loss_model(tmp_path / "neg.json")
    with pytest.raises(ValueError, match="cannot read it as JSON"):
        load_loss_model(tmp_path / "absent.json")


def test_fit_refuses_data_it_cannot_fit():
    sizes = {"a": 10}
    rows = [{"plan": f"p{i}", "group": "g", "accuracy": 0.8, "layers": {"a": s}} for i, s in enumerate([0.25, 0.5])]
    with pytest.raises(ValueError, match="at least 3 distinct plans"):
        fit_retrained_loss(pd.DataFrame(rows), sizes)
    rising = pd.DataFrame([{"plan": f"p{i}", "group": "g", "accuracy": 0.7 + 0.1 * s, "layers": {"a": s}}
                           for i, s in enumerate([0.0, 0.5, 0.75])])  # fmt: skip
    with pytest.raises(ValueError, match="accuracy does not fall as sparsity grows"):
        fit_retrained_loss(rising, sizes)
    with pytest.raises(ValueError, match=r"row 0 \('p0'\): layers \['a'\] have no size"):
        fit_retrained_loss(rising, {"b": 10})
    with pytest.raises(ValueError, match=r"missing columns \['group'\]"):
        fit_retrained_loss(rising.drop(columns="group"), sizes)


def test_bsp_codesign_with_a_loss_model_keeps_the_predicted_drop_within_the_budget(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    loss_model = RetrainedLossModel(power=0.5, slope=0.02).save(tmp_path / "loss_model.json")
    common = ["--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir), "--epochs", "2",
              "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "cache"),
              "--config", "fpga-zcu102", "--blocks", "8x8", "--gradient-batches", "2", "--seq-len", "16"]
    budget = 0.02 * concentration_curve(0.5, 0.5)  # the predicted drop of uniform 2x
    rc = main(["codesign", *common, "--loss-model", str(loss_model), "--budget-accuracy-drop", str(budget),
               "--out", str(tmp_path / "cd")])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "cd" / "summary.json").read_text())
    assert summary["estimate"] == "retrained" and summary["loss_model"]["power"] == 0.5
    plan = load_plan(tmp_path / "cd" / "plan.yaml")
    sizes = pd.read_csv(tmp_path / "cd" / "candidates.csv").groupby("layer")["kept_weights"].max().to_dict()
    predicted = load_loss_model(loss_model).predict_drop(plan.layers, sizes)  # recomputed from the plan itself
    assert predicted <= budget + 1e-12
    assert summary["predicted"]["estimated_loss_increase"] == pytest.approx(predicted)
    assert "predicted accuracy drop (retrained loss model)" in summary["constraint"]
    # no faster uniform plan fits the same budget: the plan is at least as fast as uniform 2x
    uniform = pd.read_csv(tmp_path / "cd" / "uniform.csv").set_index("sparsity")
    assert summary["predicted"]["model"]["latency_s"] <= uniform["latency_s"][0.5] + 1e-12
    rc = main(["codesign", *common, "--estimate", "fisher", "--loss-model", str(tmp_path / "absent.json"),
               "--budget-accuracy-drop", "0.01", "--out", str(tmp_path / "cd2")])  # fmt: skip
    assert rc == 2 and "absent.json: cannot read it as JSON" in capsys.readouterr().err
