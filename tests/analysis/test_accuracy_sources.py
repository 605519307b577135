"""The sweep's training accuracy sources on a tiny text task, checked against plain torch computations."""

import pytest
import torch
from conftest import tiny_text_task
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from analysis import SweepSpace, sweep
from analysis.space import AccuracyBudget
from pruning.io import read_run_record
from pruning.masks import load_masks


def _lowest_half_blocks(model, masks) -> dict[str, torch.Tensor]:
    """Brute force: per masked layer, keep the 4x4 blocks whose L2 norm is above the layer's median."""
    state, kept = model.state_dict(), {}
    for name in masks:
        rows, cols = state[name].shape
        norms = state[name].reshape(rows // 4, 4, cols // 4, 4).pow(2).sum(dim=(1, 3))
        kept[name] = norms > norms.flatten().kthvalue(norms.numel() // 2).values
    return kept


def _dev_accuracy(model, tokenizer, glue_dir) -> float:
    rows = [line.split("\t") for line in (glue_dir / "SST-2" / "dev.tsv").read_text().splitlines()[1:]]
    batch = tokenizer([text for text, _ in rows], padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model.eval()(**batch).logits.argmax(dim=-1)
    return float((predicted == torch.tensor([int(label) for _, label in rows])).float().mean())


def test_proxy_prunes_the_dense_fine_tune_and_reports_its_accuracy(tmp_path):
    model_dir, glue_dir = tiny_text_task(tmp_path)
    # lr 5e-3: the fine-tune moves the weights enough that its block norms rank differently from the pretrained
    budget = AccuracyBudget(epochs=3.0, max_train_samples=16, max_eval_samples=8, batch_size=8, learning_rate=5e-3,
                            recovery_steps=0)  # fmt: skip
    space = SweepSpace(model=str(model_dir), data="glue:sst-2", glue_dir=str(glue_dir), accuracy="proxy",
                       blocks=["4x4"], sparsities=[0.0, 0.5], methods=["magnitude"], configs=["asic-16x16-int8"],
                       seq_lens=[8], budget=budget)  # fmt: skip
    table = sweep(space, out_dir=tmp_path / "out", progress=False).set_index("method")
    (teacher_dir,) = (tmp_path / "out" / "cache" / "teachers").iterdir()
    fine_tuned = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    pretrained = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    assert table.loc["dense", "accuracy"] == read_run_record(teacher_dir)["extra"]["dev_accuracy"]
    assert table.loc["dense", "accuracy"] == pytest.approx(_dev_accuracy(fine_tuned, tokenizer, glue_dir))

    masks = load_masks(tmp_path / "out" / table.loc["score", "masks_path"])  # relative to the sweep
    expected = _lowest_half_blocks(fine_tuned, masks)
    assert all(torch.equal(masks[name].group_mask, keep) for name, keep in expected.items())
    from_pretrained = _lowest_half_blocks(pretrained, masks)
    assert any(not torch.equal(expected[name], from_pretrained[name]) for name in masks)  # the check can tell

    state = fine_tuned.state_dict()
    for name, mask in masks.items():  # recovery_steps 0: the fine-tune with its blocks zeroed, nothing else
        state[name].mul_(mask.dense())
    assert table.loc["score", "accuracy"] == pytest.approx(_dev_accuracy(fine_tuned, tokenizer, glue_dir))


def test_a_table_written_with_the_old_method_name_matches_the_score_points(tmp_path):
    from analysis.accuracy import read_accuracy_table

    path = tmp_path / "acc.csv"
    path.write_text("block,granularity,target_sparsity,method,accuracy\n16x16,block,0.5,magnitude,0.7\n"
                    "dense,none,0.0,dense,0.8\n")  # fmt: skip
    assert list(read_accuracy_table(path)["method"]) == ["score", "dense"]
    path.write_text("block,granularity,target_sparsity,method,accuracy\n16x16,block,0.5,magic,0.7\n")
    with pytest.raises(ValueError, match=r"acc.csv: column 'method': method: unknown value 'magic'"):
        read_accuracy_table(path)
