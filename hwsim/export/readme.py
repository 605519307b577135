"""The ``README.md`` of an export directory, generated from its manifest and the manifest's JSON Schema:
what every file holds (the schema's ``$defs.kind`` descriptions), the layers with their storage and
quantisation error, the conventions (orientation, word packing, lane order), and how to run the testbenches.
"""

from __future__ import annotations

from hwsim.export.layer_files import TILE_COLUMNS

__all__ = ["export_readme", "size_text"]


def _kinds(schema: dict) -> dict[str, str]:
    return {item["const"]: item["description"] for item in schema["$defs"]["kind"]["oneOf"]}


def _layout(entry: dict) -> str:
    if "values_per_word" not in entry:
        if "word_bits" in entry:
            return f"{entry['word_bits']}-bit words"
        return entry.get("dtype", "") + (f" {entry['shape']}" if "shape" in entry else "")
    lanes = f", {entry['lane_order']}" if entry["values_per_word"] > 1 else ""
    return f"{entry['word_bits']}-bit words, {entry['values_per_word']} x int{entry['value_bits']}{lanes}"


def size_text(count: int) -> str:
    """Bytes as KiB or MiB for people (``2.34 MiB``)."""
    return f"{count / 2**20:.2f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"


def export_readme(manifest: dict, schema: dict) -> str:
    """Markdown describing the export of ``manifest`` (its ``files`` as listed so far)."""
    kinds = _kinds(schema)
    layers, files, rtl = manifest["layers"], manifest["files"], manifest["rtl"]
    bits, acc = manifest["value_bits"], manifest["acc_bits"]
    lines = [
        f"# RTL export: `{manifest['model']}` on `{manifest['config']}`",
        "",
        f"Written by `bsp export` (bsp-codesign), manifest format version {manifest['version']}. Every file is listed "
        "in `manifest.json` with its kind, word layout, size and SHA-256; `manifest.schema.json` describes every "
        "field; `manifest.sha256` holds the manifest's own digest (`sha256sum -c manifest.sha256`). Each layer has its "
        "own directory.",
        "",
        "## Conventions",
        "",
        f"- A layer computes `y = x @ W.T + b` with `W[N, K]` (`N` output features, `K` input features), `x[M, K]` "
        f"(`M` = {layers[0]['tokens'] if layers else 0} tokens of the sample text below).",
        f"- Weights and inputs are signed int{bits} (two's complement), symmetric: `W ~= w_q * weight_scale`, "
        f"`x ~= x_q * input_scale`; accumulators are {acc}-bit.",
        "- `.hex` files are Verilog `$readmemh` images: one word per line, fixed-width hex, `//` comment header. "
        "`.coe` files are Xilinx block-memory images (radix 16) of the same words.",
        f"- Packed files (`weights`, `x`) hold {manifest['word_bits'] // bits} values per {manifest['word_bits']}-bit "
        f"word, first value in the {'least' if manifest['lane_order'] == 'lsb-first' else 'most'} significant bits "
        f"({manifest['lane_order']}); a last partial word is zero-padded.",
        "- Blocks are stored `[out][in]`, row-major inside a block, in BCSR order (block rows ascending, kept blocks "
        "ascending by block column). `w_stream.hex` is the array's order: already transposed, one word per reduction "
        "line with one lane per output feature.",
        "- Requantisation follows gemmlowp / TensorFlow Lite (`MultiplyByQuantizedMultiplier`): "
        "`y_requant = clamp(SaturatingRoundingDoublingHighMul((y_int + bias_int) << max(shift, 0), multiplier) "
        f"rounding>> max(-shift, 0), -2^{bits - 1}, 2^{bits - 1}-1)`, zero point 0, "
        "`y ~= y_requant * output_scale`.",
        f"- Sample text: \"{manifest['sample_text']}\".",
        "",
        "## Layers",
        "",
        "| directory | N x K | block | kept blocks | stored (BCSR / compacted / dense) | quant error | requant error |",
        "|---|---|---|---|---|---|---|",
    ]
    for layer in layers:
        storage = layer["storage"]
        compact = size_text(storage["compact_bytes"]) if storage["compact_bytes"] is not None else "-"
        requant = f"{layer['requant_error']:.2%}" if layer["requant_error"] is not None else "-"
        shape = f"{layer['weight_shape'][0]} x {layer['weight_shape'][1]}"
        lines.append(f"| `{layer['dir']}/` | {shape} | {layer['block']} {layer['granularity']} | "
                     f"{layer['kept_blocks']} / {layer['total_blocks']} | "
                     f"{size_text(storage['bcsr_bytes'])} / {compact} / {size_text(storage['dense_bytes'])} | "
                     f"{layer['quant_error']:.2%} | {requant} |")  # fmt: skip
    lines += ["", "Errors are relative (Frobenius) against the float layer output `y_float.npy`: `quant error` for "
              "`(y_int + bias_int) * input_scale * weight_scale`, `requant error` for `y_requant * output_scale`.", ""]
    if layers:
        first = layers[0]
        lines += [f"## Files in every layer directory (sizes of `{first['dir']}/`)", "",
                  "| file | kind | layout | bytes | what it holds |", "|---|---|---|---|---|"]
        for entry in files:
            if entry["layer"] == first["name"] and entry["path"].startswith(first["dir"] + "/"):
                name = entry["path"].split("/", 1)[1]
                lines.append(f"| `{name}` | {entry['kind']} | {_layout(entry)} | {entry['bytes']:,} | "
                             f"{kinds[entry['kind']]} |")  # fmt: skip
        lines += ["", "`tiles.csv` columns:", ""]
        lines += [f"- `{column}`: {text}" for column, text in TILE_COLUMNS.items()]
        lines.append("")
    lines += ["## Array memories and the reference RTL", ""]
    if rtl["supported"]:
        params = ", ".join(f"{key}={value}" for key, value in rtl["parameters"].items())
        lines += [f"The config's array is `{rtl['top']}` with Verilog parameters {params}; each layer's `array` entry "
                  "in the manifest adds its shape (M, K, N, BR, BC, NNZ, WLINES, VB), its memory files and hwsim's "
                  "`compute_cycles`, the count the RTL reproduces. The array loads `row_ptr.hex`, `col_idx.hex`, "
                  "`w_stream.hex` and `x_values.hex` with `$readmemh` as they are, and writes `y_int.hex`'s layout.",
                  ""]  # fmt: skip
        if any(layer["granularity"] != "block" for layer in layers):
            lines += ["With column/row granularity the array still walks whole kept blocks (lines emptied inside a "
                      "kept block stream zeros), so `compute_cycles` is hwsim's count for the block index, while "
                      "`tiles.csv` is hwsim's compacted schedule for an array that also skips those lines "
                      "(`w_stream_line` is then empty where the two differ).", ""]  # fmt: skip
    else:
        lines += [f"The reference RTL does not implement this config: {rtl['why_not']}.", ""]
    if manifest["testbench"]:
        lines += ["## Testbenches", ""]
        if "cocotb" in manifest["testbench"]:
            lines += ["cocotb 2.1 with Icarus Verilog (`pip install cocotb==2.1.0`, `apt-get install iverilog`):", "",
                      "```bash", "python tb/run_cocotb.py            # every layer; --layer DIR for one", "```", ""]
        if "sv" in manifest["testbench"]:
            lines += ["Plain SystemVerilog benches, one per layer (`tb/<layer>_tb.sv`), with Icarus Verilog:", "",
                      "```bash", "bash tb/run_sv.sh", "```", ""]
        lines += ["Each prints `PASS <layer>` when the array's outputs equal `y_int.hex` word for word and its cycle "
                  "count equals hwsim's `compute_cycles`, and exits non-zero if any layer fails. `rtl/` holds the "
                  "reference array they build.", ""]  # fmt: skip
    lines += ["## Reading it back", "", "```python", "from hwsim.export import load_export   # bsp-codesign",
              "export = load_export(\".\")              # dense int weights, bias, scales, golden vectors per layer",
              "```", ""]
    return "\n".join(lines)
