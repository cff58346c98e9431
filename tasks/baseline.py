"""Whether the search's winner beats the baseline by more than the noise of the validation rows.

The winner of a search is the best of many candidates scored on the same validation rows, so its
score is biased upwards by the choice itself (the winner's curse). The baseline (scikit-learn's
HistGradientBoosting defaults, evaluated first and never tuned) is not chosen by those rows, so
its score is not. On small or noisy data a tuned winner can therefore look better than the
baseline on validation and be worse on new rows. The winner is published only when its gain over
the baseline exceeds ``margin`` standard errors of that gain, estimated by a paired bootstrap of
the validation rows (the one-standard-error rule of Hastie, Tibshirani and Friedman, *The
Elements of Statistical Learning*, 7.10, with a margin that allows for many candidates).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from tasks.ensemble import prediction_loss, validated_predictions
from tasks.types import CandidateResult

__all__ = ["BaselineCheck", "bootstrap_gain", "check_baseline"]

MIN_RESAMPLES = 30


@dataclass(frozen=True)
class BaselineCheck:
    """The winner's gain over the baseline on the validation rows, and whether it is enough.

    ``gain`` is in the primary metric's units, positive when the winner is better; ``std_error``
    is its bootstrap standard error; ``margin`` the standard errors it must exceed;
    ``baseline_fits`` False when the baseline should be published but its refit no longer fits
    the time left, so the winner is.
    """

    winner_id: int
    baseline_id: int
    gain: float
    std_error: float
    margin: float
    resamples: int
    baseline_fits: bool = True

    @property
    def std_errors(self) -> float:
        """The gain in standard errors (infinite, with the gain's sign, when they are zero)."""
        if self.std_error > 0:
            return self.gain / self.std_error
        return math.copysign(math.inf, self.gain) if self.gain else 0.0

    @property
    def winner_passes(self) -> bool:
        """Whether the winner gains more than ``margin`` standard errors."""
        threshold = self.margin * self.std_error if self.margin > 0 else 0.0
        return self.gain > threshold

    @property
    def keeps_baseline(self) -> bool:
        """Whether the baseline is published instead of the winner."""
        return not self.winner_passes and self.baseline_fits

    def to_dict(self) -> dict[str, Any]:
        """The check as plain values, with its verdict (for ``metrics.json``)."""
        return {**asdict(self), "std_errors": self.std_errors,
                "keeps_baseline": self.keeps_baseline}

    def describe(self, metric: str) -> str:
        """One line: the gain, its standard error, and what was published."""
        verdict = (f"the baseline {self.baseline_id} is published" if self.keeps_baseline
                   else f"the winner {self.winner_id} is published")
        if not self.winner_passes and not self.baseline_fits:
            verdict = (f"the baseline {self.baseline_id}'s refit no longer fits the time left, "
                       f"so {verdict}")
        return (f"candidate {self.winner_id} beats the baseline {self.baseline_id} by "
                f"{self.gain:.4g} {metric} on validation, {self.std_errors:.1f} standard errors "
                f"({self.std_error:.2g}; {self.margin:g} needed): {verdict}")


def bootstrap_gain(y: np.ndarray, winner: np.ndarray, baseline: np.ndarray, task: str,
                   metric: str, seed: int = 0, resamples: int = 200,
                   seconds: Optional[float] = None) -> tuple[float, float, int]:
    """The winner's gain over the baseline on these rows and its paired bootstrap standard error.

    Parameters
    ----------
    y : ndarray
        True values (encoded labels for classification).
    winner, baseline : ndarray
        Predictions on the same rows (class probabilities ``(n, k)``, or values ``(n,)``).
    task : {"classification", "regression"}
    metric : str
    seed : int, default=0
    resamples : int, default=200
        Bootstrap resamples at most.
    seconds : float, optional
        Time the resampling may take: fewer resamples (but at least 30) are drawn when one takes
        longer than ``seconds / resamples``.

    Returns
    -------
    gain : float
        Loss of the baseline minus loss of the winner on all rows (positive: the winner is
        better).
    std_error : float
        Standard deviation of that difference over resamples of the rows (the same rows for
        both, so what they share cancels).
    resamples : int
        Resamples drawn (those where the metric cannot be computed, e.g. one class, are left
        out).
    """
    started = time.perf_counter()
    gain = (prediction_loss(task, metric, y, baseline)
            - prediction_loss(task, metric, y, winner))
    rng = np.random.default_rng(seed)
    gains: list[float] = []
    for drawn in range(resamples):
        if seconds is not None and drawn >= MIN_RESAMPLES and (
                time.perf_counter() - started) * (drawn + 1) / drawn > seconds:
            break
        rows = rng.integers(0, len(y), len(y))
        one = (prediction_loss(task, metric, y[rows], baseline[rows])
               - prediction_loss(task, metric, y[rows], winner[rows]))
        if np.isfinite(one):
            gains.append(one)
    std_error = float(np.std(gains, ddof=1)) if len(gains) > 1 else float("inf")
    return float(gain), std_error, len(gains)


def check_baseline(winner: CandidateResult, baseline: CandidateResult, y: np.ndarray,
                   task: str, metric: str, margin: float, seed: int = 0,
                   seconds: Optional[float] = None) -> Optional[BaselineCheck]:
    """Compare ``winner`` (a candidate or a blend) with ``baseline`` on their validation rows.

    Returns None when there is nothing to compare: the winner is the baseline, or either has no
    out-of-fold predictions. Rows that either did not predict (outside every validation fold)
    are left out.
    """
    if winner.spec.id == baseline.spec.id or winner.oof is None or baseline.oof is None:
        return None
    rows, (ours, theirs) = validated_predictions([winner.oof, baseline.oof], len(y), task)
    if rows.sum() < 2:
        return None
    gain, std_error, drawn = bootstrap_gain(y[rows], ours, theirs, task, metric, seed,
                                            seconds=seconds)
    return BaselineCheck(winner.spec.id, baseline.spec.id, gain, std_error, margin, drawn)
