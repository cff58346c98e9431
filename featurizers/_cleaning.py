"""Type-cleaning steps that make raw columns safe for the encoders behind them."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from featurizers._base import TableTransformer
from featurizers._numbers import as_numbers

__all__ = ["NA_TEXT", "CategoryStrings", "ToNumeric", "category_text", "read_as_missing"]

MISSING = "__missing__"
# What pandas' CSV reader reads as missing (its default ``na_values``): the same value sent as
# JSON or put in a DataFrame by hand must mean to the model what it meant in the training CSV.
NA_TEXT = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                     "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                     "nan", "null"})


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

    A text that pandas' CSV reader takes as missing (``"NA"``, ``"None"``, ``"null"``, ``""``
    ...) is missing here too, unless it was a category in training (a Parquet file can hold
    ``"NA"`` as a value).

    Attributes
    ----------
    na_categories_ : list of list of str
        Per column, the missing-value texts that were categories in training.

    Examples
    --------
    >>> import pandas as pd
    >>> strings = CategoryStrings().fit(pd.DataFrame({"c": ["a", None, 3]}))
    >>> strings.transform(pd.DataFrame({"c": ["a", "NA", 3.0]}))
    array([['a'],
           ['__missing__'],
           ['3']], dtype=object)
    """

    def fit(self, X, y=None):
        """Record the input columns and the missing-value texts that are categories.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        frame = self._start_fit(X)
        self.na_categories_ = [
            sorted(NA_TEXT & set(frame.iloc[:, i].dropna().astype("object").map(category_text)))
            for i in range(frame.shape[1])]
        return self

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
        # Fitted before missing-value texts were read as missing: every text stays a category.
        kept = getattr(self, "na_categories_", None)
        out = np.empty(frame.shape, dtype=object)
        for i in range(frame.shape[1]):
            values = frame.iloc[:, i]
            text = values.astype("object").map(category_text)
            missing = values.isna() if kept is None else read_as_missing(values, text, kept[i])
            out[:, i] = np.where(missing.to_numpy(), MISSING, text.to_numpy())
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        return tags


def read_as_missing(values: pd.Series, text: pd.Series, categories: Collection[str]) -> pd.Series:
    """Where ``values`` are missing, or are a text the CSV reader reads as missing that is not
    one of ``categories``.

    Parameters
    ----------
    values : pandas.Series
        The raw values.
    text : pandas.Series
        The same values as category text (:func:`category_text`).
    categories : collection of str
        The categories seen in training.

    Returns
    -------
    pandas.Series of bool
    """
    unseen = NA_TEXT.difference(categories)
    return values.isna() | text.isin(unseen)


def category_text(value: object) -> str:
    """A category as the model reads it: a whole float as an integer, anything else as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3.0 read from one file and 3 from another are one category
    return str(value)
