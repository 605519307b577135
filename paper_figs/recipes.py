"""Pruning-recipe study: sparsity schedule x group score x regularizer x distillation at one block size.

    python -m paper_figs.recipes                      # 16x16, rates 2 and 4, seed 0 (~45 min on 2 CPU cores)
    python -m paper_figs.recipes --seeds 0 1 2        # the paired comparison over 3 seeds
    python -m paper_figs.recipes --quick              # tiny random BERT, seconds (CI smoke test)

Every point is one ``pruning.run_pruning`` with the reproduction's budget (1,600 training tweets, 4 epochs,
seq 64, lr 1e-4) and differs only in the recipe:

* ``oneshot magnitude`` -- the old default: one hard prune after epoch 1 by block norm, 3 retrain epochs;
* ``cubic <score>`` -- sparsity ramps from 0 at step 0 to the target at epoch 2 (Zhu & Gupta cubic curve,
  masks recomputed every 10 steps, monotone), then 2 retrain epochs;
* ``cubic reweighted`` / ``cubic group-lasso`` -- the same ramp with the penalty (proximal step) focused on
  the groups the next mask update removes, reweighted alphas from norms relative to each layer's mean;
* ``+kd`` -- plus distillation from the dense fine-tune of the same seed (alpha 0.5, T 2);
* ``two-stage`` -- the run starts from that dense fine-tune instead of the pretrained model (its cost: one
  dense fine-tune per seed, shared by every rate and recipe).

Results: ``--out``/recipes.jsonl (resumable), ``recipes.csv`` (mean +- std per recipe and rate) and
``recipes_paired.csv`` (differences to ``oneshot magnitude`` paired by seed, in points).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import replace
from pathlib import Path

from analysis.executor import add_runner_arguments, runner_from_args
from bsp_common.outputs import prepare_output_dir
from paper_figs.reproduce import GROUP_LASSO_LAM, RAMP_END_EPOCH, REWEIGHTED_LAM, _tiny_model, check_study_inputs
from paper_figs.tune import BUDGET, run_study

RATES = (2, 4)
SEEDS = (0,)
BLOCK = "16x16"
BASELINE = "oneshot magnitude"

_GRADUAL = {"schedule": "cubic", "prune_start_epoch": 0.0, "prune_at_epoch": RAMP_END_EPOCH,
            "prune_frequency_steps": 10}  # fmt: skip


def recipes() -> list[dict]:
    """The named recipes of the study (see the module docstring)."""
    reweighted = {"method": "reweighted", "penalty_mode": "proximal", "relative_norms": True,
                  "reweight_interval_steps": 1, **_GRADUAL}  # fmt: skip
    taylor = {"name": "cubic taylor", "method": "score", "score": "taylor", **_GRADUAL}
    default = {
        **taylor,
        "name": "two-stage cubic taylor +kd",
        "teacher": True,
        "init_from_teacher": True,
        "distill_alpha": 0.5,
    }
    return [  # most informative first: a cut-short run still compares the main candidates
        {"name": BASELINE, "method": "score", "prune_at_epoch": 1.0},
        {"name": "cubic magnitude", "method": "score", **_GRADUAL},
        taylor,
        default,
        {"name": "cubic reweighted", "lam": REWEIGHTED_LAM, **reweighted},
        {"name": "cubic group-lasso", "method": "group-lasso", "lam": GROUP_LASSO_LAM, "penalty_mode": "proximal",
         **_GRADUAL},
        # the regularizers with the score that chooses best (which groups are doomed, and which go)
        {"name": "cubic reweighted taylor", "lam": REWEIGHTED_LAM, "score": "taylor", **reweighted},
        {"name": "cubic group-lasso taylor", "method": "group-lasso", "lam": GROUP_LASSO_LAM, "score": "taylor",
         "penalty_mode": "proximal", **_GRADUAL},
        {"name": "two-stage cubic reweighted +kd", "lam": REWEIGHTED_LAM, "teacher": True, "init_from_teacher": True,
         "distill_alpha": 0.5, **reweighted},
        {**taylor, "name": "cubic taylor +kd", "teacher": True, "distill_alpha": 0.5},
        {"name": "cubic reweighted lam=200", "lam": REWEIGHTED_LAM / 10, **reweighted},
        {"name": "cubic reweighted +kd", "lam": REWEIGHTED_LAM, "teacher": True, "distill_alpha": 0.5, **reweighted},
        # variations of the default (two-stage + kd) that keep its teacher: more weight on the soft targets,
        # hidden-state distillation, a shorter or a longer ramp (more or fewer masked retraining epochs)
        {**default, "name": "two-stage kd alpha=0.9", "distill_alpha": 0.9},
        {**default, "name": "two-stage kd +hidden", "distill_hidden_weight": 1.0},
        {**default, "name": "two-stage kd ramp to epoch 1", "prune_at_epoch": 1.0},
        {**default, "name": "two-stage kd ramp to epoch 3", "prune_at_epoch": 3.0},
        {**default, "name": "two-stage kd alpha=0.9 +hidden", "distill_alpha": 0.9, "distill_hidden_weight": 1.0},
        # one taylor threshold over all layers: each layer keeps what it needs (compression is over all layers)
        {**default, "name": "two-stage kd global", "scope": "global"},
        # twice the training data (a new dense teacher, trained on it too): does the drop from dense shrink?
        {**default, "name": "two-stage kd 3200 examples", "max_train_samples": 3200},
    ]  # fmt: skip


def grid(rates=RATES, seeds=SEEDS, block: str = BLOCK) -> list[dict]:
    """Seed-major points: every recipe and rate at the first seed before the next seed."""
    return [{**recipe, "block": block, "rate": rate, "seed": seed}
            for seed in seeds for recipe, rate in itertools.product(recipes(), rates)]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default="sentiment")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out" / "recipes"))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--rates", type=int, nargs="+", default=list(RATES))
    parser.add_argument("--only", nargs="+", help="run only the recipes of these exact names")
    parser.add_argument("--quick", action="store_true", help="tiny random BERT, seconds")
    add_runner_arguments(parser, "runs (local workers share a GPU if there is one)")
    args = parser.parse_args(argv)
    if any(r < 2 for r in args.rates):
        parser.error(f"--rates: must be >= 2, got {args.rates}")
    try:
        runner = runner_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    unknown = set(args.only or ()) - {r["name"] for r in recipes()}
    if unknown:
        parser.error(f"--only: unknown recipes {sorted(unknown)}; known: {[r['name'] for r in recipes()]}")
    check_study_inputs(parser, None if args.quick else args.model, args.data)
    out = prepare_output_dir(args.out, "paper-recipes")  # resumable
    budget, model, block = BUDGET, args.model, BLOCK
    if args.quick:
        model, block = str(_tiny_model(out / "cache")), "8x8"
        budget = replace(budget, epochs=4.0, max_train_samples=64, max_eval_samples=64)
    points = grid(tuple(args.rates), tuple(args.seeds), block)
    if args.only:
        points = [p for p in points if p["name"] in args.only]
    run_study(points, model, args.data, budget, out, "recipes", runner, baseline=BASELINE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
