"""A weighted blend of published models, with the same model.pkl contract as one model."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from models._calibration import scale_probabilities

__all__ = ["AutoMLEnsembleClassifier", "AutoMLEnsembleRegressor", "make_ensemble"]


class _EnsembleBase(BaseEstimator):
    """Members are fitted AutoML models (sharing their training columns); weights sum to one."""

    def __init__(self, members: list | None = None, weights: list[float] | None = None):
        self.members = members
        self.weights = weights

    def fit(self, X: Any = None, y: Any = None) -> "_EnsembleBase":
        """Check the (already fitted) members and take their columns; nothing is trained here."""
        if not self.members or len(self.members) != len(self.weights):
            raise ValueError("an ensemble needs fitted members and one weight per member")
        for member in self.members:
            check_is_fitted(member, "pipeline_")
        self.weights_ = np.asarray(self.weights, dtype=float) / float(np.sum(self.weights))
        self.feature_names_in_ = self.members[0].feature_names_in_
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def required_columns(self) -> list[str]:
        """The training columns some member uses (see ``AutoMLClassifier.required_columns``)."""
        check_is_fitted(self, "weights_")
        used = {c for member in self.members for c in member.required_columns()}
        return [c for c in self.feature_names_in_ if c in used]

    def _check(self, X: Any) -> Any:
        check_is_fitted(self, "weights_")
        return self.members[0]._columns(X)  # one clear error for missing columns


class AutoMLEnsembleClassifier(ClassifierMixin, _EnsembleBase):
    """Weighted average of the members' class probabilities.

    Parameters
    ----------
    members : list of fitted AutoMLClassifier
        All trained on the same labels (same ``classes_``).
    weights : list of float
    temperature : float, default=1.0
        Temperature scaling of the blend (see :class:`models.AutoMLClassifier`).
    """

    def __init__(self, members: list | None = None, weights: list[float] | None = None,
                 temperature: float = 1.0):
        super().__init__(members, weights)
        self.temperature = temperature

    def fit(self, X: Any = None, y: Any = None) -> "AutoMLEnsembleClassifier":
        """Check the members; ``classes_`` are theirs."""
        super().fit(X, y)
        self.classes_ = self.members[0].classes_
        for member in self.members[1:]:
            if list(member.classes_) != list(self.classes_):
                raise ValueError("ensemble members disagree on the classes")
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Blended probabilities, one column per entry of ``classes_``."""
        X = self._check(X)
        blended = sum(w * m.predict_proba(X) for w, m in zip(self.weights_, self.members))
        # Ensembles pickled before temperature scaling existed have no such attribute.
        return scale_probabilities(blended / blended.sum(axis=1, keepdims=True),
                                   getattr(self, "temperature", 1.0))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class AutoMLEnsembleRegressor(RegressorMixin, _EnsembleBase):
    """Weighted average of the members' predictions.

    Parameters
    ----------
    members : list of fitted AutoMLRegressor
    weights : list of float
    """

    def predict(self, X: Any) -> np.ndarray:
        """Blended predictions, one per row."""
        X = self._check(X)
        return sum(w * m.predict(X) for w, m in zip(self.weights_, self.members))


def make_ensemble(task: str, members: list, weights: list[float],
                  temperature: float = 1.0) -> _EnsembleBase:
    """A fitted ensemble of fitted members (a classifier's blend scaled by ``temperature``)."""
    if task == "classification":
        return AutoMLEnsembleClassifier(members=members, weights=weights,
                                        temperature=temperature).fit()
    return AutoMLEnsembleRegressor(members=members, weights=weights).fit()
