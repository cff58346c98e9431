"""Rolling-origin backtests of forecasters, and the forecasting metrics.

Window ``w`` (1 = the most recent) of a series of length n forecasts its periods
``n - w*h .. n - (w-1)*h - 1`` from the history before them. A series gets as many of the
requested windows as its length allows (at least one, see
:func:`tasks.forecast_data.min_history`). Arrays of forecasts and actuals are shaped
(series, windows, horizon), NaN where a series has no such window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from models._forecast import GlobalForecaster, LocalForecaster
from models.naive import NaiveForecaster
from tasks.forecast_data import Panel, min_history

__all__ = ["BacktestResult", "Naive2Reference", "Probe", "actuals", "backtest", "backtest_task",
           "forecast_metrics", "mase_scales", "n_windows", "naive2_reference", "nan_mean",
           "pointwise_loss", "probe", "probe_task"]


@dataclass
class BacktestResult:
    """One candidate's forecasts on every window of one batch of series."""

    candidate: int
    batch: int
    forecasts: np.ndarray
    seconds: float
    error: str = ""
    fitted: Any = None


def n_windows(panel: Panel, horizon: int, windows: int) -> np.ndarray:
    """Windows each series can be backtested on (0 for series shorter than one window)."""
    keep = min_history(horizon, panel.season) - horizon
    lengths = np.array([len(v) for v in panel.values])
    return np.clip((lengths - keep) // horizon, 0, windows)


def actuals(panel: Panel, horizon: int, windows: int) -> np.ndarray:
    """The values each window forecasts, (series, windows, horizon)."""
    out = np.full((len(panel), windows, horizon), np.nan)
    for i, (y, count) in enumerate(zip(panel.values, n_windows(panel, horizon, windows))):
        for w in range(1, count + 1):
            out[i, w - 1] = y[len(y) - w * horizon:len(y) - (w - 1) * horizon]
    return out


def mase_scales(panel: Panel, horizon: int, windows: int) -> np.ndarray:
    """MASE denominators, (series, windows): the mean absolute seasonal difference of the
    history before each window (lag 1 where the history is shorter than two seasons)."""
    out = np.full((len(panel), windows), np.nan)
    m = panel.season
    for i, (y, count) in enumerate(zip(panel.values, n_windows(panel, horizon, windows))):
        for w in range(1, max(count, 1) + 1):
            history = panel.history(i, w * horizon) if count else y
            lag = m if len(history) > 2 * m else 1
            diffs = np.abs(history[lag:] - history[:-lag]) if len(history) > lag else np.array([])
            scale = float(diffs.mean()) if len(diffs) else 0.0
            out[i, w - 1] = scale if scale > 0 else (float(np.mean(np.abs(history))) or 1.0)
    return out


@dataclass(frozen=True)
class Naive2Reference:
    """sMAPE and MASE of Naive2 (naive on the seasonally adjusted series) on the backtest
    windows: the denominators of OWA, the M4 competition's measure."""

    smape: float
    mase: float


def naive2_reference(panel: Panel, horizon: int, windows: int, actual: np.ndarray,
                     scales: np.ndarray) -> Naive2Reference:
    """Naive2's sMAPE and MASE over every series and window of the backtest."""
    found = forecast_metrics(actual, _local(NaiveForecaster(adjusted=True), panel, horizon,
                                            windows), scales)
    smape, mase = (v if np.isfinite(v) and v > 0 else 1.0
                   for v in (found["smape"], found["mase"]))
    return Naive2Reference(smape, mase)


def nan_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN; NaN where a row has no value (no window)."""
    count = np.sum(~np.isnan(values), axis=-1)
    total = np.nansum(values, axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def pointwise_loss(metric: str, actual: np.ndarray, forecast: np.ndarray,
                   scales: np.ndarray, reference: Optional[Naive2Reference] = None) -> np.ndarray:
    """Per-(series, window) loss for ``metric`` (lower is better), NaN where no window.

    ``"owa"`` (the M4 competition's overall weighted average) is the mean of sMAPE and MASE,
    each relative to Naive2's on the same windows (``reference``); averaged over the series
    and windows it is the backtest's OWA."""
    if metric == "owa":
        if reference is None:
            raise ValueError("OWA needs the Naive2 reference of the backtest")
        return 0.5 * (pointwise_loss("smape", actual, forecast, scales) / reference.smape
                      + pointwise_loss("mase", actual, forecast, scales) / reference.mase)
    error = actual - forecast
    if metric == "mase":
        return nan_mean(np.abs(error)) / scales
    if metric == "smape":
        denominator = np.abs(actual) + np.abs(forecast)
        ratio = np.where(denominator > 0, 2 * np.abs(error) / np.where(denominator > 0,
                                                                         denominator, 1), 0.0)
        return 100 * nan_mean(np.where(np.isnan(error), np.nan, ratio))
    if metric == "mae":
        return nan_mean(np.abs(error))
    if metric == "rmse":
        return nan_mean(error ** 2)  # squared; rooted after pooling
    raise ValueError(f"unknown forecasting metric {metric!r}")


def forecast_metrics(actual: np.ndarray, forecast: np.ndarray, scales: np.ndarray,
                     reference: Optional[Naive2Reference] = None) -> dict[str, float]:
    """MASE and sMAPE averaged over series and windows; RMSE and MAE pooled over all values;
    with ``reference``, OWA too."""
    present = ~np.isnan(actual[..., 0])
    out = {}
    names = ("mase", "smape", "mae", "rmse") + (("owa",) if reference is not None else ())
    for name in names:
        loss = pointwise_loss(name, actual, forecast, scales, reference)[present]
        value = float(np.nanmean(loss)) if np.isfinite(loss).any() else float("nan")
        out[name] = float(np.sqrt(value)) if name == "rmse" else value
    return out


def _local(forecaster: LocalForecaster, panel: Panel, horizon: int, windows: int) -> np.ndarray:
    out = np.full((len(panel), windows, horizon), np.nan)
    for i, count in enumerate(n_windows(panel, horizon, windows)):
        for w in range(1, count + 1):
            out[i, w - 1] = forecaster(panel.history(i, w * horizon), horizon, panel.season)
    return out


def _global(forecaster: GlobalForecaster, panel: Panel, horizon: int, windows: int,
            fit_per_window: bool = False) -> np.ndarray:
    """With ``fit_per_window``, a fit on the history before each window; else one fit on the
    history before the earliest window, each window then forecasting from its own origin (the
    actual history up to it), so W windows cost one fit."""
    out = np.full((len(panel), windows, horizon), np.nan)
    counts = n_windows(panel, horizon, windows)
    if not fit_per_window:
        forecaster.fit(panel.cut(windows * horizon), horizon)
    for w in range(windows, 0, -1):
        if fit_per_window:
            forecaster.fit(panel.cut(w * horizon), horizon)
        rows = [i for i in range(len(panel)) if counts[i] >= w]
        if not rows:
            continue
        part = panel.subset(rows)
        future = None
        if part.features is not None:
            future = [f[len(f) - w * horizon:len(f) - (w - 1) * horizon] for f in part.features]
        out[rows, w - 1] = forecaster.predict(part.cut(w * horizon), horizon, future)
    return out


def backtest(forecaster: Any, panel: Panel, horizon: int, windows: int,
             fit_per_window: bool = False) -> np.ndarray:
    """Forecasts (series, windows, horizon) of ``forecaster`` on every window of ``panel``
    (``fit_per_window``: a global forecaster is trained again at every origin)."""
    if isinstance(forecaster, GlobalForecaster):
        return _global(forecaster, panel, horizon, windows, fit_per_window)
    return _local(forecaster, panel, horizon, windows)


@task(name="backtest", cache_policy=NO_CACHE, task_run_name="backtest-{name}-b{batch}")
def backtest_task(name: str, candidate: int, batch: int, forecaster: Any, panel: Panel,
                  horizon: int, windows: int, fit_per_window: bool = False) -> BacktestResult:
    """Backtest one candidate on one batch of series; a failure is recorded, not raised."""
    started = time.perf_counter()
    try:
        # One thread per task: OpenMP teams made in two different threads slow each other
        # down several times over (boosters beside statsmodels' BLAS calls); the flow runs
        # tasks side by side instead.
        with threadpool_limits(limits=1):
            forecasts = backtest(forecaster, panel, horizon, windows, fit_per_window)
        error = ""
    except Exception as exc:  # noqa: BLE001 - one failed candidate must not end the run
        forecasts = np.full((len(panel), windows, horizon), np.nan)
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return BacktestResult(candidate, batch, forecasts, time.perf_counter() - started, error,
                          forecaster if isinstance(forecaster, GlobalForecaster) else None)


@dataclass(frozen=True)
class Probe:
    """What a local forecaster cost on a few series: seconds of its backtest per series and
    requested window (short series have fewer), and its final forecasts (one fit per series on
    the full history) over its backtest."""

    per_window: float
    final_ratio: float


def probe(forecaster: LocalForecaster, panel: Panel, horizon: int, windows: int,
          seconds: Optional[float] = None) -> Probe:
    """Time the backtest and the final forecasts of ``forecaster`` on ``panel``, series by
    series; with ``seconds``, stop after the series that passes them (the figures are then of
    the series done: an hourly ARIMA on 20 series took 20 s of a 30 s budget to learn that it
    would not fit).

    The ratio is measured rather than derived from the counts of fits: a fit on the full history
    can cost more than one on a shorter one (ARIMA tries more orders on longer series).
    A failure stops the timing; the backtest then records it.
    """
    backtest = final = 0.0
    done = 0
    with threadpool_limits(limits=1):
        for i in range(len(panel)):
            one = panel.subset([i])
            started = time.perf_counter()
            middle = None
            try:
                _local(forecaster, one, horizon, windows)
                middle = time.perf_counter()
                forecaster(one.values[0], horizon, one.season)
            except Exception:  # noqa: BLE001 - recorded by the backtest that follows
                backtest += (middle or time.perf_counter()) - started
                return Probe(backtest / ((done + 1) * windows), 1 / windows)
            backtest += middle - started
            final += time.perf_counter() - middle
            done += 1
            if seconds is not None and backtest + final > seconds:
                break
    return Probe(backtest / max(1, done * windows), final / max(backtest, 1e-9))


@task(name="probe", cache_policy=NO_CACHE, task_run_name="probe-{name}")
def probe_task(name: str, forecaster: LocalForecaster, panel: Panel, horizon: int,
               windows: int, seconds: Optional[float] = None) -> Probe:
    """:func:`probe` as a task, one thread."""
    return probe(forecaster, panel, horizon, windows, seconds)
