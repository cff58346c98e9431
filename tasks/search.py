"""Candidate proposals: every family's cheap start first, then samples of the spaces."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from models import DataShape, ModelFamily
from tasks.evaluate import loss_of
from tasks.types import CandidateResult, CandidateSpec

__all__ = ["RandomSearch"]


class RandomSearch:
    """A sound first search; it sees families' spaces and scores, never estimators.

    Round one proposes each family's ``initial_config`` (cheapest family first). Afterwards each
    proposal samples a family's space, drawing better-scoring families more often (weights fall
    with the family's rank), and never repeats a configuration.

    Parameters
    ----------
    families : sequence of ModelFamily subclasses
    task : str
    shape : DataShape
    metric : str
        The primary metric, to rank families.
    seed : int
    """

    def __init__(self, families: Sequence[type[ModelFamily]], task: str, shape: DataShape,
                 metric: str, seed: int) -> None:
        self.families = {f.name: f for f in sorted(families, key=lambda f: (f.cost, f.name))}
        self.task = task
        self.shape = shape
        self.metric = metric
        self.rng = np.random.default_rng(seed)
        self.next_id = 1
        self.seen: set[str] = set()
        self.best_loss: dict[str, float] = {name: float("inf") for name in self.families}
        self.pending_initial = list(self.families)

    def _key(self, family: str, config: dict[str, Any]) -> str:
        return json.dumps([family, config], sort_keys=True, default=str)

    def _spec(self, family: str, config: dict[str, Any]) -> CandidateSpec:
        self.seen.add(self._key(family, config))
        spec = CandidateSpec(self.next_id, family, config)
        self.next_id += 1
        return spec

    def _family_weights(self) -> np.ndarray:
        ranked = sorted(self.families, key=lambda n: self.best_loss[n])
        weights = np.array([1.0 / (1 + ranked.index(n)) for n in self.families])
        return weights / weights.sum()

    def _sample(self) -> CandidateSpec | None:
        names = list(self.families)
        for _ in range(50):
            family = names[int(self.rng.choice(len(names), p=self._family_weights()))]
            space = self.families[family].search_space(self.task, self.shape)
            config = {name: param.sample(self.rng) for name, param in space.items()}
            if self._key(family, config) not in self.seen:
                return self._spec(family, config)
        return None

    def propose(self, n: int) -> list[CandidateSpec]:
        """Up to ``n`` new candidates (fewer only when the spaces are exhausted)."""
        batch: list[CandidateSpec] = []
        while self.pending_initial and len(batch) < n:
            family = self.pending_initial.pop(0)
            batch.append(self._spec(
                family, self.families[family].initial_config(self.task, self.shape)))
        while len(batch) < n:
            spec = self._sample()
            if spec is None:
                break
            batch.append(spec)
        return batch

    def tell(self, results: Sequence[CandidateResult]) -> None:
        """Record finished candidates' scores."""
        for result in results:
            if result.status == "ok":
                loss = loss_of(self.metric, result.metrics.get(self.metric, float("nan")))
                family = result.spec.family
                self.best_loss[family] = min(self.best_loss[family], loss)
