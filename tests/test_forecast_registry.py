"""Forecasters in the model registry: the champion's forecasts of the periods new to it against
the challenger's backtest of the same periods; the newer forecaster replaces the champion unless
the champion was clearly better."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from flows._forecast_registry import (Backtest, ForecastComparison, compare_forecasts,
                                      decide_forecast, overlap)
from models._forecast_model import ForecastModel
from tasks.backtest import Naive2Reference, actuals, mase_scales
from tasks.forecast_data import Panel
from tests.test_forecast import promo_sales, shop_sales

END = pd.Timestamp("2024-03-02 23:00")
N = 48


def _run(horizon: int = 4, windows: int = 2, seed: int = 0, keys=(("a",), ("b",))) -> Backtest:
    rng = np.random.default_rng(seed)
    values = [10 + rng.normal(0, 1, N).cumsum() for _ in keys]
    panel = Panel(list(keys), values, [END] * len(keys), "h", 24)
    actual = actuals(panel, horizon, windows)
    return Backtest(panel, horizon, windows, actual, actual.copy(), mase_scales(
        panel, horizon, windows), Naive2Reference(1.0, 1.0))


def _champion(run: Backtest, ends_before: int, horizon: int, error: float,
              freq: str = "h", feature_names: tuple = ()) -> ForecastModel:
    """Trained up to ``ends_before`` periods before the run's end: its forecasts are the run's
    actual values plus ``error``."""
    start = N - ends_before
    paths = np.stack([np.r_[v[start:start + horizon], np.full(
        max(0, horizon - ends_before), np.nan)][:horizon] + error for v in run.panel.values])
    ends = [END - pd.Timedelta(hours=ends_before)] * len(run.panel)
    return ForecastModel("hour", ["shop"], "sales", freq, horizon, run.panel.keys, ends, paths,
                         np.ones(len(run.panel)), {}, feature_names=list(feature_names))


def test_the_periods_new_to_the_champion_are_found_in_the_backtest_windows():
    run = _run(keys=(("a",), ("b",), ("c",)))
    champion = _champion(run, ends_before=6, horizon=4, error=0.0)
    champion.keys[2] = ("gone",)  # a series the champion never saw is not compared
    champion.__setstate__(champion.__dict__)
    where, times, newer, ahead = overlap(champion, run)
    assert newer and not ahead and len(where) == 4
    # It forecast 5..2 periods before the end. The older window (from 8 before) forecast the
    # first two at a longer lead than it did; the newest (from 4 before, after its end) the
    # last two: those are compared, its steps 3 and 4.
    assert list(times[:2]) == list(pd.date_range(END - pd.Timedelta(hours=3), periods=2,
                                                 freq="h"))
    assert where[:2].tolist() == [[0, 0, 0, 0, 3], [0, 0, 1, 0, 4]]
    assert set(where[:, 0]) == set(where[:, 3]) == {0, 1}
    again = _champion(run, ends_before=2, horizon=4, error=0.0)  # retrained within a horizon
    assert compare_forecasts(again, run, "mae").problem.startswith(
        "no backtest window of this run starts at or after the champion's end")


@pytest.mark.parametrize(("champion_error", "challenger_error", "promoted"), [
    (0.0, 3.0, False),  # the champion forecast the new periods clearly better: it stays
    (3.0, 0.0, True),
    (0.5, 0.5, True),  # as good: the newer forecaster replaces it
])
def test_the_newer_forecaster_replaces_the_champion_unless_clearly_worse(
        champion_error, challenger_error, promoted):
    run = _run(keys=tuple((f"s{i}",) for i in range(6)))
    run = Backtest(**{**run.__dict__, "forecast": run.actual + challenger_error})
    # Its horizon goes 4 periods beyond the run's data: it still forecasts ahead.
    champion = _champion(run, ends_before=4, horizon=8, error=champion_error)
    found = compare_forecasts(champion, run, "mae")
    assert found.periods == 24 and found.std_error is not None
    assert (found.challenger, found.champion) == pytest.approx((challenger_error,
                                                                champion_error))
    decision = decide_forecast("sales", 2, 1, "mae", found, 0.0, 2.0)
    assert decision.promoted is promoted
    assert decision.rows == 24 and decision.champion_score == pytest.approx(champion_error)
    assert ("rollback 2" in decision.reason) is (not promoted)


def test_a_champion_whose_horizon_has_passed_is_replaced_even_when_better():
    run = _run(keys=tuple((f"s{i}",) for i in range(6)))
    run = Backtest(**{**run.__dict__, "forecast": run.actual + 3.0})
    found = compare_forecasts(_champion(run, ends_before=6, horizon=4, error=0.0), run, "mae")
    assert found.periods == 12 and not found.ahead
    decision = decide_forecast("sales", 2, 1, "mae", found, 0.0, 2.0)
    assert decision.promoted and "the champion beats it" in decision.reason
    assert decision.reason.endswith("but its horizon has passed: it forecasts no period after "
                                    "this run's data, so the newer forecaster replaces it")


def test_no_later_data_keeps_the_champion_and_no_comparison_promotes():
    run = _run()
    same_end = compare_forecasts(_champion(run, ends_before=0, horizon=4, error=0.0), run, "mase")
    assert not same_end.newer and same_end.champion is None
    kept = decide_forecast("sales", 2, 1, "mase", same_end, 0.0, 2.0)
    assert not kept.promoted and "no series of this run goes on after" in kept.reason
    weekly = compare_forecasts(_champion(run, 4, 4, 0.0, freq="W"), run, "mase")
    assert weekly.problem == "the champion forecasts periods of 'W', this run 'h'"
    replaced = decide_forecast("sales", 2, 1, "mase", ForecastComparison(
        1.0, weekly.champion, weekly.periods, weekly.problem), 0.0, 2.0)
    assert replaced.promoted and "the forecaster trained on later data replaces" in replaced.reason


@pytest.mark.usefixtures("prefect_harness")
def test_retraining_a_forecaster_registers_compares_and_scores(tmp_path, capsys, caplog):
    from flows._cli import main
    from flows.score import score
    from flows.train import train

    full = shop_sales(n_series=3)
    cut = full["hour"].max() - pd.Timedelta(hours=24)
    where = str(tmp_path / "registry")
    common = dict(target="sales", task="forecasting", time_column="hour", series_id=["shop"],
                  horizon=24, include=["seasonal_naive", "theta"], max_trials=2, registry=where)
    first = train(data=full[full["hour"] <= cut], output=str(tmp_path / "run1"), **common)
    assert first.promotion["promoted"] and first.promotion["reason"] == "no champion yet"
    second = train(data=full, output=str(tmp_path / "run2"), **common).promotion
    # The 24 hours the champion forecast are this run's newest backtest window, for 3 shops.
    assert second["rows"] == 72 and np.isfinite(second["champion_score"])
    # Here both runs chose the same forecaster, so from the same origin their forecasts match:
    # a window out of place by a period would score them apart.
    assert second["challenger_score"] == pytest.approx(second["champion_score"])
    assert second["challenger_version"] == 2 and second["promoted"], second["reason"]
    # The third through the command line, which ends with the decision.
    full.to_csv(tmp_path / "full.csv", index=False)
    caplog.set_level(logging.INFO, logger="prefect")
    assert main(train, ["--data", str(tmp_path / "full.csv"), "--target", "sales", "--task",
                        "forecasting", "--time-column", "hour", "--series-id", "shop",
                        "--horizon", "24", "--include", "seasonal_naive", "theta",
                        "--max-trials", "2", "--registry", where, "--output",
                        str(tmp_path / "run3")]) == 0
    assert "registry sales: version 3, not promoted: no series" in caplog.text  # the run's log
    assert capsys.readouterr().out.splitlines()[-1] == (
        "registry: sales v3 registered, not promoted: no series of this run goes on after the "
        "champion's training data: the champion stays (make v3 the champion with rollback 3 if "
        "it should be)")
    champion = json.loads((tmp_path / "registry" / "sales" / "champion.json").read_text())
    assert champion["version"] == 2
    future = pd.DataFrame({"shop": "shop 1", "hour": pd.date_range(
        full["hour"].max() + pd.Timedelta(hours=1), periods=24, freq="h")})
    future.to_csv(tmp_path / "future.csv", index=False)
    scored = score(model="sales", registry=where, data=str(tmp_path / "future.csv"),
                   output=str(tmp_path / "p.csv"))
    assert scored.version == 2 and scored.scored == 24


def test_ids_read_as_text_and_known_future_features_reach_the_champion():
    run = _run(keys=((1,), (2,)))
    champion = _champion(run, ends_before=4, horizon=4, error=1.0, feature_names=("promo",))
    assert compare_forecasts(champion, run, "mae").problem == (
        "the champion needs the known-future feature(s) ['promo'], which this run does not have")
    # Empty but for the 4 periods compared: the champion is given those periods' values.
    promo = [np.r_[np.full(N - 4, np.nan), np.ones(4)][:, None] for _ in range(2)]
    panel = Panel([("1",), ("2",)], run.panel.values, run.panel.ends, "h", 24, ["promo"], promo)
    found = compare_forecasts(champion, Backtest(**{**run.__dict__, "panel": panel}), "rmse")
    assert found.periods == 8 and found.champion == pytest.approx(1.0)  # through predict
    assert found.challenger == pytest.approx(0.0) and found.std_error == pytest.approx(0.0)


@pytest.mark.usefixtures("prefect_harness")
def test_a_champion_with_known_future_features_forecasts_with_this_runs_values(tmp_path):
    """The champion is given each compared day's promotion as this run's data has it: a day
    out of place costs it about the lift (30, against noise of 1) on a fifth of the days."""
    from flows.train import train

    frame = promo_sales([f"s{s}" for s in range(4)], 24 * 10, seed=3, share=0.2, base=100.0,
                        lift=30.0)
    cut = frame["day"].max() - pd.Timedelta(days=7)
    common = dict(target="sales", task="forecasting", time_column="day", series_id=["shop"],
                  horizon=7, known_features=["promo"], include=["global_linear"], max_trials=1,
                  registry=str(tmp_path / "registry"))
    train(data=frame[frame["day"] <= cut], output=str(tmp_path / "run1"), **common)
    decision = train(data=frame, output=str(tmp_path / "run2"), **common).promotion
    assert decision["rows"] == 4 * 7 and decision["champion_version"] == 1
    # MASE: the naive forecast's error is about the lift on the days a promotion starts or ends.
    assert decision["champion_score"] < 0.3 and decision["challenger_score"] < 0.3
    assert decision["promoted"], decision["reason"]
