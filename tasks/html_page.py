"""The HTML page both reports are built on: style, tables, inlined charts, the KPI strip."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tasks.charts import Chart

__all__ = ["CHARTS_NOTE", "LEADERBOARD_ROWS", "STYLE", "figures", "leaderboard_view",
           "markdown_table", "number", "page", "table"]

LEADERBOARD_ROWS = 20
CHARTS_NOTE = ("Charts: the image artifacts of this run; everything in report.html of the "
               "results folder.")

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1040px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #e3e6eb;
padding-bottom:.2em}
.lead{color:#4a5365}.kpi{display:flex;gap:16px;flex-wrap:wrap;margin:16px 0}
.kpi div{background:#eef3fb;border-radius:8px;padding:10px 16px}
.kpi b{display:block;font-size:1.3em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.Alerted{color:#b3261e;font-weight:600}.Done{color:#8a5a00}.Passed{color:#1e7b34}
figure{display:inline-block;margin:8px 16px 16px 0;max-width:100%}
figure img{max-width:100%;border:1px solid #e3e6eb}figcaption{font-size:.85em;color:#4a5365}
pre{background:#f0f2f5;padding:12px;overflow-x:auto}code{font-size:.95em}
.note{color:#4a5365;font-size:.9em}
"""


def number(value: Any) -> str:
    """A cell's text: floats to 5 significant digits, NaN and missing values as empty."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.5g}"
    return str(value)


def table(frame: pd.DataFrame, numeric: Sequence[str] = ()) -> str:
    """``frame`` as an HTML table; ``numeric`` columns right-aligned, ``status`` cells styled."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row):
            css = ' class="num"' if column in numeric else ""
            if column == "status":
                css = f' class="{html.escape(str(value))}"'
            cells.append(f"<td{css}>{html.escape(number(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figures(charts: Sequence[Chart]) -> str:
    """The charts as inlined PNG figures with their captions."""
    parts = []
    for chart in charts:
        data = base64.b64encode(chart.png).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(chart.caption)}" '
                     f'src="data:image/png;base64,{data}" data-chart="{chart.name}">'
                     f"<figcaption>{html.escape(chart.caption)} ({chart.name})</figcaption>"
                     "</figure>")
    return "".join(parts)


def leaderboard_view(leaderboard: pd.DataFrame, metric: str,
                     rows: int = LEADERBOARD_ROWS) -> pd.DataFrame:
    """The leaderboard's first ``rows`` rows, and the published one wherever it ranks, with the
    columns a reader compares (configs shortened)."""
    keep = ["rank", "id", "family", metric, "status", "published", "fit_seconds",
            "predict_seconds_per_1000", "model_bytes", "config"]
    shown = np.arange(len(leaderboard)) < rows
    if "published" in leaderboard.columns:
        shown |= leaderboard["published"].astype(bool).to_numpy()
    view = leaderboard.loc[shown, [c for c in keep if c in leaderboard.columns]]
    return view.assign(config=view["config"].str.slice(0, 90))


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a markdown table (for Prefect's markdown artifacts)."""
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(number(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def page(title: str, lead: str, kpis: Sequence[tuple[str, Any]],
         sections: Sequence[tuple[str, str]], note: str) -> str:
    """One self-contained HTML page.

    Parameters
    ----------
    title, lead, note : str
        Plain text (escaped here): the heading, the line under it and the closing note.
    kpis : sequence of (label, value)
        The figures in the strip under the heading.
    sections : sequence of (title, inner HTML)
        Each becomes a ``<section>`` with an ``<h2>``; the inner HTML is used as given.
    """
    kpi = "".join(f"<div>{html.escape(k)}<b>{html.escape(str(v))}</b></div>" for k, v in kpis)
    body = "".join(f"<section><h2>{html.escape(name)}</h2>{inner}</section>"
                   for name, inner in sections)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>"
            f"<h1>{html.escape(title)}</h1><p class=\"lead\">{html.escape(lead)}</p>"
            f"<div class=\"kpi\">{kpi}</div>{body}<p class=\"note\">{html.escape(note)}</p>"
            "</main></body></html>\n")
