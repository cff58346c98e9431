"""Prefect UI artifacts: leaderboard and guardrail tables, a summary, and live progress."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, Optional
from uuid import UUID

import pandas as pd
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.guardrails import Guardrail
from tasks.types import json_safe

__all__ = ["experiment_key", "mark_progress_failed", "Progress", "publish_artifacts",
           "scoring_key"]


def _key_text(text: str) -> str:
    """``text`` as Prefect takes it in an artifact key: lowercase ASCII letters, digits and
    dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def _place(output: str, keep: int, stem: bool = False) -> str:
    """The last ``keep`` characters of ``output``'s parent folder's name and its own (without
    its suffix when ``stem``), as key text: what tells two experiments or scorings apart."""
    path = PurePosixPath(output.rstrip("/"))
    return _key_text(f"{path.parent.name}-{path.stem if stem else path.name}")[-keep:].strip("-")


def experiment_key(target: str, output: str) -> str:
    """A stable artifact-key prefix per experiment (lowercase letters, digits and dashes): the
    output folder's parent's name and its own, and the target (``results/a/model`` and
    ``results/b/model`` keep their histories apart)."""
    parts = ("automl", _place(output, 40), _key_text(target))
    return "-".join(p for p in parts if p)[:60].strip("-")


def scoring_key(output: str) -> str:
    """The artifact-key prefix of a scoring run that writes ``output`` (a file path or URI):
    its folder's name and its own (``results/run1/predictions.csv`` and
    ``results/scheduled/predictions.csv`` keep their drift apart)."""
    return f"automl-score-{_place(output, 50, stem=True) or 'predictions'}"


class Progress:
    """A progress artifact that moves as candidates finish (no-op outside a Prefect run)."""

    def __init__(self, key: str, description: str) -> None:
        self.artifact_id: Optional[UUID] = None
        try:
            self.artifact_id = create_progress_artifact(progress=0.0, key=f"{key}-progress",
                                                        description=description)
        except Exception:  # noqa: BLE001 - the UI view is optional; training goes on
            self.artifact_id = None

    def update(self, fraction: float) -> None:
        """Set progress to ``fraction`` of the run (0..1)."""
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, progress=round(100 * min(1.0, fraction), 1))


def mark_progress_failed(flow: Any, flow_run: Any, state: Any) -> None:
    """A flow's ``on_failure`` hook: the run's progress artifact says it failed, and why.
    Before, it stayed at its last figure, as a run still going would.

    Parameters
    ----------
    flow, flow_run, state
        What Prefect gives a state hook: the flow, its run and the run's final state.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactUpdate
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )

    why = " ".join(str(state.message or "").split())[:300]
    with get_client(sync_client=True) as client:
        for artifact in client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]),
                type=ArtifactFilterType(any_=["progress"]))):
            client.update_artifact(artifact.id, ArtifactUpdate(
                description=f"Failed: {why}" if why else "Failed"))


def summary_markdown(facts: dict[str, Any], guardrails: Sequence[Guardrail],
                     leaderboard: pd.DataFrame, metric: str) -> str:
    """The run summary shown in the Prefect UI."""
    lines = [f"# AutoML run: {facts['task']} on `{facts['target']}`", ""]
    lines += [f"- **{name}**: {value}" for name, value in facts.items()]
    lines += ["", "## Guardrails", "", "| check | status | detail |", "|---|---|---|"]
    lines += [f"| {g.name} | {g.status} | {g.detail.replace('|', chr(92) + '|')} |"
              for g in guardrails]
    top = leaderboard.head(10)
    lines += ["", f"## Top candidates by {metric}", "", "| rank | id | family | "
              f"{metric} | fit s |", "|---|---|---|---|---|"]
    lines += [f"| {r['rank']} | {r['id']} | {r['family']} | {r[metric]:.5g} | {r['fit_seconds']} |"
              for _, r in top.iterrows()]
    return "\n".join(lines)


def publish_artifacts(key: str, leaderboard: pd.DataFrame, guardrails: Sequence[Guardrail],
                      facts: dict[str, Any], metric: str) -> None:
    """Create the leaderboard, guardrails and summary artifacts under stable keys."""
    table = json_safe(leaderboard.to_dict("records"))
    create_table_artifact(table=table, key=f"{key}-leaderboard",
                          description=f"Candidates ranked by {metric}")
    create_table_artifact(table=[g.to_dict() for g in guardrails], key=f"{key}-guardrails",
                          description="Data guardrails: Passed, Done (fixed) or Alerted")
    create_markdown_artifact(markdown=summary_markdown(facts, guardrails, leaderboard, metric),
                             key=f"{key}-summary", description="Run summary")
