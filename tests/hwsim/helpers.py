"""Small accelerator configs for tests, built from the shipped 32x32 preset with overrides."""

from __future__ import annotations

import copy

import yaml

from hwsim.config import config_from_dict, load_config


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
    **sparse,
):
    data = copy.deepcopy(preset_dict())
    data["name"] = f"test-{rows}x{cols}-{dataflow}"
    data["pe_array"].update(rows=rows, cols=cols, dataflow=dataflow)
    data["buffers"].update(
        weight_bytes=weight_bytes, input_bytes=input_bytes, output_bytes=output_bytes, double_buffering=double
    )
    data["dram"] = {"bw_bytes_per_cycle": bw}
    data["sparse"].update(skip_zero_blocks=skip, index_decode_cycles_per_block=decode, **sparse)
    return config_from_dict(data)
