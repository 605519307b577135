"""hwsim and the hardware-only CLI commands must not load torch or transformers (start-up time)."""

import json
import subprocess
import sys

import pytest
from conftest import tiny_classifier

HEAVY = ("torch", "transformers")


def _heavy_modules_after(code: str) -> list[str]:
    probe = code + f"\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_hwsim_simulates_a_bert_config_without_torch(tmp_path):
    config = tmp_path / "config.json"
    tiny_classifier("bert").config.to_json_file(config)
    code = f"""
from hwsim import build_workload, load_config, read_hf_config, simulate
result = simulate(load_config("asic-16x16-int8"), build_workload(read_hf_config({str(config)!r}), seq_len=8))
assert result.totals["cycles"] > 0
"""
    assert _heavy_modules_after(code) == []


@pytest.mark.parametrize("argv", [["--help"], ["configs", "list"], ["configs", "show", "fpga-zcu102"],
                                  ["simulate", "--config", "asic-16x16-int8", "--hf-config", "CONFIG", "--json"],
                                  ["pareto", "TABLE", "--objectives", "cycles:min,accuracy:max"]])  # fmt: skip
def test_hardware_only_commands_do_not_import_torch(argv, tmp_path):
    config = tmp_path / "config.json"
    tiny_classifier("bert").config.to_json_file(config)
    table = tmp_path / "t.csv"
    table.write_text("cycles,accuracy\n10,0.5\n20,0.9\n")
    argv = [str(config) if a == "CONFIG" else str(table) if a == "TABLE" else a for a in argv]
    code = f"""
from bsp_cli import main
try:
    main({argv!r})
except SystemExit:
    pass
"""
    assert _heavy_modules_after(code) == []
