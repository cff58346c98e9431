"""Successive halving: which candidates are screened on a subsample, which are promoted to
all rows, and what becomes of a promotion the time left cannot hold."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

from flows._loop import TOO_LITTLE_TIME, Budget, Halving, _Loop
from models import DataShape, registry
from tasks.costs import CostModel
from tasks.search import Searcher
from tasks.types import CandidateResult, CandidateSpec
from tests.conftest import LogRecords

SHAPE = DataShape(500, 5)


def _families(task="regression"):
    return [registry().get(n) for n in registry().names(task)]


def test_halving_promotes_the_best_third():
    halving = Halving.for_rows(40_000)
    assert halving.fraction == 0.25 and Halving.for_rows(5_000).fraction == 1.0
    promoted = []
    for i, loss in enumerate([5.0, 4.0, 3.0, 6.0, 1.0, 7.0]):
        result = CandidateResult(CandidateSpec(i, "linear", {}, 0.25), "ok", {"rmse": loss})
        promoted.append(halving.promote(result, "rmse"))
    assert promoted == [True, True, True, False, True, False]
    full = CandidateResult(CandidateSpec(9, "linear", {}, 1.0), "ok", {"rmse": 0.1})
    assert not halving.promote(full, "rmse")


def test_under_halving_a_configuration_is_screened_only_if_its_run_on_all_rows_could_follow():
    searcher = Searcher(_families(), "regression", SHAPE, "rmse", seed=0)
    predict = lambda spec: 8.0 * spec.fraction  # noqa: E731 - 8 s on all rows, 2 s on a quarter
    assert searcher.propose(12.0, predict, 0.25).fraction == 0.25  # 2 s, then 8 s
    assert searcher.propose(9.0, predict, 0.25).fraction == 1.0  # screened, it could not follow
    assert searcher.propose(7.0, predict, 0.25) is None


class _Runner:
    """Stands in for a task runner: records what the loop starts and runs none of it."""

    def map(self, task, parameters):
        return [object() for _ in parameters["spec"]]


def _halving_loop(family_names, predict, budget_seconds, n_workers=1):
    families = [f for f in _families("classification") if f.name in family_names]
    searcher = Searcher(families, "classification", SHAPE, "log_loss", seed=0)
    settings = SimpleNamespace(n_workers=n_workers, max_trials=None, candidate_timeout=None,
                               seed=0)
    logger, records = logging.getLogger("test-halving-loop"), LogRecords()
    logger.handlers[:] = [records]
    logger.setLevel(logging.INFO)
    loop = _Loop(searcher, None, None, settings, "log_loss", Budget(time.time(), budget_seconds),
                 SimpleNamespace(predict=predict), Halving(0.25), lambda fraction: None,
                 runner=_Runner())
    return loop, logger, records


def test_a_promotion_that_would_not_finish_is_recorded_as_too_slow_not_started():
    # As on 50 classes and 40,000 rows at 60 s: xgboost took 10 s on a quarter of the rows, so
    # about 40 s on all of them, with 28 s left; it was started and stopped at the deadline.
    config = registry().get("xgboost").initial_config("classification", SHAPE)
    costs = CostModel({f.name: f for f in _families("classification")})
    costs.observe(CandidateSpec(1, "xgboost", config, 0.25), 10.0)
    loop, logger, records = _halving_loop({"xgboost", "linear"}, costs.predict, 60.0)
    screened = CandidateSpec(1, "xgboost", config, 0.25)
    loop.promotions.append(screened)
    started = loop._next_spec(41.0, logger)
    assert (started.family, started.config, started.fraction) == ("xgboost", config, 1.0)
    loop.promotions.append(screened)
    started = loop._next_spec(28.0, logger)
    assert started is not None and started.config != config
    [skipped] = loop.results
    assert (skipped.spec.config, skipped.spec.fraction, skipped.status, skipped.error) == (
        config, 1.0, "too_slow", TOO_LITTLE_TIME)
    assert records.records[0].getMessage() == (
        f"{skipped.spec.run_name} skipped: candidate 1's configuration on all rows would take "
        "about 40 s, 28 s left")


def test_a_search_waits_for_its_running_screens_before_it_stops_for_time():
    first = {}

    def predict(spec):  # the first configuration takes 20 s on all rows, any other 200 s
        first.setdefault("config", spec.config)
        return (20.0 if spec.config == first["config"] else 200.0) * spec.fraction

    loop, logger, _ = _halving_loop({"xgboost", "linear"}, predict, 100.0)
    loop.launch(logger)
    [screen] = loop.running.values()
    assert screen.fraction == 0.25
    loop.settings.n_workers, loop.budget = 2, Budget(time.time(), 30.0)
    loop.launch(logger)  # nothing else fits, but the screen may earn a promotion that does
    assert loop.stop is None and list(loop.running.values()) == [screen]
    loop.running.clear()
    loop.promotions.append(screen)  # as collecting its result does
    loop.launch(logger)
    [promoted] = loop.running.values()
    assert (promoted.config, promoted.fraction) == (screen.config, 1.0)
    loop.running.clear()
    loop.launch(logger)
    assert loop.stop == "no candidate can finish within the time left" and not loop.running
    loop.promotions.append(screen)
    loop.finish(logger)  # a promotion left when the time ran out is on the leaderboard
    assert [(r.spec.config, r.status) for r in loop.results] == [(screen.config, "too_slow")]
