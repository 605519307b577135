"""CI smoke test of the paper-figure pipeline on a tiny random BERT (python -m paper_figs.reproduce --quick)."""

import json

import pandas as pd

from paper_figs.reproduce import main


def test_quick_reproduction_writes_consistent_outputs(tmp_path):
    assert main(["--quick", "--out", str(tmp_path), "--dense-seeds", "2"]) == 0
    results = pd.read_csv(tmp_path / "results.csv")
    # 2 dense seeds + 2 blocks x 2 rates (reweighted) + 2 methods x 2 rates, each on 2 accelerators
    assert len(results) == (2 + 4 + 4) * 2
    assert results["error"].isna().all()
    assert set(results["config"]) == {"asic-32x32-int8", "fpga-zcu102"}
    pruned = results[results["method"] != "dense"]
    assert (abs(pruned["compression_rate"] - 1 / (1 - pruned["target_sparsity"])) < 0.1).all()
    summary = json.loads((tmp_path / "summary.json").read_text())
    dense = results[results["method"] == "dense"].drop_duplicates("cache_key")["accuracy"]
    assert abs(summary["headline"]["dense_accuracy_mean"] - dense.mean()) < 1e-12
    assert summary["git_commit"] and summary["wall_s"] > 0
    table = (tmp_path / "results.md").read_text()
    reweighted = pruned[(pruned["method"] == "reweighted") & (pruned["config"] == "asic-32x32-int8")]
    for value in reweighted["accuracy"]:
        assert f"{value:.4f}" in table
    for stem in ("fig_accuracy_vs_compression", "fig_methods", "fig_pareto_cycles", "fig_pareto_energy"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
