"""Run the reference RTL on one GEMM with Icarus Verilog (cocotb 2.1 runner) and read back what it did.

``run_gemm(config, op, A, W, work_dir)`` writes the GEMM's array-native memories
(:mod:`hwsim.export.array_memories`, the files ``bsp export`` writes), builds the array for ``config``
(``bsp_ws_array.v`` or ``bsp_os_array.v``), runs the cocotb testbench and returns the outputs the array
wrote and the cycles it counted. The arrays implement: dataflow ws|os; microarch: any fold_overlap,
mult_stages, acc_stages, fold_switch_cycles, tile_overhead_cycles, stream_bank_depth/_swap_cycles; os drain
rows|columns with any drain_lines_per_cycle and drain_words_per_cycle; edge_skew full;
preload_rows_per_cycle 1, preload_order serial; sparse: skip_zero_blocks with index_decode_cycles_per_block 1;
M pieces: the whole M fits the buffers. Anything else raises :class:`UnsupportedConfigError` naming the field.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.config import AcceleratorConfig, Dataflow, EdgeSkew
from hwsim.export.array_memories import array_memories, write_array_memories
from hwsim.export.formats import read_hex_values
from hwsim.workload import Gemm
from pruning.spec import block_occupancy

__all__ = ["RTL_DIR", "RtlRun", "UnsupportedConfigError", "iverilog_available", "rtl_parameters", "run_exported_layer",
           "run_gemm", "run_memories"]

RTL_DIR = Path(__file__).resolve().parent
TOPS = {Dataflow.WS: "bsp_ws_array", Dataflow.OS: "bsp_os_array"}
OVERLAP_CODES = {"none": 0, "weights": 1, "full": 2}
MAX_STREAM_WORD_BITS = 4096  # widest weight-stream word the testbench memories are built for


class UnsupportedConfigError(ValueError):
    """The reference RTL does not implement this config (the message names the field)."""


@dataclass(frozen=True)
class RtlRun:
    y: np.ndarray  # [M, N] int64, as the array wrote it
    cycles: int  # from the cycle after start through the last output write
    work_dir: Path


def iverilog_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def rtl_parameters(config: AcceleratorConfig) -> dict[str, int]:
    """The Verilog parameters of ``config``'s array top (:data:`TOPS`) for its microarchitecture; raises
    :class:`UnsupportedConfigError` naming the fields the reference RTL does not implement."""
    micro, array = config.microarch, config.pe_array
    problems = []
    if array.dataflow not in TOPS:
        problems.append(f"pe_array.dataflow: {array.dataflow.value!r} (the RTL has ws and os)")
    if micro.edge_skew is not EdgeSkew.FULL:
        problems.append("microarch.edge_skew: 'live' (the RTL's skew chains are fixed-length: 'full')")
    if micro.preload_rows_per_cycle != 1:
        problems.append(f"microarch.preload_rows_per_cycle: {micro.preload_rows_per_cycle} (the RTL loads 1)")
    if micro.preload_order.value != "serial":
        problems.append(f"microarch.preload_order: {micro.preload_order.value!r} (the RTL preloads serially)")
    if not config.sparse.skip_zero_blocks or config.sparse.index_decode_cycles_per_block != 1:
        problems.append("sparse: the RTL skips zero blocks, decoding one index entry per cycle")
    if config.sparse.dense_bypass:
        problems.append("sparse.dense_bypass: true (the RTL always walks its block index)")
    if problems:
        raise UnsupportedConfigError(f"{config.name}: the reference RTL does not implement " + "; ".join(problems))
    parameters = {"R": array.rows, "C": array.cols, "OVERLAP": OVERLAP_CODES[micro.fold_overlap.value],
                  "MULT_STAGES": micro.mult_stages, "ACC_STAGES": micro.acc_stages, "AB": array.acc_bits,
                  "TILE_OVH": micro.tile_overhead_cycles, "SWITCH_CYCLES": micro.fold_switch_cycles,
                  "BANK_DEPTH": micro.stream_bank_depth or 0, "BANK_SWAP": micro.stream_bank_swap_cycles}  # fmt: skip
    if array.dataflow is Dataflow.OS:  # only the os array drains through a configurable port
        parameters.update(DRAIN_COLS=int(micro.drain.value == "columns"), DRAIN_W=micro.drain_lines_per_cycle,
                          DRAIN_WORDS=micro.drain_words_per_cycle or 0)  # fmt: skip
    return parameters


def run_gemm(config: AcceleratorConfig, op: Gemm, A: np.ndarray, W: np.ndarray, work_dir: str | Path,
             value_bits: int = 8, max_cycles: int = 100_000) -> RtlRun:  # fmt: skip
    """Run ``op`` (its mask selects the kept blocks of ``op.block``) with integer ``A[M, K]`` and
    ``W[N, K]`` on the reference array for ``config``; ``max_cycles`` bounds the simulation.

    The array always walks its block index: a GEMM without a mask runs with every block kept, decode
    included, which hwsim models as the same GEMM with an all-ones mask (a ``mask=None`` GEMM is dense
    hardware with no index)."""
    params = rtl_parameters(config)
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    mask = op.mask if op.mask is not None else np.ones((op.N, op.K), dtype=bool)
    block_keep = block_occupancy(mask, op.block) if op.mask is not None else np.ones(
        (-(-op.N // op.block[0]), -(-op.K // op.block[1])), dtype=bool)  # fmt: skip
    memories = array_memories(np.asarray(W, dtype=np.int64) * mask, block_keep, op.block, params["C"])
    files = write_array_memories(work_dir, memories, np.asarray(A, dtype=np.int64), value_bits)
    shape = {"M": op.M, "K": op.K, "N": op.N, "BR": op.block[0], "BC": op.block[1], "NNZ": len(memories.col_idx),
             "WLINES": memories.lines, "VB": value_bits}  # fmt: skip
    return run_memories(config, shape, files, work_dir, max_cycles)


def run_exported_layer(export_dir: str | Path, layer: str, config: AcceleratorConfig, work_dir: str | Path,
                       max_cycles: int = 1_000_000) -> tuple[RtlRun, np.ndarray]:  # fmt: skip
    """Run one layer (weight name or directory) of a ``bsp export`` directory on the array, reading the
    export's files in place; returns the run and the export's golden integer outputs ``y_int`` ``[M, N]``."""
    export_dir = Path(export_dir).resolve()
    manifest = json.loads((export_dir / "manifest.json").read_text())
    entry = next((item for item in manifest["layers"] if layer in (item["name"], item["dir"])), None)
    if entry is None or "array" not in entry:
        raise ValueError(f"layer: {layer!r} has no array-native memories in {export_dir}")
    array = entry["array"]
    if (array["rows"], array["cols"], array["dataflow"]) != (config.pe_array.rows, config.pe_array.cols,
                                                              config.pe_array.dataflow.value):  # fmt: skip
        raise ValueError(f"config: {config.name} is not the array the export was written for "
                         f"({array['rows']}x{array['cols']} {array['dataflow']})")  # fmt: skip
    files = {part: export_dir / name for part, name in array["files"].items()}
    run = run_memories(config, array["parameters"], files, work_dir, max_cycles)
    golden = read_hex_values(files["y_int"], manifest["acc_bits"]).reshape(run.y.shape)
    return run, golden


def run_memories(config: AcceleratorConfig, shape: dict[str, int], files: dict[str, Path], work_dir: str | Path,
                 max_cycles: int = 100_000) -> RtlRun:  # fmt: skip
    """Build and run the array for ``config`` on memory files ``{"row_ptr", "col_idx", "w_stream",
    "x_values"}`` of a GEMM of ``shape`` (``M, K, N, BR, BC, NNZ, WLINES, VB``)."""
    from rtl.tb.run_export import file_parameters, run_array

    params = rtl_parameters(config)
    if params["C"] * shape["VB"] > MAX_STREAM_WORD_BITS:
        raise UnsupportedConfigError(f"pe_array.cols: {params['C']} lanes of {shape['VB']} bits exceed a "
                                     f"{MAX_STREAM_WORD_BITS}-bit stream word")  # fmt: skip
    work_dir = Path(work_dir).resolve()
    y_file = work_dir / "y_rtl.hex"
    parameters = {**params, **shape, **file_parameters(files, y_file)}
    report = run_array(TOPS[config.pe_array.dataflow], parameters, RTL_DIR, work_dir, max_cycles)
    y = read_hex_values(y_file, config.pe_array.acc_bits).reshape(shape["M"], shape["N"])
    return RtlRun(y, int(report["cycles"]), work_dir)
