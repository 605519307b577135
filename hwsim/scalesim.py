"""SCALE-Sim interoperability: read its ``.cfg`` and topology CSVs, and reproduce its cycle counts.

SCALE-Sim (v2/v3) counts dense, stall-free compute cycles per layer as::

    folds * (S + 2 R + C - 2) - 1      for ws / is      (full-array fill, preload, drain)
    folds * (S + R + C - 2) - 1        for os           (output drain overlapped with the next fold)

with the *full* array dimensions ``R x C`` even for partial edge tiles, where ``folds`` and the stream
``S`` follow the same geometry as :mod:`hwsim.mapping` (ws: ceil(K/R)*ceil(N/C) folds, S=M; os:
ceil(M/R)*ceil(N/C), S=K; is: ceil(K/R)*ceil(M/C), S=N). Verified against SCALE-Sim 3.0.0 runs (see
``tests/hwsim/test_scalesim.py`` and ``benchmarks/sim_speed.py``). An imported array gets SCALE-Sim's
serial controller with whole-array skew (``SCALESIM_MICROARCH``) for hwsim's own model, which differs on
purpose: its os drain is not overlapped and it charges the index decode of sparse GEMMs.

GEMM topology rows are ``name, M, N, K,`` (note the order and the trailing comma); convolution rows are
``name, ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride,`` and become the GEMM
``M = ofmap pixels, K = filter_h * filter_w * channels, N = num_filters``.
"""

from __future__ import annotations

import configparser
import csv
import math
from pathlib import Path

from bsp_common.safe_yaml import read_text_file, short_repr
from hwsim.config import AcceleratorConfig, ConfigError, Dataflow, derive_config
from hwsim.workload import MAX_GEMM_DIM, Gemm, Workload

__all__ = ["load_scalesim_config", "load_scalesim_topology", "scalesim_cycles", "write_scalesim_config"]

DEFAULT_CLOCK_MHZ = 1000.0  # SCALE-Sim has no clock; latency in its units is cycles at 1 GHz
MAX_TOPOLOGY_BYTES = 16 << 20  # a topology of a million layers is still far below this
_BASE_PRESET = "asic-32x32-int8"  # energy table, vector unit and sparse defaults for imported arrays
# SCALE-Sim's controller: folds one after another, skew over the whole array, no pipeline registers
SCALESIM_MICROARCH = {"microarch.fold_overlap": "none", "microarch.edge_skew": "full", "microarch.mult_stages": 0,
                      "microarch.acc_stages": 0, "microarch.drain": "rows", "microarch.drain_lines_per_cycle": 1,
                      "microarch.preload_rows_per_cycle": 1}  # fmt: skip


def scalesim_cycles(op: Gemm, config: AcceleratorConfig) -> int:
    """SCALE-Sim's dense, stall-free compute cycles for one GEMM (all repeats run back to back)."""
    R, C = config.pe_array.rows, config.pe_array.cols
    dataflow = config.pe_array.dataflow
    if dataflow is Dataflow.WS:
        folds, stream, fill = math.ceil(op.K / R) * math.ceil(op.N / C), op.M, 2 * R + C - 2
    elif dataflow is Dataflow.IS:
        folds, stream, fill = math.ceil(op.K / R) * math.ceil(op.M / C), op.N, 2 * R + C - 2
    else:
        folds, stream, fill = math.ceil(op.M / R) * math.ceil(op.N / C), op.K, R + C - 2
    return (folds * (stream + fill) - 1) * op.repeat


def _get(parser: configparser.ConfigParser, section: str, key: str, path: Path) -> str:
    try:
        return parser.get(section, key)
    except (configparser.NoSectionError, configparser.NoOptionError):
        raise ValueError(f"scalesim cfg {path}: missing [{section}] {key}") from None


def load_scalesim_config(path: str | Path) -> AcceleratorConfig:
    """An :class:`AcceleratorConfig` from a SCALE-Sim ``.cfg`` (array, dataflow, SRAM sizes, bandwidth)."""
    path = Path(path)
    text = read_text_file(path, "scalesim cfg")
    parser = configparser.ConfigParser(interpolation=None)  # a "%" in a value is a character, not a reference
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as err:
        raise ValueError(f"scalesim cfg {path}: {short_repr(str(err))[1:-1]}") from None
    section = "architecture_presets"

    def integer(key: str) -> int:
        text = _get(parser, section, key, path)
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(
                f"scalesim cfg {path}: [{section}] {key} must be an integer, got {short_repr(text)}"
            ) from None

    dataflow = _get(parser, section, "Dataflow", path).strip().lower()
    if dataflow not in {d.value for d in Dataflow}:
        raise ValueError(f"scalesim cfg {path}: Dataflow {dataflow!r} not one of ws, os, is")
    bandwidth = 10.0
    if parser.has_option(section, "Bandwidth"):
        text = parser.get(section, "Bandwidth").split(",")[0]
        try:
            bandwidth = float(text)
        except ValueError:
            bandwidth = math.nan
        if not (math.isfinite(bandwidth) and bandwidth > 0):
            raise ValueError(f"scalesim cfg {path}: [{section}] Bandwidth must be a positive number (words per "
                             f"cycle), got {short_repr(text)}")  # fmt: skip
    run_name = parser.get("general", "run_name", fallback=path.stem)
    overrides = {"source": f"imported from SCALE-Sim config {path.name}", "clock_mhz": DEFAULT_CLOCK_MHZ,
                 "pe_array.rows": integer("ArrayHeight"), "pe_array.cols": integer("ArrayWidth"),
                 "pe_array.dataflow": dataflow, "buffers.input_bytes": integer("IfmapSramSzkB") * 1024,
                 "buffers.weight_bytes": integer("FilterSramSzkB") * 1024,
                 "buffers.output_bytes": integer("OfmapSramSzkB") * 1024,
                 "dram.bw_bytes_per_cycle": bandwidth,  # SCALE-Sim words are one byte here (int8)
                 **SCALESIM_MICROARCH}  # fmt: skip
    try:
        return derive_config(_BASE_PRESET, overrides, name=f"scalesim-{run_name}")
    except ConfigError as err:
        raise ConfigError(str(path), err.errors) from None


def load_scalesim_topology(path: str | Path) -> Workload:
    """A dense :class:`Workload` from a SCALE-Sim topology CSV (GEMM ``name, M, N, K,`` or conv rows)."""
    path = Path(path)
    text = read_text_file(path, "scalesim topology", max_bytes=MAX_TOPOLOGY_BYTES)
    rows = [r for r in csv.reader(text.splitlines()) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ValueError(f"scalesim topology {path}: needs a header row and at least one layer")
    header = [c.strip() for c in rows[0] if c.strip()]
    if len(header) > 1 and _is_number(header[1]):  # SCALE-Sim skips the first row: a layer there would be lost
        raise ValueError(f"scalesim topology {path}:1: the first row {short_repr(', '.join(header))} is a layer, "
                         "but the first row must be the header (e.g. 'Layer name, M, N, K,'); add one")  # fmt: skip
    ops = []
    for line_no, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row if c.strip()]
        name, numbers = cells[0], cells[1:]
        values = [_dimension(x, path, line_no, column) for column, x in enumerate(numbers, start=2)]
        if len(values) == 3:
            M, N, K = values
        elif len(values) >= 6:
            ifmap_h, ifmap_w, filter_h, filter_w, channels, filters = values[:6]
            stride = values[6] if len(values) > 6 else 1
            if filter_h > ifmap_h or filter_w > ifmap_w or stride <= 0:
                raise ValueError(f"scalesim topology {path}:{line_no}: filter larger than ifmap or stride <= 0")
            out_h = (ifmap_h - filter_h) // stride + 1
            out_w = (ifmap_w - filter_w) // stride + 1
            M, K, N = out_h * out_w, filter_h * filter_w * channels, filters
        else:
            raise ValueError(f"scalesim topology {path}:{line_no}: expected 'name, M, N, K,' or a conv row, got {row}")
        ops.append(Gemm(name, M=M, K=K, N=N, layer=line_no - 2))
    return Workload(tuple(ops), batch=1, seq_len=0, meta={"source": str(path)})


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _dimension(text: str, path: Path, line_no: int, column: int) -> int:
    """A topology field: a positive whole number (``64`` or ``64.0``); fractions, inf and words are refused."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value.is_integer() and 0 < value <= MAX_GEMM_DIM):
        raise ValueError(f"scalesim topology {path}:{line_no}: field {column} must be a whole number in "
                         f"[1, {MAX_GEMM_DIM}], got {short_repr(text)}")  # fmt: skip
    return int(value)


def write_scalesim_config(path: str | Path, rows: int, cols: int, dataflow: str, sram_kb: int = 1024,
                          bandwidth: int = 10, run_name: str = "bsp") -> Path:  # fmt: skip
    """A SCALE-Sim 3.0.0 ``.cfg`` for a ``rows x cols`` array (every section 3.0.0 insists on is present;
    its memory offsets are SCALE-Sim's own defaults)."""
    if dataflow not in {d.value for d in Dataflow}:
        raise ValueError(f"dataflow: {dataflow!r} not one of ws, os, is")
    text = f"""[general]
run_name = {run_name}
[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram_kb}
FilterSramSzkB: {sram_kb}
OfmapSramSzkB: {sram_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: {bandwidth}
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32
[layout]
IfmapCustomLayout: False
FilterCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2
[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40
[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""
    path = Path(path)
    path.write_text(text)
    return path
