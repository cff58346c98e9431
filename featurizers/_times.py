"""Reading times written with a zone or an offset, which may change from row to row."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Optional

import numpy as np
import pandas as pd

from featurizers._quiet import ignoring

__all__ = ["day_first", "has_zone", "on_clock_of", "parse_times", "utc_naive", "utc_offsets",
           "wall_clock"]

# An offset after a time of day (never the day of a date such as 2024-03-31).
_OFFSET = re.compile(r"^(.*\d:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp][Mm])?)\s*"
                     r"(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$")

# A date written with the day or the month first (05/03/2024, 5.3.2024, 05-03-2024 10:00,
# 05/03/24).
_UNEVEN = 0.5  # steps between dates whose spread is over half their mean: not a calendar grid
_DAY_MONTH = re.compile(r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?=$|[\sT])")


def day_first(values: pd.Series) -> bool:
    """Whether dates written as 05/03/2024 put the day first: some first number is above 12
    and no second one is (among the distinct values, or 10,000 spread over them: a table
    sorted by date may start with a month's first twelve days). When no number is above 12,
    day first only when month first spaces the dates unevenly and day first less so: the
    first of each month over years (01.11.2019, 01.12.2019, ...) read month first is 11 and
    12 January, then 1 January of the next year. Within a year, the first of each month
    (01/02/2023, 01/03/2023) is also twelve days in a row read the other way: it stays month
    first, as pandas reads it.

    pandas reads each such date on its own, month first unless that fails, so without this
    13/03/2024 is 13 March but 05/03/2024 is 3 May.

    Parameters
    ----------
    values : Series

    Returns
    -------
    bool
    """
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return False
    distinct = values.dropna().drop_duplicates()
    if len(distinct) > 10_000:
        distinct = distinct.iloc[np.linspace(0, len(distinct) - 1, 10_000).astype(int)]
    found = [m for v in distinct if isinstance(v, str) and (m := _DAY_MONTH.match(v))]
    if any(int(m.group(3)) > 12 for m in found):
        return False
    if any(int(m.group(1)) > 12 for m in found):
        return True
    month_first = _unevenness(found, day_first=False)
    return month_first > _UNEVEN and _unevenness(found, day_first=True) < month_first


def _unevenness(found: list[re.Match], day_first: bool) -> float:
    """How unevenly the dates ``found`` follow each other read day first or not: the spread of
    the steps between them over their mean (infinite when fewer than three dates, or some is
    no date, read so; month first wins a tie)."""
    parts = pd.DataFrame([(int(m.group(4)), int(m.group(1)), int(m.group(3))) for m in found],
                         columns=["year", "first", "second"])
    year = parts["year"].where(parts["year"] >= 100,  # pandas' century rule for two digits
                               parts["year"] + np.where(parts["year"] < 69, 2000, 1900))
    day, month = (parts["first"], parts["second"]) if day_first else (parts["second"],
                                                                      parts["first"])
    dates = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}),
                           errors="coerce")
    if dates.isna().any() or dates.nunique() < 3:
        return math.inf
    steps = np.diff(np.sort(dates.unique()).astype("datetime64[s]").astype(np.int64))
    return float(np.std(steps) / np.mean(steps))


def _days_first_as_iso(values: pd.Series, first: Optional[bool]) -> pd.Series:
    """``values`` with day-first dates rewritten year first (``first``: whether they are;
    None: as :func:`day_first` finds)."""
    if not (day_first(values) if first is None else first):
        return values
    return values.map(lambda v: _DAY_MONTH.sub(_month_first, v) if isinstance(v, str) else v)


def _month_first(match: re.Match) -> str:
    day, _, month, year = match.groups()
    # A two-digit year keeps pandas' century rule: month first is how pandas reads it.
    return f"{year}-{month}-{day}" if len(year) == 4 else f"{month}/{day}/{year}"


def _missed(times: pd.Series, values: pd.Series) -> int:
    return int(times.isna().sum() - values.isna().sum())


def parse_times(values: pd.Series, first: Optional[bool] = None) -> pd.Series:
    """Values (text, datetimes or objects) as times, NaT where one is not a time.

    Parameters
    ----------
    values : Series
    first : bool, optional
        Whether dates written as 05/03/2024 put the day first (default: as :func:`day_first`
        finds in ``values``; give what training found when reading new rows).

    Returns
    -------
    Series
        Times with the zone they were written in; values whose UTC offsets differ (ISO times
        across a daylight-saving change, say) cannot share one, so they are all converted to
        UTC, and values without an offset are then taken as UTC.

    Examples
    --------
    >>> times = parse_times(pd.Series(["2026-03-28T10:00+01:00", "2026-03-30T10:00+02:00"]))
    >>> [str(t) for t in times]
    ['2026-03-28 09:00:00+00:00', '2026-03-30 08:00:00+00:00']
    """
    values = _days_first_as_iso(_without_clock_words(values), first)
    try:
        times = _quietly_to_datetime(values)  # objects under pandas 2 for mixed offsets
    except ValueError:  # mixed offsets in text (pandas 3): it asks for one zone
        return pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    if not pd.api.types.is_datetime64_any_dtype(times):
        return pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    if _missed(times, values) > 0:  # datetime objects with mixed zones become NaT silently
        utc = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
        if _missed(utc, values) < _missed(times, values):
            return utc
    return times


def utc_naive(times: pd.Series) -> pd.Series:
    """Times with a zone as UTC without one (each instant on one clock); others as they are.

    Parameters
    ----------
    times : Series of datetime64

    Returns
    -------
    Series of datetime64 without a zone
    """
    if getattr(times.dt, "tz", None) is None:
        return times
    return times.dt.tz_convert("UTC").dt.tz_localize(None)


def _local(value: object) -> object:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        return _OFFSET.sub(r"\1", value.strip())
    return value


def has_zone(values: pd.Series) -> bool:
    """Whether times carry a zone or offset (a zoned dtype, or any of the first 1,000 values).

    Parameters
    ----------
    values : Series

    Returns
    -------
    bool
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz is not None
    return any(getattr(v, "tzinfo", None) is not None
               or (isinstance(v, str) and _OFFSET.match(v.strip()) is not None)
               for v in values.dropna().iloc[:1000])


def utc_offsets(values: pd.Series) -> pd.Series:
    """Each time's UTC offset in minutes (east positive), NaN where a value carries no zone or
    offset, or is not a time.

    Parameters
    ----------
    values : Series
        As for :func:`wall_clock`.

    Returns
    -------
    Series of float

    Examples
    --------
    >>> utc_offsets(pd.Series(["2024-03-31T03:00+02:00", "2024-03-31T01:00Z", "2024-03-31"]))
    0    120.0
    1      0.0
    2      NaN
    dtype: float64
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is None:
            return pd.Series(np.nan, index=values.index)
        wall = values.dt.tz_localize(None)
        return (wall - utc_naive(values)).dt.total_seconds() / 60
    found = {v: _offset_minutes(v) for v in values.dropna().unique()}
    return values.map(found).astype(float)


def on_clock_of(values: pd.Series, offsets: Sequence[float], first: Optional[bool] = None,
                digits: bool = True) -> pd.Series:
    """Times as :func:`wall_clock` reads them, those written at a UTC offset that training
    never saw first moved to the training's clock.

    Dropping the offset keeps a local midnight a midnight across a daylight-saving change, but
    ``01:00Z`` sent to a model trained on ``+02:00`` times would be read two hours early.

    Parameters
    ----------
    values : Series
        As for :func:`wall_clock`.
    offsets : sequence of float
        The UTC offsets (minutes) of the training times; empty: none had one, nothing moves.
    first, digits
        As for :func:`wall_clock`.

    Returns
    -------
    Series of datetime64 without a zone

    Raises
    ------
    ValueError
        A time at an offset training did not have, when training had several (its zone's
        daylight-saving offsets): which clock the time is on cannot be known. It names the row.

    Notes
    -----
    Training at one offset: a time one hour off it is taken as the same zone's daylight-saving
    change and read on its own clock; a time at any other offset is moved to the training's.

    Examples
    --------
    >>> times = pd.Series(["2024-06-01T22:00Z", "2024-06-02T01:00+02:00"])
    >>> [str(t) for t in on_clock_of(times, [120.0])]
    ['2024-06-02 00:00:00', '2024-06-02 01:00:00']
    """
    wall = wall_clock(values, first, digits)
    if not len(offsets):
        return wall
    given = utc_offsets(values)
    foreign = given.notna() & ~given.isin(list(offsets))
    if not foreign.any():
        return wall
    if len(offsets) > 1:
        row = foreign.idxmax()
        shown = " and ".join(_offset_text(o) for o in sorted(offsets))
        raise ValueError(f"row {row}: {values[row]!r} is at UTC offset {_offset_text(given[row])}"
                         f", but the training times were at {shown}; write the times as in "
                         "training, on their local clock and offset")
    (trained,) = offsets
    moved = foreign & ((given - trained).abs() != 60)
    return wall.where(~moved, wall + pd.to_timedelta(trained - given.where(moved, trained),
                                                     unit="min"))


def _offset_text(minutes: float) -> str:
    sign, minutes = "+" if minutes >= 0 else "-", abs(int(minutes))
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _offset_minutes(value: object) -> float:
    if isinstance(value, str):
        if _OFFSET.match(value.strip()) is None:
            return math.nan
        try:
            value = pd.Timestamp(value.strip())
        except (ValueError, TypeError):
            return math.nan
    offset = value.utcoffset() if isinstance(value, datetime) else None
    return math.nan if offset is None else offset.total_seconds() / 60


def _one(value: object) -> pd.Timestamp:
    """One value on its own clock, NaT when it is not a time (or its zone is a name, such as
    CET, which pandas does not read)."""
    try:
        stamp = pd.Timestamp(_local(value))
    except (ValueError, TypeError):
        return pd.NaT
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def wall_clock(values: pd.Series, first: Optional[bool] = None,
               digits: bool = True) -> pd.Series:
    """Times on the clock each was written in: a zone or offset is dropped, not converted.

    Local midnights stay midnights across a daylight-saving change, so daily or monthly data
    keep their grid; an hour repeated when clocks go back becomes two rows for one time.

    Parameters
    ----------
    values : Series
        Text, datetimes or datetime64 (with or without a zone); or whole numbers, read as the
        text of their digits: years (2024) and dates written 20240131 are times, other numbers
        (period numbers, epoch seconds) are not.
    first : bool, optional
        As for :func:`parse_times`.
    digits : bool, default=True
        Read whole numbers as their digits (False: as nanoseconds since 1970, as forecasters
        published before did).

    Returns
    -------
    Series of datetime64 without a zone, NaT where a value is not a time

    Examples
    --------
    >>> times = wall_clock(pd.Series(["2024-03-30T00:00+01:00", "2024-03-31T00:00+01:00",
    ...                               "2024-04-01T00:00+02:00", "2024-04-02"]))
    >>> [str(t.date()) for t in times], {t.hour for t in times}
    (['2024-03-30', '2024-03-31', '2024-04-01', '2024-04-02'], {0})
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return _zoneless(values)
    values = _days_first_as_iso(_without_clock_words(_digits(values) if digits else values),
                                first)
    for attempt in (values, values.map(_local)):
        try:
            times = _quietly_to_datetime(attempt)
        except ValueError:  # mixed offsets (pandas 3)
            continue
        if pd.api.types.is_datetime64_any_dtype(times) and _missed(times, values) == 0:
            return _zoneless(times)
    # Offsets the pattern cannot strip ("GMT+1", "+0100 (CET)"), or values that are not times:
    # value by value.
    return pd.to_datetime(values.map(_one))


def _digits(values: pd.Series) -> pd.Series:
    """Numbers as text (whole ones without ".0"): pandas reads a number as nanoseconds since
    1970, so that 2024 and 20240131 would be times a few microseconds apart."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return values
    return values.map(lambda v: v if pd.isna(v) else str(int(v)) if float(v).is_integer()
                      else str(v))


def _without_clock_words(values: pd.Series) -> pd.Series:
    """``values`` with "now" and "today" missing: pandas reads them as the current time, so a
    prediction from such a row would change with the clock."""
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values
    words = values.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    clock = words.isin(("now", "today"))
    return values.mask(clock) if clock.any() else values


def _zoneless(times: pd.Series) -> pd.Series:
    return times.dt.tz_localize(None) if times.dt.tz is not None else times


def _quietly_to_datetime(values: pd.Series) -> pd.Series:
    # pandas 2 warns, and returns objects, for mixed offsets: the caller checks the dtype.
    with ignoring(FutureWarning, "In a future version of pandas, parsing datetimes with mixed "
                  "time zones"):
        return pd.to_datetime(values, errors="coerce", format="mixed")
