"""Choosing the forecaster from backtests: the best candidate, a greedy combination of
candidates (Caruana et al., 2004, on backtest forecasts), and per-series choice where it pays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from tasks.backtest import Naive2Reference, nan_mean, pointwise_loss

__all__ = ["Selection", "combine", "interval_quantiles", "select_forecaster"]

MAX_COMBINATION_STEPS = 12
PER_SERIES_GAIN = 0.02  # per-series choice must beat the global one by 2% on the held-out window


@dataclass
class Selection:
    """What forecasts each series: ``weights[i]`` maps candidate id -> weight for series i.

    ``mode`` is ``"global"`` (every series the same) or ``"per_series"``; ``facts`` records the
    scores that decided it (and the candidates left out for time, see
    :func:`flows._forecast_final.select_within`).
    """

    mode: str
    weights: list[dict[int, float]]
    combination: dict[int, float]
    facts: dict[str, Any] = field(default_factory=dict)


def _loss(metric: str, actual: np.ndarray, forecast: np.ndarray, scales: np.ndarray,
          reference: Optional[Naive2Reference] = None) -> float:
    values = pointwise_loss(metric, actual, forecast, scales, reference)
    value = float(np.nanmean(values)) if np.isfinite(values).any() else np.inf
    return float(np.sqrt(value)) if metric == "rmse" else value


def combine(forecasts: dict[int, np.ndarray], weights: dict[int, float]) -> np.ndarray:
    """The weighted mean of candidates' forecasts."""
    total = sum(weights.values())
    return sum(forecasts[c] * (w / total) for c, w in weights.items())


def greedy_combination(forecasts: dict[int, np.ndarray], actual: np.ndarray,
                       scales: np.ndarray, metric: str,
                       reference: Optional[Naive2Reference] = None
                       ) -> tuple[dict[int, float], float]:
    """Forward selection with replacement of the candidates whose mean forecast scores best."""
    counts: dict[int, int] = {}
    best_loss = np.inf
    current = None
    for _ in range(MAX_COMBINATION_STEPS):
        step_best, step_loss = None, np.inf
        for c, f in forecasts.items():
            size = sum(counts.values())
            trial = f if current is None else (current * size + f) / (size + 1)
            loss = _loss(metric, actual, trial, scales, reference)
            if loss < step_loss - 1e-12:
                step_best, step_loss = c, loss
        if step_best is None or step_loss >= best_loss - 1e-9:
            break
        size = sum(counts.values())
        f = forecasts[step_best]
        current = f if current is None else (current * size + f) / (size + 1)
        counts[step_best] = counts.get(step_best, 0) + 1
        best_loss = step_loss
    total = sum(counts.values())
    return {c: n / total for c, n in counts.items()}, best_loss


def select_forecaster(forecasts: dict[int, np.ndarray], actual: np.ndarray, scales: np.ndarray,
                      metric: str, ensemble: bool = True,
                      reference: Optional[Naive2Reference] = None) -> Selection:
    """Pick what forecasts each series.

    The global choice is the best candidate on all windows, or the greedy combination when it
    scores better. Per-series choice (each series its best candidate on windows 2..W) replaces
    it only when it beats the global choice, also chosen on windows 2..W, on window 1 by
    ``PER_SERIES_GAIN``. ``reference`` (Naive2's backtest scores) is needed for ``"owa"``.
    """
    usable = {c: f for c, f in forecasts.items() if np.isfinite(
        f[~np.isnan(actual)]).all()}
    if not usable:
        raise RuntimeError("every candidate failed its backtest; check the data or give a "
                           "larger --time-budget")
    singles = {c: _loss(metric, actual, f, scales, reference) for c, f in usable.items()}
    best = min(singles, key=lambda c: (singles[c], c))
    weights, loss = {best: 1.0}, singles[best]
    if ensemble and len(usable) > 1:
        blend, blend_loss = greedy_combination(usable, actual, scales, metric, reference)
        if blend_loss < loss:
            weights, loss = blend, blend_loss
    # "chosen": the name "global_choice" had before it (kept for readers of metrics.json).
    facts = {"best_single": singles[best], "global_choice": loss, "chosen": loss}
    n = actual.shape[0]
    selection = Selection("global", [weights] * n, weights if len(weights) > 1 else {}, facts)
    if actual.shape[1] < 2 or n < 2:
        return selection
    per_series = _per_series(usable, actual, scales, metric, ensemble, reference)
    if per_series is not None:
        choice, global_loss, series_loss = per_series
        facts.update(window1_global=global_loss, window1_per_series=series_loss)
        if series_loss < global_loss * (1 - PER_SERIES_GAIN):
            selection = Selection("per_series", choice, selection.combination, facts)
    return selection


def _per_series(forecasts: dict[int, np.ndarray], actual: np.ndarray, scales: np.ndarray,
                metric: str, ensemble: bool, reference: Optional[Naive2Reference] = None
                ) -> tuple[list[dict[int, float]], float, float] | None:
    early, late = actual.copy(), actual.copy()
    early[:, 0] = np.nan  # choose on windows 2..W
    late[:, 1:] = np.nan  # judge on window 1
    has_both = ~np.isnan(early[:, 1:, 0]).all(axis=1) & ~np.isnan(late[:, 0, 0])
    if has_both.sum() < 2:
        return None
    glob = {c: _loss(metric, early, f, scales, reference) for c, f in forecasts.items()}
    pick = min(glob, key=lambda c: (glob[c], c))
    glob_weights = {pick: 1.0}
    if ensemble and len(forecasts) > 1:
        blend, blend_loss = greedy_combination(forecasts, early, scales, metric, reference)
        if blend_loss < glob[pick]:
            glob_weights = blend
    per_row = {c: pointwise_loss(metric, early, f, scales, reference)
               for c, f in forecasts.items()}
    ids = sorted(forecasts)
    stacked = np.stack([nan_mean(per_row[c]) for c in ids])
    choice: list[dict[int, float]] = []
    for i in range(actual.shape[0]):
        column = stacked[:, i]
        finite = np.isfinite(column)
        choice.append({ids[int(np.argmin(np.where(finite, column, np.inf)))]: 1.0}
                      if finite.any() else glob_weights)
    rows = np.flatnonzero(has_both)
    global_forecast = combine(forecasts, glob_weights)
    series_forecast = np.stack([combine({c: forecasts[c][i] for c in choice[i]}, choice[i])
                                for i in range(actual.shape[0])])
    return (choice, _loss(metric, late[rows], global_forecast[rows], scales[rows], reference),
            _loss(metric, late[rows], series_forecast[rows], scales[rows], reference))


def interval_quantiles(actual: np.ndarray, forecast: np.ndarray, scales: np.ndarray,
                       levels: tuple[float, ...] = (0.8, 0.95)) -> dict[str, list[list[float]]]:
    """Per horizon step, the ``level`` quantile of the absolute scaled backtest errors
    (|error| / MASE scale), pooled over series and windows, as a symmetric ``[-q, q]``:
    ``{"0.8": [[-q, q] per step], ...}``."""
    scaled = np.abs(actual - forecast) / scales[..., None]
    flat = scaled.reshape(-1, scaled.shape[-1])
    out: dict[str, list[list[float]]] = {}
    for level in levels:
        bounds = []
        for k in range(flat.shape[1]):
            errors = flat[:, k][np.isfinite(flat[:, k])]
            q = float(np.quantile(errors, level)) if len(errors) else 0.0
            bounds.append([-q, q])
        out[str(level)] = bounds
    return out
