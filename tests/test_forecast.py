"""Forecasting: validation into a regular panel, the families, rolling-origin backtests,
selection, the published forecaster, and runs through the flow and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from models import registry
from flows._forecast_backtest import plan_candidates
from models._forecast import ForecastFamily, LocalForecaster, SeasonalAdjustment, is_seasonal
from models._global import LagWindows, default_lags, long_cycle
from models.naive import NaiveForecaster
from tasks.backtest import (actuals, backtest, forecast_metrics, mase_scales, n_windows,
                            naive2_reference, pointwise_loss)
from tasks.errors import AutoMLInputError
from tasks.forecast_data import prepare_panel
from tasks.forecast_select import select_forecaster
from tasks.frequency import season_of
from tasks.settings import TrainSettings

ROOT = Path(__file__).resolve().parents[1]


def shop_sales(n_series: int = 4, periods: int = 24 * 12, seed: int = 0,
               short: int = 0) -> pd.DataFrame:
    """Hourly sales of a few shops: a daily cycle, a trend, noise; ``short`` extra shops with
    only 20 hours."""
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n_series + short):
        n = periods if s < n_series else 20
        hours = np.arange(n)
        y = (50 + 15 * s + 12 * np.sin(2 * np.pi * hours / 24) + 0.02 * hours
             + rng.normal(0, 1.0, n))
        parts.append(pd.DataFrame({"shop": f"shop {s}", "hour": pd.date_range(
            "2024-03-01", periods=n, freq="h"), "sales": np.round(y, 3)}))
    return pd.concat(parts, ignore_index=True)


def promo_sales(shops: list, days: int, seed: int, share: float, base: float,
                lift: float) -> pd.DataFrame:
    """Daily sales of ``shops`` from 2020-01-01: a level per shop, plus ``lift`` on the days of a
    promotion (a known-future feature, on ``share`` of the days), plus noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, shop in enumerate(shops):
        promo = (rng.random(days) < share).astype(float)
        y = base + 10 * k + lift * promo + rng.normal(0, 1, days)
        parts.append(pd.DataFrame({"shop": shop, "day": pd.date_range(
            "2020-01-01", periods=days, freq="D"), "promo": promo, "sales": y}))
    return pd.concat(parts, ignore_index=True)


def _settings(**overrides) -> TrainSettings:
    base = dict(data="x", target="sales", task="forecasting", time_column="hour",
                series_id=["shop"], horizon=24)
    return TrainSettings(**{**base, **overrides})


# --- validation -------------------------------------------------------------------------------

def test_panel_infers_frequency_and_season_and_fills_gaps():
    frame = shop_sales().drop(index=[10, 11, 12])
    prepared = prepare_panel(frame, _settings())
    assert prepared.panel.freq in {"h", "H"} and prepared.panel.season == 24
    assert prepared.n_filled == 3
    assert all(len(v) == 24 * 12 for v in prepared.panel.values)
    gaps = next(g for g in prepared.guardrails if g.name == "missing_periods")
    assert gaps.status == "Done" and "3 of" in gaps.detail and "interpolate" in gaps.detail
    filled = prepared.panel.values[0][10:13]
    assert np.all(np.isfinite(filled))


@pytest.mark.parametrize(("freq", "season"), [("h", 24), ("D", 7), ("W-SUN", 52), ("MS", 12),
                                              ("QS", 4), ("YS", 1), ("15min", 4)])
def test_season_follows_the_frequency(freq, season):
    assert season_of(freq) == season


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda f: pd.concat([f, f.iloc[[5]]]), r"duplicate timestamps within a series: .*shop 0"),
    (lambda f: f.assign(hour=f["hour"].astype(str).where(f.index != 7, "not a time")),
     r"time column 'hour' has values that are not times, such as 'not a time'"),
    (lambda f: f.drop(columns="shop"), r"column 'shop' is not in the data\. Did you mean "),
    (lambda f: f.rename(columns={"hour": "Hour"}),
     r"column 'hour' is not in the data\. Did you mean 'Hour'"),
    (lambda f: f.assign(sales=f["sales"].astype(str).where(f.index != 3, "n/a")),
     r"target 'sales' has non-numeric values such as 'n/a'"),
    (lambda f: f.assign(shop=f["shop"].where(f.index != 4, None)), r"column 'shop' has empty"),
])
def test_bad_tables_get_one_clear_line(change, pattern):
    with pytest.raises(AutoMLInputError, match=pattern):
        prepare_panel(change(shop_sales()), _settings())


def test_short_series_fall_back_or_are_dropped_with_a_report():
    frame = shop_sales(short=1)
    fallback = prepare_panel(frame, _settings())
    assert len(fallback.panel) == 4 and fallback.short.keys == [("shop 4",)]
    assert not fallback.dropped
    alert = next(g for g in fallback.guardrails if g.name == "short_series")
    assert alert.status == "Alerted" and "seasonal naive" in alert.detail
    dropped = prepare_panel(frame, _settings(short_series="drop"))
    assert dropped.dropped == [("shop 4",)]
    with pytest.raises(AutoMLInputError, match="every series is shorter than"):
        prepare_panel(shop_sales(n_series=0, short=2), _settings(short_series="drop"))


@pytest.mark.parametrize(("overrides", "pattern"), [
    ({"time_column": None}, "forecasting needs --time-column"),
    ({"horizon": None}, "forecasting needs --horizon"),
    ({"series_id": ["sales"]}, "cannot also be the time column"),
    ({"halving": False}, "halving applies to classification and regression only"),
])
def test_forecasting_settings_are_checked(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        _settings(**overrides)


# --- families and backtests ------------------------------------------------------------------

def test_the_m4_seasonality_test_and_adjustment():
    t = np.arange(24 * 10)
    seasonal = 100 + 20 * np.sin(2 * np.pi * t / 24)
    assert is_seasonal(seasonal, 24)
    noise = np.random.default_rng(0).normal(100, 1, (200, 240))
    false_alarms = np.mean([is_seasonal(y, 24) for y in noise])
    assert false_alarms < 0.2  # a test at 90%: about one noise series in ten looks seasonal
    adjustment = SeasonalAdjustment(24).fit(seasonal)
    flat = adjustment.remove(seasonal)
    assert np.ptp(flat[24:-24]) < 0.05 * np.ptp(seasonal)
    naive2 = NaiveForecaster(adjusted=True)(seasonal, 24, 24)
    assert np.allclose(naive2, seasonal[-24:], rtol=0.02)


@pytest.mark.parametrize("name", registry().names("forecasting"))
def test_every_forecasting_family_backtests_to_finite_forecasts(name):
    family = registry().get(name)
    assert issubclass(family, ForecastFamily)
    panel = prepare_panel(shop_sales(periods=24 * 8), _settings()).panel
    for config in family.configs(panel.season, 24)[:1]:
        forecaster = family.build("forecasting", {**config, "max_rows": 20_000}, 0)
        out = backtest(forecaster, panel, 24, 2)
        assert out.shape == (4, 2, 24) and np.all(np.isfinite(out))
        metrics = forecast_metrics(actuals(panel, 24, 2), out, mase_scales(panel, 24, 2))
        assert metrics["mase"] < 3.0, (name, metrics)  # a daily cycle is easy to follow


def test_boosters_with_half_and_twice_the_lookback_are_candidates():
    panel = prepare_panel(shop_sales(periods=24 * 8), _settings()).panel
    boosters = [c.spec.config for c in plan_candidates(
        [registry().get("global_hist_gradient_boosting")], panel, 24, None)]
    # Hourly: a week of lags; twice that is capped at 200, too close to 168 to be a variant.
    assert [c["n_lags"] for c in boosters] == [168, 168, 84, 168]
    assert [c.get("learning_rate", 0.1) for c in boosters] == [0.1, 0.1, 0.1, 0.05]
    assert default_lags(1, 6, "YS", 0.5) == 6 and default_lags(1, 6, "YS", 2.0) == 24
    weekly = prepare_panel(shop_sales(periods=24 * 8).assign(
        hour=lambda f: f.groupby("shop").cumcount().map(
            lambda k: pd.Timestamp("2000-01-02") + pd.Timedelta(weeks=k))),
        _settings(horizon=13)).panel
    lookbacks = [c.spec.config["n_lags"] for c in plan_candidates(
        [registry().get("global_hist_gradient_boosting")], weekly, 13, None)]
    assert lookbacks == [104, 104, 52, 200, 104]  # two years of weeks, halved and doubled (capped)
    short = registry().get("global_hist_gradient_boosting").build("forecasting", {
        **boosters[2], "n_lags": None, "max_rows": 5_000}, 0).fit(panel, 24)
    assert short.windows_.n_lags == 84
    assert np.isfinite(short.predict(panel, 24)).all()


def test_hourly_rows_hold_the_same_hour_of_the_last_two_weeks():
    assert long_cycle(24, "h") == 168 and long_cycle(1, "W-SUN") == 0 and long_cycle(12, "MS") == 0
    windows = LagWindows(n_lags=4, season=24, horizon=3, cycle=long_cycle(24, "h"))
    z = np.arange(500, dtype=float)
    X, level = windows.rows(z, np.array([400]), None, np.array([1, 2, 3]))
    week_back = X[:, -2] + level, X[:, -1] + level
    assert week_back[0].tolist() == [401 - 168, 402 - 168, 403 - 168]
    assert week_back[1].tolist() == [401 - 336, 402 - 336, 403 - 336]
    day_back = X[:, 5] + level  # after 4 lags and the step: the same hour yesterday
    assert day_back.tolist() == [401 - 24, 402 - 24, 403 - 24]
    assert windows.column_groups([])["history"] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    old = LagWindows(n_lags=4, season=24, horizon=3)
    assert old.rows(z, np.array([400]), None, np.array([1]))[0].shape[1] == 4 + 1 + 3


class _Recorder(LocalForecaster):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def forecast(self, y, horizon, season):
        self.seen.append(len(y))
        return np.full(horizon, y[-1])


def test_rolling_origin_windows_see_only_the_past():
    panel = prepare_panel(shop_sales(n_series=1, periods=100), _settings(horizon=10)).panel
    recorder = _Recorder()
    out = backtest(recorder, panel, 10, 3)
    assert recorder.seen == [90, 80, 70]  # window 1 is the most recent
    y = panel.values[0]
    assert np.allclose(out[0, 0], y[89]) and np.allclose(out[0, 2], y[69])
    assert np.allclose(actuals(panel, 10, 3)[0, 1], y[80:90])
    short = prepare_panel(shop_sales(n_series=1, periods=50), _settings(horizon=10)).panel
    assert n_windows(short, 10, 9).tolist() == [3]  # 50 periods: 3 windows of 10 + 20 to fit


def test_combination_and_per_series_choice_only_where_they_pay():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=(10, 3, 5))
    scales = np.ones((10, 3))
    low, high = actual - 1.0, actual + 1.0  # each biased; their mean is exact
    chosen = select_forecaster({1: low, 2: high}, actual, scales, "mase")
    assert chosen.mode == "global" and set(chosen.weights[0]) == {1, 2}
    alone = select_forecaster({1: low, 2: high}, actual, scales, "mase", ensemble=False)
    assert len(alone.weights[0]) == 1
    # First half of the series: model 1 exact; second half: model 2 exact.
    left = np.where(np.arange(10)[:, None, None] < 5, actual, actual + 3.0)
    right = np.where(np.arange(10)[:, None, None] < 5, actual + 3.0, actual)
    split = select_forecaster({1: left, 2: right}, actual, scales, "mase", ensemble=False)
    assert split.mode == "per_series"
    assert [next(iter(w)) for w in split.weights] == [1] * 5 + [2] * 5
    assert split.facts["window1_per_series"] < split.facts["window1_global"]


def test_owa_is_relative_to_naive2_on_the_same_windows():
    panel = prepare_panel(shop_sales(periods=24 * 6), _settings()).panel
    actual, scales = actuals(panel, 24, 3), mase_scales(panel, 24, 3)
    reference = naive2_reference(panel, 24, 3, actual, scales)
    naive2 = backtest(NaiveForecaster(adjusted=True), panel, 24, 3)
    plain = forecast_metrics(actual, naive2, scales)
    assert "owa" not in plain
    assert (reference.smape, reference.mase) == pytest.approx((plain["smape"], plain["mase"]))
    assert forecast_metrics(actual, naive2, scales, reference)["owa"] == pytest.approx(1.0)
    seasonal = backtest(registry().get("seasonal_naive").build("forecasting", {}, 0), panel, 24,
                        3)
    better = forecast_metrics(actual, seasonal, scales, reference)
    expected = 0.5 * (better["smape"] / plain["smape"] + better["mase"] / plain["mase"])
    assert better["owa"] == pytest.approx(expected) and better["owa"] < 1.0
    chosen = select_forecaster({1: naive2, 2: seasonal}, actual, scales, "owa", False, reference)
    assert chosen.weights[0] == {2: 1.0}
    with pytest.raises(ValueError, match="Naive2 reference"):
        pointwise_loss("owa", actual, naive2, scales)
    assert _settings(metric="owa").metric == "owa"
    with pytest.raises(ValueError, match="does not apply to regression"):
        TrainSettings(data="x", target="y", task="regression", metric="owa")


# --- through the flow --------------------------------------------------------------------------

def _cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run([sys.executable, "-m", "flows.train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


CLI_BUDGET = 90  # seconds: 45 left too little for the final fits on a slower 2-core machine


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    frame = shop_sales(short=1).drop(index=[40])
    frame.to_csv(root / "sales.csv", index=False)
    done = _cli(["--data", str(root / "sales.csv"), "--target", "sales", "--task", "forecasting",
                 "--time-column", "hour", "--series-id", "shop", "--horizon", "24",
                 "--time-budget", str(CLI_BUDGET), "--output", str(root / "out")])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root, frame, done


def _future(frame: pd.DataFrame, shops: list[str], steps: int = 24) -> pd.DataFrame:
    rows = []
    for shop in shops:
        end = frame.loc[frame["shop"] == shop, "hour"].max()
        for k in range(1, steps + 1):
            rows.append({"shop": shop, "hour": end + pd.Timedelta(hours=k)})
    return pd.DataFrame(rows)


def test_cli_run_publishes_a_forecaster_for_every_series(forecast_run):
    root, frame, done = forecast_run
    out = root / "out"
    for name in ("model.pkl", "leaderboard.csv", "metrics.json", "manifest.json",
                 "forecast.png", "error_by_step.png", "report.html", "feature_importance.csv"):
        assert (out / name).is_file(), name
    page = (out / "report.html").read_text()
    assert "AutoML report: forecasting of sales" in page
    assert "<link" not in page and "<script" not in page  # self-contained
    assert page.count('src="data:image/png;base64,') == 2
    assert 'data-chart="forecast.png"' in page and 'data-chart="error_by_step.png"' in page
    assert "<td>horizon</td>" in page and "<td>halving</td>" not in page  # forecasting reads it
    importance = pd.read_csv(out / "feature_importance.csv")
    assert list(importance.columns) == ["feature", "importance", "std", "source"]
    assert "sales" in set(importance["feature"])
    facts = json.loads((out / "metrics.json").read_text())
    assert facts["metric"] == "mase" and facts["selection"]["mode"] in {"global", "per_series"}
    assert 0 < facts["validation_metrics"]["owa"] < 1  # better than Naive2 on the backtest
    assert facts["short_series"] == [["shop 4"]]
    assert facts["windows_per_series"] == {"0": 0, "1": 0, "2": 0, "3": 4}
    assert facts["series"] == 4 and facts["series_in_data"] == facts["summary"]["series"] == 5
    assert facts["selection"]["global_choice"] >= facts["value"] - 1e-9
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"naive", "theta", "exponential_smoothing", "global_linear"} <= set(board["family"])
    assert facts["value"] <= board.loc[board["status"] == "ok", "mase"].min() + 1e-9
    model = joblib.load(out / "model.pkl")
    future = _future(frame, ["shop 2", "shop 0", "shop 4"])
    shuffled = future.sample(frac=1.0, random_state=1)
    predicted = model.predict(shuffled)
    assert predicted.shape == (len(shuffled),) and np.all(np.isfinite(predicted))
    by_row = pd.Series(model.predict(future), index=future.index)
    assert np.allclose(predicted, by_row.loc[shuffled.index])  # one value per row, in row order
    # The daily cycle continues: the forecast of shop 2 follows 50 + 30 + 12 sin(...).
    shop2 = future["shop"] == "shop 2"
    hours = (future.loc[shop2, "hour"] - pd.Timestamp("2024-03-01")) / pd.Timedelta(hours=1)
    expected = 80 + 12 * np.sin(2 * np.pi * hours / 24) + 0.02 * hours
    assert np.mean(np.abs(by_row[shop2] - expected)) < 2.0
    interval = model.predict_interval(future, level=0.8)
    assert (interval["lower"] <= interval["forecast"]).all()
    assert (interval["forecast"] <= interval["upper"]).all()


def test_unseen_series_and_times_beyond_the_horizon_are_clear_errors(forecast_run):
    root, frame, _ = forecast_run
    model = joblib.load(root / "out" / "model.pkl")
    with pytest.raises(ValueError, match=r"series \{'shop': 'shop 9'\} was not in training"):
        model.predict(pd.DataFrame({"shop": ["shop 9"], "hour": ["2024-03-13 01:00"]}))
    late = _future(frame, ["shop 1"], steps=25).tail(1)
    with pytest.raises(ValueError, match=r"is not one of the 24 'h' periods after"):
        model.predict(late)
    with pytest.raises(ValueError, match=r"columns \['shop'\] are missing"):
        model.predict(late.drop(columns="shop"))


def test_wall_time_holds_the_budget(forecast_run):
    root, _, done = forecast_run
    wall = float(done.stdout.split("wall time ")[1].split("s")[0])
    assert wall <= CLI_BUDGET * 1.05 + 5, done.stdout[-500:]


def test_forecasting_cli_errors_are_one_line_and_write_nothing(tmp_path):
    shop_sales().to_csv(tmp_path / "sales.csv", index=False)
    done = _cli(["--data", str(tmp_path / "sales.csv"), "--target", "sales", "--task",
                 "forecasting", "--horizon", "24", "--output", str(tmp_path / "out")])
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "forecasting needs --time-column" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_known_future_features_drive_the_forecast(tmp_path):
    from flows.train import train

    frame = promo_sales([f"s{s}" for s in range(5)], 24 * 10, seed=3, share=0.2, base=100.0,
                        lift=30.0)
    result = train(data=frame, target="sales", task="forecasting", time_column="day",
                   series_id=["shop"], horizon=7, known_features=["promo"],
                   include=["global_linear"], max_trials=1, output=str(tmp_path / "out"))
    assert result.task == "forecasting" and result.best.family == "global_linear"
    assert [c.id for c in result.leaderboard if c.published] == [result.best.id]
    model = joblib.load(result.model_path)
    days = pd.date_range(frame["day"].max() + pd.Timedelta(days=1), periods=7, freq="D")
    base = pd.DataFrame({"shop": "s1", "day": days, "promo": 0.0})
    lift = model.predict(base.assign(promo=1.0)) - model.predict(base)
    assert np.all(lift > 20), lift
    # The report's importance finds the promotion column, shuffled out of sample, matters.
    importance = pd.read_csv(tmp_path / "out" / "feature_importance.csv").set_index("feature")
    assert {"sales", "day", "promo"} <= set(importance.index)
    assert importance.loc["promo", "importance"] > 0.5
    assert importance.loc["promo", "importance"] > importance.loc["day", "importance"]
    assert "global members (100% of the forecast)" in importance["source"].iloc[0]


def test_theta_configurations_share_one_fit_per_series(monkeypatch):
    from statsmodels.tsa.forecasting.theta import ThetaModel

    import models.theta as theta

    shared = theta._SharedFits(size=3)
    monkeypatch.setattr(theta, "SHARED", shared)
    y = 100 + 2.0 * np.arange(40) + np.random.default_rng(0).normal(0, 3, 40)
    two, three = theta.ThetaForecaster(2.0)(y, 6, 1), theta.ThetaForecaster(3.0)(y, 6, 1)
    assert len(shared.fits) == 1
    direct = ThetaModel(y, period=1, deseasonalize=False).fit()
    assert np.allclose(two, direct.forecast(6, theta=2.0))
    assert np.allclose(three, direct.forecast(6, theta=3.0)) and not np.allclose(two, three)
    for cut in (1, 2, 3):
        theta.ThetaForecaster(2.0)(y[:-cut], 6, 1)
    # A fourth series overflows a memo of three: sharing stops rather than keeping a few.
    assert shared.overflowed and not shared.fits
    theta.ThetaForecaster(3.0)(y, 6, 1)
    assert not shared.fits
