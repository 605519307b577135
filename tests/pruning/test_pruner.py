import math

import pytest
import torch
from conftest import tiny_classifier
from torch.nn.utils import parametrize

from pruning import (
    BlockPruner,
    BlockSpec,
    PruneSettings,
    compression_summary,
    layer_report,
    load_masks,
    load_pruned,
    load_pruned_masks,
    save_pruned,
)
from pruning.blocks import group_norms_sq, group_sizes
from pruning.selection import nm_mask, select_global, select_layer


@pytest.mark.parametrize("target", [0.0, 0.3, 0.5, 0.8, 0.95])
@pytest.mark.parametrize("granularity", ["block", "column", "row"])
def test_layer_prune_hits_target_within_one_group(bert_tiny, target, granularity):
    settings = PruneSettings(block=BlockSpec(8, 8), granularity=granularity, method="score", target_sparsity=target)
    pruner = BlockPruner(settings)
    pruner.prepare(bert_tiny)
    masks = pruner.compute_masks()
    assert len(masks) == 2 * 6
    for name, mask in masks.items():
        weight = bert_tiny.get_submodule(name.removesuffix(".weight")).weight
        group_elems = settings.group_shape[0] * settings.group_shape[1]
        assert abs(mask.sparsity * mask.n_weights - target * mask.n_weights) <= group_elems / 2 + 1e-9
        # the pruned groups are exactly the lowest-norm ones
        norms = group_norms_sq(weight.detach(), settings.group_shape)
        if 0 < mask.group_mask.sum() < mask.group_mask.numel():
            assert norms[mask.group_mask].min() >= norms[~mask.group_mask].max()


def test_selection_with_partial_edge_groups_counts_elements():
    scores = torch.tensor([[0.0, 1.0, 2.0]])
    sizes = torch.tensor([[4, 4, 2]])  # last group is a partial edge group
    keep = select_layer(scores, sizes, target_sparsity=0.4)  # 0.4 * 10 = 4 elements -> first group
    assert keep.tolist() == [[False, True, True]]


def test_balanced_prunes_equally_per_block_row():
    scores = torch.rand(6, 10, generator=torch.Generator().manual_seed(0))
    keep = select_layer(scores, torch.ones(6, 10, dtype=torch.int64), 0.7, balanced=True)
    assert keep.sum(dim=1).tolist() == [3] * 6
    for row in range(6):
        assert scores[row][keep[row]].min() >= scores[row][~keep[row]].max()


def test_global_scope_hits_total_target(bert_tiny):
    pruner = BlockPruner(PruneSettings(block="4x4", method="score", target_sparsity=0.6, scope="global"))
    pruner.prepare(bert_tiny)
    summary = compression_summary(pruner.compute_masks())
    assert summary["sparsity"] == pytest.approx(0.6, abs=16 / summary["pruned_layer_weights"])
    pruner.prune(0.5)  # a ramp: the groups pruned at 0.5 stay pruned and count towards 0.75
    summary = compression_summary(pruner.prune(0.75))
    assert summary["sparsity"] == pytest.approx(0.75, abs=16 / summary["pruned_layer_weights"])


def test_global_selection_keeps_a_floor_per_layer_and_meets_the_target_from_the_rest():
    # layer "weak" scores below everything in "strong": a plain global threshold would empty it at 50%
    scores = {"weak": torch.arange(100, dtype=torch.float64).reshape(10, 10) * 1e-6,
              "strong": 1.0 + torch.arange(100, dtype=torch.float64).reshape(10, 10)}  # fmt: skip
    sizes = {name: torch.full((10, 10), 16.0) for name in scores}
    keep = select_global(scores, sizes, 0.5, max_layer_sparsity=0.9)
    assert keep["weak"].sum() == 10  # ceil(0.1 * 100) groups: the 10 best of the layer
    assert keep["weak"].flatten()[-10:].all()
    assert keep["strong"].sum() == 90  # the rest of the 100 pruned groups come from here, lowest first
    assert not keep["strong"].flatten()[:10].any()
    # by hand: the floor is one group when 2% of a layer rounds up to one; floors win over the target (5 of 6)
    keep = select_global({"a": torch.zeros(1, 3), "b": torch.ones(1, 3)}, {n: torch.ones(1, 3) for n in "ab"}, 0.9)
    assert keep["a"].sum() == 1 and keep["b"].sum() == 1
    # groups pruned by an earlier update score -inf (monotone masks): they count towards the target
    scores["strong"].view(-1)[:60] = -math.inf
    keep = select_global(scores, sizes, 0.75, max_layer_sparsity=0.9)
    assert int(keep["weak"].sum()) == 10 and int(keep["strong"].sum()) == 40
    with pytest.raises(ValueError, match="max_layer_sparsity"):
        select_global(scores, sizes, 0.5, max_layer_sparsity=1.0)


def test_nm_keeps_n_largest_of_every_m():
    weight = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, 0.0, -1.0, 0.2]])
    keep = nm_mask(weight, 2, 4)
    assert keep.tolist() == [[False, True, True, False, True, False, True, False]]
    with pytest.raises(ValueError, match="multiple of M=3"):
        nm_mask(weight, 1, 3)


def test_nm_and_unstructured_methods(bert_tiny):
    pruner = BlockPruner(PruneSettings(method="nm", nm=(2, 4)))
    pruner.prepare(bert_tiny)
    for mask in pruner.compute_masks().values():
        dense = mask.dense().reshape(mask.weight_shape[0], -1, 4)
        assert (dense.sum(-1) == 2).all()
    settings = PruneSettings(method="unstructured", block="16x16", target_sparsity=0.5)
    assert settings.block == BlockSpec(1, 1)


def test_masked_retraining_with_adamw_keeps_exact_zeros(bert_tiny, token_batch):
    model = bert_tiny
    model.train()
    pruner = BlockPruner(
        PruneSettings(block="8x4", granularity="column", method="reweighted", target_sparsity=0.7, lam=1e-3)
    )
    pruner.prepare(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    labels = torch.tensor([0, 1, 2, 0])
    for step in range(6):  # phase 1: regularized fine-tune (autograd path)
        loss = model(**token_batch, labels=labels).loss + pruner.regularizer.penalty()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 3 == 2:
            pruner.regularizer.reweight()
    masks = pruner.prune()
    for _ in range(5):  # phase 3: masked retrain, AdamW weight decay moves the originals
        loss = model(**token_batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits_masked = model(**token_batch).logits
    originals = {
        name: model.get_submodule(name.removesuffix(".weight")).parametrizations.weight.original.detach().clone()
        for name in masks
    }
    pruner.finalize()
    for name, mask in masks.items():
        module = model.get_submodule(name.removesuffix(".weight"))
        assert not parametrize.is_parametrized(module)
        assert torch.count_nonzero(module.weight.detach()[~mask.dense()]) == 0
    # an unparametrized dense model with original * mask written in explicitly gives the same output
    reference = tiny_classifier("bert", seed=99)
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, mask in masks.items():
            reference.get_submodule(name.removesuffix(".weight")).weight.copy_(originals[name] * mask.dense())
        torch.testing.assert_close(model(**token_batch).logits, logits_masked, rtol=0, atol=0)
        torch.testing.assert_close(reference(**token_batch).logits, logits_masked, rtol=0, atol=0)


def test_save_load_round_trip_bit_exact(tmp_path, bert_tiny, token_batch):
    settings = PruneSettings(block="8x8", method="score", target_sparsity=0.5)
    pruner = BlockPruner(settings)
    pruner.prepare(bert_tiny)
    pruner.prune()
    masks = pruner.finalize()
    with torch.no_grad():
        logits = bert_tiny(**token_batch).logits
    save_pruned(tmp_path / "pruned", bert_tiny, masks, settings)
    model, loaded_masks, record = load_pruned(tmp_path / "pruned")
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**token_batch).logits, logits)
    assert set(loaded_masks) == set(masks)
    for name in masks:
        assert torch.equal(loaded_masks[name].group_mask, masks[name].group_mask)
    assert record["settings"]["block"] == "8x8"
    assert record["summary"]["compression_rate"] == pytest.approx(2.0, rel=0.02)
    assert set(load_masks(tmp_path / "pruned")) == set(masks)


def test_loading_mismatched_mask_is_clear_error(tmp_path, bert_tiny):
    settings = PruneSettings(block="8x8", method="score", target_sparsity=0.5)
    pruner = BlockPruner(settings)
    pruner.prepare(bert_tiny)
    pruner.prune()
    masks = pruner.finalize()
    save_pruned(tmp_path / "a", bert_tiny, masks, settings)
    other = tiny_classifier("bert", seed=5)
    other.save_pretrained(tmp_path / "b")
    (tmp_path / "b" / "block_masks.safetensors").write_bytes((tmp_path / "a" / "block_masks.safetensors").read_bytes())
    for load in (load_pruned, load_pruned_masks):  # the model loader and the weights-file check agree
        with pytest.raises(ValueError, match="does not match its masks: 512 weights"):
            load(tmp_path / "b")
    wide = tiny_classifier("bert", seed=0, layers=2)
    wide.config.intermediate_size = 48
    from transformers import AutoModelForSequenceClassification

    wide = AutoModelForSequenceClassification.from_config(wide.config)
    wide.save_pretrained(tmp_path / "c")
    (tmp_path / "c" / "block_masks.safetensors").write_bytes((tmp_path / "a" / "block_masks.safetensors").read_bytes())
    for load in (load_pruned, load_pruned_masks):
        with pytest.raises(ValueError, match="was made for a weight of shape"):
            load(tmp_path / "c")


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
def test_model_families_prune_and_run(model_type, token_batch):
    model = tiny_classifier(model_type)
    pruner = BlockPruner(PruneSettings(block="4x4", method="score", target_sparsity=0.75))
    pruner.prepare(model)
    assert len(pruner.layers) == 12
    assert not any("classifier" in n or "embeddings" in n or "pooler" in n for n in pruner.layers)
    pruner.prune()
    masks = pruner.finalize()
    with torch.no_grad():
        assert torch.isfinite(model(**token_batch).logits).all()
    report = layer_report(masks)
    assert (report["compression_rate"] == 4.0).all()


def test_custom_patterns_and_unmatched_pattern(bert_tiny):
    pruner = BlockPruner(PruneSettings(block="4x4", method="score", targets=[r"intermediate\.dense$"]))
    pruner.prepare(bert_tiny)
    assert list(pruner.layers) == [f"bert.encoder.layer.{i}.intermediate.dense" for i in range(2)]
    with pytest.raises(ValueError, match="matches no Linear"):
        BlockPruner(PruneSettings(targets=["nonexistent"])).prepare(bert_tiny)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_sparsity": 1.0}, "target_sparsity"),
        ({"target_sparsity": -0.1}, "target_sparsity"),
        ({"method": "random"}, "method: unknown value 'random'"),
        ({"granularity": "diag"}, "granularity"),
        ({"block": "0x4"}, "block"),
        ({"nm": (5, 4), "method": "nm"}, "nm"),
        ({"reweight_interval_steps": 0}, "reweight_interval_steps"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PruneSettings(**kwargs)


def test_block_too_large_for_layer(bert_tiny):
    with pytest.raises(ValueError, match="does not fit"):
        BlockPruner(PruneSettings(block="64x64")).prepare(bert_tiny)


def test_state_dict_round_trip_reproduces_masks(bert_tiny):
    pruner = BlockPruner(PruneSettings(block="8x8", method="reweighted", target_sparsity=0.5))
    pruner.prepare(bert_tiny)
    masks = pruner.prune()
    state = pruner.state_dict()
    other_model = tiny_classifier("bert")
    restored = BlockPruner(pruner.settings)
    restored.prepare(other_model)
    restored.load_state_dict(state)
    for name, mask in masks.items():
        assert torch.equal(restored.masks[name].group_mask, mask.group_mask)
    assert group_sizes((3, 3), (2, 2)).sum() == 9


def test_the_default_method_is_named_score_and_its_old_name_is_accepted():
    from pruning.settings import PruneMethod

    assert PruneSettings().method is PruneMethod.SCORE and PruneMethod.parse("magnitude") is PruneMethod.SCORE
    assert PruneSettings(method="magnitude") == PruneSettings(method="score")  # same run, same cache key
    with pytest.raises(ValueError, match="method: unknown value 'magnitud'; allowed: reweighted, group-lasso, score"):
        PruneSettings(method="magnitud")
