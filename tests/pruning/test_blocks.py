import itertools
import math

import pytest
import torch

from pruning.blocks import (
    BlockSpec,
    Granularity,
    expand_group_mask,
    group_grid_shape,
    group_norms_sq,
    group_shape,
    group_sizes,
)


def brute_force_norms(weight, gshape):
    gr, gc = gshape
    rows, cols = math.ceil(weight.shape[0] / gr), math.ceil(weight.shape[1] / gc)
    out = torch.zeros(rows, cols, dtype=weight.dtype)
    for i, j in itertools.product(range(rows), range(cols)):
        out[i, j] = (weight[i * gr : (i + 1) * gr, j * gc : (j + 1) * gc] ** 2).sum()
    return out


@pytest.mark.parametrize("shape", [(16, 16), (17, 23), (5, 40), (33, 7)])
@pytest.mark.parametrize("block", [BlockSpec(4, 4), BlockSpec(3, 8), BlockSpec(1, 1), BlockSpec(5, 2)])
@pytest.mark.parametrize("granularity", list(Granularity))
def test_group_norms_match_brute_force_with_partial_edges(shape, block, granularity):
    weight = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    gshape = group_shape(block, granularity)
    torch.testing.assert_close(group_norms_sq(weight, gshape), brute_force_norms(weight, gshape))


def test_group_shapes_per_granularity():
    block = BlockSpec(8, 4)
    assert group_shape(block, "block") == (8, 4)
    assert group_shape(block, "column") == (8, 1)
    assert group_shape(block, "row") == (1, 4)


def test_group_sizes_count_real_elements_only():
    sizes = group_sizes((5, 7), (2, 3))
    assert sizes.tolist() == [[6, 6, 2], [6, 6, 2], [3, 3, 1]]
    assert int(sizes.sum()) == 35


def test_expand_group_mask_crops_edges():
    mask = torch.tensor([[True, False], [False, True]])
    dense = expand_group_mask(mask, (2, 3), (3, 5))
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(dense, expected)
    assert group_grid_shape((3, 5), (2, 3)) == (2, 2)


@pytest.mark.parametrize("text", ["0x4", "4x-1", "abc", "4", "4x4x4", ""])
def test_bad_block_spec_text_is_a_clear_error(text):
    with pytest.raises(ValueError, match="block"):
        BlockSpec.parse(text)


def test_block_larger_than_matrix_is_rejected():
    with pytest.raises(ValueError, match="does not fit"):
        BlockSpec(32, 4).check_fits((16, 16))


def test_unknown_granularity_lists_allowed():
    with pytest.raises(ValueError, match="allowed: block, column, row"):
        Granularity.parse("diagonal")
