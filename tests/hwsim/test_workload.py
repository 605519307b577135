import numpy as np
import pytest
import torch
from conftest import tiny_classifier, tiny_config

from hwsim import Gemm, build_workload
from pruning import BlockPruner, PruneSettings


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
def test_linear_shapes_match_a_real_forward_pass(model_type):
    model = tiny_classifier(model_type)
    pruner = BlockPruner(PruneSettings(block="4x4", method="score", target_sparsity=0.5))
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
    with pytest.raises(ValueError, match=r"seq_len: must be an integer in 1\.\.65536, got 65537"):
        build_workload(tiny_config("bert"), seq_len=65_537)
    with pytest.raises(ValueError, match=r"batch: must be an integer in 1\.\.4096, got 4097"):
        build_workload(tiny_config("bert"), batch=4097)
    with pytest.raises(ValueError, match="mask shape"):
        Gemm("g", M=2, K=3, N=4, mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="M must be an integer in \\[1, "):
        Gemm("g", M=0, K=3, N=4)


def test_shipped_model_configs_are_the_published_shapes():
    """Each shipped config builds the workload transformers' own config class builds for that model."""
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    from hwsim import named_model_configs, read_hf_config
    from pruning.models import resolve_model_path

    expected = {
        "bert-base-uncased": BertConfig(),  # transformers' defaults are bert-base
        "bert-large-uncased": BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                         intermediate_size=4096),
        "roberta-base": RobertaConfig(),
        "distilbert-base-uncased": DistilBertConfig(),
        "all-MiniLM-L6-v2": read_hf_config(resolve_model_path("minilm")),  # the shipped model's own config.json
    }  # fmt: skip
    assert named_model_configs() == sorted(expected)
    for name, config in expected.items():
        shipped = build_workload(read_hf_config(name), seq_len=128)
        reference = build_workload(config, seq_len=128)
        assert [(g.M, g.K, g.N, g.repeat) for g in shipped.gemms] == [(g.M, g.K, g.N, g.repeat)
                                                                        for g in reference.gemms], name
    assert read_hf_config("BERT-BASE-UNCASED").hidden_size == 768  # names are case-insensitive


def test_bsp_simulate_takes_a_shipped_config_by_name(capsys):
    import json

    from transformers import BertConfig

    from bsp_cli.main import main
    from hwsim import simulate

    assert main(["simulate", "--config", "asic-32x32-int8", "--hf-config", "bert-base-uncased", "--seq-len", "64",
                 "--json"]) == 0  # fmt: skip
    cycles = json.loads(capsys.readouterr().out)["total"]["cycles"]
    assert cycles == simulate("asic-32x32-int8", build_workload(BertConfig(), seq_len=64)).totals["cycles"]
    assert main(["simulate", "--config", "asic-32x32-int8", "--hf-config", "bert-huge"]) == 2
    assert "neither a file nor a shipped model config (all-MiniLM-L6-v2, bert-base-uncased" in capsys.readouterr().err
