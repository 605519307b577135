"""Read a ``bsp export`` directory back from its files alone (no model, no config): for verification teams.

:func:`load_export` checks the manifest against its schema and its digest (``manifest.sha256``) and every file
against its SHA-256, then rebuilds each layer's dense integer weights from the block index and packed weight
words (``row_ptr.hex``, ``col_idx.hex``, ``weights.hex``: the files an RTL flow loads), and reads its bias,
scales, requantisation and golden vectors.

An export travels between teams, so it is read as untrusted input: every path stays inside the directory
(relative, no ``..``, no symbolic link, regular files only), every size is bounded by the manifest's own
declared dimensions (themselves bounded) before anything is read or allocated, every index is range-checked,
and every refusal is one :class:`ExportError` naming the file and field.

>>> import numpy as np
>>> export = load_export(path)                                   # doctest: +SKIP
>>> layer = export.layers["bert.encoder.layer.0.attention.self.query.weight"]      # doctest: +SKIP
>>> np.array_equal(layer.x_int @ layer.weight_int.T, layer.y_int)                  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from hwsim.export.formats import unpack_words

__all__ = ["MANIFEST_DIGEST", "Export", "ExportError", "ExportedLayer", "load_export"]

FORMAT_VERSION = 2
MANIFEST_DIGEST = "manifest.sha256"  # `sha256sum -c` format: the manifest's own digest, beside it
MAX_MANIFEST_BYTES = 64 << 20  # a BERT-large export's manifest is a few MB
MAX_FEATURES = 1 << 20  # in/out features of one layer (BERT-large: 4096)
MAX_TOKENS = 1 << 16  # rows of the golden input
MAX_ELEMENTS = 1 << 26  # values of one weight matrix or golden vector (BERT-large FFN: 4 M)
MAX_WORD_BITS = 4096
HEX_HEADER_BYTES = 1 << 16  # room for a hex file's `//` comment header
HASH_CHUNK_BYTES = 1 << 20


class ExportError(ValueError):
    """An export directory refused: the message names the file and the field."""


@dataclass(frozen=True)
class ExportedLayer:
    """One layer as the export's files describe it (integers int64, floats float64)."""

    name: str
    directory: Path
    weight_int: np.ndarray  # [N, K] quantised weights, zeros where pruned
    block_keep: np.ndarray  # [block rows, block cols] bool
    weight_scales: np.ndarray  # [N] scale of every output feature's weights
    input_scale: float
    output_scale: float
    bias: np.ndarray  # [N] float
    bias_int: np.ndarray  # [N] accumulator units
    x_int: np.ndarray  # [M, K]
    y_int: np.ndarray  # [M, N] x_int @ weight_int.T
    x_float: np.ndarray  # [M, K]
    y_float: np.ndarray  # [M, N] the float layer output, bias included
    multiplier: np.ndarray | None  # [N] Q0.31 requantisation multipliers (None: not exported)
    shift: np.ndarray | None  # [N]
    y_requant: np.ndarray | None  # [M, N]

    def weight_float(self) -> np.ndarray:
        """The dequantised weights ``weight_int * weight_scales`` ``[N, K]``."""
        return self.weight_int * self.weight_scales[:, None]


@dataclass(frozen=True)
class Export:
    directory: Path
    manifest: dict
    layers: dict[str, ExportedLayer]  # weight name -> layer


def _member(directory: Path, relative: object, where: str, kind: str = "file") -> Path:
    """``directory / relative`` after checking that it stays inside: a relative POSIX path without ``..``,
    no symbolic link on the way, and a regular file (or directory, with ``kind="dir"``)."""
    if not isinstance(relative, str) or not relative or "\\" in relative or "\0" in relative:
        raise ExportError(f"load_export: {where}: {relative!r} is not a relative path inside the export")
    parts = PurePosixPath(relative)
    if parts.is_absolute() or ".." in parts.parts:
        raise ExportError(f"load_export: {where}: {relative!r} leaves the export directory (absolute or '..'); "
                          "every path must be relative and inside it")  # fmt: skip
    path = directory
    for part in parts.parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise ExportError(f"load_export: {where}: {relative!r} is missing from the export") from None
        if stat.S_ISLNK(mode):
            raise ExportError(f"load_export: {where}: {relative!r} is a symbolic link; an export holds regular "
                              "files only")  # fmt: skip
    wanted = stat.S_ISDIR if kind == "dir" else stat.S_ISREG
    if not wanted(mode):
        raise ExportError(f"load_export: {where}: {relative!r} is not a regular {kind}")
    return path


def _read_bounded(path: Path, max_bytes: int, where: str) -> bytes:
    size = path.stat().st_size
    if size > max_bytes:
        raise ExportError(f"load_export: {where}: {size:,} bytes, more than the {max_bytes:,} its declared "
                          "dimensions allow")  # fmt: skip
    with path.open("rb") as handle:
        return handle.read(max_bytes + 1)


def _manifest(directory: Path, verify: bool) -> dict:
    import jsonschema

    from hwsim.export.export import load_schema

    if not directory.is_dir():
        raise FileNotFoundError(f"load_export: {directory} is not a directory")
    if not (directory / "manifest.json").exists():
        raise FileNotFoundError(f"load_export: {directory} has no manifest.json (not a bsp export directory)")
    path = _member(directory, "manifest.json", "manifest.json")
    raw = _read_bounded(path, MAX_MANIFEST_BYTES, "manifest.json")
    if verify:
        digest = _read_bounded(_member(directory, MANIFEST_DIGEST, MANIFEST_DIGEST), 4096, MANIFEST_DIGEST)
        expected = digest.decode("ascii", "replace").split()[:1]
        if expected != [hashlib.sha256(raw).hexdigest()]:
            raise ExportError(f"load_export: manifest.json does not match {MANIFEST_DIGEST} (edited after the "
                              "export); its fields are refused -- re-export, or load with verify=False")  # fmt: skip
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"load_export: {path} is not valid JSON ({error})") from None
    except RecursionError:
        raise ExportError(f"load_export: {path} is nested too deeply to be a manifest") from None
    if not isinstance(manifest, dict) or manifest.get("version") != FORMAT_VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise ExportError(f"load_export: {path} has format version {version!r}; this reader reads version "
                          f"{FORMAT_VERSION} (re-export with this bsp-codesign)")  # fmt: skip
    try:
        jsonschema.validate(manifest, load_schema())
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ExportError(f"load_export: {path}: field {where}: {error.message}") from None
    return manifest


def _verify(directory: Path, manifest: dict) -> None:
    for i, entry in enumerate(manifest["files"]):
        where = f"files[{i}] {entry['path']}"
        path = _member(directory, entry["path"], where)
        if path.stat().st_size != entry["bytes"]:
            raise ExportError(f"load_export: {where}: {path.stat().st_size:,} bytes, the manifest says "
                              f"{entry['bytes']:,} (changed after the export)")  # fmt: skip
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise ExportError(f"load_export: {entry['path']} does not match its SHA-256 in the manifest (changed "
                              "after the export)")  # fmt: skip


def _dense(row_ptr: np.ndarray, col_idx: np.ndarray, values: np.ndarray, block: tuple[int, int],
           shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    br, bc = block
    rows, cols = len(row_ptr) - 1, -(-shape[1] // bc)
    keep = np.zeros((rows, cols), dtype=bool)
    dense = np.zeros((rows * br, cols * bc), dtype=np.int64)
    tiles = values.reshape(-1, br, bc)
    for block_row in range(rows):
        for entry in range(row_ptr[block_row], row_ptr[block_row + 1]):
            column = col_idx[entry]
            keep[block_row, column] = True
            dense[block_row * br : (block_row + 1) * br, column * bc : (column + 1) * bc] = tiles[entry]
    return dense[: shape[0], : shape[1]], keep


class _LayerFiles:
    """Reads one layer's files, each bounded by the word count its declared dimensions give."""

    def __init__(self, directory: Path, entry: dict, file_entries: dict[str, dict], layer: str) -> None:
        self.root = _member(directory, entry["dir"], f"{layer}: dir", kind="dir")
        self.directory, self.dir, self.files, self.layer = directory, entry["dir"], file_entries, layer

    def path(self, name: str) -> Path:
        key = f"{self.dir}/{name}"
        if key not in self.files:
            raise ExportError(f"load_export: layer {self.layer}: {key} is not listed in the manifest's files[]")
        return _member(self.directory, key, f"layer {self.layer}: {name}")

    def meta(self, name: str) -> dict:
        self.path(name)
        return self.files[f"{self.dir}/{name}"]

    def words(self, name: str, count: int, word_bits: int) -> list[int]:
        """The hex words of ``name``: at most ``count``, each below ``2**word_bits``."""
        digits = -(-word_bits // 4)
        raw = _read_bounded(self.path(name), HEX_HEADER_BYTES + count * (digits + 2), f"layer {self.layer}: {name}")
        words = []
        for number, line in enumerate(raw.decode("ascii", "replace").splitlines(), start=1):
            text = line.split("//")[0].strip()
            if not text:
                continue
            try:
                word = int(text, 16)
            except ValueError:
                raise ExportError(f"load_export: layer {self.layer}: {name} line {number}: {text[:20]!r} is not a "
                                  "hex word") from None  # fmt: skip
            if word >> word_bits:
                raise ExportError(f"load_export: layer {self.layer}: {name} line {number}: word {text[:20]} is "
                                  f"wider than {word_bits} bits")  # fmt: skip
            words.append(word)
        if len(words) > count:
            raise ExportError(f"load_export: layer {self.layer}: {name} holds {len(words):,} words, more than the "
                              f"{count:,} its declared dimensions give")  # fmt: skip
        return words

    def unsigned(self, name: str, count: int) -> np.ndarray:
        """Exactly ``count`` unsigned words of the width files[] gives (at most 64 bits: index words)."""
        word_bits = self.meta(name).get("word_bits")
        if not isinstance(word_bits, int) or not 0 < word_bits <= 64:
            raise ExportError(f"load_export: layer {self.layer}: {name}: word_bits {word_bits!r} must be in [1, 64]")
        words = self.words(name, count, word_bits)
        if len(words) != count:
            raise ExportError(f"load_export: layer {self.layer}: {name} holds {len(words):,} words, expected "
                              f"{count:,}")  # fmt: skip
        return np.asarray(words, dtype=np.uint64).astype(np.int64)

    def values(self, name: str, count: int, value_bits: int) -> np.ndarray:
        """Exactly ``count`` signed ``value_bits`` values, one per word."""
        words = self.words(name, count, value_bits)
        if len(words) != count:
            raise ExportError(f"load_export: layer {self.layer}: {name} holds {len(words):,} values, expected "
                              f"{count:,}")  # fmt: skip
        return unpack_words(words, count, value_bits, value_bits)

    def packed(self, name: str, count: int, value_bits: int) -> np.ndarray:
        meta = self.meta(name)
        word_bits = meta.get("word_bits")
        if meta.get("count") != count or meta.get("value_bits") != value_bits:
            raise ExportError(f"load_export: layer {self.layer}: {name}: files[] says count {meta.get('count')!r}, "
                              f"value_bits {meta.get('value_bits')!r}; the layer's dimensions give {count:,} values "
                              f"of {value_bits} bits")  # fmt: skip
        if not isinstance(word_bits, int) or not 0 < word_bits <= MAX_WORD_BITS or word_bits % value_bits:
            raise ExportError(f"load_export: layer {self.layer}: {name}: word_bits {word_bits!r} must be a multiple "
                              f"of value_bits {value_bits} up to {MAX_WORD_BITS}")  # fmt: skip
        per_word = word_bits // value_bits
        words = self.words(name, -(-count // per_word), word_bits)
        values = unpack_words(words, count, value_bits, word_bits, meta.get("lane_order", "lsb-first"))
        if len(values) != count:
            raise ExportError(f"load_export: layer {self.layer}: {name} holds {len(values):,} values, expected "
                              f"{count:,}")
        return values

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float ``.npy`` of exactly ``shape``, its header checked before the data is read."""
        path = self.path(name)
        with path.open("rb") as handle:
            try:
                version = np.lib.format.read_magic(handle)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)(handle)  # fmt: skip
            except ValueError as error:
                raise ExportError(f"load_export: layer {self.layer}: {name} is not a .npy array ({error})") from None
        found, _, dtype = header
        if tuple(found) != shape or dtype.kind != "f":
            raise ExportError(f"load_export: layer {self.layer}: {name} holds a {dtype} array of shape {found}; "
                              f"expected floats of shape {shape}")  # fmt: skip
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as error:  # the header is sound, the data cut short
            raise ExportError(f"load_export: layer {self.layer}: {name}: {error}") from None


def _dimensions(entry: dict, layer: str) -> tuple[int, int, int, tuple[int, int]]:
    """``(N, K, M, block)`` of a layer entry, bounded so that nothing read from it can exhaust memory."""
    N, K = entry["weight_shape"]
    M = entry["tokens"]
    text = entry["block"]
    rows, _, cols = text.partition("x")
    block = (int(rows), int(cols)) if rows.isdigit() and cols.isdigit() else (0, 0)
    checks = [
        (1 <= N <= MAX_FEATURES and 1 <= K <= MAX_FEATURES and N * K <= MAX_ELEMENTS, "weight_shape",
         f"{[N, K]}: each in [1, {MAX_FEATURES:,}] and at most {MAX_ELEMENTS:,} values"),
        (1 <= M <= MAX_TOKENS and M * max(N, K) <= MAX_ELEMENTS, "tokens",
         f"{M}: in [1, {MAX_TOKENS:,}] with at most {MAX_ELEMENTS:,} golden values"),
        (1 <= block[0] <= N and 1 <= block[1] <= K, "block", f"{text!r}: RxC with 1 <= R <= {N}, 1 <= C <= {K}"),
    ]  # fmt: skip
    for ok, field, message in checks:
        if not ok:
            raise ExportError(f"load_export: layer {layer}: {field} {message}")
    return N, K, M, block


def _block_index(files: _LayerFiles, entry: dict, N: int, K: int, block: tuple[int, int]):
    """``row_ptr`` and ``col_idx`` of a layer, range-checked against its shape."""
    block_rows, block_cols = -(-N // block[0]), -(-K // block[1])
    row_ptr = files.unsigned("row_ptr.hex", block_rows + 1)
    kept = int(row_ptr[-1])
    if row_ptr[0] != 0 or np.any(np.diff(row_ptr) < 0) or np.any(np.diff(row_ptr) > block_cols):
        raise ExportError(f"load_export: layer {files.layer}: row_ptr.hex must start at 0 and grow by 0..{block_cols} "
                          "(the block columns) per block row")  # fmt: skip
    if kept != entry["kept_blocks"]:
        raise ExportError(f"load_export: layer {files.layer}: row_ptr.hex ends at {kept}, kept_blocks says "
                          f"{entry['kept_blocks']}")  # fmt: skip
    col_idx = files.unsigned("col_idx.hex", kept)
    if col_idx.size and col_idx.max() >= block_cols:
        raise ExportError(f"load_export: layer {files.layer}: col_idx.hex names block column {int(col_idx.max())}; "
                          f"the layer has {block_cols} (0..{block_cols - 1})")  # fmt: skip
    return row_ptr, col_idx


def _layer(directory: Path, manifest: dict, entry: dict, file_entries: dict[str, dict]) -> ExportedLayer:
    layer = entry["name"]
    N, K, M, block = _dimensions(entry, layer)
    files = _LayerFiles(directory, entry, file_entries, layer)
    bits, acc_bits = manifest["value_bits"], manifest["acc_bits"]
    row_ptr, col_idx = _block_index(files, entry, N, K, block)
    weights = files.packed("weights.hex", len(col_idx) * block[0] * block[1], bits)
    weight_int, keep = _dense(row_ptr, col_idx, weights, block, (N, K))
    scales = np.asarray(entry["weight_scales"], dtype=np.float64)
    if len(scales) not in (1, len(row_ptr) - 1):
        raise ExportError(f"load_export: layer {layer}: weight_scales has {len(scales)} entries; expected 1 (per "
                          f"tensor) or {len(row_ptr) - 1} (per block row)")  # fmt: skip
    per_row = np.repeat(scales, N if len(scales) == 1 else block[0])[:N]  # per tensor or per block row
    requant = f"{entry['dir']}/requant_multiplier.hex" in file_entries
    return ExportedLayer(
        name=layer, directory=files.root, weight_int=weight_int, block_keep=keep, weight_scales=per_row,
        input_scale=entry["input_scale"], output_scale=entry["output_scale"], bias=files.array("bias.npy", (N,)),
        bias_int=files.values("bias_int.hex", N, acc_bits), x_int=files.packed("x.hex", M * K, bits).reshape(M, K),
        y_int=files.values("y_int.hex", M * N, acc_bits).reshape(M, N), x_float=files.array("x_float.npy", (M, K)),
        y_float=files.array("y_float.npy", (M, N)),
        multiplier=files.values("requant_multiplier.hex", N, 32) if requant else None,
        shift=files.values("requant_shift.hex", N, 8) if requant else None,
        y_requant=files.values("y_requant.hex", M * N, bits).reshape(M, N) if requant else None,
    )  # fmt: skip


def load_export(directory: str | Path, verify: bool = True) -> Export:
    """Read an export directory; ``verify`` checks the manifest's digest and every file's SHA-256 first.

    Raises :class:`ExportError` (a ``ValueError``) naming the file and field of anything that does not hold:
    a path leaving the directory, a link, a size beyond the declared dimensions, an index out of range.
    """
    directory = Path(directory)
    manifest = _manifest(directory, verify)
    if verify:
        _verify(directory, manifest)
    file_entries = {entry["path"]: entry for entry in manifest["files"]}
    layers = {entry["name"]: _layer(directory, manifest, entry, file_entries) for entry in manifest["layers"]}
    return Export(directory, manifest, layers)
