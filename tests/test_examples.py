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


def _stated(path: Path) -> list[tuple[str, object, object]]:
    """(key path, value, stated default or _SAME) for each key line of an example sweep file."""
    import re

    import yaml

    rows, parent = [], None
    for line in path.read_text().splitlines():
        match = re.match(r"^(\s*)(\w+):\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent, key, value, comment = match.groups()
        if not indent:
            parent = key if value == "" else None
        elif parent != "budget":
            continue  # hardware_axes entries have no default
        stated = re.search(r"\(default: (.+)\)\s*$", comment or "")
        if value != "":
            rows.append((f"budget.{key}" if indent else key, yaml.safe_load(value),
                         yaml.safe_load(stated.group(1)) if stated else _SAME))  # fmt: skip
    return rows


_SAME = object()


@pytest.mark.parametrize("name", ["sweep_hardware.yaml", "sweep_accuracy.yaml"])
def test_example_defaults_are_the_codes(name):
    """A value with no "(default: X)" is the default; a stated default X is the code's, and differs from the value."""
    from analysis.space import AccuracyBudget, SweepSpace

    space, budget = SweepSpace(), AccuracyBudget()
    checked = 0
    for key, value, stated in _stated(EXAMPLES / name):
        default = getattr(budget, key.removeprefix("budget.")) if key.startswith("budget.") else getattr(space, key)
        if stated is _SAME:
            assert value == default, f"{name}: {key}: {value!r} is shown without a note but the default is {default!r}"
        else:
            assert stated == default, f"{name}: {key}: states default {stated!r}, the code's is {default!r}"
            assert value != default, f"{name}: {key}: marked as not the default but equals it"
        checked += 1
    assert checked >= 9  # every top-level key of the smaller file
