"""Design-space analysis: sweeps, Pareto fronts, plots and reports (the ``bsp`` command line is ``bsp_cli``).

Names are imported lazily (PEP 562): ``from analysis.pareto import pareto_front`` or ``bsp pareto`` does not
load the pruning stack (torch, transformers); ``analysis.sweep`` does when it is first used.
"""

from __future__ import annotations

from bsp_common.lazy import lazy_exports

_EXPORTS = {
    "hypervolume_2d": "analysis.pareto",
    "knee_point": "analysis.pareto",
    "pareto_front": "analysis.pareto",
    "pareto_mask": "analysis.pareto",
    "AccuracyBudget": "analysis.space",
    "SweepSpace": "analysis.space",
    "load_space": "analysis.space",
    "sweep": "analysis.sweep",
    "search": "analysis.search",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
