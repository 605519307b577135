"""Run the layers of a ``bsp export`` directory on the reference array RTL with cocotb 2.1.

Copied by ``bsp export --testbench cocotb`` to ``<export>/tb/run_cocotb.py``; it needs only Python, cocotb
and a simulator (Icarus Verilog by default), not bsp-codesign::

    python tb/run_cocotb.py                      # every layer; exit 0 only if all pass
    python tb/run_cocotb.py --layer bert_encoder_layer_0_attention_self_query --sim icarus

For each layer with array memories in ``manifest.json`` it builds ``rtl/<top>.v`` with the manifest's
Verilog parameters (the config's microarchitecture and the layer's shape), runs ``tb/bsp_array_tb.py``
(reset, start, wait for ``done``) and checks, in the testbench, that the outputs the array wrote equal
``y_int.hex`` word for word and that its cycle count equals hwsim's (``compute_cycles``). Builds and logs
go under ``tb/build/<layer>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

TB_DIR = Path(__file__).resolve().parent
# the arrays' $readmemh file parameters -> the memory each loads
FILE_PARAMETERS = {"ROW_PTR_FILE": "row_ptr", "COL_IDX_FILE": "col_idx", "W_STREAM_FILE": "w_stream",
                   "X_FILE": "x_values"}  # fmt: skip
CYCLE_HEADROOM = 2  # the budget is twice hwsim's count (plus a constant): a hung array fails, a slow one is measured


def file_parameters(files: dict, y_file: Path) -> dict[str, str]:
    """The arrays' file parameters: the memories ``files`` (``{"row_ptr", "col_idx", "w_stream", "x_values"}``
    -> path) they load and the ``Y_FILE`` they write."""
    return {**{key: str(files[part]) for key, part in FILE_PARAMETERS.items()}, "Y_FILE": str(y_file)}


def run_array(top: str, parameters: dict, rtl_dir: Path, work_dir: Path, max_cycles: int, sim: str = "icarus",
              golden_y: Path | None = None, expected_cycles: int | None = None) -> dict:  # fmt: skip
    """Build ``top`` with Verilog ``parameters`` (file names as plain strings) and run the testbench; returns
    ``{"cycles", "checked", "mismatches", "first_mismatches", "cycles_ok"}`` as the testbench reported them.
    With ``golden_y`` / ``expected_cycles`` the testbench itself fails on a difference."""
    from cocotb_tools.runner import get_runner

    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    quoted = {key: f'"{value}"' if isinstance(value, str) else value for key, value in parameters.items()}
    if str(TB_DIR) not in sys.path:
        sys.path.insert(0, str(TB_DIR))  # the runner hands sys.path to the simulator's Python
    runner = get_runner(sim)
    build_dir = work_dir / "build"
    runner.build(sources=[Path(rtl_dir) / f"{top}.v"], includes=[Path(rtl_dir)], hdl_toplevel=top,
                 parameters=quoted, build_dir=build_dir, always=True, log_file=work_dir / "build.log")  # fmt: skip
    result = work_dir / "result.json"
    result.unlink(missing_ok=True)
    env = {"BSP_RTL_RESULT": str(result), "BSP_RTL_MAX_CYCLES": str(max_cycles), "BSP_RTL_Y_FILE": parameters["Y_FILE"],
           "BSP_RTL_ACC_BITS": str(parameters["AB"])}  # fmt: skip
    if golden_y is not None:
        env["BSP_RTL_GOLDEN_Y"] = str(golden_y)
    if expected_cycles is not None:
        env["BSP_RTL_EXPECTED_CYCLES"] = str(expected_cycles)
    with contextlib.suppress(SystemExit):  # under pytest the runner exits on a failed test; the report says why
        runner.test(test_module="bsp_array_tb", hdl_toplevel=top, build_dir=build_dir, test_dir=work_dir,
                    extra_env=env, log_file=work_dir / "sim.log")  # fmt: skip
    if not result.is_file():
        raise RuntimeError(f"the RTL simulation did not finish; see {work_dir / 'sim.log'}")
    log = (work_dir / "sim.log").read_text(errors="replace")
    if "BSP-RTL-ERROR" in log:
        raise RuntimeError(f"the RTL reported a controller inconsistency; see {work_dir / 'sim.log'}")
    return json.loads(result.read_text())


def run_layer(export_dir: Path, layer: dict, manifest: dict, work_dir: Path, sim: str = "icarus") -> dict:
    """Run one manifest layer (its ``array`` entry) from the export's files; returns the testbench's report."""
    array, rtl = layer["array"], manifest["rtl"]
    files = {part: (export_dir / path).resolve() for part, path in array["files"].items()}
    parameters = {**rtl["parameters"], **array["parameters"],
                  **file_parameters(files, Path(work_dir).resolve() / "y_rtl.hex")}
    budget = CYCLE_HEADROOM * array["compute_cycles"] + 1000
    return run_array(rtl["top"], parameters, export_dir / "rtl", work_dir, budget, sim, files["y_int"],
                     array["compute_cycles"])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export-dir", type=Path, default=TB_DIR.parent, help="the export (default: tb/'s parent)")
    parser.add_argument("--layer", action="append", help="layer directory or weight name (repeatable; default: all)")
    parser.add_argument("--sim", default="icarus", help="cocotb simulator (default icarus)")
    parser.add_argument("--work", type=Path, help="build directory (default: <export>/tb/build)")
    args = parser.parse_args(argv)
    export_dir = args.export_dir.resolve()
    manifest = json.loads((export_dir / "manifest.json").read_text())
    if not manifest["rtl"]["supported"]:
        print(f"error: {manifest['rtl']['why_not']}", file=sys.stderr)
        return 2
    layers = [layer for layer in manifest["layers"] if "array" in layer]
    if args.layer:
        known = {layer["dir"] for layer in layers} | {layer["name"] for layer in layers}
        unknown = sorted(set(args.layer) - known)
        if unknown:
            print(f"error: --layer: {', '.join(unknown)} not in the export (layers: "
                  f"{', '.join(layer['dir'] for layer in layers)})", file=sys.stderr)  # fmt: skip
            return 2
        layers = [layer for layer in layers if layer["dir"] in args.layer or layer["name"] in args.layer]
    work = (args.work or export_dir / "tb" / "build").resolve()
    failed = 0
    for layer in layers:
        try:
            report = run_layer(export_dir, layer, manifest, work / layer["dir"], args.sim)
        except RuntimeError as error:
            report = {"error": str(error)}
        ok = not report.get("error") and report["mismatches"] == 0 and report["cycles_ok"]
        failed += not ok
        hwsim = layer["array"]["compute_cycles"]
        detail = report.get("error") or (f"{report['checked']} outputs, {report['mismatches']} mismatches; "
                                         f"cycles {report['cycles']} (hwsim {hwsim})")  # fmt: skip
        print(f"{'PASS' if ok else 'FAIL'} {layer['dir']}: {detail}")
    print(f"{len(layers) - failed} of {len(layers)} layers pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
