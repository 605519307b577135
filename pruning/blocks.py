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

import torch

from pruning.spec import BlockSpec, Granularity, ParsableEnum, block_occupancy, group_grid_shape, group_shape

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
