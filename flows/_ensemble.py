"""After the search: a greedy ensemble of the best candidates, kept when it beats the best one."""

from __future__ import annotations

import math
import time
from typing import Callable, Optional

import numpy as np

from models._calibration import fit_temperature, scale_probabilities
from tasks.ensemble import (EnsembleChoice, evaluation_seconds, greedy_ensemble, score_blend,
                            validated_predictions)
from tasks.evaluate import compute_metrics, loss_of
from tasks.types import CandidateResult, CandidateSpec
from tasks.validate import PreparedData

__all__ = ["EnsemblePlan", "plan_ensemble"]

MAX_MEMBERS_CONSIDERED = 15
EXPECTED_ROUNDS = 25  # greedy rounds before its patience runs out, typically


class EnsemblePlan:
    """The members chosen (best first), their weights, and the blend as a leaderboard entry
    (its ``metrics`` and ``temperature`` are those of the blend, scaled when calibrated);
    ``passed_over`` counts the selection's better blends whose refits no longer fitted."""

    def __init__(self, members: list[CandidateResult], choice: EnsembleChoice, next_id: int,
                 metrics: dict[str, float], temperature: float = 1.0, passed_over: int = 0):
        self.members = members
        self.passed_over = passed_over
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
                  calibrate: bool = False,
                  predict_limit: Optional[float] = None) -> Optional[EnsemblePlan]:
    """Greedy selection over the best candidates' out-of-fold predictions.

    With ``blend_seconds`` (what refitting and publishing a list of members costs), a candidate
    joins the blend only while the blend's cost stays within ``seconds_left`` (counted from this
    call) less the selection's own time, so that the blend chosen is one that can be refitted
    in time; but it may always cost ``floor_seconds`` (what publishing ``best`` alone would
    take: when the time is short, a blend no slower to refit is no worse for the budget). The
    selection's time is read off the clock as it goes: when it took longer than expected and
    its blend no longer fits, the best blend it had found before, with fewer members, that still
    fits is taken instead. Returns None when fewer than two candidates are usable or no blend
    that fits beats ``best`` on the validation rows. With ``calibrate``, a classification blend
    gets its own temperature (see :func:`fit_temperature`) before that comparison. With
    ``predict_limit`` (seconds per 1,000 rows), the members' prediction times together stay
    within it, as each candidate's had to.
    """
    started = time.perf_counter()
    usable = sorted(
        (r for r in results if r.status == "ok" and r.spec.fraction >= 1.0 and r.oof is not None
         and not math.isnan(r.metrics.get(metric, math.nan))),
        key=lambda r: (loss_of(metric, r.metrics[metric]), r.spec.id),
    )[:MAX_MEMBERS_CONSIDERED]
    if len(usable) < 2:
        return None
    rows, predictions = validated_predictions([r.oof for r in usable], len(data.y), data.task)
    y = data.y[rows]

    def fits(chosen: frozenset[int], selecting: float = 0.0) -> bool:
        """Whether refitting ``chosen`` fits the time left once ``selecting`` seconds (from
        the start) have gone by, and the blend predicts within ``predict_limit``."""
        if predict_limit is not None and sum(
                usable[i].predict_seconds_per_1000 for i in chosen) > predict_limit:
            return False
        if blend_seconds is None:
            return True
        needed = blend_seconds([usable[i] for i in sorted(chosen)])
        waited = max(time.perf_counter() - started, selecting)
        return needed <= max(seconds_left - waited, floor_seconds)

    # The selection itself takes time out of what the refits may use.
    expected = evaluation_seconds(predictions[0], y, data.task, metric) * len(
        usable) * EXPECTED_ROUNDS
    choice = greedy_ensemble(predictions, y, data.task, metric,
                             fits=lambda chosen: fits(chosen, expected))
    for passed_over, counts in enumerate(reversed(choice.path)):
        if len(counts) < 2:
            return None
        if counts != choice.counts:
            choice = score_blend(predictions, y, data.task, counts)
        metrics, temperature = _calibrated(choice, predictions, y, data.task, calibrate)
        if fits(frozenset(counts)):
            break
    if not loss_of(metric, metrics[metric]) < loss_of(metric, best.metrics[metric]):
        return None
    members = [usable[i] for i in sorted(choice.counts)]
    next_id = max(r.spec.id for r in results) + 1
    return EnsemblePlan(members, choice, next_id, metrics, temperature, passed_over)


def _calibrated(choice: EnsembleChoice, predictions: list[np.ndarray], y: np.ndarray, task: str,
                calibrate: bool) -> tuple[dict[str, float], float]:
    """The blend's metrics and temperature: with ``calibrate``, a classification blend's own
    temperature and its metrics once scaled; otherwise the choice's metrics and 1.0."""
    if not (calibrate and task == "classification"):
        return choice.metrics, 1.0
    blend = _blend([predictions[i] for i in sorted(choice.counts)],
                   [choice.weights[i] for i in sorted(choice.counts)])
    temperature = fit_temperature(blend, y)
    if temperature == 1.0:
        return choice.metrics, 1.0
    blend = scale_probabilities(blend, temperature)
    return compute_metrics(task, y, blend.argmax(axis=1), blend), temperature
