import pytest
import torch
from conftest import tiny_classifier
from transformers import Trainer, TrainingArguments

from pruning import BlockPruner, BlockPruningCallback, PruneSettings


class RandomTokens(torch.utils.data.Dataset):
    def __init__(self, n=64, seq=10, labels=3):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(3, 99, (n, seq), generator=g)
        self.labels = torch.randint(0, labels, (n,), generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def train(tmp_path, settings, prune_at_step, steps=8):
    model = tiny_classifier("bert")
    model.train()
    pruner = BlockPruner(settings)
    callback = BlockPruningCallback(pruner, prune_at_step=prune_at_step)
    args = TrainingArguments(
        output_dir=str(tmp_path / "t"),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        weight_decay=0.1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=RandomTokens(), callbacks=[callback]).train()
    return model, pruner, callback


def target_norm(model):
    return sum(
        float(model.get_submodule(f"bert.encoder.layer.{i}.intermediate.dense").weight.detach().norm())
        for i in range(2)
    )


def test_three_phases_under_trainer(tmp_path):
    settings = PruneSettings(block="8x8", method="reweighted", target_sparsity=0.5, lam=1e-2, reweight_interval_steps=2)
    model, pruner, callback = train(tmp_path, settings, prune_at_step=5)
    assert callback.pruned_at_step == 5
    assert callback.reweight_count == 2  # steps 2 and 4, before the prune at step 5
    masks = pruner.finalize()
    for name, mask in masks.items():
        weight = model.get_submodule(name.removesuffix(".weight")).weight.detach()
        assert torch.count_nonzero(weight[~mask.dense()]) == 0
        assert mask.sparsity == pytest.approx(0.5)


def test_penalty_is_applied_during_phase_one(tmp_path):
    strong = PruneSettings(block="8x8", method="group-lasso", target_sparsity=0.5, lam=0.5)
    none = PruneSettings(block="8x8", method="score", target_sparsity=0.5)
    reg_model, _, _ = train(tmp_path, strong, prune_at_step=8)
    plain_model, _, _ = train(tmp_path, none, prune_at_step=8)
    assert target_norm(reg_model) < 0.9 * target_norm(plain_model)


def test_callback_needs_exactly_one_prune_point():
    pruner = BlockPruner(PruneSettings())
    with pytest.raises(ValueError, match="exactly one"):
        BlockPruningCallback(pruner)
    with pytest.raises(ValueError, match="prune_at_step"):
        BlockPruningCallback(pruner, prune_at_step=-1)


def test_proximal_mode_shrinks_small_groups_under_trainer(tmp_path):
    prox = PruneSettings(
        block="8x8",
        method="reweighted",
        target_sparsity=0.5,
        lam=5.0,
        penalty_mode="proximal",
        reweight_interval_steps=2,
    )
    none = PruneSettings(block="8x8", method="score", target_sparsity=0.5)
    prox_model, _, _ = train(tmp_path, prox, prune_at_step=8)
    plain_model, _, _ = train(tmp_path, none, prune_at_step=8)
    assert target_norm(prox_model) < 0.9 * target_norm(plain_model)
    with pytest.raises(ValueError, match="penalty_mode"):
        PruneSettings(penalty_mode="sideways")
