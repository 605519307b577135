import numpy as np
import pytest
import torch
from conftest import tiny_classifier, tiny_config

from hwsim import Gemm, build_workload
from pruning import BlockPruner, PruneSettings


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
def test_linear_shapes_match_a_real_forward_pass(model_type):
    model = tiny_classifier(model_type)
    pruner = BlockPruner(PruneSettings(block="4x4", method="magnitude", target_sparsity=0.5))
    pruner.prepare(model)
    seen = {}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0]
            seen[name] = (x.shape[0] * x.shape[1], module.in_features, module.out_features)

        return record

    handles = [layer.register_forward_hook(hook(name)) for name, layer in pruner.layers.items()]
    batch, seq = 2, 7
    with torch.no_grad():
        model(input_ids=torch.randint(3, 90, (batch, seq)))
    for handle in handles:
        handle.remove()
    masks = pruner.compute_masks()
    workload = build_workload(model.config, masks, batch=batch, seq_len=seq)
    gemms = {g.name: g for g in workload.gemms if g.b_is_weight}
    assert len(gemms) == len(seen) == 12
    roles = ["q", "k", "v", "attn_out", "ffn_in", "ffn_out"]
    for name, (m, k, n) in seen.items():
        layer = int(name.split(".layer.")[1].split(".")[0])
        role = roles[list(pruner.layers).index(name) % 6]
        gemm = gemms[f"layer{layer}.{role}"]
        assert (m, k, n) == (gemm.M, gemm.K, gemm.N)
        np.testing.assert_array_equal(gemm.mask, masks[f"{name}.weight"].dense().numpy())
    heads = model.config.num_attention_heads if model_type != "distilbert" else model.config.n_heads
    scores = next(g for g in workload.gemms if g.name == "layer0.scores")
    assert (scores.M, scores.N, scores.repeat) == (seq, seq, batch * heads)


def test_dense_workload_without_masks_and_bad_inputs():
    workload = build_workload(tiny_config("bert"), seq_len=5)
    assert all(g.mask is None for g in workload.gemms)
    with pytest.raises(ValueError, match="seq_len"):
        build_workload(tiny_config("bert"), seq_len=0)
    with pytest.raises(ValueError, match="mask shape"):
        Gemm("g", M=2, K=3, N=4, mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="M must be an integer in \\[1, "):
        Gemm("g", M=0, K=3, N=4)
