"""The values that pass between steps, and the flow's typed result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel

__all__ = ["CandidateResult", "CandidateSpec", "CandidateSummary", "TrainResult", "json_safe"]

Status = Literal["ok", "failed", "timeout", "too_slow"]


@dataclass(frozen=True)
class CandidateSpec:
    """One configuration of one family to evaluate; ``id`` numbers it within the run."""

    id: int
    family: str
    config: dict[str, Any]
    fraction: float = 1.0

    @property
    def run_name(self) -> str:
        """The name of its task run in the Prefect UI, e.g. ``train-xgboost-07``."""
        suffix = "" if self.fraction >= 1.0 else f"-{round(100 * self.fraction)}pct"
        return f"train-{self.family}-{self.id:02d}{suffix}"


@dataclass
class CandidateResult:
    """A candidate's validation outcome.

    ``oof`` holds out-of-fold predictions for every training row (probabilities for
    classification, values for regression), NaN where a row was never in a validation fold.
    ``finished_seconds`` is when it finished, in seconds since the run started.
    ``refit_params`` are what the family learned in the folds for its refit on all rows (see
    :meth:`models.ModelFamily.refit_params`). ``temperature`` scales its class probabilities
    (1.0: unscaled); ``metrics`` and ``oof`` are those of the scaled probabilities.
    """

    spec: CandidateSpec
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    oof: Optional[np.ndarray] = None
    error: str = ""
    cached: bool = False
    predict_seconds_per_1000: float = math.nan
    model_bytes: int = 0
    finished_seconds: float = math.nan
    refit_params: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0


class CandidateSummary(BaseModel):
    """A leaderboard row."""

    id: int
    family: str
    config: dict[str, Any]
    status: Status
    metrics: dict[str, float]
    fit_seconds: float
    fraction: float = 1.0
    predict_seconds_per_1000: Optional[float] = None
    model_bytes: int = 0
    cached: bool = False
    error: str = ""
    published: bool = False

    @classmethod
    def of(cls, result: CandidateResult, published: bool = False) -> "CandidateSummary":
        """Summarize a :class:`CandidateResult` (dropping its predictions); ``published``: it
        is the model published (``leaderboard.csv``'s column of that name)."""
        latency = result.predict_seconds_per_1000
        return cls(id=result.spec.id, family=result.spec.family, config=result.spec.config,
                   status=result.status, metrics=result.metrics,
                   fit_seconds=round(result.fit_seconds, 3), fraction=result.spec.fraction,
                   predict_seconds_per_1000=None if math.isnan(latency) else round(latency, 5),
                   model_bytes=result.model_bytes, cached=result.cached, error=result.error,
                   published=published)


class TrainResult(BaseModel):
    """What the ``automl`` flow returns."""

    model_path: str
    output: str
    task: str
    metric: str
    score: float
    best: CandidateSummary
    leaderboard: list[CandidateSummary]
    guardrails: list[dict[str, str]]
    validation: str
    wall_seconds: float
    ensemble: Optional[dict[int, float]] = None
    promotion: Optional[dict[str, Any]] = None
    warnings: list[str] = []


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in dicts, lists and tuples) as None, which
    JSON can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
