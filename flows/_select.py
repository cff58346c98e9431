"""Family choice before the search, winner selection after it, and the run's facts."""

from __future__ import annotations

import math
import time
from typing import Any, Optional

import numpy as np
import pandas as pd
from prefect.logging import get_run_logger

from flows._loop import AT_CANDIDATE_TIMEOUT, TOO_LITTLE_TIME, Budget
from models import DataShape, ModelFamily, registry
from tasks.errors import AutoMLInputError, nearest_names
from tasks.evaluate import loss_of
from tasks.search import unusable
from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.types import CandidateResult
from tasks.validate import PreparedData

__all__ = ["baseline_of", "check_time_for_candidates", "choose_families", "select_best",
           "summarize_run"]


def choose_families(settings: TrainSettings, shape: DataShape) -> list[type[ModelFamily]]:
    """The families to search: registered for the task, filtered by include/exclude and size.

    With an empty ``shape`` (before the data is loaded) it only checks the names.
    """
    reg = registry()
    names = reg.names(settings.task)
    for name in [*settings.include, *settings.exclude]:
        if name not in reg:
            raise AutoMLInputError(f"unknown model family {name!r}." + nearest_names(name, names))
    for name in settings.include:
        if name not in names:
            raise AutoMLInputError(f"model family {name!r} does not support {settings.task}")
    chosen = [n for n in (settings.include or names) if n not in settings.exclude]
    broken = {}
    if shape.n_rows:
        broken = {n: why for n in chosen if (why := unusable(reg.get(n), settings.task, shape))}
        for name, why in broken.items():
            get_run_logger().warning("model family %s is left out: it cannot be searched on "
                                     "this data (%s)", name, why)
        chosen = [n for n in chosen if n not in broken
                  and reg.get(n).is_applicable(settings.task, shape)]
    if not chosen:
        raise AutoMLInputError(
            f"no model family left for {settings.task}"
            + (f" on {shape.n_rows} rows" if shape.n_rows else "")
            + " after --include/--exclude; available: " + ", ".join(names)
            + "".join(f"; {n} is broken ({why})" for n, why in broken.items()))
    return [reg.get(n) for n in chosen]


def check_time_for_candidates(results: list[CandidateResult], budget: Budget,
                              candidate_timeout: Optional[float] = None) -> None:
    """Raise when the time budget ran out before any candidate could be trained or backtested
    on all rows (every one was left out for time, or stopped by it; under successive halving,
    some may have been trained on a subsample only), or when the candidate timeout (shorter
    than the time left when they started) stopped every one.

    Raises
    ------
    AutoMLInputError
        Naming ``--time-budget`` and the seconds that went before training, or
        ``--candidate-timeout``.
    """
    full = [r for r in results if r.spec.fraction >= 1.0]
    if candidate_timeout is not None and full and all(
            r.status == "timeout" and AT_CANDIDATE_TIMEOUT in r.error for r in full):
        raise AutoMLInputError(
            f"--candidate-timeout {candidate_timeout:g} s stopped every candidate "
            f"({len(full)}) before it finished; give a larger --candidate-timeout")
    if budget.seconds is None or not all(
            r.status == "timeout" or r.error == TOO_LITTLE_TIME for r in full):
        return
    stopped = sum(r.status == "timeout" for r in full)
    screened = sum(r.status == "ok" for r in results if r.spec.fraction < 1.0)
    given = budget.given if budget.given is not None else budget.seconds
    if screened:
        raise AutoMLInputError(
            f"--time-budget {given:g} s ran out before any candidate was trained on all rows: "
            f"{'1 was' if screened == 1 else f'{screened} were'} trained on a subsample of them "
            "only (successive halving); give a larger --time-budget")
    if stopped:
        raise AutoMLInputError(
            f"--time-budget {given:g} s ran out before any candidate finished: "
            + ("1 started and was stopped at its deadline" if stopped == 1 else
               f"{stopped} started and were stopped at their deadline")
            + "; give a larger --time-budget")
    raise AutoMLInputError(
        f"--time-budget {given:g} s ran out before any candidate could be trained: "
        f"{time.time() - budget.started:.0f} s went to start-up, loading, validation and "
        "featurization on this machine; give a larger --time-budget")


def select_best(results: list[CandidateResult], metric: str) -> CandidateResult:
    """The candidate with the best primary metric on validation (lowest id breaks ties)."""
    ok = [r for r in results if r.status == "ok" and r.spec.fraction >= 1.0
          and not math.isnan(r.metrics.get(metric, math.nan))]
    if not ok:
        errors = "; ".join(sorted({r.error for r in results if r.error})[:3]) or "none was trained"
        raise RuntimeError(
            f"no candidate finished successfully ({len(results)} tried: {errors}); give a larger "
            "--time-budget or check the data")
    return min(ok, key=lambda r: (loss_of(metric, r.metrics[metric]), r.spec.id))


def baseline_of(results: list[CandidateResult], task: str,
                shape: DataShape) -> Optional[CandidateResult]:
    """The baseline's result: the untuned ``initial_config`` of a *baseline* family
    (HistGradientBoosting defaults), validated on all rows; None when it was not (e.g. its
    family was excluded, or it failed)."""
    reg = registry()
    for r in results:
        if r.spec.family not in reg or r.status != "ok" or r.spec.fraction < 1.0 or r.oof is None:
            continue
        family = reg.get(r.spec.family)
        if family.baseline and r.spec.config == family.initial_config(task, shape):
            return r
    return None


def _positive_text(data: PreparedData, settings: TrainSettings) -> str:
    counts = np.bincount(data.y, minlength=2)
    why = ("given" if settings.positive_class is not None
           else "the larger" if data.classes.dtype.kind in "biuf"
           else "the rarer" if counts[1] < counts[0] else "as common: the later in order")
    return f"{data.positive_class!r} ({why}; average precision and the charts score it)"


def _calibration_text(temperature: float, members: list[dict[str, Any]]) -> Optional[str]:
    """How the published probabilities were calibrated (log loss), or None when they were not:
    the model's or blend's own ``temperature``, and each blend member's."""
    scaled = [m for m in members if m["temperature"] != 1.0]
    if temperature == 1.0 and not scaled:
        return None
    named = ", ".join(f"{m['family']}-{m['id']:02d} {m['temperature']:.3g}" for m in scaled)
    parts = [f"each member's by its own temperature ({named})"] if scaled else []
    if temperature != 1.0:
        way = "softened: over" if temperature > 1 else "sharpened: under"
        parts.append(f"{'the blend' if members else 'the model'}'s by a temperature of "
                     f"{temperature:.3g} ({way}confident)")
    return ("log-probabilities divided, each factor fitted on the out-of-fold rows to minimise "
            "log loss: " + "; ".join(parts))


def summarize_run(
    settings: TrainSettings, data: PreparedData, plan: SplitPlan, metric: str,
    best: CandidateResult, results: list[CandidateResult], stop_reason: str, budget: Budget,
    features: pd.DataFrame,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``metrics.json`` and ``manifest.json`` contents (model sha256 and versions added later)."""
    trained = [r for r in results if r.spec.family != "ensemble"]
    counts = pd.Series([r.status for r in trained]).value_counts().to_dict()
    members = _members_of(best, results)
    summary = {
        "task": settings.task, "target": settings.target, "metric": metric,
        "best": f"{best.spec.run_name} ({metric}={best.metrics[metric]:.5g})" + (
            ": " + ", ".join(f"{m['family']}-{m['id']:02d} x {m['weight']:g}"
                             for m in members["members"]) if members else ""),
        "validation": plan.describe(), "rows": len(data.y), "raw_columns": data.X.shape[1],
        "features": len(features), "candidates": len(trained),
        "stopped": stop_reason,
    }
    if data.positive_class is not None:
        summary["positive class"] = _positive_text(data, settings)
    calibration = _calibration_text(best.temperature, members.get("members", []))
    if calibration:
        summary["calibration"] = calibration
    if best.spec.family == "ensemble":
        single = select_best([r for r in results if r.spec.family != "ensemble"], metric)
        summary["blend"] = (
            f"{metric} {best.metrics[metric]:.5g} against {single.metrics[metric]:.5g} for the "
            f"best single candidate ({single.spec.run_name}); its weights were chosen on the same "
            "out-of-fold rows, so part of that edge may not carry over to new rows")
    metrics = {
        "metric": metric, "value": best.metrics[metric], "validation_metrics": best.metrics,
        "validation": plan.describe(),
        "best": {"id": best.spec.id, "family": best.spec.family, "config": best.spec.config,
                 "fit_seconds": best.fit_seconds, "temperature": best.temperature, **members},
        "candidates": {"total": len(trained), **{str(k): int(v) for k, v in counts.items()}},
        "stop_reason": stop_reason,
        "positive_class": data.positive_class,
        "time_budget": settings.effective_time_budget,
        "elapsed_before_publish_seconds": round(budget.seconds - budget.remaining(), 2)
        if budget.seconds is not None else None,
        "guardrails": [g.to_dict() for g in data.guardrails],
        "rows": {"train": len(data.y), "dropped_missing_target": data.n_rows_dropped},
        "summary": summary,
    }
    manifest = {
        "settings": settings.model_dump(), "seed": settings.seed, "task": settings.task,
        "target": settings.target, "data_fingerprint": data.fingerprint,
        "feature_columns": list(data.X.columns), "column_roles": data.roles,
        # In the model's classes_ order (of two classes, data.classes puts the positive last).
        "classes": None if data.classes is None else [str(c) for c in np.sort(data.classes)],
        "model_file": "model.pkl", "format": "joblib",
    }
    return metrics, manifest


def _members_of(best: CandidateResult, results: list[CandidateResult]) -> dict[str, Any]:
    """An ensemble's members as ``{"members": [{"id", "family", "weight", "temperature"}, ...]}``
    (heaviest first); empty for a single model."""
    if best.spec.family != "ensemble":
        return {}
    by_id = {r.spec.id: r for r in results}
    members = [{"id": int(i), "family": by_id[int(i)].spec.family if int(i) in by_id else "?",
                "weight": w, "temperature": by_id[int(i)].temperature if int(i) in by_id else 1.0}
               for i, w in best.spec.config["members"].items()]
    return {"members": sorted(members, key=lambda m: (-m["weight"], m["id"]))}
