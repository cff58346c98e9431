"""The candidate loop: keep every worker busy with mapped candidate tasks until trials, budget or
exit score end it.

With a time budget a worker gets a new candidate as soon as it is free, and a candidate is only
started when its predicted seconds fit the time left (less what refit and publishing need). With
only ``max_trials`` the loop runs in fixed rounds of ``n_workers`` and learns from results in
candidate order, so the same data and seed give the same leaderboard.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from prefect import unmapped
from prefect.logging import get_run_logger

from models._calibration import calibrates
from tasks.costs import CostModel
from tasks.evaluate import METRICS, loss_of
from tasks.explain import retrain_seconds
from tasks.search import MAX_FAILURES, Searcher
from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.train import train_candidate_task
from tasks.types import CandidateResult, CandidateSpec
from tasks.validate import PreparedData

__all__ = ["BASELINE_CHECK_SECONDS", "REGISTER_SECONDS", "TOO_LITTLE_TIME", "Budget", "Halving",
           "full_fit_seconds",
           "publish_seconds", "refit_bytes", "refit_reserve", "refit_seconds", "run_candidates"]

PUBLISH_SECONDS = 5.0  # writing the results, the charts and the report
TOO_LITTLE_TIME = "would not fit the time left"  # the error of a candidate left out
AT_CANDIDATE_TIMEOUT = "at the candidate timeout"  # in the error of a timeout it caused
EXPLAIN_SECONDS = 1.0  # shuffling the raw columns once (beyond refitting the model on one fold)
EXPLAIN_SHARE = 0.2  # of the budget, at most, kept for refitting the best to explain it
BASELINE_CHECK_SECONDS = 1.0  # resampling the validation rows (see tasks.baseline)
# Registering, after publishing: loading and scoring the champion, resampling the gain, copying
# the results folder in as a version (0.8 s for the demo data on a 2-core machine).
REGISTER_SECONDS = BASELINE_CHECK_SECONDS + 2.0
# Pickling, hashing and writing the model: a 500 MB forest takes seconds, not a constant.
# Measured on a 2-core machine (extra trees on letter, joblib.dump + sha256): 131 MB at 520 MB/s,
# 392 MB at 291 MB/s; kept at about half the slower.
PUBLISH_BYTES_PER_SECOND = 150e6


def publish_seconds(model_bytes: float) -> float:
    """Seconds to keep for publishing a model of ``model_bytes``."""
    return PUBLISH_SECONDS + model_bytes / PUBLISH_BYTES_PER_SECOND


@dataclass(frozen=True)
class Budget:
    """Wall-clock budget of the whole run, counted from ``started`` (``time.time()``);
    ``given`` is the budget as the user gave it, when part of it is kept for a later step."""

    started: float
    seconds: Optional[float]
    given: Optional[float] = None

    def remaining(self) -> float:
        """Seconds left (infinite without a budget)."""
        if self.seconds is None:
            return math.inf
        return self.started + self.seconds - time.time()

    def elapsed_fraction(self) -> float:
        """Share of the budget used (0 without a budget)."""
        return 0.0 if self.seconds is None else (time.time() - self.started) / self.seconds


@dataclass
class Halving:
    """Asynchronous successive halving with two rungs: a subsample, then all rows.

    New candidates are first trained on ``fraction`` of the training rows; one that ranks in the
    best ``1/eta`` of the subsample results so far is promoted to all rows. Only candidates trained
    on all rows can be selected. Off (``fraction=1``) unless the training rows are many.
    """

    fraction: float = 1.0
    eta: int = 3
    losses: list[float] = field(default_factory=list)

    @classmethod
    def for_rows(cls, n_train_rows: int, min_rows: int = 20_000) -> "Halving":
        """Halving at a quarter of the rows once the training folds exceed ``min_rows``."""
        return cls(0.25 if n_train_rows > min_rows else 1.0)

    def promote(self, result: CandidateResult, metric: str) -> bool:
        """Record a subsample result; whether its configuration earns a run on all rows."""
        if result.spec.fraction >= 1.0 or result.status != "ok":
            return False
        loss = loss_of(metric, result.metrics.get(metric, math.nan))
        self.losses.append(loss)
        ranked = sorted(self.losses)
        cut = ranked[max(0, math.ceil(len(ranked) / self.eta) - 1)]
        return loss <= cut


REFIT_MARGIN = 1.5  # a refit on all rows is planned at this multiple of its scaled fold fit


def _all_rows_scale(plan: SplitPlan) -> float:
    """All rows over a fold's training rows: what a fold's fit time or model size grows by."""
    train_rows = len(plan.folds[0][0])
    return (train_rows + len(plan.folds[0][1])) / max(1, train_rows)


def full_fit_seconds(result: CandidateResult, plan: SplitPlan) -> float:
    """A candidate's mean fold fit, scaled from a fold's training rows to all rows."""
    return result.fit_seconds / max(1, len(plan.folds)) * _all_rows_scale(plan)


def refit_seconds(members: list[CandidateResult], plan: SplitPlan, n_workers: int) -> float:
    """Seconds to refit ``members`` on all rows, side by side on ``n_workers``."""
    refits = [REFIT_MARGIN * full_fit_seconds(m, plan) for m in members]
    return max(max(refits, default=0.0), sum(refits) / max(1, n_workers))


def refit_bytes(members: list[CandidateResult], plan: SplitPlan) -> float:
    """Pickled size of ``members`` refitted on all rows (a fold's model, scaled by rows)."""
    return _all_rows_scale(plan) * sum(m.model_bytes for m in members)


def refit_reserve(results: list[CandidateResult], metric: str, plan: SplitPlan,
                  n_workers: int, budget_seconds: Optional[float] = None) -> float:
    """Seconds to keep for refitting the best few (an ensemble) on all rows, for training the
    best once more without its validation rows (its raw-column importance), comparing the winner
    with the baseline, and publishing.

    Training the best once more is kept only while it takes at most ``EXPLAIN_SHARE`` of
    ``budget_seconds``: on large data the search has the better use for the time, and the
    importance is then measured on the published model when no time is left for it.
    """
    ok = sorted((r for r in results if r.status == "ok" and r.spec.fraction >= 1.0),
                key=lambda r: loss_of(metric, r.metrics.get(metric, math.nan)))
    if not ok:
        return PUBLISH_SECONDS
    # As explaining will decide whether to train the best again on a fold (tasks.explain).
    again = retrain_seconds(ok[0].fit_seconds / max(1, len(plan.folds)))
    if budget_seconds is not None and again > EXPLAIN_SHARE * budget_seconds:
        again = 0.0
    explain = again + EXPLAIN_SECONDS
    return (BASELINE_CHECK_SECONDS + publish_seconds(refit_bytes(ok[:3], plan)) + explain
            + refit_seconds(ok[:3], plan, n_workers))


def _finish(spec: CandidateSpec, future) -> CandidateResult:
    state = future.state
    if state.is_completed():
        return dataclasses.replace(future.result(), spec=spec, cached=state.name == "Cached")
    # The task returns a timeout and a family's failure as results: this is a crash around it.
    error = future.result(raise_on_failure=False)
    return CandidateResult(spec, "failed",
                           error=f"{type(error).__name__}: {error}".splitlines()[0][:300])


def _wait(running: dict, first_only: bool) -> list:
    """Futures of ``running`` that are done: at least one (``first_only``) or all, by id.

    Done means the task returned: its final state is then taken from the future itself, not
    read back from the API, whose record of it may still lag behind.
    """
    wrapped = {f: getattr(f, "wrapped_future", None) for f in running}
    if all(isinstance(w, concurrent.futures.Future) for w in wrapped.values()):
        mode = (concurrent.futures.FIRST_COMPLETED if first_only
                else concurrent.futures.ALL_COMPLETED)
        concurrent.futures.wait(list(wrapped.values()), return_when=mode)
        done = [f for f, w in wrapped.items() if w.done()]
    else:  # other task runners (Dask): poll their own futures, not the API
        def finished(future) -> bool:
            inner = getattr(future, "wrapped_future", None)
            return inner.done() if hasattr(inner, "done") else future.state.is_final()

        while not (any if first_only else all)(finished(f) for f in running):
            time.sleep(0.05)
        done = [f for f in running if finished(f)]
    for future in done:
        future.wait()
    return sorted(done, key=lambda f: running[f].id)


@dataclass
class _Loop:
    searcher: Searcher
    data: PreparedData
    plan: SplitPlan
    settings: TrainSettings
    metric: str
    budget: Budget
    costs: CostModel
    halving: Halving
    on_progress: Callable[[float], None]
    runner: Optional[Any] = None
    results: list[CandidateResult] = field(default_factory=list)
    running: dict = field(default_factory=dict)
    promotions: list[CandidateSpec] = field(default_factory=list)  # screens to run on all rows
    started: int = 0
    stop: Optional[str] = None
    out_of_time: bool = False
    capped: set = field(default_factory=set)  # ids whose deadline was the candidate timeout

    @property
    def max_trials(self) -> float:
        return self.settings.max_trials or math.inf

    def _skip(self, screened: CandidateSpec, why: str, logger) -> None:
        spec = self.searcher.promote(screened)
        logger.info("%s skipped: candidate %d's configuration on all rows %s", spec.run_name,
                    screened.id, why)
        self.results.append(CandidateResult(
            spec, "too_slow", error=TOO_LITTLE_TIME,
            finished_seconds=round(time.time() - self.budget.started, 3)))

    def _next_spec(self, left: float, logger) -> Optional[CandidateSpec]:
        while self.promotions:
            screened = self.promotions.pop(0)
            expected = self.costs.predict(dataclasses.replace(screened, fraction=1.0))
            if expected <= left:
                return self.searcher.promote(screened)
            self._skip(screened, f"would take about {expected:.0f} s, {left:.0f} s left", logger)
        return self.searcher.propose(left, self.costs.predict, self.halving.fraction)

    def finish(self, logger) -> None:
        """Record the promotions the time budget left no room for."""
        while self.promotions and self.out_of_time:
            self._skip(self.promotions.pop(0), "was not started: the time budget was used", logger)

    def launch(self, logger) -> None:
        """Fill the free workers; a promotion whose run on all rows is not expected to finish
        in the time left is recorded as too slow instead."""
        specs: list[CandidateSpec] = []
        reserve = refit_reserve(self.results, self.metric, self.plan, self.settings.n_workers,
                                self.budget.seconds)
        remaining = self.budget.remaining()
        left = remaining - reserve
        while self.stop is None and len(self.running) + len(specs) < self.settings.n_workers:
            if self.started + len(specs) >= self.max_trials:
                self.stop = f"reached max_trials={self.settings.max_trials}"
            elif left <= 1.0:
                self.out_of_time = True
                self.stop = "time budget used" + (
                    f" (its last {min(reserve, max(0.0, remaining)):.0f} s are kept for "
                    "refitting, ensembling, explaining and publishing)" if reserve >= 1 else "")
            elif (spec := self._next_spec(left, logger)) is None:
                if self.running or specs:  # what they teach (promotions, costs) may fit later
                    break
                self.out_of_time = not self.searcher.all_given_up
                self.stop = ("every model family failed its candidates"
                             if self.searcher.all_given_up
                             else "no candidate can finish within the time left")
            else:
                specs.append(spec)
        if not specs:
            return
        # Threads cannot interrupt a running fit, so the timeout is a deadline that each candidate
        # checks before every fold: past it, the candidate stops and is recorded as a timeout.
        timeout = min(self.settings.candidate_timeout or math.inf, left)
        deadline = None if math.isinf(timeout) else time.time() + timeout
        if timeout < left:
            self.capped.update(spec.id for spec in specs)
        parameters = {"spec": specs, "data": unmapped(self.data), "plan": unmapped(self.plan),
                      "seed": unmapped(self.settings.seed), "deadline": unmapped(deadline),
                      "calibrate": unmapped(calibrates(self.metric))}
        if self.runner is None:
            futures = train_candidate_task.map(**parameters)
        else:  # another task runner (Dask) for the candidates only
            futures = self.runner.map(train_candidate_task, parameters)
        self.running.update(zip(futures, specs))
        self.started += len(specs)

    def _checked(self, result: CandidateResult) -> CandidateResult:
        """``result``, with the limit that stopped it named (a timeout) or applied (latency)."""
        if result.status == "timeout" and result.spec.id in self.capped:
            return dataclasses.replace(result, error=f"{result.error} ({AT_CANDIDATE_TIMEOUT}, "
                                                     f"{self.settings.candidate_timeout:g} s)")
        limit = self.settings.predict_time_limit
        if limit is None or result.status != "ok" or result.predict_seconds_per_1000 <= limit:
            return result
        return dataclasses.replace(
            result, status="too_slow",
            error=f"predicts 1,000 rows in {result.predict_seconds_per_1000:.3g}s, over the "
                  f"limit of {limit:g}s")

    def collect(self, logger) -> None:
        """Wait for finished candidates and learn from them."""
        done = _wait(self.running, first_only=self.budget.seconds is not None)
        finished = round(time.time() - self.budget.started, 3)
        batch = [dataclasses.replace(self._checked(_finish(self.running.pop(f), f)),
                                     finished_seconds=finished) for f in done]
        for family in self.searcher.tell(batch):
            last = next(r for r in reversed(batch) if r.spec.family == family)
            logger.warning("model family %s is not tried again in this run: %d of its candidates "
                           "failed in a row and none succeeded (last: %s)", family, MAX_FAILURES,
                           last.error or last.status)
        sign = 1 if METRICS[self.metric].greater_is_better else -1
        for result in batch:
            seconds = result.fit_seconds + result.predict_seconds
            if result.status == "ok":  # a cached result carries the seconds it was measured in
                self.costs.observe(result.spec, seconds)
            if self.halving.promote(result, self.metric):
                self.promotions.append(result.spec)
            score = result.metrics.get(self.metric, math.nan)
            scored = "" if math.isnan(score) else f" {self.metric}={score:.5g}"
            logger.info("%s: %s%s in %.1fs%s%s", result.spec.run_name, result.status, scored,
                        seconds, " (cached)" if result.cached else "",
                        f" - {result.error}" if result.error else "")
            if (self.settings.exit_score is not None and result.spec.fraction >= 1.0
                    and not math.isnan(score)
                    and sign * (score - self.settings.exit_score) >= 0):
                self.stop = f"reached exit_score={self.settings.exit_score}"
        self.results.extend(batch)
        self.on_progress(max(self.budget.elapsed_fraction(), len(self.results) / self.max_trials))


def run_candidates(
    searcher: Searcher,
    data: PreparedData,
    plan: SplitPlan,
    settings: TrainSettings,
    metric: str,
    budget: Budget,
    costs: CostModel,
    on_progress: Callable[[float], None] = lambda fraction: None,
    runner: Optional[Any] = None,
) -> tuple[list[CandidateResult], str]:
    """Train candidates (mapped Prefect tasks) until trials, budget or exit score end the search.

    ``runner`` (an entered Prefect task runner, e.g. Dask) trains the candidates instead of the
    flow's own threads.

    Returns
    -------
    results : list of CandidateResult
        In the order they finished (candidate order when there is no time budget).
    stop_reason : str
    """
    logger = get_run_logger()
    halving = Halving.for_rows(len(plan.folds[0][0])) if settings.halving else Halving()
    loop = _Loop(searcher, data, plan, settings, metric, budget, costs, halving, on_progress,
                 runner)
    while True:
        loop.launch(logger)
        if not loop.running:
            loop.finish(logger)
            return loop.results, loop.stop or "search space exhausted"
        loop.collect(logger)
