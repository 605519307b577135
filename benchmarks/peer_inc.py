"""Side-by-side with Intel Neural Compressor 3.7.1: our default block-pruning recipe against INC's gradual
snip-momentum block pruner on the same model, data, budget, start point and teacher.

    make peer-venv                                               # once: .venv-inc (INC 3.7.1, numpy<2)
    .venv-inc/bin/python -m benchmarks.peer_inc                  # 2 arms x rates 2 4 x seeds 0 1 2 (~1.5 h, 2 cores)
    .venv-inc/bin/python -m benchmarks.peer_inc --quick          # tiny random BERT, about a minute

INC needs ``numpy<2``, ``setuptools<81`` and ``six`` and 3.8+ no longer ships pruning, so it lives in its own
venv and never in CI. Both arms, per (seed, compression rate):

* start from the dense fine-tune of the reproduction's budget and seed (``paper_figs.reproduce.FULL_BUDGET``:
  3,200 training tweets, 4 epochs, batch 32, lr 1e-4, seq 64; the cached teacher of
  ``paper_figs/out/sentiment``), distil from it (alpha 0.5, T 2) and train the same 4 epochs with the same
  Trainer (``pruning.train.masked_trainer``);
* ramp the sparsity of every encoder Linear layer from 0 at step 0 to the target at epoch 2, masks every
  10 steps, each layer to the same target (local scope), 16x16 blocks, then hold the masks;
* differ only in the pruner: ours (``taylor`` score, the Zhu & Gupta cubic ramp, :mod:`pruning.callback`) or
  INC's ``snip_momentum`` pruner with its own default ``exp`` sparsity decay (the closest of its curves to
  the cubic one), hooked onto the same model and optimizer by ``neural_compressor.training.prepare_pruning``.

The compression of each result is recounted from the saved weights (all-zero 16x16 blocks), not taken from
either library. Results: ``--out``/peer_inc.jsonl (resumable), and a table (dev/test accuracy, drop from
dense and the INC - ours difference paired by seed) printed and written to ``--out``/peer_inc.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.store import ResultStore
from benchmarks.common import write_results

ARMS = ("ours", "inc")
RATES = (2, 4)
SEEDS = (0, 1, 2)
BLOCK = "16x16"
INC_VERSION = "3.7.1"
DEFAULT_CACHE = Path("paper_figs/out/sentiment/sweep/cache")  # the reproduction's teachers (same keys)


def inc_op_names(student, prefix: str = "student.") -> list[str]:
    """INC's ``op_names`` (regexes it ``re.search``-es over module names) for exactly the layers our pruner
    prunes in ``student`` (:func:`pruning.targets.find_targets`), under the wrapper's ``prefix``."""
    from pruning.targets import find_targets

    return [rf"^{re.escape(prefix + name)}$" for name in find_targets(student)]


def recount_masks(model, block: str) -> dict:
    """Block masks of the layers our pruner prunes, from the weights themselves: a block is kept when any of its
    weights is non-zero (what a sparse kernel or the accelerator would see)."""
    import torch

    from pruning.masks import BlockMask
    from pruning.spec import BlockSpec, Granularity, block_occupancy
    from pruning.targets import find_targets

    spec = BlockSpec.parse(block)
    masks = {}
    for name, module in find_targets(model).items():
        weight = module.weight.detach().cpu().numpy()
        occupancy = block_occupancy(weight != 0, (spec.rows, spec.cols))
        masks[name] = BlockMask(torch.from_numpy(occupancy), spec, Granularity.BLOCK, tuple(weight.shape))
    return masks


def _inc_config(student, sparsity: float, ramp_end_step: int, frequency_steps: int, block: str):
    from neural_compressor.training import WeightPruningConfig

    return WeightPruningConfig(
        [{"op_names": inc_op_names(student), "pattern": block,
          "target_sparsity": sparsity, "pruning_type": "snip_momentum", "start_step": 0,
          "end_step": ramp_end_step, "pruning_frequency": frequency_steps, "pruning_scope": "local",
          "sparsity_decay_type": "exp"}],
    )  # fmt: skip


def run_point(point: dict, model: str, data, budget, cache_dir: Path) -> dict:
    """One (arm, seed, rate) run; returns its record (accuracies and the recounted compression)."""
    from pruning.distill import DistillationModel
    from pruning.models import load_classifier, load_tokenizer
    from pruning.pruner import PruneSettings
    from pruning.report import compression_summary
    from pruning.train import dense_teacher, evaluate_accuracy, masked_trainer, run_pruning, tokenize_split

    sparsity = 1 - 1 / point["rate"]
    budget = replace(budget, seed=point["seed"])
    start = time.perf_counter()
    if point["arm"] == "ours":
        out_dir = Path(tempfile.mkdtemp(prefix="peer-ours-"))
        try:
            settings = PruneSettings(block=point["block"], method="score", target_sparsity=sparsity,
                                     score="taylor")  # fmt: skip
            result = run_pruning(model, data, settings, out_dir, budget, cache_dir=cache_dir, overwrite=True,
                                 progress=False)  # fmt: skip
            pruned = load_classifier(out_dir, data.num_labels)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        dev, test = result.dev_accuracy, result.test_accuracy
    else:
        from neural_compressor.training import prepare_pruning

        teacher = dense_teacher(model, data, budget, cache_dir / "teachers")
        tokenizer = load_tokenizer(teacher)
        pruned = load_classifier(teacher, data.num_labels, seed=budget.seed)  # two-stage: start from the teacher
        wrapped = DistillationModel(pruned, load_classifier(teacher, data.num_labels), budget.distill_alpha,
                                    budget.distill_temperature)  # fmt: skip
        train_set = tokenize_split(tokenizer, data.train.head(budget.max_train_samples), budget.max_seq_len)
        steps_per_epoch = -(-len(train_set) // budget.batch_size)
        ramp_end_step = round(budget.prune_epoch * steps_per_epoch)
        if ramp_end_step < budget.prune_frequency_steps:
            raise ValueError(f"prune_frequency_steps: {budget.prune_frequency_steps} is longer than the ramp "
                             f"({ramp_end_step} steps); INC would prune every block at once")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="peer-inc-") as work_dir:
            trainer = masked_trainer(wrapped, tokenizer, train_set, budget, work_dir)
            trainer.create_optimizer()
            config = _inc_config(pruned, sparsity, ramp_end_step, budget.prune_frequency_steps, point["block"])
            prepare_pruning(wrapped, config, optimizer=trainer.optimizer)
            trainer.train()
            wrapped.inc_hook_handle.remove()  # evaluation forwards must not count as pruning steps
            dev = evaluate_accuracy(trainer, tokenize_split(tokenizer, data.dev.head(budget.max_eval_samples),
                                                            budget.max_seq_len))  # fmt: skip
            test = evaluate_accuracy(trainer, tokenize_split(tokenizer, data.test.head(budget.max_eval_samples),
                                                             budget.max_seq_len))  # fmt: skip
    summary = compression_summary(recount_masks(pruned, point["block"]))
    return {**point, "point_id": json.dumps(point, sort_keys=True), "dev_accuracy": dev, "test_accuracy": test,
            "compression_rate": summary["compression_rate"], "sparsity": summary["sparsity"],
            "wall_s": time.perf_counter() - start}  # fmt: skip


def table(records: pd.DataFrame, dense: dict[int, tuple[float, float]]) -> pd.DataFrame:
    """Per arm and rate: mean dev/test accuracy, mean drop from the dense teacher of the same seed, and (for
    INC) the mean INC - ours difference paired by seed, all in points."""
    records = records.copy()
    records["dev_drop"] = (records["seed"].map(lambda s: dense[s][0]) - records["dev_accuracy"]) * 100
    records["test_drop"] = (records["seed"].map(lambda s: dense[s][1]) - records["test_accuracy"]) * 100
    by_seed = records.pivot_table(index=["rate", "seed"], columns="arm", values=["dev_accuracy", "test_accuracy"])
    rows = []
    for (arm, rate), group in records.groupby(["arm", "rate"]):
        row = {"arm": arm, "rate": f"{rate:g}x", "seeds": group["seed"].nunique(),
               "compression": group["compression_rate"].mean(), "dev": group["dev_accuracy"].mean() * 100,
               "test": group["test_accuracy"].mean() * 100, "dev_drop": group["dev_drop"].mean(),
               "test_drop": group["test_drop"].mean()}  # fmt: skip
        if arm == "inc" and ("dev_accuracy", "ours") in by_seed:
            paired = by_seed.xs(rate, level="rate")
            diff = (paired["dev_accuracy"]["inc"] - paired["dev_accuracy"]["ours"]).dropna() * 100
            test_diff = (paired["test_accuracy"]["inc"] - paired["test_accuracy"]["ours"]).dropna() * 100
            row.update(inc_minus_ours_dev=diff.mean(), inc_minus_ours_test=test_diff.mean(), paired_seeds=len(diff))
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default="sentiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help="where dense teachers are cached (default: the reproduction's, shared keys)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/peer_inc"))
    parser.add_argument("--quick", action="store_true", help="tiny random BERT, 128 training examples, a minute")
    args = parser.parse_args(argv)
    if any(r <= 1 for r in args.rates):
        parser.error(f"--rates: compression rates must be > 1, got {args.rates}")
    try:
        import neural_compressor
    except ImportError:
        parser.error("neural_compressor is not importable: run this with the INC venv (make peer-venv, then "
                     ".venv-inc/bin/python -m benchmarks.peer_inc)")  # fmt: skip
    if neural_compressor.__version__ != INC_VERSION:
        print(f"warning: neural_compressor {neural_compressor.__version__}, not {INC_VERSION}", file=sys.stderr)

    from paper_figs.reproduce import FULL_BUDGET, _tiny_model
    from pruning.data import load_dataset
    from pruning.io import read_run_record
    from pruning.models import quiet_transformers
    from pruning.train import dense_teacher

    quiet_transformers()
    budget, model, block, cache_dir = FULL_BUDGET.train_budget(), args.model, BLOCK, args.cache_dir
    if args.quick:
        cache_dir = args.out / "cache"
        model, block = str(_tiny_model(cache_dir)), "8x8"
        # 4 steps an epoch, a ramp of 8 steps with a mask update every 2 (INC prunes everything when its ramp
        # holds no update: a window shorter than its frequency)
        budget = replace(budget, max_train_samples=128, max_eval_samples=64, prune_frequency_steps=2)
    data = load_dataset(args.data)
    store = ResultStore(args.out / "peer_inc.jsonl")
    points = [{"arm": arm, "block": block, "rate": rate, "seed": seed, "model": model, "data": args.data,
               "train_samples": budget.max_train_samples}
              for seed in args.seeds for rate in args.rates for arm in args.arms]  # fmt: skip
    done = store.done_ids()
    for point in points:
        if json.dumps(point, sort_keys=True) in done:
            continue
        record = run_point(point, model, data, budget, cache_dir)
        store.append(record)
        print(f"{point['arm']} {point['rate']:g}x seed {point['seed']}: dev {record['dev_accuracy']:.4f} test "
              f"{record['test_accuracy']:.4f} compression {record['compression_rate']:.2f}x "
              f"({record['wall_s']:.0f} s)", file=sys.stderr)  # fmt: skip
    records = store.load()
    records = records[records["point_id"].isin({json.dumps(p, sort_keys=True) for p in points})]
    dense = {}
    for seed in args.seeds:
        extra = read_run_record(dense_teacher(model, data, replace(budget, seed=seed), cache_dir / "teachers"))["extra"]
        dense[seed] = (extra["dev_accuracy"], extra["test_accuracy"])
    result = table(records, dense)
    print(result.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    write_results(args.out / "peer_inc.json", {"inc_version": neural_compressor.__version__, "budget": budget.__dict__,
                                               "dense": dense, "table": result.to_dict(orient="records")})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
