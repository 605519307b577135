"""The retrained loss model, fitted to the co-design study's pruned plans, and the plans it gives.

    python -m paper_figs.codesign_loss             # fit + plans (seconds, from the stored results)
    python -m paper_figs.codesign_loss --measure   # + prune every plan that is not uniform, 3 seeds (~4 min each)

The one-shot estimates rank single-layer damage well but misprice concentrated sparsity after retraining
(docs/guides/codesign.md). :mod:`codesign.loss_model` is fitted here to what was measured: the study's
``results.csv`` (``--study``) and JSONL tables of further runs (``--extra``; rows with plan, seed, dev, test,
layers, taken to be at ``--block``). One intercept per table, seed and block, so runs of different machines
or blocks are only compared among themselves. Then for every accelerator of the study and every ``--rates``
the plan with the lowest latency at the uniform plan's *predicted* accuracy (exact knapsack over the study's
``candidates.csv``) -- the plan the issue's target asks for, if the model is right.

``--measure`` prunes each plan that differs from uniform, and its uniform twin, with the study's recipe and
budget at ``--seeds`` on this machine, simulates both and compares measured with predicted: an out-of-sample
test, since none of these runs is in the fit. Outputs in ``--out`` (default ``paper_figs/out/codesign-loss``):
``loss_model.json``, ``fit.csv``, ``plans.csv``, ``plan_<config>_<rate>x.yaml``, ``measured.jsonl``
(resumable), ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.executor import add_runner_arguments, runner_from_args
from analysis.store import ResultStore, write_table_atomic
from bsp_common.outputs import prepare_output_dir, write_text_atomic
from paper_figs.codesign import _paired, train_in_parallel
from paper_figs.reproduce import FULL_BUDGET, STUDY_TRAIN_SAMPLES

OUT = Path(__file__).parent / "out"
RATES = (2.0, 4.0)
SEEDS = (0, 1, 2)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it (portable provenance)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def observations(study: Path, extras: list[Path], block: str) -> pd.DataFrame:
    """One row per pruned model at ``block``: plan, group (table, seed, block), dev accuracy, layers."""
    results = pd.read_csv(study / "results.csv").drop_duplicates(["plan", "seed", "layers"])
    results = results[results["block"] == block]
    rows = [{"plan": f"{r.config} {r.plan}" if r.plan.startswith("codesign") else r.plan,
             "group": f"{study.name} seed{r.seed} {r.block}", "accuracy": r.dev_accuracy, "layers": r.layers}
            for r in results.itertuples()]  # fmt: skip
    for path in extras:
        table = pd.read_json(path, lines=True)
        missing = sorted({"plan", "seed", "dev", "layers"} - set(table.columns))
        if missing:
            raise ValueError(f"--extra {path}: missing columns {missing}")
        rows += [{"plan": f"{path.parent.name}: {r.plan}", "group": f"{path.parent.name} seed{r.seed} {block}",
                  "accuracy": r.dev, "layers": r.layers} for r in table.itertuples()]  # fmt: skip
    return pd.DataFrame(rows)


def plans_for(candidates: pd.DataFrame, uniform: pd.DataFrame, model, block: str, rates) -> list[dict]:
    """Per rate: the fastest plan at the uniform plan's predicted drop, with predicted latencies (model level:
    the unpruned rest of the model from ``uniform.csv``) and the hardware-optimal plan of the same kept weights."""
    from codesign.loop import allocate_block, hardware_optimal
    from codesign.loss_model import candidate_drops

    table = candidates[candidates["block"] == block].copy()
    table["retrained"] = candidate_drops(table, model)
    rows_uniform = uniform[uniform["block"] == block].set_index("sparsity")
    dense_layers = table[table["sparsity"] == 0]
    fixed = float(rows_uniform["latency_s"][0.0]) - float(dense_layers["latency_s"].sum())
    entries = []
    for rate in rates:
        sparsity = round(1 - 1 / rate, 6)
        level = table[(table["sparsity"] - sparsity).abs() < 1e-9]
        if not len(level):
            raise ValueError(f"--rates: {rate:g}x (sparsity {sparsity}) is not a candidate sparsity of the study")
        budget = float(level["retrained"].sum())
        chosen, solution = allocate_block(table, "latency_s", "retrained", budget * (1 + 1e-9))
        kept = float(chosen["kept_weights"].sum())
        entries.append({"rate": rate, "uniform_sparsity": sparsity, "predicted_drop": solution.weight,
                        "uniform_predicted_drop": budget, "latency_s": solution.value + fixed,
                        "uniform_latency_s": float(level["latency_s"].sum()) + fixed,
                        "hardware_optimal_latency_s": hardware_optimal(table, "latency_s", kept).value + fixed,
                        "kept_fraction": kept / float(dense_layers["kept_weights"].sum()),
                        "layers": dict(zip(chosen["layer"], chosen["sparsity"].astype(float), strict=True))})
    return entries


def _measured_markdown(measured: pd.DataFrame, plans: pd.DataFrame) -> str:
    twins = {(r.config, r.label): f"uniform {r.block} {r.rate:g}x" for r in plans.itertuples() if r.differs}
    predicted = ["", "Predicted (model) against measured, mean over the measured seeds:", "",
                 "| config | plan | predicted dev change (points) | measured dev change (points) | "
                 "predicted latency change | measured latency change |", "|---|---|---|---|---|---|"]
    for r in plans[plans["differs"]].itertuples():
        p = measured[(measured["config"] == r.config) & (measured["plan"] == r.label)].set_index("seed")
        u = measured[(measured["config"] == r.config) & (measured["plan"] == twins[r.config, r.label])].set_index(
            "seed")  # fmt: skip
        seeds = p.index.intersection(u.index)
        if len(seeds):
            predicted.append(f"| {r.config} | {r.label} | {(r.uniform_predicted_drop - r.predicted_drop) * 100:+.2f}"
                             f" | {(p.loc[seeds, 'dev_accuracy'] - u.loc[seeds, 'dev_accuracy']).mean() * 100:+.2f} | "
                             f"{(r.latency_s / r.uniform_latency_s - 1) * 100:+.1f} % | "
                             f"{(p.loc[seeds, 'latency_s'].mean() / u.loc[seeds, 'latency_s'].mean() - 1) * 100:+.1f}"
                             " % |")  # fmt: skip
    return _paired(measured, twins, "uniform twin (equal predicted accuracy)") + "\n" + "\n".join(predicted)


def main(argv=None) -> int:
    from codesign.loop import uniform_plan
    from codesign.loss_model import fit_retrained_loss
    from codesign.plan import CodesignPlan

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default=str(OUT / "codesign"), help="a paper_figs.codesign output directory")
    parser.add_argument("--extra", nargs="*", default=[str(OUT / "codesign-headroom" / "results.jsonl")],
                        help="JSONL tables of further pruned runs (plan, seed, dev, test, layers) at --block")
    parser.add_argument("--block", default="32x32", help="the block the model is fitted and plans made for")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--measure", action="store_true", help="prune the plans that differ from uniform")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--data", default="sentiment")
    parser.add_argument("--out", default=str(OUT / "codesign-loss"))
    add_runner_arguments(parser, "--measure pruning runs")
    args = parser.parse_args(argv)
    try:
        runner = runner_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    study, extras = Path(args.study), [Path(p) for p in args.extra]
    for path in [study / "results.csv", *extras]:
        if not path.is_file():
            parser.error(f"input {path} does not exist (run python -m paper_figs.codesign first)")
    out = prepare_output_dir(args.out, "paper-codesign-loss")
    obs = observations(study, extras, args.block)
    configs = sorted(p.parent.name for p in study.glob("*/candidates.csv"))
    first = pd.read_csv(study / configs[0] / "candidates.csv")
    first = first[(first["block"] == args.block) & (first["config"] == configs[0])]
    sizes = first.groupby("layer")["kept_weights"].max().to_dict()
    model, fit = fit_retrained_loss(obs, sizes)
    model = replace(model, fit={**model.fit, "block": args.block, "study": _shown(study),
                                "extra": [_shown(p) for p in extras]})  # fmt: skip
    model.save(out / "loss_model.json")
    write_table_atomic(fit, out / "fit.csv")
    plan_rows = []
    for config in configs:
        candidates = pd.read_csv(study / config / "candidates.csv")
        uniform = pd.read_csv(study / config / "uniform.csv")
        for entry in plans_for(candidates[candidates["config"] == config], uniform, model, args.block, args.rates):
            label = f"retrained-model {entry['rate']:g}x"
            differs = any(abs(s - entry["uniform_sparsity"]) > 1e-9 for s in entry["layers"].values())
            plan = CodesignPlan(block=args.block, layers=entry["layers"], config=config, objective="latency_s",
                                constraint=f"retrained-model predicted drop <= uniform {entry['rate']:g}x's")
            plan.save(out / f"plan_{config}_{entry['rate']:g}x.yaml")
            plan_rows.append({"config": config, "label": label, "block": args.block, "differs": differs,
                              **{k: v for k, v in entry.items() if k != "layers"}, "plan": plan})  # fmt: skip
    plans = pd.DataFrame(plan_rows)
    write_table_atomic(plans.drop(columns="plan"), out / "plans.csv")
    lines = [f"Retrained loss model, fitted to {model.fit['observations']} pruned models ({model.fit['plans']} "
             f"plans, {model.fit['groups']} groups) at {args.block}: power {model.power:g}, slope "
             f"{model.slope:.4g}; rmse {model.fit['rmse'] * 100:.2f} points, leave-one-plan-out rmse "
             f"{model.fit.get('left_out_rmse', float('nan')) * 100:.2f} points.", "",
             "| config | rate | plan differs from uniform | predicted latency change | hardware-optimal at its "
             "compression | kept fraction |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in plans.itertuples():
        lines.append(f"| {r.config} | {r.rate:g}x | {'yes' if r.differs else 'no'} | "
                     f"{(r.latency_s / r.uniform_latency_s - 1) * 100:+.1f} % | "
                     f"{(r.hardware_optimal_latency_s / r.uniform_latency_s - 1) * 100:+.1f} % | "
                     f"{r.kept_fraction:.3f} |")  # fmt: skip
    if args.measure:
        budget = FULL_BUDGET.train_budget(max_train_samples=STUDY_TRAIN_SAMPLES)
        store = ResultStore(out / "measured.jsonl")
        done = store.done_ids()
        jobs, arms = {}, {}
        for seed in args.seeds:  # seed-major: a cut-short run has every plan at the first seeds
            for r in plans[plans["differs"]].itertuples():
                twin = uniform_plan(r.plan, r.uniform_sparsity)
                for label, plan in ((r.label, r.plan), (f"uniform {r.block} {r.rate:g}x", twin)):
                    point_id = json.dumps({"config": r.config, "layers": plan.layers, "seed": seed}, sort_keys=True)
                    if point_id in done or point_id in jobs:
                        continue
                    run_dir = out / "runs" / f"{r.config}-{label.replace(' ', '_')}-seed{seed}"
                    jobs[point_id] = {"plan": plan, "seed": seed, "model": "minilm", "data": args.data,
                                      "budget": budget, "run_dir": run_dir, "cache_dir": OUT / "recipes" / "cache",
                                      "seq_len": args.seq_len, "progress": not runner.parallel}  # fmt: skip
                    arms[point_id] = (r.config, label)
        for point_id, row in train_in_parallel(jobs, runner):
            config, label = arms[point_id]
            plan = jobs[point_id]["plan"]
            store.append({"config": config, "plan": label, "seed": jobs[point_id]["seed"], **row,
                          "layers": json.dumps(plan.layers), "point_id": point_id, "error": None})
    if (out / "measured.jsonl").is_file():
        measured = ResultStore(out / "measured.jsonl").load()
        lines += ["", "Measured on this machine, paired by seed against the uniform twin:", "",
                  _measured_markdown(measured, plans)]
    write_text_atomic(out / "results.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
