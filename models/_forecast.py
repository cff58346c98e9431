"""What a forecasting family declares and builds, and the seasonal adjustment they share.

A forecasting family is a :class:`ForecastFamily` plug-in module in ``models/`` like every other
family. It lists a few configurations (forecasting spaces are small and discrete) and builds
either a *local* forecaster, fitted on one series at a time (:class:`LocalForecaster`), or a
*global* one, fitted across all series at once (:class:`GlobalForecaster`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, Optional

import numpy as np

from featurizers._quiet import ignoring
from models._base import DataShape, ModelFamily, Param

__all__ = ["LEVELS", "FittedForecaster", "ForecastFamily", "GlobalForecaster", "LocalForecaster",
           "SeasonalAdjustment", "is_seasonal", "normal_bounds", "restore_bounds"]

#: The prediction-interval levels every forecaster publishes.
LEVELS = (0.8, 0.95)

Bounds = dict[float, np.ndarray]  # level -> (horizon, 2): lower, upper


def is_seasonal(y: np.ndarray, season: int) -> bool:
    """The M4 organisers' test: the autocorrelation at lag ``season`` is significant at 90%."""
    n = len(y)
    if season <= 1 or n < 3 * season:
        return False
    x = y - y.mean()
    denominator = float(np.dot(x, x))
    if denominator == 0:
        return False
    acf = np.array([np.dot(x[:n - k], x[k:]) / denominator for k in range(season + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[1:season] ** 2)) / n)
    return bool(abs(acf[season]) > limit)


class SeasonalAdjustment:
    """Classical decomposition's seasonal indices (multiplicative for positive series, else
    additive), applied only when :func:`is_seasonal` says so."""

    def __init__(self, season: int) -> None:
        self.season = season

    def fit(self, y: np.ndarray) -> "SeasonalAdjustment":
        m = self.season
        self.multiplicative_ = bool(np.all(y > 0))
        self.indices_: Optional[np.ndarray] = None
        if is_seasonal(y, m):
            trend = _centered_moving_average(y, m)
            ok = ~np.isnan(trend)
            ratio = y[ok] / trend[ok] if self.multiplicative_ else y[ok] - trend[ok]
            phase = np.arange(len(y))[ok] % m
            indices = np.array([ratio[phase == p].mean() for p in range(m)])
            indices = (indices / indices.mean() if self.multiplicative_
                       else indices - indices.mean())
            self.indices_ = indices
        self.n_ = len(y)
        return self

    def _pattern(self, start: int, length: int) -> np.ndarray:
        return self.indices_[(np.arange(start, start + length)) % self.season]

    def remove(self, y: np.ndarray) -> np.ndarray:
        """The seasonally adjusted series."""
        if self.indices_ is None:
            return y
        pattern = self._pattern(0, len(y))
        return y / pattern if self.multiplicative_ else y - pattern

    def restore(self, forecast: np.ndarray) -> np.ndarray:
        """Put the season back on a forecast of the adjusted series."""
        if self.indices_ is None:
            return forecast
        pattern = self._pattern(self.n_, len(forecast))
        return forecast * pattern if self.multiplicative_ else forecast + pattern


def normal_bounds(path: np.ndarray, sigma: np.ndarray, levels: tuple[float, ...]) -> Bounds:
    """Gaussian intervals around ``path`` with per-step standard deviations ``sigma``."""
    from scipy.stats import norm

    return {level: np.column_stack([path - norm.ppf(0.5 + level / 2) * sigma,
                                    path + norm.ppf(0.5 + level / 2) * sigma])
            for level in levels}


def restore_bounds(adjustment: SeasonalAdjustment, bounds: Bounds) -> Bounds:
    """Put the season back on intervals of the adjusted series (indices are positive for the
    multiplicative case, so the order of lower and upper holds)."""
    return {level: np.column_stack([adjustment.restore(b[:, 0]), adjustment.restore(b[:, 1])])
            for level, b in bounds.items()}


def _centered_moving_average(y: np.ndarray, m: int) -> np.ndarray:
    if m % 2:
        kernel = np.ones(m) / m
    else:
        kernel = np.r_[0.5, np.ones(m - 1), 0.5] / m
    out = np.full(len(y), np.nan)
    half = len(kernel) // 2
    out[half:len(y) - half] = np.convolve(y, kernel, mode="valid")
    return out


# Where the warnings of a local forecaster's fit come from (a warning is filed under the module
# that raised it, or for numpy's floating-point ones the module computing).
FORECAST_MODULES = r"(statsmodels|scipy|numpy|models)\."


class LocalForecaster(ABC):
    """Fitted on one series at a time: :meth:`forecast` is a pure function of the history."""

    @abstractmethod
    def forecast(self, y: np.ndarray, horizon: int, season: int) -> np.ndarray:
        """The next ``horizon`` values of the series ``y`` (oldest first)."""

    def __call__(self, y: np.ndarray, horizon: int, season: int) -> np.ndarray:
        """:meth:`forecast`, falling back to the last value where the model cannot fit."""
        # statsmodels warns about convergence on short or flat series; the backtest judges
        # the forecast itself, and a non-finite one falls back below.
        with ignoring(module=FORECAST_MODULES):
            try:
                out = np.asarray(self.forecast(y, horizon, season), dtype=float)
            except (ValueError, np.linalg.LinAlgError, IndexError, ZeroDivisionError):
                out = np.full(horizon, np.nan)
        _check_shape(self, "forecast", out, horizon)
        if not np.all(np.isfinite(out)):
            out = np.full(horizon, float(y[-1]))
        return out

    def forecast_intervals(self, y: np.ndarray, horizon: int, season: int,
                           levels: tuple[float, ...]) -> tuple[np.ndarray, Optional[Bounds]]:
        """The forecast and the model's own prediction intervals (``level -> (horizon, 2)``
        lower and upper), or None where the model has none (the default)."""
        return self.forecast(y, horizon, season), None

    def with_intervals(self, y: np.ndarray, horizon: int, season: int,
                       levels: tuple[float, ...] = LEVELS) -> tuple[np.ndarray, Optional[Bounds]]:
        """:meth:`forecast_intervals` with the fallback of :meth:`__call__`; intervals that are
        not finite or do not hold the forecast are dropped (None)."""
        with ignoring(module=FORECAST_MODULES):  # as in __call__
            try:
                path, bounds = self.forecast_intervals(y, horizon, season, levels)
            except (ValueError, np.linalg.LinAlgError, IndexError, ZeroDivisionError):
                path, bounds = np.full(horizon, np.nan), None
        path = np.asarray(path, dtype=float)
        _check_shape(self, "forecast_intervals", path, horizon)
        if not np.all(np.isfinite(path)):
            return np.full(horizon, float(y[-1])), None
        if bounds is None:
            return path, None
        checked = {}
        tolerance = 1e-9 * (1.0 + np.abs(path))
        for level in levels:
            b = np.asarray(bounds.get(level, np.nan), dtype=float)
            if (b.shape != (horizon, 2) or not np.all(np.isfinite(b))
                    or np.any(b[:, 0] > path + tolerance) or np.any(path > b[:, 1] + tolerance)):
                return path, None
            checked[level] = b
        return path, checked


def _check_shape(forecaster: LocalForecaster, method: str, path: np.ndarray,
                 horizon: int) -> None:
    """Raise when ``path`` is not one value per period: the forecaster's own mistake, which
    the last-value fallback (for a series a model cannot fit) must not hide."""
    if path.shape != (horizon,):
        raise ValueError(f"{type(forecaster).__name__}.{method} returned shape {path.shape} "
                         f"for a horizon of {horizon}; return one value per period")


class FittedForecaster(LocalForecaster):
    """A model fitted to each series (after seasonal adjustment): subclasses implement
    :meth:`_fit` and :meth:`_bounds`; forecasts and intervals then share one fit."""

    @abstractmethod
    def _fit(self, y: np.ndarray, season: int) -> tuple[SeasonalAdjustment, np.ndarray, Any]:
        """The seasonal adjustment, the series it leaves, and the fitted model (with a
        ``forecast(horizon)`` method), or None when the series is too short to fit."""

    @abstractmethod
    def _bounds(self, fitted: Any, path: np.ndarray, horizon: int,
                levels: tuple[float, ...]) -> Bounds:
        """The fitted model's intervals of the adjusted series around its forecast ``path``."""

    def _point(self, fitted: Any, horizon: int) -> np.ndarray:
        """The fitted model's forecast of the adjusted series."""
        return np.asarray(fitted.forecast(horizon))

    def forecast(self, y: np.ndarray, horizon: int, season: int) -> np.ndarray:
        adjustment, adjusted, fitted = self._fit(y, season)
        if fitted is None:
            return adjustment.restore(np.full(horizon, adjusted[-1]))
        return adjustment.restore(self._point(fitted, horizon))

    def forecast_intervals(self, y: np.ndarray, horizon: int, season: int,
                           levels: tuple[float, ...]) -> tuple[np.ndarray, Optional[Bounds]]:
        adjustment, adjusted, fitted = self._fit(y, season)
        if fitted is None:
            return adjustment.restore(np.full(horizon, adjusted[-1])), None
        path = self._point(fitted, horizon)
        return (adjustment.restore(path),
                restore_bounds(adjustment, self._bounds(fitted, path, horizon, levels)))


class GlobalForecaster(ABC):
    """Fitted across every series of a panel at once (e.g. a regressor on lags)."""

    @abstractmethod
    def fit(self, panel: Any, horizon: int) -> "GlobalForecaster":
        """Learn from every series of ``panel`` (a :class:`tasks.forecast_data.Panel`)."""

    @abstractmethod
    def predict(self, panel: Any, horizon: int,
                future: Optional[list[np.ndarray]] = None) -> np.ndarray:
        """Forecasts (n_series, horizon) from the end of each series; ``future`` holds the
        known-future features of the next ``horizon`` periods of each series."""


class ForecastFamily(ModelFamily):
    """A forecasting family: ``kind`` is ``"local"`` or ``"global"``.

    Subclasses set ``name`` and implement :meth:`configs` and :meth:`build`; ``cost`` orders
    the families (cheap first).
    """

    tasks: ClassVar[frozenset[str]] = frozenset({"forecasting"})
    kind: ClassVar[Literal["local", "global"]] = "local"

    @classmethod
    @abstractmethod
    def configs(cls, season: int, horizon: int) -> list[dict[str, Any]]:
        """The configurations to backtest, most promising first."""

    @classmethod
    def config_cost(cls, config: dict[str, Any]) -> float:
        """How many times the family's usual time ``config`` takes (the planner's estimate of
        a global candidate before any of its fits is measured); 1 unless a family says more."""
        return 1.0

    @classmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        return {}

    @classmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        configs = cls.configs(12, 12)  # e.g. monthly data a year ahead
        return configs[0] if configs else {}
