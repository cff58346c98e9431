"""Temperature scaling of class probabilities: one positive number fitted on out-of-fold rows."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["calibrates", "clip_probabilities", "fit_temperature", "scale_probabilities"]

LOG_BOUND = 3.0  # temperatures between e^-3 (about 0.05) and e^3 (about 20)
_FLOOR = 1e-15


def calibrates(metric: str) -> bool:
    """Whether a run optimising ``metric`` fits temperatures: only log loss rewards them."""
    return metric == "log_loss"


def clip_probabilities(proba: np.ndarray) -> np.ndarray:
    """Probabilities as the metrics take them (a zero would make the log loss infinite).

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        A new float array: each value at least 1e-15, each row renormalized to sum to 1.
    """
    proba = np.clip(np.asarray(proba, dtype=float), _FLOOR, 1.0)
    return proba / proba.sum(axis=1, keepdims=True)


def scale_probabilities(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)`` by row: above 1 softens, below 1 sharpens.

    The order of the classes in every row is kept, so the most probable class is unchanged.
    """
    proba = np.asarray(proba, dtype=float)
    if temperature == 1.0:
        return proba
    logits = np.log(np.clip(proba, _FLOOR, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def _log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], _FLOOR, 1.0))))


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the log loss of ``proba`` (rows) for labels ``y``.

    Parameters
    ----------
    proba : ndarray of shape (n_rows, n_classes)
        Out-of-fold class probabilities.
    y : ndarray of shape (n_rows,)
        Encoded labels ``0..n_classes-1``.

    Returns
    -------
    float
        Rounded to 4 digits; 1.0 (no change) unless scaling lowers the log loss.
    """
    y = np.asarray(y, dtype=int)
    if len(y) == 0:
        return 1.0
    found = minimize_scalar(lambda log_t: _log_loss(scale_probabilities(proba, np.exp(log_t)), y),
                            bounds=(-LOG_BOUND, LOG_BOUND), method="bounded",
                            options={"xatol": 1e-4})
    temperature = round(float(np.exp(found.x)), 4)
    unscaled = _log_loss(np.asarray(proba, dtype=float), y)
    if not _log_loss(scale_probabilities(proba, temperature), y) < unscaled:
        return 1.0
    return temperature
