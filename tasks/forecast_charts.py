"""Charts of a forecasting run: history with the forecast and its intervals, and the backtest
error by horizon step (matplotlib's object API, as :mod:`tasks.charts`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np

from models._forecast import LEVELS
from tasks.charts import STAND_IN_NOTE, Chart, _figure, _png, drawable
from tasks.forecast_data import Panel

__all__ = ["forecast_charts"]

SERIES_DRAWN = 4


def series_title(key: tuple, series_id: Sequence[str]) -> str:
    """``store=A, region=north`` for a series key (``(single series)`` without ids)."""
    if not key:
        return "(single series)"
    names = list(series_id) if len(series_id) == len(key) else [""] * len(key)
    return ", ".join(f"{n}={v}" if n else str(v) for n, v in zip(names, key))


def _forecast_chart(panel: Panel, paths: np.ndarray, quantiles: dict, scales: np.ndarray,
                    target: str, model_bounds: Optional[np.ndarray] = None,
                    series_id: Sequence[str] = ()) -> Chart:
    drawn = list(range(min(SERIES_DRAWN, len(panel))))
    figure, _ = _figure(8.0, 2.2 * len(drawn) + 0.5)
    figure.clear()
    horizon, stand_ins = paths.shape[1], 0
    for n, i in enumerate(drawn):
        ax = figure.add_subplot(len(drawn), 1, n + 1)
        y = panel.values[i]
        tail = y[-max(3 * horizon, 2 * panel.season):]
        past = np.arange(-len(tail) + 1, 1)
        ahead = np.arange(1, horizon + 1)
        ax.plot(past, tail, color="#333333", linewidth=1, label="history")
        for level, alpha in (("0.95", 0.15), ("0.8", 0.3)):
            if level in quantiles:
                bounds = np.asarray(quantiles[level])
                low, high = paths[i] + bounds[:, 0] * scales[i], paths[i] + bounds[:, 1] * scales[i]
                if model_bounds is not None and float(level) in LEVELS:
                    own = model_bounds[i, LEVELS.index(float(level))]
                    if np.isfinite(own).all():
                        low, high = own[:, 0], own[:, 1]
                ax.fill_between(ahead, low, high, color="#1f77b4", alpha=alpha, linewidth=0,
                                label=f"{float(level):.0%} interval")
        ax.plot(ahead, paths[i], color="#1f77b4", linewidth=1.5, label="forecast")
        title = series_title(panel.keys[i], series_id)
        shown = drawable(title, f"#{i + 1} of the ids in sorted order")
        stand_ins += shown != title
        ax.set_title(f"series {shown}", fontsize=9)
        ax.set_ylabel(drawable(target, "target"), fontsize=8)
        if n == 0:
            ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("periods from the end of training")
    return Chart("forecast.png", f"History and forecast of {len(drawn)} series, with intervals "
                 "(the model's own, or from the backtest errors)"
                 + (STAND_IN_NOTE if stand_ins else ""), _png(figure),
                 {"series_drawn": float(len(drawn))})


def _error_by_step(actual: np.ndarray, forecast: np.ndarray, scales: np.ndarray) -> Chart:
    scaled = np.abs(actual - forecast) / scales[..., None]
    by_step = np.nanmean(scaled.reshape(-1, scaled.shape[-1]), axis=0)
    figure, ax = _figure()
    ax.bar(np.arange(1, len(by_step) + 1), by_step, color="#1f77b4")
    ax.set_xlabel("horizon step")
    ax.set_ylabel("mean absolute error / MASE scale")
    ax.set_title("Backtest error by horizon step")
    numbers = {f"step_{k + 1}": float(v) for k, v in enumerate(by_step)}
    numbers["mean"] = float(np.nanmean(by_step))
    return Chart("error_by_step.png", "Backtest error of the chosen forecaster by horizon step "
                 "(MASE units)", _png(figure), numbers)


def forecast_charts(panel: Panel, actual: np.ndarray, backtest: np.ndarray, paths: np.ndarray,
                    quantiles: dict, scales: np.ndarray, target: str,
                    model_bounds: Optional[np.ndarray] = None,
                    series_id: Sequence[str] = ()) -> list[Chart]:
    """The forecast chart and the error-by-step chart (``model_bounds``: the models' own
    intervals, (series, levels, horizon, 2), NaN where a series has none; ``series_id``: the
    id columns, to name the series drawn)."""
    series_scales = scales[:, 0]
    return [_forecast_chart(panel, paths, quantiles, series_scales, target, model_bounds,
                            series_id),
            _error_by_step(actual, backtest, scales)]
