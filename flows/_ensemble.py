"""After the search: a greedy ensemble of the best candidates, kept when it beats the best one."""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from models._calibration import fit_temperature, scale_probabilities
from tasks.ensemble import EnsembleChoice, evaluation_seconds, greedy_ensemble
from tasks.evaluate import compute_metrics, loss_of
from tasks.types import CandidateResult, CandidateSpec
from tasks.validate import PreparedData

__all__ = ["EnsemblePlan", "plan_ensemble"]

MAX_MEMBERS_CONSIDERED = 15
EXPECTED_ROUNDS = 25  # greedy rounds before its patience runs out, typically


class EnsemblePlan:
    """The members chosen (best first), their weights, and the blend as a leaderboard entry
    (its ``metrics`` and ``temperature`` are those of the blend, scaled when calibrated)."""

    def __init__(self, members: list[CandidateResult], choice: EnsembleChoice, next_id: int,
                 metrics: dict[str, float], temperature: float = 1.0):
        self.members = members
        self.weights = [choice.weights[i] for i in sorted(choice.counts)]
        self.temperature = temperature
        oof = _blend([m.oof for m in members], self.weights)
        config = {"members": {str(m.spec.id): round(w, 4)
                              for m, w in zip(members, self.weights)}}
        self.result = CandidateResult(
            CandidateSpec(next_id, "ensemble", config), "ok", metrics,
            fit_seconds=sum(m.fit_seconds for m in members),
            predict_seconds=sum(m.predict_seconds for m in members),
            predict_seconds_per_1000=sum(m.predict_seconds_per_1000 for m in members),
            model_bytes=sum(m.model_bytes for m in members),
            oof=scale_probabilities(oof, temperature), temperature=temperature)


def _blend(predictions: list, weights: list[float]) -> np.ndarray:
    """The weighted out-of-fold predictions (class probabilities renormalized per member)."""
    blended = 0.0
    for prediction, weight in zip(predictions, weights):
        prediction = np.asarray(prediction, dtype=float)
        if prediction.ndim == 2:
            prediction = prediction / prediction.sum(axis=1, keepdims=True)
        blended = blended + weight * prediction
    return np.asarray(blended)


def plan_ensemble(results: list[CandidateResult], data: PreparedData, metric: str,
                  best: CandidateResult,
                  blend_seconds: Optional[Callable[[list[CandidateResult]], float]] = None,
                  seconds_left: float = math.inf, floor_seconds: float = 0.0,
                  calibrate: bool = False) -> Optional[EnsemblePlan]:
    """Greedy selection over the best candidates' out-of-fold predictions.

    With ``blend_seconds`` (what refitting and publishing a list of members costs), a candidate
    joins the blend only while the blend's cost stays within ``seconds_left`` (less the
    selection's own time), so that the blend chosen is one that can be refitted in time; but it
    may always cost ``floor_seconds`` (what publishing ``best`` alone would take: when the time
    is short, a blend no slower to refit is no worse for the budget). Returns None when fewer
    than two candidates are usable or the blend does not beat ``best`` on the validation rows.
    With ``calibrate``, a classification blend gets its own temperature (see
    :func:`fit_temperature`) before that comparison.
    """
    usable = sorted(
        (r for r in results if r.status == "ok" and r.spec.fraction >= 1.0 and r.oof is not None
         and not math.isnan(r.metrics.get(metric, math.nan))),
        key=lambda r: (loss_of(metric, r.metrics[metric]), r.spec.id),
    )[:MAX_MEMBERS_CONSIDERED]
    if len(usable) < 2:
        return None
    stacked = [np.asarray(r.oof, dtype=float) for r in usable]
    rows = np.ones(len(data.y), dtype=bool)
    for oof in stacked:
        rows &= ~np.isnan(oof.reshape(len(data.y), -1)).any(axis=1)
    predictions = [oof[rows] for oof in stacked]
    if data.task == "classification":
        predictions = [p / p.sum(axis=1, keepdims=True) for p in predictions]
    fits = None
    if blend_seconds is not None:
        # The selection itself takes time out of what the refits may use.
        selecting = evaluation_seconds(predictions[0], data.y[rows], data.task, metric) * len(
            usable) * EXPECTED_ROUNDS
        allowed = max(seconds_left - selecting, floor_seconds)

        def fits(chosen: frozenset[int]) -> bool:
            return blend_seconds([usable[i] for i in sorted(chosen)]) <= allowed

    choice = greedy_ensemble(predictions, data.y[rows], data.task, metric, fits=fits)
    if len(choice.counts) < 2:
        return None
    metrics, temperature = choice.metrics, 1.0
    if calibrate and data.task == "classification":
        blend = _blend([predictions[i] for i in sorted(choice.counts)],
                       [choice.weights[i] for i in sorted(choice.counts)])
        temperature = fit_temperature(blend, data.y[rows])
        if temperature != 1.0:
            blend = scale_probabilities(blend, temperature)
            metrics = compute_metrics(data.task, data.y[rows], blend.argmax(axis=1), blend)
    if not loss_of(metric, metrics[metric]) < loss_of(metric, best.metrics[metric]):
        return None
    members = [usable[i] for i in sorted(choice.counts)]
    next_id = max(r.spec.id for r in results) + 1
    return EnsemblePlan(members, choice, next_id, metrics, temperature)

