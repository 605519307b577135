"""What a design costs: area by component, static power and per-action energies at the design's node and supply.

Everything here follows from the config's sizes (array, operand widths, buffers, vector lanes), its
``technology`` (node, supply) and the cited figures of :mod:`hwsim.area` and :mod:`hwsim.tech`, so a sweep
that grows the array or a buffer also grows its area, its leakage and its SRAM access energy.

Area components (mm²): ``mac`` (a ``weight_bits x act_bits`` multiplier and an ``acc_bits`` adder per PE),
``pe_registers`` (per PE: the stationary operand -- twice with fold overlap, whose shadow register holds the
next tile -- plus the two operands passing through and one product register per multiplier stage; plus
``acc_stages`` accumulator registers per array column), ``weight_buffer`` / ``input_buffer`` /
``output_buffer`` (SRAM fit), ``index_decoder`` (a 32-bit row pointer counter, a comparator and two
metadata registers, with ``skip_zero_blocks``), ``vector_unit`` (per lane a 32-bit multiplier, adder and four
32-bit registers) and ``dram_phy`` (``dram.phy_area_mm2``, a fixed term not scaled by node). Logic components
are cell areas times ``technology.logic_area_factor`` (default 1: placement, clock tree and wiring not counted).

Static power, unless ``energy.static_power_mw`` fixes it: leakage density x every component's area but the
PHY (:func:`hwsim.area.leakage_mw`). Dynamic energies: the table's figures x
``energy_scale(energy.node_nm -> technology.node_nm, energy.vdd_v -> supply)``; DRAM energy is the memory
device's and is not scaled. SRAM energy per access: the table's ``sram_pj_per_64bit`` when given, else the
Horowitz fit at the design's node and supply (monotone in size).

FPGA configs have no ASIC area: ``area_mm2`` is ``None`` and :attr:`DesignCost.fpga_resources` counts DSPs,
LUTs, flip-flops and BRAM36 blocks against the device budget.

>>> from hwsim import load_config
>>> cost = load_config("asic-32x32-int8").cost
>>> sorted(cost.area_breakdown_mm2)[:3], cost.area_mm2 > 0, cost.static_power_mw > 0
(['dram_phy', 'index_decoder', 'input_buffer'], True, True)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwsim import area
from hwsim.tech import energy_scale, supply_at

if TYPE_CHECKING:
    from hwsim.config import AcceleratorConfig

__all__ = ["AREA_COMPONENTS", "BRAM36_BYTES", "URAM_BYTES", "DesignCost", "describe_cost", "design_cost",
           "fpga_resources", "pinned_dependents", "supply_v"]

AREA_COMPONENTS = ("mac", "pe_registers", "weight_buffer", "input_buffer", "output_buffer", "index_decoder",
                   "vector_unit", "dram_phy")  # fmt: skip
_LOGIC = ("mac", "pe_registers", "index_decoder", "vector_unit")  # what technology.logic_area_factor scales
VECTOR_LANE_BITS = 32  # vector-unit datapath width (bits): softmax/GELU/LayerNorm run on 32-bit values
VECTOR_LANE_REGISTERS = 4  # operand, result and two pipeline registers per lane
INDEX_COUNTER_BITS = 32  # the decoder's row-pointer counter and comparator width (bits)
FF_PER_BIT = 1  # FPGA flip-flops per register bit
BRAM36_BYTES = 4608  # one Xilinx BRAM36 block: 36 Kib = 4.5 KiB (UG573)
URAM_BYTES = 36864  # one UltraRAM block: 288 Kib = 36 KiB (UG573)


@dataclass(frozen=True)
class DesignCost:
    """Derived cost figures of one config (units in the names; ``None`` where they do not apply)."""

    node_nm: float
    vdd_v: float
    area_breakdown_mm2: dict[str, float] | None  # ASIC only
    static_power_mw: float
    static_power_derived: bool  # False: the config file fixes it
    mac_pj: float
    gated_mac_pj: float
    register_pj_per_mac: float
    vector_pj_per_element: float
    dram_pj_per_byte: float
    sram_pj_per_byte: dict[str, float]  # per buffer: weight, input, output
    fpga_resources: dict[str, int] | None  # FPGA only: dsp, lut, ff, bram36 used

    @property
    def area_mm2(self) -> float | None:
        return sum(self.area_breakdown_mm2.values()) if self.area_breakdown_mm2 is not None else None


def supply_v(config: AcceleratorConfig) -> float:
    """The design's supply: ``technology.vf_curve_mhz_v`` at the clock, else ``technology.vdd_v``, else the
    energy table's own supply (no voltage scaling)."""
    tech = config.technology
    if tech.vf_curve_mhz_v:
        return supply_at(config.clock_mhz, tech.vf_curve_mhz_v)
    return tech.vdd_v if tech.vdd_v is not None else config.energy.vdd_v


def _pe_register_bits(config: AcceleratorConfig) -> int:
    """Register bits of one PE: the stationary operand (twice with fold overlap), the two passing operands and
    one product register per multiplier pipeline stage."""
    array, micro = config.pe_array, config.microarch
    stationary, passing = {
        "ws": (array.weight_bits, array.act_bits + array.acc_bits),
        "is": (array.act_bits, array.weight_bits + array.acc_bits),
        "os": (array.acc_bits, array.weight_bits + array.act_bits),
    }[config.pe_array.dataflow.value]
    shadow = 2 if micro.fold_overlap.value != "none" else 1
    product_bits = array.weight_bits + array.act_bits
    return stationary * shadow + passing + micro.mult_stages * product_bits


def _area_breakdown_um2(config: AcceleratorConfig, node: float) -> dict[str, float]:
    array, buffers = config.pe_array, config.buffers
    mac_um2 = (area.multiplier_area_um2(array.weight_bits, array.act_bits, node)
               + area.adder_area_um2(array.acc_bits, node))  # fmt: skip
    registers_um2 = area.register_area_um2(_pe_register_bits(config), node)
    edge_registers = config.microarch.acc_stages * array.cols * array.acc_bits
    decoder = 0.0
    if config.sparse.skip_zero_blocks:
        decoder = (area.counter_area_um2(INDEX_COUNTER_BITS, node) + area.comparator_area_um2(INDEX_COUNTER_BITS, node)
                   + area.register_area_um2(2 * config.sparse.metadata_bits_per_block, node))  # fmt: skip
    lane = (area.multiplier_area_um2(VECTOR_LANE_BITS, VECTOR_LANE_BITS, node)
            + area.adder_area_um2(VECTOR_LANE_BITS, node)
            + area.register_area_um2(VECTOR_LANE_REGISTERS * VECTOR_LANE_BITS, node))  # fmt: skip
    return {
        "mac": mac_um2 * config.n_pes,
        "pe_registers": registers_um2 * config.n_pes + area.register_area_um2(edge_registers, node),
        "weight_buffer": area.sram_area_um2(buffers.weight_bytes, node),
        "input_buffer": area.sram_area_um2(buffers.input_bytes, node),
        "output_buffer": area.sram_area_um2(buffers.output_bytes, node),
        "index_decoder": decoder,
        "vector_unit": lane * config.vector_lanes,
        "dram_phy": config.dram.phy_area_mm2 * 1e6,
    }


def _sram_pj_per_byte(config: AcceleratorConfig, size_bytes: int, node: float, vdd: float, scale: float) -> float:
    table = config.energy.sram_pj_per_64bit
    if not table:
        return area.sram_pj_per_64bit(size_bytes, node, vdd) / 8
    points = sorted(table.items())  # the file's own table: log-linear between its points, clamped at its ends
    if size_bytes <= points[0][0]:
        return points[0][1] * scale / 8
    for (s0, e0), (s1, e1) in itertools.pairwise(points):
        if size_bytes <= s1:
            t = (math.log(size_bytes) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return (e0 + t * (e1 - e0)) * scale / 8
    return points[-1][1] * scale / 8


def fpga_resources(config: AcceleratorConfig) -> dict[str, int]:
    """DSPs, LUTs, flip-flops and BRAM36 blocks the array and buffers use (the budget check's formulas)."""
    fpga, buffers = config.fpga, config.buffers
    on_chip = buffers.weight_bytes + buffers.input_bytes + buffers.output_bytes
    edge_bits = config.microarch.acc_stages * config.pe_array.cols * config.pe_array.acc_bits
    return {
        "dsp": math.ceil(config.n_pes * fpga.dsps_per_mac),
        "lut": config.n_pes * fpga.luts_per_pe,
        "ff": (config.n_pes * _pe_register_bits(config) + edge_bits) * FF_PER_BIT,
        "bram36": math.ceil(on_chip / BRAM36_BYTES),  # URAM, where the device has it, takes the rest
    }


# figures a file may fix -> the fields whose change would move the derived value
_DEPENDS_ON = {
    "energy.static_power_mw": ("pe_array.", "buffers.", "microarch.", "sparse.", "technology.node_nm",
                               "vector_unit.lanes", "energy.node_nm"),
    "vector_unit.lanes": ("pe_array.cols",),
}


def pinned_dependents(config: AcceleratorConfig, varied: list[str]) -> list[str]:
    """Warnings for a sweep that varies the fields ``varied`` (dotted paths) of ``config`` while the file fixes a
    figure derived from them (static power from the area, vector lanes from the columns): that figure stays
    what the file says at every point. An FPGA's static power is the device's, so it is not reported.

    >>> from hwsim.config import derive_config
    >>> pinned = derive_config("asic-32x32-int8", {"energy.static_power_mw": 30.0})
    >>> pinned_dependents(pinned, ["pe_array.rows"])[0][:60]
    'energy.static_power_mw is fixed at 30 by asic-32x32-int8[ene'
    """
    fixed = {"energy.static_power_mw": config.energy.static_power_mw if config.kind == "asic" else None,
             "vector_unit.lanes": config.vector_unit.lanes}  # fmt: skip
    notes = []
    for figure, prefixes in _DEPENDS_ON.items():
        moving = [path for path in varied if path.startswith(prefixes)]
        if fixed[figure] is not None and moving:
            notes.append(f"{figure} is fixed at {fixed[figure]:g} by {config.name} while the sweep varies "
                         f"{', '.join(moving)}: it stays {fixed[figure]:g} at every point (leave it out of the file "
                         "to derive it from the design)")  # fmt: skip
    return notes


def describe_cost(config: AcceleratorConfig) -> str:
    """One line of what ``config`` costs, for the CLI: node and supply, area by component (or FPGA resources
    against the device), static power and whether the file fixes it."""
    cost = config.cost
    if cost.area_breakdown_mm2 is not None:
        parts = ", ".join(f"{k} {v:.3g}" for k, v in cost.area_breakdown_mm2.items() if v > 0)
        size = f"area {cost.area_mm2:.4g} mm² ({parts})"
    else:
        budget = config.fpga.model_dump()
        used = cost.fpga_resources.items()
        size = "resources " + ", ".join(f"{k.upper()} {v:,}" + (f" of {budget[k]:,}" if budget.get(k) else "")
                                        for k, v in used)  # fmt: skip
    origin = "derived from the area" if cost.static_power_derived else "fixed by the config"
    return (f"{cost.node_nm:g} nm, {cost.vdd_v:.2f} V; {size}; static power {cost.static_power_mw:.4g} mW "
            f"({origin}); {config.vector_lanes} vector lanes")


def design_cost(config: AcceleratorConfig) -> DesignCost:
    """The derived cost figures of ``config`` (use ``config.cost``, which computes this once per config)."""
    node = config.technology.node_nm if config.technology.node_nm is not None else config.energy.node_nm
    vdd = supply_v(config)
    table = config.energy
    scale = energy_scale(table.node_nm, node, table.vdd_v, vdd)
    cells_um2 = _area_breakdown_um2(config, node)
    if table.static_power_mw is not None:
        static_mw = table.static_power_mw
    else:  # leakage is the cells', not the wiring's
        static_mw = area.leakage_mw(sum(v for k, v in cells_um2.items() if k != "dram_phy"), node)
    factor = config.technology.logic_area_factor
    breakdown_um2 = {k: v * factor if k in _LOGIC else v for k, v in cells_um2.items()}
    buffers = config.buffers
    sram = {name: _sram_pj_per_byte(config, size, node, vdd, scale)
            for name, size in (("weight", buffers.weight_bytes), ("input", buffers.input_bytes),
                               ("output", buffers.output_bytes))}  # fmt: skip
    is_fpga = config.kind == "fpga"
    return DesignCost(
        node_nm=node, vdd_v=vdd,
        area_breakdown_mm2=None if is_fpga else {k: v * 1e-6 for k, v in breakdown_um2.items()},
        static_power_mw=static_mw, static_power_derived=table.static_power_mw is None,
        mac_pj=table.mac_pj * scale, gated_mac_pj=table.gated_mac_pj * scale,
        register_pj_per_mac=table.register_pj_per_mac * scale,
        vector_pj_per_element=table.vector_pj_per_element * scale, dram_pj_per_byte=table.dram_pj_per_64bit / 8,
        sram_pj_per_byte=sram, fpga_resources=fpga_resources(config) if is_fpga else None,
    )  # fmt: skip
