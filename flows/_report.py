"""After the model is chosen: its raw-column importance, the charts and the report."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_image_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from models._calibration import clip_probabilities
from tasks.charts import (
    Chart,
    classification_charts,
    family_chart,
    importance_chart,
    regression_charts,
    run_chart,
)
from tasks.evaluate import miscalibrated, rarely_predicted
from tasks.explain import Explanation
from tasks.report import ReportContent, report_html, report_markdown
from tasks.types import CandidateResult, CandidateSpec
from tasks.validate import PreparedData

__all__ = ["ReportFiles", "build_report", "chosen_members",
           "explanation_seconds", "prediction_warnings", "publish_report_artifacts",
           "report_task"]


@dataclass
class ReportFiles:
    """The files the report step adds to the results folder, and the UI's markdown."""

    files: dict[str, bytes]
    markdown: str
    charts: list[Chart]

    def chart_numbers(self) -> dict[str, dict[str, float]]:
        """What each chart shows, for metrics.json."""
        return {c.name: c.numbers for c in self.charts}


def chosen_members(chosen: CandidateResult, results: list[CandidateResult]
                   ) -> tuple[list[CandidateSpec], list[float], list[float]]:
    """The specs, weights and temperatures behind the chosen entry (one spec unless it is an
    ensemble, whose own temperature is ``chosen.temperature``)."""
    if chosen.spec.family != "ensemble":
        return [chosen.spec], [1.0], [chosen.temperature]
    by_id = {r.spec.id: r for r in results}
    members = [by_id[int(i)] for i in chosen.spec.config["members"]]
    return ([m.spec for m in members],
            [float(w) for w in chosen.spec.config["members"].values()],
            [m.temperature for m in members])


def winner_charts(data: PreparedData, chosen: CandidateResult) -> list[Chart]:
    """Charts of the chosen model's out-of-fold predictions (rows that were validated)."""
    if chosen.oof is None:
        return []
    oof = np.asarray(chosen.oof, dtype=float).reshape(len(data.y), -1)
    rows = ~np.isnan(oof).any(axis=1)
    if data.task == "regression":
        return regression_charts(data.y[rows], oof[rows, 0])
    return classification_charts(data.y[rows], clip_probabilities(oof[rows]),
                                 list(data.classes))


def prediction_warnings(data: PreparedData, chosen: CandidateResult) -> list[str]:
    """What a user of the chosen model's ``predict`` should know that its score does not say:
    a class it seldom predicts where it should (a rare class under a ranking metric, say), and
    probabilities far from how often each class occurs (class weights, say)."""
    if data.task != "classification" or chosen.oof is None:
        return []
    oof = np.asarray(chosen.oof, dtype=float).reshape(len(data.y), -1)
    missed = rarely_predicted(data.y, oof, list(data.classes))
    off = miscalibrated(data.y, oof, list(data.classes))
    weighted = " (class weights, which the search chose, raise a rare class's probabilities)" if (
        "balanced" in str(chosen.spec.config)) else ""
    return ([] if missed is None else [f"the model {missed}"]) + (
        [] if off is None else [f"the model {off}{weighted}"])


def build_report(data: PreparedData, chosen: CandidateResult, leaderboard: pd.DataFrame,
                 facts: dict[str, Any], settings: dict[str, Any], metrics: dict[str, Any],
                 explanation: Explanation, featurization: pd.DataFrame) -> ReportFiles:
    """Charts, feature_importance.csv, report.html and the markdown for the Prefect UI."""
    metric = metrics["metric"]
    winner = winner_charts(data, chosen)
    runs = [run_chart(leaderboard, metric), family_chart(leaderboard, metric)]
    importance = [importance_chart(explanation.table)] if len(explanation.table) else []
    content = ReportContent(
        facts=facts, settings=settings, metrics=metrics,
        guardrails=metrics["guardrails"], columns=data.roles, leaderboard=leaderboard,
        importance=explanation.table, featurization=featurization,
        winner_charts=[*winner, *importance], run_charts=runs,
        shared_importance=explanation.shared)
    charts = [*winner, *runs, *importance]
    files = {chart.name: chart.png for chart in charts}
    files["feature_importance.csv"] = explanation.table.to_csv(index=False).encode()
    files["report.html"] = report_html(content).encode()
    return ReportFiles(files, report_markdown(content), charts)


@task(name="report", cache_policy=NO_CACHE)
def report_task(data: PreparedData, chosen: CandidateResult, leaderboard: pd.DataFrame,
                facts: dict[str, Any], settings: dict[str, Any], metrics: dict[str, Any],
                explanation: Explanation, featurization: pd.DataFrame) -> ReportFiles:
    """Draw the charts and write the report (published with the model)."""
    return build_report(data, chosen, leaderboard, facts, settings, metrics, explanation,
                        featurization)


def publish_report_artifacts(key: str, report: ReportFiles) -> None:
    """The report as markdown and every chart as an image artifact, under stable keys."""
    create_markdown_artifact(markdown=report.markdown, key=f"{key}-report",
                             description="Report: chosen model, leaderboard, importance")
    for chart in report.charts:
        name = chart.name.removesuffix(".png").replace("_", "-")
        url = "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")
        create_image_artifact(image_url=url, key=f"{key}-{name}"[:100],
                              description=chart.caption)


def explanation_seconds(chosen: CandidateResult, n_folds: int) -> float:
    """Estimated seconds to train the chosen model once more on one fold's training rows."""
    return chosen.fit_seconds / max(1, n_folds) if math.isfinite(chosen.fit_seconds) else 0.0
