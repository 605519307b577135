"""Layer hardware cost: cycles, latency and energy of one pruned layer's GEMM on an accelerator.

Each candidate (layer, sparsity) is simulated as the GEMM ``bsp simulate`` runs for that layer
(``M = batch * seq_len`` tokens, ``K = in_features``, ``N = out_features``, the hardware block for index
costs) with the keep-mask the pruning would produce -- the pattern matters, not only the count: block rows
that keep different columns cost union-many cycles on a skipping array. numpy and hwsim only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hwsim.config import AcceleratorConfig, Dataflow, load_config
from hwsim.simulate import simulate_gemm
from hwsim.workload import Gemm

__all__ = ["layer_costs", "matched_block", "resolve_blocks"]


def layer_costs(keep_masks: Mapping[tuple[str, float], np.ndarray], block: tuple[int, int],
                config: AcceleratorConfig | str, tokens: int, weight_bits: int = 8,
                act_bits: int = 8) -> pd.DataFrame:  # fmt: skip
    """Rows (layer, sparsity, cycles, latency_s, energy_pj, area_delay_mm2_s, kept_weights) for every
    ``(layer, sparsity)`` key of ``keep_masks`` (dense bool keep-masks ``[out, in]``; an all-True mask is the
    dense layer). ``area_delay_mm2_s`` is the layer's latency x the design's area (NaN on an FPGA)."""
    config = load_config(config)
    area_mm2 = config.cost.area_mm2 if config.cost.area_mm2 is not None else float("nan")
    rows = []
    for (name, sparsity), mask in keep_masks.items():
        op = Gemm(name, M=tokens, K=mask.shape[1], N=mask.shape[0], mask=None if mask.all() else mask,
                  block=tuple(block), weight_bits=weight_bits, act_bits=act_bits)  # fmt: skip
        row, _ = simulate_gemm(op, config)
        energy = sum(v for k, v in row.items() if k.startswith("energy_") and k.endswith("_pj"))
        rows.append({"layer": name, "sparsity": float(sparsity), "cycles": int(row["cycles"]),
                     "latency_s": row["cycles"] / config.clock_hz, "energy_pj": float(energy),
                     "area_delay_mm2_s": row["cycles"] / config.clock_hz * area_mm2,
                     "kept_weights": int(mask.sum())})  # fmt: skip
    return pd.DataFrame(rows)


def matched_block(config: AcceleratorConfig | str, area: int = 1024) -> str:
    """The block shape of ``area`` weights whose zero blocks ``config``'s array skips without a union penalty.

    ``ws``/``os`` stream, per N-tile of ``pe_array.cols`` weight rows, the union of the reduction lines those
    rows keep (:mod:`hwsim.mapping`), so blocks ``cols`` rows high skip whole; ``is`` streams, per K-tile of
    ``pe_array.rows`` reduction lines, every weight row that keeps something in it, so blocks ``rows`` wide.

    >>> matched_block("fpga-zcu102"), matched_block("asic-32x32-int8"), matched_block("fpga-zcu102", 256)
    ('64x16', '32x32', '64x4')
    """
    config = load_config(config)
    if isinstance(area, bool) or not isinstance(area, int) or area <= 0:
        raise ValueError(f"matched block area: must be a positive integer (weights per block), got {area!r}")
    side = config.pe_array.rows if config.pe_array.dataflow is Dataflow.IS else config.pe_array.cols
    if area % side:
        raise ValueError(f"matched block area: {area} is not a multiple of {config.name}'s tile side {side} "
                         f"(pe_array.{'rows' if config.pe_array.dataflow is Dataflow.IS else 'cols'})")  # fmt: skip
    other = area // side
    return f"{other}x{side}" if config.pe_array.dataflow is Dataflow.IS else f"{side}x{other}"


def resolve_blocks(blocks, configs) -> list[str]:
    """Block names with ``matched`` / ``matched:AREA`` replaced by every config's :func:`matched_block` (order
    kept, duplicates dropped)."""
    resolved = []
    for block in blocks:
        text = str(block)
        if text == "matched" or text.startswith("matched:"):
            area = text.partition(":")[2]
            if area and not area.isdigit():
                raise ValueError(f"blocks: {text!r}: the area after 'matched:' must be a positive integer")
            resolved += [matched_block(c, int(area) if area else 1024) for c in configs]
        else:
            resolved.append(text)
    return list(dict.fromkeys(resolved))
