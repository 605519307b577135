"""Simulator speed: full BERT-base (and scaling sweeps) through the fast path, memory model included.

    python -m benchmarks.sim_speed [--repeats 3] [--out benchmarks/out/sim_speed.json]
                                   [--scalesim-python /path/to/venv/bin/python]

Prints a table and writes JSON. Wall times are medians of ``--repeats`` runs on this machine; compare
ratios from the same run, not absolute numbers across machines. With ``--scalesim-python`` (a separate
venv holding ``scalesim==3.0.0`` and ``numpy<2.4``) it also times SCALE-Sim on a dense GEMM small enough
for it and reports both cycle counts and the speed ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from transformers import BertConfig

from hwsim import Gemm, build_workload, load_config, simulate, simulate_gemm
from hwsim.config import derive_config
from hwsim.scalesim import scalesim_cycles, write_scalesim_config
from hwsim.simulate import clear_timing_cache
from pruning.blocks import BlockSpec, Granularity
from pruning.masks import BlockMask
from pruning.selection import select_layer
from pruning.targets import LAYOUTS

BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}


def random_block_masks(hf, sparsity: float, block: int = 32, seed: int = 0) -> dict[str, BlockMask]:
    """Masks at ``sparsity`` from random block scores (the simulator only sees which blocks survive)."""
    if sparsity == 0:
        return {}
    rng = np.random.default_rng(seed)
    layout = LAYOUTS["bert"]
    h, f = hf.hidden_size, hf.intermediate_size
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "attn_out": (h, h), "ffn_in": (f, h), "ffn_out": (h, f)}
    masks = {}
    import torch

    for layer in range(hf.num_hidden_layers):
        for role, (n, k) in shapes.items():
            grid = (n // block, k // block)
            scores = torch.tensor(rng.random(grid))
            keep = select_layer(scores, torch.full(grid, block * block), sparsity)
            name = f"encoder.{layout.layer_path.split('.')[-1]}.{layer}.{layout.role_paths[role]}.weight"
            masks[name] = BlockMask(keep, BlockSpec(block, block), Granularity.BLOCK, (n, k))
    return masks


def variant(name: str, **array) -> object:
    base = load_config(name)
    scale = max(1, array.get("rows", 32) * array.get("cols", 32) // 1024)
    overrides = {f"pe_array.{k}": v for k, v in array.items()}
    for key in ("weight_bytes", "input_bytes", "output_bytes"):
        overrides[f"buffers.{key}"] = max(getattr(base.buffers, key), 256 * 1024 * scale)
    return derive_config(base, overrides, name=f"{name}-{'-'.join(f'{k}{v}' for k, v in array.items())}")


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of ``fn``; the simulator's timing memo is cleared first, so every run is a cold one."""
    times, result = [], None
    for _ in range(repeats):
        clear_timing_cache()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_case(label: str, config, hf, sparsity: float, seq_len: int, repeats: int) -> dict:
    workload = build_workload(hf, random_block_masks(hf, sparsity), seq_len=seq_len)
    seconds, result = timed(lambda: simulate(config, workload), repeats)
    return {
        "case": label,
        "config": config.name,
        "layers": hf.num_hidden_layers,
        "seq_len": seq_len,
        "sparsity": sparsity,
        "folds": int(result.ops["folds"].sum()),
        "sim_cycles": int(result.totals["cycles"]),
        "wall_s": seconds,
        "sim_cycles_per_wall_s": result.totals["cycles"] / seconds,
    }


def scalesim_case(python: str, M: int, K: int, N: int, rows: int, cols: int, dataflow: str) -> dict:
    """Run SCALE-Sim 3.0.0 on one dense GEMM in its own interpreter; returns its cycles and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "topo.csv").write_text(f"Layer name, M, N, K,\ngemm, {M}, {N}, {K},\n")
        # a layout file is mandatory in 3.0.0 even with custom layouts off; its values are then unused
        (tmp / "layout.csv").write_text(
            "Layer name," + ",".join(["f"] * 20) + ",\ngemm," + ",".join(["1"] * 20) + ",\n"
        )
        write_scalesim_config(tmp / "arch.cfg", rows, cols, dataflow, run_name="bench")
        script = textwrap.dedent(f"""\
            import time, json
            from scalesim.scale_sim import scalesim
            s = scalesim(save_disk_space=True, verbose=False, config='{tmp}/arch.cfg', topology='{tmp}/topo.csv',
                         layout='{tmp}/layout.csv',
                         input_type_gemm=True)
            t = time.perf_counter(); s.run_scale(top_path='{tmp}/out'); dt = time.perf_counter() - t
            print(json.dumps({{"wall_s": dt}}))
            """)
        proc = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=3600)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        wall = json.loads(proc.stdout.strip().splitlines()[-1])["wall_s"]
        report = next((tmp / "out").rglob("COMPUTE_REPORT.csv"))
        # columns: LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, ...
        values = report.read_text().splitlines()[1].split(",")
        return {"scalesim_cycles": int(float(values[2])), "scalesim_wall_s": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/out/sim_speed.json")
    parser.add_argument("--scalesim-python", help="python of a venv with scalesim==3.0.0 and numpy<2.4")
    args = parser.parse_args(argv)

    rows = []
    base = BertConfig(**BERT_BASE)
    for dataflow in ("ws", "os"):
        config = variant("asic-32x32-int8", dataflow=dataflow)
        for sparsity in (0.0, 0.8):
            rows.append(run_case(f"bert-base 32x32 {dataflow}", config, base, sparsity, 128, args.repeats))
    ws32 = variant("asic-32x32-int8", dataflow="ws")
    for layers in (3, 6, 12):
        hf = BertConfig(**{**BERT_BASE, "num_hidden_layers": layers})
        rows.append(run_case("scale: layers", ws32, hf, 0.0, 128, args.repeats))
    for seq_len in (64, 256, 512):
        rows.append(run_case("scale: seq_len", ws32, base, 0.0, seq_len, args.repeats))
    for size in (16, 64, 128):
        rows.append(run_case("scale: array", variant("asic-32x32-int8", rows=size, cols=size), base, 0.0, 128,
                             args.repeats))  # fmt: skip
    for sparsity in (0.5, 0.95):
        rows.append(run_case("scale: sparsity", ws32, base, sparsity, 128, args.repeats))

    print(f"{'case':24s} {'config':34s} {'L':>3s} {'seq':>4s} {'sp':>5s} {'folds':>8s} {'cycles':>12s} {'wall_s':>8s}")
    for r in rows:
        print(f"{r['case']:24s} {r['config']:34s} {r['layers']:3d} {r['seq_len']:4d} {r['sparsity']:5.2f} "
              f"{r['folds']:8d} {r['sim_cycles']:12d} {r['wall_s']:8.4f}")  # fmt: skip

    comparison = []
    if args.scalesim_python:
        M, K, N = 128, 256, 256
        for dataflow in ("ws", "os", "is"):
            config = variant("asic-32x32-int8", rows=8, cols=8, dataflow=dataflow)
            op = Gemm("g", M=M, K=K, N=N)
            ours_s, (row, _) = timed(lambda config=config, op=op: simulate_gemm(op, config), 5)
            theirs = scalesim_case(args.scalesim_python, M, K, N, 8, 8, dataflow)
            comparison.append({"gemm": [M, K, N], "array": "8x8", "dataflow": dataflow, "ours_wall_s": ours_s,
                               "ours_compute_cycles": int(row["compute_cycles"]),
                               "ours_scalesim_compat_cycles": scalesim_cycles(op, config), **theirs,
                               "speedup": theirs["scalesim_wall_s"] / ours_s})  # fmt: skip
        for c in comparison:
            print(f"SCALE-Sim {c['dataflow']}: ours {c['ours_wall_s'] * 1e3:.2f} ms, SCALE-Sim "
                  f"{c['scalesim_wall_s']:.1f} s -> {c['speedup']:.0f}x; cycles ours(compute) "
                  f"{c['ours_compute_cycles']}, ours --compat scalesim {c['ours_scalesim_compat_cycles']}, "
                  f"SCALE-Sim {c['scalesim_cycles']}")  # fmt: skip

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cases": rows, "scalesim": comparison}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
