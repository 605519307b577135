"""A tampered export is refused by load_export in one ExportError naming the file and field: it never reads
outside the export, allocates by a forged size, hangs or crashes (issue 38's cases, one row each)."""

import contextlib
import hashlib
import json
import os
import random
import shutil

import numpy as np
import pytest
from test_export import prune_and_save

from hwsim.export import ExportOptions, export_model, load_export
from hwsim.export.load import MANIFEST_DIGEST, ExportError

LAYER = "bert.encoder.layer.0.intermediate.dense.weight"  # [64, 32]: not square, so shapes can be confused


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    pruned = prune_and_save(tmp_path_factory.mktemp("pruned"), "8x8", "block")
    out = tmp_path_factory.mktemp("rtl") / "rtl"
    return export_model(pruned, "asic-16x16-int8", out, ExportOptions(word_bits=32, value_bits=8))


@pytest.fixture
def copy(export_dir, tmp_path):
    target = tmp_path / "export"
    shutil.copytree(export_dir, target)
    (tmp_path / "outside.txt").write_text("not the export's\n")
    return target


def manifest(directory):
    return json.loads((directory / "manifest.json").read_text())


def forge(directory, data):
    """Write a manifest *and* its digest: a consistent forgery, so the check under test is the one refusing."""
    text = json.dumps(data, indent=1)
    (directory / "manifest.json").write_text(text)
    (directory / MANIFEST_DIGEST).write_text(f"{hashlib.sha256(text.encode()).hexdigest()}  manifest.json\n")


def layer_entry(data, name=LAYER):
    return next(entry for entry in data["layers"] if entry["name"] == name)


def file_entry(data, name, layer=LAYER):
    directory = layer_entry(data, layer)["dir"]
    return next(entry for entry in data["files"] if entry["path"] == f"{directory}/{name}")


def rehash(directory, data, name):
    """Record a tampered file's new size and SHA-256 in the (forged) manifest."""
    entry = file_entry(data, name)
    raw = (directory / entry["path"]).read_bytes()
    entry.update(bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest())


def listed_path(path):
    """files[] names ``path`` for weights.hex, with that file's true hash (the forgery is consistent)."""

    def edit(directory):
        data = manifest(directory)
        raw = (directory / path).read_bytes()
        file_entry(data, "weights.hex").update(path=path, sha256=hashlib.sha256(raw).hexdigest(), bytes=len(raw))
        forge(directory, data)

    return edit


def edit_layer(**fields):
    def edit(directory):
        data = manifest(directory)
        layer_entry(data).update(fields)
        forge(directory, data)

    return edit


def edit_file_entry(name, **fields):
    def edit(directory):
        data = manifest(directory)
        file_entry(data, name).update(fields)
        forge(directory, data)

    return edit


def drop_file_entry(name):
    def edit(directory):
        data = manifest(directory)
        path = file_entry(data, name)["path"]
        data["files"] = [entry for entry in data["files"] if entry["path"] != path]
        forge(directory, data)

    return edit


def link_file(name, target):
    def edit(directory):
        path = directory / layer_entry(manifest(directory))["dir"] / name
        path.unlink()
        os.symlink(target if str(target).startswith("/") else directory.parent / target, path)

    return edit


def rewrite_hex(name, change):
    """Edit the words of a layer's hex file (and, for a verified load, its recorded hash)."""

    def edit(directory):
        data = manifest(directory)
        path = directory / file_entry(data, name)["path"]
        lines = [line for line in path.read_text().splitlines() if not line.startswith("//")]
        path.write_text("\n".join(change(lines)) + "\n")
        rehash(directory, data, name)
        forge(directory, data)

    return edit


def forged_npy_header(directory):
    data = manifest(directory)
    path = directory / file_entry(data, "bias.npy")["path"]
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
        handle.write(b"\0" * 64)
    rehash(directory, data, "bias.npy")
    forge(directory, data)


def truncated_npy(directory):
    data = manifest(directory)
    path = directory / file_entry(data, "x_float.npy")["path"]
    path.write_bytes(path.read_bytes()[:-100])


def nested_manifest(directory):
    (directory / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)


def edited_acc_bits(directory):
    data = manifest(directory)
    data["acc_bits"] = 8
    (directory / "manifest.json").write_text(json.dumps(data, indent=1))  # the digest is left as it was


CASES = {
    "path ../outside.txt": (listed_path("../outside.txt"), True, "/path: '../outside.txt' does not match"),
    "path /etc/hostname": (listed_path("/etc/hostname"), True, "/path: '/etc/hostname' does not match"),
    "weights.hex a link outside": (link_file("weights.hex", "outside.txt"), False, "symbolic link"),
    "layer dir ../other_layer": (edit_layer(dir="../other_layer"), True, "leaves the export"),
    "layer dir absolute": (edit_layer(dir="/tmp"), True, "leaves the export"),
    "weights.hex not in files[]": (drop_file_entry("weights.hex"), True, "is not listed in the manifest's files[]"),
    "x.hex a link to /dev/zero": (link_file("x.hex", "/dev/zero"), False, "symbolic link"),
    "word_bits 1e9": (edit_file_entry("weights.hex", word_bits=10**9), True, "word_bits"),
    "col_idx word 0xff": (rewrite_hex("col_idx.hex", lambda w: ["000000ff", *w[1:]]), True, "names block column 255"),
    "last row_ptr 0x7fffffff": (rewrite_hex("row_ptr.hex", lambda w: [*w[:-1], "7fffffff"]), True, "row_ptr.hex"),
    "weight_shape [32, 32]": (edit_layer(weight_shape=[32, 32]), True, "row_ptr.hex"),
    "row_ptr of 3 M zero words": (rewrite_hex("row_ptr.hex", lambda w: ["00000000"] * 3_000_000), True,
                                  "its declared dimensions allow"),
    "block 9999999x9999999": (edit_layer(block="9999999x9999999"), True, "block '9999999x9999999'"),
    "weight_shape [64, 1e12]": (edit_layer(weight_shape=[64, 10**12]), True, "weight_shape"),
    "bias.npy header of 1e11 values": (forged_npy_header, True, "expected floats of shape (64,)"),
    "x_float.npy cut short": (truncated_npy, False, "x_float.npy: Failed to read all data"),
    "block 0x0": (edit_layer(block="0x0"), True, "block"),
    "manifest nested 100 k levels": (nested_manifest, False, "nested too deeply"),
    "acc_bits edited": (edited_acc_bits, True, "does not match manifest.sha256"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_export_is_refused_naming_what(copy, case):
    edit, verify, words = CASES[case]
    edit(copy)
    with pytest.raises(ExportError) as info:
        load_export(copy, verify=verify)
    assert words in str(info.value), str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_the_untampered_copy_loads_and_a_verified_load_checks_the_digest(copy):
    export = load_export(copy)
    layer = export.layers[LAYER]
    assert np.array_equal(layer.x_int @ layer.weight_int.T, layer.y_int)
    (copy / MANIFEST_DIGEST).unlink()
    with pytest.raises(ExportError, match=r"manifest\.sha256"):
        load_export(copy)
    assert load_export(copy, verify=False).layers.keys() == export.layers.keys()


@pytest.mark.parametrize("seed", range(12))
def test_random_damage_to_a_file_loads_or_is_refused_never_crashes(copy, seed):
    """Flip, truncate or append bytes of a random file of a layer; an unverified load either succeeds or
    raises ExportError -- never IndexError, MemoryError or the like."""
    rng = random.Random(seed)
    directory = copy / layer_entry(manifest(copy))["dir"]
    path = rng.choice(sorted(p for p in directory.iterdir() if p.suffix in (".hex", ".npy")))
    raw = bytearray(path.read_bytes())
    action = rng.choice(["flip", "truncate", "append"])
    if action == "flip":
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
    elif action == "truncate":
        raw = raw[: rng.randrange(len(raw))]
    else:
        raw += bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
    path.write_bytes(bytes(raw))
    with contextlib.suppress(ExportError):
        load_export(copy, verify=False)


def test_a_tokenizer_that_does_not_belong_to_the_model_is_named_before_anything_is_written(tmp_path):
    from conftest import tiny_classifier
    from transformers import BertTokenizer

    from pruning import BlockPruner, PruneSettings, save_pruned

    vocab = tmp_path / "vocab.txt"  # 120 ids; the tiny model embeds 99
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(110)),
                                "good", "film"]) + "\n")  # fmt: skip
    model = tiny_classifier("bert")
    settings = PruneSettings(block="8x8", method="score", target_sparsity=0.5)
    pruner = BlockPruner(settings)
    pruner.prepare(model)
    pruner.prune()
    pruned = save_pruned(tmp_path / "model", model, pruner.finalize(), settings, tokenizer=BertTokenizer(str(vocab)))
    with pytest.raises(ValueError, match=r"token id 11\d, beyond the model's vocabulary of 99 ids"):
        export_model(pruned, "asic-16x16-int8", tmp_path / "rtl", ExportOptions(sample_text="good film"))
    assert not (tmp_path / "rtl").exists()
