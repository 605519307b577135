"""Accelerator configuration schema (pydantic), YAML loading and the shipped presets.

YAML layout (Accelergy-like hierarchy, a unit in every field name)::

    version: 1
    name: asic-32x32-int8
    kind: asic                      # asic | fpga
    source: "where the numbers come from"
    clock_mhz: 1000
    pe_array: {rows: 32, cols: 32, dataflow: ws, weight_bits: 8, act_bits: 8, acc_bits: 32}
    buffers: {weight_bytes: 256 KiB, input_bytes: 256 KiB, output_bytes: 128 KiB, double_buffering: true}
    dram: {bw_bytes_per_cycle: 32}                   # or bw_gb_per_s
    sparse: {skip_zero_blocks: true, gate_zero_operands: true, index_decode_cycles_per_block: 1,
             metadata_bits_per_block: 16}
    microarch: {fold_overlap: full, mult_stages: 1, acc_stages: 1, drain: rows, drain_lines_per_cycle: 1,
                edge_skew: full, preload_rows_per_cycle: 1, preload_order: serial, fold_switch_cycles: 0,
                tile_overhead_cycles: 0, stream_bank_swap_cycles: 0}   # optional; see hwsim.timing
    vector_unit: {cycles_per_element: {softmax: 4, gelu: 2, layernorm: 3, add: 1}}   # lanes: default pe_array.cols
    technology: {node_nm: 45}                       # optional: node (and supply) the design is built in
    energy: {...}                                   # pJ per action, see EnergyTable
    fpga: {dsp: 2520, bram36: 912, lut: 274080, dsps_per_mac: 0.5}   # optional

Derived figures -- area, static power, SRAM energy per access, vector lanes, energies scaled to the node --
are :attr:`AcceleratorConfig.cost` (:mod:`hwsim.design_cost`); a file that gives ``energy.static_power_mw``,
``energy.sram_pj_per_64bit`` or ``vector_unit.lanes`` fixes that figure instead.

Sizes accept integers (bytes) or strings with a unit (``"256 KiB"``, ``"2 MiB"``, ``"64 KB"``).
Unknown keys are errors. :func:`load_config` collects *all* problems with their field paths.
"""

from __future__ import annotations

import copy
import enum
import functools
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, model_validator

from bsp_common.safe_yaml import YamlInputError, load_yaml_text, read_text_file, short_repr
from hwsim.design_cost import BRAM36_BYTES, URAM_BYTES, DesignCost, design_cost, fpga_resources
from hwsim.tech import MAX_NODE_NM, MIN_NODE_NM

__all__ = [
    "AcceleratorConfig",
    "ConfigError",
    "Dataflow",
    "DrainOrder",
    "EdgeSkew",
    "EnergyTable",
    "FoldOverlap",
    "Microarch",
    "PreloadOrder",
    "Technology",
    "derive_config",
    "list_presets",
    "load_config",
    "parse_size_bytes",
]

_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
MAX_BUFFER_BYTES = 1 << 40  # 1 TiB: far above any on-chip buffer; bigger numbers are typos or overflow bait
MAX_BW_BYTES_PER_CYCLE = 1e6  # 1 MB per cycle: far above any DRAM interface
MIN_BW = 1e-3  # bytes per cycle, or GB/s (1 MB/s): below it a layer's transfers would take years
MAX_ENERGY_PJ = 1e9  # 1 mJ per action: far above any per-action energy
MAX_CYCLES_PER_ELEMENT = 1e6
MAX_STATIC_POWER_MW = 1e6  # 1 kW: far above any single accelerator's static power
MAX_PIPELINE_STAGES = 64  # MAC pipelines are a handful of registers deep
MAX_CONTROLLER_CYCLES = 1_000_000  # per-fold/per-tile controller costs are tens of cycles; a million is a typo
MAX_FPGA_RESOURCE = 100_000_000  # DSPs / BRAMs / LUTs of the largest devices are < 1e7
MIN_CLOCK_MHZ = 1.0  # latency and static energy divide by the clock: below 1 MHz no accelerator runs
MIN_VDD_V, MAX_VDD_V = 0.3, 2.0  # supply voltages of CMOS logic from near-threshold to 180 nm nominal
MAX_PHY_AREA_MM2 = 1000.0  # a DRAM PHY and controller is a few mm²; 1000 is a typo

# Strict scalars: YAML ``true`` is not 1, ``1.7`` is not an integer, and NaN/inf are refused model-wide.
StrictInt = Annotated[int, Strict()]
StrictFloat = Annotated[float, Strict()]  # ints are accepted as floats; bools and strings are not


class ConfigError(ValueError):
    """Invalid accelerator config; ``errors`` lists ``(field path, message)`` pairs; ``value_paths`` the fields
    whose value is refused on its own (a type or a bound), as opposed to combinations of fields that do not fit
    together (an array over its DSP budget)."""

    def __init__(self, source: str, errors: list[tuple[str, str]], value_paths: frozenset[str] = frozenset()) -> None:
        self.errors = errors
        self.value_paths = value_paths
        lines = "\n".join(f"  {path}: {message}" for path, message in errors)
        super().__init__(f"invalid accelerator config {source}:\n{lines}")


def parse_size_bytes(value):
    """``256 KiB`` -> 262144. Integers are bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size in bytes or a string such as '256 KiB'")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) <= 64:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", value)
        unit = match.group(2).lower() if match else None
        if match and (unit in _SIZE_UNITS or unit == ""):
            return int(float(match.group(1)) * _SIZE_UNITS.get(unit, 1))
    raise ValueError("expected a size: an integer number of bytes or a string such as '256 KiB' "
                     "(units B, KB, MB, KiB, MiB, GiB)")


def _json_int_key(value):
    """Mapping keys that went through JSON come back as digit strings ("8192"); read those as integers."""
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) <= 20 else value


SizeBytes = Annotated[int, BeforeValidator(parse_size_bytes), Field(gt=0, le=MAX_BUFFER_BYTES)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Dataflow(enum.StrEnum):
    WS = "ws"  # weight stationary: array rows <- K, cols <- N, stream M
    OS = "os"  # output stationary: array rows <- M, cols <- N, stream K
    IS = "is"  # input stationary: array rows <- K, cols <- M, stream N


class PEArray(_Strict):
    rows: StrictInt = Field(gt=0, le=4096, description="PE rows")
    cols: StrictInt = Field(gt=0, le=4096, description="PE columns")
    dataflow: Dataflow = Field(description="ws: weights stay (rows <- K, cols <- N, stream M); os: outputs stay "
                                           "(rows <- M, cols <- N, stream K); is: inputs stay (rows <- K, cols <- M)")
    weight_bits: StrictInt = Field(default=8, gt=0, le=32, description="weight operand width (bits)")
    act_bits: StrictInt = Field(default=8, gt=0, le=32, description="activation operand width (bits)")
    acc_bits: StrictInt = Field(default=32, gt=0, le=64, description="accumulator / partial-sum width (bits)")


class Buffers(_Strict):
    """Total on-chip capacity per operand; with double buffering each is split into two equal slots."""

    weight_bytes: SizeBytes = Field(description="on-chip weight buffer (bytes, or a size such as '512 KiB')")
    input_bytes: SizeBytes = Field(description="on-chip input (activation) buffer (bytes)")
    output_bytes: SizeBytes = Field(description="on-chip output / partial-sum buffer (bytes)")
    double_buffering: bool = Field(default=True, description="two slots per buffer: the next tile loads while "
                                                             "the current one computes")

    @property
    def slots(self) -> int:
        """Tiles in flight per buffer: 2 with double buffering (one loading, one computing), else 1."""
        return 2 if self.double_buffering else 1


class Dram(_Strict):
    phy_area_mm2: StrictFloat = Field(default=0.0, ge=0, le=MAX_PHY_AREA_MM2,
                                      description="DRAM PHY and controller area (mm²), a fixed term of the area "
                                                  "that the node does not scale (I/O); 0: not counted")
    bw_bytes_per_cycle: StrictFloat | None = Field(default=None, ge=MIN_BW, le=MAX_BW_BYTES_PER_CYCLE,
                                                   description="DRAM bandwidth in the accelerator's clock domain "
                                                               "(bytes/cycle); give this or bw_gb_per_s")
    bw_gb_per_s: StrictFloat | None = Field(default=None, ge=MIN_BW, le=MAX_BW_BYTES_PER_CYCLE * 10,
                                            description="off-chip DRAM bandwidth (GB/s = 1e9 bytes/s)")

    @model_validator(mode="after")
    def _one_bandwidth(self):
        if (self.bw_bytes_per_cycle is None) == (self.bw_gb_per_s is None):
            raise ValueError("give exactly one of bw_bytes_per_cycle or bw_gb_per_s")
        return self


class Sparse(_Strict):
    skip_zero_blocks: bool = Field(default=True, description="compact pruned blocks away (index-driven); "
                                                             "false: the dense schedule")
    gate_zero_operands: bool = Field(default=True, description="zero weights that still flow through the array "
                                                               "cost no MAC energy")
    index_decode_cycles_per_block: StrictInt = Field(default=1, ge=0, le=1_000_000,
                                                     description="cycles to decode one kept block's index entry")
    metadata_bits_per_block: StrictInt = Field(default=16, ge=0, le=4096,
                                               description="index bits stored and fetched per kept block")
    dense_bypass: bool = Field(default=False, description="the controller runs a layer whose mask keeps every "
                                                          "block on the dense path: no index fetched or decoded")


class FoldOverlap(enum.StrEnum):
    """How the controller sequences consecutive folds (see :mod:`hwsim.timing` for the closed forms)."""

    NONE = "none"  # decode + preload, stream, fill/drain, and only then the next fold
    WEIGHTS = "weights"  # the next fold's decode + preload run during the current fold (shadow registers)
    FULL = "full"  # the next fold streams right behind the current one: fill/drain paid once per GEMM


class DrainOrder(enum.StrEnum):
    """Which lines of an ``os`` output tile leave the array per drain beat."""

    ROWS = "rows"  # accumulators shift down: one array row (c outputs) per beat
    COLUMNS = "columns"  # accumulators shift right: one array column (r outputs) per beat


class EdgeSkew(enum.StrEnum):
    """Skew and drain chains of a partial edge tile."""

    LIVE = "live"  # chains adapt to the live rows/columns (an idealised controller)
    FULL = "full"  # fixed-length chains: a partial tile costs the full array's skew, preload and drain


class PreloadOrder(enum.StrEnum):
    """How a ws/is array writes the stationary tile."""

    SERIAL = "serial"  # the whole tile is in before the stream starts
    WAVEFRONT = "wavefront"  # row i is written just ahead of the input wavefront: the stream starts with it


class Microarch(_Strict):
    """How a real array sequences folds; every field has a closed form in :mod:`hwsim.timing`.

    The defaults (no overlap, no pipeline registers, row drain, live edges, one preload row per cycle)
    describe the simplest controller, a plain FSM: load, stream, drain, then the next fold -- what SCALE-Sim
    style models assume, and the conservative choice when nothing is known about the array.
    """

    fold_overlap: FoldOverlap = Field(default=FoldOverlap.NONE, description="how consecutive folds overlap: none -- "
                                      "load, stream, drain, then the next fold (a plain FSM); weights -- the next "
                                      "tile loads into shadow registers while this one streams (two weight "
                                      "registers per PE); full -- the next fold streams right behind this one, "
                                      "fill and drain paid once per GEMM (shadow registers plus a switch that "
                                      "travels with the data, TPU/Gemmini style)")
    mult_stages: StrictInt = Field(default=0, ge=0, le=MAX_PIPELINE_STAGES,
                                   description="pipeline registers inside each PE's multiplier (cycles)")
    acc_stages: StrictInt = Field(default=0, ge=0, le=MAX_PIPELINE_STAGES,
                                  description="accumulator pipeline registers between the array edge and the "
                                              "output buffer (cycles)")  # fmt: skip
    drain: DrainOrder = Field(default=DrainOrder.ROWS, description="os only: which way accumulators shift out -- rows "
                                                                   "(one array row of C outputs per beat) or columns "
                                                                   "(one column of R outputs per beat)")
    drain_lines_per_cycle: StrictInt = Field(default=1, ge=1, le=4096, description="os: lines leaving the array per "
                                                                                   "cycle (result port width in lines)")
    edge_skew: EdgeSkew = Field(default=EdgeSkew.LIVE,
                                description="skew/drain chains of a partial edge tile: live -- they shrink to the live "
                                            "rows and columns (an idealised controller); full -- fixed-length chains, "
                                            "a partial tile pays the full array's skew (most RTL)")
    preload_rows_per_cycle: StrictInt = Field(default=1, ge=1, le=4096,
                                              description="ws/is: stationary-tile rows written per cycle")
    preload_order: PreloadOrder = Field(default=PreloadOrder.SERIAL,
                                        description="ws/is: serial -- the whole stationary tile is written before "
                                                    "its stream starts; wavefront -- row i is written through skew "
                                                    "registers just ahead of the input wavefront, so the stream "
                                                    "starts with the preload (one row per cycle)")
    fold_switch_cycles: StrictInt = Field(default=0, ge=0, le=MAX_CONTROLLER_CYCLES,
                                          description="dead cycles on the stream port between one fold's last "
                                                      "streamed element and the next fold's first (a switch "
                                                      "bubble)")
    tile_overhead_cycles: StrictInt = Field(default=0, ge=0, le=MAX_CONTROLLER_CYCLES,
                                            description="controller cycles before each array tile: the first fold "
                                                        "of every output tile (ws/is), every fold (os)")
    drain_words_per_cycle: StrictInt | None = Field(default=None, ge=1, le=1 << 20,
                                                    description="os: result words the output port takes per cycle "
                                                                "(each drain beat takes ceil(words / this)); "
                                                                "default: a whole beat per cycle")
    stream_bank_depth: StrictInt | None = Field(default=None, ge=1, le=1 << 24,
                                                description="streamed elements one input bank holds: after every "
                                                            "this many elements of a fold the stream pauses "
                                                            "stream_bank_swap_cycles; default: no pause")
    stream_bank_swap_cycles: StrictInt = Field(default=0, ge=0, le=MAX_CONTROLLER_CYCLES,
                                               description="cycles the stream pauses while its input bank swaps")
    prefetch_across_ops: bool = Field(default=False,
                                      description="the DMA loads the next op's weights and index into free buffer "
                                                  "slots while the current op computes (a weight FIFO, a DMA queue "
                                                  "running ahead); its inputs still wait for the previous op's "
                                                  "results. false: each op starts with empty buffers once the "
                                                  "previous one has stored its results")

    @model_validator(mode="after")
    def _consistent(self):
        if self.preload_order is PreloadOrder.WAVEFRONT and self.preload_rows_per_cycle != 1:
            raise ValueError(f"preload_rows_per_cycle: {self.preload_rows_per_cycle} with preload_order 'wavefront' "
                             "(a wavefront writes one row per cycle, in step with the input skew); use 1")
        if self.stream_bank_swap_cycles and self.stream_bank_depth is None:
            raise ValueError(f"stream_bank_depth: missing while stream_bank_swap_cycles is "
                             f"{self.stream_bank_swap_cycles} (say after how many elements the bank swaps)")
        return self


class VectorUnit(_Strict):
    lanes: StrictInt | None = Field(default=None, gt=0, le=1 << 20,
                                    description="elements the vector unit processes in parallel; default: one "
                                                "lane per array column (the unit sits under the array's output "
                                                "edge, as TPUv1's activation pipeline does)")
    cycles_per_element: dict[
        Literal["softmax", "gelu", "layernorm", "add"], Annotated[StrictFloat, Field(le=MAX_CYCLES_PER_ELEMENT)]
    ] = Field(description="cycles per element and lane of softmax, gelu, layernorm and add (all four, > 0)")

    @model_validator(mode="after")
    def _all_kinds(self):
        missing = {"softmax", "gelu", "layernorm", "add"} - set(self.cycles_per_element)
        if missing:
            raise ValueError(f"cycles_per_element lacks {sorted(missing)}")
        if any(v <= 0 for v in self.cycles_per_element.values()):
            raise ValueError("cycles_per_element values must be > 0")
        return self


class EnergyTable(_Strict):
    """Energy per action in pJ at the table's own node and supply (``node_nm``, ``vdd_v``); the design's
    ``technology`` scales them (:mod:`hwsim.design_cost`). Per-byte SRAM figures are per-64-bit figures / 8."""

    source: str = Field(min_length=1, description="where the energy figures come from (a paper, a data sheet)")
    node_nm: StrictFloat = Field(default=45.0, ge=MIN_NODE_NM, le=MAX_NODE_NM,
                                 description="process node the figures were measured at (nm)")
    vdd_v: StrictFloat = Field(default=0.9, ge=MIN_VDD_V, le=MAX_VDD_V,
                               description="supply voltage the figures were measured at (V)")
    mac_pj: StrictFloat = Field(ge=0, le=MAX_ENERGY_PJ, description="one MAC at the operand width")
    gated_mac_pj: StrictFloat = Field(default=0.0, ge=0, le=MAX_ENERGY_PJ, description="a gated zero-weight MAC")
    register_pj_per_mac: StrictFloat = Field(ge=0, le=MAX_ENERGY_PJ, description="PE register traffic per MAC")
    sram_pj_per_64bit: dict[
        Annotated[StrictInt, BeforeValidator(_json_int_key), Field(gt=0, le=MAX_BUFFER_BYTES)],
        Annotated[StrictFloat, Field(ge=0, le=MAX_ENERGY_PJ)],
    ] | None = Field(default=None, description="SRAM size in bytes -> pJ per 64-bit access (log-linear between "
                                               "points, clamped at the ends); default: the Horowitz fit at "
                                               "the design's node, monotone in size")
    dram_pj_per_64bit: StrictFloat = Field(ge=0, le=MAX_ENERGY_PJ, description="off-chip access energy per "
                                                                              "64 bits (pJ)")
    vector_pj_per_element: StrictFloat = Field(default=1.0, ge=0, le=MAX_ENERGY_PJ,
                                               description="vector-unit energy per element (pJ)")
    static_power_mw: StrictFloat | None = Field(default=None, ge=0, le=MAX_STATIC_POWER_MW,
                                                description="leakage/static power (mW): energy = power x latency; "
                                                            "default: leakage density x the design's area")

    @model_validator(mode="after")
    def _sram_points(self):
        if self.sram_pj_per_64bit is not None and not self.sram_pj_per_64bit:
            raise ValueError("sram_pj_per_64bit needs at least one size -> energy entry (or leave it out for the "
                             "size fit)")
        return self


class Technology(_Strict):
    """Process node and supply of the design; energies and areas are scaled to them (:mod:`hwsim.tech`)."""

    node_nm: StrictFloat | None = Field(default=None, ge=MIN_NODE_NM, le=MAX_NODE_NM,
                                        description="process node (nm), 7-130; default: the energy table's node")
    vdd_v: StrictFloat | None = Field(default=None, ge=MIN_VDD_V, le=MAX_VDD_V,
                                      description="supply voltage (V); default: the energy table's supply")
    logic_area_factor: StrictFloat = Field(default=1.0, ge=1.0, le=10.0,
                                           description="placed-block area / cell area of the logic (placement "
                                                       "density, clock tree, wiring); 1: cell area as cited. "
                                                       "TPUv1's matrix unit measures 2.3x the modelled cells")
    vf_curve_mhz_v: dict[
        Annotated[StrictFloat, BeforeValidator(_json_int_key), Field(ge=MIN_CLOCK_MHZ, le=10000)],
        Annotated[StrictFloat, Field(ge=MIN_VDD_V, le=MAX_VDD_V)],
    ] | None = Field(default=None, description="voltage-frequency pairs {MHz: V}: the supply at clock_mhz is "
                                               "interpolated, so a clock sweep scales dynamic energy with V²")

    @model_validator(mode="after")
    def _one_supply(self):
        if self.vdd_v is not None and self.vf_curve_mhz_v:
            raise ValueError("give technology.vdd_v or technology.vf_curve_mhz_v, not both")
        if self.vf_curve_mhz_v is not None and not self.vf_curve_mhz_v:
            raise ValueError("technology.vf_curve_mhz_v needs at least one MHz -> V pair")
        return self


class FpgaBudget(_Strict):
    dsp: StrictInt = Field(gt=0, le=MAX_FPGA_RESOURCE, description="DSP slices on the device")
    bram36: StrictInt = Field(gt=0, le=MAX_FPGA_RESOURCE, description="36 Kb block RAMs on the device")
    uram: StrictInt = Field(default=0, ge=0, le=MAX_FPGA_RESOURCE, description="288 Kb UltraRAMs on the device")
    lut: StrictInt = Field(gt=0, le=MAX_FPGA_RESOURCE, description="LUTs on the device")
    ff: StrictInt | None = Field(default=None, gt=0, le=MAX_FPGA_RESOURCE,
                                 description="flip-flops on the device (checked when given)")
    dsps_per_mac: StrictFloat = Field(gt=0, le=64, description="DSP slices per PE MAC (int8 packs 2 per DSP)")
    luts_per_pe: StrictInt = Field(default=60, ge=0, le=1_000_000, description="control/muxing LUTs per PE")


class AcceleratorConfig(_Strict):
    version: Literal[1] = Field(default=1, description="schema version")
    name: str = Field(min_length=1, description="the name results and plots show")
    kind: Literal["asic", "fpga"] = Field(description="fpga needs the fpga resource budget")
    source: str = Field(min_length=1, description="where the numbers come from")
    clock_mhz: StrictFloat = Field(ge=MIN_CLOCK_MHZ, le=10000, description="array clock (MHz), 1-10000")
    pe_array: PEArray
    buffers: Buffers
    dram: Dram
    sparse: Sparse = Sparse()
    microarch: Microarch = Microarch()
    vector_unit: VectorUnit
    technology: Technology = Technology()
    energy: EnergyTable
    fpga: FpgaBudget | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_per_cycle_leakage(cls, data):
        """Per-cycle leakage made static energy independent of the clock; say how to convert old files."""
        energy = data.get("energy") if isinstance(data, dict) else None
        if isinstance(energy, dict) and "leakage_pj_per_cycle" in energy:
            leakage, clock = energy["leakage_pj_per_cycle"], data.get("clock_mhz")
            example = ""
            if isinstance(leakage, int | float) and isinstance(clock, int | float) and not isinstance(clock, bool):
                example = f" (here {leakage} pJ x {clock} MHz / 1000 = {leakage * clock / 1000:g} mW)"
            raise ValueError(
                "energy.leakage_pj_per_cycle: per-cycle leakage is no longer accepted (static energy must grow "
                "with latency, not with cycles); replace it by energy.static_power_mw = leakage_pj_per_cycle x "
                f"clock_mhz / 1000{example}"
            )
        return data

    @model_validator(mode="after")
    def _cross_checks(self):
        if self.kind == "fpga" and self.fpga is None:
            raise ValueError("fpga: kind is 'fpga' but the fpga resource budget is missing")
        curve = self.technology.vf_curve_mhz_v
        if curve and not min(curve) <= self.clock_mhz <= max(curve):
            raise ValueError(f"technology.vf_curve_mhz_v: clock_mhz {self.clock_mhz:g} is outside the curve "
                             f"({min(curve):g}-{max(curve):g} MHz); add a point for it")  # fmt: skip
        micro, dataflow = self.microarch, self.pe_array.dataflow
        if dataflow is Dataflow.OS and micro.preload_order is PreloadOrder.WAVEFRONT:
            raise ValueError("microarch.preload_order: 'wavefront' with pe_array.dataflow 'os' (an os array "
                             "preloads nothing); use 'serial'")
        if dataflow is not Dataflow.OS and micro.drain_words_per_cycle is not None:
            raise ValueError(f"microarch.drain_words_per_cycle: {micro.drain_words_per_cycle} with pe_array.dataflow "
                             f"{dataflow.value!r} (ws/is results leave the array edge as they are computed; only "
                             "os drains through a result port); leave it out")
        problems = fpga_problems(self) if self.fpga is not None else []
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def dram_bytes_per_cycle(self) -> float:
        if self.dram.bw_bytes_per_cycle is not None:
            return self.dram.bw_bytes_per_cycle
        return self.dram.bw_gb_per_s * 1e9 / self.clock_hz  # >= 1e-3 GB/s / the clock bound: > 1e-7 bytes/cycle

    @property
    def n_pes(self) -> int:
        return self.pe_array.rows * self.pe_array.cols

    @property
    def vector_lanes(self) -> int:
        """``vector_unit.lanes``, or one lane per array column when the file leaves it out."""
        return self.vector_unit.lanes if self.vector_unit.lanes is not None else self.pe_array.cols

    @functools.cached_property
    def cost(self) -> DesignCost:
        """Area, static power and per-action energies at the design's node (computed once per config)."""
        return design_cost(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)


def fpga_problems(config: AcceleratorConfig) -> list[str]:
    """Resource over-use on the FPGA budget as ``"field.path: message"`` lines (empty when it fits)."""
    fpga = config.fpga
    problems = []
    used = fpga_resources(config)
    dsps = used["dsp"]
    if dsps > fpga.dsp:
        problems.append(
            f"fpga.dsp: pe_array {config.pe_array.rows}x{config.pe_array.cols} needs {dsps} DSPs "
            f"({fpga.dsps_per_mac} per MAC) but fpga.dsp is {fpga.dsp}"
        )
    buffers = config.buffers
    on_chip = buffers.weight_bytes + buffers.input_bytes + buffers.output_bytes  # totals, slots included
    capacity = fpga.bram36 * BRAM36_BYTES + fpga.uram * URAM_BYTES
    if on_chip > capacity:
        problems.append(f"fpga.bram36: buffers need {on_chip} bytes but BRAM36/URAM hold {capacity}")
    luts = used["lut"]
    if luts > fpga.lut:
        problems.append(
            f"fpga.lut: pe_array needs about {luts} LUTs ({fpga.luts_per_pe} per PE) but fpga.lut is {fpga.lut}"
        )
    if fpga.ff is not None and used["ff"] > fpga.ff:
        problems.append(f"fpga.ff: the PE registers need about {used['ff']} flip-flops but fpga.ff is {fpga.ff}")
    return problems


def _errors_of(err: ValidationError) -> list[tuple[str, str]]:
    out = []
    for item in err.errors():
        path = ".".join(str(p) for p in item["loc"]) or "<top>"
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:  # cross-field checks name their own field: "fpga.dsp: ..."
            for line in message.splitlines():
                field, sep, text = line.partition(": ")
                out.append((field, text) if sep and " " not in field else (path, line))
            continue
        if item["type"] == "extra_forbidden":
            message = "unknown key (check spelling; units belong in the key name, e.g. weight_bytes)"
        if "input" in item and item["type"] not in ("missing",) and not isinstance(item["input"], dict):
            message += f" (got {short_repr(item['input'])})"
        out.append((path, message))
    return out


def _validate(data, source: str) -> AcceleratorConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, [("<top>", f"expected a mapping, got {type(data).__name__}")])
    try:
        return AcceleratorConfig.model_validate(data)
    except ValidationError as err:
        value_paths = frozenset(".".join(str(p) for p in item["loc"]) for item in err.errors() if item["loc"])
        raise ConfigError(source, _errors_of(err), value_paths) from None


def _presets_dir():
    return resources.files("accel_configs")


def list_presets() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in _presets_dir().iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_path: str | Path | AcceleratorConfig) -> AcceleratorConfig:
    """Load a preset by name (``asic-32x32-int8``) or a YAML file path; validates everything."""
    if isinstance(name_or_path, AcceleratorConfig):
        return name_or_path
    if not isinstance(name_or_path, str | Path):
        raise TypeError(f"config: expected a preset name, a YAML path or an AcceleratorConfig, got "
                        f"{type(name_or_path).__name__} {str(name_or_path)[:40]!r}")  # fmt: skip
    text_name = str(name_or_path)
    presets = list_presets()
    path = Path(name_or_path)
    try:
        is_file = path.is_file()
    except OSError as err:  # a name over the file system's limit (ENAMETOOLONG), ...
        raise FileNotFoundError(f"config: {short_repr(text_name)} is neither a preset nor a readable YAML path "
                                f"({err.strerror})") from None  # fmt: skip
    if text_name not in presets and not is_file:
        raise FileNotFoundError(f"config: {text_name!r} is neither a preset ({', '.join(presets)}) nor a YAML file")
    source = f"preset {text_name!r}" if text_name in presets else str(path)
    try:
        if text_name in presets:
            data = copy.deepcopy(_preset_data(text_name))
        else:
            data = load_yaml_text(read_text_file(path, "config"), source)
    except YamlInputError as err:
        raise ConfigError(source, [("<yaml>", err.reason)]) from None
    return _validate(data, source)


def preset_text(name: str) -> str:
    """The YAML text of a shipped preset as written (its comments cite the sources of its figures)."""
    if name not in list_presets():
        raise FileNotFoundError(f"config: {name!r} is not a preset ({', '.join(list_presets())})")
    return (_presets_dir() / f"{name}.yaml").read_text()


@functools.cache  # package data never changes while running; sweeps load presets thousands of times
def _preset_data(name: str):
    return load_yaml_text(preset_text(name), f"preset {name!r}")


def config_from_dict(data: dict, source: str = "<dict>") -> AcceleratorConfig:
    return _validate(data, source)


_DRAM_BANDWIDTH = ("dram.bw_bytes_per_cycle", "dram.bw_gb_per_s")  # a config gives one: setting one drops the other
EXCLUSIVE_FIELD_PAIRS = (_DRAM_BANDWIDTH, ("technology.vdd_v", "technology.vf_curve_mhz_v"))  # never both set


def derive_config(base: str | Path | AcceleratorConfig, overrides: dict, name: str | None = None) -> AcceleratorConfig:
    """A config from ``base`` (preset, YAML path or config) with dotted-path ``overrides``, validated like a file.

    ``{"pe_array.rows": 64, "buffers.weight_bytes": "1 MiB", "clock_mhz": 500}``; setting one DRAM bandwidth
    field drops the other. The name defaults to ``base[path=value,...]``. A path that names no field, or a
    result that fails validation (e.g. an FPGA budget the array exceeds), raises :class:`ConfigError`.

    >>> derive_config("asic-32x32-int8", {"pe_array.rows": 64, "clock_mhz": 500}).name
    'asic-32x32-int8[pe_array.rows=64,clock_mhz=500]'
    """
    config = load_config(base)
    data = config.model_dump(mode="json")  # unset optional fields (None) are still fields an override may set
    source = f"{config.name} + overrides"
    problems = []
    for path, value in overrides.items():
        keys = str(path).split(".")
        node = data
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or keys[-1] not in node:
            problems.append((str(path), "names no field of the config"))
            continue
        node[keys[-1]] = value
        if str(path) in _DRAM_BANDWIDTH:
            other = next(field for field in _DRAM_BANDWIDTH if field != str(path))
            node[other.split(".")[1]] = None
    if problems:
        raise ConfigError(source, problems)
    label = ",".join(f"{k}={v}" for k, v in overrides.items())
    data["name"] = name or (f"{config.name}[{label}]" if label else config.name)
    return _validate(data, source)
