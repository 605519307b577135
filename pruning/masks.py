"""Block masks: which groups of a weight matrix survive, and their safetensors file format.

One :class:`BlockMask` per pruned ``nn.Linear``, keyed by the fully qualified *weight* name
(``"bert.encoder.layer.0.attention.self.query.weight"``). The mask is stored at group resolution
(``True`` = kept) together with the block spec and granularity, so hardware tools see blocks and
PyTorch sees a dense element mask via :meth:`BlockMask.dense`.

File format (``block_masks.safetensors``): one bool tensor per weight name, and in the safetensors
metadata a JSON record per name with ``block``, ``granularity`` and ``weight_shape``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from bsp_common.checks import is_positive_pair
from pruning.blocks import (
    BlockSpec,
    Granularity,
    block_occupancy,
    expand_group_mask,
    group_grid_shape,
    group_shape,
    group_sizes,
)
from pruning.spec import MASKS_FILENAME

__all__ = ["MASKS_FILENAME", "BlockMask", "load_masks", "save_masks"]



@dataclass(frozen=True)
class BlockMask:
    """Kept groups of one weight matrix ``W[out_features, in_features]``.

    Parameters
    ----------
    group_mask : bool tensor of shape ``group_grid_shape(weight_shape, group_shape)``; True = kept.
    block : the hardware tile.
    granularity : what one group is inside the tile.
    weight_shape : ``(out_features, in_features)`` of the masked weight.
    """

    group_mask: torch.Tensor
    block: BlockSpec
    granularity: Granularity
    weight_shape: tuple[int, int]

    def __post_init__(self) -> None:
        if not is_positive_pair(self.weight_shape):
            raise ValueError(f"weight_shape: must be (out_features, in_features) of positive integers, got "
                             f"{self.weight_shape!r}")  # fmt: skip
        expected = group_grid_shape(self.weight_shape, self.group_shape)
        if tuple(self.group_mask.shape) != expected:
            raise ValueError(
                f"group_mask: shape {tuple(self.group_mask.shape)} does not match weight "
                f"{self.weight_shape} with block {self.block} ({self.granularity.value}); expected {expected}"
            )
        if self.group_mask.dtype != torch.bool:
            object.__setattr__(self, "group_mask", self.group_mask.to(torch.bool))

    @property
    def group_shape(self) -> tuple[int, int]:
        return group_shape(self.block, self.granularity)

    def dense(self) -> torch.Tensor:
        """Element mask ``[out, in]`` (bool)."""
        return expand_group_mask(self.group_mask, self.group_shape, self.weight_shape)

    @property
    def n_weights(self) -> int:
        return self.weight_shape[0] * self.weight_shape[1]

    @property
    def n_kept_weights(self) -> int:
        sizes = group_sizes(self.weight_shape, self.group_shape)
        return int(sizes[self.group_mask].sum())

    @property
    def sparsity(self) -> float:
        """Fraction of weights pruned (element count, edge groups counted by their real size)."""
        return 1.0 - self.n_kept_weights / self.n_weights

    def block_mask(self) -> torch.Tensor:
        """Hardware-block occupancy ``[ceil(out/rows), ceil(in/cols)]``: True where a block has any weight."""
        return torch.from_numpy(block_occupancy(self.dense().numpy(), (self.block.rows, self.block.cols)))

    def check_weight(self, name: str, weight_shape: tuple[int, ...]) -> None:
        """Raise a clear error if this mask cannot be attached to a weight of ``weight_shape``."""
        if tuple(weight_shape) != self.weight_shape:
            raise ValueError(
                f"mask for {name!r} was made for a weight of shape {self.weight_shape}, "
                f"but the layer's weight has shape {tuple(weight_shape)}"
            )


def save_masks(masks: dict[str, BlockMask], path: str | Path) -> Path:
    """Write masks to a safetensors file (see module docstring for the format)."""
    path = Path(path)
    tensors = {name: mask.group_mask.contiguous() for name, mask in masks.items()}
    metadata = {
        name: json.dumps(
            {
                "block": str(mask.block),
                "granularity": mask.granularity.value,
                "weight_shape": list(mask.weight_shape),
            }
        )
        for name, mask in masks.items()
    }
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_masks(path: str | Path) -> dict[str, BlockMask]:
    """Read masks written by :func:`save_masks`; a file or a directory holding ``block_masks.safetensors``."""
    path = Path(path)
    if path.is_dir():
        path = path / MASKS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"masks: no mask file at {path}")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"masks: {path} is not a readable safetensors file ({err})") from None
    masks = {}
    for name, group_mask in tensors.items():
        if name not in metadata:
            raise ValueError(f"masks: {path} has no metadata for {name!r}; was it written by save_masks?")
        try:
            record = json.loads(metadata[name])
            block = BlockSpec.parse(record["block"])
            granularity = Granularity.parse(record["granularity"])
            weight_shape = tuple(int(x) for x in record["weight_shape"])
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"masks: bad metadata for {name!r} in {path}: {err}") from None
        masks[name] = BlockMask(group_mask, block, granularity, weight_shape)
    return masks
