"""The files in examples/ load and run as the README says (hardware-only parts; training examples only load)."""

from pathlib import Path

import pytest

from analysis.space import load_space
from bsp_cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["sweep_hardware.yaml", "sweep_accuracy.yaml"])
def test_example_sweep_files_load(name):
    space = load_space(EXAMPLES / name)
    assert space.n_points == len(space.hardware_points()) > 0


def test_hardware_example_counts_its_points():
    space = load_space(EXAMPLES / "sweep_hardware.yaml")
    assert space.n_points == 108 and len(space.hardware_variants()) == 18  # as its closing comment says


def test_scalesim_example_runs(capsys):
    argv = ["simulate", "--scalesim-cfg", str(EXAMPLES / "scalesim" / "arch.cfg"),
            "--topology", str(EXAMPLES / "scalesim" / "gemms.csv")]  # fmt: skip
    assert main([*argv, "--compat", "scalesim"]) == 0
    # by hand, ws 32x32: folds x (M + 2R + C - 2) - 1 per layer = 4 x (576 x 222 - 1) + 2 x (2304 x 222 - 1)
    assert "1534458 cycles" in capsys.readouterr().out
    assert main(argv) == 0
