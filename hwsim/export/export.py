"""Export a pruned model's layers for RTL teams: block patterns, quantized weights, tile stream, golden vectors.

Per exported layer ``L`` (file stem = module name with dots as underscores):

==============================  ==========================================================================
``L_pattern.npy`` / ``.png``    group-resolution keep bitmap (uint8) and its heatmap
``L_bcsr_row_ptr.npy``          BCSR row pointers over block rows (int64, len = block rows + 1)
``L_bcsr_col_idx.npy``          block-column index of every kept hardware block (int64)
``L_bcsr_values.npy``           kept blocks' quantized weights ``[kept, rows, cols]`` (edges zero-padded)
``L_weights.hex`` / ``.coe``    the BCSR values, block by block, row-major inside a block, packed in words
``L.h``                         C header: dimensions, row_ptr, col_idx, values
``L_scales.npy``                weight scales (per tensor or per block row): ``W ~= q * scale``
``L_tiles.csv``                 hwsim's fold order on the chosen accelerator, with cycle stamps (prep
                                cycles, stream start/end, results done; overlapping folds overlap here too)
``L_x.hex`` / ``L_x_float.npy`` golden input activations (quantized per tensor) for a real sample
``L_y_int.hex``                 integer-exact outputs ``x_q @ w_q.T`` (``acc_bits`` per word, no bias)
``L_y_float.npy``               the float layer output of the real model (bias included)
``L_row_ptr.hex`` / ``L_col_idx.hex``  (ws/os configs) the block index as 32-bit ``$readmemh`` words
``L_w_stream.hex``              (ws/os) the weight stream an array of the config consumes: per N-tile one
                                word of ``pe_array.cols`` lanes per kept reduction line
``L_x_values.hex``              (ws/os) the golden input, one value per word (no unpacking)
==============================  ==========================================================================

The last four are the array-native memories of :mod:`hwsim.export.array_memories`: the reference RTL
(``rtl/``) loads them, with ``L_y_int.hex``, as they are.

``manifest.json`` lists every file with its layer, shape, dtype, block spec, scales, word width and
SHA-256, and is validated against ``manifest.schema.json`` (shipped beside this module). The export is
written to a temporary directory and renamed at the end: a failure leaves nothing half-written, and a
directory bsp did not write is never replaced (:mod:`bsp_common.outputs`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bsp_common.outputs import atomic_output_dir, check_output_dir
from hwsim.config import AcceleratorConfig, load_config
from hwsim.export.array_memories import array_memories, bcsr_index, write_array_memories
from hwsim.export.formats import LANE_ORDERS, pack_words, write_c_header, write_coe, write_hex
from hwsim.export.quant import SCALE_MODES, SUPPORTED_BITS, quantize
from hwsim.mapping import fold_lines, plan_folds
from hwsim.memory import fold_start_cycles, make_chunks, run_pipeline
from hwsim.timing import fold_timing
from hwsim.workload import Gemm
from pruning.layouts import compile_pattern

OUTPUT_KIND = "rtl-export"  # the bsp output marker kind of an export directory

__all__ = ["DEFAULT_SAMPLE", "ExportOptions", "export_model", "load_schema"]

DEFAULT_SAMPLE = "the film was a surprisingly good ride from start to finish"
MAX_WORD_BITS = 1024  # widest memory word written (a 1024-bit AXI bus line)


@dataclass(frozen=True)
class ExportOptions:
    layers: str | None = None  # regex over weight names; None: every masked layer
    value_bits: int = 8
    word_bits: int = 32
    lane_order: str = "lsb-first"
    scale_mode: str = "tensor"  # tensor | block-row
    frac_bits: int | None = None  # fixed-point weights with scale 2**-frac_bits (may saturate)
    progress: bool = True  # a per-layer progress bar on stderr
    allow_saturation: bool = False
    sample_text: str = DEFAULT_SAMPLE

    def __post_init__(self) -> None:
        if self.value_bits not in SUPPORTED_BITS:
            raise ValueError(f"value_bits: {self.value_bits!r} not supported; allowed: {SUPPORTED_BITS}")
        if not isinstance(self.word_bits, int) or self.word_bits <= 0 or self.word_bits % self.value_bits:
            raise ValueError(f"word_bits: {self.word_bits} is not a positive multiple of value_bits={self.value_bits}")
        if self.word_bits > MAX_WORD_BITS:
            raise ValueError(f"word_bits: {self.word_bits} exceeds {MAX_WORD_BITS}")
        if self.lane_order not in LANE_ORDERS:
            raise ValueError(f"lane_order: {self.lane_order!r} not one of {LANE_ORDERS}")
        if self.scale_mode not in SCALE_MODES:
            raise ValueError(f"scale: {self.scale_mode!r} not one of {SCALE_MODES}")
        if self.frac_bits is not None and (not isinstance(self.frac_bits, int) or not 0 <= self.frac_bits <= 31):
            raise ValueError(f"frac_bits: must be an integer in [0, 31], got {self.frac_bits!r}")
        if not self.sample_text.strip():
            raise ValueError("sample_text: must not be empty")


def load_schema() -> dict:
    return json.loads(resources.files("hwsim.export").joinpath("manifest.schema.json").read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _select(masks: dict, pattern: str | None) -> dict:
    if pattern is None:
        return masks
    regex = compile_pattern(pattern, "--layers")
    chosen = {name: mask for name, mask in masks.items() if regex.search(name)}
    if not chosen:
        sample = ", ".join(list(masks)[:4])
        raise ValueError(f"--layers: pattern {pattern!r} matches no pruned layer (layers include: {sample})")
    return chosen


def _capture(model, tokenizer, names: list[str], text: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Float input and output of each layer for one real sample (batch 1): name -> (x[T, K], y[T, N])."""
    import torch

    seen, handles = {}, []
    for name in names:
        module = model.get_submodule(name.removesuffix(".weight"))

        def hook(module, inputs, output, name=name):
            seen[name] = (inputs[0][0].detach().double().numpy(), output[0].detach().double().numpy())

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(**tokenizer(text, return_tensors="pt"))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _bcsr(q: np.ndarray, block_keep: np.ndarray, block: tuple[int, int]):
    br, bc = block
    rows, cols = block_keep.shape
    padded = np.zeros((rows * br, cols * bc), dtype=np.int64)
    padded[: q.shape[0], : q.shape[1]] = q
    tiles = padded.reshape(rows, br, cols, bc).transpose(0, 2, 1, 3)
    row_ptr, col_idx = bcsr_index(block_keep)
    return row_ptr, col_idx, tiles[np.nonzero(block_keep)]


def _tile_stream(path: Path, op: Gemm, config: AcceleratorConfig) -> int:
    """Fold order with the fast path's cycle stamps (memory stalls and fold overlap included): when each
    fold's stream starts and ends, and when its results are done (``hwsim.timing``)."""
    plan = plan_folds(op, config)
    timing = fold_timing(plan, config)
    chunks = make_chunks(plan, op, config)
    starts = fold_start_cycles(run_pipeline(chunks, timing, config), chunks, timing)
    stream_ends, dones = starts + timing.stream, starts + timing.busy
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fold", "tile", "n_first", "n_count", "k_indices", "m_first", "m_count", "decode_blocks",
                         "prep_cycles", "start_cycle", "stream_end_cycle", "end_cycle"])  # fmt: skip
        for i in range(plan.n_folds):
            lines = fold_lines(op, config, plan, i)
            writer.writerow([i, int(plan.tile[i]), int(lines["n"][0]), len(lines["n"]),
                             " ".join(map(str, lines["k"].tolist())), int(lines["m"][0]), len(lines["m"]),
                             int(plan.index_blocks[i]), int(timing.prep[i]), int(starts[i]), int(stream_ends[i]),
                             int(dones[i])])  # fmt: skip
    return plan.n_folds


MAX_GRID_LINES = 64  # block-grid lines per axis before they would hide the pattern


def _heatmap(path: Path, grid: np.ndarray, name: str, group: tuple[int, int], block: tuple[int, int]) -> None:
    """The keep pattern as a readable figure: black = kept group, axes in weight indices, block grid drawn.

    ``grid`` is at group resolution (``group`` weights per cell); lines mark the hardware blocks.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = grid.shape[0] * group[0], grid.shape[1] * group[1]
    width = 8.0
    height = min(12.0, max(2.5, width * rows / max(cols, 1)))
    fig, ax = plt.subplots(figsize=(width, height))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto",
              extent=(0, cols, rows, 0))  # fmt: skip
    for axis, size, length in ((ax.axvline, block[1], cols), (ax.axhline, block[0], rows)):
        if length // size <= MAX_GRID_LINES:
            for position in range(size, length, size):
                axis(position, color="tab:red", lw=0.4, alpha=0.6)
    ax.set_xlabel("input feature (in_features)")
    ax.set_ylabel("output feature (out_features)")
    ax.set_title(f"{name}: {grid.mean():.0%} of groups kept; {block[0]}x{block[1]} blocks", fontsize=9)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def export_model(model_dir: str | Path, config: str | Path | AcceleratorConfig, out_dir: str | Path,
                 options: ExportOptions | None = None, overwrite: bool = False) -> Path:  # fmt: skip
    """Write the RTL export of a directory saved by ``pruning.save_pruned``; returns ``out_dir``.

    ``out_dir`` must be new, empty, or (``overwrite=True``) an earlier export, replaced atomically; it may
    not be or contain ``model_dir`` (see :mod:`bsp_common.outputs`). It is checked before any work.
    """
    from transformers import AutoTokenizer

    from pruning.io import load_pruned

    options = options or ExportOptions()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    check_output_dir(out_dir, OUTPUT_KIND, overwrite=overwrite, inputs=[model_dir])
    config = load_config(config)
    model, masks, _ = load_pruned(model_dir, attach=False)
    model.eval()
    masks = _select(masks, options.layers)
    if not (model_dir / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"export: {model_dir} has no tokenizer files; golden vectors need the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    acc_bits = config.pe_array.acc_bits

    quantized, saturation = {}, []
    for name, mask in masks.items():
        weight = model.get_submodule(name.removesuffix(".weight")).weight.detach().double().numpy()
        q = quantize(weight, options.value_bits, options.scale_mode, mask.block.rows, options.frac_bits)
        quantized[name] = q
        if q.saturated:
            saturation.append(f"{name}: {q.saturated} of {weight.size} values")
    if saturation and not options.allow_saturation:
        raise ValueError(
            f"weights overflow signed {options.value_bits}-bit with frac_bits={options.frac_bits} "
            f"(saturating): {'; '.join(saturation)}; use fewer fractional bits or allow saturation"
        )
    captured = _capture(model, tokenizer, list(masks), options.sample_text)

    with atomic_output_dir(out_dir, OUTPUT_KIND, overwrite=overwrite, inputs=[model_dir]) as tmp:
        manifest = _write_all(tmp, masks, quantized, captured, config, options, acc_bits)
        manifest.update(model=str(model_dir), config=config.name)
        import jsonschema

        jsonschema.validate(manifest, load_schema())
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out_dir


ARRAY_FILE_KINDS = {"row_ptr": "array-row-ptr", "col_idx": "array-col-idx", "w_stream": "weight-stream",
                    "x_values": "array-input"}


def _write_array(root: Path, stem: str, name: str, weights: np.ndarray, block_keep: np.ndarray,
                 block: tuple[int, int], x: np.ndarray, config: AcceleratorConfig, value_bits: int,
                 add) -> dict:  # fmt: skip
    """The layer's array-native memories for a ws/os array (``{"array": {...}}`` for the manifest), or ``{}``."""
    dataflow = config.pe_array.dataflow.value
    if dataflow not in ("ws", "os"):
        return {}
    memories = array_memories(weights, block_keep, block, config.pe_array.cols)
    files = write_array_memories(root, stem, memories, x, value_bits)
    for part, path in files.items():
        add(path, ARRAY_FILE_KINDS[part], name, "hex")
    return {"array": {"dataflow": dataflow, "rows": config.pe_array.rows, "cols": config.pe_array.cols,
                      "block": list(block), "kept_blocks": len(memories.col_idx), "stream_lines": memories.lines,
                      "files": {**{part: path.name for part, path in files.items()}, "y_int": f"{stem}_y_int.hex"}}}


def _write_all(root: Path, masks, quantized, captured, config, options: ExportOptions, acc_bits: int) -> dict:
    files, layers = [], []
    bits, word_bits, lanes = options.value_bits, options.word_bits, options.lane_order

    def add(path: Path, kind: str, layer: str, fmt: str, **extra) -> None:
        files.append({"path": path.name, "kind": kind, "layer": layer, "format": fmt, **extra,
                      "sha256": _sha256(path)})  # fmt: skip

    def add_packed(stem: str, kind: str, layer: str, values: np.ndarray, value_bits: int, words_of: int) -> None:
        words = pack_words(values, value_bits, words_of, lanes)
        meta = {"dtype": f"int{value_bits}", "count": int(values.size), "value_bits": value_bits,
                "word_bits": words_of, "values_per_word": words_of // value_bits, "lane_order": lanes}  # fmt: skip
        comment = f"{layer} {kind}: {values.size} x int{value_bits}, {words_of // value_bits} per word, {lanes}"
        add(write_hex(root / f"{stem}.hex", words, words_of, comment), kind, layer, "hex", **meta)
        if kind == "weights":
            add(write_coe(root / f"{stem}.coe", words, words_of, comment), kind, layer, "coe", **meta)

    for name, mask in tqdm(masks.items(), desc="export", unit="layer", disable=not options.progress,
                           file=sys.stderr):  # fmt: skip
        stem = name.removesuffix(".weight").replace(".", "_")
        q = quantized[name]
        block = (mask.block.rows, mask.block.cols)
        pattern = mask.group_mask.numpy().astype(np.uint8)
        np.save(root / f"{stem}_pattern.npy", pattern)
        add(root / f"{stem}_pattern.npy", "pattern", name, "npy", dtype="uint8", shape=list(pattern.shape))
        _heatmap(root / f"{stem}_pattern.png", pattern, name, mask.group_shape, block)
        add(root / f"{stem}_pattern.png", "pattern-heatmap", name, "png")
        block_keep = mask.block_mask().numpy()
        row_ptr, col_idx, values = _bcsr(q.values, block_keep, block)
        for part, array in (("row_ptr", row_ptr), ("col_idx", col_idx), ("values", values.astype(np.int64))):
            np.save(root / f"{stem}_bcsr_{part}.npy", array)
            add(root / f"{stem}_bcsr_{part}.npy", f"bcsr-{part}", name, "npy", dtype="int64", shape=list(array.shape))
        add_packed(f"{stem}_weights", "weights", name, values.ravel(), bits, word_bits)
        np.save(root / f"{stem}_scales.npy", q.scales)
        add(root / f"{stem}_scales.npy", "weight-scales", name, "npy", dtype="float64", shape=list(q.scales.shape))
        guard = f"BSP_{stem.upper()}_H"
        upper = stem.upper()
        write_c_header(root / f"{stem}.h", guard, {
            f"{stem}_row_ptr": (row_ptr, 32), f"{stem}_col_idx": (col_idx, 32), f"{stem}_values": (values, bits),
        }, {f"{upper}_OUT_FEATURES": mask.weight_shape[0], f"{upper}_IN_FEATURES": mask.weight_shape[1],
            f"{upper}_BLOCK_ROWS": block[0], f"{upper}_BLOCK_COLS": block[1],
            f"{upper}_KEPT_BLOCKS": len(col_idx)})  # fmt: skip
        add(root / f"{stem}.h", "c-header", name, "c-header")

        x_float, y_float = captured[name]
        xq = quantize(x_float, bits, "tensor")
        y_int = xq.values @ q.values.T
        limit = 2 ** (acc_bits - 1)
        overflow = int(np.count_nonzero((y_int >= limit) | (y_int < -limit)))
        if overflow:
            raise ValueError(f"{name}: {overflow} golden outputs overflow the {acc_bits}-bit accumulator")
        add_packed(f"{stem}_x", "golden-input", name, xq.values, bits, word_bits)
        add_packed(f"{stem}_y_int", "golden-output-int", name, y_int, acc_bits, acc_bits)
        for part, array in (("x_float", x_float), ("y_float", y_float)):
            np.save(root / f"{stem}_{part}.npy", array)
            add(root / f"{stem}_{part}.npy", f"golden-{part}", name, "npy", dtype="float64", shape=list(array.shape))
        op = Gemm(name, M=x_float.shape[0], K=mask.weight_shape[1], N=mask.weight_shape[0],
                  mask=mask.dense().numpy(), block=block)  # fmt: skip
        _tile_stream(root / f"{stem}_tiles.csv", op, config)
        add(root / f"{stem}_tiles.csv", "tile-stream", name, "csv")
        scale_mode = options.scale_mode if options.frac_bits is None else f"fixed-point frac_bits={options.frac_bits}"
        kept_weights = q.values * mask.dense().numpy()
        array = _write_array(root, stem, name, kept_weights, block_keep, block, xq.values, config, bits, add)
        layers.append({**array, "name": name, "weight_shape": list(mask.weight_shape), "block": str(mask.block),
                       "granularity": mask.granularity.value, "scale_mode": scale_mode,
                       "weight_scales": q.scales.tolist(), "input_scale": float(xq.scales[0]),
                       "kept_blocks": len(col_idx), "total_blocks": int(block_keep.size),
                       "tokens": int(x_float.shape[0])})  # fmt: skip
    return {"version": 1, "dataflow": config.pe_array.dataflow.value, "value_bits": bits, "word_bits": word_bits,
            "lane_order": lanes, "acc_bits": acc_bits, "sample_text": options.sample_text, "layers": layers,
            "files": files, "model": "", "config": ""}  # fmt: skip
