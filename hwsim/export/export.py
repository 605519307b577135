"""Export a pruned model's layers for RTL teams: an export directory an RTL testbench loads as it is.

``<out>/`` holds ``README.md`` (generated: every file of this export described), ``manifest.json`` (every
file with kind, word layout, bytes and SHA-256; validated against ``manifest.schema.json``, copied beside
it), and one directory per layer (module name with dots as underscores) with:

=================================  ===================================================================
``pattern.npy`` / ``.png``          keep bitmap at group resolution and its heatmap
``bcsr_{row_ptr,col_idx}.npy``      BCSR block index (int32); ``row_ptr/col_idx.hex|.coe`` the same as
                                    32-bit memory words; ``block_bitmap.hex|.coe`` one word per block row
``bcsr_values.npy``                 kept blocks ``[kept, br, bc]`` at the value width (int8 / int16;
                                    int4 in int8), ``weights.hex|.coe`` packed, ``weights.h`` C header
``scales.npy``, ``bias.npy``        weight scales and float bias; ``bias_int.hex`` in accumulator units
``x.hex``, ``x_values.hex``         golden int input (packed / one per word), ``x_float.npy``
``y_int.hex``, ``y_float.npy``      ``x_q @ w_q.T`` (the array's output), the float output with bias
``requant_{multiplier,shift}.hex``  gemmlowp/TFLite per-channel requantisation, ``y_requant.hex`` its golden
``tiles.csv``                       hwsim's fold order, cycle stamps and each fold's ``w_stream`` line
``w_stream.hex|.coe``               (ws/os) the array's weight stream (:mod:`hwsim.export.array_memories`)
``x_stream.hex``                    (ws/os) the inputs gathered per fold, as the array's row feeder takes them
``psums.hex``                       (``psums``) per-fold golden partial sums
``group_*.npy``                     (column/row granularity) the compacted form: kept groups + their index
=================================  ===================================================================

With ``testbench=("cocotb", "sv")`` it also writes ``rtl/`` (the reference array) and ``tb/``
(:mod:`hwsim.export.testbench`). :func:`hwsim.export.load_export` reads it all back. The export is written
to a temporary directory and renamed at the end: a failure leaves nothing half-written, and a directory
bsp did not write is never replaced (:mod:`bsp_common.outputs`).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bsp_common.outputs import atomic_output_dir, check_output_dir
from hwsim.config import AcceleratorConfig, load_config
from hwsim.export.formats import LANE_ORDERS
from hwsim.export.golden import LayerGolden, layer_golden
from hwsim.export.layer_files import FileList, LayerInput, write_layer
from hwsim.export.load import MANIFEST_DIGEST
from hwsim.export.quant import SCALE_MODES, SUPPORTED_BITS, quantize
from hwsim.export.readme import export_readme
from hwsim.export.testbench import TESTBENCHES, reference_rtl, write_testbenches
from pruning.layouts import compile_pattern

OUTPUT_KIND = "rtl-export"  # the bsp output marker kind of an export directory

__all__ = ["DEFAULT_SAMPLE", "QUANT_ERROR_WARNING", "ExportOptions", "QuantErrorWarning", "export_model", "load_schema"]

DEFAULT_SAMPLE = "the film was a surprisingly good ride from start to finish"
MAX_WORD_BITS = 1024  # widest memory word written (a 1024-bit AXI bus line)
QUANT_ERROR_WARNING = 0.10  # relative error against the float layer above which the export warns (int4 ~0.5)


class QuantErrorWarning(UserWarning):
    """Some exported layers' integer outputs are far from the float model's (the message names them)."""


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
    psums: bool = False  # per-fold golden partial sums (psums.hex)
    max_quant_error: float | None = None  # refuse when a layer's relative error is larger
    testbench: tuple[str, ...] = ()  # any of TESTBENCHES: "cocotb", "sv"

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
        if not isinstance(self.sample_text, str) or not self.sample_text.strip():
            raise ValueError("sample_text: must be a non-empty text")
        if self.max_quant_error is not None and not (
            isinstance(self.max_quant_error, int | float) and math.isfinite(self.max_quant_error)
            and self.max_quant_error > 0
        ):  # fmt: skip
            raise ValueError(f"max_quant_error: {self.max_quant_error!r} is not a positive number (e.g. 0.05 = 5 %)")
        unknown = [kind for kind in self.testbench if kind not in TESTBENCHES]
        if isinstance(self.testbench, str) or unknown:
            raise ValueError(f"testbench: {self.testbench!r} -- allowed: a tuple of {', '.join(TESTBENCHES)}")


def load_schema() -> dict:
    return json.loads(resources.files("hwsim.export").joinpath("manifest.schema.json").read_text())


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

    inputs = tokenizer(text, return_tensors="pt")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and inputs["input_ids"].shape[1] > limit:
        raise ValueError(f"sample_text: {inputs['input_ids'].shape[1]} tokens; the model takes at most {limit} "
                         "(max_position_embeddings)")  # fmt: skip
    vocab, top = getattr(model.config, "vocab_size", None), int(inputs["input_ids"].max())
    if vocab is not None and top >= vocab:
        raise ValueError(f"tokenizer: the sample text gives token id {top}, beyond the model's vocabulary of {vocab} "
                         "ids (config.vocab_size): the model directory's tokenizer is not this model's")  # fmt: skip
    seen, handles = {}, []
    for name in names:
        module = model.get_submodule(name.removesuffix(".weight"))

        def hook(module, inputs, output, name=name):
            seen[name] = (inputs[0][0].detach().double().numpy(), output[0].detach().double().numpy())

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _goldens(model, masks: dict, quantized: dict, captured: dict, acc_bits: int) -> dict[str, tuple]:
    """name -> (golden, bias, has_bias) for every exported layer."""
    out = {}
    for name in masks:
        module = model.get_submodule(name.removesuffix(".weight"))
        x_float, y_float = captured[name]
        has_bias = getattr(module, "bias", None) is not None
        bias = module.bias.detach().double().numpy() if has_bias else np.zeros(y_float.shape[1])
        out[name] = (layer_golden(name, quantized[name], x_float, y_float, bias, acc_bits), bias, has_bias)
    return out


def _check_quant_error(goldens: dict[str, LayerGolden], options: ExportOptions) -> None:
    """Refuse (``max_quant_error``) or warn about layers whose integer outputs are far from the float model's."""

    def listing(limit: float) -> list[str]:
        return [f"{name} ({golden.quant_error:.1%})" for name, golden in goldens.items() if golden.quant_error > limit]

    if options.max_quant_error is not None and (over := listing(options.max_quant_error)):
        raise ValueError(f"--max-quant-error: {len(over)} layers exceed {options.max_quant_error:.1%} relative error "
                         f"at int{options.value_bits}: {', '.join(over)}; use more value bits or --scale block-row")
    if over := listing(QUANT_ERROR_WARNING):
        warnings.warn(f"int{options.value_bits} export: {len(over)} layers' integer outputs differ from the float "
                      f"model's by more than {QUANT_ERROR_WARNING:.0%}: {', '.join(over[:6])}"
                      f"{' ...' if len(over) > 6 else ''} (quant_error in manifest.json)", QuantErrorWarning,
                      stacklevel=3)  # fmt: skip


def export_model(model_dir: str | Path, config: str | Path | AcceleratorConfig, out_dir: str | Path,
                 options: ExportOptions | None = None, overwrite: bool = False) -> Path:  # fmt: skip
    """Write the RTL export of a directory saved by ``pruning.save_pruned``; returns ``out_dir``.

    ``out_dir`` must be new, empty, or (``overwrite=True``) an earlier export, replaced atomically; it may
    not be or contain ``model_dir`` (see :mod:`bsp_common.outputs`). It is checked before any work, as are a
    testbench the reference RTL cannot run and (after quantising, before writing) ``max_quant_error``.
    """
    from transformers import AutoTokenizer

    from pruning.io import load_pruned

    options = options or ExportOptions()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    check_output_dir(out_dir, OUTPUT_KIND, overwrite=overwrite, inputs=[model_dir])
    config = load_config(config)
    rtl = reference_rtl(config)
    if options.testbench and not rtl["supported"]:
        raise ValueError(f"--testbench: {rtl['why_not']}")
    model, masks, _ = load_pruned(model_dir, attach=False)
    model.eval()
    masks = _select(masks, options.layers)
    if not (model_dir / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"export: {model_dir} has no tokenizer files; golden vectors need the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)

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
    goldens = _goldens(model, masks, quantized, captured, config.pe_array.acc_bits)
    _check_quant_error({name: golden for name, (golden, _, _) in goldens.items()}, options)
    scale_mode = options.scale_mode if options.frac_bits is None else f"fixed-point frac_bits={options.frac_bits}"

    with atomic_output_dir(out_dir, OUTPUT_KIND, overwrite=overwrite, inputs=[model_dir]) as tmp:
        files = FileList(tmp)
        layers = []
        for name, mask in tqdm(masks.items(), desc="export", unit="layer", disable=not options.progress,
                               file=sys.stderr):  # fmt: skip
            golden, bias, has_bias = goldens[name]
            layer = LayerInput(name, mask, quantized[name], golden, *captured[name], bias, has_bias)
            layers.append(write_layer(files, layer, config, options.value_bits, options.word_bits,
                                      options.lane_order, scale_mode, options.psums))  # fmt: skip
        if options.testbench:
            write_testbenches(files, [layer for layer in layers if "array" in layer], rtl, config.pe_array.acc_bits,
                              options.testbench)  # fmt: skip
        schema = load_schema()
        (tmp / "manifest.schema.json").write_text(json.dumps(schema, indent=1) + "\n")
        files.add(tmp / "manifest.schema.json", "schema", "", "json")
        manifest = {"version": 2, "model": str(model_dir), "config": config.name,
                    "dataflow": config.pe_array.dataflow.value, "value_bits": options.value_bits,
                    "word_bits": options.word_bits, "lane_order": options.lane_order,
                    "acc_bits": config.pe_array.acc_bits, "sample_text": options.sample_text,
                    "quant_error_warning": QUANT_ERROR_WARNING, "rtl": rtl, "testbench": list(options.testbench),
                    "layers": layers, "files": files.entries}  # fmt: skip
        (tmp / "README.md").write_text(export_readme(manifest, schema))
        files.add(tmp / "README.md", "readme", "", "markdown")
        import jsonschema

        jsonschema.validate(manifest, schema)
        text = json.dumps(manifest, indent=1)
        (tmp / "manifest.json").write_text(text)
        # the manifest's own digest (`sha256sum -c manifest.sha256`): an edited field is named on load
        digest = hashlib.sha256(text.encode()).hexdigest()
        (tmp / MANIFEST_DIGEST).write_text(f"{digest}  manifest.json\n")
    return out_dir
