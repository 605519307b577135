"""Fast-path simulation of a workload: closed-form fold cycles + the simpy memory pipeline.

>>> from transformers import BertConfig
>>> from hwsim import build_workload, load_config, simulate
>>> hf = BertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128)
>>> result = simulate(load_config("asic-16x16-int8"), build_workload(hf, seq_len=16))
>>> int(result.totals["cycles"]) > 0, list(result.ops.columns[:4])
(True, ['op', 'layer', 'kind', 'M'])

Ops run one after another, each depending on the previous one's results (``repeat`` copies back to back;
vector ops on the vector unit in between). Without ``microarch.prefetch_across_ops`` each GEMM starts with
empty buffers once the previous op is done; with it the DMA runs ahead, loading the next GEMMs' weights
while the current one computes (:func:`hwsim.memory.run_chain`), and an op's ``cycles`` run from when its
inputs are ready to its last store, so loads it prefetched are in the previous op's cycles.

Beside the simulated cycles every op and the total report the roofline: ``dram_roofline_cycles`` (its DRAM
bytes at the configured bandwidth), ``roofline_cycles = max(compute_cycles, dram_roofline_cycles)`` and
``bound`` (``dram`` or ``compute``, whichever is larger). The total's roofline sums compute and DRAM over
the workload, so the simulated total is never below it; an op's own cycles can be, where it prefetched.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bsp_common import strict_json
from bsp_common.outputs import write_text_atomic
from hwsim.config import AcceleratorConfig, Dataflow, load_config
from hwsim.energy import ENERGY_COMPONENTS, gemm_energy_pj, vector_energy_pj
from hwsim.mapping import fold_plan, streamed_lines_per_tile
from hwsim.memory import ChunkChoices, PipelineResult, fastest_chunks, run_chain, run_pipeline
from hwsim.timing import fold_timing
from hwsim.workload import Gemm, VectorOp, Workload

__all__ = ["MAX_FOLDS", "SimResult", "clear_timing_cache", "estimate_folds", "simulate", "simulate_gemm",
           "simulate_totals"]

MAX_FOLDS = 2_000_000  # default work guard: BERT-base on a 32x32 array is ~50k folds (~0.1 s); each fold
# costs ~0.2 KB in the plan and a share of a simpy chunk, so 2 M folds is seconds and a few hundred MB


@dataclass(frozen=True)
class SimResult:
    """Per-op table and totals of one simulation; ``trace`` holds (unit, label, start, end) cycles."""

    config_name: str
    clock_hz: float
    ops: pd.DataFrame
    totals: dict
    trace: tuple[tuple[str, str, int, int], ...] = ()

    def to_json_dict(self) -> dict:
        """``{"total": {...}, "ops": [{"name": ..., "M": ..., ...}]}`` (the CLI's ``--json`` contract)."""
        ops = self.ops.rename(columns={"op": "name"})
        return {"total": self.totals, "ops": json.loads(ops.to_json(orient="records"))}

    def per_layer(self) -> pd.DataFrame:
        """Cycles and energy summed per encoder layer."""
        columns = ["cycles", "compute_cycles", "stall_cycles", "energy_pj", "macs_useful"]
        return self.ops.groupby("layer")[columns].sum()

    def write_trace(self, path: str | Path) -> Path:
        """Chrome trace-event JSON (open in Perfetto / chrome://tracing); timestamps in microseconds."""
        us_per_cycle = 1e6 / self.clock_hz
        threads = {"array": 1, "dma": 2, "vector": 3}
        events = [
            {"name": label, "ph": "X", "pid": 0, "tid": threads[unit], "ts": start * us_per_cycle,
             "dur": (end - start) * us_per_cycle, "cat": unit}
            for unit, label, start, end in self.trace
        ]  # fmt: skip
        events += [
            {"name": "thread_name", "ph": "M", "pid": 0, "tid": tid, "args": {"name": unit}}
            for unit, tid in threads.items()
        ]
        path = Path(path)
        write_text_atomic(path, strict_json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
        return path


_PLAN_CACHE: OrderedDict = OrderedDict()  # (op, array, sparse, microarch, streamed lines) -> (plan, fold timing)
_LAYOUT_CACHE: OrderedDict = OrderedDict()  # (op, layout-relevant config) -> (plan, chunk choices, fold timing)
_TIMING_CACHE: OrderedDict = OrderedDict()  # (op, layout-relevant config, bandwidth) -> (plan, chunks, pipeline)
TIMING_CACHE_ENTRIES = 512  # LRU bound per cache: a BERT-base plan set is a few MB


def clear_timing_cache() -> int:
    """Forget every memoised GEMM timing; returns how many pipelines there were."""
    entries = len(_TIMING_CACHE)
    _TIMING_CACHE.clear()
    _LAYOUT_CACHE.clear()
    _PLAN_CACHE.clear()
    return entries


def _layout_key(config: AcceleratorConfig) -> tuple:
    """What the fold plan, DMA chunks and fold gaps depend on: not the clock, the DRAM or energy figures.
    Remembered per config object (configs are frozen): a sweep point asks once per GEMM."""
    known = _LAYOUT_KEYS.get(id(config))
    if known is not None and known[0] is config:
        return known[1]
    key = (config.pe_array.model_dump_json(), config.buffers.model_dump_json(), config.sparse.model_dump_json(),
           config.microarch.model_dump_json())  # fmt: skip
    if len(_LAYOUT_KEYS) >= 64:
        _LAYOUT_KEYS.clear()
    _LAYOUT_KEYS[id(config)] = (config, key)  # holding the config keeps its id from being reused
    return key


_LAYOUT_KEYS: dict[int, tuple[AcceleratorConfig, tuple]] = {}


def _memo(cache: OrderedDict, key: tuple, compute):
    """``cache[key]``, computed on a miss; least recently used entries beyond TIMING_CACHE_ENTRIES are dropped."""
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
        return value
    value = cache[key] = compute()
    if len(cache) > TIMING_CACHE_ENTRIES:
        cache.popitem(last=False)
    return value


def _plan(op: Gemm, config: AcceleratorConfig):
    """Fold plan and fold timing of ``op``, memoised on what they read (:func:`hwsim.mapping.fold_plan`'s
    arguments and the microarchitecture): points that differ in a buffer size that leaves the tiling alone
    share them."""
    lines = streamed_lines_per_tile(op, config)
    pe_array, _, sparse, microarch = _layout_key(config)

    def plan_and_timing():
        plan = fold_plan(op, config.pe_array, config.sparse, lines)
        return plan, fold_timing(plan, config)

    return _memo(_PLAN_CACHE, (op.content_key, pe_array, sparse, microarch, lines), plan_and_timing)


def _layout(op: Gemm, config: AcceleratorConfig):
    """Plan, DMA chunk choices and fold timing of one repeat of ``op``, memoised (sweep points that differ
    only in clock, DRAM or energy figures, and layers with identical GEMMs, share them)."""

    def layout():
        plan, timing = _plan(op, config)
        return plan, ChunkChoices.of(plan, op, config), timing

    return _memo(_LAYOUT_CACHE, (op.content_key, _layout_key(config)), layout)


def _timing(op: Gemm, config: AcceleratorConfig, trace: bool = False):
    """Plan, chosen chunks and pipeline of one repeat of ``op`` on its own, memoised in two levels: sweep points
    that differ only in energy figures, and layers with identical GEMMs (dense attention products), are
    simulated once; points that differ in clock or DRAM bandwidth share the plan and chunkings and rerun only
    the memory pipelines (the fastest chunking depends on the bandwidth)."""

    def timing():
        plan, options, fold_gaps = _layout(op, config)
        chunks, pipeline = fastest_chunks(options, fold_gaps, config)
        if trace:
            pipeline = run_pipeline(chunks, fold_gaps, config, trace=True)
        return plan, chunks, pipeline

    key = (op.content_key, _layout_key(config), config.dram_bytes_per_cycle, trace)
    return _memo(_TIMING_CACHE, key, timing)


def _gemm_row(op: Gemm, config: AcceleratorConfig, plan, chunks, pipeline: PipelineResult, scale: int) -> dict:
    """The result row of ``op`` from ``pipeline`` (cycle counts times ``scale``: one repeat's, or all of them)."""
    repeat = op.repeat

    def total(name: str) -> int:
        return getattr(pipeline, name) * scale

    cycles = total("cycles")
    acc_bits = config.pe_array.acc_bits
    energy = gemm_energy_pj(plan, chunks, cycles / repeat, acc_bits, config)
    return {
        "cycles": cycles,
        "compute_cycles": total("compute_cycles"),
        "stall_cycles": total("stall_cycles"),
        "first_load_cycles": total("first_load_cycles"),
        "last_store_cycles": total("last_store_cycles"),
        "folds": plan.n_folds * repeat,
        "macs": op.macs,
        "macs_useful": plan.useful_macs * repeat,
        "macs_issued": plan.issued_macs * repeat,
        "macs_skipped": op.macs - plan.issued_macs * repeat,
        "dram_bytes": (chunks.dram_weight_bytes + chunks.dram_input_bytes + chunks.dram_output_bytes) * repeat,
        "weight_buffer_bytes": plan.weight_bytes_total * repeat,
        "input_buffer_bytes": plan.input_bytes_total * repeat,
        "psum_bytes": plan.psum_elements_total * acc_bits / 8 * repeat,
        **{f"energy_{k}_pj": v * repeat for k, v in energy.items()},
    }


def simulate_gemm(op: Gemm, config: AcceleratorConfig, trace: bool = False) -> tuple[dict, list]:
    """One GEMM (all repeats) on its own, from empty buffers: a result row and, with ``trace``, its trace
    events (first repeat, cycles from 0; ``(unit, label, start, end)``)."""
    plan, chunks, pipeline = _timing(op, config, trace)
    return _gemm_row(op, config, plan, chunks, pipeline, op.repeat), pipeline.events if trace else []


def _vector_cycles(op: VectorOp, config: AcceleratorConfig) -> int:
    """``ceil(elements * cycles_per_element / lanes)``: lanes work in lockstep on contiguous elements."""
    vector = config.vector_unit
    return math.ceil(op.elements * vector.cycles_per_element[op.kind.value] / config.vector_lanes)


def estimate_folds(config: AcceleratorConfig, workload: Workload) -> int:
    """Upper bound on the folds the fast path plans for ``workload`` (dense geometry; skipping only removes),
    buffer-aware tiling's extra passes included."""
    R, C = config.pe_array.rows, config.pe_array.cols

    def pieces(op: Gemm) -> int:
        full = op.N if config.pe_array.dataflow is Dataflow.IS else op.M
        return -(-full // streamed_lines_per_tile(op, config)) if config.pe_array.dataflow is not Dataflow.OS else 1

    tiles = {Dataflow.WS: lambda op: -(-op.N // C) * -(-op.K // R),
             Dataflow.OS: lambda op: -(-op.N // C) * -(-op.M // R),
             Dataflow.IS: lambda op: -(-op.K // R) * -(-op.M // C)}[config.pe_array.dataflow]  # fmt: skip
    return sum(tiles(op) * pieces(op) for op in workload.gemms)


def _check_workload(config: AcceleratorConfig, workload: Workload, max_folds: int | None) -> None:
    """Refuse an empty workload and (before any work) one above ``max_folds`` folds."""
    if not isinstance(workload, Workload):
        raise TypeError(f"workload: expected a hwsim Workload (build_workload, or Workload(ops=(Gemm(...), ...))), "
                        f"got {type(workload).__name__}")  # fmt: skip
    if not workload.ops:
        raise ValueError("workload: no ops to simulate")
    if max_folds is not None:
        folds = estimate_folds(config, workload)
        if folds > max_folds:
            raise ValueError(
                f"workload: about {folds:,} array folds on {config.name} "
                f"({config.pe_array.rows}x{config.pe_array.cols} {config.pe_array.dataflow.value}), above the "
                f"limit of {max_folds:,} (time and memory grow with folds: ~{folds * 200 / 1e9:.1f} GB of plan "
                "alone); raise the limit (--max-folds / max_folds=) if that is intended"
            )


def simulate(config: AcceleratorConfig | str, workload: Workload, trace: bool = False,
             max_folds: int | None = MAX_FOLDS) -> SimResult:  # fmt: skip
    """Cycles, stalls, utilization and energy of every op of ``workload`` on ``config``.

    ``max_folds`` refuses (before any work) a workload whose fold count -- the simulator's cost in time and
    memory -- exceeds it; ``None`` lifts the guard.
    """
    config = load_config(config)
    _check_workload(config, workload, max_folds)
    rows, events = _op_rows(config, workload, trace)
    ops = pd.DataFrame(rows)
    n_pes = config.n_pes
    ops["energy_pj"] = ops[[f"energy_{k}_pj" for k in ENERGY_COMPONENTS]].sum(axis=1)
    ops["ideal_cycles"] = np.ceil(ops["macs_useful"] / n_pes).astype(np.int64)
    ops["utilization"] = ops["macs_useful"] / (ops["cycles"] * n_pes)
    ops["utilization_vs_ideal"] = np.where(ops["cycles"] > 0, ops["ideal_cycles"] / ops["cycles"], 0.0)
    ops["latency_s"] = ops["cycles"] / config.clock_hz
    ops["dram_roofline_cycles"], ops["roofline_cycles"], ops["bound"] = _roofline(ops["compute_cycles"],
                                                                                  ops["dram_bytes"], config)
    return SimResult(config.name, config.clock_hz, ops, _totals(rows, config), tuple(events))


def simulate_totals(config: AcceleratorConfig | str, workload: Workload, max_folds: int | None = MAX_FOLDS) -> dict:
    """``simulate(config, workload).totals`` without building the per-op table (what sweeps need)."""
    config = load_config(config)
    _check_workload(config, workload, max_folds)
    return _totals(_op_rows(config, workload, trace=False)[0], config)


def _op_rows(config: AcceleratorConfig, workload: Workload, trace: bool) -> tuple[list[dict], list]:
    """One result row per op, in order, and (with ``trace``) the timeline events."""
    if config.microarch.prefetch_across_ops:
        gemm_row, events = _chained_gemm_rows(config, workload, trace)
    else:
        gemm_row, events = _serial_gemm_row(config, trace), []
    rows, now = [], 0
    for index, op in enumerate(workload.ops):
        if isinstance(op, Gemm):
            row, op_events = gemm_row(index, op, now)
            events += op_events
        else:
            row = _vector_row(op, config)
            if trace:
                events.append(("vector", op.name, now, now + row["cycles"]))
        now += row["cycles"]
        rows.append(row)
    return rows, events


def _serial_gemm_row(config: AcceleratorConfig, trace: bool):
    """``(index, op, now) -> (row, events)`` for GEMMs run one by one from empty buffers."""

    def gemm_row(_index: int, op: Gemm, now: int):
        row, op_events = simulate_gemm(op, config, trace)
        row = _op_row(op, row)
        events = [(unit, f"{op.name}: {label}", now + s, now + e) for unit, label, s, e in op_events]
        if trace and op.repeat > 1:
            single = row["cycles"] // op.repeat
            events.append(("array", f"{op.name}: repeats 2..{op.repeat}", now + single, now + row["cycles"]))
        return row, events

    return gemm_row


def _chained_gemm_rows(config: AcceleratorConfig, workload: Workload, trace: bool):
    """``(index, op, now) -> (row, [])`` for GEMMs run as one :func:`hwsim.memory.run_chain` (the DMA running
    across ops; vector ops add to the next GEMM's dependency time), and the chain's trace events."""
    layouts, chained, cycles_before, chain_op, vector_cycles = {}, [], [], [], 0
    for index, op in enumerate(workload.ops):
        if isinstance(op, Gemm):
            layouts[index] = _timing(op, config)
            chunks = layouts[index][1]
            if chunks.n_chunks:
                chained.append((chunks, _layout(op, config)[2], op.repeat))
                cycles_before.append(vector_cycles)
                chain_op.append(index)
                vector_cycles = 0
        else:
            vector_cycles += _vector_cycles(op, config)
    chain = run_chain(chained, cycles_before, config, trace) if chained else None
    pipelines = dict(zip(chain_op, chain.gemms if chain else (), strict=True))
    empty = PipelineResult(0, 0, 0, 0, 0, 0, ())

    def gemm_row(index: int, op: Gemm, _now: int):
        plan, chunks, _ = layouts[index]
        return _op_row(op, _gemm_row(op, config, plan, chunks, pipelines.get(index, empty), 1)), []

    events = []
    if trace and chain:
        for unit, what, chunk, start, end in chain.records:
            op = workload.ops[chain_op[chain.chunk_gemm[chunk]]]
            events.append((unit, f"{op.name}: {what} {chain.chunk_offset[chunk]}", start, end))
    return gemm_row, events


def _op_row(op: Gemm, row: dict) -> dict:
    return {"op": op.name, "layer": op.layer, "kind": "gemm", "M": op.M, "K": op.K, "N": op.N, "repeat": op.repeat,
            **row}  # fmt: skip


def _vector_row(op: VectorOp, config: AcceleratorConfig) -> dict:
    cycles = _vector_cycles(op, config)
    energy = vector_energy_pj(op.elements, cycles, config)
    return {"op": op.name, "layer": op.layer, "kind": op.kind.value, "M": op.elements, "K": 0, "N": 0, "repeat": 1,
            "cycles": cycles, "compute_cycles": cycles, "stall_cycles": 0, "first_load_cycles": 0,
            "last_store_cycles": 0, "folds": 0, "macs": 0, "macs_useful": 0, "macs_issued": 0, "macs_skipped": 0,
            "dram_bytes": 0.0, "weight_buffer_bytes": 0.0, "input_buffer_bytes": 0.0, "psum_bytes": 0.0,
            **{f"energy_{k}_pj": v for k, v in energy.items()}}  # fmt: skip


def _roofline(compute_cycles, dram_bytes, config: AcceleratorConfig):
    """``(dram_roofline_cycles, roofline_cycles, bound)`` for compute and DRAM bytes (scalars or arrays)."""
    dram = np.ceil(np.asarray(dram_bytes, dtype=np.float64) / config.dram_bytes_per_cycle - 1e-9).astype(np.int64)
    compute = np.asarray(compute_cycles, dtype=np.int64)
    return dram, np.maximum(compute, dram), np.where(dram > compute, "dram", "compute")


def _totals(rows: list[dict], config: AcceleratorConfig) -> dict:
    def total(column: str) -> float:
        return sum(row[column] for row in rows)

    cycles = int(total("cycles"))
    gemm_cycles = int(sum(row["cycles"] for row in rows if row["kind"] == "gemm"))
    useful = int(total("macs_useful"))
    energy = {k: float(total(f"energy_{k}_pj")) for k in ENERGY_COMPONENTS}
    energy_pj = float(sum(energy.values()))
    latency_s = cycles / config.clock_hz
    ops_per_s = 2 * useful / latency_s if latency_s else 0.0
    cost = config.cost
    resources = cost.fpga_resources or {}
    dram_roofline, roofline, bound = _roofline(total("compute_cycles"), total("dram_bytes"), config)
    return {
        "cycles": cycles,
        "latency_s": latency_s,
        "energy_pj": energy_pj,
        "area_mm2": cost.area_mm2,  # None on an FPGA: see the fpga_* resource counts
        "static_power_mw": cost.static_power_mw,
        "tech_node_nm": cost.node_nm,
        **{f"fpga_{k}": resources.get(k) for k in ("dsp", "lut", "ff", "bram36")},
        "compute_cycles": int(total("compute_cycles")),
        "stall_cycles": int(total("stall_cycles")),
        "first_load_cycles": int(total("first_load_cycles")),
        "last_store_cycles": int(total("last_store_cycles")),
        "ideal_cycles": math.ceil(useful / config.n_pes),
        "dram_roofline_cycles": int(dram_roofline),
        "roofline_cycles": int(roofline),
        "bound": str(bound),
        "utilization": useful / (gemm_cycles * config.n_pes) if gemm_cycles else 0.0,  # array busy on GEMMs
        "utilization_all_cycles": useful / (cycles * config.n_pes) if cycles else 0.0,  # vector ops included
        "macs_useful": useful,
        "macs_skipped": int(total("macs_skipped")),
        "dram_bytes": float(total("dram_bytes")),
        "tops_per_w": (2 * useful) / (energy_pj * 1e-12) / 1e12 if energy_pj else 0.0,
        "effective_tops": ops_per_s / 1e12,
        **{f"energy_{k}_pj": v for k, v in energy.items()},
    }
