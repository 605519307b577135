"""The co-design loop end to end: sensitivity + hardware cost per candidate -> allocation -> plan -> (prune and
verify).

    result = run_codesign("minilm", "sentiment", "asic-32x32-int8", "runs/codesign", max_loss_increase=0.05)
    result.plan.save("plan.yaml")          # bsp prune --plan plan.yaml ...

For every block size, every prunable layer and every candidate sparsity it estimates the loss increase of
pruning that layer alone (:mod:`codesign.sensitivity`, on the dense fine-tuned model the pruning run starts
from) and simulates the layer's GEMM with that mask (:mod:`codesign.cost`). One block size serves the whole
model (one accelerator datapath); per block the exact knapsack (:func:`codesign.allocate.solve_mckp`) picks
one sparsity per layer, and the block with the best objective wins. The *uniform* plans (every layer at
the same sparsity) are scored with the same estimates, so the printed comparison is like for like.

Constraints: ``max_loss_increase`` (summed estimated loss increase; the objective -- ``latency_s`` or
``energy_pj`` -- is minimised under it), ``max_accuracy_drop`` (converted to a loss budget through the
measured candidates, ``validate`` of them per block), or ``target_compression`` (the estimated loss is
minimised at that overall compression of the pruned layers).
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.executor import TaskRunner
from bsp_common import strict_json
from bsp_common.outputs import prepare_output_dir, write_text_atomic
from bsp_common.progress import progress_bar
from bsp_common.strict_json import content_hash
from codesign.allocate import Allocation, greedy_mckp, solve_mckp
from codesign.cost import layer_costs, resolve_blocks
from codesign.plan import CodesignPlan
from hwsim.config import AcceleratorConfig
from hwsim.workload import MAX_BATCH, MAX_SEQ_LEN

log = logging.getLogger(__name__)

__all__ = ["CodesignResult", "allocate_block", "hardware_optimal", "hardware_space", "run_codesign", "uniform_plan",
           "verify_plan"]

OUTPUT_KIND = "codesign"
DEFAULT_SPARSITIES = (0.0, 0.25, 0.5, 0.625, 0.75, 0.875)
OBJECTIVES = ("latency_s", "energy_pj", "cycles", "area_delay_mm2_s")  # area x latency: a bigger array pays
ESTIMATES = ("fisher", "taylor", "retrained")


@dataclass(frozen=True)
class CodesignResult:
    plan: CodesignPlan
    candidates: pd.DataFrame  # every (block, layer, sparsity): estimates and hardware cost
    allocation: pd.DataFrame  # the plan's layers: chosen sparsity, estimate, cost
    uniform: pd.DataFrame  # every (block, uniform sparsity): summed estimate and cost
    summary: dict
    out_dir: Path
    config: AcceleratorConfig  # the chosen accelerator (the plan keeps only its name)


def hardware_space(configs, hardware_axes: dict) -> tuple[list, list[dict]]:
    """Accelerators for a joint search: every config x hardware-axis combination (the sweep's ``hardware_axes``
    format: dotted field paths, ``"a,b"`` ties paths). Returns (buildable configs, infeasible combinations with
    the reason) -- an FPGA array over its DSP budget is a result, not an error."""
    from analysis.space import SweepSpace

    configs = [configs] if isinstance(configs, str | Path) else list(configs)
    space = SweepSpace(accuracy="none", configs=[str(c) for c in configs], hardware_axes=hardware_axes or {})
    built, infeasible = [], []
    for base, overrides, config, reason in space.derived_configs():
        if config is None:
            infeasible.append({"config": base, "overrides": overrides, "reason": reason})
        else:
            built.append(config)
    return built, infeasible


def _batches(tokenizer, split, n_batches: int, batch_size: int, max_seq_len: int, seed: int) -> list[dict]:
    from transformers import DataCollatorWithPadding

    from pruning.train import tokenize_split

    encoded = tokenize_split(tokenizer, split.head(n_batches * batch_size), max_seq_len)
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    collate = DataCollatorWithPadding(tokenizer)
    return [collate([encoded[i] for i in order[start : start + batch_size]])
            for start in range(0, len(order), batch_size)]  # fmt: skip


def allocate_block(table: pd.DataFrame, objective: str, estimate: str, capacity: float, constraint: str = "loss",
                   greedy: bool = False) -> tuple[pd.DataFrame, Allocation]:
    """(chosen rows, Allocation) for one accelerator's and block's candidates (``candidates.csv`` rows):
    ``constraint="loss"`` minimises ``objective`` with the summed ``estimate`` <= ``capacity``;
    ``"compression"`` minimises the estimate with the kept weights <= ``capacity``."""
    layers = list(dict.fromkeys(table["layer"]))
    groups = [table[table["layer"] == name].sort_values("sparsity") for name in layers]
    if constraint == "compression":  # min estimated loss at a kept-weight budget
        values = [g[estimate].to_numpy(float) for g in groups]
        weights = [g["kept_weights"].to_numpy(float) for g in groups]
    else:  # min hardware objective at a loss budget
        values = [g[objective].to_numpy(float) for g in groups]
        weights = [g[estimate].to_numpy(float) for g in groups]
    solution = (greedy_mckp if greedy else solve_mckp)(values, weights, capacity)
    chosen = pd.concat([g.iloc[[c]] for g, c in zip(groups, solution.choice, strict=True)], ignore_index=True)
    return chosen, solution


def hardware_optimal(table: pd.DataFrame, objective: str, kept_weights: float) -> Allocation:
    """The allocation with the smallest summed ``objective`` over one block's candidate layers that keeps at
    least ``kept_weights`` weights, the estimate ignored (exact knapsack over the pruned weights): what the
    accelerator alone could save over a uniform plan of the same compression. ``.value`` is that sum,
    ``.choice`` the row chosen within each layer's rows (layers in table order). On an array where latency
    follows the kept weights whatever layers keep them it equals the uniform plan's, and only accuracy can
    make a co-designed plan better."""
    values, pruned, total = [], [], 0.0
    for _, rows in table.groupby("layer", sort=False):
        kept = rows["kept_weights"].to_numpy(float)
        values.append(rows[objective].to_numpy(float))
        pruned.append(kept.max() - kept)  # the budget: weights pruned, at most the uniform plan's
        total += kept.max()
    return solve_mckp(values, pruned, max(total - float(kept_weights), 0.0))


def _check_options(blocks, granularity, sparsities, objective, estimate, max_loss_increase, max_accuracy_drop,
                   target_compression, gradient_batches, validate, seq_len, batch, validate_examples,
                   recovery_steps=0, recovery_lr=1e-4) -> tuple[list[str], list[float]]:  # fmt: skip
    """Every option checked before anything loads; returns the normalised block names and sparsities (0 added)."""
    from pruning.settings import check_sparsity
    from pruning.spec import BlockSpec, group_shape

    given = [c for c in (max_loss_increase, max_accuracy_drop, target_compression) if c is not None]
    if len(given) != 1:
        raise ValueError("constraint: give exactly one of max_loss_increase, max_accuracy_drop, target_compression")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: {objective!r} not one of {', '.join(OBJECTIVES)}")
    if estimate not in ESTIMATES:
        raise ValueError(f"estimate: {estimate!r} not one of {', '.join(ESTIMATES)}")
    if max_accuracy_drop is not None and validate < 5 and estimate != "retrained":
        raise ValueError("max_accuracy_drop: needs validate >= 5 (measured candidates and whole-model one-shot "
                         "prunes calibrate estimated loss to accuracy)")
    for name, value, low in (("max_loss_increase", max_loss_increase, 0.0), ("max_accuracy_drop", max_accuracy_drop,
                             0.0), ("target_compression", target_compression, 1.0)):  # fmt: skip
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > low):
            raise ValueError(f"{name}: must be a finite number > {low:g}, got {value!r}")
    counts = (("gradient_batches", gradient_batches, 1, 10_000), ("validate", validate, 0, 100_000),
              ("seq_len", seq_len, 1, MAX_SEQ_LEN), ("batch", batch, 1, MAX_BATCH),
              ("validate_examples", validate_examples, 1, 1_000_000), ("recovery_steps", recovery_steps, 0, 100_000))
    for name, value, low, high in counts:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name}: must be an integer in [{low}, {high}], got {value!r}")
    if isinstance(recovery_lr, bool) or not isinstance(recovery_lr, int | float) or not 0 < recovery_lr < 1:
        raise ValueError(f"recovery_lr: must be a number in (0, 1), got {recovery_lr!r}")
    if not blocks:
        raise ValueError("blocks: give at least one block size, e.g. 16x16")
    blocks = [str(BlockSpec.parse(b)) for b in blocks]  # bad blocks and granularities stop before any loading
    group_shape(BlockSpec.parse(blocks[0]), granularity)
    try:
        sparsities = sorted({0.0, *(check_sparsity(s) for s in sparsities)})
    except ValueError as err:
        raise ValueError(f"sparsities: {str(err).split(': ', 1)[1]}") from None
    reach = 1.0 / (1.0 - sparsities[-1])  # every layer at the highest candidate sparsity
    if target_compression is not None and target_compression > reach:
        raise ValueError(f"target_compression: {target_compression:g} is beyond what the candidate sparsities reach "
                         f"(at most {reach:g}x, every layer at {sparsities[-1]:g}); add higher sparsities or lower "
                         "the target")  # fmt: skip
    if max_accuracy_drop is not None and not max_accuracy_drop < 1:
        raise ValueError(f"max_accuracy_drop: a fraction of accuracy in (0, 1), e.g. 0.01 for one point, "
                         f"got {max_accuracy_drop!r}")  # fmt: skip
    return blocks, sparsities


def _check_blocks_fit(blocks: list[str], model) -> None:
    """Every candidate block fits every prunable weight of ``model`` (what ``bsp prune --plan`` requires of the
    plan) -- checked on the model's config, before any training."""
    from hwsim import build_workload, read_hf_config
    from pruning.models import resolve_model_path
    from pruning.spec import BlockSpec

    weights = [op for op in build_workload(read_hf_config(resolve_model_path(model)), {}, seq_len=1).gemms
               if op.b_is_weight]  # fmt: skip
    for block in blocks:
        for op in weights:
            try:
                BlockSpec.parse(block).check_fits((op.N, op.K), name=op.name)
            except ValueError as err:
                raise ValueError(f"blocks: {err}") from None


def _buffer_feasible(hws: list, model, tokens: int) -> tuple[list, list[dict]]:
    """The accelerators whose buffers hold the model's tiles (checked on the dense model: pruning only shrinks
    folds), and the others with the reason -- before any training. Raises when none is left."""
    from hwsim import build_workload, read_hf_config, simulate
    from hwsim.mapping import TilingError
    from pruning.models import resolve_model_path

    workload = build_workload(read_hf_config(resolve_model_path(model)), {}, batch=1, seq_len=tokens)
    feasible, infeasible = [], []
    for hw in hws:
        try:
            simulate(hw, workload)
            feasible.append(hw)
        except TilingError as err:
            infeasible.append({"config": hw.name, "reason": str(err)})
            log.warning("infeasible: %s: %s", hw.name, err)
    if not feasible:
        raise ValueError("config: no accelerator's buffers hold this model's tiles: "
                         + "; ".join(f"{e['config']}: {e['reason']}" for e in infeasible))  # fmt: skip
    return feasible, infeasible


def _estimate_candidates(classifier, train: list, held_out: list, hws: list, blocks: list[str], granularity: str,
                         sparsities: list[float], validate: int, seed: int, tokens: int, progress: bool,
                         recovery: dict, runner) -> tuple[pd.DataFrame, pd.DataFrame | None]:  # fmt: skip
    """(candidates, calibration): every (block, accelerator, layer, sparsity) with its loss estimates and cost;
    with ``validate``, measured single-layer candidates and whole-model one-shot prunes (the calibration), on
    ``runner``'s workers."""
    from codesign.sensitivity import collect_gradients, estimate_sensitivity, removed_groups
    from pruning.blocks import expand_group_mask
    from pruning.spec import BlockSpec, group_shape
    from pruning.targets import find_targets

    weights = {f"{name}.weight": layer.weight for name, layer in find_targets(classifier).items()}
    shapes = {name: tuple(w.shape) for name, w in weights.items()}
    frames, calibrations = [], []
    phases = ("gradients", "simulate", *(("measure", "calibrate") if validate else ()))
    start = time.perf_counter()  # the bar is off in a log: the summary times itself
    bar = progress_bar(progress, total=len(blocks) * len(phases), desc="codesign", unit="phase",
                       bar_format="codesign {n_fmt}/{total_fmt} phases [{elapsed}<{remaining}]: {desc}")

    def phase(block_text: str, name: str) -> None:
        bar.set_description_str(f"block {block_text}: {name}", refresh=True)

    for block_text in blocks:
        block = BlockSpec.parse(block_text)
        gshape = group_shape(block, granularity)
        phase(block_text, f"gradients of {len(weights)} layers on {len(train)} batches")
        gradients = collect_gradients(classifier, weights, train, lambda m, b: m(**b).loss, gshape)
        estimates = estimate_sensitivity(gradients, sparsities)
        bar.update()
        phase(block_text, f"{len(weights) * len(sparsities) * len(hws)} candidates on the accelerator(s)")
        keep = {}  # (layer, sparsity) -> dense keep-mask, as the pruning run would leave it
        for name in weights:
            for s in sparsities:
                removed = removed_groups(gradients.score(name), shapes[name], gshape, s)
                keep[name, s] = (~expand_group_mask(removed, gshape, shapes[name])).numpy()
        costs = pd.concat([layer_costs(keep, (block.rows, block.cols), hw, tokens).assign(config=hw.name)
                           for hw in hws], ignore_index=True)  # fmt: skip
        frame = estimates.merge(costs, on=["layer", "sparsity"]).assign(block=block_text)
        bar.update()
        if validate:
            pruned = [(n, s) for n in weights for s in sparsities if s > 0]
            sample = random.Random(seed).sample(pruned, min(validate, len(pruned)))
            phase(block_text, f"measuring {len(sample)} candidates on {len(held_out)} held-out batches")
            measured = _measured_in_parallel(classifier, weights, gradients, sample, held_out, recovery, runner)
            frame = frame.merge(measured, on=["layer", "sparsity"], how="left")
            first = frame["config"] == hws[0].name  # one row per candidate
            bar.update()
            # whole-model one-shot prunes (no retraining): effects large enough to calibrate accuracy
            levels = [s for s in sparsities if s > 0]
            phase(block_text, f"calibrating on {len(levels)} whole-model prunes")
            uniform = _measured_in_parallel(classifier, weights, gradients, [dict.fromkeys(weights, s) for s in levels],
                                            held_out, recovery, runner)  # fmt: skip
            sums = frame[first].groupby("sparsity")[["taylor", "fisher"]].sum()
            calibrations.append(uniform.drop(columns="layer").join(sums, on="sparsity").assign(block=block_text))
            bar.update()
        frames.append(frame)
    bar.close()
    if progress:
        print(f"codesign: {sum(len(f) for f in frames)} candidates estimated and simulated ({len(blocks)} block "
              f"size(s) x {len(hws)} accelerator(s)) in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return pd.concat(frames, ignore_index=True), (pd.concat(calibrations, ignore_index=True) if calibrations
                                                  else None)  # fmt: skip


def _measure_candidates(job: dict) -> pd.DataFrame:
    from codesign.sensitivity import measured_sensitivity

    return measured_sensitivity(job["model"], job["weights"], job["gradients"], job["candidates"], job["batches"],
                                **job["recovery"])  # fmt: skip


def _measured_in_parallel(classifier, weights: dict, gradients, candidates: list, batches: list, recovery: dict,
                          runner) -> pd.DataFrame:  # fmt: skip
    """:func:`codesign.sensitivity.measured_sensitivity` of ``candidates``, split over ``runner``'s workers: each
    gets a copy of the model (its ``weights`` pickled with it, so they stay its parameters) and a share of the
    candidates; rows come back in the candidates' order."""
    shares = min(len(candidates), runner.slots) if runner.parallel else 1
    for share in range(shares):
        job = {"model": classifier, "weights": weights, "gradients": gradients, "candidates": candidates[share::shares],
               "batches": batches, "recovery": recovery}  # fmt: skip
        runner.submit(_measure_candidates, job, key=share)
    parts = {}
    for share, rows, error in runner.results():
        if error is not None:
            raise error
        parts[share] = rows.assign(_order=range(share, len(candidates), shares))
    return pd.concat(parts.values()).sort_values("_order").drop(columns="_order").reset_index(drop=True)


def _estimate_checks(candidates: pd.DataFrame, calibration: pd.DataFrame | None, estimate: str, config: str) -> dict:
    """``validation`` (estimate vs measured single-layer loss) and ``calibration`` (accuracy drop per unit of
    summed estimate, least squares through the origin over whole-model one-shot prunes -- without retraining,
    so it over-states the drop a pruning run ends with) where those measurements exist."""
    checks = {}
    if "measured_loss" in candidates:
        from scipy.stats import spearmanr

        checked = candidates[candidates["config"] == config].dropna(subset=["measured_loss"])
        checks["validation"] = {
            "candidates": len(checked),
            "spearman_estimate_vs_measured_loss": float(spearmanr(checked[estimate], checked["measured_loss"])
                                                        .statistic),
            "mean_abs_error_loss": float((checked[estimate] - checked["measured_loss"]).abs().mean()),
            "mean_measured_loss": float(checked["measured_loss"].mean()),
        }  # fmt: skip
        with_kl = checked.dropna(subset=["measured_kl"]) if "measured_kl" in checked else checked.iloc[:0]
        if len(with_kl) > 1:
            checks["validation"]["spearman_estimate_vs_measured_kl"] = float(
                spearmanr(with_kl[estimate], with_kl["measured_kl"]).statistic)
    if calibration is not None and len(calibration):
        x, y = calibration[estimate].to_numpy(float), calibration["measured_accuracy_drop"].to_numpy(float)
        checks["calibration"] = {"accuracy_drop_per_estimated_loss": float((x * y).sum() / max((x * x).sum(), 1e-30)),
                                 "points": len(calibration)}  # fmt: skip
    return checks


def run_codesign(model: str | Path, data: str, config, out_dir: str | Path, *, blocks=("16x16", "32x32"),
                 granularity: str = "block", sparsities=DEFAULT_SPARSITIES, objective: str = "latency_s",
                 max_loss_increase: float | None = None, max_accuracy_drop: float | None = None,
                 target_compression: float | None = None, estimate: str = "fisher", loss_model=None, budget=None,
                 gradient_batches: int = 8, validate: int = 0, validate_examples: int = 512,
                 recovery_steps: int = 0, recovery_lr: float = 1e-4, seq_len: int = 128,
                 batch: int = 1, glue_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                 progress: bool = True, runner=None) -> CodesignResult:  # fmt: skip
    """Choose per-layer sparsities for ``config``; writes plan.yaml, candidates.csv, allocation.csv, uniform.csv
    and summary.json to ``out_dir`` (a new or earlier codesign directory). Exactly one constraint is given.

    ``config`` may be a list of accelerators (preset names, YAML paths or configs): the sensitivities are
    estimated once, every accelerator x block gets its plan, the best one is ``plan.yaml``, and joint.csv
    holds the joint front -- accelerator and per-layer plan chosen together -- over a range of loss budgets.

    ``loss_model`` (a :class:`codesign.loss_model.RetrainedLossModel` or its JSON file) makes the estimate
    ``retrained``: the accuracy drop after pruning with retraining, fitted to measured plans, which prices
    concentrated sparsity; ``max_accuracy_drop`` is then a budget of that predicted drop (no calibration).
    ``blocks`` may name ``matched`` (or ``matched:AREA``): each accelerator's :func:`codesign.cost.matched_block`,
    the shape its array skips without a union penalty.
    ``recovery_steps`` > 0 measures the ``validate`` candidates after that many masked Adam steps
    (``recovery_lr``) on the gradient batches instead of one-shot (:func:`codesign.sensitivity.measured_sensitivity`).
    ``runner`` (:class:`analysis.executor.TaskRunner`) measures the ``validate`` candidates on its workers, each
    with a copy of the model; default: here, one after the other.
    """
    from codesign.loss_model import RetrainedLossModel, candidate_drops, load_loss_model
    from hwsim import build_workload, load_config, simulate
    from hwsim.workload import read_hf_config
    from pruning.data import load_dataset
    from pruning.models import load_classifier, load_tokenizer, model_fingerprint
    from pruning.settings import TrainBudget
    from pruning.train import dense_teacher, teacher_cache_dir

    if loss_model is not None:
        loss_model = loss_model if isinstance(loss_model, RetrainedLossModel) else load_loss_model(loss_model)
        estimate = "retrained"
    elif estimate == "retrained":
        raise ValueError("estimate: 'retrained' needs a loss_model (fit one with codesign.loss_model."
                         "fit_retrained_loss, e.g. paper_figs/out/codesign-loss/loss_model.json)")
    hws = [load_config(c) for c in ([config] if isinstance(config, str | Path) or hasattr(config, "pe_array")
                                    else list(config))]  # fmt: skip
    blocks = resolve_blocks(blocks, hws)
    blocks, sparsities = _check_options(blocks, granularity, sparsities, objective, estimate, max_loss_increase,
                                        max_accuracy_drop, target_compression, gradient_batches, validate, seq_len,
                                        batch, validate_examples, recovery_steps, recovery_lr)  # fmt: skip
    if len({hw.name for hw in hws}) != len(hws):
        raise ValueError(f"config: names must be distinct, got {[hw.name for hw in hws]}")
    no_area = [hw.name for hw in hws if hw.cost.area_mm2 is None]
    reported = tuple(k for k in OBJECTIVES if k != "area_delay_mm2_s" or not no_area)  # FPGAs have no area
    if objective == "area_delay_mm2_s" and no_area:
        raise ValueError(f"objective: area_delay_mm2_s needs an ASIC area; {', '.join(no_area)} is an FPGA (it "
                         "reports resources, not area); use latency_s or energy_pj")  # fmt: skip
    _check_blocks_fit(blocks, model)
    hws, buffer_infeasible = _buffer_feasible(hws, model, batch * seq_len)
    # refused before the output directory is made: a file in the way of the cache, a data set that cannot be read
    teachers = teacher_cache_dir(cache_dir)
    dataset = load_dataset(data, glue_dir=glue_dir)
    out = prepare_output_dir(out_dir, OUTPUT_KIND)
    budget = budget or TrainBudget()
    teacher = dense_teacher(model, dataset, budget, teachers, progress=progress)
    tokenizer = load_tokenizer(teacher)
    classifier = load_classifier(teacher, dataset.num_labels)
    train = _batches(tokenizer, dataset.train, gradient_batches, budget.batch_size, budget.max_seq_len, budget.seed)
    # the held-out slice for measurements: single-layer effects are small, so more examples than batches
    held_out = _batches(tokenizer, dataset.dev, -(-validate_examples // budget.batch_size), budget.batch_size,
                        budget.max_seq_len, budget.seed) if validate else []  # fmt: skip
    tokens = batch * seq_len

    settings = {"model": model_fingerprint(teacher)["sha256"], "data": data,
                "configs": [hw.model_dump(mode="json") for hw in hws], "blocks": blocks, "granularity": granularity,
                "sparsities": sparsities, "gradient_batches": gradient_batches, "validate": validate,
                "tokens": tokens, "budget": budget.__dict__}  # fmt: skip
    if validate:
        settings["validate_examples"] = validate_examples
    if validate and recovery_steps:
        settings.update(recovery_steps=recovery_steps, recovery_lr=recovery_lr)
    recovery = ({"recovery_batches": train, "recovery_steps": recovery_steps, "recovery_lr": recovery_lr}
                if recovery_steps else {})  # fmt: skip
    key = content_hash(settings)
    meta_path = out / "candidates.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key:  # same estimates: reuse
        candidates = pd.read_csv(out / "candidates.csv")
        calibration = pd.read_csv(out / "calibration.csv") if (out / "calibration.csv").is_file() else None
        if progress:
            print(f"codesign: {len(candidates)} candidates reused from {out / 'candidates.csv'} (same model, data "
                  "and settings); only the allocation runs again", file=sys.stderr)  # fmt: skip
    else:
        candidates, calibration = _estimate_candidates(classifier, train, held_out, hws, blocks, granularity,
                                                       sparsities, validate, budget.seed, tokens, progress,
                                                       recovery, runner or TaskRunner())  # fmt: skip
        write_text_atomic(out / "candidates.csv", candidates.to_csv(index=False))
        if calibration is not None:
            write_text_atomic(out / "calibration.csv", calibration.to_csv(index=False))
        write_text_atomic(meta_path, strict_json.dumps({"key": key, "settings": settings}, indent=2))
    if loss_model is not None:  # cheap and additive per layer: computed on the cached candidates every time
        candidates["retrained"] = candidate_drops(candidates, loss_model)
    summary: dict = {"model": str(model), "data": data, "config": [hw.name for hw in hws], "objective": objective,
                     "infeasible_configs": buffer_infeasible,
                     "estimate": estimate, "blocks": list(blocks), "sparsities": sparsities,
                     "granularity": granularity, "tokens": tokens, "teacher_dir": str(teacher)}  # fmt: skip
    if loss_model is not None:
        summary["loss_model"] = {"power": loss_model.power, "slope": loss_model.slope, "fit": loss_model.fit}
    summary.update(_estimate_checks(candidates, calibration, estimate, hws[0].name))
    total_weights = int(candidates[(candidates["sparsity"] == 0) & (candidates["config"] == hws[0].name)
                                   & (candidates["block"] == blocks[0])]["kept_weights"].sum())  # fmt: skip
    if target_compression is not None:
        constraint, capacity = "compression", total_weights / target_compression
        constraint_text = f"kept weights <= 1/{target_compression:g} of the pruned layers'"
    else:
        if max_accuracy_drop is not None and estimate == "retrained":  # already in accuracy
            max_loss_increase = max_accuracy_drop
        elif max_accuracy_drop is not None:
            slope = summary["calibration"]["accuracy_drop_per_estimated_loss"]
            if not slope > 0:  # NaN too
                raise ValueError("max_accuracy_drop: the whole-model one-shot prunes show no accuracy loss per "
                                 "estimated loss (slope <= 0); use max_loss_increase instead")  # fmt: skip
            max_loss_increase = max_accuracy_drop / slope
        constraint, capacity = "loss", float(max_loss_increase)
        constraint_text = (f"predicted accuracy drop (retrained loss model) <= {capacity:.4g}"
                           if estimate == "retrained" else f"summed {estimate} loss increase <= {capacity:.4g}")

    workload = build_workload(read_hf_config(teacher), {}, batch=batch, seq_len=seq_len)
    dense, fixed = {}, {}
    for hw in hws:
        dense[hw.name] = simulate(hw, workload).totals
        if hw.cost.area_mm2 is not None:
            dense[hw.name]["area_delay_mm2_s"] = dense[hw.name]["latency_s"] * hw.cost.area_mm2
        layers_dense = candidates[(candidates["sparsity"] == 0) & (candidates["config"] == hw.name)
                                  & (candidates["block"] == blocks[0])]  # fmt: skip
        fixed[hw.name] = {k: float(dense[hw.name][k]) - float(layers_dense[k].sum()) for k in reported}

    plans, uniform_rows = [], []
    for (hw_name, block_text), table in candidates.groupby(["config", "block"], sort=False):
        try:
            chosen, solution = allocate_block(table, objective, estimate, capacity, constraint, greedy=False)
        except ValueError:
            if constraint != "compression":
                raise
            fewest = int(table.groupby("layer")["kept_weights"].min().sum())  # blocks round the kept count up
            raise ValueError(f"target_compression: {target_compression:g} is beyond what {block_text} blocks reach "
                             f"on this model (at most {total_weights / fewest:.4g}x); lower the target (the candidates "
                             f"in {out} are kept: the next run reuses them)") from None
        _, greedy_solution = allocate_block(table, objective, estimate, capacity, constraint, greedy=True)
        plans.append((hw_name, block_text, chosen, {"exact": solution.value, "greedy": greedy_solution.value}))
        for sparsity, level in table.groupby("sparsity"):
            row = {"config": hw_name, "block": block_text, "sparsity": sparsity,
                   estimate: float(level[estimate].sum()), "kept_weights": int(level["kept_weights"].sum()),
                   **{k: float(level[k].sum()) + fixed[hw_name][k] for k in reported}}  # fmt: skip
            # the hardware's headroom: the best any plan of this compression could do, accuracy aside
            best = hardware_optimal(table, objective, row["kept_weights"])
            row[f"hardware_optimal_{objective}"] = best.value + fixed[hw_name][objective]
            uniform_rows.append(row)
    uniform = pd.DataFrame(uniform_rows)
    def plan_score(entry) -> float:  # what the constraint mode minimises, model-level
        name, _, chosen_rows, _ = entry
        if constraint == "compression":
            return float(chosen_rows[estimate].sum())
        return float(chosen_rows[objective].sum()) + fixed[name][objective]

    hw_name, block_text, chosen, solved = min(plans, key=plan_score)
    totals = {k: float(chosen[k].sum()) + fixed[hw_name][k] for k in reported}
    if constraint == "loss":  # a budget that leaves every layer at its cheapest sparsity constrains nothing
        table = candidates[(candidates["config"] == hw_name) & (candidates["block"] == block_text)]
        cheapest = float(table.groupby("layer")[objective].min().sum())
        summary["budget_binds"] = float(chosen[objective].sum()) > cheapest * (1 + 1e-9)
        summary["budget_used"] = float(chosen[estimate].sum()) / capacity if capacity > 0 else math.nan
    summary["plans"] = [{"config": name, "block": block, objective: float(c[objective].sum()) + fixed[name][objective],
                         estimate: float(c[estimate].sum())} for name, block, c, _ in plans]  # fmt: skip
    feasible = uniform[uniform["kept_weights"] <= capacity] if constraint == "compression" else uniform[
        uniform[estimate] <= capacity]  # fmt: skip
    best_uniform = (feasible.sort_values(estimate if constraint == "compression" else objective).iloc[0].to_dict()
                    if len(feasible) else None)  # fmt: skip
    predicted = {"model": {k: totals[k] for k in reported}, "estimated_loss_increase": float(chosen[estimate].sum()),
                 "kept_fraction": float(chosen["kept_weights"].sum() / total_weights),
                 "dense_model": {k: float(dense[hw_name][k]) for k in reported},
                 "best_uniform": best_uniform, "greedy_vs_exact": solved}  # fmt: skip
    if len(hws) > 1:
        joint = _joint_front(candidates, uniform, fixed, objective, estimate)
        write_text_atomic(out / "joint.csv", joint.to_csv(index=False))
        summary["joint_front"] = joint[joint["on_front"]].drop(columns="on_front").to_dict("records")
    plan = CodesignPlan(block=block_text, granularity=granularity, config=hw_name, objective=objective,
                        constraint=constraint_text, predicted=json.loads(strict_json.dumps(predicted)),
                        layers={row.layer: float(row.sparsity) for row in chosen.itertuples()})  # fmt: skip
    summary.update(constraint=constraint_text, chosen_config=hw_name, block=block_text, predicted=predicted)
    plan.save(out / "plan.yaml")
    write_text_atomic(out / "allocation.csv", chosen.to_csv(index=False))
    write_text_atomic(out / "uniform.csv", uniform.to_csv(index=False))
    write_text_atomic(out / "summary.json", strict_json.dumps(summary, indent=2))
    chosen_config = next(hw for hw in hws if hw.name == hw_name)
    return CodesignResult(plan, candidates, chosen, uniform, summary, out, chosen_config)


def _joint_front(candidates: pd.DataFrame, uniform: pd.DataFrame, fixed: dict, objective: str, estimate: str,
                 budgets: int = 12) -> pd.DataFrame:  # fmt: skip
    """Plans of every accelerator x block over ``budgets`` loss budgets (geometric, between the smallest and
    the largest positive uniform-plan estimate) and which of them are on the joint (objective, loss) front."""
    from analysis.pareto import pareto_mask

    positive = uniform.loc[uniform[estimate] > 0, estimate]
    if not len(positive):
        return pd.DataFrame(columns=["config", "block", "budget", objective, estimate, "kept_weights", "on_front"])
    rows = []
    for budget in np.geomspace(positive.min(), positive.max(), budgets):
        for (hw_name, block_text), table in candidates.groupby(["config", "block"], sort=False):
            chosen, _ = allocate_block(table, objective, estimate, float(budget), "loss", greedy=False)
            rows.append({"config": hw_name, "block": block_text, "budget": float(budget),
                         objective: float(chosen[objective].sum()) + fixed[hw_name][objective],
                         estimate: float(chosen[estimate].sum()), "kept_weights": int(chosen["kept_weights"].sum()),
                         "layers": json.dumps(dict(zip(chosen["layer"], chosen["sparsity"], strict=True)))})
    joint = pd.DataFrame(rows)
    joint["on_front"] = pareto_mask(joint, {objective: "min", estimate: "min"})
    return joint


def uniform_plan(plan: CodesignPlan, sparsity: float) -> CodesignPlan:
    """The same layers at one sparsity (the baseline a co-designed plan is compared with)."""
    return replace(plan, layers=dict.fromkeys(plan.layers, float(sparsity)), objective="uniform", predicted={})


def _verify_run(job: dict) -> dict:
    """One pruning run of :func:`verify_plan` and its simulation (picklable: runs on any worker)."""
    from hwsim import build_workload, simulate
    from hwsim.workload import read_hf_config
    from pruning.masks import load_masks
    from pruning.train import run_pruning

    out = job["out"]
    run = run_pruning(job["model"], job["data"], job["candidate"].prune_settings(), out, job["budget"],
                      glue_dir=job["glue_dir"], overwrite=True, cache_dir=job["cache_dir"],
                      progress=job["progress"])  # fmt: skip
    totals = simulate(job["config"], build_workload(read_hf_config(out), load_masks(out), batch=job["batch"],
                                                    seq_len=job["seq_len"])).totals  # fmt: skip
    return {"compression_rate": run.summary["compression_rate"], "dev_accuracy": run.dev_accuracy,
            "test_accuracy": run.test_accuracy, "simulated_latency_s": float(totals["latency_s"]),
            "energy_pj": float(totals["energy_pj"])}  # fmt: skip


def verify_plan(result: CodesignResult, model: str | Path, data: str, budget=None, *, seq_len: int = 128,
                batch: int = 1, glue_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                progress: bool = True, runner=None) -> pd.DataFrame:  # fmt: skip
    """Prune with the plan and with the uniform plan of equal overall compression (same block, same recipe),
    simulate both on the plan's accelerator; rows (plan, dev/test accuracy, predicted and simulated latency).

    The two runs go to ``runner`` (:class:`analysis.executor.TaskRunner`; default: one after the other here);
    they share the dense teacher, which the first to need it trains. Writes ``verification.csv`` and adds
    ``verification`` to summary.json in the result's directory.
    """
    runner = runner or TaskRunner()
    plan = result.plan
    dense_rows = result.candidates[(result.candidates["block"] == plan.block) & (result.candidates["sparsity"] == 0)
                                   & (result.candidates["config"] == plan.config)]  # fmt: skip
    kept = float(result.allocation["kept_weights"].sum()) / float(dense_rows["kept_weights"].sum())
    uniform = uniform_plan(plan, round(1.0 - kept, 6))
    candidates = {"codesign": plan, "uniform": uniform}
    for label, candidate in candidates.items():
        job = {"model": model, "data": data, "candidate": candidate, "out": result.out_dir / f"pruned-{label}",
               "budget": budget, "glue_dir": glue_dir, "cache_dir": cache_dir, "config": result.config,
               "batch": batch, "seq_len": seq_len, "progress": progress and not runner.parallel}  # fmt: skip
        runner.submit(_verify_run, job, key=label, gpu=True)
    measured = {}
    for label, row, error in runner.results():
        if error is not None:
            raise error
        measured[label] = row
    uniform_row = result.uniform[(result.uniform["block"] == plan.block) & (result.uniform["config"] == plan.config)]
    rows = []
    for label, candidate in candidates.items():
        # the uniform twin's sparsity is rarely a candidate: interpolate between the candidates around it
        predicted = (plan.predicted.get("model", {}).get("latency_s") if label == "codesign" else float(
            np.interp(1 - kept, uniform_row["sparsity"], uniform_row["latency_s"])))  # fmt: skip
        row = measured[label]
        rows.append({"plan": label, "layer_sparsities": len(set(candidate.layers.values())),
                     "compression_rate": row["compression_rate"], "dev_accuracy": row["dev_accuracy"],
                     "test_accuracy": row["test_accuracy"], "predicted_latency_s": predicted,
                     "simulated_latency_s": row["simulated_latency_s"], "energy_pj": row["energy_pj"]})  # fmt: skip
    table = pd.DataFrame(rows)
    write_text_atomic(result.out_dir / "verification.csv", table.to_csv(index=False))
    summary = {**result.summary, "verification": table.to_dict("records")}
    write_text_atomic(result.out_dir / "summary.json", strict_json.dumps(summary, indent=2))
    return table
