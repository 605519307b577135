"""hwsim's cycle model against the project's reference RTL and SCALE-Sim's closed form.

    python -m benchmarks.rtl_validation [--quick] [--out benchmarks/out/rtl_validation.json]

For every fold-overlap mode, dataflow and array shape, GEMMs (dense, partial edge tiles, 50 % block
sparse; the array always walks its block index, so "dense" means every 4x4 block kept and its index decoded)
run on the reference array (``rtl/``, Icarus Verilog through cocotb) and through hwsim with the
same config; the table shows the RTL's cycles, hwsim's compute cycles, SCALE-Sim's dense closed form and
whether the RTL's outputs equal numpy's bit for bit. Needs ``iverilog`` (``make install`` provides it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write_results
from hwsim.config import derive_config
from hwsim.scalesim import scalesim_cycles
from hwsim.simulate import simulate_gemm
from hwsim.workload import Gemm
from rtl.runner import iverilog_available, run_gemm

MODES = ("none", "weights", "full")
ARRAYS = {"ws": [(4, 4), (8, 8), (4, 8)], "os": [(4, 4), (8, 8), (8, 4)]}
GEMMS = [("dense", (16, 32, 16), 1.0), ("dense", (64, 64, 64), 1.0), ("partial tiles", (10, 13, 11), 1.0),
         ("50 % 4x4 blocks", (24, 48, 40), 0.5)]  # fmt: skip
MICRO = {"ws": {"mult_stages": 1, "acc_stages": 1}, "os": {"mult_stages": 1, "acc_stages": 1, "drain": "columns"}}
SEED = 0


def config_for(dataflow: str, rows: int, cols: int, mode: str):
    overrides = {"pe_array.rows": rows, "pe_array.cols": cols, "pe_array.dataflow": dataflow,
                 "buffers.weight_bytes": 1 << 20, "buffers.input_bytes": 1 << 20, "buffers.output_bytes": 1 << 20,
                 "dram.bw_bytes_per_cycle": 1e6, "microarch.fold_overlap": mode, "microarch.edge_skew": "full",
                 "microarch.preload_rows_per_cycle": 1,
                 **{f"microarch.{key}": value for key, value in MICRO[dataflow].items()}}  # fmt: skip
    return derive_config("asic-32x32-int8", overrides, name=f"{dataflow}-{rows}x{cols}-{mode}")


def gemm(label: str, shape, keep: float, rng) -> tuple[Gemm, np.ndarray, np.ndarray]:
    M, K, N = shape
    block = (4, 4)
    # the array always walks its block index, so a dense GEMM is one whose blocks are all kept (decode included)
    block_keep = rng.random((-(-N // 4), -(-K // 4))) < keep
    mask = np.kron(block_keep, np.ones(block, dtype=bool))[:N, :K].astype(bool)
    op = Gemm(label, M=M, K=K, N=N, mask=mask, block=block)
    return op, rng.integers(-128, 128, size=(M, K)), rng.integers(-128, 128, size=(N, K))


def run(quick: bool) -> list[dict]:
    rows = []
    gemms = GEMMS[:1] + GEMMS[2:3] if quick else GEMMS
    with tempfile.TemporaryDirectory() as tmp:
        for dataflow, arrays in ARRAYS.items():
            for rows_cols in arrays[:1] if quick else arrays:
                for mode in MODES:
                    config = config_for(dataflow, *rows_cols, mode)
                    for label, shape, keep in gemms:
                        rng = np.random.default_rng(SEED)
                        op, A, W = gemm(label, shape, keep, rng)
                        start = time.perf_counter()
                        rtl = run_gemm(config, op, A, W, Path(tmp) / f"{config.name}-{len(rows)}")
                        rtl_s = time.perf_counter() - start
                        hwsim, _ = simulate_gemm(op, config)
                        exact = bool(np.array_equal(rtl.y, A @ (W * op.mask).T))
                        rows.append({"dataflow": dataflow, "array": f"{rows_cols[0]}x{rows_cols[1]}", "overlap": mode,
                                     "gemm": label, "M": shape[0], "K": shape[1], "N": shape[2],
                                     "rtl_cycles": rtl.cycles, "hwsim_cycles": int(hwsim["compute_cycles"]),
                                     "scalesim_cycles": scalesim_cycles(op, config) if keep == 1 else None,
                                     "bit_exact": exact, "rtl_wall_s": round(rtl_s, 2)})  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| dataflow | array | overlap | GEMM (M,K,N) | RTL | hwsim | SCALE-Sim | outputs |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        scalesim = f"{r['scalesim_cycles']:,}" if r["scalesim_cycles"] is not None else "n/a (dense only)"
        lines.append(f"| {r['dataflow']} | {r['array']} | {r['overlap']} | {r['gemm']} {r['M']},{r['K']},{r['N']} | "
                     f"{r['rtl_cycles']:,} | {r['hwsim_cycles']:,} | {scalesim} | "
                     f"{'bit-exact' if r['bit_exact'] else 'WRONG'} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one array per dataflow and two GEMMs")
    parser.add_argument("--out", default="benchmarks/out/rtl_validation.json")
    args = parser.parse_args(argv)
    if not iverilog_available():
        print("rtl_validation: iverilog is not installed (make install provides it)", file=sys.stderr)
        return 2
    rows = run(args.quick)
    print(table(rows))
    matched = sum(r["rtl_cycles"] == r["hwsim_cycles"] and r["bit_exact"] for r in rows)
    print(f"\n{matched} of {len(rows)} cases: hwsim's cycles equal the RTL's and the outputs are bit-exact")
    write_results(args.out, {"rows": rows, "matched": matched})
    return 0 if matched == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
