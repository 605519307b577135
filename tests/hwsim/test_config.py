import copy
import re

import pytest
import yaml
from helpers import preset_dict
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import AcceleratorConfig, ConfigError, config_from_dict, derive_config, list_presets, load_config

PRESETS = ["asic-16x16-int8", "asic-32x32-int8", "asic-128x128-int8", "fpga-zcu102", "fpga-u200"]


def test_all_presets_are_listed_and_load():
    assert set(PRESETS) <= set(list_presets())
    for name in PRESETS:
        config = load_config(name)
        assert config.name == name
        assert "source" in config.model_dump() and config.energy.source


@pytest.mark.parametrize("name", PRESETS)
def test_yaml_round_trip_is_identity(name, tmp_path):
    config = load_config(name)
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config


def test_sizes_with_units_and_bandwidth_forms():
    config = load_config("asic-32x32-int8")
    assert config.buffers.weight_bytes == 256 * 1024
    zcu = load_config("fpga-zcu102")
    assert zcu.dram_bytes_per_cycle == pytest.approx(12.8e9 / 200e6)


def test_a_files_own_sram_table_interpolates_between_its_points():
    table = {8192: 10.0, 32768: 20.0, 1048576: 100.0}

    def per_byte(size):
        config = derive_config("asic-32x32-int8", {"energy.sram_pj_per_64bit": table, "buffers.weight_bytes": size})
        return config.cost.sram_pj_per_byte["weight"]

    assert per_byte(8192) == pytest.approx(10 / 8)
    assert per_byte(32768) == pytest.approx(20 / 8)
    assert per_byte(16384) == pytest.approx(15 / 8)  # half-way in log2(size)
    assert per_byte(4 << 20) == pytest.approx(100 / 8)  # the file's table is clamped above its last point


def errors_for(mutate):
    data = preset_dict()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    return dict(info.value.errors), str(info.value)


def test_all_errors_reported_with_field_paths():
    def mutate(d):
        d["pe_array"]["rows"] = 0
        d["pe_array"]["dataflow"] = "diagonal"
        d["buffers"]["weight_kb"] = 4
        d["buffers"]["input_bytes"] = "256 furlongs"

    errors, text = errors_for(mutate)
    assert "pe_array.rows" in errors and "greater than 0" in errors["pe_array.rows"]
    assert "pe_array.dataflow" in errors and "'ws'" in errors["pe_array.dataflow"]
    assert "buffers.weight_kb" in errors and "unknown key" in errors["buffers.weight_kb"]
    assert "buffers.input_bytes" in errors and "KiB" in errors["buffers.input_bytes"]
    assert "invalid accelerator config" in text


def test_fpga_budget_is_checked():
    data = preset_dict("fpga-zcu102")
    data["pe_array"]["rows"] = 64
    data["pe_array"]["cols"] = 128  # 8192 int8 MACs -> 4096 DSPs > 2520
    with pytest.raises(ConfigError, match="needs 4096 DSPs") as info:
        config_from_dict(data)
    assert dict(info.value.errors)["fpga.dsp"].startswith("pe_array 64x128 needs 4096 DSPs")
    assert "fpga.lut" in dict(info.value.errors)


def test_bandwidth_needs_exactly_one_form():
    errors, _ = errors_for(lambda d: d["dram"].update(bw_bytes_per_cycle=10.0))
    assert any("exactly one" in m for m in errors.values())


def test_unknown_preset_or_path():
    with pytest.raises(FileNotFoundError, match="neither a preset"):
        load_config("asic-9x9")


def test_malformed_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pe_array: [1, 2\n")
    with pytest.raises(ConfigError, match="<yaml>"):
        load_config(path)
    path.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


leaf_values = st.one_of(
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_corruptions_give_config_error_or_valid_config(data):
    config = preset_dict()
    section = data.draw(st.sampled_from(["pe_array", "buffers", "dram", "sparse", "vector_unit", "energy"]))
    target = copy.deepcopy(config)
    keys = list(target[section])
    key = data.draw(st.one_of(st.sampled_from(keys), st.text(min_size=1, max_size=6)))
    target[section][key] = data.draw(leaf_values)
    try:
        result = config_from_dict(target)
    except ConfigError as err:
        assert err.errors and all(path for path, _ in err.errors)
    else:
        assert isinstance(result, AcceleratorConfig)
        assert yaml.safe_load(result.to_yaml())["name"] == config["name"]


@pytest.mark.parametrize("name", list_presets())
def test_preset_sources_name_documents_and_agree_with_the_numbers(name):
    config = load_config(name)
    source = config.source
    assert not re.search(rf"{re.escape(name)}\d", source)  # no template residue such as 'fpga-zcu1024'
    assert "Horowitz ISSCC 2014" in source + config.energy.source
    if config.kind == "fpga":
        fpga = config.fpga
        assert re.search(r"\bDS\d{3}\b", source)  # a Xilinx data sheet number
        for text in (f"{fpga.dsp} DSP48E2", f"{fpga.bram36} BRAM36", f"{fpga.lut} LUTs"):
            assert text in source
        if fpga.uram:
            assert f"{fpga.uram} URAM" in source
    else:
        assert f"{config.pe_array.rows}x{config.pe_array.cols} int8 {config.pe_array.dataflow.value}" in source


@pytest.mark.parametrize(
    ("dataflow", "microarch", "says"),
    [
        ("os", {"preload_order": "wavefront"}, "microarch.preload_order: 'wavefront' with pe_array.dataflow 'os'"),
        ("ws", {"drain_words_per_cycle": 2}, "microarch.drain_words_per_cycle: 2 with pe_array.dataflow 'ws'"),
        ("ws", {"preload_order": "wavefront", "preload_rows_per_cycle": 2}, "preload_rows_per_cycle: 2"),
        ("is", {"stream_bank_swap_cycles": 3}, "stream_bank_depth: missing"),
        ("ws", {"fold_switch_cycles": -1}, "greater than or equal to 0"),
    ],
)
def test_controller_mechanisms_refuse_settings_no_array_has(dataflow, microarch, says):
    def mutate(d):
        d["pe_array"]["dataflow"] = dataflow
        d["microarch"].update(microarch)

    _, text = errors_for(mutate)
    assert says in text, text
