"""Greedy ensemble selection with replacement (Caruana et al., 2004) on out-of-fold predictions."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np

from tasks.evaluate import METRICS, compute_metrics, loss_of

__all__ = ["EnsembleChoice", "greedy_ensemble", "prediction_loss", "score_blend",
           "validated_predictions"]


@dataclass(frozen=True)
class EnsembleChoice:
    """Member index -> how many times it was picked; the ensemble's validation metrics; and
    the blends that were the best so far as the selection went on (``counts`` last)."""

    counts: dict[int, int]
    metrics: dict[str, float]
    path: tuple[dict[int, int], ...] = ()

    @property
    def weights(self) -> dict[int, float]:
        """Normalized weights of the members."""
        total = sum(self.counts.values())
        return {i: c / total for i, c in self.counts.items()}


def validated_predictions(oofs: list, n_rows: int,
                          task: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The rows every one of ``oofs`` predicted (out-of-fold predictions, NaN outside every
    validation fold) and the predictions on them; class probabilities renormalized per row."""
    stacked = [np.asarray(oof, dtype=float) for oof in oofs]
    rows = np.ones(n_rows, dtype=bool)
    for oof in stacked:
        rows &= ~np.isnan(oof.reshape(n_rows, -1)).any(axis=1)
    predictions = [oof[rows] for oof in stacked]
    if task == "classification":
        predictions = [p / p.sum(axis=1, keepdims=True) for p in predictions]
    return rows, predictions


def _combine(predictions: list[np.ndarray], counts: Counter) -> np.ndarray:
    total = sum(counts.values())
    return sum(predictions[i] * c for i, c in counts.items()) / total


def _score(task: str, y: np.ndarray, blend: np.ndarray) -> dict[str, float]:
    if task == "regression":
        return compute_metrics(task, y, blend)
    return compute_metrics(task, y, blend.argmax(axis=1), blend)


def score_blend(predictions: list[np.ndarray], y: np.ndarray, task: str,
                counts: dict[int, int]) -> EnsembleChoice:
    """The blend of ``predictions`` with these member counts, and its metrics on ``y``."""
    return EnsembleChoice(dict(sorted(counts.items())),
                          _score(task, y, _combine(predictions, Counter(counts))))


def evaluation_seconds(prediction: np.ndarray, y: np.ndarray, task: str, metric: str) -> float:
    """Seconds one evaluation of a blend takes (greedy selection makes up to candidates x
    rounds of them)."""
    started = time.perf_counter()
    prediction_loss(task, metric, y, prediction)
    return time.perf_counter() - started


def prediction_loss(task: str, metric: str, y: np.ndarray, blend: np.ndarray) -> float:
    """``metric`` of ``blend`` (probabilities, or values for regression) on ``y`` as a loss
    (lower is better; infinite when it cannot be computed, e.g. one class only)."""
    scorer = METRICS[metric].fn
    try:
        value = scorer(y, blend, None) if task == "regression" else scorer(
            y, blend.argmax(axis=1), blend)
    except ValueError:
        return float("inf")
    return loss_of(metric, value)


def greedy_ensemble(
    predictions: list[np.ndarray], y: np.ndarray, task: str, metric: str,
    max_rounds: int = 50, patience: int = 10,
    fits: Optional[Callable[[frozenset[int]], bool]] = None,
) -> EnsembleChoice:
    """Pick members with replacement, one per round: each time the one that most improves
    ``metric``.

    Parameters
    ----------
    predictions : list of ndarray
        Validation predictions of the candidates on the same rows (probabilities of shape
        ``(n, k)`` for classification, values of shape ``(n,)`` for regression), best first.
    y : ndarray
        True values (encoded labels) of those rows.
    task : {"classification", "regression"}
    metric : str
        The metric to optimize.
    max_rounds : int, default=50
        Members picked at most (with repetition).
    patience : int, default=10
        Stop after this many rounds without improvement.
    fits : callable, optional
        Whether a set of members (indices into ``predictions``) is affordable, e.g. can be
        refitted in the time left; a candidate not yet in the blend joins only when the blend
        with it still fits. The best candidate (index 0) is always in the blend.

    Returns
    -------
    EnsembleChoice
        The best blend seen (it starts from the best single candidate, so it is never worse on
        these rows). Its ``path`` holds each blend that was the best when it was found, from
        the best candidate alone to this one: their sets of members only grow.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 1.0, 2.0, 3.0])
    >>> low, high = y - 1.0, y + 1.0
    >>> greedy_ensemble([low, high], y, "regression", "rmse").weights
    {0: 0.5, 1: 0.5}
    """
    counts: Counter = Counter({0: 1})
    best_loss = prediction_loss(task, metric, y, predictions[0])
    best_counts, stale = Counter(counts), 0
    path = [dict(counts)]
    total = predictions[0].copy()
    for _ in range(max_rounds - 1):
        n = sum(counts.values()) + 1
        allowed = [i for i in range(len(predictions))
                   if fits is None or i in counts or fits(frozenset(counts) | {i})]
        trials = [(prediction_loss(task, metric, y, (total + predictions[i]) / n), i)
                  for i in allowed]
        loss, pick = min(trials)
        counts[pick] += 1
        total += predictions[pick]
        if loss < best_loss - 1e-12:
            best_loss, best_counts, stale = loss, Counter(counts), 0
            path.append(dict(sorted(counts.items())))
        else:
            stale += 1
            if stale >= patience:
                break
    best = score_blend(predictions, y, task, best_counts)
    return EnsembleChoice(best.counts, best.metrics, tuple(path))
