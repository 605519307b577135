"""Package exports stay the exported functions after their same-named submodules are imported."""

import subprocess
import sys


def test_importing_a_same_named_submodule_does_not_hide_the_exported_function():
    # a fresh interpreter: the order of imports is the point (a submodule import binds it on the package)
    code = ("import analysis.sweep, analysis.search\n"
            "from analysis import search, sweep\n"
            "from analysis.sweep import sweep as direct\n"
            "assert callable(sweep) and sweep is direct and callable(search), (sweep, search)\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
