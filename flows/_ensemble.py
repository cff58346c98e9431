"""After the search: a greedy ensemble of the best candidates, kept only when it beats the best one."""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from tasks.ensemble import EnsembleChoice, greedy_ensemble
from tasks.evaluate import loss_of
from tasks.types import CandidateResult, CandidateSpec
from tasks.validate import PreparedData

__all__ = ["EnsemblePlan", "plan_affordable_ensemble", "plan_ensemble"]

MAX_MEMBERS_CONSIDERED = 15


class EnsemblePlan:
    """The members chosen (best first), their weights, and the blend as a leaderboard entry."""

    def __init__(self, members: list[CandidateResult], choice: EnsembleChoice, next_id: int):
        self.members = members
        self.weights = [choice.weights[i] for i in sorted(choice.counts)]
        config = {"members": {str(m.spec.id): round(w, 4)
                              for m, w in zip(members, self.weights)}}
        self.result = CandidateResult(
            CandidateSpec(next_id, "ensemble", config), "ok", choice.metrics,
            fit_seconds=sum(m.fit_seconds for m in members),
            predict_seconds=sum(m.predict_seconds for m in members),
            predict_seconds_per_1000=sum(m.predict_seconds_per_1000 for m in members),
            model_bytes=sum(m.model_bytes for m in members),
            oof=_blend([m.oof for m in members], self.weights))


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
                  excluded: frozenset[int] = frozenset()) -> Optional[EnsemblePlan]:
    """Greedy selection over the best candidates' out-of-fold predictions.

    Returns None when fewer than two candidates are usable or the blend does not beat ``best``
    on the validation rows. Candidates whose ids are in ``excluded`` are not considered.
    """
    usable = sorted(
        (r for r in results if r.status == "ok" and r.spec.fraction >= 1.0 and r.oof is not None
         and r.spec.id not in excluded
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
    choice = greedy_ensemble(predictions, data.y[rows], data.task, metric)
    if len(choice.counts) < 2:
        return None
    if not loss_of(metric, choice.metrics[metric]) < loss_of(metric, best.metrics[metric]):
        return None
    members = [usable[i] for i in sorted(choice.counts)]
    next_id = max(r.spec.id for r in results) + 1
    return EnsemblePlan(members, choice, next_id)


def plan_affordable_ensemble(results: list[CandidateResult], data: PreparedData, metric: str,
                             best: CandidateResult,
                             refit_seconds: Callable[[EnsemblePlan], float],
                             seconds_left: float) -> Optional[EnsemblePlan]:
    """The best greedy ensemble whose members can be refitted in ``seconds_left``.

    When the blend chosen from all candidates would take too long to refit, its costliest member
    is left out of the pool and the selection is made again (the best single candidate always
    stays in), until a blend fits or none beats ``best``.
    """
    excluded: set[int] = set()
    while True:
        plan = plan_ensemble(results, data, metric, best, frozenset(excluded))
        if plan is None or refit_seconds(plan) < seconds_left:
            return plan
        others = [m for m in plan.members if m.spec.id != best.spec.id]
        if not others:
            return None
        excluded.add(max(others, key=lambda m: (m.fit_seconds, m.spec.id)).spec.id)
