"""Process-node scaling of area and energy (Stillmaker & Baas 2017) and the supply voltage of a clock.

Source: A. Stillmaker, B. Baas, "Scaling equations for the accurate prediction of CMOS device performance
from 180 nm to 7 nm", Integration 58 (2017) 74-81, doi:10.1016/j.vlsi.2017.02.002 -- the area factors
and per-node energy polynomials as the Accelergy library plug-in tabulates them (``scaling.py``).

- **Area** of a component at node ``n`` relative to 45 nm: :data:`AREA_VS_45NM`, interpolated log-log
  between tabulated nodes. ``area_scale(45, 16) == 0.19``.
- **Energy** of one action at node ``n`` and supply ``V``: ``a_n V^2 + b_n V + c_n`` (relative units;
  the ratio of two is the scaling factor). ``energy_scale(45, 7, 0.8, 0.8) == 0.094``. Between tabulated
  nodes the polynomial's value is interpolated log-log as well.
- **Leakage power** scales with the energy factor (the plug-in's rule for leakage), at the same supply.

>>> round(area_scale(45, 16), 3), round(energy_scale(45, 7, 0.8, 0.8), 3)
(0.19, 0.094)
"""

from __future__ import annotations

import bisect
import math

import numpy as np

__all__ = ["AREA_VS_45NM", "ENERGY_POLY", "MAX_NODE_NM", "MIN_NODE_NM", "TECH_NODES_NM", "area_scale",
           "energy_scale", "supply_at"]  # fmt: skip

TECH_NODES_NM = (130, 90, 65, 45, 32, 20, 16, 14, 10, 7)
# Area at each node relative to 45 nm (the 45 nm row of the paper's area-scaling table).
AREA_VS_45NM = (6.4, 2.8, 1.5, 1.0, 0.46, 0.21, 0.19, 0.17, 0.1, 0.059)
# Energy per action at each node as a V^2 + b V + c (V in volts; relative units).
ENERGY_POLY = (
    (7.171, -6.709, 2.904),
    (4.762, -4.781, 2.092),
    (3.755, -4.398, 1.975),
    (1.103, -0.362, 0.2767),
    (0.9559, -0.7823, 0.471),
    (0.373, -0.1582, 0.04104),
    (0.2958, -0.1241, 0.03024),
    (0.2363, -0.09675, 0.02239),
    (0.2068, -0.09311, 0.02375),
    (0.1776, -0.09097, 0.02447),
)
MIN_NODE_NM, MAX_NODE_NM = TECH_NODES_NM[-1], TECH_NODES_NM[0]


def _interpolate(values_at_nodes, node_nm: float) -> float:
    """Log-log interpolation of a positive per-node quantity between the tabulated nodes."""
    if not MIN_NODE_NM <= node_nm <= MAX_NODE_NM:
        raise ValueError(f"technology node {node_nm} nm outside the scaling table ({MIN_NODE_NM}-{MAX_NODE_NM} nm)")
    ascending = TECH_NODES_NM[::-1]
    values = list(values_at_nodes)[::-1]
    i = bisect.bisect_left(ascending, node_nm)
    if ascending[i] == node_nm:
        return values[i]
    lo, hi = ascending[i - 1], ascending[i]
    t = (math.log(node_nm) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return math.exp(math.log(values[i - 1]) + t * (math.log(values[i]) - math.log(values[i - 1])))


def area_scale(from_nm: float, to_nm: float) -> float:
    """Factor that takes an area at ``from_nm`` to ``to_nm``."""
    return _interpolate(AREA_VS_45NM, to_nm) / _interpolate(AREA_VS_45NM, from_nm)


def _energy_at(node_nm: float, vdd_v: float) -> float:
    return _interpolate([a * vdd_v**2 + b * vdd_v + c for a, b, c in ENERGY_POLY], node_nm)


def energy_scale(from_nm: float, to_nm: float, from_vdd_v: float, to_vdd_v: float) -> float:
    """Factor that takes an energy per action measured at ``from_nm``/``from_vdd_v`` to ``to_nm``/``to_vdd_v``."""
    return _energy_at(to_nm, to_vdd_v) / _energy_at(from_nm, from_vdd_v)


def supply_at(clock_mhz: float, vf_curve: dict[float, float]) -> float:
    """Supply voltage (V) at ``clock_mhz`` on a voltage-frequency curve ``{MHz: V}``: linear between points.

    >>> round(supply_at(750, {500: 0.7, 1000: 0.9}), 6)
    0.8
    """
    points = sorted(vf_curve.items())
    if not points[0][0] <= clock_mhz <= points[-1][0]:
        raise ValueError(f"clock_mhz {clock_mhz:g} outside the voltage-frequency curve "
                         f"({points[0][0]:g}-{points[-1][0]:g} MHz)")  # fmt: skip
    return float(np.interp(clock_mhz, [f for f, _ in points], [v for _, v in points]))
