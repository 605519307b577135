"""Component area, leakage and SRAM access energy from published figures, at any node of :mod:`hwsim.tech`.

Logic (Aladdin, Shao et al. ISCA 2014, 40 nm synthesis, as tabulated in Accelergy's ``hwcomponents-library``
``aladdin.py``):

=====================  ============  ================  ==================================
component              area (µm²)    leakage (µW)      width rule
=====================  ============  ================  ==================================
32x32-bit multiplier   6350          80                area and leakage x (a x b) / 32²
32-bit adder           278           2.4               x bits / 32
register               5.98 per bit  0                 x bits
32-bit counter         495.5         0.32              x bits / 32
32-bit comparator      71            0.025             x bits / 32
=====================  ============  ================  ==================================

These are cell areas: no placement density, clock tree or wiring (see the validation table in the docs for
what that misses on TPUv1). Leakage of logic without an Aladdin figure (registers, SRAM) is charged at the
multiplier+adder density, 82.4 µW / 6628 µm² = 12.4 mW/mm² at 40 nm -- an assumption, stated in the docs.

SRAM (CACTI through Accelergy's Eyeriss-like exercise, 40 nm, 64-bit words, 4 KiB banks):
8 KiB -> 60,966 µm², 100 KiB -> 774,388 µm². The power law through them,
``area = SRAM_AREA_UM2_AT_8KIB x (bytes / 8 KiB) ** SRAM_AREA_EXPONENT``, is 7.44 µm²/B at 8 KiB and grows
almost linearly (exponent 1.006); it predicts TPUv1's 24 MiB Unified Buffer within a few % (docs).

SRAM access energy (Horowitz, ISSCC 2014, 45 nm, 0.9 V): 10 / 20 / 100 pJ per 64-bit access at 8 KiB /
32 KiB / 1 MiB. Least-squares power law in log-log: ``10.16 pJ x (bytes / 8 KiB) ** 0.4726`` (within 2.2 % of
each point, monotone in size, no clamp at the ends).

>>> round(sram_area_um2(8192, 40)), round(sram_area_um2(102400, 40))
(60966, 774388)
>>> round(sram_pj_per_64bit(1 << 20, 45, 0.9), 1)
100.6
"""

from __future__ import annotations

import math

from hwsim.tech import area_scale, energy_scale

__all__ = [
    "HORWITZ_NODE_NM",
    "HORWITZ_VDD_V",
    "LOGIC_LEAKAGE_MW_PER_MM2",
    "REF_NODE_NM",
    "adder_area_um2",
    "comparator_area_um2",
    "counter_area_um2",
    "leakage_mw",
    "multiplier_area_um2",
    "register_area_um2",
    "sram_area_um2",
    "sram_pj_per_64bit",
]  # fmt: skip

REF_NODE_NM = 40  # node of the Aladdin and CACTI figures below
MULT32_AREA_UM2 = 6350.0  # 32x32-bit integer multiplier (Aladdin, 40 nm)
MULT32_LEAK_UW = 80.0
ADD32_AREA_UM2 = 278.0  # 32-bit adder (Aladdin, 40 nm)
ADD32_LEAK_UW = 2.4
REGISTER_AREA_UM2_PER_BIT = 5.98  # flip-flop (Aladdin, 40 nm)
COUNTER32_AREA_UM2 = 495.5  # 32-bit counter (Aladdin, 40 nm)
COMPARATOR32_AREA_UM2 = 71.0  # 32-bit comparator (Aladdin, 40 nm)
# leakage density of logic at 40 nm: the Aladdin multiplier + adder, 82.4 µW over 6628 µm² (mW/mm²)
LOGIC_LEAKAGE_MW_PER_MM2 = (MULT32_LEAK_UW + ADD32_LEAK_UW) * 1e-3 / ((MULT32_AREA_UM2 + ADD32_AREA_UM2) * 1e-6)

SRAM_AREA_POINTS = ((8192, 60965.6), (102400, 774388.0))  # (bytes, µm²) CACTI via Accelergy, 40 nm
SRAM_AREA_EXPONENT = math.log(SRAM_AREA_POINTS[1][1] / SRAM_AREA_POINTS[0][1]) / math.log(
    SRAM_AREA_POINTS[1][0] / SRAM_AREA_POINTS[0][0]
)
HORWITZ_NODE_NM, HORWITZ_VDD_V = 45, 0.9  # node and supply of Horowitz's ISSCC 2014 energy figures
HORWITZ_SRAM_PJ_PER_64BIT = ((8192, 10.0), (32768, 20.0), (1 << 20, 100.0))  # (bytes, pJ per 64-bit access)


def _power_law_fit(points) -> tuple[float, float]:
    """Least-squares ``y = a x^b`` in log-log; returns ``(a, b)``."""
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return math.exp(mean_y - slope * mean_x), slope


_SRAM_PJ_FIT = _power_law_fit(HORWITZ_SRAM_PJ_PER_64BIT)


def multiplier_area_um2(a_bits: int, b_bits: int, node_nm: float) -> float:
    return MULT32_AREA_UM2 * a_bits * b_bits / 32**2 * area_scale(REF_NODE_NM, node_nm)


def adder_area_um2(bits: int, node_nm: float) -> float:
    return ADD32_AREA_UM2 * bits / 32 * area_scale(REF_NODE_NM, node_nm)


def register_area_um2(bits: int, node_nm: float) -> float:
    return REGISTER_AREA_UM2_PER_BIT * bits * area_scale(REF_NODE_NM, node_nm)


def counter_area_um2(bits: int, node_nm: float) -> float:
    return COUNTER32_AREA_UM2 * bits / 32 * area_scale(REF_NODE_NM, node_nm)


def comparator_area_um2(bits: int, node_nm: float) -> float:
    return COMPARATOR32_AREA_UM2 * bits / 32 * area_scale(REF_NODE_NM, node_nm)


def sram_area_um2(size_bytes: float, node_nm: float) -> float:
    """Area of an SRAM of ``size_bytes`` (CACTI power law at 40 nm, scaled to ``node_nm``)."""
    (size0, area0), _ = SRAM_AREA_POINTS
    return area0 * (size_bytes / size0) ** SRAM_AREA_EXPONENT * area_scale(REF_NODE_NM, node_nm)


def sram_pj_per_64bit(size_bytes: float, node_nm: float, vdd_v: float) -> float:
    """Energy of one 64-bit access to an SRAM of ``size_bytes`` (Horowitz fit, scaled to the node/supply)."""
    scale, exponent = _SRAM_PJ_FIT
    return scale * size_bytes**exponent * energy_scale(HORWITZ_NODE_NM, node_nm, HORWITZ_VDD_V, vdd_v)


def leakage_mw(area_um2_at_node: float, node_nm: float) -> float:
    """Leakage of ``area_um2_at_node`` of logic or SRAM at ``node_nm``: the 40 nm density applied to the same
    circuit's 40 nm area, scaled by the node's energy factor at a fixed supply (Accelergy's plug-ins scale
    leakage with the node's energy factor and not with the supply)."""
    area_40_mm2 = area_um2_at_node / area_scale(REF_NODE_NM, node_nm) * 1e-6
    return LOGIC_LEAKAGE_MW_PER_MM2 * area_40_mm2 * energy_scale(REF_NODE_NM, node_nm, HORWITZ_VDD_V, HORWITZ_VDD_V)
