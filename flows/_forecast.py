"""The forecasting branch of the ``automl`` flow: validate -> backtest candidates in batches of
series -> select (best, combination, or per series) -> forecast -> publish."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect.logging import get_run_logger

from flows._forecast_backtest import Candidate, backtest_all, plan_candidates
from flows._forecast_final import (FINAL_SHARE, MIN_FINAL_SECONDS, choice_seconds, final_paths,
                                   local_forecasts, select_within)
from flows._forecast_registry import Backtest, register_forecast_task
from flows._registry import registering
from flows._loop import PUBLISH_SECONDS, Budget
from flows._report import ReportFiles, publish_report_artifacts
from flows._select import check_time_for_candidates, choose_families
from models import DataShape
from models._forecast import LEVELS, ForecastFamily
from models._forecast_model import ForecastModel
from models.naive import NaiveForecaster, SeasonalNaiveForecaster
from tasks.artifacts import Progress, experiment_key, publish_artifacts
from tasks.backtest import (Naive2Reference, actuals, forecast_metrics, mase_scales, n_windows,
                            naive2_reference)
from tasks.errors import listed
from tasks.forecast_charts import forecast_charts
from tasks.forecast_data import Panel, PreparedPanel, prepare_panel_task
from tasks.forecast_report import forecast_importance, forecast_report
from tasks.forecast_select import Selection, combine, interval_quantiles
from tasks.publish import leaderboard_frame, package_versions, publish_task
from tasks.settings import TrainSettings
from tasks.types import CandidateResult, CandidateSpec, CandidateSummary, TrainResult

__all__ = ["run_forecasting"]


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
    logger.info("%d series (%d too short to backtest), frequency %s, season %d; %d candidates, "
                "%d windows of %d", len(panel) + len(prepared.short), len(prepared.short),
                panel.freq, panel.season, len(candidates), windows, horizon)
    key = experiment_key(settings.target, settings.output)
    progress = Progress(key, f"Forecasters backtested for {settings.target}")
    if len(panel) == 0:
        raise RuntimeError("no series is long enough to backtest")  # guarded in prepare_panel
    actual, scales = actuals(panel, horizon, windows), mase_scales(panel, horizon, windows)
    reference = naive2_reference(panel, horizon, windows, actual, scales)
    local = {c.spec.id for c in candidates if c.family.kind == "local"}
    backtests = backtest_all(candidates, panel, settings, budget, progress, choice_seconds(
        actual, scales, metric, settings.ensemble, reference, local))
    forecasts, results, fitted = backtests.forecasts, backtests.results, backtests.fitted
    if not forecasts:
        check_time_for_candidates(results, budget)
    for r in results:
        if r.spec.id in forecasts:
            r.metrics = forecast_metrics(actual, forecasts[r.spec.id], scales, reference)
    seconds = (None if budget.seconds is None
               else FINAL_SHARE * (budget.remaining() - PUBLISH_SECONDS))
    selection = select_within(forecasts, actual, scales, metric, settings.ensemble, reference,
                              backtests.final, local, seconds)
    if selection.facts.get("left_out_for_time"):
        logger.info("left out of the choice, their final forecasts would not fit the %.0f s "
                    "left: %s", max(seconds, MIN_FINAL_SECONDS),
                    selection.facts["left_out_for_time"])
    by_id = {c.spec.id: c for c in candidates}
    by_id.update({r.spec.id: Candidate(r.spec, by_id[r.spec.id].family) for r in results})
    chosen_forecast = np.stack([combine({c: forecasts[c][i] for c in w}, w)
                                for i, w in enumerate(selection.weights)])
    chosen = _chosen_result(selection, results, actual, chosen_forecast, scales, budget,
                            reference)
    if all(chosen is not r for r in results):
        results.append(chosen)
    paths, members, bounds = final_paths(selection, by_id, panel, settings, fitted, budget)
    quantiles = interval_quantiles(actual, chosen_forecast, scales)
    model = _model(prepared, settings, paths, bounds, quantiles, members)
    leaderboard = leaderboard_frame(results, metric, greater_is_better=False,
                                    published=chosen.spec.id)
    facts = _facts(settings, prepared, metric, chosen, selection, results, budget, windows)
    facts["warnings"] = forecast_warnings(chosen, results, selection, metric)
    for warning in facts["warnings"]:
        logger.warning(warning)
    if facts["warnings"]:
        facts["summary"]["warning"] = "; ".join(facts["warnings"])
    charts = forecast_charts(panel, actual, chosen_forecast, paths, quantiles, scales,
                             settings.target, bounds, settings.series_id)
    facts["charts"] = {c.name: c.numbers for c in charts}
    report = _report(settings, facts, leaderboard, charts, selection, fitted, panel, scales)
    model_path = publish_task(settings.output, model, leaderboard, facts,
                              _manifest(settings, prepared, metric, chosen), prepared.suite,
                              None, {**{c.name: c.png for c in charts}, **report.files})
    progress.update(1.0)
    publish_artifacts(key, leaderboard, prepared.guardrails, facts["summary"], metric)
    publish_report_artifacts(key, report)
    decision = None
    if settings.registry:
        output = str(Path(model_path).parent)
        with registering(output):
            decision = register_forecast_task(
                settings, output, Backtest(
                    panel, horizon, windows, actual, chosen_forecast, scales, reference),
                metric, chosen.metrics[metric], key)
    ids = {r.spec.id: r for r in results}
    return TrainResult(
        model_path=model_path, output=str(Path(model_path).parent), task="forecasting",
        metric=metric, score=chosen.metrics[metric], best=CandidateSummary.of(chosen, True),
        leaderboard=[CandidateSummary.of(ids[i], i == chosen.spec.id)
                     for i in leaderboard["id"]],
        guardrails=[g.to_dict() for g in prepared.guardrails],
        validation=f"rolling origin, {windows} windows of {horizon}",
        wall_seconds=round(time.time() - budget.started, 2),
        ensemble=selection.combination or None,
        promotion=None if decision is None else decision.to_dict(), warnings=facts["warnings"])


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
    dropped = {k: f"no {settings.target!r} values in training" for k in prepared.empty}
    if settings.short_series == "fallback" and len(short):
        fallback, fallback_bounds = _fallback(short, settings.horizon)
        paths, bounds = np.vstack([paths, fallback]), np.concatenate([bounds, fallback_bounds])
        keys += short.keys
        ends += short.ends
        scales += [_history_scale(y, short.season) for y in short.values]
    else:
        dropped.update({k: "too short to backtest; --short-series drop" for k in short.keys})
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
                         history, {str(level): bounds[:, j] for j, level in enumerate(LEVELS)},
                         prepared.day_first, prepared.utc_offsets)


def _facts(settings: TrainSettings, prepared: PreparedPanel, metric: str,
           chosen: CandidateResult, selection: Selection, results: list[CandidateResult],
           budget: Budget, windows: int) -> dict[str, Any]:
    panel = prepared.panel
    counts = n_windows(panel, settings.horizon, windows)
    planned = [r for r in results if r.spec.family not in ("combination", "per_series")]
    summary = {
        "task": "forecasting", "target": settings.target, "metric": metric,
        "score": round(chosen.metrics[metric], 6), "chosen": chosen.spec.family,
        "selection": selection.mode, "series": len(panel) + len(prepared.short),
        "short_series": len(prepared.short), "frequency": panel.freq, "season": panel.season,
        "horizon": settings.horizon, "candidates": len(planned),
        "backtested": sum(r.status != "too_slow" for r in planned),
        "validation": f"rolling origin, up to {windows} windows of {settings.horizon}",
    }
    return {
        "metric": metric, "value": chosen.metrics[metric], "validation_metrics": chosen.metrics,
        "best": {"id": chosen.spec.id, "family": chosen.spec.family,
                 "config": chosen.spec.config},
        "selection": {"mode": selection.mode, **selection.facts,
                      "combination": {str(k): v for k, v in selection.combination.items()}},
        # "series": those backtested, as before "series_in_data" (the summary's count) existed.
        "series": len(panel), "series_in_data": len(panel) + len(prepared.short),
        "short_series": [list(k) for k in prepared.short.keys],
        "dropped_series": [list(k) for k in prepared.dropped],
        "windows_per_series": {str(w): int((counts == w).sum()) for w in range(windows + 1)},
        "filled_periods": prepared.n_filled, "frequency": panel.freq, "season": panel.season,
        "guardrails": [g.to_dict() for g in prepared.guardrails],
        "time_budget": budget.seconds,
        "elapsed_before_publish_seconds": round(time.time() - budget.started, 2),
        "summary": summary,
    }


def forecast_warnings(chosen: CandidateResult, results: list[CandidateResult],
                      selection: Selection, metric: str) -> list[str]:
    """What the user should know about the published forecaster: that it did worse than the
    Naive2 reference on the backtests, or that better candidates were left out for time."""
    warnings = []
    owa = chosen.metrics.get("owa", math.nan)
    if owa > 1:
        warnings.append(f"the published forecasts did worse than the Naive2 reference (naive "
                        f"forecasts of the seasonally adjusted series) on the backtests: OWA "
                        f"{owa:.3f}, above 1")
    by_id = {r.spec.id: r for r in results}
    better = [by_id[c] for c in selection.facts.get("left_out_for_time", [])
              if by_id[c].metrics.get(metric, math.inf) < chosen.metrics[metric]]
    if better:
        warnings.append(
            f"candidate(s) {listed([f'{r.spec.family} ({r.spec.id})' for r in better], 5, str)}"
            f" did better on the backtests ({metric} "
            f"{min(r.metrics[metric] for r in better):.4g} against {chosen.metrics[metric]:.4g})"
            " but their final forecasts did not fit the time left; give a larger time budget")
    return warnings


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
