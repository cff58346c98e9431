"""Backtesting the forecasting candidates within the time budget: local ones in batches of
series on every worker (their cost probed on a few series first), a global one in one task beside
them, sized to the time left and calibrated by what earlier fits measured."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from prefect.logging import get_run_logger

from flows._loop import PUBLISH_SECONDS, TOO_LITTLE_TIME, Budget
from models._forecast import ForecastFamily
from models._global import default_lags
from tasks.artifacts import Progress
from tasks.backtest import BacktestResult, Probe, backtest_task, probe_task
from tasks.forecast_data import Panel
from tasks.settings import TrainSettings
from tasks.types import CandidateResult, CandidateSpec

__all__ = ["Backtests", "Candidate", "backtest_all", "batches", "final_work", "plan_candidates"]

GLOBAL_SECONDS_PER_CELL = 2.5e-6  # measured: one-thread booster fit per row and feature
BATCHES_PER_WORKER = 4
PROBE_SERIES = 20
DEFER_SHARE = 0.4  # a candidate expected to take more of the time left waits for the others
PROBE_SHARE = 0.25  # of the time left, at most (and one series) for probing a local candidate
MIN_GLOBAL_ROWS = 5_000  # a global candidate that could train on fewer rows is not started


@dataclass
class Candidate:
    spec: CandidateSpec
    family: type[ForecastFamily]


@dataclass
class Backtests:
    """Every candidate's backtest: ``forecasts`` (series, windows, horizon) of those that ran,
    ``results`` in candidate order, ``fitted`` global forecasters with their seconds, and
    ``final`` the expected seconds of each finished candidate's final forecasts (see
    :func:`final_work`)."""

    forecasts: dict[int, np.ndarray]
    results: list[CandidateResult]
    fitted: dict[int, Any]
    final: dict[int, float]


def plan_candidates(families: list[type[ForecastFamily]], panel: Panel, horizon: int,
                    max_trials: Optional[int]) -> list[Candidate]:
    """Every family's configurations, cheapest family first, numbered (a global family's
    window length resolved from the panel when it leaves it open).

    A lookback variant (``lag_scale``) that the window cap leaves less than half as far from
    the default window as asked (hourly: twice 168 lags capped at 200) is left out: it would
    cost more than the default for a near twin of it, not a different lookback. A family whose
    configurations cannot be listed is left out with a warning.
    """
    out = []
    for family in sorted(families, key=lambda f: (f.cost, f.name)):
        try:
            configs = [dict(c) for c in family.configs(panel.season, horizon)]
        except Exception as exc:  # noqa: BLE001 - a plug-in's mistake costs its family only
            get_run_logger().warning("model family %s is left out: its configurations cannot "
                                     "be listed (%s)", family.name,
                                     f"{type(exc).__name__}: {exc}".splitlines()[0])
            continue
        for config in configs:
            if family.kind == "global" and config.get("n_lags", 0) is None:
                scale = float(config.get("lag_scale", 1.0))
                base = default_lags(panel.season, horizon, panel.freq)
                config["n_lags"] = default_lags(panel.season, horizon, panel.freq, scale)
                if abs(config["n_lags"] / base - 1) < abs(scale - 1) / 2:
                    continue
            out.append(Candidate(CandidateSpec(len(out) + 1, family.name, config), family))
    return out[:max_trials] if max_trials else out


def batches(n: int, workers: int) -> list[list[int]]:
    size = max(1, math.ceil(n / (workers * BATCHES_PER_WORKER)))
    return [list(range(i, min(n, i + size))) for i in range(0, n, size)]


def _global_rows(budget: Budget, n_features: int, cost: float) -> int:  # cost x rate
    """Training rows a global candidate can afford: its backtest fit and its final fit within
    40% of the time left (the local candidates run beside it; later ones get the rest)."""
    if budget.seconds is None:
        return 300_000
    seconds = max(0.0, budget.remaining()) * 0.4  # none once the time has run out
    return int(min(1_000_000, seconds / (2 * GLOBAL_SECONDS_PER_CELL * n_features * cost)))


def _time_limit(backtest_fits: int, left: float) -> float:
    """Seconds one fit of a global candidate may take: its backtest fits share the time left,
    so that they cannot overrun it (a fifth is kept for building the training rows, which the
    limit does not cut). The final refit is not counted: it runs only when its measured time
    fits what is left then (else the backtest's model is kept). The limit guards the budget
    and nothing else: twice the prediction, or a share kept for the refit, cut boosters
    predicted too cheap while the budget had room for them (M3 Quarterly OWA 0.883 -> 0.912,
    M4 Hourly 0.500 -> 0.509)."""
    return max(0.5, 0.8 * left / backtest_fits)


def final_work(results: dict[int, CandidateResult], fitted: dict[int, Any],
               costs: dict[str, Probe], windows: int) -> dict[int, float]:
    """Expected seconds of each finished candidate's final forecasts. A local one: its backtest
    times the final-over-backtest ratio its probe measured (M3 Yearly ARIMA: about 1, where
    one fit per series over one per series-window would say 0.48). A global one: one of its
    windows' fits (its refit runs only when it fits the time left)."""
    out = {}
    for r in results.values():
        if r.status != "ok":
            continue
        cost = costs.get(_cost_key(r.spec))
        ratio = cost.final_ratio if cost is not None else 1 / windows
        out[r.spec.id] = r.fit_seconds / windows if r.spec.id in fitted else r.fit_seconds * ratio
    return out


def _cost_key(spec: CandidateSpec) -> str:
    """Local costs are measured per configuration: one family's configurations differ a lot
    (Holt-Winters against simple smoothing)."""
    return f"{spec.family}:{sorted(spec.config.items())}"


def _expected_seconds(cand: Candidate, panel: Panel, settings: TrainSettings, budget: Budget,
                      costs: dict[str, Probe], rates: dict[str, float], busy: int = 0,
                      reserve: float = 0.0) -> tuple[CandidateSpec, float]:
    """The candidate (global ones sized to, and time-limited by, the time left beyond
    ``reserve``) and its expected seconds.

    ``costs`` holds what local configurations measured (a probe, then their backtest);
    ``rates``, per global family, measured over predicted seconds of its earlier candidates;
    a family not measured yet is assumed as slow as the slowest measured one.
    """
    spec, family, windows = cand.spec, cand.family, settings.backtest_windows
    if family.kind == "global":
        features = int(spec.config.get("n_lags", 8)) + 5
        rate = max(1.0, rates.get(family.name, max(rates.values(), default=1.0)))
        cost = family.cost * family.config_cost(spec.config) * rate
        rows = _global_rows(budget, features, cost)
        spec = CandidateSpec(spec.id, spec.family, {**spec.config, "max_rows": rows})
        cells = min(rows, sum(len(v) for v in panel.values) * settings.horizon)
        fit = GLOBAL_SECONDS_PER_CELL * cells * features * cost
        fits = windows + 1 if (windows + 1) * fit < 0.4 * budget.remaining() else 2
        extra = {"fit_per_window": True} if fits > 2 else {}  # cheap: a fit at every origin
        if budget.seconds is not None:
            extra["time_limit"] = round(_time_limit(fits - 1, budget.remaining() - reserve), 2)
        return CandidateSpec(spec.id, spec.family, {**spec.config, **extra}), fits * fit
    cost = costs.get(_cost_key(spec), Probe(0.002 * family.cost, 1 / windows))
    seconds = cost.per_window * len(panel) * windows * (1 + cost.final_ratio)
    return spec, seconds / max(1, settings.n_workers - busy)  # busy: threads a global holds


def backtest_all(candidates: list[Candidate], panel: Panel, settings: TrainSettings,
                 budget: Budget, progress: Progress,
                 choice_seconds: Optional[Callable[[dict[int, np.ndarray], dict[int, float]],
                                                   float]] = None) -> Backtests:
    """Backtest the candidates in order, local ones in batches of series on every worker;
    a global one trains in one task while the local ones go on beside it.

    A candidate starts only when its backtest and final forecasts fit the time left beyond
    what the final stage already needs: publishing, and the final forecasts of the choice the
    backtests so far make (``choice_seconds`` of the forecasts and :func:`final_work`), or of
    the costliest candidate when that is more. One expected to take over ``DEFER_SHARE`` of
    that time waits until the candidates after it have had their turn; the ones that waited
    then go cheapest first (M3 Quarterly: a Holt-Winters configuration of 93 s, before the
    boosters, left them no time).
    """
    logger = get_run_logger()
    horizon, windows = settings.horizon, settings.backtest_windows
    groups_of = batches(len(panel), settings.n_workers)
    forecasts: dict[int, np.ndarray] = {}
    results: dict[int, CandidateResult] = {}
    fitted: dict[int, Any] = {}
    costs: dict[str, Probe] = {}  # local configuration -> what it measured
    rates: dict[str, float] = {}  # global family -> measured / predicted seconds
    pending: list[tuple[CandidateSpec, list[list[int]], list, float, float]] = []

    def collect(spec: CandidateSpec, groups: list[list[int]], futures: list,
                started: float, expected: float) -> None:
        parts: list[BacktestResult] = [f.result() for f in futures]
        working = sum(p.seconds for p in parts)  # measured inside the tasks, not waiting
        errors = [p.error for p in parts if p.error]
        if errors:
            results[spec.id] = CandidateResult(spec, "failed", fit_seconds=working,
                                               error=errors[0])
            return
        out = np.full((len(panel), windows, horizon), np.nan)
        for rows, part in zip(groups, parts):
            out[rows] = part.forecasts
        forecasts[spec.id] = out
        if parts[0].fitted is not None:
            fitted[spec.id] = (parts[0].fitted, working)
            fits = (windows if spec.config.get("fit_per_window") else 1)
            predicted = expected * fits / (fits + 1)  # the expectation included the final fit
            rates[spec.family] = max(rates.get(spec.family, 0.0), working / max(predicted, 1e-3))
        else:
            key = _cost_key(spec)
            costs[key] = Probe(working / (len(panel) * windows), costs[key].final_ratio)
        results[spec.id] = CandidateResult(spec, "ok", fit_seconds=working,
                                           finished_seconds=time.time() - budget.started)
        progress.update(0.9 * len(results) / len(candidates))

    chosen: dict[frozenset, float] = {}  # finished candidates -> their choice's final seconds
    probe_rows = sorted({int(i) for i in np.linspace(0, len(panel) - 1, PROBE_SERIES)})
    queue, deferred = list(candidates), set()
    later: list[tuple[float, int, Candidate]] = []  # expected seconds, order, candidate
    while queue or later:
        if not queue:
            queue, later = [c for _, _, c in sorted(later, key=lambda t: t[:2])], []
        cand = queue.pop(0)
        if cand.family.kind == "global":
            while pending:  # one global fit at a time
                collect(*pending.pop())
        work = final_work(results, fitted, costs, windows)
        done = frozenset(forecasts)  # the choice changes only when a backtest finishes
        if choice_seconds and done and done not in chosen:
            chosen[done] = choice_seconds(forecasts, work)
        reserve = PUBLISH_SECONDS + max(chosen.get(done, 0.0), max(work.values(), default=0.0))
        spec, expected = _expected_seconds(cand, panel, settings, budget, costs, rates,
                                           len(pending), reserve)
        left = budget.remaining() - reserve
        rows = spec.config.get("max_rows", MIN_GLOBAL_ROWS)
        if expected > left or rows < MIN_GLOBAL_ROWS:
            why = (f"the time left affords {rows} training rows, under {MIN_GLOBAL_ROWS}"
                   if rows < MIN_GLOBAL_ROWS else f"about {expected:.0f} s needed, "
                   f"{max(left, 0.0):.0f} s left beyond {reserve:.0f} s kept for the final stage")
            logger.info("%s skipped: %s", spec.run_name, why)
            results[spec.id] = CandidateResult(spec, "too_slow",
                                               error=TOO_LITTLE_TIME)
            continue
        forecaster = cand.family.build("forecasting", spec.config, settings.seed)
        if cand.family.kind == "local" and _cost_key(spec) not in costs:
            found = probe_task(spec.family, forecaster, panel.subset(probe_rows), horizon,
                               windows, None if budget.seconds is None
                               else max(0.1, PROBE_SHARE * left))
            # Measured alone; its batches may gain nothing from running side by side
            # (statsmodels holds the GIL), as the backtest then measures.
            costs[_cost_key(spec)] = Probe(found.per_window * settings.n_workers,
                                           found.final_ratio)
            spec, expected = _expected_seconds(cand, panel, settings, budget, costs, rates,
                                               len(pending))
            if expected > budget.remaining() - reserve:
                logger.info("%s skipped after a probe: about %.0f s needed, %.0f s left beyond "
                            "%.0f s kept for the final stage", spec.run_name, expected,
                            max(budget.remaining() - reserve, 0.0), reserve)
                results[spec.id] = CandidateResult(spec, "too_slow",
                                                   error=TOO_LITTLE_TIME)
                continue
        if expected > DEFER_SHARE * left and queue and spec.id not in deferred:
            logger.info("%s deferred: about %.0f s of the %.0f s left", spec.run_name, expected,
                        left)
            deferred.add(spec.id)
            alone = (_expected_seconds(cand, panel, settings, budget, costs, rates)[1]
                     if cand.family.kind == "local" else expected)  # with no global beside it
            later.append((alone, spec.id, cand))
            continue
        if budget.seconds is not None:
            logger.info("%s: about %.0f s expected, %.0f s left beyond %.0f s kept for the "
                        "final stage", spec.run_name, expected,
                        max(budget.remaining() - reserve, 0.0), reserve)
        groups = [list(range(len(panel)))] if cand.family.kind == "global" else groups_of
        name = f"backtest-{spec.family}-{spec.id:02d}"
        futures = [backtest_task.with_options(task_run_name=f"{name}-b{b}").submit(
            spec.family, spec.id, b, forecaster, panel.subset(rows), horizon, windows,
            bool(spec.config.get("fit_per_window")))
            for b, rows in enumerate(groups)]
        if cand.family.kind == "global":
            pending.append((spec, groups, futures, time.perf_counter(), expected))
        else:
            collect(spec, groups, futures, time.perf_counter(), expected)
    while pending:
        collect(*pending.pop())
    return Backtests(forecasts, [results[c.spec.id] for c in candidates], fitted,
                     final_work(results, fitted, costs, windows))
