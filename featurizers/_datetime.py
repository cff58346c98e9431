"""Calendar features from date/time columns (datetime dtype or strings)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from featurizers._base import TableTransformer
from featurizers._times import day_first, parse_times, utc_naive

__all__ = ["DatetimeFeatures", "as_text", "read_dates"]

_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour", "minute")


class DatetimeFeatures(TableTransformer):
    """Expand each date/time column into calendar parts; unparseable values become NaN.

    Parts that are constant in training (e.g. ``hour`` for dates without a time) are left out.

    Parameters
    ----------
    parts : tuple of str, default=("year", "month", "day", "day_of_week", "day_of_year", "hour", \
            "minute")
        Candidate calendar parts, any of pandas' ``Series.dt`` integer attributes.

    Attributes
    ----------
    parts_ : list of list of str
        Per input column, the parts kept.
    day_first_ : list of bool
        Per input column, whether its dates written as 05/03/2024 put the day first (as read
        in training, so that new rows are read the same way).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"d": ["2024-01-31", "2024-02-01", "2025-03-01"]})
    >>> DatetimeFeatures().fit(frame).get_feature_names_out().tolist()
    ['d_year', 'd_month', 'd_day', 'd_day_of_week', 'd_day_of_year']
    """

    def __init__(self, parts: tuple[str, ...] = _PARTS):
        self.parts = parts

    def _table(self, values: pd.Series, parts: list[str], first: bool) -> np.ndarray:
        parsed = read_dates(values, first)
        columns = [getattr(parsed.dt, part).astype("float64").to_numpy() for part in parts]
        return np.column_stack(columns) if columns else np.empty((len(values), 0))

    def fit(self, X, y=None):
        """Choose, per column, the calendar parts that vary in training.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        frame = self._start_fit(X)
        self.parts_ = []
        self.day_first_ = [bool(day_first(as_text(frame.iloc[:, i])))
                           for i in range(frame.shape[1])]
        for i in range(frame.shape[1]):
            table = self._table(frame.iloc[:, i], list(self.parts), self.day_first_[i])
            varying = [
                part
                for j, part in enumerate(self.parts)
                if pd.Series(table[:, j]).nunique(dropna=True) > 1
            ]
            self.parts_.append(varying or [self.parts[0]])
        return self

    def transform(self, X):
        """Return the calendar parts as floats (NaN where a value does not parse).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_parts_kept)
        """
        frame = self._checked_frame(X, "parts_")
        # Models published before day_first_ existed read each date on its own.
        firsts = getattr(self, "day_first_", [False] * len(self.parts_))
        tables = [self._table(frame.iloc[:, i], parts, first)
                  for i, (parts, first) in enumerate(zip(self.parts_, firsts))]
        return np.hstack(tables) if tables else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        """``<column>_<part>`` for each kept part."""
        check_is_fitted(self, "parts_")
        names = self._input_names(input_features)
        return np.asarray(
            [f"{name}_{part}" for name, parts in zip(names, self.parts_) for part in parts],
            dtype=object,
        )


def as_text(values: pd.Series) -> pd.Series:
    """Values as text, missing ones as None.

    Parameters
    ----------
    values : Series

    Returns
    -------
    Series of object
    """
    return values.astype("object").where(values.notna(), None).map(
        lambda v: v if v is None else str(v))


def read_dates(values: pd.Series, first: Optional[bool] = None) -> pd.Series:
    """Values as :class:`DatetimeFeatures` reads them, NaT where one is not a date.

    Parameters
    ----------
    values : Series
        Datetimes (those with a zone are taken in UTC), numbers (seconds since 1970) or text.
    first : bool, optional
        Whether text dates written as 05/03/2024 put the day first (default: as the values
        show, see :func:`~featurizers._times.day_first`).

    Returns
    -------
    Series of datetime64 without a zone
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values):
        parsed = pd.to_datetime(values, errors="coerce", unit="s")
    else:
        parsed = parse_times(as_text(values), first)
    return utc_naive(parsed)
