"""``report.html``: one self-contained page about a run (charts inlined, no network), and the
same content as markdown for the Prefect UI."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tasks.charts import Chart
from tasks.html_page import (
    CHARTS_NOTE,
    LEADERBOARD_ROWS,
    figures,
    leaderboard_view,
    markdown_table,
    number,
    page,
    table,
)
from tasks.evaluate import METRICS
from tasks.settings import FORECASTING_SETTINGS

__all__ = ["ReportContent", "report_html", "report_markdown"]


@dataclass
class ReportContent:
    """Everything the report shows."""

    facts: dict[str, Any]
    settings: dict[str, Any]
    metrics: dict[str, Any]
    guardrails: Sequence[dict[str, str]]
    columns: dict[str, str]
    leaderboard: pd.DataFrame
    importance: pd.DataFrame
    featurization: pd.DataFrame
    winner_charts: Sequence[Chart]
    run_charts: Sequence[Chart]
    shared_importance: Sequence[dict[str, Any]] = ()


def _usage(content: ReportContent) -> str:
    task = content.facts["task"]
    columns = list(content.columns)[:3]
    example = ", ".join(f'"{c}": ...' for c in columns)
    lines = ["import joblib", "import pandas as pd", "",
             'model = joblib.load("model.pkl")  # featurization + model, one scikit-learn object',
             'rows = pd.read_csv("new_rows.csv")  # the training columns; the target is not needed',
             "predictions = model.predict(rows)"]
    if task == "classification":
        lines.append("probabilities = model.predict_proba(rows)  # columns in model.classes_ order")
    lines += ["", f"# one row by hand: pd.DataFrame([{{{example}}}])"]
    return "\n".join(lines)


def better(metric: str) -> str:
    """``"higher is better"`` or ``"lower is better"`` for a metric (forecasting's are errors)."""
    return ("higher is better" if metric in METRICS and METRICS[metric].greater_is_better
            else "lower is better")


def _winner_table(content: ReportContent) -> pd.DataFrame:
    return pd.DataFrame([(name, value, better(name)) for name, value in
                         sorted(content.metrics["validation_metrics"].items())],
                        columns=["metric", "validation value", "direction"])


def _shared_text(pairs: Sequence[dict[str, Any]]) -> str:
    if not pairs:
        return ""
    named = "; ".join(f"{html.escape(p['columns'][0])} and {html.escape(p['columns'][1])} "
                      f"({p['correlation']:+.2f})" for p in pairs)
    return (f"<p>Nearly the same columns (rank correlation on these rows): {named}. Shuffling "
            "one leaves the other to the model, so each can look less important than the pair "
            "is; together they may matter more.</p>")


def _sections(content: ReportContent) -> list[tuple[str, str]]:
    facts, metric = content.facts, content.metrics["metric"]
    guardrails = pd.DataFrame(list(content.guardrails), columns=["name", "status", "detail"])
    columns = pd.Series(content.columns, name="kind").rename_axis("column").reset_index()
    winner = _winner_table(content)
    settings = pd.DataFrame([(k, json.dumps(v, default=str)) for k, v in
                             sorted(content.settings.items())
                             if v not in (None, [], "") and k not in FORECASTING_SETTINGS],
                            columns=["setting", "value"])
    source = content.importance["source"].iloc[0] if len(content.importance) else "not computed"
    importance = content.importance.drop(columns=["source", "metric"], errors="ignore")
    by_raw = (content.featurization.groupby(["raw_column", "transformer"]).size()
              .rename("engineered features").reset_index())
    return [
        ("Data and guardrails",
         f"<p>{facts['rows']} training rows, {facts['raw_columns']} columns used as features "
         f"({facts['features']} engineered features). "
         f"Validation: {html.escape(facts['validation'])}."
         "</p>" + table(guardrails) + "<h3>Columns</h3>" + table(columns)),
        ("Settings", table(settings)),
        ("Leaderboard",
         f"<p>{facts['candidates']} candidates trained; stopped because "
         f"{html.escape(str(facts['stopped']))}. Top {LEADERBOARD_ROWS} by validation "
         f"{metric} ({better(metric)}); the "
         "whole table is leaderboard.csv.</p>"
         + table(leaderboard_view(content.leaderboard, metric),
                 numeric=[metric, "fit_seconds", "predict_seconds_per_1000", "model_bytes"])
         + figures(content.run_charts)),
        ("The chosen model",
         f"<p>{html.escape(facts['best'])}. Its validation metrics (out-of-fold predictions):</p>"
         + table(winner, numeric=["validation value"])
         + "".join(f"<p>{label}: {html.escape(str(facts[key]))}.</p>" for key, label in (
             ("blend", "The blend scores"), ("calibration", "Calibration"),
             ("positive class", "Positive class"))
             if facts.get(key))
         + (f"<p>Against HistGradientBoosting defaults: {html.escape(facts['baseline check'])}."
            "</p>" if facts.get("baseline check") else "")
         + figures(content.winner_charts)),
        ("Feature importance",
         f"<p>Permutation importance on the raw columns the model uses: how much "
         f"{metric} worsens when one column's values are shuffled (mean and spread over "
         f"repeats). Measured on "
         f"{html.escape(source)}. Full table: feature_importance.csv.</p>"
         + _shared_text(content.shared_importance)
         + table(importance.head(25), numeric=["importance", "std", "min", "max"])),
        ("Featurization",
         "<p>Every engineered feature comes from one raw column through one transformer "
         "(featurization.csv lists each feature).</p>" + table(by_raw)),
        ("How to use the model", f"<pre><code>{html.escape(_usage(content))}</code></pre>"),
    ]


def report_html(content: ReportContent) -> str:
    """The whole report as one HTML page with every chart inlined."""
    facts, metric = content.facts, content.metrics["metric"]
    value = content.metrics["value"]
    kpis = [("task", facts["task"]), ("target", facts["target"]),
            (f"validation {metric} ({better(metric)})", number(float(value))),
            ("candidates", facts["candidates"]), ("rows", facts["rows"])]
    return page(f"AutoML report: {facts['task']} of {facts['target']}",
                f"Chosen: {facts['best']}", kpis, _sections(content),
                "Validation numbers come from rows each model did not train on "
                "(cross-validation folds or a holdout); the published model is then trained on "
                "all rows.")


def report_markdown(content: ReportContent) -> str:
    """The report's tables as markdown (the Prefect UI shows the charts as image artifacts)."""
    facts, metric = content.facts, content.metrics["metric"]
    winner = _winner_table(content)
    importance = content.importance[["feature", "importance", "std"]].head(15)
    parts = [f"# AutoML report: {facts['task']} of `{facts['target']}`", "",
             f"**Chosen:** {facts['best']}  ", f"**Validation:** {facts['validation']}  ",
             f"**Candidates:** {facts['candidates']} ({facts['stopped']})", "",
             "## The chosen model", "", markdown_table(winner), "",
             f"## Leaderboard (top 10 by {metric}, {better(metric)}; and the published model)",
             "",
             markdown_table(leaderboard_view(content.leaderboard, metric, rows=10)), "",
             "## Feature importance (raw columns)", "", markdown_table(importance), "",
             "## Guardrails", "",
             markdown_table(pd.DataFrame(list(content.guardrails),
                                         columns=["name", "status", "detail"])), "",
             CHARTS_NOTE]
    return "\n".join(parts)
