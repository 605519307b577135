"""cocotb 2.1 testbench for the reference arrays (``bsp_ws_array``, ``bsp_os_array``).

The array loads its memories itself (``$readmemh`` of the export's files, named by its parameters) and
writes ``Y_FILE`` when done; this testbench clocks it, pulses ``start``, waits for ``done`` and records the
cycle count the array reports in ``$BSP_RTL_RESULT`` (JSON). Outputs are compared by the caller
(``rtl.runner``), bit for bit, against the golden vectors.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

CLOCK_PERIOD_NS = 10  # any period works: the array's behaviour is counted in cycles


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
    with open(os.environ["BSP_RTL_RESULT"], "w") as handle:
        json.dump({"cycles": int(dut.cycles.value)}, handle)
