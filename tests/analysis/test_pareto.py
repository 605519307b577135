import numpy as np
import pandas as pd
import pytest

from analysis.pareto import hypervolume_2d, knee_point, pareto_front, pareto_mask, parse_objectives


def naive_mask(costs: np.ndarray) -> np.ndarray:
    """O(n^2): a row is dominated if some row is <= everywhere and < somewhere (all minimised)."""
    n = len(costs)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if np.all(costs[j] <= costs[i]) and np.any(costs[j] < costs[i]):
                mask[i] = False
                break
    return mask


@pytest.mark.parametrize("seed", range(100))
def test_matches_naive_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 80)), int(rng.integers(1, 4))
    values = rng.integers(0, 6, size=(n, k)).astype(float)  # few levels -> many ties and duplicates
    senses = rng.choice(["min", "max"], size=k)
    df = pd.DataFrame(values, columns=[f"o{i}" for i in range(k)])
    objectives = {f"o{i}": s for i, s in enumerate(senses)}
    costs = values * np.where(senses == "max", -1.0, 1.0)
    np.testing.assert_array_equal(pareto_mask(df, objectives), naive_mask(costs))


def test_sixty_thousand_rows_all_on_the_front():
    x = np.arange(60_000, dtype=float)
    df = pd.DataFrame({"latency": x, "energy": x[::-1].copy()})
    assert pareto_mask(df, "latency:min,energy:min").all()
    df.loc[5, "energy"] = 1e9  # now dominated by row 4 (lower latency and energy)
    assert pareto_mask(df, "latency:min,energy:min").sum() == 59_999


def test_empty_fronts_and_bad_references_are_refused_by_name():
    for empty in (pd.DataFrame({"x": [np.nan, 1.0], "y": [1.0, np.nan]}), pd.DataFrame({"x": [], "y": []})):
        with pytest.raises(ValueError, match="knee_point: no row has a number in both"):
            knee_point(empty, "x:min,y:min")
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [2.0, 1.0]})
    for reference in ((np.nan, 3), (3,), "high"):
        with pytest.raises(ValueError, match="hypervolume_2d: reference must be two finite numbers"):
            hypervolume_2d(df, "x:min,y:min", reference)


def test_distinct_keeps_one_of_duplicates_and_input_unchanged():
    df = pd.DataFrame({"a": [1, 1, 2], "b": [1, 1, 0]})
    copy = df.copy()
    assert pareto_mask(df, "a:min,b:min").tolist() == [True, True, True]
    assert pareto_mask(df, "a:min,b:min", distinct=True).tolist() == [True, False, True]
    pd.testing.assert_frame_equal(df, copy)


def test_nan_rows_are_never_on_front():
    df = pd.DataFrame({"acc": [0.9, np.nan, 0.8], "cycles": [10, 1, 5]})
    assert pareto_mask(df, {"acc": "max", "cycles": "min"}).tolist() == [True, False, True]


def test_front_rows_sorted_and_all_columns():
    df = pd.DataFrame({"acc": [0.9, 0.8, 0.95], "cycles": [10, 5, 20], "block": ["a", "b", "c"]})
    front = pareto_front(df, "acc:max,cycles:min")
    assert front["block"].tolist() == ["c", "a", "b"]


def test_hypervolume_and_knee_closed_form():
    # front (min, min): (1, 3), (2, 2), (3, 1); reference (4, 4) -> area 3 + 2 + 1 = 6
    df = pd.DataFrame({"x": [1, 2, 3, 3.5], "y": [3, 2, 1, 3.5]})
    assert hypervolume_2d(df, "x:min,y:min", (4, 4)) == pytest.approx(6.0)
    df2 = pd.DataFrame({"x": [0, 1, 10], "y": [10, 1, 0]})
    assert knee_point(df2, "x:min,y:min") == 1


@pytest.mark.parametrize(("text", "match"), [("acc", "NAME:min"), ("acc:up", "sense 'up'"), ("", "NAME:min")])
def test_bad_objectives(text, match):
    with pytest.raises(ValueError, match=match):
        parse_objectives(text)


def test_unknown_column_and_non_numeric():
    df = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    with pytest.raises(ValueError, match="not in the table"):
        pareto_mask(df, "zzz:min")
    with pytest.raises(ValueError, match="column 'a' holds a non-numeric value 'x' in row 0"):
        pareto_mask(df, "a:min,b:min")
    mixed = pd.DataFrame({"a": [1.0, "fast", None], "b": [1, 2, 3]})
    with pytest.raises(ValueError, match="column 'a' holds a non-numeric value 'fast' in row 1"):
        pareto_mask(mixed, "a:min,b:min")
    empty_cells = pd.DataFrame({"a": [None, None], "b": [1, 2]})
    with pytest.raises(ValueError, match="no numeric values"):
        pareto_mask(empty_cells, "a:min,b:min")


def test_repeated_objective_is_refused():
    with pytest.raises(ValueError, match="'cycles' given more than once"):
        parse_objectives("cycles:min,cycles:max")
