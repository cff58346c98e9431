"""Row hashes: how a registry version remembers the rows it trained on (``training_rows.npy``),
so that the next run scores it only on rows it has not seen."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["row_hashes"]

_MISSING = "\0missing"


def _canonical(values: pd.Series) -> pd.Series:
    """Numbers as floats (an int column read as float another day still matches); times and
    durations as microseconds (UTC for times with a zone), not as text whose format depends on
    the other rows; anything else as text, missing values as one marker whatever pandas
    version wrote them."""
    values = values.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        # Microseconds reach year 294,000 (nanoseconds stop at 2262: 9999-12-31 is common).
        return values.dt.as_unit("us").astype("int64")
    if pd.api.types.is_timedelta64_dtype(values):
        return values.dt.as_unit("us").astype("int64")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    return values.astype("string").fillna(_MISSING)


def row_hashes(X: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of ``X`` with its label.

    Parameters
    ----------
    X : DataFrame
        Feature columns, taken in name order.
    labels : ndarray
        The target value of each row (class labels, not their codes).

    Returns
    -------
    ndarray of uint64
        Equal for two rows with the same values and label, also when a numeric column (or the
        label) was read as int in one table and as float in the other.
    """
    frame = pd.DataFrame({str(c): _canonical(X[c]) for c in sorted(X.columns, key=str)},
                         index=range(len(X)))
    frame["\0label"] = _canonical(pd.Series(np.asarray(labels)))
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()
