"""The model server follows a registry's champion: promotions and rollbacks are served without a
restart, over real HTTP; a champion that cannot be served leaves the previous one in service."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest
from fsspec.implementations.local import LocalFileSystem

from flows._follow import ChampionFollower
from flows.train import train
from tasks.registry import Registry
from tests.conftest import awkward_classification
from tests.test_serve import ROOT, _free_port, _post, _rows, _start

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two results folders: with every column, and without ``noise`` (another request schema)."""
    root, frame = tmp_path_factory.mktemp("follow"), awkward_classification()
    for name, dropped in [("all", []), ("no_noise", ["noise"])]:
        train(data=frame, target="label", task="classification", max_trials=2,
              output=str(root / name), include=["linear"], exclude_columns=dropped)
    return root, frame


@pytest.fixture
def registry(models, tmp_path):
    """v1 (every column) the champion, v2 (without ``noise``) registered."""
    entry = Registry(str(tmp_path / "registry"), "labels")
    entry.set_champion(entry.add(str(models[0] / "all")))
    entry.add(str(models[0] / "no_noise"))
    return entry


def _follower(registry: Registry) -> ChampionFollower:
    return ChampionFollower(registry, 1, "app of v1",
                            lambda loaded, version: (version, loaded.columns), poll_seconds=1)


def test_a_promotion_is_served_and_a_broken_champion_is_not(registry, caplog):
    follower = _follower(registry)
    assert follower.check() is False and follower.app == "app of v1"
    registry.set_champion(2)
    assert follower.check() is True and follower.version == 2
    assert follower.app[0] == 2 and "noise" not in follower.app[1]
    assert "température °C" in follower.app[1]
    caplog.set_level(logging.WARNING, logger="uvicorn.error")
    with open(Path(registry.root) / "champion.json", "w") as handle:
        handle.write("{not json")
    assert follower.check() is False and follower.check() is False
    assert follower.version == 2 and follower.app[0] == 2
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "champion.json cannot be read" in said[0]
    assert said[0].endswith("still serving v2")
    with open(Path(registry.version_path(1)) / "model.pkl", "ab") as handle:
        handle.write(b"tampered")
    registry.set_champion(1)
    assert follower.check() is False and follower.version == 2
    assert "cannot serve the new champion v1" in caplog.records[-1].getMessage()
    assert "sha256" in caplog.records[-1].getMessage()


class _ListingsKept(LocalFileSystem):
    """Keeps directory listings until told otherwise, as s3fs and gcsfs do (there is no object
    store here: the one fault faked in these tests)."""

    cachable = False

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple, Any] = {}

    def ls(self, path: str, detail: bool = False, **kwargs: Any) -> Any:
        key = (self._strip_protocol(path).rstrip("/"), detail)
        if key not in self.kept:
            self.kept[key] = super().ls(path, detail=detail, **kwargs)
        return self.kept[key]

    def invalidate_cache(self, path: Optional[str] = None) -> None:
        """As s3fs: forget ``path``'s listing and its parents' (all without ``path``)."""
        path = None if path is None else self._strip_protocol(path).rstrip("/")
        self.kept = {key: value for key, value in self.kept.items() if path is not None
                     and not (path == key[0] or path.startswith(key[0] + "/"))}


def test_a_promotion_by_another_process_is_seen_through_a_store_that_keeps_listings(
        registry, models):
    """On S3 the follower's listing of the versions was kept: a version another process added
    and promoted was 'not there', and the old champion was served for ever."""
    registry.fs = _ListingsKept()
    follower = _follower(registry)
    assert follower.check() is False
    elsewhere = Registry(registry.location, registry.name)
    elsewhere.set_champion(elsewhere.add(str(models[0] / "all")))
    assert follower.check() is True and follower.version == 3


def test_an_unexpected_failure_while_polling_is_logged_once_and_polling_goes_on(registry,
                                                                                caplog):
    def build(loaded, version):
        raise RuntimeError(f"no application for v{version}")

    follower = ChampionFollower(registry, 1, "app of v1", build, poll_seconds=0.01)
    registry.set_champion(2)
    caplog.set_level(logging.WARNING, logger="uvicorn.error")

    async def poll_a_while():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(follower._poll(), timeout=1.0)

    asyncio.run(poll_a_while())
    assert follower.version == 1 and follower.app == "app of v1"
    assert [r.getMessage() for r in caplog.records] == [
        "looking for a new champion failed (RuntimeError: no application for v2); still "
        "serving v1"]
    assert caplog.records[0].exc_info is not None


def _health(url: str) -> dict:
    with urllib.request.urlopen(url + "/health", timeout=10) as response:
        return json.loads(response.read())


def _columns(url: str) -> set[str]:
    with urllib.request.urlopen(url + "/openapi.json", timeout=10) as response:
        return set(json.loads(response.read())["components"]["schemas"]["Row"]["properties"])


def test_the_server_serves_a_rolled_back_champion_without_a_restart(registry, models):
    process, url = _start(Path("labels"), "--registry", registry.location,
                          "--poll-seconds", "0.3")
    try:
        assert _health(url)["version"] == 1 and "noise" in _columns(url)
        rows = _rows(models[1], 3)
        assert _post(url, json.dumps({"rows": rows}))[0] == 200
        done = subprocess.run([sys.executable, "-m", "flows.registry", "--registry",
                               registry.location, "--name", "labels", "rollback", "2"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        deadline = time.time() + 60
        while _health(url)["version"] != 2 and time.time() < deadline:
            time.sleep(0.2)
        assert _health(url)["source"] == f"labels v2 of registry {registry.location}"
        assert "noise" not in _columns(url)  # the new champion's request schema
        status, answer = _post(url, json.dumps({"rows": rows}))
        assert status == 422 and "noise" in json.dumps(answer)
        without = [{k: v for k, v in row.items() if k != "noise"} for row in rows]
        status, answer = _post(url, json.dumps({"rows": without}))
        assert status == 200 and len(answer["predictions"]) == 3
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"now serving labels v2 of registry {registry.location} (the champion; was v1)" \
        in stderr.decode()


@pytest.mark.parametrize("extra, error", [
    (["--model", "results/demo", "--poll-seconds", "5"],
     "error: --poll-seconds follows a registry's champion: give --registry without --version, "
     "or leave it out"),
    (["--model", "labels", "--registry", "nowhere", "--version", "1", "--poll-seconds", "5"],
     "error: --poll-seconds follows a registry's champion: give --registry without --version, "
     "or leave it out"),
    (["--model", "labels", "--registry", "nowhere", "--poll-seconds", "-1"],
     "error: --poll-seconds -1: give 0 or more seconds"),
])
def test_poll_seconds_without_a_champion_to_follow_is_one_line(extra, error):
    done = subprocess.run([sys.executable, "-m", "flows.serve", "--port", str(_free_port()),
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [error]
