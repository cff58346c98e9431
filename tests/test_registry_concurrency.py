"""The model registry when runs register at once: versions, decision lines, the promotion lock."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flows.registry import main as registry_main
from flows.train import train
from models import registry as family_registry
from tasks.decisions import decide
from tasks.registry import Registry
from tests.test_registry import _growing_table, _Prior, _published

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_runs_registering_at_once_on_a_local_disk_each_get_a_version(tmp_path, monkeypatch):
    reg = Registry(str(tmp_path / "reg"), "churn")
    folders = [_published(tmp_path / f"run{i}", f"run{i}") for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        versions = list(pool.map(lambda folder: reg.add(str(folder)), folders))
        decisions = [decide("churn", v, None, "roc_auc", True, 0.5, None, 0.0) for v in versions]
        list(pool.map(reg.record, decisions))
    assert sorted(versions) == list(range(1, 13))
    for i, version in enumerate(versions):  # each version holds its own run's files, no more
        folder = Path(reg.version_path(version))
        assert (folder / "model.pkl").read_text() == f"run{i} model.pkl"
        assert sorted(p.name for p in folder.iterdir()) == [
            "manifest.json", "metrics.json", "model.pkl", "promotion.json"]
    logged = (tmp_path / "reg" / "churn" / "decisions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["challenger_version"] for line in logged) == list(range(1, 13))
    # Another run's version landing between listing and moving in: the next number is taken.
    stale = iter([[1, 2]])
    real = Registry.versions
    monkeypatch.setattr(Registry, "versions", lambda self: next(stale, None) or real(self))
    assert reg.add(str(_published(tmp_path / "late", "late"))) == 13
    third = versions.index(3)
    assert (Path(reg.version_path(3)) / "model.pkl").read_text() == f"run{third} model.pkl"


def test_the_promotion_lock_on_a_local_disk_is_exclusive(tmp_path):
    import threading

    reg = Registry(str(tmp_path / "reg"), "churn")
    order, trying = [], threading.Event()

    def promote():
        trying.set()
        with reg.promotion_lock():
            order.append("second")

    with reg.promotion_lock():
        other = threading.Thread(target=promote)
        other.start()
        assert trying.wait(timeout=5)
        other.join(timeout=0.3)
        assert other.is_alive()  # it waits for the lock
        order.append("first")
    other.join(timeout=5)
    assert order == ["first", "second"]


def test_a_lock_held_too_long_leaves_the_champion_and_says_why(tmp_path, monkeypatch, capsys):
    import tasks.registry

    monkeypatch.setattr(tasks.registry, "LOCK_WAIT_SECONDS", 0.2)
    where = str(tmp_path / "registry")
    reg = Registry(where, "label")
    (rows,), _ = _growing_table(tmp_path, (300,))
    with reg.promotion_lock():  # as a stuck process would hold it
        decision = train(data=rows, target="label", task="classification", max_trials=1,
                         include=["hist_gradient_boosting"], registry=where,
                         output=str(tmp_path / "run1")).promotion
        assert registry_main(["--registry", where, "--name", "label", "rollback", "1"]) == 2
    assert not decision["promoted"] and reg.versions() == [1] and reg.champion() is None
    assert "was held by another process for more than 0.2 s" in decision["reason"]
    assert "rollback 1" in decision["reason"]
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "registry lock" in error[0] and "0.2 s" in error[0]
    assert registry_main(["--registry", where, "--name", "label", "rollback", "1"]) == 0
    assert reg.champion() == 1


def test_a_champion_promoted_by_another_run_meanwhile_is_not_replaced(tmp_path, monkeypatch):
    """Another run promotes its model between this run's comparison and its promotion: this
    one compared with the champion before, so it does not replace the new one."""
    (first_rows, more_rows), _ = _growing_table(tmp_path, (300, 450))
    where = str(tmp_path / "registry")
    common = dict(target="label", task="classification", registry=where, seed=1,
                  include=["hist_gradient_boosting"], max_trials=1)
    reg = family_registry()
    reg.add(_Prior, origin="test")
    try:
        train(data=first_rows, **{**common, "include": ["test_prior"]},
              output=str(tmp_path / "run1"))
    finally:
        family_registry(refresh=True)
    real_add = Registry.add

    def another_run_lands_first(self, folder):
        if folder.endswith("run2"):
            self.set_champion(real_add(self, str(tmp_path / "run1")))
        return real_add(self, folder)

    monkeypatch.setattr(Registry, "add", another_run_lands_first)
    decision = train(data=more_rows, **common, output=str(tmp_path / "run2")).promotion
    assert decision["challenger_version"] == 3 and decision["champion_version"] == 1
    assert not decision["promoted"]  # it beat v1, but v2 is the champion now
    assert "the champion became v2 while this run compared with v1" in decision["reason"]
    assert Registry(where, "label").champion() == 2
