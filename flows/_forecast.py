"""The forecasting branch of the ``automl`` flow: validate -> backtest candidates in batches of
series -> select (best, combination, or per series) -> forecast -> publish."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from threadpoolctl import threadpool_limits

from flows._loop import PUBLISH_SECONDS, Budget
from flows._select import choose_families
from models import DataShape
from models._forecast import ForecastFamily, GlobalForecaster
from models._forecast_model import ForecastModel
from models._global import default_lags
from models.naive import NaiveForecaster, SeasonalNaiveForecaster
from tasks.artifacts import Progress, experiment_key, publish_artifacts
from tasks.backtest import (BacktestResult, actuals, backtest_task, forecast_metrics,
                            mase_scales, n_windows)
from tasks.forecast_charts import forecast_charts
from tasks.forecast_data import Panel, PreparedPanel, prepare_panel_task
from tasks.forecast_select import Selection, combine, interval_quantiles, select_forecaster
from tasks.publish import leaderboard_frame, package_versions, publish_task
from tasks.settings import TrainSettings
from tasks.types import CandidateResult, CandidateSpec, CandidateSummary, TrainResult

__all__ = ["plan_candidates", "run_forecasting"]

GLOBAL_SECONDS_PER_CELL = 2.5e-6  # measured: one-thread booster fit per row and feature
BATCHES_PER_WORKER = 4


@dataclass
class Candidate:
    spec: CandidateSpec
    family: type[ForecastFamily]


def plan_candidates(families: list[type[ForecastFamily]], panel: Panel, horizon: int,
                    max_trials: Optional[int]) -> list[Candidate]:
    """Every family's configurations, cheapest family first, numbered (a global family's
    window length resolved from the panel when it leaves it open)."""
    out = []
    for family in sorted(families, key=lambda f: (f.cost, f.name)):
        for config in family.configs(panel.season, horizon):
            config = dict(config)
            if family.kind == "global" and config.get("n_lags", 0) is None:
                config["n_lags"] = default_lags(panel.season, horizon, panel.freq)
            out.append(Candidate(CandidateSpec(len(out) + 1, family.name, config), family))
    return out[:max_trials] if max_trials else out


def _batches(n: int, workers: int) -> list[list[int]]:
    size = max(1, math.ceil(n / (workers * BATCHES_PER_WORKER)))
    return [list(range(i, min(n, i + size))) for i in range(0, n, size)]


def _global_rows(budget: Budget, n_features: int, cost: float) -> int:  # cost x rate
    """Training rows a global candidate can afford: its backtest fit and its final fit within
    40% of the time left (the local candidates run beside it; later ones get the rest)."""
    if budget.seconds is None:
        return 300_000
    seconds = budget.remaining() * 0.4
    return int(min(1_000_000, seconds / (2 * GLOBAL_SECONDS_PER_CELL * n_features * cost)))


def _cost_key(spec: CandidateSpec) -> str:
    """Local costs are measured per configuration: one family's configurations differ a lot
    (Holt-Winters against simple smoothing)."""
    return f"{spec.family}:{sorted(spec.config.items())}"


def _expected_seconds(cand: Candidate, panel: Panel, settings: TrainSettings, budget: Budget,
                      per_cell: dict[str, float], rates: dict[str, float],
                      busy: int = 0) -> tuple[CandidateSpec, float]:
    """The candidate (global ones sized to the time left) and its expected seconds.

    ``rates`` holds, per global family, measured over predicted seconds of its earlier
    candidates; a family not measured yet is assumed as slow as the slowest measured one.
    """
    spec, family, windows = cand.spec, cand.family, settings.backtest_windows
    if family.kind == "global":
        features = int(spec.config.get("n_lags", 8)) + 5
        rate = max(1.0, rates.get(family.name, max(rates.values(), default=1.0)))
        rows = _global_rows(budget, features, family.cost * rate)
        spec = CandidateSpec(spec.id, spec.family, {**spec.config, "max_rows": rows})
        cells = min(rows, sum(len(v) for v in panel.values) * settings.horizon)
        fit = GLOBAL_SECONDS_PER_CELL * cells * features * family.cost * rate
        if (windows + 1) * fit < 0.4 * budget.remaining():  # cheap: a fit at every origin
            spec = CandidateSpec(spec.id, spec.family, {**spec.config, "fit_per_window": True})
            return spec, (windows + 1) * fit
        return spec, 2 * fit
    cells = len(panel) * windows
    seconds = per_cell.get(_cost_key(spec), 0.002 * family.cost) * cells * (1 + 1 / windows)
    return spec, seconds / max(1, settings.n_workers - busy)  # busy: threads a global holds


def _backtest_all(candidates: list[Candidate], panel: Panel, settings: TrainSettings,
                  budget: Budget, progress: Progress) -> tuple[dict[int, np.ndarray],
                                                                list[CandidateResult], dict]:
    """Backtest the candidates in order, local ones in batches of series on every worker;
    a global one trains in one task while the local ones go on beside it."""
    logger = get_run_logger()
    horizon, windows = settings.horizon, settings.backtest_windows
    batches = _batches(len(panel), settings.n_workers)
    forecasts: dict[int, np.ndarray] = {}
    results: dict[int, CandidateResult] = {}
    fitted: dict[int, Any] = {}
    per_cell: dict[str, float] = {}  # configuration -> measured seconds per series-window
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
            per_cell[_cost_key(spec)] = working / (len(panel) * windows)
        results[spec.id] = CandidateResult(spec, "ok", fit_seconds=working,
                                           finished_seconds=time.time() - budget.started)
        progress.update(0.9 * len(results) / len(candidates))

    def probe(spec: CandidateSpec, forecaster: Any, rows: list[int]) -> float:
        """Seconds per series-window of a local configuration not measured yet in this run."""
        first = backtest_task.with_options(task_run_name=f"probe-{spec.family}").submit(
            spec.family, spec.id, 0, forecaster, panel.subset(rows), horizon, windows)
        return first.result().seconds / (len(rows) * windows)

    for cand in candidates:
        if cand.family.kind == "global":
            while pending:  # one global fit at a time
                collect(*pending.pop())
        reserve = PUBLISH_SECONDS + max(
            (r.fit_seconds / windows for r in results.values() if r.status == "ok"), default=0.0)
        spec, expected = _expected_seconds(cand, panel, settings, budget, per_cell, rates,
                                           len(pending))
        left = budget.remaining() - reserve
        if expected > left or spec.config.get("max_rows", 5_000) < 5_000:
            logger.info("%s skipped: about %.0f s needed, %.0f s left", spec.run_name, expected,
                        left)
            results[spec.id] = CandidateResult(spec, "too_slow",
                                               error="would not fit the time left")
            continue
        forecaster = cand.family.build("forecasting", spec.config, settings.seed)
        if cand.family.kind == "local" and _cost_key(spec) not in per_cell:
            per_cell[_cost_key(spec)] = probe(spec, forecaster, batches[0][:20])
            spec, expected = _expected_seconds(cand, panel, settings, budget, per_cell, rates,
                                           len(pending))
            if expected > budget.remaining() - reserve:
                logger.info("%s skipped after a probe: about %.0f s needed", spec.run_name,
                            expected)
                results[spec.id] = CandidateResult(spec, "too_slow",
                                                   error="would not fit the time left")
                continue
        groups = [list(range(len(panel)))] if cand.family.kind == "global" else batches
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
    return forecasts, [results[c.spec.id] for c in candidates], fitted


@task(name="forecast", cache_policy=NO_CACHE, task_run_name="forecast-{name}")
def forecast_task(name: str, forecaster: Any, panel: Panel, horizon: int) -> np.ndarray:
    """Forecasts (series, horizon) from the end of every series of ``panel``."""
    with threadpool_limits(limits=1):
        if isinstance(forecaster, GlobalForecaster):
            return forecaster.predict(panel, horizon)
        return np.stack([forecaster(y, horizon, panel.season) for y in panel.values])


@task(name="refit", cache_policy=NO_CACHE, task_run_name="refit-{name}")
def refit_task(name: str, forecaster: GlobalForecaster, panel: Panel,
               horizon: int) -> GlobalForecaster:
    """Train a global forecaster on every series' full history."""
    with threadpool_limits(limits=1):
        return forecaster.fit(panel, horizon)


def _final_paths(selection: Selection, candidates: dict[int, Candidate], panel: Panel,
                 settings: TrainSettings, fitted: dict[int, Any],
                 budget: Budget) -> tuple[np.ndarray, dict[int, Any]]:
    """Each series' forecast from its full history, weighted as selected; the global members
    are trained again on all of it when their first fit fits the time left."""
    horizon = settings.horizon
    weights = np.zeros((len(panel), max(candidates) + 1))
    for i, chosen in enumerate(selection.weights):
        for c, w in chosen.items():
            weights[i, c] = w
    paths = np.zeros((len(panel), horizon))
    members: dict[int, Any] = {}
    chosen = sorted(int(c) for c in np.flatnonzero(weights.sum(axis=0)))
    pending = []  # local members first, so that they run while a global one trains
    for c in (c for c in chosen if candidates[c].family.kind == "local"):
        cand = candidates[c]
        rows = [int(i) for i in np.flatnonzero(weights[:, c])]
        forecaster = cand.family.build("forecasting", cand.spec.config, settings.seed)
        for g in _batches(len(rows), settings.n_workers):
            index = [rows[j] for j in g]
            pending.append((c, index, forecast_task.submit(cand.spec.family, forecaster,
                                                           panel.subset(index), horizon)))
    for c in (c for c in chosen if candidates[c].family.kind == "global"):
        cand = candidates[c]
        rows = [int(i) for i in np.flatnonzero(weights[:, c])]
        forecaster, seconds = fitted[c]
        if seconds * 1.2 + PUBLISH_SECONDS < budget.remaining():
            forecaster = refit_task(cand.spec.family, cand.family.build(
                "forecasting", cand.spec.config, settings.seed), panel, horizon)
        part = forecast_task(cand.spec.family, forecaster, panel, horizon)
        members[c] = (forecaster, weights[:, c].copy(), part)
        paths[rows] += weights[rows, c, None] * part[rows]
    for c, index, future in pending:
        paths[index] += weights[index, c, None] * future.result()
    return paths, members


def _fallback(short: Panel, horizon: int) -> np.ndarray:
    naive, seasonal = NaiveForecaster(), SeasonalNaiveForecaster()
    return np.stack([(seasonal if len(y) >= short.season else naive)(y, horizon, short.season)
                     for y in short.values]) if len(short) else np.zeros((0, horizon))


def _history_scale(y: np.ndarray, season: int) -> float:
    lag = season if len(y) > 2 * season else 1
    diffs = np.abs(y[lag:] - y[:-lag]) if len(y) > lag else np.array([])
    scale = float(diffs.mean()) if len(diffs) else 0.0
    return scale if scale > 0 else (float(np.mean(np.abs(y))) or 1.0)


def run_forecasting(settings: TrainSettings, frame: pd.DataFrame, budget: Budget) -> TrainResult:
    """The forecasting run, inside the ``automl`` flow."""
    logger = get_run_logger()
    prepared: PreparedPanel = prepare_panel_task(frame, settings)
    panel, horizon, windows = prepared.panel, settings.horizon, settings.backtest_windows
    metric = settings.metric or "mase"
    families = [f for f in choose_families(settings, DataShape(0, 0))
                if issubclass(f, ForecastFamily)]
    candidates = plan_candidates(families, panel, horizon, settings.max_trials)
    logger.info("%d series (%d short), frequency %s, season %d; %d candidates, %d windows of %d",
                len(panel), len(prepared.short), panel.freq, panel.season, len(candidates),
                windows, horizon)
    key = experiment_key(settings.target, settings.output)
    progress = Progress(key, f"Forecasters backtested for {settings.target}")
    if len(panel) == 0:
        raise RuntimeError("no series is long enough to backtest")  # guarded in prepare_panel
    forecasts, results, fitted = _backtest_all(candidates, panel, settings, budget, progress)
    actual, scales = actuals(panel, horizon, windows), mase_scales(panel, horizon, windows)
    for r in results:
        if r.spec.id in forecasts:
            r.metrics = forecast_metrics(actual, forecasts[r.spec.id], scales)
    selection = select_forecaster(forecasts, actual, scales, metric, settings.ensemble)
    by_id = {c.spec.id: c for c in candidates}
    by_id.update({r.spec.id: Candidate(r.spec, by_id[r.spec.id].family) for r in results})
    chosen_forecast = np.stack([combine({c: forecasts[c][i] for c in w}, w)
                                for i, w in enumerate(selection.weights)])
    chosen = _chosen_result(selection, results, actual, chosen_forecast, scales, budget)
    if all(chosen is not r for r in results):
        results.append(chosen)
    paths, members = _final_paths(selection, by_id, panel, settings, fitted, budget)
    quantiles = interval_quantiles(actual, chosen_forecast, scales)
    model = _model(prepared, settings, paths, quantiles, members)
    leaderboard = leaderboard_frame(results, metric, greater_is_better=False)
    facts = _facts(settings, prepared, metric, chosen, selection, results, budget, windows)
    charts = forecast_charts(panel, actual, chosen_forecast, paths, quantiles, scales,
                             settings.target)
    facts["charts"] = {c.name: c.numbers for c in charts}
    model_path = publish_task(settings.output, model, leaderboard, facts,
                              _manifest(settings, prepared, metric, chosen), prepared.suite,
                              None, {f"{c.name}.png": c.png for c in charts})
    progress.update(1.0)
    publish_artifacts(key, leaderboard, prepared.guardrails, facts["summary"], metric)
    ids = {r.spec.id: r for r in results}
    return TrainResult(
        model_path=model_path, output=str(Path(settings.output).resolve()), task="forecasting",
        metric=metric, score=chosen.metrics[metric], best=CandidateSummary.of(chosen),
        leaderboard=[CandidateSummary.of(ids[i]) for i in leaderboard["id"]],
        guardrails=[g.to_dict() for g in prepared.guardrails],
        validation=f"rolling origin, {windows} windows of {horizon}",
        wall_seconds=round(time.time() - budget.started, 2),
        ensemble=selection.combination or None)


def _chosen_result(selection: Selection, results: list[CandidateResult], actual: np.ndarray,
                   forecast: np.ndarray, scales: np.ndarray, budget: Budget) -> CandidateResult:
    if selection.mode == "global" and len(selection.weights[0]) == 1:
        only = next(iter(selection.weights[0]))
        return next(r for r in results if r.spec.id == only)
    config: dict[str, Any] = {"mode": selection.mode}
    if selection.mode == "global":
        config["members"] = {int(c): round(w, 4) for c, w in selection.weights[0].items()}
    else:
        counts = pd.Series([next(iter(w)) if len(w) == 1 else "combination"
                            for w in selection.weights]).value_counts()
        config["series_per_candidate"] = {str(k): int(v) for k, v in counts.items()}
    spec = CandidateSpec(max(r.spec.id for r in results) + 1,
                         "combination" if selection.mode == "global" else "per_series", config)
    return CandidateResult(spec, "ok", forecast_metrics(actual, forecast, scales),
                           fit_seconds=0.0, finished_seconds=time.time() - budget.started)


def _model(prepared: PreparedPanel, settings: TrainSettings, paths: np.ndarray,
           quantiles: dict, members: dict[int, Any]) -> ForecastModel:
    panel, short = prepared.panel, prepared.short
    keys, ends = list(panel.keys), list(panel.ends)
    scales = [_history_scale(y, panel.season) for y in panel.values]
    dropped = {}
    if settings.short_series == "fallback" and len(short):
        paths = np.vstack([paths, _fallback(short, settings.horizon)])
        keys += short.keys
        ends += short.ends
        scales += [_history_scale(y, short.season) for y in short.values]
    else:
        dropped = {k: "too short to backtest; --short-series drop" for k in short.keys}
    keep_global = bool(settings.known_features) and bool(members)
    if keep_global and len(short):  # fallback series take no part in the global members
        members = {c: (f, np.r_[w, np.zeros(len(short))], np.vstack([p, np.zeros(
            (len(short), settings.horizon))])) for c, (f, w, p) in members.items()}
    history = None
    if keep_global:
        history = panel if not len(short) or settings.short_series == "drop" else Panel(
            keys, panel.values + short.values, ends, panel.freq, panel.season,
            panel.feature_names, (panel.features or []) + (short.features or []))
    return ForecastModel(settings.time_column, settings.series_id, settings.target, panel.freq,
                         settings.horizon, keys, ends, paths, np.asarray(scales), quantiles,
                         dropped, settings.known_features, members if keep_global else None,
                         history)


def _facts(settings: TrainSettings, prepared: PreparedPanel, metric: str,
           chosen: CandidateResult, selection: Selection, results: list[CandidateResult],
           budget: Budget, windows: int) -> dict[str, Any]:
    panel = prepared.panel
    counts = n_windows(panel, settings.horizon, windows)
    summary = {
        "task": "forecasting", "target": settings.target, "metric": metric,
        "score": round(chosen.metrics[metric], 6), "chosen": chosen.spec.family,
        "selection": selection.mode, "series": len(panel) + len(prepared.short),
        "short_series": len(prepared.short), "frequency": panel.freq, "season": panel.season,
        "horizon": settings.horizon, "candidates": len(results),
        "validation": f"rolling origin, up to {windows} windows of {settings.horizon}",
    }
    return {
        "metric": metric, "value": chosen.metrics[metric], "validation_metrics": chosen.metrics,
        "best": {"id": chosen.spec.id, "family": chosen.spec.family,
                 "config": chosen.spec.config},
        "selection": {"mode": selection.mode, **selection.facts,
                      "combination": {str(k): v for k, v in selection.combination.items()}},
        "series": len(panel), "short_series": [list(k) for k in prepared.short.keys],
        "dropped_series": [list(k) for k in prepared.dropped],
        "windows_per_series": {str(w): int((counts == w).sum()) for w in range(windows + 1)},
        "filled_periods": prepared.n_filled, "frequency": panel.freq, "season": panel.season,
        "guardrails": [g.to_dict() for g in prepared.guardrails],
        "time_budget": budget.seconds,
        "elapsed_before_publish_seconds": round(time.time() - budget.started, 2),
        "summary": summary,
    }


def _manifest(settings: TrainSettings, prepared: PreparedPanel, metric: str,
              chosen: CandidateResult) -> dict[str, Any]:
    columns = [settings.time_column, *settings.series_id, *settings.known_features]
    roles = {settings.time_column: "datetime", **{c: "text" for c in settings.series_id},
             **{c: "numeric" for c in settings.known_features}}
    return {"settings": settings.model_dump(), "seed": settings.seed, "task": "forecasting",
            "target": settings.target, "metric": metric, "data_fingerprint": prepared.fingerprint,
            "feature_columns": columns, "column_roles": roles, "horizon": settings.horizon,
            "frequency": prepared.panel.freq, "chosen": chosen.spec.family,
            "packages": package_versions()}
