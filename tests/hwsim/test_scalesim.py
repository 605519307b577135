"""SCALE-Sim interop. The cycle table below was measured with SCALE-Sim 3.0.0 (pip, numpy<2.4) on a
4x4 array, 1 MB SRAMs, "Total Cycles" column of COMPUTE_REPORT.csv; re-measure with
``python -m benchmarks.sim_speed --scalesim-python VENV/bin/python``."""

import pytest

from hwsim import Gemm
from hwsim.scalesim import load_scalesim_config, load_scalesim_topology, scalesim_cycles, write_scalesim_config

# (M, N, K) -> {dataflow: SCALE-Sim 3.0.0 cycles}
MEASURED_4X4 = {
    (16, 16, 16): {"ws": 415, "os": 351, "is": 415},
    (10, 7, 9): {"ws": 119, "os": 89, "is": 152},
    (5, 13, 6): {"ws": 119, "os": 95, "is": 91},
    (33, 20, 17): {"ws": 1074, "os": 1034, "is": 1349},
}


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_compat_cycles_match_scalesim(tmp_path, dataflow):
    config = load_scalesim_config(write_scalesim_config(tmp_path / "arch.cfg", 4, 4, dataflow))
    assert (config.pe_array.rows, config.pe_array.cols, config.pe_array.dataflow.value) == (4, 4, dataflow)
    assert config.buffers.weight_bytes == 1024 * 1024
    for (M, N, K), cycles in MEASURED_4X4.items():
        assert scalesim_cycles(Gemm("g", M=M, K=K, N=N), config) == cycles[dataflow]


def test_topology_gemm_and_conv_rows(tmp_path):
    path = tmp_path / "topo.csv"
    path.write_text("Layer name, M, N, K,\nfc1, 10, 7, 9,\n")
    (op,) = load_scalesim_topology(path).ops
    assert (op.M, op.N, op.K) == (10, 7, 9)
    path.write_text("Layer, IFMAP H, IFMAP W, Filt H, Filt W, Ch, Num filt, Stride,\nconv1, 8, 8, 3, 3, 4, 16, 1,\n")
    (op,) = load_scalesim_topology(path).ops
    assert (op.M, op.K, op.N) == (36, 36, 16)


def test_bad_scalesim_inputs(tmp_path):
    path = write_scalesim_config(tmp_path / "arch.cfg", 4, 4, "ws")
    path.write_text(path.read_text().replace("Dataflow: ws", "Dataflow: diagonal"))
    with pytest.raises(ValueError, match="Dataflow 'diagonal'"):
        load_scalesim_config(path)
    path.write_text("[general]\nrun_name = x\n")
    with pytest.raises(ValueError, match="missing"):
        load_scalesim_config(path)
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, M, N, K,\nfc, 1, two, 3,\n")
    with pytest.raises(ValueError, match="field 3 must be a whole number"):
        load_scalesim_topology(topo)


def test_headerless_topologies_percent_signs_and_tiny_bandwidths_are_handled(tmp_path):
    topo = tmp_path / "t.csv"
    topo.write_text("fc1, 10, 7, 9,\nfc2, 4, 4, 4,\n")  # SCALE-Sim would silently drop fc1 as the header
    with pytest.raises(ValueError, match=r"t.csv:1: the first row 'fc1, 10, 7, 9' is a layer"):
        load_scalesim_topology(topo)
    path = write_scalesim_config(tmp_path / "arch.cfg", 4, 4, "ws")
    path.write_text(path.read_text().replace("run_name = ", "run_name = 100%_"))  # a plain character, read as such
    assert load_scalesim_config(path).pe_array.rows == 4
    from hwsim.config import ConfigError, derive_config

    with pytest.raises(ConfigError, match=r"dram.bw_gb_per_s"):
        derive_config("asic-16x16-int8", {"dram.bw_gb_per_s": 1e-300})
