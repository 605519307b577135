"""RTL export round trips: every file is parsed back and checked against independent truth."""

import hashlib
import json
import shutil
import subprocess

import jsonschema
import numpy as np
import pytest
import scipy.sparse
import torch
from conftest import tiny_classifier
from transformers import BertTokenizer

from bsp_common.outputs import MARKER_FILENAME
from hwsim.export import (
    ExportOptions,
    QuantErrorWarning,
    export_model,
    load_export,
    load_schema,
    pack_words,
    quantize,
    quantize_multiplier,
    read_c_array,
    read_coe,
    read_hex,
    requantize,
    unpack_words,
)
from pruning import BlockPruner, PruneSettings, load_pruned, save_pruned

WORDS = ["the", "film", "was", "good", "bad", "a", "ride", "from", "start", "to", "finish", "surprisingly"]


def prune_and_save(root, block: str, granularity: str):
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizer(str(vocab))
    model = tiny_classifier("bert")
    settings = PruneSettings(block=block, granularity=granularity, method="score", target_sparsity=0.6)
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    pruner.prune()
    return save_pruned(root / "model", model, pruner.finalize(), settings, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory):
    return prune_and_save(tmp_path_factory.mktemp("pruned"), "8x4", "column")


@pytest.fixture(scope="module")
def block_pruned_dir(tmp_path_factory):
    return prune_and_save(tmp_path_factory.mktemp("block-pruned"), "8x8", "block")


@pytest.fixture(scope="module")
def exported(pruned_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rtl") / "rtl"
    options = ExportOptions(word_bits=32, value_bits=8, lane_order="msb-first", scale_mode="block-row")
    return export_model(pruned_dir, "asic-16x16-int8", out, options)


def manifest_of(exported):
    return json.loads((exported / "manifest.json").read_text())


def test_manifest_validates_and_checksums_match(exported):
    manifest = manifest_of(exported)
    jsonschema.validate(manifest, load_schema())
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()}
    assert listed == on_disk - {"manifest.json", "manifest.sha256", MARKER_FILENAME}
    for entry in manifest["files"]:
        data = (exported / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    assert len(manifest["layers"]) == 12
    assert {layer["dir"] for layer in manifest["layers"]} == {p.name for p in exported.iterdir() if p.is_dir()}
    assert json.loads((exported / "manifest.schema.json").read_text()) == load_schema()


def test_readme_describes_every_file_kind_and_layer(exported):
    readme = (exported / "README.md").read_text()
    manifest = manifest_of(exported)
    kinds = {item["const"]: item["description"] for item in load_schema()["$defs"]["kind"]["oneOf"]}
    first = manifest["layers"][0]["dir"]
    for entry in manifest["files"]:
        if entry["path"].startswith(first + "/"):
            assert f"`{entry['path'].split('/', 1)[1]}`" in readme and kinds[entry["kind"]] in readme
    for layer in manifest["layers"]:
        assert f"`{layer['dir']}/`" in readme
    assert "msb-first" in readme and "MultiplyByQuantizedMultiplier" in readme


def rebuild(exported, layer_entry, values):
    """Dense int matrix from BCSR pointers + a flat stream of block values."""
    stem = layer_entry["dir"]
    row_ptr = np.load(exported / stem / "bcsr_row_ptr.npy")
    col_idx = np.load(exported / stem / "bcsr_col_idx.npy")
    br, bc = (int(x) for x in layer_entry["block"].split("x"))
    n, k = layer_entry["weight_shape"]
    blocks = values.reshape(-1, br, bc)
    dense = np.zeros(((len(row_ptr) - 1) * br, -(-k // bc) * bc), dtype=np.int64)
    for block_row in range(len(row_ptr) - 1):
        for j in range(row_ptr[block_row], row_ptr[block_row + 1]):
            c = col_idx[j]
            dense[block_row * br : (block_row + 1) * br, c * bc : (c + 1) * bc] = blocks[j]
    return dense[:n, :k]


def test_every_weight_format_rebuilds_the_masked_quantized_matrix(exported, pruned_dir):
    model, masks, _ = load_pruned(pruned_dir, attach=False)
    manifest = manifest_of(exported)
    for layer in manifest["layers"]:
        name = layer["name"]
        stem = layer["dir"]
        weight = model.get_submodule(name.removesuffix(".weight")).weight.detach().double().numpy()
        br = int(layer["block"].split("x")[0])
        # independent truth: per block-row max-abs symmetric int8 of the pruned weights
        expected = np.zeros_like(weight, dtype=np.int64)
        for r0 in range(0, weight.shape[0], br):
            rows = weight[r0 : r0 + br]
            scale = np.abs(rows).max() / 127 if np.abs(rows).max() > 0 else 1.0
            expected[r0 : r0 + br] = np.clip(np.rint(rows / scale), -127, 127)
        assert np.all(expected[~masks[name].dense().numpy()] == 0)
        entry = next(f for f in manifest["files"] if f["path"] == f"{stem}/weights.hex")
        count = entry["count"]
        from_hex = unpack_words(read_hex(exported / stem / "weights.hex"), count, 8, 32, "msb-first")
        from_coe = unpack_words(read_coe(exported / stem / "weights.coe"), count, 8, 32, "msb-first")
        from_npy = np.load(exported / stem / "bcsr_values.npy")
        assert from_npy.dtype == np.int8  # stored at the value width
        from_header = read_c_array(exported / stem / "weights.h", f"{stem}_values")
        for values in (from_hex, from_coe, from_npy.ravel(), from_header):
            np.testing.assert_array_equal(rebuild(exported, layer, values), expected)
        # the index as memory words (hex and coe) and the block bitmap say the same as the .npy index
        for part in ("row_ptr", "col_idx"):
            words = read_hex(exported / stem / f"{part}.hex")
            np.testing.assert_array_equal(words, np.load(exported / stem / f"bcsr_{part}.npy"))
            assert read_coe(exported / stem / f"{part}.coe") == read_hex(exported / stem / f"{part}.hex")
        keep = masks[name].block_mask().numpy()
        bitmap = read_hex(exported / stem / "block_bitmap.hex")
        assert [[bool(word >> c & 1) for c in range(keep.shape[1])] for word in bitmap] == keep.tolist()
        scales = np.load(exported / stem / "scales.npy")
        assert np.allclose(
            np.repeat(scales, br)[: weight.shape[0], None] * expected, weight, atol=scales.max() / 2 + 1e-12
        )


def test_bcsr_times_dense_equals_dense_product(exported):
    layer = manifest_of(exported)["layers"][4]
    stem = layer["dir"]
    row_ptr = np.load(exported / stem / "bcsr_row_ptr.npy")
    col_idx = np.load(exported / stem / "bcsr_col_idx.npy")
    values = np.load(exported / stem / "bcsr_values.npy").astype(np.int64)
    br, bc = values.shape[1:]
    n_blocks_cols = -(-layer["weight_shape"][1] // bc)
    bsr = scipy.sparse.bsr_array((values, col_idx, row_ptr), shape=((len(row_ptr) - 1) * br, n_blocks_cols * bc))
    x = np.random.default_rng(0).integers(-5, 5, size=(bsr.shape[1], 3))
    dense = rebuild(exported, layer, values.ravel())
    padded = np.zeros(bsr.shape, dtype=np.int64)
    padded[: dense.shape[0], : dense.shape[1]] = dense
    np.testing.assert_array_equal(bsr @ x, padded @ x)


def test_golden_vectors_equal_a_fresh_torch_computation(exported, pruned_dir):
    model, _, _ = load_pruned(pruned_dir, attach=False)
    model.eval()
    tokenizer = BertTokenizer.from_pretrained(pruned_dir)
    manifest = manifest_of(exported)
    captured = {}
    hooks = [model.get_submodule(layer["name"].removesuffix(".weight")).register_forward_hook(
        lambda m, i, o, name=layer["name"]: captured.__setitem__(name, (i[0][0].double(), o[0].double())))
        for layer in manifest["layers"]]  # fmt: skip
    with torch.no_grad():
        model(**tokenizer(manifest["sample_text"], return_tensors="pt"))
    for hook in hooks:
        hook.remove()
    for layer in manifest["layers"]:
        name, stem = layer["name"], layer["dir"]
        x, y = captured[name]
        np.testing.assert_allclose(np.load(exported / stem / "y_float.npy"), y.numpy(), rtol=1e-6, atol=1e-6)
        x_scale = x.abs().max().item() / 127
        x_q = torch.clamp(torch.round(x / x_scale), -127, 127).long()
        tokens, k = x.shape
        x_hex = unpack_words(read_hex(exported / stem / "x.hex"), tokens * k, 8, 32, "msb-first").reshape(tokens, k)
        np.testing.assert_array_equal(x_hex, x_q.numpy())
        x_values = unpack_words(read_hex(exported / stem / "x_values.hex"), tokens * k, 8, 8).reshape(tokens, k)
        np.testing.assert_array_equal(x_values, x_q.numpy())
        w_q = np.load(exported / stem / "bcsr_values.npy").astype(np.int64)  # via rebuild for the dense matrix
        dense_w = torch.tensor(rebuild(exported, layer, w_q.ravel()))
        expected = (x_q @ dense_w.T).numpy()
        y_int = unpack_words(read_hex(exported / stem / "y_int.hex"), expected.size, 32, 32, "msb-first")
        np.testing.assert_array_equal(y_int.reshape(expected.shape), expected)
        # the bias in accumulator units: the float layer output again, to within the quantisation error
        bias = model.get_submodule(name.removesuffix(".weight")).bias.detach().double().numpy()
        np.testing.assert_array_equal(np.load(exported / stem / "bias.npy"), bias)
        w_scale = np.repeat(layer["weight_scales"], 8)[: expected.shape[1]]
        bias_int = unpack_words(read_hex(exported / stem / "bias_int.hex"), expected.shape[1], 32, 32)
        np.testing.assert_array_equal(bias_int, np.rint(bias / (x_scale * w_scale)))
        dequantized = (expected + bias_int) * x_scale * w_scale
        error = np.linalg.norm(dequantized - y.numpy()) / np.linalg.norm(y.numpy())
        assert error == pytest.approx(layer["quant_error"]) and error < 0.05


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_c_header_compiles_and_prints_its_arrays(exported, tmp_path):
    layer = manifest_of(exported)["layers"][0]
    stem = layer["dir"]
    upper = stem.upper()
    program = tmp_path / "dump.c"
    program.write_text(f"""#include <stdio.h>
#include "{exported / stem / "weights.h"}"
int main(void) {{
  for (int i = 0; i < {upper}_KEPT_BLOCKS * {upper}_BLOCK_ROWS * {upper}_BLOCK_COLS; i++)
    printf("%d\\n", {stem}_values[i]);
  return 0;
}}
""")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-o", str(tmp_path / "dump"), str(program)], check=True)
    printed = subprocess.run([str(tmp_path / "dump")], capture_output=True, text=True, check=True).stdout.split()
    np.testing.assert_array_equal(
        np.array(printed, dtype=np.int64), np.load(exported / stem / "bcsr_values.npy").ravel()
    )


def test_tile_stream_covers_every_kept_weight(exported, pruned_dir):
    import csv

    _, masks, _ = load_pruned(pruned_dir, attach=False)
    layer = manifest_of(exported)["layers"][5]
    stem = layer["dir"]
    covered = np.zeros(layer["weight_shape"], dtype=bool)
    previous_stream_end = previous_end = 0
    with (exported / stem / "tiles.csv").open() as handle:
        for row in csv.DictReader(handle):
            n0, n = int(row["n_first"]), int(row["n_count"])
            ks = [int(k) for k in row["k_indices"].split()]
            covered[n0 : n0 + n][:, ks] = True
            start, stream_end, end = int(row["start_cycle"]), int(row["stream_end_cycle"]), int(row["end_cycle"])
            # one stream port: streams never overlap; results are done in fold order, after their stream
            assert start >= previous_stream_end and end > stream_end > start and end >= previous_end
            previous_stream_end, previous_end = stream_end, end
    assert np.all(covered[masks[layer["name"]].dense().numpy()])


@pytest.mark.parametrize("lane_order", ["lsb-first", "msb-first"])
@pytest.mark.parametrize(("value_bits", "word_bits"), [(4, 16), (8, 8), (8, 64), (16, 48)])
def test_pack_unpack_round_trip(lane_order, value_bits, word_bits):
    rng = np.random.default_rng(value_bits + word_bits)
    values = rng.integers(-(2 ** (value_bits - 1)), 2 ** (value_bits - 1), size=37)
    words = pack_words(values, value_bits, word_bits, lane_order)
    assert len(words) == -(-37 // (word_bits // value_bits))
    np.testing.assert_array_equal(unpack_words(words, 37, value_bits, word_bits, lane_order), values)
    assert pack_words([1, -1], 8, 16, "lsb-first") == [0xFF01]
    assert pack_words([1, -1], 8, 16, "msb-first") == [0x01FF]


def test_bad_inputs_are_clear_and_leave_nothing_behind(pruned_dir, tmp_path):
    out = tmp_path / "rtl"
    with pytest.raises(ValueError, match="matches no pruned layer"):
        export_model(pruned_dir, "asic-16x16-int8", out, ExportOptions(layers="nonexistent"))
    with pytest.raises(ValueError, match="word_bits: 12 is not a positive multiple of value_bits=8"):
        export_model(pruned_dir, "asic-16x16-int8", out, ExportOptions(word_bits=12))
    with pytest.raises(
        ValueError, match=r"overflow signed 8-bit with frac_bits=12 .*intermediate\.dense\.weight: \d+ of"
    ):
        export_model(pruned_dir, "asic-16x16-int8", out, ExportOptions(frac_bits=12))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rtl")]
    with pytest.warns(QuantErrorWarning, match=r"layer\.0\.attention\.self\.query\.weight \(\d+\.\d%\)"):
        saturated = export_model(
            pruned_dir,
            "asic-16x16-int8",
            out,
            ExportOptions(frac_bits=12, allow_saturation=True, layers=r"layer\.0\.attention\.self\.query"),
        )
    assert len(manifest_of(saturated)["layers"]) == 1


def test_quantize_counts_saturation():
    q = quantize(np.array([[0.5, -2.0, 3.0]]), bits=4, frac_bits=2)  # scale 0.25: 2, -8 -> -7, 12 -> 7
    assert q.values.tolist() == [[2, -7, 7]] and q.saturated == 2


def expected_int_weights(weight: np.ndarray, scales: np.ndarray, rows_per_scale: int, bits: int = 8) -> np.ndarray:
    """Independent symmetric quantisation of a (pruned) float weight with the export's scales."""
    per_row = np.repeat(scales, rows_per_scale)[: weight.shape[0], None]
    qmax = 2 ** (bits - 1) - 1
    return np.clip(np.rint(weight / per_row), -qmax, qmax).astype(np.int64)


def test_load_export_rebuilds_every_layer_from_the_files_alone(exported, pruned_dir):
    model, masks, _ = load_pruned(pruned_dir, attach=False)
    export = load_export(exported)
    assert set(export.layers) == set(masks)
    for name, layer in export.layers.items():
        module = model.get_submodule(name.removesuffix(".weight"))
        weight = module.weight.detach().double().numpy()
        br = masks[name].block.rows
        scales = layer.weight_scales[::br]
        np.testing.assert_array_equal(layer.weight_int, expected_int_weights(weight, scales, br))
        np.testing.assert_array_equal(layer.block_keep, masks[name].block_mask().numpy())
        np.testing.assert_array_equal(layer.y_int, layer.x_int @ layer.weight_int.T)
        np.testing.assert_array_equal(layer.bias, module.bias.detach().double().numpy())
        assert np.abs(layer.weight_float() - weight).max() <= scales.max() / 2 + 1e-12
        # requantisation: the golden is the integer pipeline applied to the files' own numbers
        multiplier, shift = quantize_multiplier(layer.input_scale * layer.weight_scales / layer.output_scale)
        np.testing.assert_array_equal(layer.multiplier, multiplier)
        np.testing.assert_array_equal(layer.shift, shift)
        np.testing.assert_array_equal(layer.y_requant, requantize(layer.y_int + layer.bias_int, multiplier, shift, 8))
        entry = next(item for item in export.manifest["layers"] if item["name"] == name)
        error = np.linalg.norm(layer.y_requant * layer.output_scale - layer.y_float) / np.linalg.norm(layer.y_float)
        assert error == pytest.approx(entry["requant_error"]) and error < 0.05


def test_load_export_refuses_changed_or_foreign_directories(exported, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    layer_dir = manifest_of(copy)["layers"][0]["dir"]
    words = (copy / layer_dir / "y_int.hex").read_text().splitlines()
    words[-1] = f"{(int(words[-1], 16) + 1) % 2**32:08x}"
    (copy / layer_dir / "y_int.hex").write_text("\n".join(words) + "\n")
    with pytest.raises(ValueError, match=rf"{layer_dir}/y_int\.hex does not match its SHA-256"):
        load_export(copy)
    assert load_export(copy, verify=False).layers  # read anyway when asked
    with pytest.raises(FileNotFoundError, match=r"no manifest\.json"):
        load_export(tmp_path)


def test_compacted_groups_hold_exactly_the_kept_columns(exported, pruned_dir):
    _, masks, _ = load_pruned(pruned_dir, attach=False)
    export = load_export(exported)
    for entry in manifest_of(exported)["layers"]:
        stem, mask = entry["dir"], masks[entry["name"]]
        gr, gc = entry["group_shape"]
        assert (gr, gc) == (8, 1)  # column granularity of 8x4 blocks: one block column of 8 rows
        row_ptr = np.load(exported / stem / "group_row_ptr.npy")
        col_idx = np.load(exported / stem / "group_col_idx.npy")
        values = np.load(exported / stem / "group_values.npy").astype(np.int64)
        rebuilt = np.zeros(entry["weight_shape"], dtype=np.int64)
        for group_row in range(len(row_ptr) - 1):
            for j in range(row_ptr[group_row], row_ptr[group_row + 1]):
                rebuilt[group_row * gr : (group_row + 1) * gr, col_idx[j] * gc : (col_idx[j] + 1) * gc] = values[j]
        np.testing.assert_array_equal(rebuilt, export.layers[entry["name"]].weight_int)
        assert len(col_idx) == int(mask.group_mask.sum())
        storage = entry["storage"]
        kept = int(mask.group_mask.sum())
        assert storage["compact_bytes"] == kept * gr * gc + 4 * (len(row_ptr) + kept)
        assert storage["compact_bytes"] < storage["bcsr_bytes"]  # the sparsity shows in bytes
        assert storage["dense_bytes"] == entry["weight_shape"][0] * entry["weight_shape"][1]


@pytest.fixture(scope="module")
def ws_export(block_pruned_dir, tmp_path_factory):
    """Block-granular export on the ws preset (32 rows: output.dense's K=64 splits into two reduction folds)."""
    out = tmp_path_factory.mktemp("ws") / "rtl"
    options = ExportOptions(progress=False, psums=True, layers=r"layer\.0\.(output|intermediate)\.dense")
    return export_model(block_pruned_dir, "asic-32x32-int8", out, options)


def folds_of(directory):
    import csv

    with (directory / "tiles.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_partial_sums_add_up_to_the_golden_outputs(ws_export):
    export = load_export(ws_export)
    for entry in manifest_of(ws_export)["layers"]:
        layer = export.layers[entry["name"]]
        psums = unpack_words(read_hex(ws_export / entry["dir"] / "psums.hex"), entry["psums"], 32, 32)
        total, at, reductions = np.zeros_like(layer.y_int), 0, set()
        for fold in folds_of(ws_export / entry["dir"]):
            m0, m, n0, n = (int(fold[key]) for key in ("m_first", "m_count", "n_first", "n_count"))
            ks = [int(k) for k in fold["k_indices"].split()]
            part = psums[at : at + m * n].reshape(m, n)
            # independent truth: the fold's own slice of the product
            np.testing.assert_array_equal(part, layer.x_int[m0 : m0 + m, ks] @ layer.weight_int[n0 : n0 + n, ks].T)
            total[m0 : m0 + m, n0 : n0 + n] += part
            at += m * n
            reductions.add(fold["k_indices"])
        assert at == entry["psums"]
        np.testing.assert_array_equal(total, layer.y_int)
    assert any(len(folds_of(ws_export / entry["dir"])) > 1 for entry in manifest_of(ws_export)["layers"])


def test_every_fold_points_at_its_lines_in_the_weight_stream(ws_export):
    export = load_export(ws_export)
    for entry in manifest_of(ws_export)["layers"]:
        weight = export.layers[entry["name"]].weight_int
        cols = entry["array"]["cols"]
        stream = read_hex(ws_export / entry["dir"] / "w_stream.hex")
        assert len(stream) == entry["array"]["stream_lines"]
        for fold in folds_of(ws_export / entry["dir"]):
            n0, line = int(fold["n_first"]), int(fold["w_stream_line"])
            for offset, k in enumerate(int(k) for k in fold["k_indices"].split()):
                lanes = unpack_words([stream[line + offset]], cols, 8, 8 * cols)
                expected = np.zeros(cols, dtype=np.int64)
                expected[: min(cols, weight.shape[0] - n0)] = weight[n0 : n0 + cols, k]
                np.testing.assert_array_equal(lanes, expected)


def test_int4_is_warned_about_and_refused_on_request(pruned_dir, tmp_path):
    layers = r"layer\.0\.attention\.self\.(query|key)"
    with pytest.warns(QuantErrorWarning, match=r"int4 export: \d+ layers.*self\.(query|key)\.weight \(\d+\.\d%\)"):
        out = export_model(pruned_dir, "asic-16x16-int8", tmp_path / "int4",
                           ExportOptions(progress=False, value_bits=4, layers=layers))  # fmt: skip
    errors4 = [layer["quant_error"] for layer in manifest_of(out)["layers"]]
    values = np.load(out / manifest_of(out)["layers"][0]["dir"] / "bcsr_values.npy")
    assert values.dtype == np.int8 and np.abs(values).max() <= 7
    int8 = export_model(pruned_dir, "asic-16x16-int8", tmp_path / "int8", ExportOptions(progress=False, layers=layers))
    errors8 = [layer["quant_error"] for layer in manifest_of(int8)["layers"]]
    assert min(errors4) > 0.10 > 0.05 > max(errors8)
    with pytest.raises(ValueError, match=r"--max-quant-error: 2 layers exceed 5\.0% .* at int4: .*query\.weight \("):
        export_model(pruned_dir, "asic-16x16-int8", tmp_path / "refused",
                     ExportOptions(progress=False, value_bits=4, layers=layers, max_quant_error=0.05))  # fmt: skip
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"max_quant_error": -1}, r"max_quant_error: -1 is not a positive number"),
    ({"max_quant_error": float("nan")}, r"max_quant_error: nan"),
    ({"testbench": ("vhdl",)}, r"testbench: \('vhdl',\) -- allowed: a tuple of cocotb, sv"),
    ({"testbench": "cocotb"}, r"testbench: 'cocotb' -- allowed"),
])  # fmt: skip
def test_bad_export_options_name_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        ExportOptions(**options)


def test_refusals_before_any_work(pruned_dir, tmp_path):
    from hwsim.config import derive_config

    live = derive_config("asic-32x32-int8", {"microarch.edge_skew": "live"}, name="live-edges")
    with pytest.raises(ValueError, match=r"--testbench: live-edges: the reference RTL does not implement microarch"):
        export_model(pruned_dir, live, tmp_path / "tb", ExportOptions(testbench=("sv",)))
    with pytest.raises(ValueError, match=r"sample_text: \d+ tokens; the model takes at most \d+"):
        export_model(pruned_dir, "asic-16x16-int8", tmp_path / "long", ExportOptions(sample_text="the film " * 400))
    from bsp_cli import main

    assert main(["export", "--model", str(pruned_dir), "--config", "asic-16x16-int8", "--out", str(tmp_path / "e"),
                 "--sample", " "]) == 2  # an empty sample is refused, not replaced by the default sentence
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("which", ["ws", "os"])
def test_every_fold_finds_its_gathered_inputs_in_the_input_stream(which, ws_export, exported):
    """ws: one word per token with lane i = x[m, k_i]; os: one word per reduction line with lane i = x[m_i, k]."""
    directory = ws_export if which == "ws" else exported
    export = load_export(directory)
    for entry in manifest_of(directory)["layers"]:
        x = export.layers[entry["name"]].x_int
        rows = entry["array"]["rows"]
        stream = read_hex(directory / entry["dir"] / "x_stream.hex")
        used = 0
        for fold in folds_of(directory / entry["dir"]):
            m0, m = int(fold["m_first"]), int(fold["m_count"])
            ks = [int(k) for k in fold["k_indices"].split()]
            at = int(fold["x_stream_line"])
            count = m if which == "ws" else len(ks)
            words = [unpack_words([word], rows, 8, 8 * rows) for word in stream[at : at + count]]
            for t, lanes in enumerate(words):
                expected = x[m0 + t, ks] if which == "ws" else x[m0 : m0 + m, ks[t]]
                np.testing.assert_array_equal(lanes[: len(expected)], expected)
                assert not lanes[len(expected) :].any()
            used += len(words)
        assert used == len(stream)
