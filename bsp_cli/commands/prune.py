"""``bsp prune``: regularized fine-tune -> hard prune -> masked retrain on a text task."""

from __future__ import annotations

import argparse

from bsp_common import strict_json

EXAMPLE = """example:
  bsp prune --model minilm --data sentiment --block 16x16 --granularity column \\
            --method reweighted --target-sparsity 0.8 --out runs/minilm-16x16-col-0.8
"""


# bsp prune options that set a pruning.settings.TrainBudget field (option dest -> field); their defaults are the
# TrainBudget's, so the CLI and run_pruning cannot drift apart
_BUDGET_OPTIONS = {"epochs": "epochs", "prune_at_epoch": "prune_at_epoch", "max_train_samples": "max_train_samples",
                   "max_eval_samples": "max_eval_samples", "max_seq_len": "max_seq_len", "batch_size": "batch_size",
                   "lr": "learning_rate", "weight_decay": "weight_decay", "seed": "seed", "schedule": "schedule",
                   "prune_start_epoch": "prune_start_epoch", "prune_frequency_steps": "prune_frequency_steps",
                   "teacher": "teacher", "distill_alpha": "distill_alpha",
                   "distill_temperature": "distill_temperature", "distill_hidden_weight": "distill_hidden_weight"}


def register(subparsers) -> None:
    from pruning.settings import PruneSettings, TrainBudget

    fields, s, b = PruneSettings.__dataclass_fields__, PruneSettings(), TrainBudget()
    p = subparsers.add_parser(
        "prune", help="prune a HF encoder", epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", required=True, help="local HF model directory, or the alias 'minilm' (the pretrained "
                   "model; the default recipe fine-tunes it densely first, see --teacher)")
    p.add_argument("--data", required=True, help="sentiment | bbc | glue:TASK")
    p.add_argument("--glue-dir", help="GLUE data directory for --data glue:TASK")
    p.add_argument("--block", help=fields["block"].metadata["help"] + f" (default {s.block}, or the plan's)")
    p.add_argument("--granularity", help=f"block | column | row (default {s.granularity.value}, or the plan's)")
    p.add_argument("--plan", help="a bsp codesign plan (YAML): per-layer sparsities at its block size, instead of "
                   "--target-sparsity")
    p.add_argument("--method", default=s.method.value,
                   help="score (no regularizer: the lowest groups by --score pruned on the schedule; "
                        "'magnitude' is its old name) | reweighted | group-lasso | unstructured | nm (default "
                        f"{s.method.value}: the most accurate in the recipe study)")
    p.add_argument("--target-sparsity", type=float, help=fields["target_sparsity"].metadata["help"] + " (required "
                   "unless --plan)")
    p.add_argument("--scope", default=s.scope.value,
                   help=fields["scope"].metadata["help"] + f": layer | global (default {s.scope.value})")
    p.add_argument("--balanced", action="store_true", help=fields["balanced"].metadata["help"])
    p.add_argument("--lam", type=float, default=s.lam,
                   help=f"{fields['lam'].metadata['help']} (default {s.lam:g}; the recipe study used "
                        "2000 for focused reweighted, 20 for group Lasso, both with --penalty-mode proximal)")
    p.add_argument("--eps", type=float, default=s.eps, help=f"{fields['eps'].metadata['help']} (default {s.eps:g})")
    p.add_argument("--penalty-mode", default=s.penalty_mode, choices=["gradient", "proximal"],
                   help=fields["penalty_mode"].metadata["help"] + f" (default {s.penalty_mode})")
    p.add_argument("--reweight-interval-steps", type=int,
                   help=fields["reweight_interval_steps"].metadata["help"] + " (default: once per epoch)")
    p.add_argument("--nm", default="{}:{}".format(*s.nm), help="N:M for --method nm (default {}:{})".format(*s.nm))
    p.add_argument("--score", default=s.score.value, choices=["magnitude", "taylor", "movement"],
                   help=fields["score"].metadata["help"] + f" (default {s.score.value})")
    p.add_argument("--relative-norms", action="store_true", help=fields["relative_norms"].metadata["help"])
    p.add_argument("--schedule", default=b.schedule, choices=["oneshot", "cubic", "exponential"],
                   help="sparsity schedule: a ramp from --prune-start-epoch to --prune-at-epoch (default "
                        f"{b.schedule}), or one hard prune at --prune-at-epoch (oneshot: the paper's recipe)")
    p.add_argument("--prune-start-epoch", type=float, default=b.prune_start_epoch,
                   help=f"start of a gradual ramp (default {b.prune_start_epoch:g})")
    p.add_argument("--prune-frequency-steps", type=int, default=b.prune_frequency_steps,
                   help=f"optimizer steps between mask updates of a gradual ramp (default {b.prune_frequency_steps})")
    p.add_argument("--teacher", default=b.teacher, choices=["two-stage", "distill", "none"],
                   help="the dense teacher: two-stage (fine-tune --model densely with the same budget once, cached; "
                        "start from it and distil from it -- the most accurate recipe measured), distill (distil "
                        f"only), none (prune --model directly, no teacher: the paper's setting); default {b.teacher}")
    p.add_argument("--teacher-model", help="an existing fine-tuned dense classifier directory to use as the teacher "
                   "instead of training one")
    p.add_argument("--cache-dir", help="where trained teachers are cached (default $BSP_CACHE_DIR or "
                   "~/.cache/bsp-codesign)")
    p.add_argument("--distill-alpha", type=float, default=b.distill_alpha,
                   help=f"weight of the teacher's soft targets in the loss, in [0, 1] (default {b.distill_alpha:g}; "
                        "0: start from the teacher without distilling)")
    p.add_argument("--distill-temperature", type=float, default=b.distill_temperature,
                   help=f"softmax temperature (default {b.distill_temperature:g})")
    p.add_argument("--distill-hidden-weight", type=float, default=b.distill_hidden_weight,
                   help="weight of the MSE between student and teacher hidden states, every layer (default "
                        f"{b.distill_hidden_weight:g}: logits only)")
    p.add_argument("--targets", nargs="+", help=fields["targets"].metadata["help"])
    p.add_argument("--out", required=True, help="output directory: new, empty, or an earlier bsp prune output "
                   "with --overwrite (then replaced atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier bsp prune output in --out")
    p.add_argument("--epochs", type=float, default=b.epochs,
                   help=f"total epochs, fine-tune + retrain (default {b.epochs:g})")
    p.add_argument("--prune-at-epoch", type=float,
                   help="epoch at which the target sparsity is reached (default: half of --epochs)")
    p.add_argument("--max-train-samples", type=int, default=b.max_train_samples,
                   help=f"training subset size (default {b.max_train_samples})")
    p.add_argument("--max-eval-samples", type=int, default=b.max_eval_samples,
                   help=f"dev/test subset size (default {b.max_eval_samples})")
    p.add_argument("--max-seq-len", type=int, default=b.max_seq_len,
                   help=f"tokens per example (default {b.max_seq_len})")
    p.add_argument("--batch-size", type=int, default=b.batch_size,
                   help=f"examples per optimizer step (default {b.batch_size})")
    p.add_argument("--lr", type=float, default=b.learning_rate, help=f"learning rate (default {b.learning_rate:g})")
    p.add_argument("--weight-decay", type=float, default=b.weight_decay, help=f"AdamW weight decay (default "
                   f"{b.weight_decay:g})")
    p.add_argument("--seed", type=int, default=b.seed, help=f"data order and head initialisation (default {b.seed})")
    p.set_defaults(run=run)


def _parse_nm(text: str) -> tuple[int, int]:
    try:
        n, m = (int(x) for x in text.split(":"))
    except ValueError:
        raise ValueError(f"--nm: expected N:M such as 2:4, got {text!r}") from None
    return n, m


def run(args) -> int:
    import sys

    from pruning.report import layer_report
    from pruning.settings import PruneSettings
    from pruning.train import TrainBudget, check_run_output, run_pruning

    check_run_output(args.model, args.out, args.overwrite, args.glue_dir, args.teacher_model)  # before anything loads

    common = {"method": args.method, "scope": args.scope, "balanced": args.balanced, "lam": args.lam, "eps": args.eps,
              "nm": _parse_nm(args.nm), "penalty_mode": args.penalty_mode,
              "reweight_interval_steps": args.reweight_interval_steps, "score": args.score,
              "relative_norms": args.relative_norms, "targets": tuple(args.targets) if args.targets else None}
    if args.plan:
        from codesign.plan import load_plan

        if args.target_sparsity is not None:
            raise ValueError("--target-sparsity: not with --plan (the plan sets every layer's sparsity)")
        plan = load_plan(args.plan)
        for option, given, planned in (("--block", args.block, plan.block), ("--granularity", args.granularity,
                                                                               plan.granularity)):  # fmt: skip
            if given is not None and str(given) != planned:
                raise ValueError(f"{option}: {given!r} differs from the plan's {planned!r}; leave it out")
        settings = plan.prune_settings(**common)
    else:
        if args.target_sparsity is None:
            raise ValueError("--target-sparsity: required (or give --plan)")
        default = PruneSettings()
        settings = PruneSettings(block=args.block or default.block, granularity=args.granularity or default.granularity,
                                 target_sparsity=args.target_sparsity, **common)  # fmt: skip
    for note in _ignored_options(args, settings):
        print(f"note: {note}", file=sys.stderr)
    budget = TrainBudget(**{field: getattr(args, dest) for dest, field in _BUDGET_OPTIONS.items()})
    result = run_pruning(args.model, args.data, settings, args.out, budget, glue_dir=args.glue_dir,
                         overwrite=args.overwrite, teacher=args.teacher_model, cache_dir=args.cache_dir)
    report = layer_report(result.masks)
    with_pd_options(
        lambda: print(
            report[["out_features", "in_features", "groups", "kept_groups", "sparsity", "compression_rate"]].to_string(
                float_format="%.3f"
            )
        )
    )
    print(
        strict_json.dumps(
            {
                "out": str(result.out_dir),
                "dev_accuracy": result.dev_accuracy,
                "test_accuracy": result.test_accuracy,
                **_teacher_accuracy(result.out_dir),
                **result.summary,
                "wall_s": round(result.wall_s, 1),
            },
            indent=2,
        )
    )
    return 0


# options that only some methods read (option dest -> those methods); given to another method they change nothing
_METHOD_OPTIONS = {"nm": ("nm",), "lam": ("reweighted", "group-lasso"), "penalty_mode": ("reweighted", "group-lasso"),
                   "reweight_interval_steps": ("reweighted",), "eps": ("reweighted",),
                   "relative_norms": ("reweighted",), "block": ("reweighted", "group-lasso", "score"),
                   "granularity": ("reweighted", "group-lasso", "score")}  # fmt: skip


def _ignored_options(args, settings) -> list[str]:
    """One line per option set away from its default that ``settings.method`` does not read (``--lam`` with the
    score method, ``--block`` with nm): said, so a typo'd method is not a silent surprise."""
    from pruning.settings import PruneSettings

    default = PruneSettings()

    def given(dest: str) -> bool:  # --block/--granularity stay None unless given (the plan's otherwise)
        if dest in ("block", "granularity"):
            return getattr(args, dest) is not None
        return getattr(settings, dest) != getattr(default, dest)

    method = settings.method.value
    return [f"--{dest.replace('_', '-')} {getattr(args, dest)} has no effect with --method {method} (it applies to "
            f"{', '.join(methods[:-1]) + ' and ' if len(methods) > 1 else ''}{methods[-1]})"
            for dest, methods in _METHOD_OPTIONS.items() if method not in methods and given(dest)]  # fmt: skip


def _teacher_accuracy(out_dir) -> dict:
    """The dense teacher's dev/test accuracy (what the pruned model is compared with), where it was recorded."""
    from pruning.io import read_run_record

    teacher_dir = read_run_record(out_dir).get("extra", {}).get("teacher_dir")
    extra = read_run_record(teacher_dir).get("extra", {}) if teacher_dir else {}
    if "dev_accuracy" not in extra:
        return {}
    return {"teacher_dir": teacher_dir, "teacher_dev_accuracy": extra["dev_accuracy"],
            "teacher_test_accuracy": extra.get("test_accuracy")}  # fmt: skip


def with_pd_options(fn) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_rows", 500):
        fn()
