"""Registering a published model and promoting it over the champion when it wins."""

from __future__ import annotations

import math
import re
import tempfile
from typing import Optional

import numpy as np
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.evaluate import METRICS
from tasks.explain import model_loss
from tasks.model_io import load_verified
from tasks.registry import Decision, Registry, decide
from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.validate import PreparedData

__all__ = ["champion_score", "model_name", "register_task"]


def model_name(settings: TrainSettings) -> str:
    """The registry name: ``model_name``, else the target column made name-safe."""
    if settings.model_name:
        return settings.model_name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", settings.target).strip("-._") or "model"


def champion_score(registry: Registry, data: PreparedData, plan: SplitPlan,
                   metric: str) -> tuple[Optional[float], str]:
    """The champion's primary metric on the challenger's validation rows (None: no champion).

    Returns the score and, when the champion cannot score these rows, why.
    """
    if registry.champion() is None:
        return None, "no champion yet"
    folder = registry.resolve("champion")
    with tempfile.TemporaryDirectory(prefix="automl-champion-") as local:
        registry.fs.get(folder.rstrip("/") + "/", local, recursive=True)
        champion = load_verified(local)
    rows = np.unique(np.concatenate([valid for _, valid in plan.folds]))
    try:
        loss = model_loss(champion.model, data.X.iloc[rows], data.y[rows], data, metric)
    except (ValueError, KeyError) as exc:
        return None, f"the champion cannot score the new data: {str(exc).splitlines()[0]}"
    return (-loss if METRICS[metric].greater_is_better else loss), ""


# No retries: a second attempt would add the model again as another version.
@task(name="register", cache_policy=NO_CACHE)
def register_task(settings: TrainSettings, output: str, data: PreparedData, plan: SplitPlan,
                  metric: str, challenger: float, artifact_key: str) -> Decision:
    """Add the published model as a new version; promote it when it beats the champion."""
    registry = Registry(settings.registry, model_name(settings))
    champion_version = registry.champion()
    champion, problem = champion_score(registry, data, plan, metric)
    version = registry.add(output)
    decision = decide(registry.name, version, champion_version, metric,
                      METRICS[metric].greater_is_better, challenger,
                      None if champion is None or math.isnan(champion) else champion,
                      settings.promotion_margin,
                      problem or "the champion's score on these rows is not a number")
    if decision.promoted:
        registry.set_champion(version, note=decision.reason)
    registry.record(decision)
    create_table_artifact(table=[decision.to_dict()], key=f"{artifact_key}-promotion",
                          description="Champion/challenger decision on the same validation rows")
    return decision
