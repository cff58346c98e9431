"""The featurizer placed in front of every model: profiling -> one ColumnTransformer."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder
from sklearn.utils.validation import check_is_fitted

from featurizers._base import TableTransformer
from featurizers._cleaning import CategoryStrings, ToNumeric
from featurizers._datetime import DatetimeFeatures
from featurizers._frequency import FrequencyEncoder
from featurizers._profile import as_frame, kinds, profile_columns
from featurizers._text import TextEncoder

__all__ = ["AutoFeaturizer"]


def _scaled(steps: list, scale: bool) -> Pipeline:
    return Pipeline([*steps, ("scale", StandardScaler())] if scale else steps)


class AutoFeaturizer(TableTransformer):
    """Turn a raw table into a numeric matrix, choosing a transformer per column.

    numeric -> parse, median imputation with missing indicators (scaled when ``scale``);
    categorical -> one-hot; high-cardinality -> target encoding (cross-fitted) and frequency
    encoding; datetime -> calendar parts; text -> TF-IDF + SVD. ID-like, constant and empty columns
    are dropped.

    Parameters
    ----------
    roles : dict of str to str or None, default=None
        ``{column: kind}`` fixed in advance (as profiled once on the whole training table, so that
        every fold and the final refit treat columns alike). When None, ``fit`` profiles ``X``.
    scale : bool, default=False
        Standardize the numeric outputs (for linear and distance-based models).
    task : {"classification", "regression"}, default="classification"
        Decides how the target encoder reads ``y``.
    max_onehot : int, default=20
        When profiling, categorical columns with more levels are target and frequency encoded.
    random_state : int, default=0
        Seed for the target encoder's cross-fitting and the text SVD.

    Attributes
    ----------
    roles_ : dict of str to str
        The kind used for each kept column.
    transformer_ : ColumnTransformer
        The fitted column transformer.

    .. note::
        ``fit_transform`` differs from ``fit().transform`` for high-cardinality columns: the target
        encoder cross-fits in ``fit_transform`` so the training rows never see their own target.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [1.0, None, 3.0, 4.0], "c": ["a", "b", "a", "b"]})
    >>> AutoFeaturizer().fit(frame, [0, 1, 0, 1]).get_feature_names_out().tolist()
    ['numeric__x', 'numeric__missingindicator_x', 'categorical__c_a', 'categorical__c_b']
    """

    def __init__(
        self,
        roles: Optional[dict[str, str]] = None,
        scale: bool = False,
        task: str = "classification",
        max_onehot: int = 20,
        random_state: int = 0,
    ):
        self.roles = roles
        self.scale = scale
        self.task = task
        self.max_onehot = max_onehot
        self.random_state = random_state

    def _build(self, roles: dict[str, str]) -> ColumnTransformer:
        by_kind: dict[str, list[str]] = {}
        for column, kind in roles.items():
            by_kind.setdefault(kind, []).append(column)
        regression = self.task == "regression"
        target_type = "continuous" if regression else "auto"
        folds = (KFold if regression else StratifiedKFold)(
            5, shuffle=True, random_state=self.random_state
        )
        makers = {
            "numeric": lambda: _scaled(
                [("parse", ToNumeric()),
                 ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                          keep_empty_features=True))],
                self.scale,
            ),
            "categorical": lambda: Pipeline(
                [("strings", CategoryStrings()),
                 ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]
            ),
            "high_cardinality": lambda: _scaled(
                [("strings", CategoryStrings()),
                 ("encode", FeatureUnion([
                     ("target", TargetEncoder(target_type=target_type, cv=folds)),
                     ("frequency", FrequencyEncoder()),
                 ]))],
                self.scale,
            ),
            "datetime": lambda: _scaled(
                [("parts", DatetimeFeatures()),
                 ("impute", SimpleImputer(strategy="median", keep_empty_features=True))],
                self.scale,
            ),
        }
        transformers = [(kind, makers[kind](), columns)
                        for kind, columns in by_kind.items() if kind in makers]
        transformers += [
            (f"text_{i}", TextEncoder(random_state=self.random_state), column)
            for i, column in enumerate(by_kind.get("text", []))
        ]
        return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)

    def fit(self, X, y=None):
        """Profile (unless ``roles`` is given) and fit the column transformer.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Needed when a column is target encoded.

        Returns
        -------
        self
        """
        self._fit(X, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then return the cross-fitted training matrix (see the note above)."""
        return self._fit(X, y)

    def _fit(self, X, y) -> np.ndarray:
        frame = self._start_fit(X)
        roles = dict(self.roles) if self.roles is not None else kinds(
            profile_columns(frame, max_onehot=self.max_onehot)
        )
        if y is None and "high_cardinality" in roles.values():
            roles = {c: ("categorical" if k == "high_cardinality" else k) for c, k in roles.items()}
        self.roles_ = roles
        self.transformer_ = self._build(roles)
        return self.transformer_.fit_transform(frame, y)

    def transform(self, X):
        """Featurize ``X`` with the fitted transformers.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
        """
        check_is_fitted(self, "transformer_")
        frame = as_frame(X)
        if frame.shape[1] != self.n_features_in_ and not isinstance(X, pd.DataFrame):
            raise ValueError(
                f"X has {frame.shape[1]} features, but AutoFeaturizer is expecting "
                f"{self.n_features_in_} features as input."
            )
        return self.transformer_.transform(frame)

    def get_feature_names_out(self, input_features=None):
        """Engineered feature names, prefixed by the transformer kind."""
        check_is_fitted(self, "transformer_")
        return self.transformer_.get_feature_names_out()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        return tags
