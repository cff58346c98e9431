"""The candidate loop: propose a batch, train it as mapped tasks, learn, until budget or trials end."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

from prefect import unmapped
from prefect.logging import get_run_logger

from tasks.evaluate import METRICS, loss_of
from tasks.search import RandomSearch
from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.train import train_candidate_task
from tasks.types import CandidateResult, CandidateSpec
from tasks.validate import PreparedData

__all__ = ["Budget", "refit_reserve", "run_candidates"]

PUBLISH_SECONDS = 3.0


@dataclass(frozen=True)
class Budget:
    """Wall-clock budget of the whole run, counted from ``started`` (``time.time()``)."""

    started: float
    seconds: Optional[float]

    def remaining(self) -> float:
        """Seconds left (infinite without a budget)."""
        if self.seconds is None:
            return math.inf
        return self.started + self.seconds - time.time()

    def elapsed_fraction(self) -> float:
        """Share of the budget used (0 without a budget)."""
        return 0.0 if self.seconds is None else (time.time() - self.started) / self.seconds


def refit_reserve(results: list[CandidateResult], metric: str, plan: SplitPlan) -> float:
    """Seconds to keep for refitting the current best on all rows and publishing."""
    ok = [r for r in results if r.status == "ok"]
    if not ok:
        return PUBLISH_SECONDS
    best = min(ok, key=lambda r: loss_of(metric, r.metrics.get(metric, math.nan)))
    per_fold = best.fit_seconds / max(1, len(plan.folds))
    train_share = len(plan.folds[0][0]) / max(1, len(plan.folds[0][0]) + len(plan.folds[0][1]))
    return PUBLISH_SECONDS + 1.5 * per_fold / max(train_share, 0.5)


def _collect(specs: list[CandidateSpec], futures: list) -> list[CandidateResult]:
    results = []
    for spec, future in zip(specs, futures):
        future.wait()
        state = future.state
        if state.is_completed():
            result = dataclasses.replace(future.result(), spec=spec,
                                         cached=state.name == "Cached")
        else:
            error = future.result(raise_on_failure=False)
            timed_out = state.name == "TimedOut" or isinstance(error, TimeoutError)
            results.append(CandidateResult(
                spec, "timeout" if timed_out else "failed",
                error=f"{type(error).__name__}: {error}".splitlines()[0][:300]))
            continue
        results.append(result)
    return results


def _affordable(specs: list[CandidateSpec], cost: dict[str, float], left: float) -> list:
    return [s for s in specs if cost.get(s.family, 0.0) < left]


def run_candidates(
    search: RandomSearch,
    data: PreparedData,
    plan: SplitPlan,
    settings: TrainSettings,
    metric: str,
    budget: Budget,
    on_progress: Callable[[float], None] = lambda fraction: None,
) -> tuple[list[CandidateResult], str]:
    """Train batches of candidates (one mapped task each) until trials, budget or exit score end.

    Returns
    -------
    results : list of CandidateResult
    stop_reason : str
    """
    logger = get_run_logger()
    results: list[CandidateResult] = []
    cost: dict[str, float] = {}
    max_trials = settings.max_trials or math.inf
    sign = 1 if METRICS[metric].greater_is_better else -1
    while True:
        if len(results) >= max_trials:
            return results, f"reached max_trials={settings.max_trials}"
        left = budget.remaining() - refit_reserve(results, metric, plan)
        if left <= 1.0:
            return results, "time budget used"
        n = int(min(settings.n_workers, max_trials - len(results)))
        specs = _affordable(search.propose(n), cost, left)
        if not specs:
            return results, "no candidate can finish within the time left"
        # Threads cannot interrupt a running fit, so the timeout is a deadline that each candidate
        # checks before every fold: past it, the candidate stops and is recorded as a timeout.
        timeout = min(settings.candidate_timeout or math.inf, left)
        deadline = None if math.isinf(timeout) else time.time() + timeout
        futures = train_candidate_task.map(
            specs, data=unmapped(data), plan=unmapped(plan), seed=unmapped(settings.seed),
            deadline=unmapped(deadline))
        batch = _collect(specs, futures)
        search.tell(batch)
        for result in batch:
            seconds = result.fit_seconds + result.predict_seconds
            if not result.cached:
                cost[result.spec.family] = max(cost.get(result.spec.family, 0.0), seconds)
            score = result.metrics.get(metric, math.nan)
            logger.info("%s: %s %s=%.5g in %.1fs%s%s", result.spec.run_name, result.status,
                        metric, score, seconds, " (cached)" if result.cached else "",
                        f" - {result.error}" if result.error else "")
        results.extend(batch)
        on_progress(max(budget.elapsed_fraction(), len(results) / max_trials))
        scores = [r.metrics.get(metric, math.nan) for r in batch if r.status == "ok"]
        if settings.exit_score is not None and any(
            sign * (s - settings.exit_score) >= 0 for s in scores if not math.isnan(s)
        ):
            return results, f"reached exit_score={settings.exit_score}"
