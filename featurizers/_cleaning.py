"""Type-cleaning steps that make raw columns safe for the encoders behind them."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from featurizers._base import TableTransformer
from featurizers._numbers import as_numbers

__all__ = ["CategoryStrings", "ToNumeric"]

MISSING = "__missing__"


class _SameColumns(TableTransformer):
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
        self._start_fit(X)
        return self

    def get_feature_names_out(self, input_features=None):
        """Output names equal input names."""
        check_is_fitted(self, "n_features_in_")
        return np.asarray(self._input_names(input_features), dtype=object)


class ToNumeric(_SameColumns):
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
        frame = self._checked_frame(X, "n_features_in_")
        columns = [as_numbers(frame.iloc[:, i]).to_numpy() for i in range(frame.shape[1])]
        if not columns:
            return np.empty((len(frame), 0))
        return np.column_stack(columns)


class CategoryStrings(_SameColumns):
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
        frame = self._checked_frame(X, "n_features_in_")
        out = np.empty(frame.shape, dtype=object)
        for i in range(frame.shape[1]):
            values = frame.iloc[:, i]
            text = values.astype("object").map(category_text)
            out[:, i] = np.where(values.isna().to_numpy(), MISSING, text.to_numpy())
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        return tags


def category_text(value: object) -> str:
    """A category as the model reads it: a whole float as an integer, anything else as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3.0 read from one file and 3 from another are one category
    return str(value)
