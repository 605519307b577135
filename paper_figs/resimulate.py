"""Re-simulate the hardware side of committed paper_figs results with the current simulator and presets.

    python -m paper_figs.resimulate paper_figs/out/sentiment [paper_figs/out/bbc ...]

A study's accuracies are measured once (hours of training); its cycles and energy come from the simulator and
move when the simulator or a preset changes. This command recomputes them for every point of
``<out>/results.csv``: with the point's trained masks where the study's (git-ignored) cache still holds them,
otherwise from one-shot block-norm masks of the pretrained model at the point's block, granularity and
sparsity -- the masks the demo simulates; the ``masks`` column says which. Each point is also simulated on
the *previous* presets (the fixed static power and clamped SRAM table of before the cost model, issue 36)
with the same masks, so the change of the model alone is visible.

Writes ``<out>/hardware.csv`` (per point, with each design's area), ``<out>/hardware.md`` (the moves and the
area or resources per config) and redraws ``fig_pareto_cycles`` / ``fig_pareto_energy`` (accuracy from
``results.csv``, hardware from now).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from analysis.plots import pareto_scatter, save_figure
from analysis.store import write_table_atomic
from bsp_common.outputs import write_text_atomic
from hwsim import build_workload, read_hf_config, simulate
from hwsim.config import derive_config
from hwsim.design_cost import describe_cost
from paper_figs.reproduce import _label

# the ASIC presets' energy terms before the cost model (issue 36): an assumed static power (10 % of the array's
# full-load dynamic power) and Horowitz's SRAM table, clamped above 1 MiB; cycles did not change
PREVIOUS_STATIC_POWER_MW = {"asic-16x16-int8": 7.68, "asic-32x32-int8": 30.72, "asic-128x128-int8": 344.064}
PREVIOUS_SRAM_PJ_PER_64BIT = {8192: 10.0, 32768: 20.0, 1048576: 100.0}
COLUMNS = ("cycles", "latency_s", "energy_pj", "utilization", "compute_cycles", "stall_cycles", "area_mm2",
           "static_power_mw")


def previous_config(name: str):
    """The preset as the model before the cost model saw it (FPGA presets: unchanged)."""
    if name not in PREVIOUS_STATIC_POWER_MW:
        return name
    overrides = {"energy.static_power_mw": PREVIOUS_STATIC_POWER_MW[name],
                 "energy.sram_pj_per_64bit": PREVIOUS_SRAM_PJ_PER_64BIT}  # fmt: skip
    return derive_config(name, overrides, name=f"{name} (before the cost model)")


def _one_shot_masks(model_dir: Path, block: str, granularity: str, sparsity: float) -> dict:
    from transformers import AutoModel

    from pruning import BlockPruner, PruneSettings

    model = AutoModel.from_pretrained(model_dir, local_files_only=True)
    pruner = BlockPruner(PruneSettings(block=block, granularity=granularity, method="score",
                                       target_sparsity=sparsity))  # fmt: skip
    pruner.prepare(model)
    pruner.prune()
    return pruner.finalize()


def resimulate(out: Path) -> pd.DataFrame:
    """Hardware of every point of ``out/results.csv``, now and on the previous presets."""
    from analysis.accuracy import model_fingerprint
    from pruning.masks import load_masks
    from pruning.models import quiet_transformers

    quiet_transformers()
    results = pd.read_csv(out / "results.csv")
    model_dir = Path(model_fingerprint(str(results["model"].iloc[0]))["model_dir"])
    hf = read_hf_config(model_dir)
    masks_of: dict[tuple, tuple[dict, str]] = {}
    rows = []
    for _, point in results.iterrows():
        key = (point["block"], point["granularity"], float(point["target_sparsity"]), point["method"],
               point.get("seed"))  # fmt: skip
        if key not in masks_of:
            trained = point.get("masks_path")
            if point["method"] == "dense":
                masks_of[key] = ({}, "dense")
            elif isinstance(trained, str) and Path(trained).is_file():
                masks_of[key] = (load_masks(trained), "trained")
            else:
                masks_of[key] = (_one_shot_masks(model_dir, point["block"], point["granularity"],
                                                 float(point["target_sparsity"])), "one-shot")  # fmt: skip
        masks, source = masks_of[key]
        workload = build_workload(hf, masks, batch=int(point["batch"]), seq_len=int(point["seq_len"]))
        overrides = json.loads(point["hw_overrides"]) if isinstance(point["hw_overrides"], str) else {}
        now = simulate(derive_config(point["config"], overrides), workload).totals
        before = simulate(derive_config(previous_config(point["config"]), overrides), workload).totals
        rows.append({"point_id": point["point_id"], "config": point["config"], "label": _label(point),
                     "method": point["method"], "seed": point.get("seed"), "target_sparsity": point["target_sparsity"],
                     "compression_rate": point["compression_rate"], "accuracy": point["accuracy"], "masks": source,
                     "committed_cycles": point["cycles"], "committed_energy_pj": point["energy_pj"],
                     **{f"previous_{k}": before[k] for k in ("cycles", "latency_s", "energy_pj")},
                     **{k: now[k] for k in COLUMNS}})  # fmt: skip
    return pd.DataFrame(rows)


def _report(table: pd.DataFrame) -> str:
    lines = ["Hardware re-simulated with the current presets (microarchitecture terms, off-chip DRAM in GB/s, "
             "static power and SRAM energy derived from each design's size) by `python -m paper_figs.resimulate`. "
             "Masks: "
             + ", ".join(f"{n} {k}" for k, n in table["masks"].value_counts().items())
             + " (one-shot: block-norm masks of the pretrained model at the point's block, granularity and "
             "sparsity; the trained masks are in the git-ignored cache). Accuracy is unchanged.", "",
             "Change of the cost model alone (same masks; median over points, min..max; cycles unchanged):", "",
             "| config | points | latency | energy |", "|---|---|---|---|"]  # fmt: skip
    for config, group in table.groupby("config"):
        latency = group["latency_s"] / group["previous_latency_s"] - 1
        energy = group["energy_pj"] / group["previous_energy_pj"] - 1
        lines.append(f"| {config} | {len(group)} | {latency.median():+.1%} ({latency.min():+.1%}..{latency.max():+.1%})"
                     f" | {energy.median():+.1%} ({energy.min():+.1%}..{energy.max():+.1%}) |")  # fmt: skip
    lines += ["", "What each design costs (`hwsim.design_cost`):", ""]
    lines += [f"- {config}: {describe_cost(derive_config(config, {}))}" for config in table["config"].unique()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outs", nargs="+", type=Path, help="study directories holding a results.csv")
    args = parser.parse_args(argv)
    for out in args.outs:
        if not (out / "results.csv").is_file():
            print(f"paper_figs.resimulate: {out} has no results.csv", file=sys.stderr)
            return 2
    for out in args.outs:
        table = resimulate(out)
        write_table_atomic(table, out / "hardware.csv")
        report = _report(table)
        write_text_atomic(out / "hardware.md", report)
        labelled = table.rename(columns={"label": "block"})
        save_figure(pareto_scatter(labelled, x="cycles", y="accuracy"), out / "fig_pareto_cycles")
        save_figure(pareto_scatter(labelled, x="energy_pj", y="accuracy"), out / "fig_pareto_energy")
        print(f"{out}:\n{report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
