"""How the model reads a value in a numeric column: the one definition every check shares."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["WHOLE_NUMBER", "as_numbers", "not_numbers", "number_share"]

WHOLE_NUMBER = re.compile(r"^\s*[+-]?\d+\s*$")  # text of a whole number (str.match)
_BOOLEAN_WORDS = {"True": "1", "False": "0", "true": "1", "false": "0", "TRUE": "1",
                  "FALSE": "0"}


def as_numbers(values: pd.Series) -> pd.Series:
    """``values`` as the model reads a numeric column: floats, booleans as 0/1 (also written
    ``"True"``/``"false"``, as a column of booleans is when one stray value makes pandas read it
    as text), text parsed after stripping spaces, anything else (``"n/a"``, ``"?"``) missing,
    and so are infinities (a ratio divided by zero), which no estimator takes.

    Parameters
    ----------
    values : Series

    Returns
    -------
    Series of float64, with the index of ``values``

    Examples
    --------
    >>> import pandas as pd
    >>> as_numbers(pd.Series([" 5 ", "?", True, None, "False", "-inf"], dtype=object)).tolist()
    [5.0, nan, 1.0, nan, 0.0, nan]
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
        return numbers.where(np.isfinite(numbers))
    as_text = values.astype("object").map(
        lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v
    )
    text = as_text.astype(str).str.strip()
    parsed = pd.to_numeric(text.replace(_BOOLEAN_WORDS), errors="coerce").astype("float64")
    return parsed.where(np.isfinite(parsed)).mask(values.isna())


def not_numbers(values: pd.Series) -> pd.Series:
    """The present values of ``values`` that the model reads as missing in a numeric column.

    Parameters
    ----------
    values : Series

    Returns
    -------
    Series
        A subset of ``values``, unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> not_numbers(pd.Series(["1", " 2 ", "n/a", None])).tolist()
    ['n/a']
    """
    return values[values.notna() & as_numbers(values).isna()]


def number_share(present: pd.Series) -> float:
    """The share of ``present`` (values, none missing) that are numbers or text holding one,
    for deciding whether a column is numeric: booleans, also written as text, do not count (a
    column of True and False is two categories).

    Examples
    --------
    >>> import pandas as pd
    >>> number_share(pd.Series(["1", " 2 ", "n/a", True], dtype=object))
    0.5
    """
    if present.empty:
        return 0.0
    booleans = present.map(lambda v: isinstance(v, (bool, np.bool_))
                           or (isinstance(v, str) and v.strip() in _BOOLEAN_WORDS))
    return 1.0 - (len(not_numbers(present)) + int(booleans.sum())) / len(present)
