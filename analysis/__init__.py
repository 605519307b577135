"""Design-space analysis: sweeps, Pareto fronts, plots, and the ``bsp`` command line."""

from analysis.pareto import hypervolume_2d, knee_point, pareto_front, pareto_mask
from analysis.space import AccuracyBudget, SweepSpace, load_space
from analysis.sweep import sweep

__all__ = [
    "AccuracyBudget",
    "SweepSpace",
    "hypervolume_2d",
    "knee_point",
    "load_space",
    "pareto_front",
    "pareto_mask",
    "sweep",
]
