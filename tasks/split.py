"""Seeded validation splits: k-fold CV for small data, a holdout for large, or a given file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from tasks.errors import AutoMLInputError

__all__ = ["CV_ROW_LIMIT", "WORK_PER_BUDGET_SECOND", "SplitPlan", "plan_split", "split_task"]

# Below this many rows a single holdout is too small to rank candidates reliably (the standard
# error of a holdout score shrinks with its size), so k-fold CV is worth its k-fold cost; above it
# a 10% holdout has 2,000+ rows and CV mostly multiplies the cost. Azure AutoML uses the same line.
CV_ROW_LIMIT = 20_000
# k-fold CV multiplies every candidate's cost by k. When one fit's work (rows x features, times the
# classes for multiclass, since boosting grows a tree per class) exceeds this many units per second
# of budget, too few candidates would finish (letter, 16,000 rows x 16 features x 26 classes,
# finished 5 at 60 s), so a holdout is used instead; satimage (1.1M units) still gets CV at 60 s.
WORK_PER_BUDGET_SECOND = 30_000


@dataclass(frozen=True)
class SplitPlan:
    """Train/validation row indices per fold, over the training table."""

    kind: Literal["cv", "holdout", "validation_data"]
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    seed: int

    @property
    def signature(self) -> str:
        """A short description that changes when the folds change (used in cache keys)."""
        sizes = ",".join(f"{len(t)}/{len(v)}" for t, v in self.folds)
        first = self.folds[0][1][:20].tolist() if self.folds else []
        return f"{self.kind}:{self.seed}:{sizes}:{first}"

    def describe(self) -> str:
        """One line for logs and reports."""
        if self.kind == "cv":
            return f"{len(self.folds)}-fold cross-validation"
        n_valid = len(self.folds[0][1])
        source = "the given validation data" if self.kind == "validation_data" else "a holdout"
        return f"{source} of {n_valid} rows"


def _check_class_counts(y: np.ndarray, needed: int) -> int:
    counts = np.bincount(y)
    smallest = int(counts.min())
    if smallest < 2:
        raise AutoMLInputError(
            f"a target class has only {smallest} row(s); every class needs at least 2 rows to be "
            "validated: add rows of that class or drop them"
        )
    return min(needed, smallest)


def _holdout_problem(n: int, fraction: float, needed: int) -> Optional[str]:
    """Why a holdout of ``fraction`` of ``n`` rows cannot work, or None: each side needs
    ``needed`` rows (one per class, else 2: a score needs more than one row)."""
    valid = math.ceil(fraction * n)  # as train_test_split rounds it
    if min(valid, n - valid) >= needed:
        return None
    low, high = needed / n, 1 - needed / n
    return (f"validation_fraction {fraction:g} of {n} rows leaves {valid} for validation and "
            f"{n - valid} for training, and each side needs {needed}"
            f"{' (one per class)' if needed > 2 else ''}: give a fraction from {low:.3g} to "
            f"{high:.3g}, or leave it out")


def _fit_work(y: np.ndarray, task: str, n_features: int) -> float:
    n_classes = len(np.unique(y)) if task == "classification" else 1
    return len(y) * max(1, n_features) * (n_classes if n_classes > 2 else 1)


def plan_split(
    y: np.ndarray,
    task: str,
    seed: int,
    cv_folds: Optional[int] = None,
    validation_fraction: Optional[float] = None,
    n_validation_rows: int = 0,
    time_budget: Optional[float] = None,
    n_features: int = 1,
) -> SplitPlan:
    """Choose and make the validation split.

    Parameters
    ----------
    y : ndarray
        Target (encoded labels for classification) of the training rows, in order. When
        ``n_validation_rows`` > 0 its last rows are the user's validation data.
    task : {"classification", "regression"}
    seed : int
    cv_folds : int, optional
        Force k-fold CV with this many folds.
    validation_fraction : float, optional
        Force a holdout of this fraction.
    n_validation_rows : int, default=0
        Rows at the end of ``y`` that came from a separate validation file.
    time_budget : float, optional
        Seconds of the run; with it, data too costly for CV in that time gets a holdout.
    n_features : int, default=1
        Raw feature columns (for the cost of one fit).

    Returns
    -------
    SplitPlan
        Stratified for classification; 5 folds below 5,000 rows, 3 up to ``CV_ROW_LIMIT``, a 10%
        holdout above it. A holdout of 10-20% (at least 2,000 rows where possible) also when
        one fit's work exceeds ``WORK_PER_BUDGET_SECOND`` per second of ``time_budget``.
    """
    n = len(y)
    index = np.arange(n)
    stratify = task == "classification"
    if n_validation_rows:
        cut = n - n_validation_rows
        return SplitPlan("validation_data", ((index[:cut], index[cut:]),), seed)
    needed = len(np.unique(y)) if stratify else 2
    if cv_folds is None and validation_fraction is None:
        if n > CV_ROW_LIMIT:
            validation_fraction = 0.1
        elif time_budget is not None and _fit_work(y, task, n_features) > (
                WORK_PER_BUDGET_SECOND * time_budget):
            validation_fraction = min(0.2, max(0.1, 2_000 / n))
        if validation_fraction is not None and _holdout_problem(n, validation_fraction, needed):
            validation_fraction = None  # too many classes for a holdout of it: CV as usual
    if validation_fraction is not None:
        if stratify:
            _check_class_counts(y, 2)
        problem = _holdout_problem(n, validation_fraction, needed)
        if problem:
            raise AutoMLInputError(problem)
        train, valid = train_test_split(
            index, test_size=validation_fraction, random_state=seed,
            stratify=y if stratify else None,
        )
        return SplitPlan("holdout", ((np.sort(train), np.sort(valid)),), seed)
    k = cv_folds or (5 if n < 5_000 else 3)
    if stratify:
        k = max(2, _check_class_counts(y, k))
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(k, shuffle=True, random_state=seed)
    folds = tuple((train, valid) for train, valid in splitter.split(index, y))
    return SplitPlan("cv", folds, seed)


@task(name="split", cache_policy=NO_CACHE)
def split_task(
    y: np.ndarray, task: str, seed: int, cv_folds: Optional[int] = None,
    validation_fraction: Optional[float] = None, n_validation_rows: int = 0,
    time_budget: Optional[float] = None, n_features: int = 1,
) -> SplitPlan:
    """Seeded, stratified (classification) validation folds."""
    return plan_split(y, task, seed, cv_folds, validation_fraction, n_validation_rows,
                      time_budget, n_features)
