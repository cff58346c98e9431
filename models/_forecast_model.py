"""The published forecaster (``model.pkl`` of a forecasting run).

``predict(df)`` takes rows naming a series (its id columns) and a future time, and returns the
forecast of each row, in row order. The forecasts of the statistical members are computed when
the model is published (their paths up to the horizon); the global members are kept fitted, and
re-run at predict time when the model has known-future features, which then come from ``df``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional

import numpy as np
import pandas as pd

from featurizers import on_clock_of

__all__ = ["ForecastModel"]


class ForecastModel:
    """Forecasts per (series, future time).

    Parameters
    ----------
    time_column, series_id, target : str, list of str, str
    freq : str
        The pandas frequency of the training series.
    horizon : int
        How many periods after the end of each series it forecasts.
    keys : list of tuple
        The series ids, in the order of ``ends`` and ``paths``.
    ends : list of pandas.Timestamp
        The last training time of each series.
    paths : numpy.ndarray
        (n_series, horizon) point forecasts.
    scales : numpy.ndarray
        Each series' MASE scale, which the interval quantiles are in units of.
    quantiles : dict
        Level -> per step [low, high] scaled-error quantiles (see
        :func:`tasks.forecast_select.interval_quantiles`).
    dropped : dict
        Series left out of training (too short) -> why.
    global_members : dict, optional
        Candidate id -> (fitted global forecaster, its weight per series, the path it gave at
        publishing), kept when the model has known-future features, which ``predict`` then
        reads from ``df`` (at publishing, the last known values stood in for them).
    history : Panel, optional
        The training series the global members forecast from.
    model_intervals : dict, optional
        Level -> (n_series, horizon, 2) lower and upper bounds from the forecasting model
        itself, for series forecast by one statistical model alone (NaN for the others, whose
        intervals come from ``quantiles``).
    day_first : bool, default=False
        Whether the time column's dates written as 05/03/2024 put the day first (as training
        found; new rows are read the same way).
    utc_offsets : list of float, optional
        The UTC offsets (minutes) of the training times: new rows at another offset are read
        on the training's clock (see :func:`featurizers.on_clock_of`).
    """

    def __init__(self, time_column: str, series_id: list[str], target: str, freq: str,
                 horizon: int, keys: list[tuple], ends: list[pd.Timestamp], paths: np.ndarray,
                 scales: np.ndarray, quantiles: dict[str, list[list[float]]],
                 dropped: Optional[dict[tuple, str]] = None,
                 feature_names: Optional[list[str]] = None,
                 global_members: Optional[dict[int, Any]] = None,
                 history: Optional[Any] = None,
                 model_intervals: Optional[dict[str, np.ndarray]] = None,
                 day_first: bool = False,
                 utc_offsets: Optional[list[float]] = None) -> None:
        self.time_column = time_column
        self.series_id = list(series_id)
        self.target = target
        self.freq = freq
        self.horizon = horizon
        self.keys = [tuple(k) for k in keys]
        self.ends = list(ends)
        self.paths = np.asarray(paths, dtype=float)
        self.scales = np.asarray(scales, dtype=float)
        self.quantiles = quantiles
        self.dropped = dict(dropped or {})
        self.feature_names = list(feature_names or [])
        self.global_members = dict(global_members or {})
        self.history = history
        self.model_intervals = {k: np.asarray(v, dtype=float)
                                for k, v in (model_intervals or {}).items()}
        self.day_first = day_first
        self.utc_offsets = [float(o) for o in utc_offsets or []]
        self.numbers_as_dates = True  # a time 2024 is the year 2024 (see wall_clock)
        self._index = {k: i for i, k in enumerate(self.keys)}

    def __setstate__(self, state: dict) -> None:
        state.setdefault("model_intervals", {})  # models published before it existed
        state.setdefault("day_first", False)
        state.setdefault("utc_offsets", [])  # read every time on its own clock, as before
        state.setdefault("numbers_as_dates", False)  # trained on them as nanoseconds
        self.__dict__.update(state)
        self._index = {k: i for i, k in enumerate(self.keys)}

    def _positions(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Series index and step (1..horizon) of every row, or a ValueError naming the row by
        its index label (its position under the default index)."""
        missing = [c for c in self.required_columns() if c not in df.columns]
        if missing:
            known = (f" and the known-future features {self.feature_names}"
                     if self.feature_names else "")
            raise ValueError(f"columns {missing} are missing; forecasting rows need the time "
                             f"column {self.time_column!r}, the series ids {self.series_id}"
                             f"{known}")
        times = on_clock_of(df[self.time_column], self.utc_offsets, self.day_first,
                            self.numbers_as_dates)
        ids = (list(map(tuple, df[self.series_id].itertuples(index=False, name=None)))
               if self.series_id else [()] * len(df))
        series = np.empty(len(df), dtype=int)
        steps = np.empty(len(df), dtype=int)
        grids: dict[int, dict[pd.Timestamp, int]] = {}
        by_text: Optional[dict[tuple, tuple]] = None
        for row, (key, when) in enumerate(zip(ids, times)):
            key = tuple(_plain(v) for v in key)
            if key not in self._index:
                by_text = self.keys_by_text() if by_text is None else by_text
                key = by_text.get(tuple(str(v) for v in key), key)
            if key not in self._index:
                why = self.dropped.get(key)
                raise ValueError(f"series {dict(zip(self.series_id, key))} was not in training"
                                 + (f" ({why})" if why else "") + f" (row {df.index[row]})")
            if pd.isna(when):
                raise ValueError(f"row {df.index[row]}: {self.time_column!r} is not a time")
            i = self._index[key]
            if i not in grids:
                future = pd.date_range(self.ends[i], periods=self.horizon + 1, freq=self.freq)
                grids[i] = {t: s for s, t in enumerate(future) if s > 0}
            if when not in grids[i]:
                raise ValueError(
                    f"row {df.index[row]}: {when} is not one of the {self.horizon} "
                    f"{self.freq!r} periods after the end of training ({self.ends[i]}) of series "
                    f"{dict(zip(self.series_id, key))}")
            series[row], steps[row] = i, grids[i][when]
        return series, steps

    def required_columns(self) -> list[str]:
        """The columns rows to forecast must have: the time column, the series ids and the
        known-future features."""
        return [self.time_column, *self.series_id, *self.feature_names]

    def keys_by_text(self) -> dict[tuple, tuple]:
        """Training keys by how they read, so that an id of 1 given as "1" (as JSON clients
        often send ids) finds its series; only where no other id reads the same."""
        texts = [tuple(str(v) for v in k) for k in self.keys]
        counts = Counter(texts)
        return {t: k for t, k in zip(texts, self.keys) if counts[t] == 1}

    def _features(self, df: pd.DataFrame, series: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The known-future features of the rows as numbers, or a ValueError naming the row:
        an empty or non-numeric value, or two rows for one period that disagree."""
        values = np.empty((len(df), len(self.feature_names)))
        for j, column in enumerate(self.feature_names):
            numbers = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
            if np.isnan(numbers).any():
                row = int(np.flatnonzero(np.isnan(numbers))[0])
                given = _plain(df[column].iloc[row])
                raise ValueError(f"row {df.index[row]}: known-future feature {column!r} is "
                                 f"{given!r}; give its planned value as a number")
            values[:, j] = numbers
        seen: dict[tuple[int, int], int] = {}
        for row, period in enumerate(zip(series.tolist(), steps.tolist())):
            first = seen.setdefault(period, row)
            if not np.array_equal(values[first], values[row]):
                raise ValueError(f"rows {df.index[first]} and {df.index[row]} are the same "
                                 "period of one series with different known-future features; "
                                 "keep one of them")
        return values

    def _paths_for(self, df: pd.DataFrame, series: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The paths, with the global members re-run on the known-future features of ``df``
        (checked also when only statistical members forecast, which do not read them)."""
        if not self.feature_names:
            return self.paths
        values = self._features(df, series, steps)
        if not self.global_members:
            return self.paths
        paths = self.paths.copy()
        needed = sorted(set(series.tolist()))
        future = []
        for i in needed:
            block = np.full((self.horizon, len(self.feature_names)), np.nan)
            rows = series == i
            block[steps[rows] - 1] = values[rows]
            # Periods the rows do not cover carry the nearest given value.
            future.append(pd.DataFrame(block).ffill().bfill().to_numpy())
        part = self.history.subset(needed)
        for forecaster, weights, default in self.global_members.values():
            fresh = forecaster.predict(part, self.horizon, future)
            paths[needed] += weights[needed, None] * (fresh - default[needed])
        return paths

    def row_groups(self, df: pd.DataFrame) -> Optional[np.ndarray]:
        """A label per row of ``df``: rows with one label must be forecast together (a series'
        rows give the known-future features of its whole horizon, and two of them for one
        period must agree); None when each row's forecast depends on that row alone."""
        if not self.feature_names:
            return None
        if any(c not in df.columns for c in self.series_id):
            return None
        if not self.series_id:
            return np.zeros(len(df), dtype=int)
        keys = df[self.series_id].astype(str).agg("\0".join, axis=1)
        return pd.factorize(keys)[0]

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """The forecast of every row of ``df`` (time column + series ids), in row order.

        Raises
        ------
        ValueError
            For a missing column, a series not seen in training, a time that is not one of the
            next ``horizon`` periods of its series, a known-future feature that is empty or not
            a number, or two rows for one period whose known-future features differ.
        """
        series, steps = self._positions(df)
        return self._paths_for(df, series, steps)[series, steps - 1]

    def predict_interval(self, df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
        """``forecast``, ``lower``, ``upper`` and ``interval`` per row (``level`` 0.8 or 0.95).

        A series forecast by one statistical model alone gets that model's own interval
        (``interval`` = ``"model"``); the others get the point forecast plus the chosen
        forecaster's backtest errors' quantiles at this step, scaled to the series
        (``"backtest"``).
        """
        key = str(level)
        if key not in self.quantiles:
            raise ValueError(f"level {level} is not available; use one of "
                             f"{sorted(self.quantiles)}")
        series, steps = self._positions(df)
        point = self._paths_for(df, series, steps)[series, steps - 1]
        bounds = np.asarray(self.quantiles[key])[steps - 1]
        scale = self.scales[series]
        lower, upper = point + bounds[:, 0] * scale, point + bounds[:, 1] * scale
        source = np.full(len(df), "backtest", dtype=object)
        if key in self.model_intervals:
            own = self.model_intervals[key][series, steps - 1]
            found = np.isfinite(own).all(axis=1)
            lower[found], upper[found] = own[found, 0], own[found, 1]
            source[found] = "model"
        return pd.DataFrame({"forecast": point, "lower": lower, "upper": upper,
                             "interval": source}, index=df.index)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
