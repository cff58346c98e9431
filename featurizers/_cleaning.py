"""Type-cleaning steps that make raw columns safe for the encoders behind them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from featurizers._profile import as_frame

__all__ = ["CategoryStrings", "ToNumeric"]

MISSING = "__missing__"


class _ColumnwiseMixin(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        """Record the input columns.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        frame = as_frame(X)
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return self

    def _frame(self, X) -> pd.DataFrame:
        check_is_fitted(self, "n_features_in_")
        frame = as_frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {frame.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return frame

    def get_feature_names_out(self, input_features=None):
        """Output names equal input names."""
        check_is_fitted(self, "n_features_in_")
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if hasattr(self, "feature_names_in_"):
            return self.feature_names_in_.copy()
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)


class ToNumeric(_ColumnwiseMixin):
    """Parse every column as float: numbers stay, booleans become 0/1, unparseable text becomes NaN.

    Needed because a model is scored on whatever arrives (CSV text, JSON rows), not only on the
    dtypes seen in training.

    Examples
    --------
    >>> import pandas as pd
    >>> ToNumeric().fit_transform(pd.DataFrame({"a": ["1.5", "?", True]}))
    array([[1.5],
           [nan],
           [1. ]])
    """

    def transform(self, X):
        """Return a float array of the same shape.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        frame = self._frame(X)
        columns = [self._to_float(frame.iloc[:, i]) for i in range(frame.shape[1])]
        if not columns:
            return np.empty((len(frame), 0))
        return np.column_stack(columns)

    @staticmethod
    def _to_float(values: pd.Series) -> np.ndarray:
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            return values.astype("float64").to_numpy(na_value=np.nan)
        as_text = values.astype("object").map(
            lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v
        )
        parsed = pd.to_numeric(as_text.astype(str).str.strip(), errors="coerce")
        parsed[values.isna().to_numpy()] = np.nan
        return parsed.astype("float64").to_numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


class CategoryStrings(_ColumnwiseMixin):
    """Turn every value into a string category, with missing values as their own category.

    Examples
    --------
    >>> import pandas as pd
    >>> CategoryStrings().fit_transform(pd.DataFrame({"c": ["a", None, 3]}))
    array([['a'],
           ['__missing__'],
           ['3']], dtype=object)
    """

    def transform(self, X):
        """Return an object array of strings of the same shape.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features), dtype object
        """
        frame = self._frame(X)
        out = np.empty(frame.shape, dtype=object)
        for i in range(frame.shape[1]):
            values = frame.iloc[:, i]
            text = values.astype("object").map(_category_text)
            out[:, i] = np.where(values.isna().to_numpy(), MISSING, text.to_numpy())
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


def _category_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3.0 read from one file and 3 from another are one category
    return str(value)
