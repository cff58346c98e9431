"""Candidates that fail, run out of time or run at once: the training flow's workers and
deadlines, under a Prefect test harness."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

from flows.train import train
from models import registry
from tests.conftest import LogRecords, fixed_family, small_regression

pytestmark = pytest.mark.usefixtures("prefect_harness")


class _SlowRegressor(DummyRegressor):
    seconds = 0.4

    def fit(self, X, y, sample_weight=None):
        time.sleep(self.seconds)
        return super().fit(X, y, sample_weight)


class _SlowerRegressor(_SlowRegressor):
    seconds = 1.5


# DummyRegressor(strategy="quantile") without a quantile fails in fit.
_Failing = fixed_family("test_failing", {"regression"},
                        lambda: DummyRegressor(strategy="quantile"), cost=0.01)
_Slow = fixed_family("test_slow", {"regression"}, _SlowRegressor, cost=0.01)
_Slower = fixed_family("test_slow", {"regression"}, _SlowerRegressor, cost=0.01)


def test_failed_and_timed_out_candidates_are_recorded_and_the_run_goes_on(tmp_path):
    reg = registry()
    reg.add(_Failing, origin="test")
    reg.add(_Slower, origin="test")
    handler, logger = LogRecords(), logging.getLogger("prefect.task_runs")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # the tests log warnings and errors only
    # 2 s per candidate: the slow one's second fold would end at 3 s, while the linear one's
    # five folds fit (0.2 s failed it on a loaded machine).
    settings = dict(data=small_regression(), target="y", task="regression", max_trials=3,
                    include=["test_failing", "test_slow", "linear"], candidate_timeout=2.0,
                    n_workers=1, portfolio="none")
    try:
        result = train(**settings, output=str(tmp_path / "faults"))
        again = train(**settings, output=str(tmp_path / "again"))
    finally:
        registry(refresh=True)
        logger.removeHandler(handler)
        logger.setLevel(level)
    status = {c.family: c for c in result.leaderboard}
    assert [c.status for c in result.leaderboard][0] == "ok"
    assert status["test_failing"].status == "failed" and "quantile" in status["test_failing"].error
    assert status["test_slow"].status == "timeout"
    assert status["test_slow"].error.endswith(" (at the candidate timeout, 2 s)")
    # It ran one 1.5 s fold, then stopped; it was recorded as taking no time at all.
    assert status["test_slow"].fit_seconds >= 1.4
    assert result.best.family == "linear"
    board = pd.read_csv(Path(result.output) / "leaderboard.csv")
    assert board.loc[0, "status"] == "ok" and set(board["status"]) == {"ok", "failed", "timeout"}
    # A timeout is the budget at work, not an error: Prefect logged three ERROR records for it
    # (one with a traceback of some 20 lines). Its task completes, named for what happened.
    slow = [r for r in handler.records if "test_slow" in getattr(r, "task_run_name", "")]
    assert slow and all(r.levelno < logging.WARNING for r in slow)
    assert any(r.getMessage().startswith("Finished in state Timed out(") for r in slow)
    # The failed candidate is a result, cached like any other; the timeout is not: run again
    # (with more time, it may finish), it stops at its deadline again.
    status = {c.family: c for c in again.leaderboard}
    assert status["test_failing"].cached and status["linear"].cached
    assert status["test_slow"].status == "timeout" and not status["test_slow"].cached
    assert status["test_slow"].fit_seconds >= 1.4


class _CountingRegressor(DummyRegressor):
    """Counts the fits under way at once (in ``busy``) and keeps the highest count."""

    lock = threading.Lock()
    busy = {"now": 0, "most": 0}

    def fit(self, X, y, sample_weight=None):
        with self.lock:
            self.busy["now"] += 1
            self.busy["most"] = max(self.busy["most"], self.busy["now"])
        try:
            time.sleep(0.5)
        finally:
            with self.lock:
                self.busy["now"] -= 1
        return super().fit(X, y, sample_weight)


def test_n_workers_trains_that_many_candidates_at_once_when_called_from_python(tmp_path):
    # The flow is declared with two threads; a deployment or a call from Python asking for three
    # must get three (the command line once swapped in its own pool, they could not).
    families = [fixed_family(f"test_busy_{k}", {"regression"}, _CountingRegressor, cost=0.01)
                for k in "abc"]
    reg = registry()
    for family in families:
        reg.add(family, origin="test")
    _CountingRegressor.busy.update(now=0, most=0)
    try:
        result = train(data=small_regression(), target="y", task="regression", max_trials=3,
                       include=[f.name for f in families], n_workers=3, portfolio="none",
                       ensemble=False, output=str(tmp_path / "three"))
    finally:
        registry(refresh=True)
    assert [c.status for c in result.leaderboard] == ["ok"] * 3
    assert _CountingRegressor.busy["most"] == 3


def _three_folds():
    """small_regression prepared, and a plan of three folds."""
    from tasks.settings import TrainSettings
    from tasks.split import SplitPlan
    from tasks.validate import prepare_data

    frame = small_regression()
    data = prepare_data(frame, TrainSettings(data="x", target="y", task="regression"))
    rows = np.arange(len(frame))
    return data, SplitPlan("cv", tuple((rows[rows % 3 != k], rows[rows % 3 == k])
                                       for k in range(3)), 0)


def test_a_fold_that_would_end_after_the_deadline_does_not_start():
    from tasks.train import evaluate_candidate
    from tasks.types import CandidateSpec

    data, plan = _three_folds()
    reg = registry()
    reg.add(_Slow, origin="test")
    try:
        started = time.time()
        with pytest.raises(TimeoutError, match="ran out of time before a fold"):
            # Each fold sleeps 0.4 s: the second would end at 0.8 s, after the deadline.
            evaluate_candidate(CandidateSpec(1, "test_slow", {}), data, plan, seed=0,
                               deadline=started + 0.6)
        assert time.time() - started < 0.6
    finally:
        registry(refresh=True)


class _WaitingRegressor(DummyRegressor):
    def predict(self, X, return_std=False):
        time.sleep(0.2)  # waits, as for a core that another worker holds
        return super().predict(X, return_std)


def test_the_latency_figure_counts_the_cpu_a_prediction_uses_not_its_waits():
    from tasks.train import evaluate_candidate
    from tasks.types import CandidateSpec

    data, plan = _three_folds()
    reg = registry()
    reg.add(fixed_family("test_waiting", {"regression"}, _WaitingRegressor, cost=0.01),
            origin="test")
    try:
        result = evaluate_candidate(CandidateSpec(1, "test_waiting", {}), data, plan, seed=0)
    finally:
        registry(refresh=True)
    assert result.status == "ok" and result.predict_seconds >= 0.6  # the search plans with it
    waited_per_1000 = 1000 * 0.6 / len(data.y)
    assert result.predict_seconds_per_1000 < 0.1 * waited_per_1000
