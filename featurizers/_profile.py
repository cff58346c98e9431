"""Column profiling: decide, per raw column, which featurizer handles it (or why it is dropped)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Literal, Optional

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array

from featurizers._numbers import WHOLE_NUMBER, number_share
from featurizers._times import parse_times

__all__ = ["ColumnKind", "ColumnProfile", "profile_columns"]

ColumnKind = Literal[
    "numeric", "categorical", "high_cardinality", "datetime", "text", "empty", "constant", "id"
]
DROPPED_KINDS = frozenset({"empty", "constant", "id"})

_DATE_HINT = re.compile(r"\d{1,4}[-/.:]\d{1,2}")
_ID_NAME = re.compile(r"(^|_|\b)(id|uuid|guid|key)$", re.IGNORECASE)
_SAMPLE = 500
_ID_SPAN = 10  # a counter over a tenth of a table's rows still counts them
_WORD = re.compile(r"\b(?!\d+\b)\w\w+\b")  # words of two characters or more, not numbers


@dataclass(frozen=True)
class ColumnProfile:
    """What profiling found about one raw column."""

    name: str
    kind: ColumnKind
    dtype: str
    missing_fraction: float
    n_unique: int
    reason: str

    def to_dict(self) -> dict:
        """Plain-dict form for reports and artifacts."""
        return asdict(self)


def _non_null_sample(values: pd.Series, seed: int = 0) -> pd.Series:
    present = values.dropna()
    if len(present) > _SAMPLE:
        present = present.sample(_SAMPLE, random_state=seed)
    return present


def _parses_as_datetime(present: pd.Series) -> bool:
    as_text = present.astype(str)
    if as_text.empty or as_text.str.contains(_DATE_HINT).mean() < 0.95:
        return False
    parsed = parse_times(as_text)
    return bool(parsed.notna().mean() >= 0.95)


def _shared_words(distinct: pd.Series) -> tuple[float, int]:
    """How many words (two characters or more, not numbers) a value shares with other values,
    on average, and how many such words there are: about 2 of 12 for "silk shirt 48213" among
    other clothes; 1 for a code ("ORD 48213") or a name ("Mary Kowalski")."""
    words = distinct.astype(str).str.lower().str.findall(_WORD)
    in_values = Counter(word for value in words for word in set(value))
    shared = {word for word, count in in_values.items() if count >= 2}
    per_value = sum(word in shared for value in words for word in value) / max(len(words), 1)
    return per_value, len(shared)


def _short_text(present: pd.Series) -> Optional[str]:
    """The reason to read a column of distinct values as text rather than IDs, or None: its
    values are phrases (spaces between words) that mostly share two words or more with other
    values, from a vocabulary of ten or more such words (not a code's few fixed parts)."""
    distinct = present.astype(str).drop_duplicates()
    if distinct.str.split().str.len().mean() < 2:
        return None  # codes, e-mail addresses, URLs
    per_value, vocabulary = _shared_words(distinct)
    if per_value < 2 or vocabulary < 10:
        return None
    return (f"short free text (distinct phrases sharing {per_value:.1f} words with others on "
            "average): TF-IDF")


def _kind_of_number_text(name: str, values: pd.Series) -> tuple[ColumnKind, str]:
    """Whole numbers written as text (IDs from a database's text column, say) are judged as
    the same numbers stored as integers would be: distinct on every row (of 50 or more) and
    sorted, or named like an ID. Decimals (``52000.00``) are not, as floats never are."""
    text = values.astype(str)
    # As Python integers: a 20-digit ICCID is exact.
    if (values.notna().all() and text.str.match(WHOLE_NUMBER).all()
            and _counts_rows(name, text.map(int))):
        return "id", "distinct whole numbers written as text, counting rows: ID-like, dropped"
    return "numeric", "text holding numbers: parsed as numbers"


def _kind_of_text_column(
    name: str, values: pd.Series, present: pd.Series, n_unique: int, max_onehot: int
) -> tuple[ColumnKind, str]:
    if number_share(present) >= 0.95:
        return _kind_of_number_text(name, values)
    if _parses_as_datetime(present):
        return "datetime", "date/time strings: calendar parts"
    n_present = int(values.notna().sum())
    mean_tokens = float(present.astype(str).str.split().str.len().mean())
    if mean_tokens >= 4 and n_unique > 0.5 * min(n_present, _SAMPLE):
        return "text", f"free text ({mean_tokens:.1f} words on average): TF-IDF"
    if n_present >= 50 and n_unique >= 0.95 * n_present:
        short_text = _short_text(present)
        if short_text is not None:
            return "text", short_text
        return "id", "a distinct value on (almost) every row: ID-like, dropped"
    if n_unique <= max_onehot:
        return "categorical", f"{n_unique} categories: one-hot"
    return "high_cardinality", f"{n_unique} categories: target and frequency encoding"


def _counts_rows(name: str, integers: pd.Series) -> bool:
    """Whether whole numbers are row IDs: distinct on every row that has one, of 50 or more,
    and named like an ID or sorted as a counter is: by equal steps, or spanning at most
    ``_ID_SPAN`` times as many numbers as there are rows (a table sorted by a feature whose
    values are distinct, incomes say, keeps it)."""
    present = integers.dropna()
    if len(present) < 50 or present.nunique() != len(present):
        return False
    if _ID_NAME.search(name) is not None:
        return True
    if not (present.is_monotonic_increasing or present.is_monotonic_decreasing):
        return False
    steps = np.diff(present.to_numpy(dtype=object))  # Python integers: 20-digit ICCIDs exact
    return len(set(steps)) == 1 or abs(sum(steps)) <= _ID_SPAN * (len(present) - 1)


def _kind_of_numeric_column(name: str, values: pd.Series) -> tuple[ColumnKind, str]:
    is_integer = pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if is_integer and _counts_rows(name, values):
        return "id", "distinct integers counting rows: ID-like, dropped"
    return "numeric", "numbers: median imputation with a missing indicator"


def _profile_one(name: str, values: pd.Series, max_onehot: int) -> ColumnProfile:
    missing = float(values.isna().mean()) if len(values) else 1.0
    dtype = str(values.dtype)
    if missing >= 1.0:
        return ColumnProfile(name, "empty", dtype, missing, 0, "no values: dropped")
    n_unique = int(values.nunique(dropna=True))
    if n_unique <= 1 and missing == 0.0:
        return ColumnProfile(name, "constant", dtype, missing, n_unique, "one value: dropped")
    if pd.api.types.is_bool_dtype(values):
        kind, reason = "numeric", "booleans: 0/1"
    elif pd.api.types.is_numeric_dtype(values):
        kind, reason = _kind_of_numeric_column(name, values)
    elif pd.api.types.is_datetime64_any_dtype(values):
        kind, reason = "datetime", "timestamps: calendar parts"
    else:
        kind, reason = _kind_of_text_column(name, values, _non_null_sample(values), n_unique,
                                            max_onehot)
    return ColumnProfile(name, kind, dtype, missing, n_unique, reason)


def profile_columns(frame: pd.DataFrame, max_onehot: int = 20) -> dict[str, ColumnProfile]:
    """Profile every column of ``frame`` (features only: leave the target out).

    Parameters
    ----------
    frame : pandas.DataFrame
        The raw feature columns.
    max_onehot : int, default=20
        Categorical columns with more distinct values than this are target and frequency encoded.

    Returns
    -------
    dict of str to ColumnProfile
        In column order. Kinds ``empty``, ``constant`` and ``id`` are dropped by the featurizer.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [30, 41, None], "city": ["Oslo", "Rome", "Oslo"]})
    >>> {name: p.kind for name, p in profile_columns(frame).items()}
    {'age': 'numeric', 'city': 'categorical'}
    """
    return {str(name): _profile_one(str(name), frame[name], max_onehot) for name in frame.columns}


def kinds(profiles: dict[str, ColumnProfile]) -> dict[str, str]:
    """``{column: kind}`` for the columns the featurizer keeps."""
    return {name: p.kind for name, p in profiles.items() if p.kind not in DROPPED_KINDS}


def as_frame(X: object) -> pd.DataFrame:
    """Accept a DataFrame as is; name the columns of an array ``x0, x1, ...``."""
    if isinstance(X, pd.DataFrame):
        return X
    array = check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False)
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
