"""The forecasting branch of the ``automl`` flow: validate -> backtest candidates in batches of
series -> select (best, combination, or per series) -> forecast -> publish."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from threadpoolctl import threadpool_limits

from flows._forecast_backtest import Candidate, backtest_all, batches, plan_candidates
from flows._loop import PUBLISH_SECONDS, Budget
from flows._report import ReportFiles, publish_report_artifacts
from flows._select import choose_families
from models import DataShape
from models._forecast import LEVELS, ForecastFamily, GlobalForecaster, LocalForecaster
from models._forecast_model import ForecastModel
from models.naive import NaiveForecaster, SeasonalNaiveForecaster
from tasks.artifacts import Progress, experiment_key, publish_artifacts
from tasks.backtest import (Naive2Reference, actuals, forecast_metrics, mase_scales, n_windows,
                            naive2_reference)
from tasks.forecast_charts import forecast_charts
from tasks.forecast_data import Panel, PreparedPanel, prepare_panel_task
from tasks.forecast_report import forecast_importance, forecast_report
from tasks.forecast_select import Selection, combine, interval_quantiles, select_forecaster
from tasks.publish import leaderboard_frame, package_versions, publish_task
from tasks.settings import TrainSettings
from tasks.types import CandidateResult, CandidateSpec, CandidateSummary, TrainResult

__all__ = ["run_forecasting"]


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


def _final_paths(selection: Selection, candidates: dict[int, Candidate], panel: Panel,
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


def _fallback(short: Panel, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal naive (naive when shorter than a season) paths and intervals."""
    paths = np.zeros((len(short), horizon))
    bounds = np.full((len(short), len(LEVELS), horizon, 2), np.nan)
    for i, y in enumerate(short.values):
        forecaster = SeasonalNaiveForecaster() if len(y) >= short.season else NaiveForecaster()
        one, found = local_forecasts(forecaster, short.subset([i]), horizon)
        paths[i], bounds[i] = one[0], found[0]
    return paths, bounds


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
    forecasts, results, fitted = backtest_all(candidates, panel, settings, budget, progress)
    actual, scales = actuals(panel, horizon, windows), mase_scales(panel, horizon, windows)
    reference = naive2_reference(panel, horizon, windows, actual, scales)
    for r in results:
        if r.spec.id in forecasts:
            r.metrics = forecast_metrics(actual, forecasts[r.spec.id], scales, reference)
    selection = select_forecaster(forecasts, actual, scales, metric, settings.ensemble,
                                  reference)
    by_id = {c.spec.id: c for c in candidates}
    by_id.update({r.spec.id: Candidate(r.spec, by_id[r.spec.id].family) for r in results})
    chosen_forecast = np.stack([combine({c: forecasts[c][i] for c in w}, w)
                                for i, w in enumerate(selection.weights)])
    chosen = _chosen_result(selection, results, actual, chosen_forecast, scales, budget,
                            reference)
    if all(chosen is not r for r in results):
        results.append(chosen)
    paths, members, bounds = _final_paths(selection, by_id, panel, settings, fitted, budget)
    quantiles = interval_quantiles(actual, chosen_forecast, scales)
    model = _model(prepared, settings, paths, bounds, quantiles, members)
    leaderboard = leaderboard_frame(results, metric, greater_is_better=False)
    facts = _facts(settings, prepared, metric, chosen, selection, results, budget, windows)
    charts = forecast_charts(panel, actual, chosen_forecast, paths, quantiles, scales,
                             settings.target, bounds)
    facts["charts"] = {c.name: c.numbers for c in charts}
    report = _report(settings, facts, leaderboard, charts, selection, fitted, panel, scales)
    model_path = publish_task(settings.output, model, leaderboard, facts,
                              _manifest(settings, prepared, metric, chosen), prepared.suite,
                              None, {**{c.name: c.png for c in charts}, **report.files})
    progress.update(1.0)
    publish_artifacts(key, leaderboard, prepared.guardrails, facts["summary"], metric)
    publish_report_artifacts(key, report)
    ids = {r.spec.id: r for r in results}
    return TrainResult(
        model_path=model_path, output=str(Path(settings.output).resolve()), task="forecasting",
        metric=metric, score=chosen.metrics[metric], best=CandidateSummary.of(chosen),
        leaderboard=[CandidateSummary.of(ids[i]) for i in leaderboard["id"]],
        guardrails=[g.to_dict() for g in prepared.guardrails],
        validation=f"rolling origin, {windows} windows of {horizon}",
        wall_seconds=round(time.time() - budget.started, 2),
        ensemble=selection.combination or None)


def _report(settings: TrainSettings, facts: dict[str, Any], leaderboard: pd.DataFrame,
            charts: list, selection: Selection, fitted: dict[int, Any], panel: Panel,
            scales: np.ndarray) -> ReportFiles:
    """feature_importance.csv (global members' inputs), report.html and the UI's report."""
    shares: dict[int, float] = {}
    for weights in selection.weights:
        for c, w in weights.items():
            shares[c] = shares.get(c, 0.0) + w / len(selection.weights)
    members = {c: (fitted[c][0], share) for c, share in shares.items() if c in fitted}
    importance = forecast_importance(members, panel, settings.horizon, scales[:, 0],
                                     settings.target, settings.time_column, settings.seed)
    files, markdown = forecast_report(facts, settings.model_dump(), leaderboard, importance,
                                      charts)
    facts["feature_importance"] = {"source": importance["source"].iloc[0], "top": importance[
        ["feature", "importance", "std"]].head(10).to_dict("records")}
    return ReportFiles(files, markdown, charts)


def _chosen_result(selection: Selection, results: list[CandidateResult], actual: np.ndarray,
                   forecast: np.ndarray, scales: np.ndarray, budget: Budget,
                   reference: Naive2Reference) -> CandidateResult:
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
    return CandidateResult(spec, "ok", forecast_metrics(actual, forecast, scales, reference),
                           fit_seconds=0.0, finished_seconds=time.time() - budget.started)


def _model(prepared: PreparedPanel, settings: TrainSettings, paths: np.ndarray,
           bounds: np.ndarray, quantiles: dict, members: dict[int, Any]) -> ForecastModel:
    panel, short = prepared.panel, prepared.short
    keys, ends = list(panel.keys), list(panel.ends)
    scales = [_history_scale(y, panel.season) for y in panel.values]
    dropped = {}
    if settings.short_series == "fallback" and len(short):
        fallback, fallback_bounds = _fallback(short, settings.horizon)
        paths, bounds = np.vstack([paths, fallback]), np.concatenate([bounds, fallback_bounds])
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
                         history, {str(level): bounds[:, j] for j, level in enumerate(LEVELS)})


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
    first = prepared.panel.keys[0] if len(prepared.panel) else ()
    numeric = [isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in first]
    roles = {settings.time_column: "datetime",
             **{c: "numeric" if n else "text" for c, n in zip(settings.series_id, numeric)},
             **{c: "numeric" for c in settings.known_features}}
    return {"settings": settings.model_dump(), "seed": settings.seed, "task": "forecasting",
            "target": settings.target, "metric": metric, "data_fingerprint": prepared.fingerprint,
            "feature_columns": columns, "column_roles": roles, "horizon": settings.horizon,
            "frequency": prepared.panel.freq, "chosen": chosen.spec.family,
            "packages": package_versions()}
