"""Registering a published model and promoting it over the champion when it wins."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from models._calibration import clip_probabilities
from tasks.baseline import bootstrap_gain
from tasks.ensemble import prediction_loss, validated_predictions
from tasks.evaluate import METRICS
from tasks.explain import model_predictions
from tasks.errors import AutoMLInputError, listed
from tasks.model_io import local_path, registered_model, used_columns
from tasks.decisions import Decision, decide, kept_by_hand
from tasks.registry import TRAINING_ROWS, Registry, RegistryBusy
from tasks.row_hashes import row_hashes
from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.types import CandidateResult, json_safe
from tasks.validate import PreparedData

__all__ = ["Comparison", "check_registry", "compare_with_champion", "model_name",
           "register_task", "registering", "settle", "training_rows_file"]


def model_name(settings: TrainSettings) -> str:
    """The registry name: ``model_name``, else the target column made name-safe."""
    if settings.model_name:
        return settings.model_name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", settings.target).strip("-._") or "model"


def check_registry(settings: TrainSettings) -> None:
    """Before the data is read: a bad model name, a registry that cannot be written, an output
    inside it, a champion that cannot be read or loaded, and one of another task or target are
    one-line errors.

    Raises
    ------
    AutoMLInputError
    """
    registry = Registry(settings.registry, model_name(settings))
    registry.check_writable()
    if local_path(settings.registry) is not None:  # the model's folder holds its versions
        folder = Path(registry.root).resolve()
        output = Path(settings.output).expanduser().resolve()
        if output == folder or folder in output.parents:
            raise AutoMLInputError(
                f"output {settings.output!r} is inside {str(folder)!r}, where registry "
                f"{settings.registry!r} keeps the versions of {registry.name!r}; give a "
                "results folder outside it")
    champion = registry.champion()
    if champion is not None:
        with registered_model(registry, champion) as (loaded, number):
            _check_same_kind(settings, loaded.manifest, number)


def _check_same_kind(settings: TrainSettings, champion: dict[str, Any], number: int) -> None:
    """A model name holds one kind of model: a challenger of another task or target could
    neither be compared with the champion nor replace it for those who score with it."""
    task, target = champion.get("task"), champion.get("target")
    if (task, target) != (settings.task, settings.target):
        raise AutoMLInputError(
            f"model name {model_name(settings)!r} in registry {settings.registry!r} holds a "
            f"{task} model of {target!r} (champion v{number}), not a {settings.task} one of "
            f"{settings.target!r}; give another --model-name")


@contextlib.contextmanager
def registering(output: str) -> Iterator[None]:
    """Around registering the model published to ``output``: a failure says that it was
    published all the same (the registry is checked before training, so this is a store
    failing midway)."""
    try:
        yield
    except Exception as exc:
        raise RuntimeError(f"the model was published to {output}, but registering it failed "
                           f"({type(exc).__name__}: {exc})") from exc


def training_rows_file(data: PreparedData, model: Any) -> dict[str, bytes]:
    """The hashes of the rows ``model`` trains on, as a results-folder file (see
    :func:`tasks.registry.row_hashes`): of the columns it uses and the label, so that a row
    differing only in a column it dropped (an ID) counts as one it trained on."""
    X = data.X.rename(columns=str)[used_columns(model)]
    buffer = io.BytesIO()
    np.save(buffer, np.unique(row_hashes(X, data.labels)), allow_pickle=False)
    return {TRAINING_ROWS: buffer.getvalue()}


def _unseen(X: pd.DataFrame, labels: np.ndarray, model: Any, seen: np.ndarray) -> np.ndarray:
    """Which rows are not among the ``seen`` hashes of the rows ``model`` trained on."""
    used, everything = used_columns(model), [str(c) for c in model.feature_names_in_]
    matched = np.isin(row_hashes(X[used], labels), seen)
    # Versions registered before the hashes were of the used columns hashed every column.
    if len(used) < len(everything) and set(everything) <= set(X.columns):
        matched |= np.isin(row_hashes(X[everything], labels), seen)
    return ~matched


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger scored on the same ``rows`` validation rows (``champion`` and
    ``rows`` None: it could not be, ``problem`` says why; the challenger is then scored on all).

    ``std_error`` is the paired bootstrap standard error of the challenger's gain over the
    champion on those rows (None when they were not compared).
    """

    challenger: float
    champion: Optional[float]
    rows: Optional[int]
    problem: str = ""
    std_error: Optional[float] = None


MIN_NEW_ROWS = 30  # fewer validation rows new to the champion are too few to compare on


def _score(loss: float, metric: str) -> float:
    return -loss if METRICS[metric].greater_is_better else loss


def _challenger_predictions(data: PreparedData, plan: SplitPlan,
                            challenger: CandidateResult) -> tuple[np.ndarray, np.ndarray]:
    """The validation rows the challenger predicted out of fold, and its predictions on them
    (probabilities clipped and renormalized, as its own metrics take them)."""
    valid = np.zeros(len(data.y), dtype=bool)
    valid[np.concatenate([rows for _, rows in plan.folds])] = True
    predicted, (oof,) = validated_predictions([challenger.oof], len(data.y), data.task)
    oof = oof[valid[predicted]]
    if data.task == "classification":
        oof = clip_probabilities(oof)
    return np.flatnonzero(predicted & valid), oof


def _too_few(data: PreparedData, rows: np.ndarray) -> str:
    """Why these new rows cannot decide (empty: they can)."""
    if len(rows) == 0:
        return ("the champion trained on every validation row of this run, so its score on "
                "them would be optimistic")
    one_class = data.task == "classification" and len(np.unique(data.y[rows])) < 2
    if len(rows) >= MIN_NEW_ROWS and not one_class:
        return ""
    return (f"only {len(rows)} validation rows of this run are new to the champion"
            f"{', all of one class' if one_class else ''}: too few to compare on (at least "
            f"{MIN_NEW_ROWS}{', of two classes or more' if data.task == 'classification' else ''}"
            ")")


def compare_with_champion(registry: Registry, champion_version: Optional[int],
                          data: PreparedData, plan: SplitPlan, metric: str,
                          challenger: CandidateResult, seed: int = 0,
                          seconds: Optional[float] = None) -> Comparison:
    """Score the champion and the challenger on the same validation rows of this run.

    Parameters
    ----------
    registry : Registry
    champion_version : int or None
        The version to compare with (None: there is no champion yet).
    data, plan : PreparedData, SplitPlan
        This run's table and validation scheme.
    metric : str
    challenger : CandidateResult
        The published entry; it is scored by its out-of-fold predictions.
    seed : int, default=0
        Seed of the bootstrap of the gain.
    seconds : float, optional
        Time the bootstrap may take (see :func:`tasks.baseline.bootstrap_gain`).

    Returns
    -------
    Comparison
        On the validation rows the champion did not train on, when its version records them
        (its score on its own training rows would be optimistic); on all of them for a
        champion published before the records. No comparison (``champion`` None, ``problem``
        saying why) when fewer than ``MIN_NEW_ROWS`` rows (or one class) are left, or the
        champion cannot score them.
    """
    rows, oof = _challenger_predictions(data, plan, challenger)

    def challenger_score(keep: np.ndarray) -> float:
        return _score(prediction_loss(data.task, metric, data.y[rows[keep]], oof[keep]), metric)

    everything = np.ones(len(rows), dtype=bool)
    if champion_version is None:
        return Comparison(challenger_score(everything), None, None, "no champion yet")
    with registered_model(registry, champion_version) as (champion, _):
        seen_file = champion.path.parent / TRAINING_ROWS
        seen = np.load(seen_file, allow_pickle=False) if seen_file.is_file() else None
    X = data.X.rename(columns=str).iloc[rows]
    missing = [c for c in used_columns(champion.model) if c not in X.columns]
    if missing:
        return Comparison(challenger_score(everything), None, None,
                          "the champion cannot score the new data: missing column(s) "
                          + listed(missing, 10))
    keep = everything if seen is None else _unseen(X, data.labels[rows], champion.model, seen)
    problem = _too_few(data, rows[keep])
    if problem:
        return Comparison(challenger_score(everything), None, None, problem)
    try:
        theirs = model_predictions(champion.model, X[keep], data)
    except (ValueError, KeyError) as exc:
        return Comparison(challenger_score(everything), None, None,
                          f"the champion cannot score the new data: {str(exc).splitlines()[0]}")
    y = data.y[rows[keep]]
    losses = [prediction_loss(data.task, metric, y, p) for p in (oof[keep], theirs)]
    if not np.isfinite(losses).all():
        whose = "the champion's score" if np.isfinite(losses[0]) else f"{metric}"
        return Comparison(challenger_score(everything), None, None,
                          f"{whose} cannot be computed on the {len(y)} validation rows new to "
                          "the champion")
    _, std_error, _ = bootstrap_gain(y, oof[keep], theirs, data.task, metric, seed,
                                     seconds=seconds)
    return Comparison(_score(losses[0], metric), _score(losses[1], metric), len(y),
                      std_error=std_error)


def _promote(registry: Registry, decision: Decision,
             compared_with: Optional[int]) -> Decision:
    """Make the challenger the champion unless another run replaced the champion it was
    compared with meanwhile, or held the lock too long; the decision as it ended."""
    version = decision.challenger_version
    by_hand = kept_by_hand(version, champion=compared_with is not None)
    try:
        with registry.promotion_lock():
            now = registry.champion()
            if now != compared_with:
                compared = "found no champion" if compared_with is None else (
                    f"compared with v{compared_with}")
                return dataclasses.replace(decision, promoted=False, reason=(
                    f"{decision.reason}, but the champion became v{now} while this run "
                    f"{compared}: {by_hand}"))
            registry.set_champion(version, note=decision.reason)
    except RegistryBusy as exc:
        return dataclasses.replace(decision, promoted=False,
                                   reason=f"{decision.reason}, but {exc}: {by_hand}")
    return decision


# No retries: a second attempt would add the model again as another version.
@task(name="register", cache_policy=NO_CACHE)
def register_task(settings: TrainSettings, output: str, data: PreparedData, plan: SplitPlan,
                  metric: str, challenger: CandidateResult, artifact_key: str,
                  seconds: Optional[float] = None) -> Decision:
    """Add the published model as a new version; promote it when it beats the champion by
    more than ``settings.promotion_margin`` and ``settings.promotion_std_errors`` standard
    errors (``seconds``: the time the bootstrap of the gain may take)."""
    registry = Registry(settings.registry, model_name(settings))
    champion_version = registry.champion()
    comparison = compare_with_champion(registry, champion_version, data, plan, metric,
                                       challenger, settings.seed, seconds)
    version = registry.add(output)
    decision = decide(registry.name, version, champion_version, metric,
                      METRICS[metric].greater_is_better, comparison.challenger,
                      comparison.champion, settings.promotion_margin, comparison.problem,
                      rows=comparison.rows, std_error=comparison.std_error,
                      std_errors_needed=settings.promotion_std_errors)
    return settle(registry, decision, champion_version, artifact_key,
                  "Champion/challenger decision on the same validation rows")


def settle(registry: Registry, decision: Decision, champion_version: Optional[int],
           artifact_key: str, description: str) -> Decision:
    """Promote the challenger when ``decision`` says so (unless another run replaced
    ``champion_version`` meanwhile), record the decision as it ended, log it, and show it in
    the UI (the ``promotion`` artifact)."""
    if decision.promoted:
        decision = _promote(registry, decision, champion_version)
    registry.record(decision)
    get_run_logger().info("registry %s: version %d, %s: %s", decision.name,
                          decision.challenger_version, "promoted to champion"
                          if decision.promoted else "not promoted", decision.reason)
    create_table_artifact(table=[json_safe(decision.to_dict())],
                          key=f"{artifact_key}-promotion", description=description)
    return decision
