"""Block partition of a weight matrix ``W[out_features, in_features]`` into groups.

A :class:`BlockSpec` is the hardware tile (``rows x cols``). The :class:`Granularity` says what one
group-Lasso group is inside a tile:

* ``block``  -- the whole ``rows x cols`` tile,
* ``column`` -- one column segment of the tile (``rows x 1``): all rows of a block row share which
  input columns survive, the row-parallel hardware case of the paper,
* ``row``    -- one row segment of the tile (``1 x cols``).

Every granularity therefore reduces to a *group shape* ``(group_rows, group_cols)`` and the group grid
has shape ``(ceil(out / group_rows), ceil(in / group_cols))``. Edge groups may be partial; all group
maths zero-pads the matrix to whole groups, which leaves norms unchanged, and :func:`group_sizes`
counts only the real elements.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from bsp_common.safe_yaml import short_repr

__all__ = [
    "BlockSpec",
    "Granularity",
    "ParsableEnum",
    "block_occupancy",
    "expand_group_mask",
    "group_grid_shape",
    "group_norms_sq",
    "group_shape",
    "group_sizes",
    "group_sums",
]


class ParsableEnum(enum.StrEnum):
    """A closed set of string options whose ``parse`` names the field and the allowed values on error.

    The field name is the class name without a ``Prune`` prefix, lower-cased (``PruneMethod`` -> ``method``).
    """

    @classmethod
    def parse(cls, value):
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(member.value for member in cls)
            field = cls.__name__.removeprefix("Prune").lower()
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


def block_occupancy(mask: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Hardware-block occupancy of a dense keep-mask ``[out, in]``: True where a ``block`` tile keeps any weight.

    Shape ``[ceil(out/rows), ceil(in/cols)]``; partial edge tiles count their real weights only.

    >>> block_occupancy(np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=bool), (2, 2)).tolist()
    [[True, False], [False, True]]
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = group_grid_shape(mask.shape, block)
    padded = np.zeros((rows * block[0], cols * block[1]), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(rows, block[0], cols, block[1]).any(axis=(1, 3))


def group_grid_shape(weight_shape: tuple[int, int], gshape: tuple[int, int]) -> tuple[int, int]:
    """Number of groups along each axis: ``(ceil(out / gr), ceil(in / gc))``."""
    return math.ceil(weight_shape[0] / gshape[0]), math.ceil(weight_shape[1] / gshape[1])


def _padded_view(weight: torch.Tensor, gshape: tuple[int, int]) -> torch.Tensor:
    """``weight`` zero-padded to whole groups, viewed as ``[n_group_rows, gr, n_group_cols, gc]``."""
    gr, gc = gshape
    n_rows, n_cols = group_grid_shape(tuple(weight.shape), gshape)
    pad_rows, pad_cols = n_rows * gr - weight.shape[0], n_cols * gc - weight.shape[1]
    if pad_rows or pad_cols:
        weight = torch.nn.functional.pad(weight, (0, pad_cols, 0, pad_rows))
    return weight.reshape(n_rows, gr, n_cols, gc)


def group_norms_sq(weight: torch.Tensor, gshape: tuple[int, int]) -> torch.Tensor:
    """Squared Frobenius norm of every group, shape ``group_grid_shape``; differentiable.

    >>> w = torch.arange(12.0).reshape(3, 4)
    >>> group_norms_sq(w, (2, 2))
    tensor([[ 42.,  98.],
            [145., 221.]])
    """
    return group_sums(weight.pow(2), gshape)


def group_sums(values: torch.Tensor, gshape: tuple[int, int]) -> torch.Tensor:
    """Sum of ``values [out, in]`` over every group, shape ``group_grid_shape``; differentiable.

    >>> group_sums(torch.ones(3, 4), (2, 2))
    tensor([[4., 4.],
            [2., 2.]])
    """
    return _padded_view(values, gshape).sum(dim=(1, 3))


def group_sizes(weight_shape: tuple[int, int], gshape: tuple[int, int]) -> torch.Tensor:
    """Number of real (un-padded) weights in every group, shape ``group_grid_shape`` (int64)."""
    gr, gc = gshape
    n_rows, n_cols = group_grid_shape(weight_shape, gshape)
    row_sizes = torch.full((n_rows,), gr, dtype=torch.int64)
    col_sizes = torch.full((n_cols,), gc, dtype=torch.int64)
    row_sizes[-1] = weight_shape[0] - (n_rows - 1) * gr
    col_sizes[-1] = weight_shape[1] - (n_cols - 1) * gc
    return row_sizes[:, None] * col_sizes[None, :]


def expand_group_mask(group_mask: torch.Tensor, gshape: tuple[int, int], weight_shape: tuple[int, int]) -> torch.Tensor:
    """Dense element mask ``[out, in]`` from a group-resolution mask (edge groups cropped)."""
    gr, gc = gshape
    dense = group_mask.repeat_interleave(gr, dim=0).repeat_interleave(gc, dim=1)
    return dense[: weight_shape[0], : weight_shape[1]]
