"""Co-designed vs uniform per-layer sparsity on one accelerator: accuracy against latency after real pruning.

    python -m paper_figs.codesign                                # MiniLM / sentiment, asic-32x32-int8 + fpga-zcu102
    python -m paper_figs.codesign --configs fpga-zcu102 --seeds 0 # one accelerator, one seed
    python -m paper_figs.codesign --quick                        # tiny random BERT, seconds (CI smoke test)

Per accelerator: ``codesign.run_codesign`` estimates every (block, layer, sparsity) candidate once (cached in
``--out``/CONFIG/). For every rate in ``--rates`` the co-designed plan minimises latency under the estimated
loss of the best-estimated uniform plan at that rate (its *twin*). The **uniform front** -- every block at
every rate of ``--front-rates`` (and ``--rates``), each layer at the same sparsity -- is pruned too. Every
plan is pruned with the library's default recipe (two-stage, distillation) for every seed and simulated on
the accelerator. The issue's claim is lower latency than the best uniform plan at equal *measured* accuracy,
so ``results.md`` compares each co-designed plan with the fastest uniform plan at least as accurate (mean
dev accuracy over the same seeds) and with the most accurate uniform plan at most as slow, besides its
twin (paired by seed).
Outputs in ``--out`` (default ``paper_figs/out/codesign``): ``results.csv`` (one row per pruned model),
``results.md``, ``fig_codesign_<config>.png`` (accuracy vs latency) and ``fig_plan_<config>.png`` (the
per-layer sparsity of the first plan, coloured by layer type). Runs are
cached by content, so an interrupted study resumes. A pruned model that another accelerator's study already
trained (same block, per-layer sparsities and seed: typically the uniform plan) is reused and only simulated
again (``trained_for`` names the accelerator it was trained for).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.executor import add_runner_arguments, runner_from_args
from analysis.plots import OKABE_ITO, save_figure
from analysis.store import ResultStore, write_table_atomic
from bsp_common.outputs import prepare_output_dir, write_text_atomic
from paper_figs.reproduce import FULL_BUDGET, STUDY_TRAIN_SAMPLES, _mean_se, _tiny_model, check_study_inputs

CONFIGS = ("asic-32x32-int8", "fpga-zcu102")
RATES = (2.0, 4.0)  # loss budgets: the summed estimate of the uniform plans at these compression rates
FRONT_RATES = (2.0, 3.0, 4.0, 6.0)  # the uniform front: every block at these rates (the plans reach ~2.8x, ~5.8x)
SEEDS = (0, 1, 2)
ROLE_COLOURS = {"query": 0, "key": 1, "value": 2, "attention.output": 3, "intermediate": 4, "output": 5}


def _role(layer: str) -> str:
    for role in ("query", "key", "value", "attention.output", "intermediate"):
        if f".{role}." in layer:
            return role
    return "output"


def _run_dir(out: Path, config: str, label: str, seed: int) -> Path:
    return out / "runs" / f"{config}-{label}-seed{seed}"


def _trained_twin(records: list[dict], block: str, layers: dict, seed: int, out: Path) -> dict | None:
    """A finished record of the same pruned model -- block, per-layer sparsities and seed -- trained for another
    accelerator, whose run directory is still there: its model is reused, only simulated again (training is
    deterministic per seed, and the uniform plan to beat is the same on every accelerator)."""
    for record in records:
        if (record.get("error") is None and record["block"] == block and record["seed"] == seed
                and json.loads(record["layers"]) == layers
                and (_run_dir(out, record["config"], record["plan"], seed) / "config.json").is_file()):  # fmt: skip
            return record
    return None


def prune_and_simulate(plan, seed: int, model: str, data: str, budget, run_dir: Path, cache_dir: Path,
                       seq_len: int, progress: bool = True) -> dict:  # fmt: skip
    """Prune ``model`` with ``plan`` (the default recipe, ``budget`` at ``seed``) into ``run_dir`` and simulate it on
    the plan's accelerator: dev/test accuracy, compression, latency and energy."""
    from pruning.train import run_pruning

    result = run_pruning(model, data, plan.prune_settings(), run_dir, replace(budget, seed=seed), overwrite=True,
                         cache_dir=cache_dir, progress=progress)  # fmt: skip
    return {"dev_accuracy": result.dev_accuracy, "test_accuracy": result.test_accuracy,
            "compression_rate": result.summary["compression_rate"], **_simulated(plan.config, run_dir, seq_len)}


def _prune_and_simulate_job(job: dict) -> dict:
    return prune_and_simulate(**job)


def train_in_parallel(jobs: dict, runner) -> Iterator[tuple[object, dict]]:
    """:func:`prune_and_simulate` of every job (its keyword arguments, by key) on ``runner``'s workers (one per
    GPU with ``--gpus``); yields ``(key, measured)`` as each finishes. A failed run stops the study with its
    error, as a serial run would."""
    for key, job in jobs.items():
        runner.submit(_prune_and_simulate_job, job, key=key, gpu=True)
    for key, measured, error in runner.results():
        if error is not None:
            raise error
        yield key, measured


def _simulated(config: str, run_dir: Path, seq_len: int) -> dict:
    from hwsim import build_workload, simulate
    from hwsim.workload import read_hf_config
    from pruning.masks import load_masks

    totals = simulate(config, build_workload(read_hf_config(run_dir), load_masks(run_dir), seq_len=seq_len)).totals
    return {"latency_s": float(totals["latency_s"]), "energy_pj": float(totals["energy_pj"])}


def _row(config: str, label: str, plan, seed: int, measured: dict, run_dir: Path, seq_len: int, trained_for: str,
         point_id: str) -> dict:
    """A results row: the trained model's accuracies and compression, simulated on ``config``."""
    trained = {k: measured[k] for k in ("dev_accuracy", "test_accuracy", "compression_rate")}
    reuse = config == plan.config == trained_for and "latency_s" in measured  # prune_and_simulate simulated it
    simulated = ({k: measured[k] for k in ("latency_s", "energy_pj")} if reuse
                 else _simulated(config, run_dir, seq_len))  # fmt: skip
    return {"config": config, "plan": label, "block": plan.block, "seed": seed, **trained, **simulated,
            "layers": json.dumps(plan.layers), "trained_for": trained_for, "point_id": point_id,
            "error": None}  # fmt: skip


def _figures(results: pd.DataFrame, plans: dict, out: Path, kind_word: int = 0,
             title: str = "co-designed vs uniform per-layer sparsity") -> list[Path]:  # fmt: skip
    """Per config: dev accuracy vs latency (coloured by the plan label's ``kind_word``-th word), and the first
    plan's per-layer sparsity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for config, table in results.groupby("config"):
        mean = table.groupby(["plan", "block"], as_index=False)[["dev_accuracy", "latency_s"]].mean()
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for i, (kind, sel) in enumerate(mean.assign(kind=mean["plan"].str.split(" ").str[kind_word]).groupby("kind")):
            ax.scatter(sel["latency_s"] * 1e3, sel["dev_accuracy"], color=OKABE_ITO[i], label=kind, s=36)
            for _, row in sel.iterrows():
                ax.annotate(row["plan"], (row["latency_s"] * 1e3, row["dev_accuracy"]), fontsize=7,
                            textcoords="offset points", xytext=(4, 3))  # fmt: skip
        ax.set_xlabel("latency per inference (ms)")
        ax.set_ylabel("dev accuracy (mean over seeds)")
        ax.set_title(f"{config}: {title}", fontsize=9)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        paths += save_figure(fig, out / f"fig_codesign_{config}")
        plt.close(fig)
        plan = plans.get(config)
        if plan is not None:
            fig, ax = plt.subplots(figsize=(8.0, 3.2))
            names = list(plan.layers)
            colours = [OKABE_ITO[ROLE_COLOURS[_role(n)]] for n in names]
            ax.bar(range(len(names)), [plan.layers[n] for n in names], color=colours)
            ax.set_xticks(range(len(names)), [n.split("layer.")[-1].replace(".weight", "") for n in names],
                          rotation=90, fontsize=6)  # fmt: skip
            ax.set_ylabel("sparsity")
            ax.set_title(f"{config}: per-layer sparsity of the co-designed plan ({plan.block})", fontsize=9)
            handles = [plt.Rectangle((0, 0), 1, 1, color=OKABE_ITO[c]) for c in ROLE_COLOURS.values()]
            ax.legend(handles, list(ROLE_COLOURS), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      frameon=False)  # fmt: skip
            paths += save_figure(fig, out / f"fig_plan_{config}")
            plt.close(fig)
    return paths


def _paired(results: pd.DataFrame, twins: dict, twin_header: str = "twin (equal estimated loss)") -> str:
    """Markdown: per config and co-designed plan, against its twin (the uniform plan whose estimated loss is its
    budget), paired by seed: latency change and dev/test accuracy differences (mean +- s.e. over seeds)."""
    lines = [f"| config | plan | {twin_header} | seeds | plan latency (ms) | twin latency (ms) | latency change | "
             "dev change (points) | test change (points) |", "|---|---|---|---|---|---|---|---|---|"]
    for (config, label), twin in twins.items():
        table = results[results["config"] == config]
        plan = table[table["plan"] == label].set_index("seed")
        uniform = table[table["plan"] == twin].set_index("seed")
        seeds = plan.index.intersection(uniform.index)
        if not len(seeds):
            continue
        p, u = plan.loc[seeds], uniform.loc[seeds]
        change = (p["latency_s"].mean() / u["latency_s"].mean() - 1) * 100
        lines.append(f"| {config} | {label} | {twin} | {len(seeds)} | {p['latency_s'].mean() * 1e3:.4f} | "
                     f"{u['latency_s'].mean() * 1e3:.4f} | {change:+.1f} % | "
                     f"{_mean_se((p['dev_accuracy'] - u['dev_accuracy']) * 100)} | "
                     f"{_mean_se((p['test_accuracy'] - u['test_accuracy']) * 100)} |")  # fmt: skip
    return "\n".join(lines)


def front_comparison(results: pd.DataFrame) -> pd.DataFrame:
    """Each co-designed plan against the measured uniform front of its accelerator, over the seeds the plan has
    (a uniform plan counts only with all of them): the fastest uniform plan whose mean dev accuracy is at least
    the plan's (``at_accuracy``) and the most accurate one at most as slow (``at_latency``)."""
    rows = []
    for config, table in results.groupby("config"):
        for label, plan in table[table["plan"].str.startswith("codesign")].groupby("plan"):
            seeds = set(plan["seed"])
            means = []
            for uniform_label, uniform in table[table["plan"].str.startswith("uniform")].groupby("plan"):
                if seeds <= set(uniform["seed"]):
                    chosen = uniform[uniform["seed"].isin(seeds)]
                    means.append({"plan": uniform_label, "dev": chosen["dev_accuracy"].mean(),
                                  "test": chosen["test_accuracy"].mean(), "latency_s": chosen["latency_s"].mean()})
            front = pd.DataFrame(means, columns=["plan", "dev", "test", "latency_s"])
            dev, latency = plan["dev_accuracy"].mean(), plan["latency_s"].mean()
            row = {"config": config, "plan": label, "seeds": len(seeds), "dev": dev,
                   "dev_se": plan["dev_accuracy"].std(ddof=1) / len(seeds) ** 0.5 if len(seeds) > 1 else float("nan"),
                   "test": plan["test_accuracy"].mean(), "latency_s": latency,
                   "compression_rate": plan["compression_rate"].mean()}  # fmt: skip
            as_accurate = front[front["dev"] >= dev].sort_values("latency_s")
            if len(as_accurate):
                best = as_accurate.iloc[0]
                row.update(at_accuracy=best["plan"], at_accuracy_dev=best["dev"], at_accuracy_test=best["test"],
                           at_accuracy_latency_s=best["latency_s"],
                           latency_change=latency / best["latency_s"] - 1)  # fmt: skip
            as_fast = front[front["latency_s"] <= latency].sort_values("dev", ascending=False)
            if len(as_fast):
                best = as_fast.iloc[0]
                row.update(at_latency=best["plan"], at_latency_dev=best["dev"], at_latency_test=best["test"],
                           at_latency_latency_s=best["latency_s"], dev_gain=dev - best["dev"])  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows)


def _front_markdown(front: pd.DataFrame) -> str:
    """``front_comparison`` as a pipe table: accuracies in points, latencies in ms."""

    def points(row, dev: str, test: str) -> str:
        return "" if pd.isna(row.get(dev)) else f"{row[dev] * 100:.2f} / {row[test] * 100:.2f}"

    def ms(value) -> str:
        return "" if pd.isna(value) else f"{value * 1e3:.4f}"

    header = ["config", "plan", "seeds", "compression", "dev (± s.e.) / test", "latency (ms)",
              "fastest uniform at ≥ its dev", "its dev / test", "its latency (ms)", "latency change",
              "most accurate uniform at ≤ its latency", "its dev / test", "dev gain (points)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in front.iterrows():
        error = "" if pd.isna(row["dev_se"]) else f" ± {row['dev_se'] * 100:.2f}"
        cells = [row["config"], row["plan"], str(row["seeds"]), f"{row['compression_rate']:.2f}x",
                 f"{row['dev'] * 100:.2f}{error} / {row['test'] * 100:.2f}", ms(row["latency_s"]),
                 row.get("at_accuracy") if isinstance(row.get("at_accuracy"), str) else "none",
                 points(row, "at_accuracy_dev", "at_accuracy_test"), ms(row.get("at_accuracy_latency_s")),
                 "" if pd.isna(row.get("latency_change")) else f"{row['latency_change'] * 100:+.1f} %",
                 row.get("at_latency") if isinstance(row.get("at_latency"), str) else "none",
                 points(row, "at_latency_dev", "at_latency_test"),
                 "" if pd.isna(row.get("dev_gain")) else f"{row['dev_gain'] * 100:+.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from codesign.loop import run_codesign, uniform_plan

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default="sentiment")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--front-rates", type=float, nargs="+", default=list(FRONT_RATES),
                        help="compression rates of the uniform front (every block; --rates are added)")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out" / "codesign"))
    parser.add_argument("--quick", action="store_true", help="tiny random BERT, seconds")
    add_runner_arguments(parser, "pruning runs")
    args = parser.parse_args(argv)
    try:
        runner = runner_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    if any(r <= 1 for r in [*args.rates, *args.front_rates]):
        parser.error(f"--rates / --front-rates: compression rates must be > 1, got {args.rates} / {args.front_rates}")
    check_study_inputs(parser, None if args.quick else args.model, args.data)
    out = prepare_output_dir(args.out, "paper-codesign")  # resumable
    # the study's budget is pinned: results.jsonl keys its points by plan and seed, not by budget
    budget = FULL_BUDGET.train_budget(max_train_samples=STUDY_TRAIN_SAMPLES)
    model, blocks = args.model, ("16x16", "32x32")
    if args.quick:
        model, blocks = str(_tiny_model(out / "cache")), ("8x8", "16x16")
        budget = replace(budget, epochs=2.0, max_train_samples=64, max_eval_samples=64)
        args.seeds, args.rates = args.seeds[:1], args.rates[:1]
        args.front_rates = args.rates
    points, twins, plans = [], {}, {}  # points: (config, label, plan) -- each pruned for every seed
    for config in args.configs:
        base = run_codesign(model, args.data, config, out / config, blocks=blocks, target_compression=2.0,
                            budget=budget, seq_len=args.seq_len, cache_dir=out / "cache",
                            progress=not args.quick)  # fmt: skip
        estimate = base.summary["estimate"]
        for rate in args.rates:
            uniform_sums = base.uniform[base.uniform["sparsity"].sub(1 - 1 / rate).abs() < 1e-9]
            if not len(uniform_sums):
                continue
            # the twin: the block whose uniform plan at this rate has the smallest estimated loss; the co-designed
            # plan gets exactly that loss budget and minimises latency under it
            best = uniform_sums.sort_values(estimate).iloc[0]
            result = run_codesign(model, args.data, config, out / config, blocks=blocks,
                                  max_loss_increase=float(best[estimate]), budget=budget, seq_len=args.seq_len,
                                  cache_dir=out / "cache", progress=False)  # fmt: skip
            plans.setdefault(config, result.plan)
            twins[(config, f"codesign {rate:g}x")] = f"uniform {best['block']} {rate:g}x"
            points.append((config, f"codesign {rate:g}x", result.plan))
        for rate in sorted(set(args.rates) | set(args.front_rates)):
            for block in blocks:
                points.append((config, f"uniform {block} {rate:g}x", uniform_plan(replace(base.plan, block=block),
                                                                                  1 - 1 / rate)))  # fmt: skip
    store = ResultStore(out / "results.jsonl")
    done, wanted, records = store.done_ids(), set(), store.records()
    trainings: dict[tuple, list] = {}  # (block, layers, seed) -> the points it serves, in study order
    for seed in args.seeds:  # seed-major: a cut-short study still has every plan at the first seeds
        for config, label, plan in points:
            point_id = json.dumps({"config": config, "plan": label, "seed": seed, "layers": plan.layers},
                                  sort_keys=True)  # fmt: skip
            wanted.add(point_id)
            if point_id in done:
                continue
            twin = _trained_twin(records, plan.block, plan.layers, seed, out)
            if twin is not None:  # trained before for another accelerator: simulated again only
                run_dir = _run_dir(out, twin["config"], twin["plan"], seed)
                measured = {k: twin[k] for k in ("dev_accuracy", "test_accuracy", "compression_rate")}
                store.append(_row(config, label, plan, seed, measured, run_dir, args.seq_len, twin["config"],
                                  point_id))  # fmt: skip
                continue
            trainings.setdefault((plan.block, json.dumps(plan.layers, sort_keys=True), seed), []).append(
                (point_id, config, label, plan))
    jobs = {key: {"plan": entries[0][3], "seed": key[2], "model": model, "data": args.data, "budget": budget,
                  "run_dir": _run_dir(out, entries[0][1], entries[0][2], key[2]), "cache_dir": out / "cache",
                  "seq_len": args.seq_len, "progress": not args.quick and not runner.parallel}
            for key, entries in trainings.items()}  # fmt: skip
    for key, measured in train_in_parallel(jobs, runner):
        trained_for = trainings[key][0][1]
        for point_id, config, label, plan in trainings[key]:  # the same pruned model on every accelerator
            store.append(_row(config, label, plan, key[2], measured, jobs[key]["run_dir"], args.seq_len, trained_for,
                              point_id))  # fmt: skip
    results = store.load()
    results = results[results["point_id"].isin(wanted)]
    front = front_comparison(results)
    write_table_atomic(results, out / "results.csv")
    write_table_atomic(front, out / "front.csv")
    markdown = (f"Co-designed plans against the measured uniform front (mean over seeds):\n\n{_front_markdown(front)}"
                f"\n\nAgainst the twin of equal estimated loss, paired by seed:\n\n{_paired(results, twins)}")
    write_text_atomic(out / "results.md", markdown + "\n")
    paths = _figures(results, plans, out)
    print(markdown)
    print(f"wrote {out / 'results.csv'}, {out / 'front.csv'}, {out / 'results.md'}, {len(paths)} figure files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
