"""Small accelerator configs for tests, built from the shipped 32x32 preset with overrides."""

from __future__ import annotations

import numpy as np
import yaml

from hwsim.config import derive_config, load_config


def preset_dict(name: str = "asic-32x32-int8") -> dict:
    return yaml.safe_load(load_config(name).to_yaml())


def small_config(
    rows=4,
    cols=4,
    dataflow="ws",
    bw=4.0,
    double=True,
    skip=True,
    decode=1,
    weight_bytes=4096,
    input_bytes=4096,
    output_bytes=4096,
    microarch=None,
    **sparse,
):
    """A small array; ``microarch`` overrides the serial controller (no overlap, no pipeline, live edges)."""
    micro = {"fold_overlap": "none", "mult_stages": 0, "acc_stages": 0, "drain": "rows", "drain_lines_per_cycle": 1,
             "edge_skew": "live", "preload_rows_per_cycle": 1, "prefetch_across_ops": False, **(microarch or {})}
    overrides = {"pe_array.rows": rows, "pe_array.cols": cols, "pe_array.dataflow": dataflow,
                 "buffers.weight_bytes": weight_bytes, "buffers.input_bytes": input_bytes,
                 "buffers.output_bytes": output_bytes, "buffers.double_buffering": double,
                 "dram.bw_bytes_per_cycle": bw, "sparse.skip_zero_blocks": skip,
                 "sparse.index_decode_cycles_per_block": decode,
                 **{f"sparse.{key}": value for key, value in sparse.items()},
                 **{f"microarch.{key}": value for key, value in micro.items()}}  # fmt: skip
    return derive_config("asic-32x32-int8", overrides, name=f"test-{rows}x{cols}-{dataflow}")


def expand_blocks(keep: np.ndarray, block: tuple[int, int], N: int, K: int) -> np.ndarray:
    """The ``N x K`` element mask of a block-level ``keep`` (edge blocks cropped)."""
    return np.kron(keep, np.ones(block, dtype=bool))[:N, :K].astype(bool)
