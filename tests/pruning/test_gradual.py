"""Gradual schedules, group scores, focused regularization and distillation against closed forms and brute force."""

import io
import itertools
import math

import pytest
import torch
from conftest import tiny_classifier
from test_callback import RandomTokens
from transformers import Trainer, TrainingArguments

from pruning import BlockPruner, BlockPruningCallback, PruneSettings
from pruning.distill import DistillationModel, distillation_loss
from pruning.progress import TrainingProgress
from pruning.regularizers import GroupLasso, ReweightedGroupLasso
from pruning.schedule import SparsitySchedule
from pruning.scores import GroupScorer

# -- schedules ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("final", [0.5, 0.9])
def test_cubic_schedule_matches_zhu_gupta(final):
    schedule = SparsitySchedule("cubic", start_step=20, end_step=120, frequency=7, initial_sparsity=0.1)
    for step in range(0, 200):
        expected = 0.0 if step < 20 else final if step >= 120 else final + (0.1 - final) * (1 - (step - 20) / 100) ** 3
        assert schedule.sparsity_at(step, final) == pytest.approx(expected)
    assert schedule.update_steps() == [*range(20, 120, 7), 120]


def test_exponential_schedule_shrinks_the_kept_fraction_geometrically():
    schedule = SparsitySchedule("exponential", start_step=0, end_step=10, frequency=1)
    kept = [1 - schedule.sparsity_at(t, 0.75) for t in range(11)]
    ratios = [b / a for a, b in itertools.pairwise(kept)]
    assert ratios == pytest.approx([0.25 ** 0.1] * 10)
    assert kept[-1] == pytest.approx(0.25)


def test_oneshot_schedule_jumps_at_the_end():
    schedule = SparsitySchedule("oneshot", start_step=0, end_step=5)
    assert [schedule.sparsity_at(t, 0.6) for t in range(7)] == [0, 0, 0, 0, 0, 0.6, 0.6]
    assert schedule.update_steps() == [5]


@pytest.mark.parametrize(("field", "value"), [("frequency", 0), ("start_step", -1), ("kind", "linear")])
def test_bad_schedules_name_the_field(field, value):
    kwargs = {"kind": "cubic", "start_step": 0, "end_step": 10, "frequency": 2, field: value}
    with pytest.raises(ValueError, match=field if field != "kind" else "unknown value 'linear'"):
        SparsitySchedule(**kwargs)


# -- scores ------------------------------------------------------------------------------------------------------


def test_taylor_and_movement_scores_against_brute_force():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(6, 8))
    grads = [torch.randn(6, 8) for _ in range(4)]
    taylor = GroupScorer("taylor", {"w": weight}, (2, 4), momentum=0.8)
    movement = GroupScorer("movement", {"w": weight}, (2, 4))
    for grad in grads:
        weight.grad = grad
        taylor.accumulate()
        movement.accumulate()
    ema = None
    total = torch.zeros(3, 2)
    for grad in grads:  # loop over groups by hand
        step = torch.zeros(3, 2)
        moved = torch.zeros(3, 2)
        for i in range(3):
            for j in range(2):
                block = (weight.detach() * grad)[2 * i : 2 * i + 2, 4 * j : 4 * j + 4]
                step[i, j] = block.abs().sum()
                moved[i, j] = -block.sum()
        ema = step if ema is None else 0.8 * ema + 0.2 * step
        total += moved
    assert torch.allclose(taylor.score("w"), ema, atol=1e-5)
    assert torch.allclose(movement.score("w"), total, atol=1e-5)


def test_scores_fall_back_to_magnitude_before_any_gradient():
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0], [1.0, 0.0]]))
    scorer = GroupScorer("taylor", {"w": weight}, (1, 2))
    assert scorer.score("w").flatten().tolist() == [25.0, 1.0]


# -- monotone masks and doomed groups ----------------------------------------------------------------------------


def test_masks_are_monotone_and_doomed_groups_are_the_next_ones_pruned():
    model = tiny_classifier("bert")
    pruner = BlockPruner(PruneSettings(block="8x8", method="score", target_sparsity=0.75))
    pruner.prepare(model)
    first = pruner.prune(0.25)
    name = "bert.encoder.layer.0.intermediate.dense.weight"
    layer = model.get_submodule(name.removesuffix(".weight")).parametrizations.weight.original
    with torch.no_grad():  # make the groups pruned at 25 % the largest: they must stay pruned anyway
        layer.mul_(~first[name].dense() * 1.0 + first[name].dense() * 0.01)
    doomed = pruner.doomed_groups(0.5)
    second = pruner.prune(0.5)
    for key in first:
        assert not (second[key].group_mask & ~first[key].group_mask).any()  # nothing returns
        assert torch.equal(doomed[key], first[key].group_mask & ~second[key].group_mask)
        assert second[key].sparsity == pytest.approx(0.5, abs=1 / second[key].group_mask.numel())


# -- focused regularization --------------------------------------------------------------------------------------


def test_focused_reweighted_prox_drives_exactly_the_focused_groups_to_zero():
    """Convex toy: minimise 0.5 ||W - W0||^2 by prox-gradient; only the focused groups are penalised."""
    torch.manual_seed(0)
    target = torch.randn(8, 8) + 2.0
    weight = torch.nn.Parameter(target.clone())
    focus = torch.zeros(4, 4, dtype=torch.bool)
    focus[0, :2] = focus[3, 3] = True
    for regularizer, should_vanish in ((ReweightedGroupLasso({"w": weight}, (2, 2), lam=5.0, normalize=True), True),
                                       (GroupLasso({"w": weight}, (2, 2), lam=0.05), False)):  # fmt: skip
        with torch.no_grad():
            weight.copy_(target)
        regularizer.focus_on({"w": focus})
        lr = 0.1
        for _ in range(200):
            with torch.no_grad():
                weight -= lr * (weight - target)  # gradient step of the data term
            regularizer.prox_(lr)
            regularizer.reweight()
        norms = torch.stack([weight.detach()[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].norm() for i in range(4)
                             for j in range(4)]).reshape(4, 4)  # fmt: skip
        untouched = ~focus
        assert torch.allclose(weight.detach()[untouched.repeat_interleave(2, 0).repeat_interleave(2, 1)],
                              target[untouched.repeat_interleave(2, 0).repeat_interleave(2, 1)])  # fmt: skip
        if should_vanish:  # alpha grows as the group shrinks: the focused groups collapse
            assert norms[focus].max() < 1e-3
        else:  # plain group Lasso at a comparable pull only shrinks them by a constant amount
            assert norms[focus].min() > 1.0


def test_relative_norms_make_alpha_scale_free():
    weight = torch.nn.Parameter(torch.randn(8, 8))
    scaled = torch.nn.Parameter(weight.detach() * 1000)
    a = ReweightedGroupLasso({"w": weight}, (2, 2), lam=1.0, eps=1e-3, normalize=True)
    b = ReweightedGroupLasso({"w": scaled}, (2, 2), lam=1.0, eps=1e-3, normalize=True)
    assert torch.allclose(a.alphas["w"], b.alphas["w"], rtol=1e-4)


# -- distillation ------------------------------------------------------------------------------------------------


def test_distillation_loss_matches_a_hand_computation():
    student = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    teacher = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    temperature = 3.0
    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        ps = [math.exp(v / temperature) for v in s_row]
        pt = [math.exp(v / temperature) for v in t_row]
        ps = [v / sum(ps) for v in ps]
        pt = [v / sum(pt) for v in pt]
        expected += sum(q * math.log(q / p) for p, q in zip(ps, pt, strict=True))
    expected = expected / 2 * temperature**2
    assert float(distillation_loss(student, teacher, temperature)) == pytest.approx(expected, rel=1e-5)


def test_distillation_model_mixes_losses_and_freezes_the_teacher():
    student, teacher = tiny_classifier("bert", seed=0), tiny_classifier("bert", seed=1)
    for module in student.modules():  # deterministic training-mode forward for the comparison
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    wrapped = DistillationModel(student, teacher, alpha=0.25, temperature=2.0).train()
    batch = RandomTokens(n=4)[0]
    inputs = {k: v[None] for k, v in batch.items() if k != "labels"}
    labels = batch["labels"][None]
    out = wrapped(**inputs, labels=labels)
    hard = student(**inputs, labels=labels)
    with torch.no_grad():
        soft = distillation_loss(hard.logits, teacher.eval()(**inputs).logits, 2.0)
    assert out.loss.item() == pytest.approx((0.75 * hard.loss + 0.25 * soft).item(), rel=1e-4)
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    # + hidden-state MSE: the mean over the embedding output and every layer's output, by hand
    with_hidden = DistillationModel(student, teacher, alpha=0.25, temperature=2.0, hidden_weight=3.0).train()
    out = with_hidden(**inputs, labels=labels)
    with torch.no_grad():
        s_states = student(**inputs, output_hidden_states=True).hidden_states
        t_states = teacher(**inputs, output_hidden_states=True).hidden_states
    mse = sum(float(((s - t) ** 2).mean()) for s, t in zip(s_states, t_states, strict=True)) / len(s_states)
    assert len(s_states) == 3  # embeddings + 2 layers
    assert out.loss.item() == pytest.approx((0.75 * hard.loss + 0.25 * soft).item() + 3.0 * mse, rel=1e-4)


# -- the callback with a gradual schedule under a real Trainer ---------------------------------------------------


def test_gradual_callback_follows_the_schedule_under_trainer(tmp_path):
    model = tiny_classifier("bert")
    settings = PruneSettings(block="8x8", method="reweighted", target_sparsity=0.75, lam=50.0, penalty_mode="proximal",
                             relative_norms=True, reweight_interval_steps=1, score="taylor")  # fmt: skip
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    callback = BlockPruningCallback(pruner, prune_at_step=8, schedule="cubic", start_step=0, frequency_steps=2)
    seen = []
    original_prune = pruner.prune

    def recording_prune(sparsity=None):
        masks = original_prune(sparsity)
        seen.append((sparsity, {k: m.group_mask.clone() for k, m in masks.items()}))
        return masks

    pruner.prune = recording_prune
    args = TrainingArguments(output_dir=str(tmp_path / "t"), max_steps=12, per_device_train_batch_size=8,
                             learning_rate=1e-3, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                             disable_tqdm=True)  # fmt: skip
    log = io.StringIO()  # not a terminal: periodic lines
    progress = TrainingProgress("prune", callback, stream=log)
    Trainer(model=model, args=args, train_dataset=RandomTokens(), callbacks=[callback, progress]).train()
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("prune: step 1/12 sparsity 0.00")
    assert lines[-1].startswith("prune: step 12/12 sparsity 0.75")
    expected = [SparsitySchedule("cubic", 0, 8, 2).sparsity_at(t, 0.75) for t in (2, 4, 6, 8)]
    assert [s for s, _ in seen] == pytest.approx(expected)
    for (_, before), (_, after) in itertools.pairwise(seen):
        assert all(not (after[k] & ~before[k]).any() for k in before)  # monotone
    assert callback.pruned_at_step == 8 and callback.state()["mask_updates"] == 4
    masks = pruner.finalize()
    for name, mask in masks.items():
        assert mask.sparsity == pytest.approx(0.75)
        weight = model.get_submodule(name.removesuffix(".weight")).weight.detach()
        assert torch.count_nonzero(weight[~mask.dense()]) == 0


def _resumable_run(output_dir, resume: bool):
    """A gradual reweighted+taylor run of 12 steps checkpointed every 5; returns (masks, weights)."""
    model = tiny_classifier("bert", seed=3)
    settings = PruneSettings(block="8x8", method="reweighted", target_sparsity=0.75, lam=50.0, penalty_mode="proximal",
                             relative_norms=True, reweight_interval_steps=1, score="taylor")  # fmt: skip
    pruner = BlockPruner(settings)
    callback = BlockPruningCallback(pruner, prune_at_step=9, schedule="cubic", start_step=0, frequency_steps=2)
    args = TrainingArguments(output_dir=str(output_dir), max_steps=12, per_device_train_batch_size=8,
                             learning_rate=1e-3, save_strategy="steps", save_steps=5, report_to=[], use_cpu=True,
                             seed=0, disable_tqdm=True)  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=RandomTokens(), callbacks=[callback])
    trainer.train(resume_from_checkpoint=True if resume else None)
    masks = pruner.finalize()
    return {k: m.group_mask for k, m in masks.items()}, {k: v.clone() for k, v in model.state_dict().items()}, callback


def test_a_resumed_run_ends_with_the_masks_and_weights_of_an_uninterrupted_one(tmp_path):
    import shutil

    full_masks, full_weights, full = _resumable_run(tmp_path / "full", resume=False)
    # interrupted after step 5 (mid-ramp: masks, scores and focus all matter): keep only that checkpoint
    shutil.copytree(tmp_path / "full" / "checkpoint-5", tmp_path / "cut" / "checkpoint-5")
    resumed_masks, resumed_weights, resumed = _resumable_run(tmp_path / "cut", resume=True)
    assert full.updates == resumed.updates and resumed.pruned_at_step == 9
    for name, mask in full_masks.items():
        assert torch.equal(mask, resumed_masks[name]), name
    for name, weight in full_weights.items():
        torch.testing.assert_close(resumed_weights[name], weight, msg=name)


def test_resuming_from_a_checkpoint_without_pruning_state_names_the_file(tmp_path):
    _resumable_run(tmp_path / "full", resume=False)
    (tmp_path / "full" / "checkpoint-12" / "bsp_pruning_state.safetensors").unlink()  # the last checkpoint
    with pytest.raises(ValueError, match=r"checkpoint-12/bsp_pruning_state\.safetensors is missing"):
        _resumable_run(tmp_path / "full", resume=True)


def test_a_plans_progress_reports_the_weighted_sparsity_of_its_layers():
    """prune --plan ramps each layer to its own target: the shown sparsity is theirs, weighted by size, not the
    largest layer's scheduled value."""
    model = tiny_classifier("bert")
    query = "bert.encoder.layer.0.attention.self.query.weight"
    ffn = "bert.encoder.layer.0.intermediate.dense.weight"
    settings = PruneSettings(block="8x8", method="score", target_sparsity=0.75,
                             layer_sparsity={query: 0.25, ffn: 0.75})  # fmt: skip
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    sizes = {n: model.get_parameter(n).numel() for n in pruner.weight_names}
    planned = {query: 0.25, ffn: 0.75}
    expected = sum(sizes[n] * planned.get(n, 0.0) for n in sizes) / sum(sizes.values())
    assert pruner.overall_sparsity(0.75) == pytest.approx(expected)
    assert pruner.overall_sparsity(0.375) == pytest.approx(expected / 2)  # half way along the schedule
    assert BlockPruner(PruneSettings(block="8x8", target_sparsity=0.5)).overall_sparsity(0.3) == 0.3
