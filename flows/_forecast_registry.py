"""Registering a published forecaster.

A forecaster forecasts only the periods after the end of its training data, so a champion
trained on older data cannot forecast the new periods at all once its horizon has passed. The
roles of champion/challenger are therefore swapped: the challenger replaces the champion unless
the champion forecast the periods new to it clearly better (by more than the promotion margin
and standard errors) than the challenger's backtest forecast them from an origin no earlier
than the champion's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows._registry import model_name, settle
from models._forecast_model import ForecastModel
from tasks.backtest import Naive2Reference, n_windows, pointwise_loss
from tasks.forecast_data import Panel
from tasks.model_io import registered_model
from tasks.decisions import Decision, decided_now, kept_by_hand
from tasks.registry import Registry
from tasks.settings import TrainSettings

__all__ = ["Backtest", "ForecastComparison", "compare_forecasts", "decide_forecast",
           "overlap", "register_forecast_task"]

RESAMPLES = 200


@dataclass(frozen=True)
class Backtest:
    """This run's backtest of the published choice: ``actual`` and ``forecast`` (series,
    windows, horizon), the MASE ``scales`` (series, windows) and the Naive2 reference."""

    panel: Panel
    horizon: int
    windows: int
    actual: np.ndarray
    forecast: np.ndarray
    scales: np.ndarray
    reference: Naive2Reference


@dataclass(frozen=True)
class ForecastComparison:
    """Champion and challenger on the same ``periods`` (``champion`` None: not compared,
    ``problem`` says why; ``newer`` False: this run has no period after the champion's;
    ``ahead`` False: the champion forecasts no period after this run's data)."""

    challenger: Optional[float]
    champion: Optional[float]
    periods: Optional[int]
    problem: str = ""
    std_error: Optional[float] = None
    newer: bool = True
    ahead: bool = True


def _champion_positions(champion: ForecastModel, keys: list[tuple]) -> list[Optional[int]]:
    """Each run series' position among the champion's (None: it did not know the series); an
    id read as text another day (``"2"`` for ``2``) finds its series, as in ``predict``."""
    position = {k: j for j, k in enumerate(champion.keys)}
    by_text = champion.keys_by_text()
    return [position.get(k, position.get(by_text.get(tuple(str(v) for v in k)))) for k in keys]


def overlap(champion: ForecastModel,
            run: Backtest) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """The periods of this run's backtest windows that the champion forecast, in the windows
    that start at or after the champion's end (from an earlier origin the challenger would
    forecast them at a longer lead than the champion did).

    Returns
    -------
    where : ndarray
        (periods, 5): each period's series, window and step in ``run``'s arrays, then its
        series in the champion and its step in the champion's horizon (1 = the first period
        after its training data).
    times : ndarray
        The time of each period.
    newer : bool
        Whether any series of the run goes on after the champion's end.
    ahead : bool
        Whether the champion forecasts any period after the end of the run's series.
    """
    counts = n_windows(run.panel, run.horizon, run.windows)
    where, times, newer, ahead = [], [], False, False
    grids: dict[tuple, tuple[pd.DatetimeIndex, np.ndarray, bool]] = {}  # mostly shared ends
    for i, j in enumerate(_champion_positions(champion, run.panel.keys)):
        if j is None:
            continue
        n, end = len(run.panel.values[i]), champion.ends[j]
        newer |= bool(run.panel.ends[i] > end)
        grid = (end, run.panel.ends[i], n)
        if grid not in grids:
            stamps = pd.date_range(end=run.panel.ends[i], periods=n, freq=run.panel.freq)
            future = pd.date_range(end, periods=champion.horizon + 1, freq=champion.freq)[1:]
            grids[grid] = (stamps, stamps.get_indexer(future), future[-1] > stamps[-1])
        stamps, found, beyond = grids[grid]
        ahead |= bool(beyond)
        back = n - 1 - found  # periods before the series' end (n: not in the run)
        window, step = back // run.horizon, run.horizon - 1 - back % run.horizon
        # Only windows whose origin is at or after the champion's end (back + its step periods
        # before the series' end): there the challenger knew at least what the champion knew.
        fair = (window + 1) * run.horizon <= back + np.arange(1, len(found) + 1)
        keep = np.flatnonzero((found >= 0) & (window < counts[i]) & fair)
        where.append(np.column_stack([np.full(len(keep), i), window[keep], step[keep],
                                      np.full(len(keep), j), keep + 1]))
        times.append(stamps[found[keep]].to_numpy())
    if not where:
        return (np.empty((0, 5), dtype=int), np.array([], dtype="datetime64[ns]"), newer,
                ahead)
    return np.vstack(where).astype(int), np.concatenate(times), newer, ahead


def _champion_forecasts(champion: ForecastModel, run: Backtest, where: np.ndarray,
                        times: np.ndarray) -> np.ndarray:
    """Its forecasts of the periods: read from its paths, or by ``predict`` when it has
    known-future features (its global members then forecast again, with this run's values of
    those features for the periods)."""
    if not champion.feature_names:
        return champion.paths[where[:, 3], where[:, 4] - 1]
    rows = pd.DataFrame({champion.time_column: times})
    for k, column in enumerate(champion.series_id):
        rows[column] = [champion.keys[j][k] for j in where[:, 3]]
    for column in champion.feature_names:
        k = run.panel.feature_names.index(column)
        rows[column] = [run.panel.features[i][len(run.panel.values[i]) - 1 - run.horizon * w
                                              - (run.horizon - 1 - s), k]
                        for i, w, s in where[:, :3]]
    return champion.predict(rows)


def compare_forecasts(champion: Any, run: Backtest, metric: str,
                      seed: int = 0) -> ForecastComparison:
    """Score the champion's forecasts and the challenger's backtest forecasts on the periods
    of this run's backtest that the champion forecast (after its training data, within its
    horizon), with the paired bootstrap standard error of the champion's lead, resampling
    whole series (periods, when there is one series)."""
    if not isinstance(champion, ForecastModel):
        return ForecastComparison(None, None, None, "the champion is not a forecaster")
    if pd.tseries.frequencies.to_offset(champion.freq) != pd.tseries.frequencies.to_offset(
            run.panel.freq):
        return ForecastComparison(None, None, None, f"the champion forecasts periods of "
                                  f"{champion.freq!r}, this run {run.panel.freq!r}")
    missing = [c for c in champion.feature_names if c not in run.panel.feature_names]
    if missing:
        return ForecastComparison(None, None, None, "the champion needs the known-future "
                                  f"feature(s) {missing}, which this run does not have")
    where, times, newer, ahead = overlap(champion, run)
    if not newer:
        return ForecastComparison(None, None, None, "no series of this run goes on after the "
                                  "champion's training data", newer=False)
    if not len(where):
        return ForecastComparison(None, None, None, "no backtest window of this run starts "
                                  "at or after the champion's end and holds periods it forecast "
                                  "(e.g. the data grew by less than a horizon)")
    try:
        theirs = _champion_forecasts(champion, run, where, times)
    except (ValueError, KeyError) as exc:
        return ForecastComparison(None, None, None,
                                  f"the champion cannot forecast them: {str(exc).splitlines()[0]}")
    series, window, step = where[:, :3].T
    actual, scales = run.actual[series, window, step], run.scales[series, window]
    losses = [pointwise_loss(metric, actual[:, None, None], f[:, None, None], scales[:, None],
                             run.reference)[:, 0] for f in (run.forecast[series, window, step],
                                                            theirs)]
    named, unit = np.unique(series, return_inverse=True)
    if len(named) < 2:
        unit = np.arange(len(actual))
    sums = np.stack([np.bincount(unit, loss) for loss in losses])  # (2, units)
    counts = np.bincount(unit).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(counts), (RESAMPLES, len(counts)))
    weights = np.stack([np.bincount(d, minlength=len(counts)) for d in draws])
    mean = (weights @ sums.T) / (weights @ counts)[:, None]  # (resamples, 2)
    everything = sums.sum(axis=1) / counts.sum()
    if metric == "rmse":  # pooled squares, rooted
        mean, everything = np.sqrt(mean), np.sqrt(everything)
    return ForecastComparison(float(everything[0]), float(everything[1]), len(actual),
                              std_error=float(np.std(mean[:, 0] - mean[:, 1])), ahead=ahead)


def decide_forecast(name: str, version: int, champion_version: Optional[int], metric: str,
                    comparison: ForecastComparison, margin: float,
                    std_errors_needed: float) -> Decision:
    """Whether the challenger replaces the champion: it does unless the champion's loss on the
    same periods is lower by more than ``margin`` and ``std_errors_needed`` standard errors of
    that lead while the champion still forecasts a period after this run's data, or the run
    has no later data than the champion's."""
    compared = comparison.champion is not None
    noise = (std_errors_needed * comparison.std_error
             if compared and std_errors_needed > 0 and np.isfinite(comparison.std_error) else 0.0)
    needed = f"more than {margin:g}"
    if compared and std_errors_needed > 0:
        needed += (f" and {std_errors_needed:g} standard errors of its lead "
                   f"({std_errors_needed:g} x {comparison.std_error:.3g} = {noise:.3g})")
    if champion_version is None:
        promoted, reason = True, "no champion yet"
    elif not comparison.newer:
        promoted, reason = False, f"{comparison.problem}: {kept_by_hand(version)}"
    elif not compared:
        promoted, reason = True, (f"{comparison.problem}; with nothing to compare on, the "
                                  "forecaster trained on later data replaces the champion")
    else:
        lead = comparison.challenger - comparison.champion
        beaten = bool(lead > max(margin, noise))
        promoted = not beaten or not comparison.ahead
        reason = (f"{metric} {comparison.challenger:.6g} against the champion's "
                  f"{comparison.champion:.6g} on the {comparison.periods} periods new to it: "
                  f"the champion {'beats' if beaten else 'does not beat'} it by {needed}")
        if beaten:
            reason += (f"; {kept_by_hand(version)}" if not promoted else
                       ", but its horizon has passed: it forecasts no period after this run's "
                       "data, so the newer forecaster replaces it")
    return Decision(name, version, champion_version, metric, comparison.challenger,
                    comparison.champion, margin, promoted, reason, decided_now(),
                    comparison.periods, comparison.std_error if compared else None,
                    std_errors_needed)


# No retries: a second attempt would add the model again as another version.
@task(name="register", cache_policy=NO_CACHE)
def register_forecast_task(settings: TrainSettings, output: str, run: Backtest, metric: str,
                           score: float, artifact_key: str) -> Decision:
    """Add the published forecaster as a new version and promote it unless the champion
    forecast the periods new to it clearly better (``score``: the challenger's backtest score,
    recorded when the two are not compared)."""
    registry = Registry(settings.registry, model_name(settings))
    champion_version = registry.champion()
    if champion_version is None:
        comparison = ForecastComparison(score, None, None)
    else:
        with registered_model(registry, champion_version) as (loaded, _):
            champion = loaded.model
        comparison = compare_forecasts(champion, run, metric, settings.seed)
        if comparison.challenger is None:
            comparison = dataclasses.replace(comparison, challenger=score)
    version = registry.add(output)
    decision = decide_forecast(registry.name, version, champion_version, metric, comparison,
                               settings.promotion_margin, settings.promotion_std_errors)
    return settle(registry, decision, champion_version, artifact_key,
                  "Champion/challenger decision on the periods new to the champion")
