"""The published model: featurization + estimator behind the model.pkl contract of DESIGN.md."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted

from models._calibration import scale_probabilities
from models._time_limit import fit_within

__all__ = ["AutoMLClassifier", "AutoMLRegressor", "MissingColumnsError", "make_model"]


class MissingColumnsError(ValueError):
    """Rows to score lack columns the model was trained on."""


class _AutoMLBase(BaseEstimator):
    """Shared parts: column checking and the inner ``Pipeline(featurize, model)``."""

    def __init__(self, featurizer: Any = None, estimator: Any = None):
        self.featurizer = featurizer
        self.estimator = estimator

    def _fit_pipeline(self, X: pd.DataFrame, y: np.ndarray,
                      time_limit: Optional[float] = None) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a pandas DataFrame with the training columns")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.pipeline_ = Pipeline(
            [("featurize", clone(self.featurizer)), ("model", clone(self.estimator))]
        )
        if time_limit is None:
            self.pipeline_.fit(X, y)
            return
        features = self.pipeline_.named_steps["featurize"].fit_transform(X, y)
        fit_within(self.pipeline_.named_steps["model"], features, y, time_limit)

    def required_columns(self) -> list[str]:
        """The training columns the model uses: all but those its featurizer dropped (empty,
        constant or ID-like), which may be left out of the rows to score."""
        check_is_fitted(self, "pipeline_")
        kept = getattr(self.pipeline_.named_steps["featurize"], "roles_", None)
        if kept is None:
            return list(self.feature_names_in_)
        kept = {str(c) for c in kept}
        return [c for c in self.feature_names_in_ if c in kept]

    def _columns(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "pipeline_")
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X)
        # Named as in training (tasks.load.frame_table): str of each label, a MultiIndex's
        # tuples included (rename(columns=str) would keep the levels).
        X = X.set_axis([str(c) for c in X.columns], axis=1)
        repeated = [c for c in X.columns[X.columns.duplicated()] if c in self.feature_names_in_]
        if repeated:
            raise ValueError(f"column {repeated[0]!r} appears twice in the rows to score; keep "
                             "one of them")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            required = set(self.required_columns())
            # Columns the featurizer drops: any values will do.
            X = X.assign(**{c: np.nan for c in missing if c not in required})
            missing = [c for c in missing if c in required]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise MissingColumnsError(
                f"missing column(s) {shown}{more}: the model needs every training column it "
                f"uses (the target excepted); extra columns are ignored"
            )
        return X.loc[:, list(self.feature_names_in_)]

    def get_feature_names_out(self, input_features=None):
        """The engineered feature names the estimator sees."""
        check_is_fitted(self, "pipeline_")
        return self.pipeline_.named_steps["featurize"].get_feature_names_out()


class AutoMLClassifier(ClassifierMixin, _AutoMLBase):
    """Featurizer + classifier; labels of any type, ``predict_proba`` columns in ``classes_`` order.

    Parameters
    ----------
    featurizer : transformer
        Unfitted featurizer (an :class:`featurizers.AutoFeaturizer`).
    estimator : classifier
        Unfitted scikit-learn compatible classifier; it is trained on labels encoded ``0..k-1``.
    temperature : float, default=1.0
        Divides the log-probabilities before they are normalized again (temperature scaling,
        fitted on out-of-fold predictions): above 1 softens overconfident probabilities. It never
        changes the predicted class.
    """

    def __init__(self, featurizer: Any = None, estimator: Any = None, temperature: float = 1.0):
        super().__init__(featurizer, estimator)
        self.temperature = temperature

    def fit(self, X: pd.DataFrame, y: Any,
            time_limit: Optional[float] = None) -> "AutoMLClassifier":
        """Encode the labels, then fit featurizer and classifier on ``X``.

        ``time_limit`` (seconds) stops a booster's rounds, a forest's trees or saga's epochs
        when it is up (see :func:`models._time_limit.fit_within`); others fit in full.
        """
        self.label_encoder_ = LabelEncoder().fit(np.asarray(y))
        self.classes_ = self.label_encoder_.classes_
        self._fit_pipeline(X, self.label_encoder_.transform(np.asarray(y)), time_limit)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``."""
        X = self._columns(X)
        if not len(X):  # scikit-learn's input checks refuse zero rows
            return np.zeros((0, len(self.classes_)))
        proba = self.pipeline_.predict_proba(X)
        # Models pickled before temperature scaling existed have no such attribute.
        return scale_probabilities(proba, getattr(self, "temperature", 1.0))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each row."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class AutoMLRegressor(RegressorMixin, _AutoMLBase):
    """Featurizer + regressor.

    Parameters
    ----------
    featurizer : transformer
        Unfitted featurizer (an :class:`featurizers.AutoFeaturizer`).
    estimator : regressor
        Unfitted scikit-learn compatible regressor.
    """

    def fit(self, X: pd.DataFrame, y: Any,
            time_limit: Optional[float] = None) -> "AutoMLRegressor":
        """Fit featurizer and regressor on ``X``; ``time_limit`` as for the classifier."""
        self._fit_pipeline(X, np.asarray(y, dtype=float), time_limit)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """One prediction per row, in row order."""
        X = self._columns(X)
        return self.pipeline_.predict(X) if len(X) else np.zeros(0)


def make_model(task: str, featurizer: Any, estimator: Any) -> _AutoMLBase:
    """An unfitted :class:`AutoMLClassifier` or :class:`AutoMLRegressor` for ``task``."""
    if task == "classification":
        return AutoMLClassifier(featurizer=featurizer, estimator=estimator)
    return AutoMLRegressor(featurizer=featurizer, estimator=estimator)
