"""The frequency of a forecasting table's series, and the season that follows from it."""

from __future__ import annotations

import re
from collections import Counter
from typing import Optional

import numpy as np
import pandas as pd

from tasks.errors import AutoMLInputError

__all__ = ["infer_frequency", "replacement", "season_of"]

_SEASONS = {"h": 24, "H": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "SM": 24,
            "Q": 4, "QS": 4, "QE": 4, "A": 1, "Y": 1, "YS": 1, "YE": 1, "AS": 1,
            "min": 60, "T": 60, "s": 60, "S": 60}


def season_of(freq: str) -> int:
    """Season length for a pandas frequency: 24 hourly, 7 daily, 52 weekly, 12 monthly ..."""
    offset = pd.tseries.frequencies.to_offset(freq)
    code = offset.rule_code.split("-")[0]
    base = _SEASONS.get(code) or _SEASONS.get(code.rstrip("ES")) or 1
    return max(1, base // offset.n) if offset.n > 1 and base % offset.n == 0 else base

# Aliases pandas 3 no longer takes: periods that became a start (..S) or an end (..E) alias, and
# units that became lower case.
_PERIODS = {"M": "M", "Q": "Q", "Y": "Y", "A": "Y", "BM": "BM", "BQ": "BQ", "BY": "BY",
            "BA": "BY", "SM": "SM"}
_UNITS = {"H": "h", "BH": "bh", "CBH": "cbh", "T": "min", "S": "s", "L": "ms", "U": "us",
          "N": "ns"}


def replacement(freq: str) -> Optional[str]:
    """What to give instead of a frequency pandas does not take, when that is clear.

    Parameters
    ----------
    freq : str
        The frequency given, e.g. ``"M"``, ``"2M"``, ``"Q-DEC"``, ``"H"`` or ``"ms"``.

    Returns
    -------
    str or None
        ``"2MS (periods dated by their first day) or 2ME (by their last)"`` for ``"2M"``, ``"h"``
        for ``"H"``, ``"W-SUN"`` for ``"w-sun"``; None when nothing close is a frequency.
    """
    found = re.fullmatch(r"\s*(\d*)([A-Za-z]+)(-[A-Za-z]+)?\s*", freq)
    if not found:
        return None
    n, base, anchor = found.group(1), found.group(2), (found.group(3) or "").upper()
    stem = _PERIODS.get(base.upper())
    if base == "m":
        return f"{n}MS or {n}ME (months dated by their first or last day) or {n}min (minutes)"
    if stem:
        return (f"{n}{stem}S{anchor} (periods dated by their first day) or {n}{stem}E{anchor} "
                "(by their last)")
    if base in _UNITS:
        return n + _UNITS[base] + anchor
    for spelled in (base.upper(), base.lower()):
        try:
            pd.tseries.frequencies.to_offset(n + spelled + anchor)
        except ValueError:
            continue
        return n + spelled + anchor
    return None


def infer_frequency(times: dict[tuple, pd.DatetimeIndex]) -> str:
    """The frequency of the series: pandas' inference on the longest gap-free series, else the
    one it infers most often on three timestamps in a row (gaps leave the others), else the most
    common step between timestamps. Daily data that spans weekends without a timestamp on one
    is business days (``B``): days missing from it are holidays, not weekends."""
    found = _gapped_frequency(times)
    return "B" if found == "D" and _weekdays_only(times) else found


def _weekdays_only(times: dict[tuple, pd.DatetimeIndex]) -> bool:
    present = [s for s in times.values() if len(s)]
    return (any(s.max() - s.min() >= pd.Timedelta(days=14) for s in present)
            and all(bool((s.day_of_week < 5).all()) for s in present))


def _gapped_frequency(times: dict[tuple, pd.DatetimeIndex]) -> str:
    longest = sorted(times.values(), key=len, reverse=True)[:20]
    for stamps in longest:
        if len(stamps) >= 3:
            inferred = _infer_freq(stamps)
            if inferred:
                return inferred
    # Read as pandas reads them: a 7-day step is W-SUN (not 7D, season 1), a month MS (not 31D).
    runs = Counter(found for stamps in longest[:5] for i in range(min(len(stamps) - 2, 200))
                   if (found := _infer_freq(stamps[i:i + 3])))
    if runs:
        return runs.most_common(1)[0][0]
    # In nanoseconds whatever the parsed unit (pandas 3 reads text as microseconds).
    steps = pd.Series(np.concatenate([np.diff(s.as_unit("ns").asi8)
                                      for s in times.values() if len(s) > 1]))
    if steps.empty:
        raise AutoMLInputError("cannot infer the frequency: no series has two timestamps; give "
                               "--frequency")
    return pd.tseries.frequencies.to_offset(pd.Timedelta(int(steps.mode().iloc[0]))).freqstr


def _infer_freq(stamps: pd.DatetimeIndex) -> Optional[str]:
    try:  # pandas 3 returns an offset under this option, and warns without it
        with pd.option_context("future.infer_freq_returns_offset", True):
            offset = pd.infer_freq(stamps)
    except (KeyError, pd.errors.OptionError):  # pandas 2: a string already
        return pd.infer_freq(stamps)
    return None if offset is None else offset.freqstr
