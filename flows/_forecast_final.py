"""The final stage of a forecasting run: the choice of forecaster, trimmed to the candidates
whose final forecasts fit the time left, and those forecasts from every series' full history
(global members trained again when that fits too)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from flows._forecast_backtest import Candidate, batches
from flows._loop import PUBLISH_SECONDS, Budget
from models._forecast import LEVELS, GlobalForecaster, LocalForecaster
from tasks.backtest import Naive2Reference
from tasks.forecast_data import Panel
from tasks.forecast_select import Selection, select_forecaster
from tasks.settings import TrainSettings

__all__ = ["choice_seconds", "final_paths", "forecast_task", "local_forecasts", "local_seconds",
           "select_within"]

FINAL_SHARE = 0.9  # of the time left after the backtests: the final forecasts' estimates err
# Final forecasts this short always fit, even when the backtests used up the budget (within its
# 5 s of grace): a naive family's take milliseconds, and leaving them out for time published
# plain naive forecasts (MASE 17.3) over validated seasonal ones (1.66).
MIN_FINAL_SECONDS = 1.0


def local_seconds(selection: Selection, final: dict[int, float],
                  local: set[int]) -> dict[int, float]:
    """Expected seconds of the final forecasts of each chosen local member: its ``final``
    estimate (all series) for the share of the series it forecasts."""
    rows: dict[int, int] = {}
    for weights in selection.weights:
        for c in weights:
            rows[c] = rows.get(c, 0) + 1
    n = max(1, len(selection.weights))
    return {c: final.get(c, 0.0) * count / n for c, count in rows.items() if c in local}


def choice_seconds(actual: np.ndarray, scales: np.ndarray, metric: str, ensemble: bool,
                   reference: Optional[Naive2Reference], local: set[int]
                   ) -> Callable[[dict[int, np.ndarray], dict[int, float]], float]:
    """A function of the backtest forecasts so far and the expected seconds of each one's final
    forecasts (see :func:`flows._forecast_backtest.final_work`): the seconds that the final
    forecasts of the local members of the choice they make would take."""
    def seconds(forecasts: dict[int, np.ndarray], final: dict[int, float]) -> float:
        try:
            selection = select_forecaster(forecasts, actual, scales, metric, ensemble, reference)
        except RuntimeError:  # no usable forecasts yet: nothing to forecast
            return 0.0
        return sum(local_seconds(selection, final, local).values())
    return seconds


def select_within(forecasts: dict[int, np.ndarray], actual: np.ndarray, scales: np.ndarray,
                  metric: str, ensemble: bool, reference: Optional[Naive2Reference],
                  final: dict[int, float], local: set[int],
                  seconds: Optional[float]) -> Selection:
    """:func:`~tasks.forecast_select.select_forecaster` over the candidates whose final
    forecasts fit ``seconds`` (None: no limit).

    The chosen local members' final forecasts run one after another in the worst case
    (statsmodels fits hold the GIL), so their seconds add up. While they exceed ``seconds``
    (at least :data:`MIN_FINAL_SECONDS`), the costliest leaves the pool and the choice is made
    again; the ids left out are in ``facts["left_out_for_time"]``. The last candidate is
    always kept.
    """
    pool = dict(forecasts)
    left_out: list[int] = []
    limit = None if seconds is None else max(seconds, MIN_FINAL_SECONDS)
    while True:
        selection = select_forecaster(pool, actual, scales, metric, ensemble, reference)
        costs = local_seconds(selection, final, local)
        if limit is None or sum(costs.values()) <= limit or len(pool) == 1 or not costs:
            break
        worst = max(costs, key=lambda c: (costs[c], c))
        left_out.append(worst)
        del pool[worst]
    if left_out:
        selection.facts["left_out_for_time"] = left_out
    return selection


@task(name="forecast", cache_policy=NO_CACHE, task_run_name="forecast-{name}")
def forecast_task(name: str, forecaster: Any, panel: Panel, horizon: int,
                  intervals: bool = False) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Forecasts (series, horizon) from the end of every series of ``panel``; with
    ``intervals``, a local forecaster's own intervals too (see :func:`local_forecasts`)."""
    with threadpool_limits(limits=1):
        if isinstance(forecaster, GlobalForecaster):
            return forecaster.predict(panel, horizon), None
        if intervals:
            return local_forecasts(forecaster, panel, horizon)
        return np.stack([forecaster(y, horizon, panel.season) for y in panel.values]), None


def local_forecasts(forecaster: LocalForecaster, panel: Panel,
                    horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Paths (series, horizon) and the model's prediction intervals (series, levels, horizon,
    2) in :data:`LEVELS` order, NaN for a series where the model has none."""
    paths = np.empty((len(panel), horizon))
    bounds = np.full((len(panel), len(LEVELS), horizon, 2), np.nan)
    for i, y in enumerate(panel.values):
        paths[i], found = forecaster.with_intervals(y, horizon, panel.season, LEVELS)
        if found is not None:
            bounds[i] = np.stack([found[level] for level in LEVELS])
    return paths, bounds


@task(name="refit", cache_policy=NO_CACHE, task_run_name="refit-{name}")
def refit_task(name: str, forecaster: GlobalForecaster, panel: Panel,
               horizon: int) -> GlobalForecaster:
    """Train a global forecaster on every series' full history."""
    with threadpool_limits(limits=1):
        return forecaster.fit(panel, horizon)


def final_paths(selection: Selection, candidates: dict[int, Candidate], panel: Panel,
                 settings: TrainSettings, fitted: dict[int, Any],
                 budget: Budget) -> tuple[np.ndarray, dict[int, Any], np.ndarray]:
    """Each series' forecast from its full history, weighted as selected; the global members
    are trained again on all of it when their first fit fits the time left. Series forecast by
    one local member alone get that model's own intervals (else NaN; see
    :func:`local_forecasts`)."""
    horizon = settings.horizon
    weights = np.zeros((len(panel), max(candidates) + 1))
    for i, chosen in enumerate(selection.weights):
        for c, w in chosen.items():
            weights[i, c] = w
    paths = np.zeros((len(panel), horizon))
    bounds = np.full((len(panel), len(LEVELS), horizon, 2), np.nan)
    members: dict[int, Any] = {}
    chosen = sorted(int(c) for c in np.flatnonzero(weights.sum(axis=0)))
    pending = []  # local members first, so that they run while a global one trains
    for c in (c for c in chosen if candidates[c].family.kind == "local"):
        cand = candidates[c]
        rows = [int(i) for i in np.flatnonzero(weights[:, c])]
        forecaster = cand.family.build("forecasting", cand.spec.config, settings.seed)
        alone = bool(np.any(weights[rows, c] == 1.0))
        for g in batches(len(rows), settings.n_workers):
            index = [rows[j] for j in g]
            pending.append((c, index, forecast_task.submit(
                cand.spec.family, forecaster, panel.subset(index), horizon, alone)))
    for c in (c for c in chosen if candidates[c].family.kind == "global"):
        cand = candidates[c]
        rows = [int(i) for i in np.flatnonzero(weights[:, c])]
        forecaster, seconds = fitted[c]
        if seconds * 1.2 + PUBLISH_SECONDS < budget.remaining():
            config = dict(cand.spec.config)
            if budget.seconds is not None:  # the local members' forecasts run beside it;
                # half of what is left: its training rows, forecast and the report come after
                config["time_limit"] = max(0.5, 0.5 * (budget.remaining() - PUBLISH_SECONDS))
            forecaster = refit_task(cand.spec.family, cand.family.build(
                "forecasting", config, settings.seed), panel, horizon)
        part, _ = forecast_task(cand.spec.family, forecaster, panel, horizon)
        members[c] = (forecaster, weights[:, c].copy(), part)
        paths[rows] += weights[rows, c, None] * part[rows]
    for c, index, future in pending:
        part, found = future.result()
        paths[index] += weights[index, c, None] * part
        if found is not None:
            alone = weights[index, c] == 1.0
            bounds[np.asarray(index)[alone]] = found[alone]
    return paths, members, bounds


