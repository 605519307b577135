"""cocotb 2.1 testbench for the reference arrays (``bsp_ws_array``, ``bsp_os_array``).

The array loads its memories itself (``$readmemh`` of the export's files, named by its parameters) and
writes ``Y_FILE`` when done; this testbench clocks it, pulses ``start``, waits for ``done`` and reports the
cycle count the array counted in ``$BSP_RTL_RESULT`` (JSON). Given ``$BSP_RTL_GOLDEN_Y`` (a ``$readmemh``
file of the expected outputs) and/or ``$BSP_RTL_EXPECTED_CYCLES``, it compares the array's outputs word for
word and its cycle count, reports both, and fails on a difference.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

CLOCK_PERIOD_NS = 10  # any period works: the array's behaviour is counted in cycles
REPORTED_MISMATCHES = 5


def read_hex(path):
    """Words of a ``$readmemh`` file (``//`` comments, one word per line)."""
    with open(path) as handle:
        return [int(text, 16) for text in (line.split("//")[0].strip() for line in handle) if text]


@cocotb.test()
async def run_gemm(dut):
    """Reset, start, wait for done; the cycle budget comes from the caller's model (with headroom)."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
    dut.rst.value = 1
    dut.start.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    budget = int(os.environ["BSP_RTL_MAX_CYCLES"])
    for _ in range(budget):
        await RisingEdge(dut.clk)
        if int(dut.done.value) == 1:
            break
    else:
        raise TimeoutError(f"the array did not finish within {budget} cycles")
    await ClockCycles(dut.clk, 2)  # the array writes Y_FILE the cycle after done
    report = {"cycles": int(dut.cycles.value), "checked": 0, "mismatches": 0, "first_mismatches": [], "cycles_ok": True}
    if os.environ.get("BSP_RTL_GOLDEN_Y"):
        got, golden = read_hex(os.environ["BSP_RTL_Y_FILE"]), read_hex(os.environ["BSP_RTL_GOLDEN_Y"])
        mask = (1 << int(os.environ["BSP_RTL_ACC_BITS"])) - 1  # golden words may be wider than the array's
        wrong = [i for i in range(max(len(got), len(golden)))
                 if i >= len(got) or i >= len(golden) or got[i] & mask != golden[i] & mask]  # fmt: skip
        report.update(checked=len(golden), mismatches=len(wrong),
                      first_mismatches=[{"word": i, "got": got[i] if i < len(got) else None,
                                         "golden": golden[i] if i < len(golden) else None}
                                        for i in wrong[:REPORTED_MISMATCHES]])  # fmt: skip
    if os.environ.get("BSP_RTL_EXPECTED_CYCLES"):
        report["cycles_ok"] = report["cycles"] == int(os.environ["BSP_RTL_EXPECTED_CYCLES"])
    with open(os.environ["BSP_RTL_RESULT"], "w") as handle:
        json.dump(report, handle)
    assert report["mismatches"] == 0, f"{report['mismatches']} outputs differ: {report['first_mismatches']}"
    assert report["cycles_ok"], f"{report['cycles']} cycles, expected {os.environ.get('BSP_RTL_EXPECTED_CYCLES')}"
