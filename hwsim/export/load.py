"""Read a ``bsp export`` directory back from its files alone (no model, no config): for verification teams.

:func:`load_export` checks the manifest against its schema and every file against its SHA-256, then
rebuilds each layer's dense integer weights from the block index and packed weight words (``row_ptr.hex``,
``col_idx.hex``, ``weights.hex``: the files an RTL flow loads), and reads its bias, scales, requantisation
and golden vectors.

>>> import numpy as np
>>> export = load_export(path)                                   # doctest: +SKIP
>>> layer = export.layers["bert.encoder.layer.0.attention.self.query.weight"]      # doctest: +SKIP
>>> np.array_equal(layer.x_int @ layer.weight_int.T, layer.y_int)                  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.export.formats import read_hex, read_hex_values, unpack_words

__all__ = ["Export", "ExportedLayer", "load_export"]

FORMAT_VERSION = 2


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


def _manifest(directory: Path) -> dict:
    import jsonschema

    from hwsim.export.export import load_schema

    path = directory / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"load_export: {directory} has no manifest.json (not a bsp export directory)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"load_export: {path} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("version") != FORMAT_VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise ValueError(f"load_export: {path} has format version {version!r}; this reader reads version "
                         f"{FORMAT_VERSION} (re-export with this bsp-codesign)")  # fmt: skip
    try:
        jsonschema.validate(manifest, load_schema())
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ValueError(f"load_export: {path}: field {where}: {error.message}") from None
    return manifest


def _verify(directory: Path, manifest: dict) -> None:
    for entry in manifest["files"]:
        path = directory / entry["path"]
        if not path.is_file():
            raise FileNotFoundError(f"load_export: {entry['path']} is listed in the manifest but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            raise ValueError(f"load_export: {entry['path']} does not match its SHA-256 in the manifest (changed "
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


def _layer(directory: Path, manifest: dict, entry: dict, file_entries: dict[str, dict]) -> ExportedLayer:
    root = directory / entry["dir"]
    bits, acc_bits = manifest["value_bits"], manifest["acc_bits"]
    N, K = entry["weight_shape"]
    block = tuple(int(x) for x in entry["block"].split("x"))

    def packed(name: str) -> np.ndarray:
        meta = file_entries[f"{entry['dir']}/{name}"]
        return unpack_words(read_hex(root / name), meta["count"], meta["value_bits"], meta["word_bits"],
                            meta.get("lane_order", "lsb-first"))  # fmt: skip

    row_ptr = np.asarray(read_hex(root / "row_ptr.hex"), dtype=np.int64)
    col_idx = np.asarray(read_hex(root / "col_idx.hex"), dtype=np.int64)
    weight_int, keep = _dense(row_ptr, col_idx, packed("weights.hex"), block, (N, K))
    scales = np.asarray(entry["weight_scales"], dtype=np.float64)
    per_row = np.repeat(scales, N if len(scales) == 1 else block[0])[:N]  # per tensor or per block row
    M = entry["tokens"]
    requant = (f"{entry['dir']}/requant_multiplier.hex") in file_entries
    return ExportedLayer(
        name=entry["name"], directory=root, weight_int=weight_int, block_keep=keep, weight_scales=per_row,
        input_scale=entry["input_scale"], output_scale=entry["output_scale"], bias=np.load(root / "bias.npy"),
        bias_int=read_hex_values(root / "bias_int.hex", acc_bits), x_int=packed("x.hex").reshape(M, K),
        y_int=read_hex_values(root / "y_int.hex", acc_bits).reshape(M, N), x_float=np.load(root / "x_float.npy"),
        y_float=np.load(root / "y_float.npy"),
        multiplier=read_hex_values(root / "requant_multiplier.hex", 32) if requant else None,
        shift=read_hex_values(root / "requant_shift.hex", 8) if requant else None,
        y_requant=read_hex_values(root / "y_requant.hex", bits).reshape(M, N) if requant else None,
    )  # fmt: skip


def load_export(directory: str | Path, verify: bool = True) -> Export:
    """Read an export directory; ``verify`` checks every file's SHA-256 against the manifest first."""
    directory = Path(directory)
    manifest = _manifest(directory)
    if verify:
        _verify(directory, manifest)
    file_entries = {entry["path"]: entry for entry in manifest["files"] if entry["format"] == "hex"}
    layers = {entry["name"]: _layer(directory, manifest, entry, file_entries) for entry in manifest["layers"]}
    return Export(directory, manifest, layers)
