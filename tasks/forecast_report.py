"""The forecasting run's ``report.html`` and ``feature_importance.csv`` (the results-folder
contract of every task), and the markdown the Prefect UI shows."""

from __future__ import annotations

import html
import json
from typing import Any, Optional

import numpy as np
import pandas as pd

from tasks.charts import Chart
from tasks.forecast_data import Panel
from tasks.html_page import (
    CHARTS_NOTE,
    figures,
    leaderboard_view,
    markdown_table,
    number,
    page,
    table,
)
from tasks.settings import REGISTRY_SETTINGS, TABULAR_SETTINGS

__all__ = ["forecast_importance", "forecast_report"]

REPEATS = 3
MAX_SERIES = 500


def _member_importance(forecaster: Any, panel: Panel, horizon: int, scales: np.ndarray,
                       rng: np.random.Generator) -> dict[str, list[float]]:
    """MASE increase on each series' latest horizon when one input is shuffled across rows."""
    rows = [i for i, y in enumerate(panel.values) if len(y) > horizon][:MAX_SERIES]
    if not rows:
        return {}
    part = panel.subset(rows)
    future = None
    if part.features is not None:
        future = [f[len(f) - horizon:] for f in part.features]
    X, meta = forecaster.design(part.cut(horizon), horizon, future)
    actual = np.stack([y[-horizon:] for y in part.values])
    scale = scales[rows, None]

    def loss(design: np.ndarray) -> float:
        forecast = forecaster.forecast_from(design, meta, len(rows), horizon)
        return float(np.nanmean(np.abs(actual - forecast) / scale))

    base = loss(X)
    out: dict[str, list[float]] = {}
    for name, columns in forecaster.windows_.column_groups(panel.feature_names).items():
        increases = []
        for _ in range(REPEATS):
            shuffled = X.copy()
            shuffled[:, columns] = X[rng.permutation(len(X))][:, columns]
            increases.append(loss(shuffled) - base)
        out[name] = increases
    return out


def forecast_importance(members: dict[int, tuple[Any, float]], panel: Panel, horizon: int,
                        scales: np.ndarray, target: str, time_column: str,
                        seed: int = 0) -> pd.DataFrame:
    """Importance of the raw columns behind the chosen forecast.

    Parameters
    ----------
    members : dict
        Global member id -> (its forecaster as fitted for the backtest, so that every series'
        latest horizon is out of sample; its share of the forecast).
    scales : numpy.ndarray
        Each series' MASE scale for that window.

    Returns
    -------
    pandas.DataFrame
        ``feature`` (the target's history, the time column as periods ahead, each known-future
        feature), ``importance`` (MASE increase when that input is shuffled, weighted by each
        global member's share), ``std`` and ``source``.
    """
    rng = np.random.default_rng(seed)
    names = {"history": target, "step": time_column}
    totals: dict[str, np.ndarray] = {}
    share = 0.0
    for forecaster, weight in members.values():
        if not hasattr(forecaster, "design") or weight <= 0:
            continue
        share += weight
        for name, increases in _member_importance(forecaster, panel, horizon, scales,
                                                  rng).items():
            totals[name] = totals.get(name, 0.0) + weight * np.asarray(increases)
    if not totals:
        return pd.DataFrame({
            "feature": [target], "importance": [np.nan], "std": [np.nan],
            "source": ["statistical members only: they forecast each series from its own "
                       f"history of {target!r}; no other column is read"]})
    source = (f"latest backtest window (out of sample): MASE increase when the input is "
              f"shuffled across series and steps, global members ({share:.0%} of the "
              "forecast); statistical members read only the target's history")
    table = pd.DataFrame([
        {"feature": names.get(name, name), "importance": float(np.mean(values)) / share,
         "std": float(np.std(values)) / share, "source": source}
        for name, values in totals.items()])
    return table.sort_values("importance", ascending=False, ignore_index=True)


def _usage(time_column: str, series_id: list[str], horizon: int,
           known_features: list[str]) -> str:
    row = "{" + ", ".join(f'"{c}": ...' for c in [*series_id, time_column, *known_features]) + "}"
    known = (f", with the planned values of {', '.join(known_features)}"
             if known_features else "")
    return "\n".join([
        "import joblib", "import pandas as pd", "",
        'model = joblib.load("model.pkl")',
        f"# rows of future periods: the series ids and one of the next {horizon} times of "
        f"each series{known}",
        f"rows = pd.DataFrame([{row}])",
        "forecasts = model.predict(rows)  # one value per row, in row order",
        "bands = model.predict_interval(rows, level=0.95)  # forecast, lower, upper"])


def _sections(facts: dict[str, Any], settings: dict[str, Any], leaderboard: pd.DataFrame,
              importance: pd.DataFrame, charts: list[Chart]) -> list[tuple[str, str]]:
    metric, summary = facts["metric"], facts["summary"]
    guardrails = pd.DataFrame(facts["guardrails"], columns=["name", "status", "detail"])
    windows = pd.Series(facts["windows_per_series"], name="series").rename_axis(
        "backtest windows").reset_index()
    chosen = pd.DataFrame(sorted(facts["validation_metrics"].items()),
                          columns=["metric", "backtest value"])
    selection = pd.DataFrame([(k, json.dumps(v)) for k, v in facts["selection"].items()],
                             columns=["selection fact", "value"])
    unread = {*TABULAR_SETTINGS, *REGISTRY_SETTINGS}  # refused for forecasting: at defaults
    shown = pd.DataFrame([(k, json.dumps(v, default=str)) for k, v in sorted(settings.items())
                          if v not in (None, [], "") and k not in unread],
                         columns=["setting", "value"])
    source = importance["source"].iloc[0] if len(importance) else "not computed"
    return [
        ("Series and guardrails",
         f"<p>{summary['series']} series ({summary['short_series']} too short to backtest), "
         f"frequency {html.escape(str(facts['frequency']))}, season {facts['season']} periods, "
         f"horizon {summary['horizon']}; {facts['filled_periods']} missing periods filled. "
         f"Validation: {html.escape(summary['validation'])}.</p>"
         + table(guardrails) + table(windows)),
        ("Settings", table(shown)),
        ("Leaderboard",
         f"<p>{_backtested(summary)}, by {metric} over every series and window; the whole "
         "table is leaderboard.csv.</p>"
         + table(leaderboard_view(leaderboard, metric),
                 numeric=[metric, "fit_seconds", "predict_seconds_per_1000", "model_bytes"])),
        ("The chosen forecaster",
         "".join(f"<p><b>Warning:</b> {html.escape(w)}.</p>" for w in facts.get("warnings", []))
         + f"<p>{html.escape(str(facts['best']['family']))} (candidate {facts['best']['id']}), "
         f"selection {html.escape(summary['selection'])}. Its backtest metrics:</p>"
         + table(chosen, numeric=["backtest value"]) + table(selection)
         + "<p>Prediction intervals: the statistical model's own (ARIMA, Theta, exponential "
         "smoothing, naive) for series that one such model forecasts alone; otherwise, per "
         "horizon step, quantiles of the chosen forecaster's backtest errors scaled to each "
         "series. The <code>interval</code> column of <code>predict_interval</code> says which."
         "</p>" + figures(charts)),
        ("Feature importance",
         f"<p>{html.escape(source)}. Full table: feature_importance.csv.</p>"
         + table(importance.drop(columns=["source"]), numeric=["importance", "std"])),
        ("How to use the model", "<pre><code>" + html.escape(_usage(
            settings["time_column"], settings["series_id"], summary["horizon"],
            settings.get("known_features") or []))
         + "</code></pre>"),
    ]


def _backtested(summary: dict[str, Any]) -> str:
    """``"8 of 15 candidates backtested (the others did not fit the time left)"``, or ``"15
    candidates backtested"``."""
    planned = summary["candidates"]
    done = summary.get("backtested", planned)
    if done == planned:
        return f"{planned} candidates backtested"
    return f"{done} of {planned} candidates backtested (the others did not fit the time left)"


def forecast_report(facts: dict[str, Any], settings: dict[str, Any], leaderboard: pd.DataFrame,
                    importance: pd.DataFrame, charts: list[Chart],
                    target: Optional[str] = None) -> tuple[dict[str, bytes], str]:
    """``report.html`` (charts inlined) and ``feature_importance.csv`` as files, and the UI's
    markdown."""
    summary, metric = facts["summary"], facts["metric"]
    target = target or summary["target"]
    kpis = [("task", "forecasting"), ("target", target),
            (f"backtest {metric}", number(float(facts["value"]))),
            ("series", summary["series"]), ("horizon", summary["horizon"]),
            ("candidates", summary["candidates"])]
    html_page = page(
        f"AutoML report: forecasting of {target}", f"Chosen: {facts['best']['family']}", kpis,
        _sections(facts, settings, leaderboard, importance, charts),
        "Backtest numbers come from rolling-origin windows that each forecaster did not see; "
        "the published forecasts come from every series' full history.")
    markdown = "\n".join([
        f"# AutoML report: forecasting of `{target}`", "",
        f"**Chosen:** {facts['best']['family']} ({summary['selection']})  ",
        *[f"**Warning:** {w}.  " for w in facts.get("warnings", [])],
        f"**Validation:** {summary['validation']}  ",
        f"**Series:** {summary['series']}, horizon {summary['horizon']}", "",
        f"## Leaderboard (top 10 by {metric}, and the published model)", "",
        markdown_table(leaderboard_view(leaderboard, metric, rows=10)), "",
        "## Feature importance", "",
        markdown_table(importance[["feature", "importance", "std"]]), "",
        CHARTS_NOTE])
    files = {"report.html": html_page.encode(),
             "feature_importance.csv": importance.to_csv(index=False).encode()}
    return files, markdown
