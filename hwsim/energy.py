"""Energy per op from action counts x the config's per-action table (pJ).

Components: ``mac`` (useful MACs at ``mac_pj``; MACs on zero weights at ``gated_mac_pj`` when
``sparse.gate_zero_operands`` else at ``mac_pj``), ``register`` (per issued MAC), ``weight_buffer``,
``input_buffer``, ``output_buffer`` (bytes written from DRAM + bytes read into the array; partial sums
read and written at accumulator width), ``dram`` (bytes moved), ``vector``, ``leakage`` (static power x
latency: ``static_power_mw * 1e-3 W * cycles / clock_hz``, in pJ -- so a faster clock spends less static
energy on the same cycles).
Per-action figures come from ``config.cost`` (:mod:`hwsim.design_cost`): the table scaled to the design's node
and supply, SRAM per-byte costs at each buffer's size, and the static power (fixed by the file or derived from
the design's area).
"""

from __future__ import annotations

from hwsim.config import AcceleratorConfig
from hwsim.mapping import FoldPlan
from hwsim.memory import ChunkPlan

__all__ = ["ENERGY_COMPONENTS", "gemm_energy_pj", "static_energy_pj", "vector_energy_pj"]

PJ_PER_MW_S = 1e9  # 1 mW for 1 s = 1 mJ = 1e9 pJ


def static_energy_pj(cycles: int, config: AcceleratorConfig) -> float:
    """Leakage over ``cycles`` at the config's clock: ``static_power_mw x cycles / clock_hz`` (pJ)."""
    return config.cost.static_power_mw * PJ_PER_MW_S * cycles / config.clock_hz

ENERGY_COMPONENTS = ("mac", "register", "weight_buffer", "input_buffer", "output_buffer", "dram", "vector", "leakage")


def gemm_energy_pj(plan: FoldPlan, chunks: ChunkPlan, cycles: int, acc_bits: int, config: AcceleratorConfig):
    """Energy of one repeat of a GEMM by component (pJ)."""
    cost = config.cost
    issued = plan.issued_macs
    gated = issued - plan.useful_macs
    gated_pj = cost.gated_mac_pj if config.sparse.gate_zero_operands else cost.mac_pj
    psum_bytes = plan.psum_elements_total * acc_bits / 8 * 2  # read-modify-write
    sram = cost.sram_pj_per_byte
    return {
        "mac": plan.useful_macs * cost.mac_pj + gated * gated_pj,
        "register": issued * cost.register_pj_per_mac,
        "weight_buffer": (chunks.dram_weight_bytes + plan.weight_bytes_total) * sram["weight"],
        "input_buffer": (chunks.dram_input_bytes + plan.input_bytes_total) * sram["input"],
        "output_buffer": (psum_bytes + chunks.dram_output_bytes) * sram["output"],
        "dram": (chunks.dram_weight_bytes + chunks.dram_input_bytes + chunks.dram_output_bytes)
        * cost.dram_pj_per_byte,
        "vector": 0.0,
        "leakage": static_energy_pj(cycles, config),
    }


def vector_energy_pj(elements: int, cycles: int, config: AcceleratorConfig):
    energy = dict.fromkeys(ENERGY_COMPONENTS, 0.0)
    energy["vector"] = elements * config.cost.vector_pj_per_element
    energy["leakage"] = static_energy_pj(cycles, config)
    return energy
