"""The choice of forecaster trimmed to the final forecasts that fit the time left."""

from __future__ import annotations

import numpy as np
import pytest

from flows._forecast_final import choice_seconds, local_seconds, select_within
from tasks.forecast_select import Selection

ACTUAL = np.full((4, 2, 3), 10.0)
SCALES = np.ones((4, 2))
# 1 and 2 err by +1 and -1, so that their mean is exact; 3 errs by +3
FORECASTS = {1: ACTUAL + 1, 2: ACTUAL - 1, 3: ACTUAL + 3}
FINAL = {1: 50.0, 2: 5.0, 3: 1.0}


def _members(selection: Selection) -> set[int]:
    return {c for weights in selection.weights for c in weights}


def _select(seconds, final=FINAL, local=frozenset({1, 2, 3})):
    return select_within(FORECASTS, ACTUAL, SCALES, "mase", True, None, final, set(local),
                         seconds)


def test_the_best_choice_stands_when_its_final_forecasts_fit():
    for seconds in (None, 100.0):
        selection = _select(seconds)
        assert _members(selection) == {1, 2}
        assert "left_out_for_time" not in selection.facts


def test_the_costliest_local_member_leaves_the_choice_when_time_is_short():
    selection = _select(20.0)
    assert 1 not in _members(selection)
    assert selection.facts["left_out_for_time"] == [1]
    assert sum(local_seconds(selection, FINAL, {1, 2, 3}).values()) <= 20.0


def test_a_global_member_is_not_counted_and_the_last_candidate_is_kept():
    selection = _select(20.0, {**FINAL, 1: 1_000.0}, local={2, 3})
    assert _members(selection) == {1, 2}  # 1 is global: its refit is decided later
    only = _select(0.0)
    assert len(_members(only)) == 1 and len(only.facts["left_out_for_time"]) == 2
    late = _select(-10.0, local={3})  # past the budget, with only global members chosen
    assert _members(late) == {1, 2} and "left_out_for_time" not in late.facts


def test_a_member_costs_its_share_of_the_series():
    per_series = Selection("per_series", [{1: 1.0}, {2: 1.0}, {2: 0.5, 3: 0.5}, {2: 1.0}], {})
    assert local_seconds(per_series, FINAL, {1, 2}) == {1: pytest.approx(12.5),
                                                        2: pytest.approx(3.75)}


def test_the_backtests_keep_time_for_the_final_forecasts_of_the_choice_so_far():
    seconds = choice_seconds(ACTUAL, SCALES, "mase", True, None, {1, 2, 3})
    assert seconds(FORECASTS, FINAL) == pytest.approx(55.0)  # 1 and 2 together
    assert seconds({3: FORECASTS[3]}, FINAL) == pytest.approx(1.0)
    assert seconds({1: np.full_like(ACTUAL, np.nan)}, FINAL) == 0.0  # nothing usable yet


def test_past_the_budget_final_forecasts_of_milliseconds_still_fit():
    """With the backtests over the budget (-12 s left), every member was left out but one:
    a run published plain naive forecasts (MASE 17.3) over validated seasonal ones (1.66),
    whose final forecasts take milliseconds."""
    selection = _select(-12.0, {1: 50.0, 2: 0.001, 3: 0.001})
    assert selection.facts["left_out_for_time"] == [1]
    assert 2 in _members(selection)


def test_forecasts_worse_than_naive2_or_better_ones_left_out_are_warned_of():
    """A run published naive forecasts 3.9 times as bad as Naive2 and said nothing of the
    seasonal naive ones it had validated at a tenth of their error."""
    from flows._forecast import forecast_warnings
    from tasks.types import CandidateResult, CandidateSpec

    chosen = CandidateResult(CandidateSpec(2, "naive", {}), "ok", {"mase": 17.3, "owa": 3.9114})
    better = CandidateResult(CandidateSpec(3, "seasonal_naive", {}), "ok",
                             {"mase": 1.66, "owa": 0.41})
    worse = CandidateResult(CandidateSpec(4, "theta", {}), "ok", {"mase": 20.0, "owa": 4.2})
    selection = Selection("global", [{2: 1.0}], {}, {"left_out_for_time": [3, 4]})
    assert forecast_warnings(chosen, [chosen, better, worse], selection, "mase") == [
        "the published forecasts did worse than the Naive2 reference (naive forecasts of the "
        "seasonally adjusted series) on the backtests: OWA 3.911, above 1",
        "candidate(s) seasonal_naive (3) did better on the backtests (mase 1.66 against 17.3) "
        "but their final forecasts did not fit the time left; give a larger time budget"]
    fine = CandidateResult(CandidateSpec(3, "theta", {}), "ok", {"mase": 0.8, "owa": 0.9})
    assert forecast_warnings(fine, [fine], Selection("global", [{3: 1.0}], {}), "mase") == []


def test_a_global_candidate_affords_no_rows_once_the_time_has_run_out():
    """Past the budget, its rows were negative ('the time left affords -4120 training rows')."""
    import time

    from flows._forecast_backtest import _global_rows
    from flows._loop import Budget

    assert _global_rows(Budget(time.time() - 40, 30.0), n_features=13, cost=1.0) == 0
    assert _global_rows(Budget(time.time(), 30.0), n_features=13, cost=1.0) > 0
