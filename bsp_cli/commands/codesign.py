"""``bsp codesign``: per-layer block sparsity chosen for a target accelerator."""

from __future__ import annotations

import argparse
import sys

from analysis.executor import add_runner_arguments
from codesign.loop import OBJECTIVES

EXAMPLE = """example:
  bsp codesign --model minilm --data sentiment --config asic-32x32-int8 --objective latency_s \\
               --max-loss-increase 0.05 --out runs/codesign
  bsp prune --model minilm --data sentiment --plan runs/codesign/plan.yaml --out runs/minilm-codesign
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("codesign", help="choose per-layer sparsity for an accelerator (plan.yaml)",
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", required=True, help="local HF model directory, or the alias 'minilm'")
    p.add_argument("--data", required=True, help="sentiment | bbc | glue:TASK")
    p.add_argument("--glue-dir", help="GLUE data directory for --data glue:TASK")
    p.add_argument("--config", required=True, nargs="+", help="accelerator preset name(s) or YAML path(s); with "
                   "several, the accelerator is chosen with the plan and joint.csv holds the joint front")
    p.add_argument("--hardware-axes", help="a hardware space crossed with --config, as JSON or a YAML file in the "
                   "sweep's hardware_axes format, e.g. '{\"pe_array.rows,pe_array.cols\": [[16, 16], [32, 32]], "
                   "\"clock_mhz\": [500, 1000]}'; the accelerator is chosen with the plan")
    p.add_argument("--objective", default="latency_s", choices=OBJECTIVES,
                   help="what the allocation minimises (default latency_s); area_delay_mm2_s is latency x the "
                        "design's area, so a bigger array must earn its silicon (ASIC configs)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--max-loss-increase", type=float, help="budget: summed estimated loss increase")
    budget.add_argument("--budget-accuracy-drop", type=float, help="budget: accuracy drop (fraction, e.g. 0.01): "
                        "with --loss-model the predicted drop after retraining, otherwise converted to a loss "
                        "budget through --validate measured candidates")
    budget.add_argument("--target-compression", type=float, help="instead: minimise the estimated loss at this "
                        "overall compression rate of the pruned layers (e.g. 4)")
    p.add_argument("--blocks", nargs="+", default=["16x16", "32x32", "matched"], help="candidate block sizes (one "
                   "per plan); 'matched' (or 'matched:AREA', default 1024 weights) is each accelerator's block shape "
                   "that its array skips without a union penalty, e.g. 64x16 on fpga-zcu102 (default 16x16 32x32 "
                   "matched)")
    p.add_argument("--granularity", default="block", help="block | column | row (default block)")
    p.add_argument("--sparsities", type=float, nargs="+", help="candidate per-layer sparsities "
                   "(default 0 0.25 0.5 0.625 0.75 0.875)")
    p.add_argument("--estimate", default="fisher", choices=["fisher", "taylor"],
                   help="sensitivity estimate (default fisher: second order, never negative)")
    p.add_argument("--loss-model", help="a retrained loss model (JSON from codesign.loss_model, e.g. "
                   "paper_figs/out/codesign-loss/loss_model.json): the estimate becomes the accuracy drop after "
                   "pruning with retraining, which prices concentrated sparsity (replaces --estimate)")
    p.add_argument("--gradient-batches", type=int, default=8, help="batches of gradients for the estimate")
    p.add_argument("--validate", type=int, default=0, help="candidates per block also measured (prune that layer "
                   "alone, evaluate): rank correlation in summary.json (default 0)")
    p.add_argument("--validate-examples", type=int, default=512, help="held-out dev examples the --validate "
                   "measurements evaluate on (default 512)")
    p.add_argument("--validate-recovery-steps", type=int, default=0, help="measure each --validate candidate after "
                   "this many masked Adam steps on the gradient batches (the pruned groups held at zero) instead of "
                   "one-shot: the damage a short retraining leaves (default 0)")
    p.add_argument("--validate-recovery-lr", type=float, default=1e-4, help="learning rate of those steps "
                   "(default 1e-4)")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per inference on the accelerator (default 128)")
    p.add_argument("--execute", action="store_true", help="then prune with the plan and with the uniform plan of "
                   "equal compression (the default recipe) and simulate both: predicted vs measured")
    p.add_argument("--epochs", type=float, default=2.0, help="training epochs of the dense fine-tune and of "
                   "each --execute run (default 2)")
    p.add_argument("--max-train-samples", type=int, default=2000, help="training subset size (default 2000)")
    p.add_argument("--batch-size", type=int, default=32, help="examples per step (default 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", help="where dense teachers are cached (default $BSP_CACHE_DIR or "
                   "~/.cache/bsp-codesign)")
    p.add_argument("--out", required=True, help="output directory: new, empty, or an earlier bsp codesign output")
    add_runner_arguments(p, "--validate measurements and --execute pruning runs")
    p.set_defaults(run=run)


def _read_axes(text: str) -> dict:
    """``--hardware-axes``: a YAML file, or inline JSON/YAML."""
    from pathlib import Path

    from bsp_common.safe_yaml import load_yaml_file, load_yaml_text

    axes = load_yaml_file(text, "hardware axes") if Path(text).is_file() else load_yaml_text(text, "--hardware-axes")
    if not isinstance(axes, dict):
        raise ValueError(f"--hardware-axes: expected a mapping of config field paths to value lists, got {text!r}")
    return axes


def run(args) -> int:
    from analysis.display import readable_table
    from analysis.executor import runner_from_args
    from bsp_common.units import readable_value
    from codesign.loop import DEFAULT_SPARSITIES, run_codesign, verify_plan
    from pruning.settings import TrainBudget

    runner = runner_from_args(args)  # a bad --workers/--gpus/--dask-scheduler: refused before any work

    budget = TrainBudget(epochs=args.epochs, max_train_samples=args.max_train_samples, batch_size=args.batch_size,
                         seed=args.seed)  # fmt: skip
    config = args.config[0] if len(args.config) == 1 else args.config
    if args.hardware_axes:
        from codesign.loop import hardware_space

        config, infeasible = hardware_space(args.config, _read_axes(args.hardware_axes))
        for entry in infeasible:
            print(f"infeasible: {entry['config']} {entry['overrides']}: {entry['reason']}")
        if not config:
            raise ValueError("--hardware-axes: no combination can be built (see the reasons above)")
    result = run_codesign(args.model, args.data, config, args.out, blocks=tuple(args.blocks),
                          granularity=args.granularity, sparsities=tuple(args.sparsities or DEFAULT_SPARSITIES),
                          objective=args.objective, max_loss_increase=args.max_loss_increase,
                          max_accuracy_drop=args.budget_accuracy_drop, target_compression=args.target_compression,
                          estimate=args.estimate, loss_model=args.loss_model, budget=budget,
                          gradient_batches=args.gradient_batches, validate=args.validate,
                          validate_examples=args.validate_examples, recovery_steps=args.validate_recovery_steps,
                          recovery_lr=args.validate_recovery_lr, seq_len=args.seq_len, glue_dir=args.glue_dir,
                          cache_dir=args.cache_dir, runner=runner)  # fmt: skip
    predicted = result.summary["predicted"]
    best = predicted["best_uniform"]
    print(f"plan: {result.out_dir / 'plan.yaml'} ({result.plan.config}, {result.plan.block} blocks, "
          f"{result.summary['constraint']})")
    estimate = result.summary["estimate"]
    allocation = result.allocation[["layer", "sparsity", estimate, args.objective]]
    print(readable_table(allocation.assign(**{estimate: allocation[estimate].map("{:.3g}".format)}))
          .to_string(index=False))  # fmt: skip

    def shown(value: float) -> str:
        return readable_value(args.objective, value)

    uniform = ("none fits" if best is None
               else f"{shown(best[args.objective])} at {best['block']} {best['sparsity']:.0%}")  # fmt: skip
    print(f"predicted {args.objective}: {shown(predicted['model'][args.objective])} (dense "
          f"{shown(predicted['dense_model'][args.objective])}; best uniform plan under the same constraint: {uniform})")
    if result.summary.get("budget_binds") is False:
        print(f"warning: the budget does not bind: every layer is at its cheapest sparsity and the plan uses "
              f"{result.summary['budget_used']:.1%} of the budget ({result.summary['constraint']}); a smaller budget "
              "trades accuracy for speed, a larger one changes nothing", file=sys.stderr)  # fmt: skip
    if "joint_front" in result.summary:
        print(f"joint front (accelerator and plan together): {len(result.summary['joint_front'])} plans -> "
              f"{result.out_dir / 'joint.csv'}")
    if "validation" in result.summary:
        print(f"sensitivity check: {result.summary['validation']}")
    if args.execute:
        table = verify_plan(result, args.model, args.data, budget, seq_len=args.seq_len, glue_dir=args.glue_dir,
                            cache_dir=args.cache_dir, runner=runner)  # fmt: skip
        print(table.to_string(index=False, float_format="%.4g"))
    return 0
