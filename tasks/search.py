"""Candidate proposals: a warm-start portfolio, then model-based search in the families that pay.

The searcher sees families' spaces and scores, never estimators. It proposes one candidate at a
time so that a free worker never waits for a batch:

1. the warm start: the ``initial_config`` of every *baseline* family (scikit-learn's
   HistGradientBoosting defaults, a strong floor that every run evaluates), then the portfolio's
   configurations for this task (measured across many datasets, see
   ``benchmarks/build_portfolio.py``), then the ``initial_config`` of every family the portfolio
   leaves out;
2. afterwards a family is chosen by its *estimated cost for improvement* (after FLAML's ECI): the
   seconds it has been taking to improve, plus, for a family behind the best, the time its rate
   of improvement needs to close the gap; cheap, improving families are drawn most often;
3. within the family an optuna TPE study proposes the configuration (:class:`FamilyTuner`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from models import DataShape, ModelFamily
from tasks._tuner import FamilyTuner
from tasks.evaluate import loss_of
from tasks.types import CandidateResult, CandidateSpec

__all__ = ["MAX_FAILURES", "Searcher", "unusable"]

_GREEDY = 0.7
MAX_FAILURES = 3


@dataclass
class _FamilyRecord:
    trials: int = 0
    seconds: float = 0.0
    first_loss: float = math.inf
    best_loss: float = math.inf
    since_improvement: float = 0.0
    failures_in_a_row: int = 0

    @property
    def given_up(self) -> bool:
        """``MAX_FAILURES`` candidates failed (raised an error) in a row and none ever
        succeeded: a failure costs next to no time, so the cost for improvement would draw the
        family again and again."""
        return self.failures_in_a_row >= MAX_FAILURES and not math.isfinite(self.best_loss)


class Searcher:
    """Proposes candidates one at a time and learns from their results.

    Parameters
    ----------
    families : sequence of ModelFamily subclasses
    task : str
    shape : DataShape
    metric : str
        The primary metric (its direction decides what a better score is).
    seed : int
    warm_start : sequence of (family, config)
        Configurations to try first, in order; those of families not searched are left out.
    measured_time : bool, default=True
        Judge families by the seconds their candidates took. When False, by their cost hints
        (:meth:`ModelFamily.relative_cost`) instead, so that the same results always lead to the
        same proposals (runs bounded by trials, not time, are then reproducible).
    sampler : {"tpe", "random"}, default="tpe"
        How configurations are drawn within a family after the warm start.
    """

    def __init__(self, families: Sequence[type[ModelFamily]], task: str, shape: DataShape,
                 metric: str, seed: int, warm_start: Sequence[tuple[str, dict]] = (),
                 measured_time: bool = True, sampler: str = "tpe") -> None:
        self.measured_time = measured_time
        self.hints = {f.name: f.relative_cost(shape) for f in families}
        ordered = sorted(families, key=lambda f: (self.hints[f.name], f.name))
        self.families = {f.name: f for f in ordered}
        self.metric = metric
        self.rng = np.random.default_rng(seed)
        self.tuners = {f.name: FamilyTuner(f, task, shape, seed + i, sampler=sampler)
                       for i, f in enumerate(ordered)}
        self.records = {name: _FamilyRecord() for name in self.families}
        self.queue: list[tuple[str, dict[str, Any]]] = [
            (f.name, f.initial_config(task, shape)) for f in ordered if f.baseline]
        self.queue += [
            (family, dict(config)) for family, config in warm_start if family in self.families]
        covered = {family for family, _ in self.queue}
        self.queue += [(f.name, f.initial_config(task, shape)) for f in ordered
                       if f.name not in covered]
        self.seen: set[str] = set()
        self.next_id = 1

    @property
    def all_given_up(self) -> bool:
        """Whether the search gave up on every family (see :meth:`tell`)."""
        return all(record.given_up for record in self.records.values())

    def _spec(self, family: str, config: dict[str, Any], fraction: float = 1.0) -> CandidateSpec:
        self.seen.add(family + FamilyTuner.key(config))
        spec = CandidateSpec(self.next_id, family, config, fraction)
        self.next_id += 1
        return spec

    def _eci(self, family: str) -> float:
        record = self.records[family]
        if record.trials == 0:
            return 0.0
        per_trial = record.seconds / record.trials
        best = min(r.best_loss for r in self.records.values())
        eci = max(record.since_improvement, per_trial, 1e-3)
        if record.best_loss > best and math.isfinite(best):
            gap = record.best_loss - best
            gained = record.first_loss - record.best_loss
            speed = gained / record.seconds if gained > 0 and record.seconds > 0 else 0.0
            eci += min(gap / speed, 100 * eci) if speed > 0 else 100 * eci
        return eci

    def _pick_family(self, allowed: list[str]) -> str:
        ecis = np.array([self._eci(name) for name in allowed])
        if self.rng.random() < _GREEDY:
            return allowed[int(np.argmin(ecis))]
        weights = 1.0 / np.maximum(ecis, 1e-6)
        return allowed[int(self.rng.choice(len(allowed), p=weights / weights.sum()))]

    def propose(self, time_left: float = math.inf,
                predict: Optional[Callable[[CandidateSpec], float]] = None,
                fraction: float = 1.0) -> Optional[CandidateSpec]:
        """The next candidate whose predicted seconds fit ``time_left`` (None: none does).

        Parameters
        ----------
        time_left : float, default=inf
        predict : callable, optional
            Seconds a spec is expected to take; without it every spec fits.
        fraction : float, default=1.0
            Share of the training rows the candidate is first evaluated on (successive halving).
            Only while its run on all rows could follow in ``time_left``: a configuration
            that can only be screened could never be chosen, so it then starts on all rows.
        """
        def start(family: str, config: dict[str, Any]) -> Optional[float]:
            if predict is None:
                return fraction
            full = predict(CandidateSpec(self.next_id, family, config, 1.0))
            if fraction < 1.0 and (
                    predict(CandidateSpec(self.next_id, family, config, fraction)) + full
                    <= time_left):
                return fraction
            return 1.0 if full <= time_left else None

        while self.queue:
            family, config = self.queue.pop(0)
            if family + FamilyTuner.key(config) in self.seen or self.records[family].given_up:
                continue
            if (share := start(family, config)) is not None:
                return self._spec(family, config, share)
        allowed = [name for name in self.families if not self.records[name].given_up]
        while allowed:
            family = self._pick_family(allowed)
            config = self.tuners[family].ask()
            if config is not None:
                if (share := start(family, config)) is not None:
                    return self._spec(family, config, share)
                self.tuners[family].tell(config, None)
            allowed.remove(family)
        return None

    def promote(self, spec: CandidateSpec) -> CandidateSpec:
        """The same configuration on all rows (after it did well on a subsample)."""
        return self._spec(spec.family, spec.config, 1.0)

    def tell(self, results: Sequence[CandidateResult]) -> list[str]:
        """Record finished candidates (in the order given).

        Returns
        -------
        list of str
            The families these results made the search give up on (no more candidates):
            ``MAX_FAILURES`` failed with an error in a row, and none of theirs has succeeded.
        """
        given_up = []
        for result in results:
            family = result.spec.family
            if family not in self.families:
                continue
            record = self.records[family]
            if self.measured_time:
                seconds = result.fit_seconds + result.predict_seconds
            else:
                spec = result.spec
                seconds = self.hints[family] * self.families[family].cost_units(
                    spec.config) * spec.fraction
            loss = (loss_of(self.metric, result.metrics.get(self.metric, math.nan))
                    if result.status == "ok" else math.inf)
            record.trials += 1
            record.seconds += seconds
            # Only errors count: a timeout or a candidate too slow to predict has cost its
            # seconds, which already weigh on the family, and a cheaper configuration may pass.
            failed = result.status == "failed"
            record.failures_in_a_row = record.failures_in_a_row + 1 if failed else 0
            if record.given_up and record.failures_in_a_row == MAX_FAILURES:
                given_up.append(family)
            record.first_loss = loss if record.trials == 1 else record.first_loss
            if loss < record.best_loss:
                record.best_loss, record.since_improvement = loss, 0.0
            else:
                record.since_improvement += seconds
            self.tuners[family].tell(result.spec.config,
                                     loss if math.isfinite(loss) else None)
        return given_up


def unusable(family: type[ModelFamily], task: str, shape: DataShape) -> Optional[str]:
    """Why ``family`` cannot be searched on data of ``shape`` (its space, first configuration,
    cost hints or applicability cannot be worked out: a plug-in's mistake), or None.

    Parameters
    ----------
    family : ModelFamily subclass
    task : str
    shape : DataShape

    Returns
    -------
    str or None
        The error, in one line.
    """
    try:
        FamilyTuner(family, task, shape, seed=0)
        family.cost_units(family.initial_config(task, shape))
        family.relative_cost(shape)
        family.is_applicable(task, shape)
    except Exception as exc:  # noqa: BLE001 - any error of the family's own code
        return f"{type(exc).__name__}: {exc}".splitlines()[0].rstrip(": ")
    return None
