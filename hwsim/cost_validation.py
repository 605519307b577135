"""The cost model against published silicon: TPUv1 (28 nm) and Eyeriss (65 nm), modelled from their papers.

Each design is a config derived from a preset with the published array, buffers, clock and node; its
workload is what the published figure was measured on (a large dense GEMM for TPUv1 at full load, the five
AlexNet convolutions as GEMMs for Eyeriss -- 666 M MACs, as the Eyeriss paper counts them). Energy per MAC
and power are on-chip (the DRAM device's access energy is left out, as the chips' own power figures do).

>>> table = validation_table()
>>> list(table.columns)
['design', 'quantity', 'published', 'model', 'error', 'source']
"""

from __future__ import annotations

import pandas as pd

from hwsim.config import AcceleratorConfig, derive_config
from hwsim.simulate import simulate
from hwsim.workload import Gemm, Workload

__all__ = ["ALEXNET_CONV_GEMMS", "eyeriss_like", "tpu_v1_like", "validation_table"]

TPU_DIE_MM2 = 331.0  # Jouppi et al., ISCA 2017, Table 2 (die "<331 mm²")
TPU_SHARES = {"matrix unit": 0.24, "unified buffer": 0.29, "accumulators": 0.06}  # of the die, Fig. 2 floor plan
TPU_BUSY_W = 40.0  # per die, busy (Jouppi et al. Table 2, read from secondary sources)
EYERISS_DIE_MM2 = 16.0  # 4.0 x 4.0 mm die (Chen et al., JSSC 52(1) 2017, die photo)
EYERISS_POWER_MW, EYERISS_FPS = 278.0, 35.0  # AlexNet CONV layers, batch 4, 200 MHz (JSSC abstract)
ALEXNET_CONV_MACS = 666e6  # per image (ISSCC 2016 14.5)
# AlexNet CONV1-5 as GEMMs (M output pixels, K = kernel x kernel x input channels per group, N filters per
# group; the two-group layers repeat twice): 105 + 224 + 150 + 112 + 75 = 666 M MACs.
ALEXNET_CONV_GEMMS = (("conv1", 55 * 55, 11 * 11 * 3, 96, 1), ("conv2", 27 * 27, 5 * 5 * 48, 128, 2),
                      ("conv3", 13 * 13, 3 * 3 * 256, 384, 1), ("conv4", 13 * 13, 3 * 3 * 192, 192, 2),
                      ("conv5", 13 * 13, 3 * 3 * 192, 128, 2))  # fmt: skip


def tpu_v1_like() -> AcceleratorConfig:
    """256x256 int8 ws at 700 MHz, 28 nm; 4 x 64 KiB weight FIFO, 24 MiB Unified Buffer, 4 MiB accumulators."""
    return derive_config("asic-128x128-int8", {
        "pe_array.rows": 256, "pe_array.cols": 256, "buffers.weight_bytes": "256 KiB",
        "buffers.input_bytes": "24 MiB", "buffers.output_bytes": "4 MiB", "technology.node_nm": 28.0,
    }, name="tpu-v1-like")  # fmt: skip


def eyeriss_like() -> AcceleratorConfig:
    """12x14 16-bit PEs at 200 MHz and 1 V, 65 nm (os: the closest dataflow here to row stationary); the 108 KB
    global buffer as input buffer, the PEs' filter (448 B) and psum (48 B) scratchpads as weight and output
    buffers, single-buffered as Eyeriss's scratchpads are. MAC at 45 nm: a 16-bit multiply (Horowitz's
    32-bit 3.1 pJ x (16/32)²) + a 16-bit add (0.05 pJ)."""
    return derive_config("asic-16x16-int8", {
        "pe_array.rows": 12, "pe_array.cols": 14, "pe_array.weight_bits": 16, "pe_array.act_bits": 16,
        "pe_array.acc_bits": 16, "clock_mhz": 200.0, "buffers.input_bytes": 108_000,
        "buffers.weight_bytes": 448 * 168, "buffers.output_bytes": 48 * 168, "buffers.double_buffering": False,
        "technology.node_nm": 65.0,
        "technology.vdd_v": 1.0, "energy.mac_pj": 0.83, "energy.register_pj_per_mac": 0.83,
    }, name="eyeriss-like")  # fmt: skip


def _on_chip(totals: dict) -> float:
    return totals["energy_pj"] - totals["energy_dram_pj"]


def _row(design: str, quantity: str, published: float, model: float, source: str) -> dict:
    return {"design": design, "quantity": quantity, "published": published, "model": model,
            "error": model / published - 1, "source": source}  # fmt: skip


def validation_table() -> pd.DataFrame:
    """Published figure, model figure and relative error (model / published - 1) per design and quantity."""
    rows = []
    tpu = tpu_v1_like()
    area = tpu.cost.area_breakdown_mm2
    floor_plan = "Jouppi et al. ISCA 2017, Fig. 2 floor plan x 331 mm² die"
    rows.append(_row("TPUv1", "matrix unit area (mm²)", TPU_SHARES["matrix unit"] * TPU_DIE_MM2,
                     area["mac"] + area["pe_registers"], floor_plan))  # fmt: skip
    rows.append(_row("TPUv1", "unified buffer area (mm²)", TPU_SHARES["unified buffer"] * TPU_DIE_MM2,
                     area["input_buffer"], floor_plan))  # fmt: skip
    rows.append(_row("TPUv1", "accumulator area (mm²)", TPU_SHARES["accumulators"] * TPU_DIE_MM2,
                     area["output_buffer"], floor_plan))  # fmt: skip
    busy = simulate(tpu, Workload(ops=(Gemm("full-load", M=8192, K=4096, N=4096),))).totals
    rows.append(_row("TPUv1", "on-chip power at full load (W)", TPU_BUSY_W, _on_chip(busy) * 1e-12 / busy["latency_s"],
                     "Jouppi et al. Table 2, busy power per die (secondary sources)"))  # fmt: skip
    eyeriss = eyeriss_like()
    conv = simulate(eyeriss, Workload(ops=tuple(Gemm(name, M=m, K=k, N=n, weight_bits=16, act_bits=16, repeat=r)
                                                for name, m, k, n, r in ALEXNET_CONV_GEMMS))).totals  # fmt: skip
    published_pj = EYERISS_POWER_MW * 1e-3 / EYERISS_FPS / ALEXNET_CONV_MACS * 1e12
    rows.append(_row("Eyeriss", "energy per MAC, AlexNet CONV (pJ)", published_pj,
                     _on_chip(conv) / conv["macs_useful"], "Chen et al. JSSC 2017: 278 mW at 35 fps, 666 M MACs"))
    rows.append(_row("Eyeriss", "area (mm²)", EYERISS_DIE_MM2, eyeriss.cost.area_mm2,
                     "Chen et al. JSSC 2017, 4.0 x 4.0 mm die (pads and I/O included)"))  # fmt: skip
    return pd.DataFrame(rows)
