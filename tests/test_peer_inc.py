"""The INC side-by-side benchmark's own logic (layer selection, the recount of compression from weights, the
paired table); the INC runs themselves need its venv and are never part of CI."""

import re

import pandas as pd
import pytest
import torch
from conftest import tiny_classifier

from benchmarks.peer_inc import inc_op_names, recount_masks, table
from pruning.distill import DistillationModel
from pruning.pruner import PruneSettings
from pruning.targets import find_targets


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
def test_the_inc_op_names_select_exactly_our_pruned_layers_of_the_student(model_type):
    model = tiny_classifier(model_type)
    ours = set(find_targets(model, PruneSettings().targets))
    # under the distillation wrapper, the student's layers only (never the frozen teacher's), matched the way
    # INC matches op_names (re.search over every module name)
    wrapped = DistillationModel(model, tiny_classifier(model_type, seed=1))
    patterns = [re.compile(p) for p in inc_op_names(model)]
    selected = {name for name, _ in wrapped.named_modules() if any(p.search(name) for p in patterns)}
    assert selected == {f"student.{n}" for n in ours}
    assert set(recount_masks(model, "8x8")) == ours


def test_recount_finds_the_zero_blocks_set_by_hand():
    model = tiny_classifier("bert")  # hidden 32, intermediate 64
    query = model.bert.encoder.layer[0].attention.self.query
    ffn_in = model.bert.encoder.layer[1].intermediate.dense
    with torch.no_grad():
        query.weight[0:8, 8:16] = 0  # block (0, 1)
        query.weight[24:32, 0:8] = 0  # block (3, 0)
        ffn_in.weight[8:16, :] = 0  # block row 1: 4 blocks
        ffn_in.weight[8, 30] = 1e-3  # ... but one weight survives in block (1, 3): kept
    masks = recount_masks(model, "8x8")
    assert len(masks) == 12  # 6 layers x 2 encoder layers
    expected_query = torch.ones(4, 4, dtype=torch.bool)
    expected_query[0, 1] = expected_query[3, 0] = False
    assert torch.equal(masks["bert.encoder.layer.0.attention.self.query"].group_mask, expected_query)
    expected_ffn = torch.ones(8, 4, dtype=torch.bool)
    expected_ffn[1, :3] = False
    assert torch.equal(masks["bert.encoder.layer.1.intermediate.dense"].group_mask, expected_ffn)
    untouched = masks["bert.encoder.layer.1.output.dense"]
    assert untouched.group_mask.all() and untouched.weight_shape == (32, 64)


def test_table_by_hand():
    records = pd.DataFrame([
        {"arm": "ours", "rate": 4, "seed": 0, "dev_accuracy": 0.70, "test_accuracy": 0.72, "compression_rate": 4.0},
        {"arm": "ours", "rate": 4, "seed": 1, "dev_accuracy": 0.74, "test_accuracy": 0.74, "compression_rate": 4.0},
        {"arm": "inc", "rate": 4, "seed": 0, "dev_accuracy": 0.68, "test_accuracy": 0.73, "compression_rate": 4.0},
        {"arm": "inc", "rate": 4, "seed": 1, "dev_accuracy": 0.70, "test_accuracy": 0.71, "compression_rate": 4.0},
    ])  # fmt: skip
    dense = {0: (0.75, 0.76), 1: (0.77, 0.78)}
    rows = table(records, dense).set_index("arm")
    assert rows.loc["ours", "dev"] == pytest.approx(72.0)
    assert rows.loc["ours", "dev_drop"] == pytest.approx((5 + 3) / 2)  # 0.75-0.70, 0.77-0.74
    assert rows.loc["inc", "test_drop"] == pytest.approx((3 + 7) / 2)  # 0.76-0.73, 0.78-0.71
    assert rows.loc["inc", "inc_minus_ours_dev"] == pytest.approx((-2 - 4) / 2)
    assert rows.loc["inc", "inc_minus_ours_test"] == pytest.approx((1 - 3) / 2)
    assert rows.loc["inc", "paired_seeds"] == 2 and pd.isna(rows.loc["ours", "inc_minus_ours_dev"])
