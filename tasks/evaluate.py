"""Metrics: one table of scorers for every task, each knowing its direction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

from tasks.errors import listed, shown

__all__ = ["METRICS", "Metric", "binary_auc", "compute_metrics", "default_metric", "loss_of",
           "miscalibrated", "rarely_predicted"]


@dataclass(frozen=True)
class Metric:
    """A scorer on (encoded labels or values, hard predictions, probabilities)."""

    name: str
    greater_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray, Optional[np.ndarray]], float]


def _binary_or_macro_proba(y: np.ndarray, proba: np.ndarray, scorer: Callable) -> float:
    if proba.shape[1] == 2:
        return float(scorer(y, proba[:, 1]))
    onehot = np.eye(proba.shape[1])[y]
    return float(scorer(onehot, proba, average="macro"))


def binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for labels ``y`` (1 positive, 0 negative) as the Mann-Whitney
    statistic: scikit-learn's ``roc_auc_score`` (ties count one half), without its input checks,
    which cost more than the sort on a few hundred rows (the ensemble selection scores hundreds
    of blends)."""
    positive = np.asarray(y) == 1
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError("Only one class present in y_true. ROC AUC score is not defined in "
                         "that case.")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2)
                 / (n_positive * n_negative))


def _roc_auc(y: np.ndarray, pred: np.ndarray, proba: Optional[np.ndarray]) -> float:
    if proba.shape[1] == 2:
        return binary_auc(y, proba[:, 1])
    present = np.unique(y)
    if len(present) < proba.shape[1]:  # a class absent from validation: score over those present
        proba = proba[:, present] / proba[:, present].sum(axis=1, keepdims=True)
        y = np.searchsorted(present, y)
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))


def _mape(y: np.ndarray, pred: np.ndarray, proba: Optional[np.ndarray]) -> float:
    """Mean absolute percentage error, undefined (NaN, by ValueError) where a true value is 0:
    scikit-learn divides by its epsilon there and reports about 1e15."""
    if np.any(np.asarray(y) == 0):
        raise ValueError("MAPE is undefined where the target is 0")
    return float(skm.mean_absolute_percentage_error(y, pred))


def _rmse(y, pred, proba) -> float:
    return float(np.sqrt(skm.mean_squared_error(y, pred)))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", True, lambda y, p, q: float(skm.accuracy_score(y, p))),
        Metric("balanced_accuracy", True,
               lambda y, p, q: float(skm.balanced_accuracy_score(y, p))),
        Metric("roc_auc", True, _roc_auc),
        Metric("log_loss", False,
               lambda y, p, q: float(skm.log_loss(y, q, labels=np.arange(q.shape[1])))),
        Metric("f1_macro", True, lambda y, p, q: float(skm.f1_score(y, p, average="macro"))),
        Metric("average_precision", True,
               lambda y, p, q: _binary_or_macro_proba(y, q, skm.average_precision_score)),
        Metric("rmse", False, _rmse),
        Metric("mae", False, lambda y, p, q: float(skm.mean_absolute_error(y, p))),
        Metric("r2", True, lambda y, p, q: float(skm.r2_score(y, p))),
        Metric("mape", False, _mape),
    )
}

_TASK_METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "roc_auc", "log_loss", "f1_macro",
                       "average_precision"),
    "regression": ("rmse", "mae", "r2", "mape"),
}


def default_metric(task: str, n_classes: int) -> str:
    """DESIGN.md defaults: roc_auc (binary), log_loss (multiclass), rmse (regression)."""
    if task == "classification":
        return "roc_auc" if n_classes == 2 else "log_loss"
    return "rmse"


def compute_metrics(
    task: str, y: np.ndarray, prediction: np.ndarray, proba: Optional[np.ndarray] = None
) -> dict[str, float]:
    """Every metric of ``task`` on one set of predictions.

    Parameters
    ----------
    task : {"classification", "regression"}
    y : ndarray
        True values; for classification, labels encoded ``0..k-1``.
    prediction : ndarray
        Predicted values or encoded labels.
    proba : ndarray of shape (n_samples, k), optional
        Class probabilities (classification).

    Returns
    -------
    dict of str to float
        NaN for a metric that is undefined on this data (e.g. ROC AUC with one class present).
    """
    results: dict[str, float] = {}
    for name in _TASK_METRICS[task]:
        try:
            results[name] = METRICS[name].fn(y, prediction, proba)
        except ValueError:
            results[name] = float("nan")
    return results


def loss_of(metric: str, value: float) -> float:
    """A value where lower is better, for ranking (NaN ranks last)."""
    if value is None or np.isnan(value):
        return float("inf")
    return -value if METRICS[metric].greater_is_better else value


def rarely_predicted(y: np.ndarray, proba: np.ndarray, classes: Sequence,
                     min_recall: float = 0.2) -> Optional[str]:
    """A sentence naming the classes that the model's ``predict`` (the most probable class)
    finds in under ``min_recall`` of the validated rows that have them; None when there is
    none. Rows with a NaN probability (never validated) are left out.

    Examples
    --------
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    >>> rarely_predicted(np.array([0, 0, 0, 1]), proba, ["no", "yes"]).split(":")[0]
    "predicts 'yes' for 0 of the 1 validated rows of that class (recall 0%)"
    """
    rows = ~np.isnan(proba).any(axis=1)
    y, predicted = y[rows], np.argmax(proba[rows], axis=1)
    found = np.bincount(y[predicted == y], minlength=len(classes))
    present = np.bincount(y, minlength=len(classes))
    missed = [i for i in range(len(classes)) if present[i] and found[i] < min_recall * present[i]]
    if not missed:
        return None
    named = listed(missed, 3, lambda i: f"{shown(classes[i])} for {found[i]} of the {present[i]} "
                   f"validated rows of that class (recall {found[i] / present[i]:.0%})")
    return (f"predicts {named}: predict gives the most probable class; to find more of "
            "them, threshold predict_proba's column for the class instead (a lower threshold "
            "finds more, with more false alarms)")


def miscalibrated(y: np.ndarray, proba: np.ndarray, classes: Sequence) -> Optional[str]:
    """A sentence naming the class whose mean predicted probability is furthest from its share
    of the validated rows, when it is off by over half that share and 5 points; None when every
    class is close (rows with a NaN probability are left out).

    Class weights and resampling raise the probabilities of rare classes: the scores can still
    rank well, but ``predict_proba`` then overstates how often the class occurs.

    Examples
    --------
    >>> proba = np.array([[0.4, 0.6]] * 4 + [[0.3, 0.7]])
    >>> miscalibrated(np.array([0, 0, 0, 0, 1]), proba, ["no", "yes"]).split(";")[0]
    "gives 'yes' a probability of 62% on average on validation rows, of which 20% are 'yes'"
    """
    rows = ~np.isnan(proba).any(axis=1)
    if not rows.any():
        return None
    mean = proba[rows].mean(axis=0)
    share = np.bincount(y[rows], minlength=len(classes)) / rows.sum()
    gap = np.abs(mean - share) / np.maximum(share, 1e-12)
    worst = int(np.argmax(gap))
    if abs(mean[worst] - share[worst]) <= max(0.05, 0.5 * share[worst]):
        return None
    return (f"gives {shown(classes[worst])} a probability of {_percent(mean[worst])} on average "
            f"on validation rows, of which {_percent(share[worst])} are {shown(classes[worst])};"
            " read predict_proba as a score that ranks rows, not as a probability")


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.095 else f"{share:.1%}"  # 0.5%, not 0%
