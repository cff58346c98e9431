"""How the model reads a value in a numeric column: the one definition every check shares."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["WHOLE_NUMBER", "as_numbers", "not_numbers", "number_share"]

WHOLE_NUMBER = re.compile(r"^\s*[+-]?\d+\s*$")  # text of a whole number (str.match)
_BOOLEAN_WORDS = {"True": "1", "False": "0", "true": "1", "false": "0", "TRUE": "1",
                  "FALSE": "0"}
# Amounts as people write them: a currency sign before or after, a percent sign after, digits
# grouped in thousands by commas (1,234.5) or by points (1.234,5).
_AMOUNT_LIKE = r"^[+-]?\s*[$€£¥]?\s*[+-]?\d[\d.,]*\s*[$€£¥%]?$"
_SIGN_BEFORE = re.compile(r"^([+-]?)\s*[$€£¥]\s*")
_SIGN_AFTER = re.compile(r"\s*[$€£¥%]$")
_COMMA_GROUPS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_POINT_GROUPS = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$|^[+-]?\d{1,3},\d+$")


def as_numbers(values: pd.Series) -> pd.Series:
    """``values`` as the model reads a numeric column: floats, booleans as 0/1 (also written
    ``"True"``/``"false"``, as a column of booleans is when one stray value makes pandas read it
    as text), text parsed after stripping spaces, amounts as people write them (``"$17,463"``,
    ``"1.234,50 €"``, ``"45%"`` as 45), anything else (``"n/a"``, ``"?"``) missing, and so
    are infinities (a ratio divided by zero), which no estimator takes.

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
    >>> as_numbers(pd.Series(["$17,463", "-$1,200.50", "1.234,5 €", "45%", "12,5"])).tolist()
    [17463.0, -1200.5, 1234.5, 45.0, 12.5]
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
        return numbers.where(np.isfinite(numbers))
    as_text = values.astype("object").map(
        lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v
    )
    text = as_text.astype(str).str.strip()
    parsed = pd.to_numeric(text.replace(_BOOLEAN_WORDS), errors="coerce").astype("float64")
    unread = parsed.isna() & values.notna()
    unread &= text.str.match(_AMOUNT_LIKE)
    if unread.any():  # each distinct text once: a category column repeats a few values
        amounts = {v: _amount(v) for v in text[unread].unique()}
        parsed[unread] = pd.to_numeric(text[unread].map(amounts), errors="coerce")
    return parsed.where(np.isfinite(parsed)).mask(values.isna())


def _amount(text: str) -> str:
    """``text`` without currency or percent signs and thousands groups (else as it was)."""
    bare = _SIGN_AFTER.sub("", _SIGN_BEFORE.sub(r"\1", text))
    if _COMMA_GROUPS.match(bare):
        return bare.replace(",", "")
    if _POINT_GROUPS.match(bare):
        return bare.replace(".", "").replace(",", ".")
    return bare


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
