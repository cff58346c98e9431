"""Scale-out: the same run with candidates on a Dask LocalCluster gives the same results."""

from __future__ import annotations

import socket

import joblib
import numpy as np
import pandas as pd
import pytest

from flows.train import train
from tasks.errors import AutoMLInputError
from tests.conftest import awkward_classification

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_dask_local_cluster_gives_the_same_leaderboard_and_predictions(tmp_path):
    pytest.importorskip("prefect_dask", reason="the test extra installs prefect-dask")
    from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

    frame = awkward_classification(n=200, seed=2)
    runs = []
    with temporary_settings(updates={PREFECT_TASKS_REFRESH_CACHE: True}):  # really retrain
        for runner in ("threads", "dask"):
            result = train(data=frame, target="label", task="classification", max_trials=6,
                           seed=5, task_runner=runner, output=str(tmp_path / runner))
            board = pd.read_csv(tmp_path / runner / "leaderboard.csv")
            # Measurements, not results: times, and pickled sizes (a model pickled in a Dask
            # worker process carries slightly different bookkeeping than one pickled in a thread).
            timings = ["fit_seconds", "predict_seconds_per_1000", "finished_seconds",
                       "model_bytes"]
            model = joblib.load(result.model_path)
            runs.append((board.drop(columns=timings),
                         model.predict_proba(frame.drop(columns="label"))))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_a_scheduler_address_nothing_answers_at_is_one_line_before_the_data_is_read(tmp_path):
    """An unreachable scheduler was found after loading and validating, 30 s later, as two
    70-line tracebacks (exit 1)."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = dict(data=str(tmp_path / "never-read.csv"), target="label",
                  task="classification", task_runner="dask", output=str(tmp_path / "out"))
    with pytest.raises(AutoMLInputError, match=rf"^dask_address 'tcp://127.0.0.1:{port}' cannot "
                       r"be reached \(Connection refused\); start the Dask scheduler there"):
        train(**common, dask_address=f"tcp://127.0.0.1:{port}")
    with pytest.raises(AutoMLInputError, match=r"^dask_address 'tcp://127.0.0.1:port' is not "
                       r"a scheduler address; give one as tcp://HOST:PORT$"):
        train(**common, dask_address="tcp://127.0.0.1:port")
    # Without a port, Dask's own (8786), where nothing listens here either.
    with pytest.raises(AutoMLInputError, match=r"^dask_address '127.0.0.1' cannot be reached"):
        train(**common, dask_address="127.0.0.1")
    assert not (tmp_path / "out").exists()
