"""``report.html``: one self-contained page about a run (charts inlined, no network), and the
same content as markdown for the Prefect UI."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tasks.charts import Chart

__all__ = ["ReportContent", "report_html", "report_markdown"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1040px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #e3e6eb;
padding-bottom:.2em}
.lead{color:#4a5365}.kpi{display:flex;gap:16px;flex-wrap:wrap;margin:16px 0}
.kpi div{background:#eef3fb;border-radius:8px;padding:10px 16px}.kpi b{display:block;font-size:1.3em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.Alerted{color:#b3261e;font-weight:600}.Done{color:#8a5a00}.Passed{color:#1e7b34}
figure{display:inline-block;margin:8px 16px 16px 0;max-width:100%}
figure img{max-width:100%;border:1px solid #e3e6eb}figcaption{font-size:.85em;color:#4a5365}
pre{background:#f0f2f5;padding:12px;overflow-x:auto}code{font-size:.95em}
.note{color:#4a5365;font-size:.9em}
"""

LEADERBOARD_ROWS = 20


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


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.5g}"
    return str(value)


def _table(frame: pd.DataFrame, numeric: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row):
            css = ' class="num"' if column in numeric else ""
            if column == "status":
                css = f' class="{html.escape(str(value))}"'
            cells.append(f"<td{css}>{html.escape(_number(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figures(charts: Sequence[Chart]) -> str:
    parts = []
    for chart in charts:
        data = base64.b64encode(chart.png).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(chart.caption)}" '
                     f'src="data:image/png;base64,{data}" data-chart="{chart.name}">'
                     f"<figcaption>{html.escape(chart.caption)} ({chart.name})</figcaption>"
                     "</figure>")
    return "".join(parts)


def _leaderboard_view(leaderboard: pd.DataFrame, metric: str) -> pd.DataFrame:
    keep = ["rank", "id", "family", metric, "status", "fit_seconds", "predict_seconds_per_1000",
            "model_bytes", "config"]
    view = leaderboard[[c for c in keep if c in leaderboard.columns]].head(LEADERBOARD_ROWS)
    return view.assign(config=view["config"].str.slice(0, 90))


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


def _sections(content: ReportContent) -> list[tuple[str, str]]:
    facts, metric = content.facts, content.metrics["metric"]
    guardrails = pd.DataFrame(list(content.guardrails), columns=["name", "status", "detail"])
    columns = pd.Series(content.columns, name="kind").rename_axis("column").reset_index()
    winner = pd.DataFrame(sorted(content.metrics["validation_metrics"].items()),
                          columns=["metric", "validation value"])
    settings = pd.DataFrame([(k, json.dumps(v, default=str)) for k, v in
                             sorted(content.settings.items()) if v not in (None, [], "")],
                            columns=["setting", "value"])
    source = content.importance["source"].iloc[0] if len(content.importance) else "not computed"
    importance = content.importance.drop(columns=["source", "metric"], errors="ignore")
    by_raw = (content.featurization.groupby(["raw_column", "transformer"]).size()
              .rename("engineered features").reset_index())
    return [
        ("Data and guardrails",
         f"<p>{facts['rows']} training rows, {facts['raw_columns']} columns used as features "
         f"({facts['features']} engineered features). Validation: {html.escape(facts['validation'])}."
         "</p>" + _table(guardrails) + "<h3>Columns</h3>" + _table(columns)),
        ("Settings", _table(settings)),
        ("Leaderboard",
         f"<p>{facts['candidates']} candidates trained; stopped because "
         f"{html.escape(str(facts['stopped']))}. Top {LEADERBOARD_ROWS} by validation {metric}; the "
         "whole table is leaderboard.csv.</p>"
         + _table(_leaderboard_view(content.leaderboard, metric),
                  numeric=[metric, "fit_seconds", "predict_seconds_per_1000", "model_bytes"])
         + _figures(content.run_charts)),
        ("The chosen model",
         f"<p>{html.escape(facts['best'])}. Its validation metrics (out-of-fold predictions):</p>"
         + _table(winner, numeric=["validation value"]) + _figures(content.winner_charts)),
        ("Feature importance",
         f"<p>Permutation importance on the raw columns: how much validation {metric} worsens when "
         f"one column's values are shuffled (mean and spread over repeats). Measured on "
         f"{html.escape(source)}. Full table: feature_importance.csv.</p>"
         + _table(importance.head(25), numeric=["importance", "std", "min", "max"])),
        ("Featurization",
         "<p>Every engineered feature comes from one raw column through one transformer "
         "(featurization.csv lists each feature).</p>" + _table(by_raw)),
        ("How to use the model", f"<pre><code>{html.escape(_usage(content))}</code></pre>"),
    ]


def report_html(content: ReportContent) -> str:
    """The whole report as one HTML page with every chart inlined."""
    facts, metric = content.facts, content.metrics["metric"]
    value = content.metrics["value"]
    kpis = [("task", facts["task"]), ("target", facts["target"]),
            (f"validation {metric}", _number(float(value))), ("candidates", facts["candidates"]),
            ("rows", facts["rows"])]
    kpi = "".join(f"<div>{html.escape(k)}<b>{html.escape(str(v))}</b></div>" for k, v in kpis)
    body = "".join(f"<section><h2>{html.escape(title)}</h2>{inner}</section>"
                   for title, inner in _sections(content))
    title = f"AutoML report: {facts['task']} of {facts['target']}"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>"
            f"<h1>{html.escape(title)}</h1><p class=\"lead\">Chosen: {html.escape(facts['best'])}"
            f"</p><div class=\"kpi\">{kpi}</div>{body}"
            "<p class=\"note\">Validation numbers come from rows each model did not train on "
            "(cross-validation folds or a holdout); the published model is then trained on all "
            "rows.</p></main></body></html>\n")


def _markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(_number(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def report_markdown(content: ReportContent) -> str:
    """The report's tables as markdown (the Prefect UI shows the charts as image artifacts)."""
    facts, metric = content.facts, content.metrics["metric"]
    winner = pd.DataFrame(sorted(content.metrics["validation_metrics"].items()),
                          columns=["metric", "validation value"])
    importance = content.importance[["feature", "importance", "std"]].head(15)
    parts = [f"# AutoML report: {facts['task']} of `{facts['target']}`", "",
             f"**Chosen:** {facts['best']}  ", f"**Validation:** {facts['validation']}  ",
             f"**Candidates:** {facts['candidates']} ({facts['stopped']})", "",
             "## The chosen model", "", _markdown_table(winner), "",
             f"## Leaderboard (top 10 by {metric})", "",
             _markdown_table(_leaderboard_view(content.leaderboard, metric).head(10)), "",
             "## Feature importance (raw columns)", "", _markdown_table(importance), "",
             "## Guardrails", "",
             _markdown_table(pd.DataFrame(list(content.guardrails),
                                          columns=["name", "status", "detail"])), "",
             "Charts: the image artifacts of this run; everything in report.html of the results "
             "folder."]
    return "\n".join(parts)
