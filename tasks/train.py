"""Train and validate one candidate over the folds; refit the winner on all rows."""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import time
from datetime import timedelta
from typing import Any, Optional

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State
from prefect.transactions import get_transaction
from threadpoolctl import threadpool_limits

from featurizers import AutoFeaturizer
from models import make_model, registry
from models._calibration import clip_probabilities, fit_temperature, scale_probabilities
from tasks.errors import CandidateTimedOut
from tasks.evaluate import compute_metrics
from tasks.publish import package_versions
from tasks.split import SplitPlan
from tasks.types import CandidateResult, CandidateSpec
from tasks.validate import PreparedData

__all__ = [
    "build_model",
    "candidate_cache_key",
    "evaluate_candidate",
    "refit",
    "refit_task",
    "train_candidate_task",
]

CACHE_VERSION = "5"  # 5: prediction time per 1,000 rows in thread CPU seconds


def build_model(spec: CandidateSpec, data: PreparedData, seed: int) -> Any:
    """The unfitted published-model object (featurizer + estimator) for a candidate."""
    family = registry().get(spec.family)
    featurizer = AutoFeaturizer(roles=data.roles, scale=family.needs_scaling, task=data.task,
                                random_state=seed)
    return make_model(data.task, featurizer, family.build(data.task, spec.config, seed))


def _predict_fold(model: Any, data: PreparedData, rows: np.ndarray) -> np.ndarray:
    X = data.X.iloc[rows]
    if data.task == "regression":
        return _checked(model.predict(X), (len(rows),), "predict")
    estimator = model.pipeline_.named_steps["model"]
    if not hasattr(estimator, "predict_proba"):
        raise TypeError(f"{type(estimator).__name__} has no predict_proba: a classification "
                        "family's estimator must give class probabilities")
    proba = np.zeros((len(rows), data.n_classes))
    found = _checked(model.predict_proba(X), (len(rows), len(model.classes_)), "predict_proba")
    if not np.all(np.isfinite(found)):
        raise ValueError("predict_proba returned probabilities that are not finite")
    proba[:, model.classes_.astype(int)] = found
    return proba


def _checked(values: Any, shape: tuple[int, ...], method: str) -> np.ndarray:
    """``values`` as an array of ``shape``, or an error saying what a family's estimator
    returned instead (a plug-in's mistake, named before it surfaces as a broadcasting error)."""
    values = np.asarray(values)
    if values.shape != shape:
        raise ValueError(f"{method} returned shape {values.shape} for {shape[0]} rows; "
                         f"expected {shape}")
    return values


def _training_rows(rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    if fraction >= 1.0:
        return rows
    size = max(2, int(round(fraction * len(rows))))
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


def evaluate_candidate(
    spec: CandidateSpec, data: PreparedData, plan: SplitPlan, seed: int,
    deadline: Optional[float] = None, calibrate: bool = False,
) -> CandidateResult:
    """Fit on each fold's training rows, predict its validation rows, score the pooled predictions.

    Parameters
    ----------
    spec : CandidateSpec
        ``spec.fraction`` < 1 trains on that share of each fold's training rows (halving).
    data : PreparedData
    plan : SplitPlan
    seed : int
    deadline : float, optional
        ``time.time()`` after which no further fold starts, nor one that would end after it
        if it takes as long as the previous fold; a fold's booster, forest or saga fit stops
        at it (see :func:`models._time_limit.fit_within`). Either raises
        :class:`CandidateTimedOut`.
    calibrate : bool, default=False
        Classification: fit a temperature on the pooled out-of-fold probabilities (see
        :func:`models._calibration.fit_temperature`); the scores and the stored predictions are
        then those of the scaled probabilities, and the refit applies the same temperature.

    Returns
    -------
    CandidateResult
        ``status="failed"`` with the error when the family cannot fit this data or config. Also
        records prediction seconds per 1,000 rows and the pickled size of a fold's model.
    """
    width = data.n_classes if data.task == "classification" else 1
    oof = np.full((len(data.y), width), np.nan)
    fit_seconds = predict_seconds = predict_cpu = 0.0
    model_bytes = 0
    fold_models: list[Any] = []
    last_fold = 0.0  # seconds the previous fold took: the next one is expected to take as long
    began = time.perf_counter()
    try:
        for train_rows, valid_rows in plan.folds:
            if deadline is not None and time.time() + last_fold > deadline:
                raise TimeoutError(f"{spec.run_name} ran out of time before a fold")
            fold_started = time.perf_counter()
            rows = _training_rows(train_rows, spec.fraction, seed)
            model = build_model(spec, data, seed)
            started = time.perf_counter()
            # Holdout validation has one fold, which the check above cannot stop: a booster,
            # forest or saga fit running longer than predicted stops at the deadline, a timeout
            # like the others (a cut model is not the configuration the cache would remember).
            limit = None if deadline is None else max(0.0, deadline - time.time())
            with threadpool_limits(limits=1):
                model.fit(data.X.iloc[rows], data.y[rows], time_limit=limit)
                fitted = time.perf_counter()
                if deadline is not None and time.time() >= deadline:
                    raise TimeoutError(f"{spec.run_name} ran out of time in a fold")
                cpu = time.thread_time()
                prediction = _predict_fold(model, data, valid_rows)
                predict_cpu += time.thread_time() - cpu
            fit_seconds += fitted - started
            predict_seconds += time.perf_counter() - fitted
            oof[valid_rows] = prediction.reshape(len(valid_rows), width)
            fold_models.append(model.pipeline_.named_steps["model"])
            last_fold = time.perf_counter() - fold_started
        model_bytes = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        # Sizes learned on a subsample would not suit all rows: only full-data folds teach them.
        refit_params = (registry().get(spec.family).refit_params(fold_models)
                        if spec.fraction >= 1.0 else {})
    except TimeoutError as exc:  # raised, not returned: a timeout is not a result to cache
        raise CandidateTimedOut(str(exc), time.perf_counter() - began) from None
    except Exception as exc:  # noqa: BLE001 - a failing candidate is a result, not a crash
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return CandidateResult(spec, "failed", fit_seconds=fit_seconds, error=message)
    validated = ~np.isnan(oof).any(axis=1)
    y = data.y[validated]
    temperature = 1.0
    if data.task == "regression":
        metrics = compute_metrics("regression", y, oof[validated, 0])
        stored = oof[:, 0]
    else:
        proba = clip_probabilities(oof[validated])
        temperature = fit_temperature(proba, y) if calibrate else 1.0
        stored = oof
        if temperature != 1.0:
            proba = scale_probabilities(proba, temperature)
            stored = oof.copy()
            stored[validated] = proba
        metrics = compute_metrics("classification", y, proba.argmax(axis=1), proba)
    # The latency figure is the predicting thread's CPU time (one thread, by threadpool_limits):
    # wall time would count the waits for the core the other worker holds, up to doubling it.
    # The search plans its time with the wall seconds.
    per_1000 = 1000 * predict_cpu / max(1, int(validated.sum()))
    return CandidateResult(spec, "ok", metrics, fit_seconds, predict_seconds, stored,
                           predict_seconds_per_1000=per_1000, model_bytes=model_bytes,
                           refit_params=refit_params,
                           temperature=temperature)


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Python's and the model libraries' versions: a candidate's cached result is not reused
    after an upgrade that can change it."""
    return package_versions()


def candidate_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache by data fingerprint, family, config, seed, folds and library versions (not by the
    candidate's number)."""
    spec: CandidateSpec = parameters["spec"]
    data: PreparedData = parameters["data"]
    plan: SplitPlan = parameters["plan"]
    # The classes' order is the labels' encoding (the positive class of two is encoded 1).
    classes = None if data.classes is None else [str(c) for c in data.classes]
    payload = [CACHE_VERSION, data.fingerprint, data.roles, classes, spec.family, spec.config,
               spec.fraction, parameters["seed"], plan.signature,
               bool(parameters.get("calibrate")), library_versions()]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    return f"automl-candidate-{digest.hexdigest()}"


@task(
    name="train-candidate",
    task_run_name="{spec.run_name}",
    cache_key_fn=candidate_cache_key,
    cache_expiration=timedelta(days=30),
    persist_result=True,
)
def train_candidate_task(
    spec: CandidateSpec, data: PreparedData, plan: SplitPlan, seed: int,
    deadline: Optional[float] = None, calibrate: bool = False,
) -> CandidateResult | State:
    """Train and validate one candidate (cached by data, config, seed, folds and calibration).

    A candidate stopped at its deadline is the budget at work, not a failure: the task ends in
    a completed state named "Timed out" whose result, ``status="timeout"``, is not cached (with
    more time, the candidate may finish). Called directly rather than submitted or mapped, it
    then returns that state; its ``result()`` is the result.
    """
    try:
        return evaluate_candidate(spec, data, plan, seed, deadline, calibrate)
    except CandidateTimedOut as exc:
        transaction = get_transaction()
        if transaction is not None:
            transaction.write_on_commit = False
        stopped = CandidateResult(spec, "timeout", fit_seconds=round(exc.seconds, 3),
                                  error=f"CandidateTimedOut: {exc}")
        return Completed(name="Timed out", message=str(exc), data=stopped)


def refit(spec: CandidateSpec, data: PreparedData, seed: int,
          params: Optional[dict[str, Any]] = None, temperature: float = 1.0,
          time_limit: Optional[float] = None) -> Any:
    """Fit the winning candidate on every training row: the model that is published.

    ``params`` (the candidate's ``refit_params``) are set on its estimator first; a classifier
    gets the candidate's ``temperature``. ``time_limit`` (seconds) stops a booster's rounds, a
    forest's trees or saga's epochs when it is up, so that a refit longer than planned ends
    within the budget.
    """
    model = build_model(spec, data, seed)
    if params:
        model.estimator.set_params(**params)
    if temperature != 1.0:
        model.set_params(temperature=temperature)
    return model.fit(data.X, data.labels, time_limit=time_limit)


@task(name="refit", task_run_name="refit-{spec.family}-{spec.id:02d}", cache_policy=NO_CACHE)
def refit_task(spec: CandidateSpec, data: PreparedData, seed: int,
               params: Optional[dict[str, Any]] = None, temperature: float = 1.0,
               deadline: Optional[float] = None) -> Any:
    """Refit a chosen candidate on all training rows; a booster, forest or saga fit stops at
    ``deadline`` (``time.time()``), counted when the refit starts (members may wait)."""
    limit = None if deadline is None else max(0.0, deadline - time.time())
    with threadpool_limits(limits=1):
        return refit(spec, data, seed, params, temperature, limit)
