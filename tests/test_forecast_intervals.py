"""Prediction intervals of forecasts: the statistical models' own, and the fallback to backtest
errors; and the forecasting report's importance."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from models._forecast import LEVELS, LocalForecaster
from models.arima import ArimaForecaster
from models.exponential_smoothing import ExponentialSmoothingForecaster
from models.naive import NaiveForecaster, SeasonalNaiveForecaster
from models.theta import ThetaForecaster

MODELS = {
    "naive": NaiveForecaster(),
    "naive2": NaiveForecaster(adjusted=True),
    "seasonal_naive": SeasonalNaiveForecaster(),
    "theta": ThetaForecaster(),
    "damped": ExponentialSmoothingForecaster("add", True),
    "holt_winters": ExponentialSmoothingForecaster("add", False, "add"),
    "arima": ArimaForecaster(),
}


def _seasonal_walk(rng: np.random.Generator, n: int = 96, season: int = 12) -> np.ndarray:
    t = np.arange(n)
    return 100 + np.cumsum(rng.normal(0, 1, n)) + 8 * np.sin(2 * np.pi * t / season)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_statistical_model_gives_nested_intervals_that_widen(name):
    forecaster: LocalForecaster = MODELS[name]
    y = _seasonal_walk(np.random.default_rng(1))
    path, bounds = forecaster.with_intervals(y, 24, 12)
    assert bounds is not None and set(bounds) == set(LEVELS)
    assert np.allclose(path, forecaster(y, 24, 12))  # the same point forecast as without
    narrow, wide = bounds[0.8], bounds[0.95]
    assert np.all(wide[:, 0] <= narrow[:, 0]) and np.all(narrow[:, 0] <= path + 1e-9)
    assert np.all(path <= narrow[:, 1] + 1e-9) and np.all(narrow[:, 1] <= wide[:, 1])
    width = wide[:, 1] - wide[:, 0]
    assert width[-1] > width[0] > 0


# ARIMA's intervals hold the fitted order and parameters as known, so on 60 points of a random
# walk (where KPSS sometimes keeps d=0) they cover less than their level: 0.69 measured at 80%.
@pytest.mark.parametrize(("forecaster", "low", "high"), [
    (NaiveForecaster(), 0.7, 0.9), (ThetaForecaster(), 0.7, 0.9), (ArimaForecaster(), 0.6, 0.85)])
def test_model_intervals_cover_about_their_level_on_random_walks(forecaster, low, high):
    rng = np.random.default_rng(7)
    hits = []
    for _ in range(80):
        y = 50 + np.cumsum(rng.normal(0, 1, 66))
        _, bounds = forecaster.with_intervals(y[:60], 6, 1)
        lower, upper = bounds[0.8][:, 0], bounds[0.8][:, 1]
        hits.append((y[60:] >= lower) & (y[60:] <= upper))
    coverage = float(np.mean(hits))
    assert low < coverage < high, coverage


def test_a_model_without_intervals_or_with_broken_ones_falls_back():
    class Flat(LocalForecaster):
        def forecast(self, y, horizon, season):
            return np.full(horizon, 1.0)

    class Broken(Flat):
        def forecast_intervals(self, y, horizon, season, levels):
            return self.forecast(y, horizon, season), {lv: np.full((horizon, 2), 5.0)
                                                       for lv in levels}

    y = np.arange(20.0)
    assert Flat().with_intervals(y, 3, 1)[1] is None
    path, bounds = Broken().with_intervals(y, 3, 1)  # [5, 5] does not hold the forecast 1
    assert bounds is None and np.allclose(path, 1.0)


@pytest.mark.usefixtures("prefect_harness")
def test_a_single_statistical_model_publishes_its_own_intervals(tmp_path):
    from flows.train import train

    rng = np.random.default_rng(0)
    parts = [pd.DataFrame({"id": f"s{s}", "month": pd.date_range("2010-01-01", periods=96,
                                                                 freq="MS"),
                           "y": _seasonal_walk(rng)}) for s in range(3)]
    frame = pd.concat(parts, ignore_index=True)
    result = train(data=frame, target="y", task="forecasting", time_column="month",
                   series_id=["id"], horizon=6, include=["theta"], max_trials=1,
                   output=str(tmp_path / "out"))
    assert result.best.family == "theta"
    model = joblib.load(result.model_path)
    future = pd.DataFrame({"id": "s1", "month": pd.date_range("2018-01-01", periods=6,
                                                              freq="MS")})
    band = model.predict_interval(future, level=0.95)
    assert list(band["interval"]) == ["model"] * 6
    history = frame.loc[frame["id"] == "s1", "y"].to_numpy()
    _, own = ThetaForecaster().with_intervals(history, 6, 12)
    assert np.allclose(band[["lower", "upper"]].to_numpy(), own[0.95])
    assert np.allclose(band["forecast"], model.predict(future))
    assert (tmp_path / "out" / "report.html").is_file()

    # The score flow: the contract names the series trained on; an unknown one is drift, and
    # its row is reported rather than dropped.
    from flows.score import score
    from tasks.errors import AutoMLInputError

    rows = pd.concat([future, pd.DataFrame({"id": ["s9"], "month": ["2018-01-01"]})],
                     ignore_index=True)
    rows.to_csv(tmp_path / "future.csv", index=False)
    scored = score(model=str(tmp_path / "out"), data=str(tmp_path / "future.csv"),
                   output=str(tmp_path / "forecasts.csv"))
    assert (scored.rows, scored.scored, scored.failed) == (7, 6, 1)
    assert [(d["column"], d["check"]) for d in scored.drift] == [("id", "unseen_category")]
    written = pd.read_csv(tmp_path / "forecasts.csv")
    assert np.allclose(written["prediction"].head(6), model.predict(future))
    # Scored alone after the batch failed, the row is still named by its place in the file.
    assert written["error"].iloc[6].endswith("was not in training (row 6)")
    rows.drop(columns="month").to_csv(tmp_path / "no_time.csv", index=False)
    with pytest.raises(AutoMLInputError, match=r"lacks training column\(s\) 'month'; "):
        score(model=str(tmp_path / "out"), data=str(tmp_path / "no_time.csv"),
              output=str(tmp_path / "never.csv"))


class _Short(LocalForecaster):
    def forecast(self, y, horizon, season):
        return np.full(horizon - 1, y[-1])


def test_a_forecast_of_the_wrong_length_fails_instead_of_falling_back_to_the_last_value():
    """A plug-in returning horizon - 1 values was given the last-value forecast and listed
    as ok, with the naive forecaster's score."""
    y = np.arange(30.0)
    for method in (_Short(), lambda *a: _Short().with_intervals(*a)):
        with pytest.raises(ValueError, match=r"_Short.forecast\w* returned shape \(4,\) for a "
                                             "horizon of 5; return one value per period"):
            method(y, 5, 1)
    assert NaiveForecaster()(y, 5, 1).tolist() == [29.0] * 5
