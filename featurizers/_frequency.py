"""Frequency encoding for high-cardinality categorical columns."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from featurizers._base import TableTransformer

__all__ = ["FrequencyEncoder"]


class FrequencyEncoder(TableTransformer):
    """Replace each category by the fraction of training rows that hold it.

    Unseen categories (and missing values, when none were seen in training) encode as 0.

    Parameters
    ----------
    normalize : bool, default=True
        Fractions of the training rows when True, raw counts when False.

    Attributes
    ----------
    frequencies_ : list of dict
        Per input column, ``{category: frequency}``.
    n_features_in_ : int

    Examples
    --------
    >>> import pandas as pd
    >>> FrequencyEncoder().fit_transform(pd.DataFrame({"c": ["a", "a", "b", "a"]})).ravel()
    array([0.75, 0.75, 0.25, 0.75])
    """

    def __init__(self, normalize: bool = True):
        self.normalize = normalize

    def fit(self, X, y=None):
        """Count each column's categories.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        frame = self._start_fit(X)
        self.frequencies_ = [
            _hashable(frame.iloc[:, i]).value_counts(normalize=self.normalize, dropna=False)
            .to_dict()
            for i in range(frame.shape[1])
        ]
        return self

    def transform(self, X):
        """Encode each value by its training frequency.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        frame = self._checked_frame(X, "frequencies_")
        out = np.zeros(frame.shape, dtype=float)
        for i, table in enumerate(self.frequencies_):
            mapped = _hashable(frame.iloc[:, i]).map(table)
            out[:, i] = pd.to_numeric(mapped, errors="coerce").fillna(0.0).to_numpy()
        return out

    def get_feature_names_out(self, input_features=None):
        """``<column>_frequency`` for each input column."""
        check_is_fitted(self, "frequencies_")
        names = self._input_names(input_features)
        return np.asarray([f"{name}_frequency" for name in names], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        return tags


def _hashable(values: pd.Series) -> pd.Series:
    """Values usable as dictionary keys (unhashable ones, e.g. dicts, by their text)."""
    if values.dtype != object:
        return values
    return values.map(lambda v: v if isinstance(v, Hashable) else repr(v))
