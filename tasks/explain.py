"""Permutation importance of a model on its raw input columns, measured on validation rows."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from models._calibration import clip_probabilities
from models._ensemble import make_ensemble
from tasks.evaluate import METRICS, loss_of
from tasks.model_io import used_columns
from tasks.split import SplitPlan
from tasks.train import build_model
from tasks.types import CandidateSpec
from tasks.validate import PreparedData

__all__ = ["Explanation", "explain_model", "explain_task", "fit_on_rows", "model_loss",
           "model_predictions", "near_duplicates", "permutation_importance_table",
           "retrain_seconds"]

# Training the model again on a fold is done only with this multiple of its estimate to spare:
# the search may have cut the candidate short, and not every family can be stopped.
RETRAIN_MARGIN = 1.5


def retrain_seconds(fold_fit_seconds: float) -> float:
    """Seconds that training the chosen model again on a fold needs to be tried: what the
    search and the explanation both plan for it."""
    return RETRAIN_MARGIN * fold_fit_seconds


MIN_ROWS = 200
# Rows per prediction call while shuffling: a call's fixed cost (the featurization's and
# the ensemble members' set-up) dominates on a few hundred rows.
BATCH_ROWS = 10_000
IMPORTANCE_COLUMNS = ["feature", "importance", "std", "min", "max", "repeats", "metric",
                      "baseline_score", "rows", "source"]


@dataclass
class Explanation:
    """Raw-column importance of one model and how it was measured; ``shared`` lists the pairs of
    measured columns that are nearly the same (see :func:`near_duplicates`)."""

    table: pd.DataFrame
    source: str
    shared: list[dict[str, Any]] = field(default_factory=list)


NEAR_DUPLICATE = 0.95  # |Spearman correlation| from which two columns share their importance


def near_duplicates(X: pd.DataFrame, columns: Sequence[str], most: int = 10,
                    among: int = 100) -> list[dict[str, Any]]:
    """Pairs of numeric ``columns`` whose values on ``X`` rank nearly alike (``|Spearman| >=
    NEAR_DUPLICATE``), most alike first, at most ``most``: shuffling one leaves the other to
    the model, so permutation importance splits what the pair carries between them. Only the
    first ``among`` columns are compared (the most important, as the table orders them).

    Returns
    -------
    list of dict
        ``{"columns": [a, b], "correlation": rho}``.
    """
    numeric = [c for c in columns[:among]
               if c in X.columns and pd.api.types.is_numeric_dtype(X[c])
               and not pd.api.types.is_bool_dtype(X[c]) and X[c].nunique() > 2]
    if len(numeric) < 2:
        return []
    # Two mostly empty columns sharing three rows would correlate by chance.
    rho = X[numeric].rank().corr(min_periods=max(30, len(X) // 10)).to_numpy()
    pairs = [(abs(rho[i, j]), *sorted([numeric[i], numeric[j]]), rho[i, j])
             for i in range(len(numeric)) for j in range(i + 1, len(numeric))
             if abs(rho[i, j]) >= NEAR_DUPLICATE]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [{"columns": [a, b], "correlation": round(float(r), 4)}
            for _, a, b, r in pairs[:most]]


def model_predictions(model: Any, X: pd.DataFrame, data: PreparedData) -> np.ndarray:
    """``model``'s predictions on ``X`` as the metrics take them.

    Parameters
    ----------
    model : fitted AutoML model
    X : DataFrame
        Rows with the model's raw columns.
    data : PreparedData
        For the task and the classes.

    Returns
    -------
    ndarray
        Regression values, or class probabilities in ``data.classes`` order (clipped and
        renormalized; a class the model never saw gets probability 0 before clipping).

    Raises
    ------
    ValueError
        When the model knows a class that ``data`` does not have.
    """
    if data.task == "regression":
        return np.asarray(model.predict(X), dtype=float)
    position = {label: i for i, label in enumerate(data.classes)}
    unknown = [c for c in model.classes_ if c not in position]
    if unknown:
        shown = [c.item() if isinstance(c, np.generic) else c for c in unknown[:5]]
        raise ValueError("it was trained on class(es) " + ", ".join(map(repr, shown))
                         + " that this data does not have")
    proba = np.zeros((len(X), data.n_classes))
    proba[:, [position[c] for c in model.classes_]] = model.predict_proba(X)
    return clip_probabilities(proba)


def _loss(prediction: np.ndarray, y: np.ndarray, data: PreparedData, metric: str) -> float:
    scorer = METRICS[metric]
    if data.task == "regression":
        return loss_of(metric, scorer.fn(y, prediction, None))
    return loss_of(metric, scorer.fn(y, prediction.argmax(axis=1), prediction))


def model_loss(model: Any, X: pd.DataFrame, y: np.ndarray, data: PreparedData,
               metric: str) -> float:
    """``model``'s loss (lower is better) on rows ``X`` with encoded targets ``y``."""
    return _loss(model_predictions(model, X, data), y, data, metric)


def permutation_importance_table(
    model: Any, X: pd.DataFrame, y: np.ndarray, data: PreparedData, metric: str,
    n_repeats: int = 5, seed: int = 0, max_seconds: float = math.inf, source: str = "",
    batch_rows: int = BATCH_ROWS,
) -> pd.DataFrame:
    """How much the primary metric worsens when one raw column's values are shuffled.

    Parameters
    ----------
    model : fitted AutoML model
        Takes the raw columns (its featurization is inside), so each raw column is permuted as a
        whole, whatever features it became.
    X : DataFrame
        Rows the model did not train on.
    y : ndarray
        Their targets (encoded labels for classification).
    data : PreparedData
        For the task and the classes.
    metric : str
    n_repeats : int, default=5
        Shuffles per column; fewer when ``max_seconds`` runs out (when even one per column
        would not fit, fewer rows, down to ``MIN_ROWS``; when that is still too slow, the
        columns not reached in time are left out and ``source`` says how many were measured).
    seed : int, default=0
    max_seconds : float, default=inf
    source : str, default=""
        How the rows were chosen, recorded in every row.
    batch_rows : int, default=BATCH_ROWS
        Rows per prediction call: the copies of ``X`` that each have another column shuffled
        are stacked and predicted at once, as many as fit (the results do not depend on it).

    Returns
    -------
    DataFrame
        One row per raw column the model uses (not those its featurization dropped as empty,
        constant or ID-like: shuffling them changes nothing), most important first:
        ``importance`` (mean loss increase, in the metric's units), ``std``, ``min``, ``max``
        over the repeats, ``repeats``, ``metric``, ``baseline_score``, ``rows`` and ``source``.
    """
    rng = np.random.default_rng(seed)
    used = set(used_columns(model, [str(c) for c in X.columns]))
    columns = [c for c in X.columns if str(c) in used]
    base, call = _timed_loss(model, X, y, data, metric)
    if call * len(columns) > max_seconds and len(X) > MIN_ROWS:  # one shuffle per column must
        keep = max(MIN_ROWS, int(len(X) * max_seconds / (call * len(columns))))  # fit: fewer rows
        chosen = np.sort(rng.choice(len(X), size=keep, replace=False))
        X, y = X.iloc[chosen], y[chosen]
        base, call = _timed_loss(model, X, y, data, metric)
    # A call on k copies takes about k times one on X: no more copies than fit in the time.
    fit = max_seconds / max(call, 1e-9)
    per_call = max(1, min(batch_rows // len(X), int(min(fit, batch_rows))))
    drops = _shuffled_losses(model, X, columns, y, data, metric, n_repeats, rng, max_seconds,
                             per_call)
    drops = {name: [loss - base for loss in losses] for name, losses in drops.items()}
    measured = {name: d for name, d in drops.items() if d}
    if len(measured) < len(drops):
        source = (f"{source}; only {len(measured)} of {len(drops)} columns measured before the "
                  "time ran out").lstrip("; ")
    baseline = -base if METRICS[metric].greater_is_better else base
    # One repeat (all the time left allowed) has no spread to give: not a std of 0.
    rows = [{"feature": name, "importance": float(np.mean(d)),
             "std": float(np.std(d)) if len(d) > 1 else math.nan,
             "min": float(np.min(d)), "max": float(np.max(d)), "repeats": len(d),
             "metric": metric, "baseline_score": baseline, "rows": len(X), "source": source}
            for name, d in measured.items()]
    table = pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS)
    return table.sort_values(["importance", "feature"], ascending=[False, True],
                             ignore_index=True)


def _timed_loss(model: Any, X: pd.DataFrame, y: np.ndarray, data: PreparedData,
                metric: str) -> tuple[float, float]:
    """:func:`model_loss` and the seconds it took."""
    started = time.perf_counter()
    return model_loss(model, X, y, data, metric), time.perf_counter() - started


def _shuffled_losses(model: Any, X: pd.DataFrame, columns: list, y: np.ndarray,
                     data: PreparedData, metric: str, n_repeats: int, rng: np.random.Generator,
                     max_seconds: float, per_call: int) -> dict[str, list[float]]:
    """The loss with each of ``columns`` shuffled, ``n_repeats`` times (fewer when
    ``max_seconds`` runs out), predicting ``per_call`` shuffled copies of ``X`` in one call."""
    losses: dict[str, list[float]] = {str(c): [] for c in columns}
    groups = [columns[i:i + per_call] for i in range(0, len(columns), per_call)]
    started = last = time.perf_counter()
    for _, group in itertools.product(range(n_repeats), groups):
        # A model whose predictions cost a fixed time per call is not sped up by fewer rows.
        now = time.perf_counter()
        if losses[str(columns[0])] and 2 * now - last - started > max_seconds:
            break  # the next call, taking as long as the last, would end after max_seconds
        last = now
        prediction = model_predictions(model, _shuffled_copies(X, group, rng), data)
        for k, column in enumerate(group):
            part = prediction[k * len(X):(k + 1) * len(X)]
            losses[str(column)].append(_loss(part, y, data, metric))
    return losses


def _shuffled_copies(X: pd.DataFrame, group: list, rng: np.random.Generator) -> pd.DataFrame:
    """``X`` stacked once per column of ``group``, the k-th copy with the k-th column shuffled.

    Taken as one block and changed column by column: a copy of ``X`` per column, each set one
    column, then concatenated, took 20 s for 333 copies of 30 rows x 3,000 columns.
    """
    n = len(X)
    stacked = X.iloc[np.tile(np.arange(n), len(group))].reset_index(drop=True)
    for k, column in enumerate(group):
        values = stacked[column].copy()
        values.iloc[k * n:(k + 1) * n] = X[column].iloc[rng.permutation(n)].array
        stacked[column] = values
    return stacked


#: Where importance was measured when no time was left to train a model without those rows.
TRAINING_ROWS_SOURCE = ("training rows, seen by the published model (no time was left in the "
                        "budget to train a model without them): a column the model overfits, "
                        "noise included, can look important there that would not on new rows")


def fit_on_rows(specs: Sequence[CandidateSpec], weights: Sequence[float], data: PreparedData,
                rows: np.ndarray, seed: int, seconds: Optional[float] = None,
                temperatures: Optional[Sequence[float]] = None,
                blend_temperature: float = 1.0) -> Any:
    """The candidate (one spec) or blend (several) trained on ``rows`` only; boosters and
    forests stop growing after ``seconds`` in all (shared equally by the members). A classifier
    gets its calibration as published: each member's temperature (``temperatures``, in the
    order of ``specs``) and the blend's."""
    labels = data.labels
    limit = None if seconds is None else seconds / len(specs)
    members = []
    for spec, temperature in zip(specs, temperatures or [1.0] * len(specs)):
        model = build_model(spec, data, seed)
        if data.task == "classification" and temperature != 1.0:
            model.set_params(temperature=temperature)
        members.append(model.fit(data.X.iloc[rows], labels[rows], time_limit=limit))
    if len(members) == 1:
        return members[0]
    return make_ensemble(data.task, members, list(weights), blend_temperature)


def explain_model(
    specs: Sequence[CandidateSpec], weights: Sequence[float], data: PreparedData,
    plan: SplitPlan, metric: str, seed: int, final_model: Any,
    fit_seconds: float = 0.0, seconds_left: float = math.inf, n_repeats: int = 5,
    max_rows: int = 2_000, temperatures: Optional[Sequence[float]] = None,
    blend_temperature: float = 1.0,
) -> Explanation:
    """Permutation importance on the first validation fold, by a model that never saw it.

    The candidate is trained again on the fold's training rows (``fit_seconds`` estimates it).
    When that would not fit in ``seconds_left``, the published model is measured on the same
    rows instead, which it trained on; ``source`` says so. ``temperatures`` and
    ``blend_temperature`` calibrate the retrained model as the published one is (see
    :func:`fit_on_rows`).
    """
    train_rows, valid_rows = plan.folds[0]
    if len(valid_rows) > max_rows:
        valid_rows = np.sort(np.random.default_rng(seed).choice(valid_rows, max_rows,
                                                                replace=False))
    X, y = data.X.iloc[valid_rows], data.y[valid_rows]
    # One BLAS thread, as the candidate's fit_seconds were measured: with two, on a busy
    # machine, a logistic regression took five times as long, and lbfgs cannot be cut short.
    with threadpool_limits(limits=1):
        if retrain_seconds(fit_seconds) < seconds_left:
            started = time.perf_counter()
            # The search may have cut the candidate short: its seconds can understate a fit.
            model = fit_on_rows(specs, weights, data, train_rows, seed,
                                None if math.isinf(seconds_left) else 0.5 * seconds_left,
                                temperatures, blend_temperature)
            seconds_left -= time.perf_counter() - started
            source = (f"validation rows ({plan.describe()}, first fold), model trained without "
                      "them")
        else:
            model = final_model
            source = TRAINING_ROWS_SOURCE
        table = permutation_importance_table(model, X, y, data, metric, n_repeats, seed,
                                             max_seconds=max(0.0, 0.5 * seconds_left),
                                             source=source)
    return Explanation(table, source, near_duplicates(X, list(table["feature"])))


@task(name="explain", cache_policy=NO_CACHE)
def explain_task(specs: list[CandidateSpec], weights: list[float], data: PreparedData,
                 plan: SplitPlan, metric: str, seed: int, final_model: Any,
                 fit_seconds: float = 0.0, seconds_left: float = math.inf,
                 temperatures: Optional[list[float]] = None,
                 blend_temperature: float = 1.0) -> Explanation:
    """Raw-column permutation importance of the chosen model."""
    return explain_model(specs, weights, data, plan, metric, seed, final_model, fit_seconds,
                         seconds_left, temperatures=temperatures,
                         blend_temperature=blend_temperature)
