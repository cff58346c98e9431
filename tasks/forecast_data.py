"""Forecasting input: validate a long table (Great Expectations + guardrails) into a regular panel.

The table holds a time column, zero or more series-id columns, the target and optional
known-future features. :func:`prepare_panel` checks it, infers the frequency and the season,
puts every series on a regular grid (gaps filled by the stated policy) and sets short series
aside by the ``short_series`` policy, with every decision in the guardrails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from featurizers import day_first, has_zone, utc_offsets, wall_clock
from featurizers._cleaning import category_text
from tasks.errors import AutoMLInputError, listed, shown
from tasks.frequency import infer_frequency, replacement, season_of
from tasks.guardrails import Guardrail
from tasks.load import check_named_columns, data_fingerprint
from tasks.settings import TrainSettings
from tasks.validate import _context, check_has_rows, great_expectations

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["Panel", "PreparedPanel", "build_forecast_suite", "min_history", "prepare_panel",
           "prepare_panel_task"]

CONTRACT_MAX_SERIES = 20_000  # series ids listed in the scoring contract

@dataclass
class Panel:
    """Regular series: ``values[i]`` is series ``keys[i]``, one value per period up to ``ends[i]``.

    ``features[i]`` holds the known-future feature values of the same periods (n_periods, k).
    ``filled[i]`` marks the periods that interpolation filled (None: none were, or the gaps were
    filled otherwise).
    """

    keys: list[tuple]
    values: list[np.ndarray]
    ends: list[pd.Timestamp]
    freq: str
    season: int
    feature_names: list[str] = field(default_factory=list)
    features: Optional[list[np.ndarray]] = None
    filled: Optional[list[np.ndarray]] = None

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, index: list[int]) -> "Panel":
        """The series at positions ``index``."""
        def pick(parts: Optional[list[np.ndarray]]) -> Optional[list[np.ndarray]]:
            return None if parts is None else [parts[i] for i in index]

        return Panel([self.keys[i] for i in index], [self.values[i] for i in index],
                     [self.ends[i] for i in index], self.freq, self.season, self.feature_names,
                     pick(self.features), pick(self.filled))

    def history(self, i: int, drop_last: int) -> np.ndarray:
        """Series ``i`` without its last ``drop_last`` periods, as it was known then: periods at
        its end that interpolation filled from a later value hold the last value before them."""
        y = self.values[i][:max(0, len(self.values[i]) - drop_last)]
        if self.filled is None or not len(y) or not self.filled[i][len(y) - 1]:
            return y
        known = np.flatnonzero(~self.filled[i][:len(y)])
        if not len(known):
            return y
        y = y.copy()
        y[known[-1] + 1:] = y[known[-1]]
        return y

    def cut(self, drop_last: int) -> "Panel":
        """Every series without its last ``drop_last`` periods (a backtest origin), as
        :meth:`history` gives them."""
        offset = pd.tseries.frequencies.to_offset(self.freq)

        def cut(parts: Optional[list[np.ndarray]]) -> Optional[list[np.ndarray]]:
            return None if parts is None else [f[:max(0, len(f) - drop_last)] for f in parts]

        return Panel(self.keys, [self.history(i, drop_last) for i in range(len(self))],
                     [e - drop_last * offset for e in self.ends], self.freq, self.season,
                     self.feature_names, cut(self.features), cut(self.filled))


@dataclass
class PreparedPanel:
    """The validated panel, the short series set aside, and what was found on the way.

    ``dropped``: the series left out of the model, those with no target value (``empty``) and,
    with ``short_series="drop"``, the short ones.
    """

    panel: Panel
    short: Panel
    dropped: list[tuple]
    time_column: str
    series_id: list[str]
    target: str
    horizon: int
    guardrails: list[Guardrail]
    suite: dict[str, Any]
    fingerprint: str
    n_rows: int
    n_filled: int
    empty: list[tuple] = field(default_factory=list)
    day_first: bool = False  # the time column's dates written as 05/03/2024 put the day first
    utc_offsets: list[float] = field(default_factory=list)  # of the times, in minutes


def min_history(horizon: int, season: int) -> int:
    """Periods a series needs for one backtest window: the horizon plus a little to fit on."""
    return horizon + max(3, min(season, 2 * horizon))


def build_forecast_suite(frame: pd.DataFrame, settings: TrainSettings) -> gx.ExpectationSuite:
    """Hard checks (``meta.hard``): the named columns exist, the time column and the series ids
    are never empty, and no series has two rows for one time. The scoring contract
    (``meta.contract``): the time, series-id and known-feature columns, the series trained on and
    the known features' ranges."""
    _context()
    gx = great_expectations()
    ex = gx.expectations
    hard = {"hard": True}
    suite = gx.ExpectationSuite(name=f"automl-forecast-{settings.target}")
    inputs = [settings.time_column, *settings.series_id, *settings.known_features]
    for column in [settings.target, *inputs]:
        meta = dict(hard)
        if column in inputs and column in frame.columns:  # the scoring contract, too
            meta.update(contract=True, dtype=str(frame[column].dtype))
        suite.add_expectation(ex.ExpectColumnToExist(column=column, meta=meta))
    for column in settings.series_id:
        seen = frame[column].dropna().unique() if column in frame.columns else []
        if 0 < len(seen) <= CONTRACT_MAX_SERIES:  # a series never trained on is drift
            # As scoring compares them: 101 and 101.0 read from another file are one series.
            values = sorted({category_text(v.item() if isinstance(v, np.generic) else v)
                             for v in seen})
            suite.add_expectation(ex.ExpectColumnValuesToBeInSet(
                column=column, value_set=values, meta={"contract": True}))
    for column in settings.known_features:
        present = (pd.to_numeric(frame[column], errors="coerce").dropna()
                   if column in frame.columns else [])
        if len(present):
            suite.add_expectation(ex.ExpectColumnValuesToBeBetween(
                column=column, min_value=float(present.min()), max_value=float(present.max()),
                meta={"contract": True}))
    for column in [settings.time_column, *settings.series_id]:
        suite.add_expectation(ex.ExpectColumnValuesToNotBeNull(column=column, meta=hard))
    if settings.series_id:
        suite.add_expectation(ex.ExpectCompoundColumnsToBeUnique(
            column_list=[*settings.series_id, settings.time_column], meta=hard))
    else:  # one series; GE's compound check needs two columns
        suite.add_expectation(ex.ExpectColumnValuesToBeUnique(column=settings.time_column,
                                                              meta=hard))
    return suite


def _check_unique_times(frame: pd.DataFrame, keys: list[str], time_column: str) -> None:
    twice = frame[frame.duplicated(keys, keep=False)]
    if len(twice):
        first = twice.iloc[0]
        row = ", ".join(f"{time_column}={first[k]}" if k == "__time" else f"{k}={shown(first[k])}"
                        for k in keys)
        same = twice[(twice[keys] == first[keys]).all(axis=1)][time_column]
        # Written differently yet one time: offsets that the local clock dropped.
        hint = (" (times with a zone or offset are read on their local clock, which repeats an "
                "hour when clocks go back: give such a time column in UTC)"
                if same.astype(str).nunique() > 1 and has_zone(same) else "")
        raise AutoMLInputError(f"duplicate timestamps within a series: {row} appears more than "
                               f"once; aggregate or drop the repeated rows{hint}")


def _run_forecast_suite(frame: pd.DataFrame, suite: gx.ExpectationSuite,
                        settings: TrainSettings) -> None:
    # GE would only say that an expectation failed
    check_named_columns(list(frame.columns), settings.named_columns, settings.target)
    context = _context()
    asset = context.data_sources.add_pandas("automl").add_dataframe_asset("forecast")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame})
    for result in batch.validate(suite).results:
        if result.success or not result.expectation_config.meta.get("hard"):
            continue
        kind, kwargs = result.expectation_config.type, result.expectation_config.kwargs
        if kind == "expect_column_values_to_not_be_null":
            raise AutoMLInputError(f"column {kwargs['column']!r} has empty values; every row "
                                   "needs a time and its series ids")
        if kind in {"expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"}:
            _check_unique_times(frame, [*settings.series_id, settings.time_column],
                                settings.time_column)
        raise AutoMLInputError(f"data check {kind} failed on {kwargs}")


def _parse_times(frame: pd.DataFrame, column: str, first: bool) -> pd.Series:
    values = frame[column]
    parsed = wall_clock(values, first)
    bad = values[parsed.isna() & values.notna()]
    if len(bad):
        numbers = (" (numbers are read as years, 2024, or as dates written 20240131: write "
                   "period numbers or epoch seconds as dates)"
                   if pd.api.types.is_numeric_dtype(values) else "")
        raise AutoMLInputError(f"time column {column!r} has values that are not times, such as "
                               f"{shown(bad.iloc[0])}{numbers}; fix them or choose another "
                               "--time-column")
    return parsed


def _regular(group: pd.DataFrame, settings: TrainSettings, freq: str,
             key: tuple) -> tuple[np.ndarray, Optional[np.ndarray], pd.Timestamp, np.ndarray]:
    stamps = pd.DatetimeIndex(group["__time"])
    grid = pd.date_range(stamps[0], stamps[-1], freq=freq)
    if not stamps.isin(grid).all():
        odd = stamps[~stamps.isin(grid)][0]
        on_grid = ", ".join(str(t) for t in pd.date_range(stamps[0], periods=2, freq=freq))
        named = ", ".join(f"{c}={shown(v)}" for c, v in zip(settings.series_id, key))
        raise AutoMLInputError(f"{'series ' + named if named else 'the series'} has time {odd}, "
                               f"which is not on the {freq!r} grid ({on_grid}, ...); give the "
                               "right --frequency or align the times")
    target = group.set_index("__time")[settings.target].reindex(grid)
    missing = target.isna().to_numpy()
    if settings.fill_gaps == "interpolate":
        target = target.interpolate(limit_direction="both")
    elif settings.fill_gaps == "forward":
        target = target.ffill().bfill()
    else:
        target = target.fillna(0.0)
    features = None
    if settings.known_features:
        features = (group.set_index("__time")[settings.known_features].reindex(grid).ffill()
                    .bfill().to_numpy(dtype=float))
    return target.to_numpy(dtype=float), features, grid[-1], missing


def prepare_panel(frame: pd.DataFrame, settings: TrainSettings) -> PreparedPanel:
    """Validate the long table and turn it into a :class:`PreparedPanel`.

    Raises
    ------
    AutoMLInputError
        One line naming the column or setting at fault, before any training starts.
    """
    check_has_rows(frame)
    suite = build_forecast_suite(frame, settings)
    _run_forecast_suite(frame, suite, settings)
    target = pd.to_numeric(frame[settings.target], errors="coerce")
    bad = frame[settings.target][target.isna() & frame[settings.target].notna()]
    if len(bad):
        raise AutoMLInputError(f"target {settings.target!r} has non-numeric values such as "
                               f"{bad.iloc[0]!r}; forecasting needs numbers")
    if not np.isfinite(target.dropna()).all():
        raise AutoMLInputError(f"target {settings.target!r} has infinite values; replace them")
    for column in settings.known_features:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise AutoMLInputError(f"known-future feature {column!r} is not numeric; encode it "
                                   "as numbers")
    first = day_first(frame[settings.time_column])
    work = frame.assign(**{settings.target: target, "__time": _parse_times(
        frame, settings.time_column, first)}).sort_values([*settings.series_id, "__time"])
    # The same time written two ways ("2024-01-06" and "2024-01-06 00:00") passes the check on
    # the raw values.
    _check_unique_times(work, [*settings.series_id, "__time"], settings.time_column)
    groups = ([(tuple(k) if isinstance(k, tuple) else (k,), g)
               for k, g in work.groupby(settings.series_id, sort=True)]
              if settings.series_id else [((), work)])
    freq = settings.frequency or infer_frequency(
        {k: pd.DatetimeIndex(g["__time"]) for k, g in groups})
    try:
        season = settings.seasonality or season_of(freq)
    except ValueError:
        instead = replacement(freq)
        raise AutoMLInputError(
            f"frequency {freq!r} is not a pandas frequency: give {instead}" if instead
            else f"frequency {freq!r} is not a pandas frequency (e.g. h, D, W-SUN, MS, QS, YS)"
        ) from None
    keys, values, ends, feats, empty, filled = [], [], [], [], [], []
    for key, group in groups:
        group = group[group[settings.target].notna() | group["__time"].between(
            group.loc[group[settings.target].notna(), "__time"].min(),
            group.loc[group[settings.target].notna(), "__time"].max())]
        if group[settings.target].notna().sum() == 0:
            empty.append(key)
            continue
        y, x, end, missing = _regular(group, settings, freq, key)
        keys.append(key), values.append(y), ends.append(end), feats.append(x)
        filled.append(missing)
    if not keys:
        raise AutoMLInputError(f"target {settings.target!r} has no values")
    n_filled = int(sum(m.sum() for m in filled))
    panel = Panel(keys, values, ends, freq, season, list(settings.known_features),
                  feats if settings.known_features else None,
                  filled if settings.fill_gaps == "interpolate" and n_filled else None)
    need = min_history(settings.horizon, season)
    long_ = [i for i, v in enumerate(values) if len(v) >= need]
    short_ = [i for i, v in enumerate(values) if len(v) < need]
    if not long_:  # nothing to backtest, so nothing to choose a model by
        raise AutoMLInputError(f"every series is shorter than {need} periods (horizon "
                               f"{settings.horizon} + history to fit; the longest has "
                               f"{max(len(v) for v in values)}); lower --horizon")
    total = sum(len(v) for v in values)
    if settings.fill_gaps != "zero" and n_filled > total / 2:
        raise AutoMLInputError(f"at frequency {freq!r}, {n_filled} of {total} periods have no "
                               f"row and would be filled by {settings.fill_gaps}; give the "
                               "data's --frequency, or --fill-gaps zero if no row means zero")
    guardrails = _guardrails(panel, short_, n_filled, need, settings, freq, season)
    used = {settings.time_column, settings.target, *settings.series_id, *settings.known_features}
    unused = [str(c) for c in frame.columns if c not in used]
    guardrails.append(Guardrail(
        "unused_columns", "Alerted" if unused else "Passed",
        f"not used: {listed(unused)}; the forecasts follow each series' own history and the "
        "known-future features: declare a column a known feature (--known-features) if its "
        "values for the periods to forecast will be known" if unused
        else "every column is used"))
    if empty:
        guardrails.append(Guardrail(
            "empty_series", "Alerted", f"{len(empty)} series have no {settings.target!r} values:"
            " left out of the model and listed in metrics.json (dropped_series)"))
    return PreparedPanel(
        panel=panel.subset(long_), short=panel.subset(short_), empty=empty, day_first=first,
        utc_offsets=sorted(set(utc_offsets(frame[settings.time_column]).dropna())),
        dropped=empty + ([keys[i] for i in short_] if settings.short_series == "drop" else []),
        time_column=settings.time_column, series_id=list(settings.series_id),
        target=settings.target, horizon=settings.horizon, guardrails=guardrails,
        suite=suite.to_json_dict(), fingerprint=data_fingerprint(frame), n_rows=len(frame),
        n_filled=n_filled)


def _guardrails(panel: Panel, short: list[int], n_filled: int, need: int,
                settings: TrainSettings, freq: str, season: int) -> list[Guardrail]:
    total = sum(len(v) for v in panel.values)
    how = {"fallback": "forecast with seasonal naive (naive when shorter than a season)",
           "drop": "left out of the model and listed in metrics.json"}[settings.short_series]
    return [
        Guardrail("frequency", "Passed", f"frequency {freq!r}"
                  + (" (given)" if settings.frequency else " (inferred)")
                  + f", season {season} periods"
                  + (" (given)" if settings.seasonality else " (from the frequency)")),
        Guardrail("missing_periods", "Done" if n_filled else "Passed",
                  f"{n_filled} of {total} periods were missing and filled by "
                  f"{settings.fill_gaps}" if n_filled else "no missing periods"),
        Guardrail("short_series", "Alerted" if short else "Passed",
                  f"{len(short)} of {len(panel)} series have fewer than {need} periods: {how}"
                  if short else f"every series has at least {need} periods"),
    ]


@task(name="validate", cache_policy=NO_CACHE)
def prepare_panel_task(frame: pd.DataFrame, settings: TrainSettings) -> PreparedPanel:
    """Great Expectations validation and guardrails of a forecasting table."""
    return prepare_panel(frame, settings)
