"""Multi-objective search over a sweep space too large to enumerate (Optuna's NSGA-II sampler).

>>> from analysis import SweepSpace                                           # doctest: +SKIP
>>> space = SweepSpace(accuracy="none", blocks=["8x8", "16x16", "32x32"], sparsities=[0.0, 0.5, 0.75, 0.9],
...                    hardware_axes={"clock_mhz": [200, 500, 1000], "pe_array.rows,pe_array.cols":
...                                   [[16, 16], [32, 32], [64, 64]]})   # doctest: +SKIP
>>> table = search(space, trials=40, out_dir="results/search")               # doctest: +SKIP

Each trial picks one value per axis of the space (pruning point, accelerator, hardware-axis combination,
sequence length, batch) and is evaluated exactly like a sweep point -- through :func:`analysis.sweep.sweep`
on a one-point sub-space in the same ``out_dir`` -- so its row, cache entries and ``point_id`` are the ones
a full sweep would produce (a later ``bsp sweep`` of the space reuses them). Infeasible hardware
combinations are pruned trials. Returns every evaluated point; the front is ``pareto_front(table, objectives)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.pareto import parse_objectives
from analysis.space import SweepSpace, load_space
from analysis.store import SEARCH_FILENAME, write_table_atomic
from bsp_common.progress import progress_bar

__all__ = ["DEFAULT_OBJECTIVES", "search"]

log = logging.getLogger(__name__)

DEFAULT_OBJECTIVES = {"latency_s": "min", "energy_pj": "min"}
POPULATION = 8  # NSGA-II generation size: small, so that a few dozen trials already evolve


def _point_space(space: SweepSpace, choice: dict) -> SweepSpace:
    pruning = choice["pruning"]
    dense = pruning["method"] == "dense"
    axes = {key: [value] for key, value in choice["hardware"].items()}
    return replace(space, blocks=[space.blocks[0] if dense else pruning["block"]],
                   granularities=[space.granularities[0] if dense else pruning["granularity"]],
                   sparsities=[pruning["target_sparsity"]], methods=[space.methods[0] if dense else pruning["method"]],
                   configs=[choice["config"]], seq_lens=[choice["seq_len"]], batches=[choice["batch"]],
                   hardware_axes=axes)  # fmt: skip


def search(
    space: SweepSpace | str | Path | None,
    trials: int,
    objectives: Mapping[str, str] | str = DEFAULT_OBJECTIVES,
    out_dir: str | Path = "results/search",
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``trials`` NSGA-II trials over ``space``; returns one row per evaluated point (deduplicated)."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise ModuleNotFoundError("search: needs optuna (pip install optuna)") from None
    from analysis.sweep import sweep

    space = space if isinstance(space, SweepSpace) else load_space(space)
    objectives = parse_objectives(objectives)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 100_000:
        raise ValueError(f"trials: must be an integer in [1, 100000], got {trials!r}")
    if "accuracy" in objectives and space.accuracy == "none":
        raise ValueError("objectives: 'accuracy' needs a space with an accuracy source (accuracy: table:NAME, "
                         "proxy or train), not 'none'")
    axes = {"pruning": space.pruning_points(), "config": list(space.configs), "hardware": space.hardware_variants(),
            "seq_len": list(space.seq_lens), "batch": list(space.batches)}  # fmt: skip
    rows: dict[str, dict] = {}

    def objective(trial) -> tuple[float, ...]:
        choice = {name: values[trial.suggest_categorical(name, list(range(len(values))))]
                  for name, values in axes.items()}  # fmt: skip
        table = sweep(_point_space(space, choice), out_dir=out_dir, progress=False, results_file=None)
        row = table.iloc[0].to_dict()
        if row.get("error") is not None and not pd.isna(row.get("error")):
            raise optuna.TrialPruned(row["error"])
        if row.get("feasible") is False:
            raise optuna.TrialPruned(row.get("infeasible_reason", "infeasible"))
        unknown = [name for name in objectives if name not in row]
        if unknown:  # bad input, found on the first evaluated point rather than after every trial
            numeric = [k for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)]
            raise ValueError(f"objectives: {unknown} not columns of a sweep point; numeric columns: {numeric}")
        rows[row["point_id"]] = row
        values = [row.get(name) for name in objectives]
        if any(v is None or pd.isna(v) for v in values):
            raise optuna.TrialPruned(f"no value for {list(objectives)}")
        return tuple(float(v) for v in values)

    # ERROR: a trial that raises (bad input in the space) is refused by the caller in one line, without
    # Optuna's warning and traceback printed first
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = optuna.samplers.NSGAIISampler(population_size=POPULATION, seed=seed)
    study = optuna.create_study(directions=["minimize" if s == "min" else "maximize" for s in objectives.values()],
                                sampler=sampler)  # fmt: skip
    bar = progress_bar(progress, total=trials, desc="search", unit="trial")
    study.optimize(objective, n_trials=trials, callbacks=[lambda study, trial: bar.update()])
    bar.close()
    log.info("%d trials, %d distinct feasible points", trials, len(rows))
    table = pd.DataFrame(list(rows.values()))
    write_table_atomic(table, Path(out_dir) / SEARCH_FILENAME)
    return table
