"""The reference RTL (``rtl/``, Icarus Verilog through cocotb 2.1) against hwsim and numpy.

Every case checks two things: the outputs the array wrote equal ``A @ (W * mask).T`` bit for bit, and the
cycles it counted equal hwsim's compute cycles for the same config -- in every fold-overlap mode, with
pipeline stages, both os drain orders, partial edge tiles and all-zero block rows. ``make test`` installs
Icarus and sets ``BSP_REQUIRE_RTL=1``, so there these tests fail rather than skip when it is missing.
"""

import os

import numpy as np
import pytest
from conftest import tiny_classifier

from hwsim.config import derive_config
from hwsim.simulate import simulate_gemm
from hwsim.workload import Gemm
from rtl.runner import UnsupportedConfigError, iverilog_available, run_exported_layer, run_gemm

pytestmark = pytest.mark.skipif(
    not iverilog_available() and os.environ.get("BSP_REQUIRE_RTL") != "1",
    reason="Icarus Verilog (iverilog) is not installed; `make test` installs it",
)

AMPLE = {"buffers.weight_bytes": 1 << 20, "buffers.input_bytes": 1 << 20, "buffers.output_bytes": 1 << 20,
         "dram.bw_bytes_per_cycle": 1e6, "sparse.index_decode_cycles_per_block": 1}  # fmt: skip


def rtl_config(rows, cols, dataflow, **micro):
    micro = {"fold_overlap": "full", "mult_stages": 0, "acc_stages": 0, "drain": "rows", "drain_lines_per_cycle": 1,
             "edge_skew": "full", "preload_rows_per_cycle": 1, **micro}  # fmt: skip
    overrides = {"pe_array.rows": rows, "pe_array.cols": cols, "pe_array.dataflow": dataflow, **AMPLE,
                 **{f"microarch.{key}": value for key, value in micro.items()}}  # fmt: skip
    return derive_config("asic-32x32-int8", overrides, name=f"rtl-{rows}x{cols}-{dataflow}")


def block_sparse(rng, N, K, block, keep=0.6, empty_block_row=False):
    block_keep = rng.random((-(-N // block[0]), -(-K // block[1]))) < keep
    if empty_block_row:
        block_keep[0] = False  # a whole N-tile with nothing kept: skipped at no cost
    return np.kron(block_keep, np.ones(block, dtype=bool))[:N, :K].astype(bool)


def check(config, op, rng, tmp_path):
    A = rng.integers(-128, 128, size=(op.M, op.K))
    W = rng.integers(-128, 128, size=(op.N, op.K))
    run = run_gemm(config, op, A, W, tmp_path)
    mask = op.mask if op.mask is not None else 1
    np.testing.assert_array_equal(run.y, A @ (W * mask).T)
    row, _ = simulate_gemm(op, config)
    assert run.cycles == row["compute_cycles"]
    return run


@pytest.mark.parametrize("overlap", ["none", "weights", "full"])
@pytest.mark.parametrize(("dataflow", "micro"), [
    ("ws", {"mult_stages": 1, "acc_stages": 2}),
    ("os", {"mult_stages": 2, "acc_stages": 1, "drain": "columns"}),
    ("os", {"drain": "rows", "drain_lines_per_cycle": 2}),
])  # fmt: skip
def test_partial_edge_tiles_and_empty_block_rows_in_every_mode(dataflow, micro, overlap, tmp_path):
    rng = np.random.default_rng(7)
    config = rtl_config(4, 3, dataflow, fold_overlap=overlap, **micro)
    op = Gemm("g", M=7, K=13, N=11, mask=block_sparse(rng, 11, 13, (3, 2), empty_block_row=True), block=(3, 2))
    check(config, op, rng, tmp_path)


@pytest.mark.parametrize("seed", range(8))
def test_random_gemms(seed, tmp_path):
    rng = np.random.default_rng(100 + seed)
    dataflow = ("ws", "os")[seed % 2]
    micro = {"fold_overlap": ("none", "weights", "full")[seed % 3], "mult_stages": int(rng.integers(0, 3)),
             "acc_stages": int(rng.integers(0, 3)), "drain": str(rng.choice(["rows", "columns"])),
             "drain_lines_per_cycle": int(rng.integers(1, 3)), "fold_switch_cycles": int(rng.integers(0, 3)),
             "tile_overhead_cycles": int(rng.integers(0, 3)), "stream_bank_depth": int(rng.integers(1, 6)),
             "stream_bank_swap_cycles": int(rng.integers(0, 3))}  # fmt: skip
    if dataflow == "os":
        micro["drain_words_per_cycle"] = int(rng.integers(1, 8))
    config = rtl_config(int(rng.integers(2, 6)), int(rng.integers(2, 6)), dataflow, **micro)
    M, K, N = (int(x) for x in rng.integers(1, 16, size=3))
    block = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    check(config, Gemm("g", M=M, K=K, N=N, mask=block_sparse(rng, N, K, block, rng.uniform(0.2, 0.9)),
                       block=block), rng, tmp_path)  # fmt: skip


@pytest.mark.parametrize("overlap", ["none", "weights", "full"])
@pytest.mark.parametrize(("dataflow", "micro"), [
    ("ws", {"fold_switch_cycles": 1, "tile_overhead_cycles": 3, "stream_bank_depth": 3, "stream_bank_swap_cycles": 2}),
    ("ws", {"fold_switch_cycles": 4, "mult_stages": 1, "acc_stages": 1, "stream_bank_depth": 4,
            "stream_bank_swap_cycles": 1}),
    ("os", {"drain_words_per_cycle": 1, "tile_overhead_cycles": 2, "stream_bank_depth": 2,
            "stream_bank_swap_cycles": 3}),
    ("os", {"drain": "columns", "drain_lines_per_cycle": 2, "drain_words_per_cycle": 3, "fold_switch_cycles": 2,
            "mult_stages": 1}),
])  # fmt: skip
def test_controller_mechanisms_match_the_rtl(dataflow, micro, overlap, tmp_path):
    """Switch bubbles, tile overheads, bank-swap pauses and a narrow result port, each a parameter of the
    RTL: its count is hwsim's, and differs from the count without the mechanism."""
    rng = np.random.default_rng(11)
    config = rtl_config(3, 4, dataflow, fold_overlap=overlap, **micro)
    op = Gemm("g", M=9, K=14, N=10, mask=block_sparse(rng, 10, 14, (2, 2), empty_block_row=True), block=(2, 2))
    run = check(config, op, rng, tmp_path)
    plain = {key: value for key, value in micro.items() if key in ("mult_stages", "acc_stages", "drain",
                                                                  "drain_lines_per_cycle")}  # fmt: skip
    without, _ = simulate_gemm(op, rtl_config(3, 4, dataflow, fold_overlap=overlap, **plain))
    assert run.cycles > without["compute_cycles"]


def test_overlap_is_what_the_rtl_measures_not_a_coincidence(tmp_path):
    """The same GEMM on the full-overlap array: hwsim's serial model would be off by the fill/drain it
    overlaps; the RTL's count is hwsim's full-overlap count."""
    rng = np.random.default_rng(3)
    config = rtl_config(4, 4, "ws", fold_overlap="full", mult_stages=1)
    op = Gemm("g", M=12, K=16, N=8, mask=block_sparse(rng, 8, 16, (4, 4), keep=0.75), block=(4, 4))
    run = check(config, op, rng, tmp_path)
    serial, _ = simulate_gemm(op, derive_config(config, {"microarch.fold_overlap": "none"}))
    assert serial["compute_cycles"] > run.cycles


def export_tiny_model(tmp_path, config, granularity="block", **options):
    from transformers import BertTokenizer

    from hwsim.export import ExportOptions, export_model
    from pruning import BlockPruner, PruneSettings, save_pruned

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "good"]) + "\n")
    model = tiny_classifier("bert")
    settings = PruneSettings(block="8x8", granularity=granularity, method="score", target_sparsity=0.5)
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    pruner.prune()
    model_dir = save_pruned(tmp_path / "model", model, pruner.finalize(), settings,
                            tokenizer=BertTokenizer(str(vocab)))  # fmt: skip
    options = ExportOptions(progress=False, sample_text="the film was good", **options)
    return model_dir, export_model(model_dir, config, tmp_path / "export", options)


@pytest.mark.parametrize(("dataflow", "micro"), [("ws", {"fold_overlap": "full", "mult_stages": 1, "acc_stages": 1}),
                                                  ("os", {"fold_overlap": "full", "drain": "columns"})])  # fmt: skip
def test_an_exported_tiny_model_layer_runs_from_the_export_files(dataflow, micro, tmp_path):
    from pruning import load_pruned

    config = rtl_config(8, 8, dataflow, **micro)
    model_dir, export_dir = export_tiny_model(tmp_path, config)
    _, masks, _ = load_pruned(model_dir, attach=False)
    name = next(name for name in masks if "intermediate" in name)  # W[64, 32]: eight N-tiles of 8
    run, golden = run_exported_layer(export_dir, name, config, tmp_path / "run")
    np.testing.assert_array_equal(run.y, golden)
    mask = masks[name]
    op = Gemm(name, M=golden.shape[0], K=mask.weight_shape[1], N=mask.weight_shape[0], mask=mask.dense().numpy(),
              block=(mask.block.rows, mask.block.cols))  # fmt: skip
    assert run.cycles == simulate_gemm(op, config)[0]["compute_cycles"]


def run_script(command, cwd):
    """A generated script as a user runs it: a fresh process, no pytest in its environment."""
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}
    command = [sys.executable if part == "python" else part for part in command]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("granularity", ["block", "column"])
def test_the_generated_testbenches_pass_and_catch_a_wrong_output(granularity, tmp_path):
    """The export's own benches (cocotb and plain SV) against the reference RTL they ship with: every layer
    passes from the export directory alone; one flipped golden word makes both fail with exit 1."""
    import json

    config = rtl_config(8, 8, "os" if granularity == "block" else "ws", fold_overlap="full", mult_stages=1)
    _, export_dir = export_tiny_model(tmp_path, config, granularity, layers=r"layer\.0\.(intermediate|output)\.dense",
                                      testbench=("cocotb", "sv"))  # fmt: skip
    moved = tmp_path / "handed-over"  # nothing may point back into the tree it was written from
    export_dir.rename(moved)
    layers = [layer["dir"] for layer in json.loads((moved / "manifest.json").read_text())["layers"]]
    cocotb = run_script(["python", "tb/run_cocotb.py"], moved)
    sv = run_script(["bash", str(moved / "tb" / "run_sv.sh")], tmp_path)  # from anywhere
    for result in (cocotb, sv):
        assert result.returncode == 0, result.stdout + result.stderr
        assert [line.split()[1].rstrip(":") for line in result.stdout.splitlines() if line.startswith("PASS")] == layers
    y_file = moved / layers[0] / "y_int.hex"
    lines = y_file.read_text().splitlines()
    lines[-1] = f"{int(lines[-1], 16) ^ 1:08x}"
    y_file.write_text("\n".join(lines) + "\n")
    for result in (run_script(["python", "tb/run_cocotb.py", "--layer", layers[0]], moved),
                   run_script(["bash", "tb/run_sv.sh"], moved)):  # fmt: skip
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"FAIL {layers[0]}: " in result.stdout
        assert "1 mismatches" in result.stdout or f"FAIL {layers[0]}: 1 of" in result.stdout


def test_unsupported_terms_are_named(tmp_path):
    with pytest.raises(UnsupportedConfigError, match=r"microarch\.edge_skew"):
        run_gemm(rtl_config(2, 2, "ws", edge_skew="live"), Gemm("g", M=2, K=2, N=2), np.ones((2, 2)),
                 np.ones((2, 2)), tmp_path)  # fmt: skip
    with pytest.raises(UnsupportedConfigError, match=r"sparse\.dense_bypass"):
        run_gemm(derive_config(rtl_config(2, 2, "ws"), {"sparse.dense_bypass": True}), Gemm("g", M=2, K=2, N=2),
                 np.ones((2, 2)), np.ones((2, 2)), tmp_path)  # fmt: skip
    with pytest.raises(UnsupportedConfigError, match=r"microarch\.preload_order"):
        run_gemm(rtl_config(2, 2, "ws", preload_order="wavefront"), Gemm("g", M=2, K=2, N=2), np.ones((2, 2)),
                 np.ones((2, 2)), tmp_path)  # fmt: skip
    with pytest.raises(UnsupportedConfigError, match=r"pe_array\.dataflow"):
        run_gemm(rtl_config(2, 2, "is"), Gemm("g", M=2, K=2, N=2), np.ones((2, 2)), np.ones((2, 2)), tmp_path)


def test_the_rtl_passes_verilator_lint():
    import shutil
    import subprocess

    from rtl.runner import RTL_DIR

    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed")
    for source in ("bsp_ws_array.v", "bsp_os_array.v"):
        result = subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", str(RTL_DIR / source)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr
