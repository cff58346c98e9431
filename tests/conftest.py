"""Shared fixtures: an isolated Prefect home, one test harness per session, small awkward tables."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile

# Before Prefect is imported anywhere: results, cache and database in a throw-away home.
_HOME = tempfile.mkdtemp(prefix="automl-tests-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import flows  # noqa: E402,F401  (applies the Prefect defaults)


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API for tests that run flows or tasks with state."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def s3_bucket():
    """An empty bucket on a real S3 API over HTTP on 127.0.0.1 (moto's server), as
    ``s3://BUCKET``. The standard AWS variables point every S3 client at it, in this process
    and in the processes it starts, until the session ends."""
    pytest.importorskip("s3fs", reason="the test extra installs s3fs")
    moto_server = pytest.importorskip("moto.server", reason="the test extra installs moto")
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}",
                            "AWS_ACCESS_KEY_ID": "automl-tests", "AWS_SECRET_ACCESS_KEY": "secret",
                            "AWS_DEFAULT_REGION": "us-east-1"}.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        s3fs.S3FileSystem.clear_instance_cache()  # none made before may keep another endpoint
        s3fs.S3FileSystem().mkdir("automl-tests")
        yield "s3://automl-tests"
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def run_side_by_side(commands: list[list[str]], envs: list[dict[str, str]], cwd: str,
                     timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """Run command lines at once and return them in order: command lines that fail in their
    first seconds spend them importing on one core, so side by side they take half the time.
    Each gets its own environment (give each its own ``PREFECT_HOME`` where one may start
    Prefect's local API)."""
    started = [subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for command, env in zip(commands, envs)]
    try:
        done = []
        for command, process in zip(commands, started):
            out, err = process.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
        return done
    finally:
        for process in started:
            process.kill()  # only those still running, after a timeout


class LogRecords(logging.Handler):
    """A log handler that keeps the records it is given, in ``records``."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def awkward_classification(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Valid but awkward data: unicode and spaced names, an all-null column, booleans, dates,
    string labels, a high-cardinality category, free text, an ID and some missing targets."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    city = rng.choice(["Oslo", "Zürich", "São Paulo", "Kyoto"], size=n)
    label = np.where(signal + 0.5 * (city == "Oslo") + rng.normal(scale=0.7, size=n) > 0,
                     "yes", "no")
    frame = pd.DataFrame({
        "row id": np.arange(n),
        "température °C": np.round(signal * 5 + 20, 2),
        "noise": rng.normal(size=n),
        "city": city,
        "customer code": [f"C{int(v)}" for v in rng.integers(0, 60, size=n)],
        "is member": rng.random(n) > 0.5,
        "signup date": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "comment": [f"the client said {w} about the {p} on visit {i}" for i, (w, p) in
                    enumerate(zip(rng.choice(["good things", "bad things", "a lot"], size=n),
                                  rng.choice(["product", "price", "service"], size=n)))],
        "always empty": [None] * n,
        "label": label,
    })
    frame.loc[rng.choice(n, 12, replace=False), "noise"] = np.nan
    frame.loc[rng.choice(n, 5, replace=False), "label"] = None
    return frame


def single_signal(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A label that depends on the column ``signal`` only; the other columns are noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    return pd.DataFrame({
        "noise a": rng.normal(size=n),
        "signal": signal,
        "noise b": rng.uniform(size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "label": np.where(signal + rng.normal(scale=0.3, size=n) > 0, "pos", "neg"),
    })


def small_regression(n: int = 200, seed: int = 1) -> pd.DataFrame:
    """A numeric regression table with one categorical column."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    group = rng.choice(["a", "b", "c"], size=n)
    y = 3 * x1 - 2 * x2 + (group == "a") * 1.5 + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group, "y": y})


def fixed_family(name: str, tasks: set, make_estimator, cost: float = 1.0) -> type:
    """A test model family with an empty search space whose estimator ``make_estimator()`` makes."""
    from models import ModelFamily

    return type(name, (ModelFamily,), {
        "name": name, "tasks": frozenset(tasks), "cost": cost,
        "search_space": classmethod(lambda cls, task, shape: {}),
        "initial_config": classmethod(lambda cls, task, shape: {}),
        "build": classmethod(lambda cls, task, config, seed: make_estimator()),
    })


@pytest.fixture
def classification_frame() -> pd.DataFrame:
    return awkward_classification()


@pytest.fixture
def regression_frame() -> pd.DataFrame:
    return small_regression()
