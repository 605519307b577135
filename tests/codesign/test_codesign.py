"""Co-design: knapsack vs brute force, sensitivity vs direct evaluation, plan files, plans executed."""

import itertools
import json
import re

import numpy as np
import pytest
import torch
from conftest import tiny_text_task
from safetensors.numpy import load_file

from bsp_cli.main import main
from codesign.allocate import greedy_mckp, solve_mckp
from codesign.plan import CodesignPlan, load_plan
from codesign.sensitivity import (
    classifier_loss,
    collect_gradients,
    estimate_sensitivity,
    measured_sensitivity,
    removed_groups,
)

# -- allocation ----------------------------------------------------------------------------------------------------


def _brute_force(values, weights, capacity):
    best = None
    for choice in itertools.product(*[range(len(v)) for v in values]):
        weight = sum(max(w[c], 0) for w, c in zip(weights, choice, strict=True))
        value = sum(v[c] for v, c in zip(values, choice, strict=True))
        if weight <= capacity + 1e-12 and (best is None or value < best - 1e-12):
            best = value
    return best


@pytest.mark.parametrize("seed", range(40))
def test_knapsack_equals_brute_force_and_greedy_never_beats_it(seed):
    rng = np.random.default_rng(seed)
    layers, options = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    values = [rng.uniform(0, 10, options) for _ in range(layers)]
    weights = [rng.uniform(-0.5, 3, options) for _ in range(layers)]  # negatives: estimated to help
    capacity = float(rng.uniform(0, 2 * layers))
    optimum = _brute_force(values, weights, capacity)
    if optimum is None:
        with pytest.raises(ValueError, match="budget"):
            solve_mckp(values, weights, capacity)
        return
    exact = solve_mckp(values, weights, capacity)
    assert exact.value == pytest.approx(optimum) and exact.weight <= capacity + 1e-9
    greedy = greedy_mckp(values, weights, capacity)
    assert greedy.weight <= capacity + 1e-9 and greedy.value >= exact.value - 1e-9


@pytest.mark.parametrize("seed", range(10))
def test_hardware_optimal_is_the_fastest_allocation_keeping_at_least_the_uniform_weights(seed):
    import pandas as pd

    from codesign.loop import hardware_optimal

    rng = np.random.default_rng(seed)
    sparsities, rows = [0.0, 0.25, 0.5, 0.75], []
    for layer in range(int(rng.integers(2, 5))):
        size = int(rng.integers(1, 5)) * 64
        latency = np.sort(rng.uniform(0.1, 1.0, len(sparsities)))[::-1] * size  # pruning never slows a layer
        rows += [{"layer": f"l{layer}", "sparsity": s, "kept_weights": round(size * (1 - s)), "latency_s": t}
                 for s, t in zip(sparsities, latency, strict=True)]  # fmt: skip
    table = pd.DataFrame(rows)
    groups = [g for _, g in table.groupby("layer", sort=False)]
    for s in sparsities:
        uniform = table[table["sparsity"] == s]
        best = min(sum(g["latency_s"].iloc[c] for g, c in zip(groups, choice, strict=True))
                   for choice in itertools.product(range(len(sparsities)), repeat=len(groups))
                   if sum(g["kept_weights"].iloc[c] for g, c in zip(groups, choice, strict=True))
                   >= uniform["kept_weights"].sum())  # fmt: skip
        allocation = hardware_optimal(table, "latency_s", uniform["kept_weights"].sum())
        assert allocation.value == pytest.approx(best)
        chosen = [g.iloc[c] for g, c in zip(groups, allocation.choice, strict=True)]
        assert sum(r["latency_s"] for r in chosen) == pytest.approx(best)
        assert sum(r["kept_weights"] for r in chosen) >= uniform["kept_weights"].sum()
        assert best <= uniform["latency_s"].sum() + 1e-12  # the uniform plan itself is one such allocation


def test_knapsack_refuses_bad_input_by_name():
    with pytest.raises(ValueError, match="budget: must be a finite number"):
        solve_mckp([np.ones(2)], [np.ones(2)], float("nan"))
    with pytest.raises(ValueError, match="layer 0 has 2 values and 3 weights"):
        solve_mckp([np.ones(2)], [np.ones(3)], 1.0)


# -- sensitivity ---------------------------------------------------------------------------------------------------


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 6, bias=False)


def test_first_order_estimate_is_exact_for_a_loss_linear_in_the_weights():
    torch.manual_seed(0)
    model = _Linear()
    batches = [torch.randn(5, 8) for _ in range(3)]
    direction = torch.randn(6)

    def loss_fn(m, x):  # linear in W: sum_b direction . (W x_b)
        return (m.fc(x) @ direction).mean()

    weights = {"fc.weight": model.fc.weight}
    gradients = collect_gradients(model, weights, batches, loss_fn, (2, 4))
    table = estimate_sensitivity(gradients, [0.5])
    removed = removed_groups(gradients.score("fc.weight"), (6, 8), (2, 4), 0.5)
    element = removed.repeat_interleave(2, 0).repeat_interleave(4, 1)
    with torch.no_grad():
        before = np.mean([float(loss_fn(model, x)) for x in batches])
        pruned = model.fc.weight.masked_fill(element, 0.0)
        after = np.mean([float((x @ pruned.T @ direction).mean()) for x in batches])
    assert table.loc[0, "taylor"] == pytest.approx(after - before, rel=1e-6)  # float32 model: exact to rounding
    # fisher: 1/2 the mean over batches of each batch's own first-order change, squared (by hand)
    changes = []
    for x in batches:
        with torch.no_grad():
            changes.append(float((x @ pruned.T @ direction).mean() - loss_fn(model, x)))
    assert table.loc[0, "fisher"] == pytest.approx(0.5 * np.mean(np.square(changes)), rel=1e-6)


def test_measured_sensitivity_zeroes_exactly_the_estimated_groups_and_restores_the_weights():
    torch.manual_seed(1)
    model = _Linear()
    x = torch.randn(4, 8)
    weights = {"fc.weight": model.fc.weight}

    def loss_fn(m, batch):
        return m.fc(batch).pow(2).mean()

    gradients = collect_gradients(model, weights, [x], loss_fn, (3, 2))
    original = model.fc.weight.detach().clone()
    table = measured_sensitivity(model, weights, gradients, [("fc.weight", 0.5)], [x], loss_fn)
    removed = removed_groups(gradients.score("fc.weight"), (6, 8), (3, 2), 0.5)
    element = removed.repeat_interleave(3, 0).repeat_interleave(2, 1)
    expected = float((x @ original.masked_fill(element, 0).T).pow(2).mean() - (x @ original.T).pow(2).mean())
    assert table.loc[0, "measured_loss"] == pytest.approx(expected, rel=1e-6)
    assert torch.equal(model.fc.weight.detach(), original)


def test_masked_recovery_is_one_adam_step_by_hand_against_the_unpruned_control():
    torch.manual_seed(2)
    model = _Linear()
    weights = {"fc.weight": model.fc.weight}
    x_train, y_train = torch.randn(5, 8), torch.randn(5, 6)
    x_held, y_held = torch.randn(7, 8), torch.randn(7, 6)

    def loss_fn(m, batch):
        return (m.fc(batch[0]) - batch[1]).pow(2).mean()

    gradients = collect_gradients(model, weights, [(x_train, y_train)], loss_fn, (3, 2))
    original = model.fc.weight.detach().clone()
    lr = 0.05
    table = measured_sensitivity(model, weights, gradients, [("fc.weight", 0.5)], [(x_held, y_held)], loss_fn,
                                 recovery_batches=[(x_train, y_train)], recovery_steps=1, recovery_lr=lr)
    # by hand: zero the groups, one Adam step (first step: -lr * g / (|g| + eps)) with their gradient cleared
    removed = removed_groups(gradients.score("fc.weight"), (6, 8), (3, 2), 0.5)
    element = removed.repeat_interleave(3, 0).repeat_interleave(2, 1)
    pruned = original.masked_fill(element, 0.0).double()
    residual = x_train.double() @ pruned.T - y_train.double()
    grad = (2 * residual.T @ x_train.double() / residual.numel()).masked_fill(element, 0.0)
    recovered = pruned - lr * grad / (grad.abs() + 1e-8)
    assert torch.all(recovered[element] == 0)

    def held_loss(w):
        return float((x_held.double() @ w.T - y_held.double()).pow(2).mean())

    # the reference: the unpruned weights after the same step
    residual0 = x_train.double() @ original.double().T - y_train.double()
    grad0 = 2 * residual0.T @ x_train.double() / residual0.numel()
    control = original.double() - lr * grad0 / (grad0.abs() + 1e-8)
    expected = held_loss(recovered) - held_loss(control)
    assert table.loc[0, "measured_loss"] == pytest.approx(expected, rel=1e-5)
    assert torch.equal(model.fc.weight.detach(), original)  # every parameter restored
    with pytest.raises(ValueError, match="recovery_batches: needed"):
        measured_sensitivity(model, weights, gradients, [("fc.weight", 0.5)], [(x_held, y_held)], loss_fn,
                             recovery_steps=2)


def test_measured_kl_is_the_divergence_from_the_unpruned_predictions_by_hand():
    from conftest import tiny_classifier

    model = tiny_classifier("bert", num_labels=3)
    generator = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(3, 99, (6, 10), generator=generator), "labels": torch.tensor([0, 1, 2] * 2)}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    name = "bert.encoder.layer.0.intermediate.dense.weight"
    weight = model.bert.encoder.layer[0].intermediate.dense.weight
    gradients = collect_gradients(model, {name: weight}, [batch], classifier_loss, (8, 8))
    table = measured_sensitivity(model, {name: weight}, gradients, [(name, 0.75), (name, 0.0)], [batch])
    with torch.no_grad():
        p = torch.log_softmax(model(**batch).logits.double(), dim=-1)
        removed = removed_groups(gradients.score(name), tuple(weight.shape), (8, 8), 0.75)
        original = weight.detach().clone()
        weight.masked_fill_(removed.repeat_interleave(8, 0).repeat_interleave(8, 1), 0.0)
        q = torch.log_softmax(model(**batch).logits.double(), dim=-1)
        weight.copy_(original)
    expected = float((p.exp() * (p - q)).sum(dim=-1).mean())
    assert expected > 0 and table.loc[0, "measured_kl"] == pytest.approx(expected, rel=1e-6)
    assert table.loc[1, "measured_kl"] == 0.0  # nothing pruned: no divergence


# -- plans ---------------------------------------------------------------------------------------------------------


def test_plan_round_trips_and_bad_plans_name_the_field(tmp_path):
    plan = CodesignPlan(block="8x8", layers={"a.weight": 0.5, "b.weight": 0.0}, config="asic-16x16-int8")
    path = plan.save(tmp_path / "plan.yaml")
    assert load_plan(path) == plan
    bad = {
        "block: 0x4\nlayers: {a.weight: 0.5}\n": "plan block",
        "block: 8x8\nlayers: {a.weight: 1.5}\n": "plan layers['a.weight']: must be in [0, 1), got 1.5",
        "block: 8x8\nlayers: {a: 0.5}\n": "keys must be weight names",
        "block: 8x8\nlayers: {a.weight: 0.5}\nspeed: fast\n": "unknown keys ['speed']",
    }
    for text, message in bad.items():
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            load_plan(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match=r"\['c.weight'\] are not prunable layers"):
        CodesignPlan(block="8x8", layers={"c.weight": 0.5}).check_against({"a.weight": (16, 16)})


def test_bsp_codesign_then_prune_plan_gives_exactly_the_planned_sparsities(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    common = ["--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir), "--epochs", "2",
              "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "cache")]
    rc = main(["codesign", *common, "--config", "asic-16x16-int8", "--blocks", "8x8", "16x16",
               "--max-loss-increase", "1e-3", "--gradient-batches", "2", "--seq-len", "16", "--validate", "4",
               "--out", str(tmp_path / "cd")])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    import pandas as pd

    measured = pd.read_csv(tmp_path / "cd" / "candidates.csv").dropna(subset=["measured_loss"])
    assert len(measured) == 2 * 4 and measured["measured_accuracy_drop"].notna().all()  # 4 per block
    assert (measured["measured_kl"] >= 0).all()
    validation = json.loads((tmp_path / "cd" / "summary.json").read_text())["validation"]
    assert validation["candidates"] == 2 * 4 and "spearman_estimate_vs_measured_kl" in validation
    calibration = pd.read_csv(tmp_path / "cd" / "calibration.csv")
    assert len(calibration) == 2 * 5 and calibration["measured_accuracy_drop"].notna().all()  # 5 sparsities > 0
    plan = load_plan(tmp_path / "cd" / "plan.yaml")
    summary = json.loads((tmp_path / "cd" / "summary.json").read_text())
    assert summary["predicted"]["estimated_loss_increase"] <= 1e-3
    # the tiny model's estimates sum far below 1e-3: that budget binds nothing, and the run says so
    candidates = pd.read_csv(tmp_path / "cd" / "candidates.csv")
    chosen = candidates[(candidates["config"] == summary["chosen_config"]) & (candidates["block"] == summary["block"])]
    allocation = pd.read_csv(tmp_path / "cd" / "allocation.csv")
    assert allocation["latency_s"].sum() == pytest.approx(chosen.groupby("layer")["latency_s"].min().sum())
    assert summary["budget_binds"] is False
    assert summary["budget_used"] == pytest.approx(summary["predicted"]["estimated_loss_increase"] / 1e-3)
    assert "warning: the budget does not bind" in capsys.readouterr().err
    # another budget on the same candidates re-allocates without estimating again
    written = (tmp_path / "cd" / "candidates.csv").stat().st_mtime_ns
    rc = main(["codesign", *common, "--config", "asic-16x16-int8", "--blocks", "8x8", "16x16",
               "--max-loss-increase", "1e-9", "--gradient-batches", "2", "--seq-len", "16", "--validate", "4",
               "--out", str(tmp_path / "cd")])  # fmt: skip
    assert rc == 0 and (tmp_path / "cd" / "candidates.csv").stat().st_mtime_ns == written
    tighter = json.loads((tmp_path / "cd" / "summary.json").read_text())["predicted"]
    assert tighter["estimated_loss_increase"] <= 1e-9
    assert tighter["model"]["latency_s"] >= summary["predicted"]["model"]["latency_s"]  # less budget, no faster
    assert json.loads((tmp_path / "cd" / "summary.json").read_text())["budget_binds"] is True
    err = capsys.readouterr().err
    assert "does not bind" not in err and f"codesign: {len(candidates)} candidates reused from" in err
    # a hand-made plan with distinct per-layer targets, run through bsp prune --plan
    names = list(plan.layers)
    mixed = CodesignPlan(block="8x8", layers={name: [0.0, 0.25, 0.5, 0.75][i % 4] for i, name in enumerate(names)})
    mixed.save(tmp_path / "mixed.yaml")
    rc = main(["prune", *common[:-2], "--plan", str(tmp_path / "mixed.yaml"), "--teacher", "none",
               "--out", str(tmp_path / "pruned")])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    weights = load_file(str(tmp_path / "pruned" / "model.safetensors"))
    for name, sparsity in mixed.layers.items():  # independent recount: zero 8x8 blocks in the saved weights
        w = weights[name]
        blocks = w.reshape(w.shape[0] // 8, 8, w.shape[1] // 8, 8)
        zero_blocks = (blocks == 0).all(axis=(1, 3)).mean()
        assert zero_blocks == pytest.approx(sparsity), name
    rc = main(["prune", *common[:-2], "--plan", str(tmp_path / "mixed.yaml"), "--block", "16x16",
               "--out", str(tmp_path / "x")])  # fmt: skip
    assert rc == 2 and "differs from the plan's '8x8'" in capsys.readouterr().err


def test_codesign_validates_after_masked_recovery_and_keys_the_cache_by_it(tmp_path, capsys):
    import pandas as pd

    model_dir, glue_dir = tiny_text_task(tmp_path)
    argv = ["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir), "--epochs",
            "2", "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "c"), "--config",
            "asic-16x16-int8", "--blocks", "8x8", "--max-loss-increase", "1e-3", "--seq-len", "16",
            "--gradient-batches", "2", "--validate", "3", "--out", str(tmp_path / "cd")]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    one_shot = pd.read_csv(tmp_path / "cd" / "candidates.csv").dropna(subset=["measured_loss"])
    assert main([*argv, "--validate-recovery-steps", "3", "--validate-recovery-lr", "1e-3"]) == 0
    meta = json.loads((tmp_path / "cd" / "candidates.json").read_text())["settings"]
    assert meta["recovery_steps"] == 3 and meta["recovery_lr"] == 1e-3
    recovered = pd.read_csv(tmp_path / "cd" / "candidates.csv").dropna(subset=["measured_loss"])
    assert list(recovered["layer"]) == list(one_shot["layer"])  # the same sample, measured after recovery
    assert not np.allclose(recovered["measured_loss"], one_shot["measured_loss"])


def test_codesign_execute_prunes_the_plan_and_its_uniform_twin_and_simulates_both(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    rc = main(["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
               "--epochs", "2", "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "c"),
               "--config", "asic-16x16-int8", "--blocks", "8x8", "--target-compression", "2", "--seq-len", "16",
               "--gradient-batches", "2", "--execute", "--out", str(tmp_path / "cd")])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    import pandas as pd

    table = pd.read_csv(tmp_path / "cd" / "verification.csv").set_index("plan")
    assert list(table.index) == ["codesign", "uniform"]
    assert table["layer_sparsities"]["uniform"] == 1
    # equal overall compression of the pruned layers (2x asked; blocks round each layer)
    assert table["compression_rate"].to_numpy() == pytest.approx([2.0, 2.0], rel=0.15)
    assert (table["simulated_latency_s"] > 0).all() and table["dev_accuracy"].between(0, 1).all()


def test_codesign_measures_and_executes_on_two_workers_as_it_does_alone(tmp_path, capsys):
    import pandas as pd

    model_dir, glue_dir = tiny_text_task(tmp_path)
    argv = ["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir), "--epochs",
            "2", "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "c"), "--config",
            "asic-16x16-int8", "--blocks", "8x8", "--target-compression", "2", "--seq-len", "16",
            "--gradient-batches", "2", "--validate", "4", "--execute"]  # fmt: skip
    tables = {}
    for name, extra in (("alone", []), ("workers", ["--workers", "2"])):
        assert main([*argv, *extra, "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
        measured = pd.read_csv(tmp_path / name / "candidates.csv").dropna(subset=["measured_loss"])
        measured = measured[["layer", "sparsity", "measured_loss", "measured_accuracy_drop"]].reset_index(drop=True)
        tables[name] = (measured, pd.read_csv(tmp_path / name / "verification.csv"))
    assert len(tables["alone"][0]) == 4
    # the candidates come back in their order; losses equal up to float summation order in another process
    # (float32 losses near 0.7: another thread count changes the last bits, ~1e-5 absolute)
    pd.testing.assert_frame_equal(tables["alone"][0], tables["workers"][0], rtol=1e-4, atol=1e-4)
    columns = ["plan", "compression_rate", "dev_accuracy", "test_accuracy", "simulated_latency_s"]
    pd.testing.assert_frame_equal(tables["alone"][1][columns], tables["workers"][1][columns])


def test_several_accelerators_pick_the_accelerator_with_the_plan_and_report_the_joint_front(tmp_path, capsys):
    import pandas as pd

    from analysis.pareto import pareto_mask

    model_dir, glue_dir = tiny_text_task(tmp_path)
    rc = main(["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
               "--epochs", "2", "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "c"),
               "--config", "asic-16x16-int8", "fpga-zcu102", "--blocks", "8x8", "16x16", "--max-loss-increase",
               "1e-3", "--seq-len", "16", "--gradient-batches", "2", "--out", str(tmp_path / "cd")])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "cd" / "summary.json").read_text())
    plan = load_plan(tmp_path / "cd" / "plan.yaml")
    joint = pd.read_csv(tmp_path / "cd" / "joint.csv")
    assert set(joint["config"]) == {"asic-16x16-int8", "fpga-zcu102"} and set(joint["block"]) == {"8x8", "16x16"}
    # the front is exactly the non-dominated (latency, loss) plans, recomputed here
    expected = pareto_mask(joint, {"latency_s": "min", "fisher": "min"})
    assert (joint["on_front"] == expected).all() and len(summary["joint_front"]) == int(expected.sum())
    # the chosen accelerator has the lowest predicted latency among the accelerators' plans at this budget
    candidates = pd.read_csv(tmp_path / "cd" / "candidates.csv")
    assert set(candidates["config"]) == {"asic-16x16-int8", "fpga-zcu102"}
    assert plan.config == summary["chosen_config"]
    assert len(summary["plans"]) == 4  # 2 accelerators x 2 blocks, each allocated under the same budget
    assert summary["predicted"]["model"]["latency_s"] == pytest.approx(min(p["latency_s"] for p in summary["plans"]))
    assert all(p["fisher"] <= 1e-3 for p in summary["plans"])


@pytest.mark.parametrize(("change", "message"), [
    ({"--sparsities": ["0.5", "1.5"]}, "sparsities: must be in [0, 1), got 1.5"),
    ({"--config": ["nope"]}, "nope"),
    ({"--gradient-batches": ["0"]}, "gradient_batches: must be an integer in [1, 10000], got 0"),
    ({"--validate-examples": ["0"]}, "validate_examples: must be an integer in [1, 1000000], got 0"),
    ({"--blocks": ["0x4"]}, "block rows"),
    ({"--validate-recovery-steps": ["-1"]}, "recovery_steps: must be an integer in [0, 100000], got -1"),
    ({"--validate-recovery-lr": ["2"]}, "recovery_lr: must be a number in (0, 1), got 2.0"),
    ({"--granularity": ["diagonal"]}, "diagonal"),
])  # fmt: skip
def test_codesign_bad_input_exits_2_naming_the_field_before_loading_anything(tmp_path, capsys, change, message):
    options = {"--model": [str(tmp_path / "absent")], "--data": ["sentiment"], "--config": ["asic-16x16-int8"],
               "--max-loss-increase": ["0.01"], "--out": [str(tmp_path / "out")], **change}
    argv = ["codesign", *[x for key, values in options.items() for x in (key, *values)]]
    assert main(argv) == 2
    assert message in capsys.readouterr().err  # not the missing model: the option is checked first


def test_codesign_budgets_are_mutually_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["codesign", "--model", "minilm", "--data", "sentiment", "--config", "asic-16x16-int8",
              "--max-loss-increase", "0.01", "--target-compression", "2", "--out", str(tmp_path / "o")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_hardware_space_crosses_configs_with_axes_and_reports_infeasible_combinations():
    from codesign.loop import hardware_space

    built, infeasible = hardware_space(["asic-16x16-int8", "fpga-zcu102"],
                                       {"pe_array.rows,pe_array.cols": [[8, 8], [64, 128]], "clock_mhz": [200, 400]})
    names = {c.name for c in built}
    assert len(built) + len(infeasible) == 2 * 2 * 2
    assert "asic-16x16-int8[pe_array.rows=64,pe_array.cols=128,clock_mhz=400]" in names
    # 64x128 needs 4096 DSPs on the ZCU102 (2520): recorded with the reason, not raised
    assert {(e["config"], e["overrides"]["pe_array.rows"]) for e in infeasible} == {("fpga-zcu102", 64)}
    assert all("fpga.dsp" in e["reason"] for e in infeasible)
    with pytest.raises(ValueError, match="names no field"):
        hardware_space(["asic-16x16-int8"], {"pe_array.banana": [1]})


def test_codesign_with_hardware_axes_picks_the_faster_clock(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    rc = main(["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
               "--epochs", "2", "--max-train-samples", "16", "--batch-size", "8", "--cache-dir", str(tmp_path / "c"),
               "--config", "asic-16x16-int8", "--blocks", "8x8",
               "--hardware-axes", '{"clock_mhz": [500, 1000], "dram.bw_bytes_per_cycle": [16]}',
               "--max-loss-increase", "1e-3", "--seq-len", "16", "--gradient-batches", "2", "--execute",
               "--out", str(tmp_path / "cd")])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "cd" / "summary.json").read_text())
    fast, slow = (f"asic-16x16-int8[clock_mhz={mhz},dram.bw_bytes_per_cycle=16]" for mhz in (1000, 500))
    assert summary["chosen_config"] == fast
    latency = {p["config"]: p["latency_s"] for p in summary["plans"]}
    # DRAM in bytes per cycle (a memory in the clock domain): the same cycles under the same budget, at twice the clock
    assert latency[slow] == pytest.approx(2 * latency[fast])
    # --execute simulates on the derived accelerator itself (its name is not a preset)
    verification = json.loads((tmp_path / "cd" / "summary.json").read_text())["verification"]
    chosen = summary["predicted"]["model"]["latency_s"]
    assert verification[0]["plan"] == "codesign" and verification[0]["simulated_latency_s"] == pytest.approx(
        chosen, rel=0.5)  # fmt: skip


# -- block shape matched to the array --------------------------------------------------------------------------


def _block_mask(shape, block, sparsity, seed):
    rng = np.random.default_rng(seed)
    grid = (shape[0] // block[0], shape[1] // block[1])
    keep = np.ones(grid[0] * grid[1], bool)
    keep[rng.permutation(keep.size)[: int(sparsity * keep.size)]] = False
    return np.kron(keep.reshape(grid), np.ones(block, bool)).astype(bool)


def test_matched_block_has_no_union_penalty_and_is_faster_than_a_square_block_of_equal_area():
    from codesign.cost import matched_block, resolve_blocks
    from hwsim.config import derive_config, load_config
    from hwsim.simulate import simulate_gemm
    from hwsim.workload import Gemm
    from pruning.spec import any_per_row_tile

    fpga = load_config("fpga-zcu102")  # ws, 32 rows x 64 cols
    assert matched_block(fpga) == "64x16" and matched_block(fpga, 2048) == "64x32"
    input_stationary = derive_config(fpga, {"pe_array.dataflow": "is"}, name="fpga-is")
    assert matched_block(input_stationary) == "32x32" and matched_block(input_stationary, 512) == "16x32"
    # ws streams, per N-tile of 64 weight rows, the union of their kept lines: for 64-row blocks no more
    # than any one row keeps; 32-row blocks of equal area pay for the union of two block rows
    matched, square = _block_mask((384, 1536), (64, 16), 0.5, 0), _block_mask((384, 1536), (32, 32), 0.5, 0)
    assert any_per_row_tile(matched, 64).sum() == matched.sum() // 64
    assert any_per_row_tile(square, 64).sum() > square.sum() // 64
    cycles = {b: simulate_gemm(Gemm("w", M=64, K=1536, N=384, mask=m, block=b), fpga)[0]["cycles"]
              for b, m in (((64, 16), matched), ((32, 32), square))}  # fmt: skip
    assert cycles[64, 16] < cycles[32, 32]
    assert resolve_blocks(["16x16", "matched", "matched:2048"], ["fpga-zcu102", "asic-32x32-int8"]) == [
        "16x16", "64x16", "32x32", "64x32", "32x64"]
    with pytest.raises(ValueError, match="1000 is not a multiple of fpga-zcu102's tile side 64"):
        matched_block(fpga, 1000)
    with pytest.raises(ValueError, match="the area after 'matched:' must be a positive integer"):
        resolve_blocks(["matched:big"], ["fpga-zcu102"])


def test_codesign_refuses_a_block_larger_than_a_layer_before_training(tmp_path, capsys):
    model_dir, glue_dir = tiny_text_task(tmp_path)  # hidden 32: a 4096x4096 block fits no weight
    argv = ["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
            "--cache-dir", str(tmp_path / "c"), "--config", "asic-16x16-int8", "--blocks", "4096x4096",
            "--max-loss-increase", "1e-3", "--out", str(tmp_path / "cd")]  # fmt: skip
    assert main(argv) == 2
    assert "blocks: block 4096x4096 does not fit" in capsys.readouterr().err
    assert not (tmp_path / "cd").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize(("budget", "message"), [
    (["--target-compression", "1e9"], r"target_compression: 1e\+09 is beyond what the candidate sparsities reach "
                                      r"\(at most 8x, every layer at 0.875\)"),
    (["--target-compression", "5", "--sparsities", "0.5", "0.75"], r"target_compression: 5 is beyond .*\(at most 4x"),
    (["--budget-accuracy-drop", "2", "--validate", "5"], r"max_accuracy_drop: a fraction of accuracy in \(0, 1\)"),
])  # fmt: skip
def test_codesign_refuses_a_budget_no_plan_can_meet_before_any_work(tmp_path, capsys, budget, message):
    """1/(1 - highest sparsity) bounds the compression any plan reaches; an accuracy drop is a fraction."""
    model_dir, glue_dir = tiny_text_task(tmp_path)
    argv = ["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
            "--cache-dir", str(tmp_path / "c"), "--config", "asic-16x16-int8", "--blocks", "8x8", *budget,
            "--out", str(tmp_path / "cd")]  # fmt: skip
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "cd").exists() and not (tmp_path / "c").exists()


def test_a_compression_that_block_rounding_misses_is_named_and_the_candidates_are_reused(tmp_path, capsys):
    """At sparsity 0.7, 8x8 blocks keep 5 of 16 (attention) and 10 of 32 (FFN) blocks per weight: 3.2x, below
    the 1/(1 - 0.7) = 3.33x bound checked up front; 3.3 is refused after the candidates, which a rerun reuses."""
    model_dir, glue_dir = tiny_text_task(tmp_path)
    argv = ["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
            "--cache-dir", str(tmp_path / "c"), "--config", "asic-16x16-int8", "--blocks", "8x8", "--sparsities",
            "0.7", "--out", str(tmp_path / "cd")]  # fmt: skip
    assert main([*argv, "--target-compression", "3.3"]) == 2
    assert "target_compression: 3.3 is beyond what 8x8 blocks reach on this model (at most 3.2x)" in \
        capsys.readouterr().err
    assert main([*argv, "--target-compression", "3.2"]) == 0
    assert "only the allocation runs again" in capsys.readouterr().err


def test_area_delay_objective_is_latency_times_the_designs_area_and_refused_on_an_fpga(tmp_path, capsys):
    from codesign.cost import layer_costs
    from hwsim import load_config

    keep = np.ones((64, 32), dtype=bool)
    keep[:32] = False
    rows = layer_costs({("l0", 0.0): np.ones((64, 32), dtype=bool), ("l0", 0.5): keep}, (16, 16),
                       "asic-32x32-int8", tokens=16)  # fmt: skip
    area = load_config("asic-32x32-int8").cost.area_mm2
    assert np.allclose(rows["area_delay_mm2_s"], rows["latency_s"] * area)
    model_dir, glue_dir = tiny_text_task(tmp_path)
    argv = ["codesign", "--model", str(model_dir), "--data", "glue:sst-2", "--glue-dir", str(glue_dir),
            "--cache-dir", str(tmp_path / "c"), "--config", "fpga-zcu102", "--blocks", "8x8",
            "--max-loss-increase", "0.1", "--objective", "area_delay_mm2_s", "--out", str(tmp_path / "cd")]  # fmt: skip
    assert main(argv) == 2
    assert "area_delay_mm2_s needs an ASIC area; fpga-zcu102 is an FPGA" in capsys.readouterr().err
    assert not (tmp_path / "cd").exists()
    # two ASICs: the plan's predicted area-delay is its latency x the chosen design's area
    argv[argv.index("fpga-zcu102")] = "asic-16x16-int8"
    argv[argv.index("--config") + 2:argv.index("--config") + 2] = ["asic-32x32-int8"]
    assert main(argv) == 0, capsys.readouterr().err
    plan = load_plan(tmp_path / "cd" / "plan.yaml")
    model = plan.predicted["model"]
    assert model["area_delay_mm2_s"] == pytest.approx(model["latency_s"] * load_config(plan.config).cost.area_mm2)
