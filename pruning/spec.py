"""Torch-free block vocabulary: :class:`BlockSpec`, :class:`Granularity`, group shapes and block occupancy.

Shared by :mod:`pruning` (which adds the torch group maths in :mod:`pruning.blocks`) and :mod:`hwsim`
(which must import without torch). See :mod:`pruning.blocks` for the partition's definitions.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

import numpy as np

from bsp_common.safe_yaml import short_repr

__all__ = ["MASKS_FILENAME", "PRUNING_CONFIG_FILENAME", "BlockSpec", "Granularity", "ParsableEnum",
           "any_per_row_tile", "block_occupancy", "group_grid_shape", "group_shape"]  # fmt: skip

MASKS_FILENAME = "block_masks.safetensors"  # the masks of a saved pruned model (pruning.masks)
PRUNING_CONFIG_FILENAME = "pruning_config.json"  # its settings and achieved sparsity (pruning.io)


class ParsableEnum(enum.StrEnum):
    """A closed set of string options whose ``parse`` names the field and the allowed values on error.

    The field name is the class name without a ``Prune`` prefix, lower-cased (``PruneMethod`` -> ``method``).
    """

    @classmethod
    def parse(cls, value, field: str | None = None):
        """The member for ``value``; the error names ``field`` (default: from the class name) and the choices."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(member.value for member in cls)
            field = field or cls.__name__.removeprefix("Prune").lower()
            raise ValueError(f"{field}: unknown value {short_repr(value)}; allowed: {allowed}") from None


class Granularity(ParsableEnum):
    """What one regularisation/pruning group is inside a block."""

    BLOCK = "block"
    COLUMN = "column"
    ROW = "row"


@dataclass(frozen=True)
class BlockSpec:
    """A hardware tile of ``rows x cols`` weights (rows index ``out_features``, cols ``in_features``)."""

    rows: int
    cols: int

    def __post_init__(self) -> None:
        for field_name in ("rows", "cols"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"block {field_name}: must be a positive integer, got {value!r}")

    @classmethod
    def parse(cls, text: str | BlockSpec) -> BlockSpec:
        """Parse ``"16x16"`` (rows x cols) into a BlockSpec.

        >>> BlockSpec.parse("8x32")
        BlockSpec(rows=8, cols=32)
        """
        if isinstance(text, BlockSpec):
            return text
        match = re.fullmatch(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*", str(text))
        if not match:
            raise ValueError(f"block: expected ROWSxCOLS with positive integers such as 16x16, got {short_repr(text)}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.rows}x{self.cols}"

    def check_fits(self, weight_shape: tuple[int, int], name: str = "weight") -> None:
        """Raise if the block is larger than the matrix in either dimension."""
        out_features, in_features = weight_shape
        if self.rows > out_features or self.cols > in_features:
            raise ValueError(
                f"block {self} does not fit {name} of shape {out_features}x{in_features}: "
                f"rows must be <= {out_features} and cols <= {in_features}"
            )


def group_shape(block: BlockSpec, granularity: Granularity) -> tuple[int, int]:
    """Shape ``(group_rows, group_cols)`` of one group for this block and granularity."""
    granularity = Granularity.parse(granularity)
    if granularity is Granularity.BLOCK:
        return block.rows, block.cols
    if granularity is Granularity.COLUMN:
        return block.rows, 1
    return 1, block.cols


def any_per_row_tile(mask: np.ndarray, rows: int) -> np.ndarray:
    """OR of a boolean ``mask [n, k]`` over consecutive tiles of ``rows`` rows (the last may be shorter):
    ``[ceil(n / rows), k]``. A reshape and a reduction over the middle axis -- ~20x faster than
    ``np.logical_or.reduceat`` on BERT-sized masks.

    >>> any_per_row_tile(np.array([[1, 0], [0, 0], [0, 1]], dtype=bool), 2).tolist()
    [[True, False], [False, True]]
    """
    n, k = mask.shape
    tiles = -(-n // rows)
    if tiles * rows != n:
        padded = np.zeros((tiles * rows, k), dtype=bool)
        padded[:n] = mask
        mask = padded
    return mask.reshape(tiles, rows, k).any(axis=1)


def block_occupancy(mask: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Hardware-block occupancy of a dense keep-mask ``[out, in]``: True where a ``block`` tile keeps any weight.

    Shape ``[ceil(out/rows), ceil(in/cols)]``; partial edge tiles count their real weights only.

    >>> block_occupancy(np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=bool), (2, 2)).tolist()
    [[True, False], [False, True]]
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = group_grid_shape(mask.shape, block)
    per_block_row = any_per_row_tile(mask, block[0])  # the big reduction first, over whole rows
    padded = np.zeros((rows, cols * block[1]), dtype=bool)
    padded[:, : mask.shape[1]] = per_block_row
    return padded.reshape(rows, cols, block[1]).any(axis=2)


def group_grid_shape(weight_shape: tuple[int, int], gshape: tuple[int, int]) -> tuple[int, int]:
    """Number of groups along each axis: ``(ceil(out / gr), ceil(in / gc))``."""
    return math.ceil(weight_shape[0] / gshape[0]), math.ceil(weight_shape[1] / gshape[1])
