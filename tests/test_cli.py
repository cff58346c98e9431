"""``python -m flows.train``: exit codes, one-line errors, nothing written on bad input."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from flows._logging import ShutdownCancelFilter
from tests.conftest import awkward_classification, run_side_by_side, small_regression

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    awkward_classification().to_csv(root / "customers.csv", index=False)
    small_regression().to_csv(root / "numbers.csv", index=False)
    awkward_classification().assign(label="yes").to_csv(root / "one_class.csv", index=False)
    return root


@pytest.fixture(scope="module")
def server_env(prefect_harness) -> dict[str, str]:
    """Environment pointing subprocesses at the harness's API (no embedded server start-up)."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}


def _assert_one_line_error(done: subprocess.CompletedProcess, pattern: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in done.stdout + done.stderr


class _FlowThatMustNotRun:
    def __call__(self, **_: object) -> None:
        raise AssertionError("a settings error must be found before the flow starts")


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--metric", "rmse"], "metric 'rmse' does not apply to classification"),
        (["--include", "xgbost"], "unknown model family 'xgbost'. Did you mean 'xgboost'"),
        (["--time-budget", "-5"], "setting 'time_budget'"),
        (["--baseline-margin", "-1"], "setting 'baseline_margin'.*greater than or equal to 0"),
        # inf ran without end (the budget bounds the run); nan was ignored.
        (["--time-budget", "inf"], "setting 'time_budget': Input should be a finite number"),
        (["--exit-score", "nan"], "setting 'exit_score': Input should be a finite number"),
        (["--cv-folds", "3", "--validation-fraction", "0.2"], "cv_folds cannot be combined"),
        (["--horizon", "14"], "horizon applies to forecasting only; leave it out for "
         "classification, or use --task forecasting"),
        (["--portfolio", "no-such-portfolio.json"], "portfolio file .* does not exist"),
        (["--task", "forecasting", "--time-column", "t", "--horizon", "7", "--no-halving"],
         "halving applies to classification and regression only; leave it out for "
         "forecasting"),
        (["--task", "forecasting", "--time-column", "t", "--horizon", "7", "--task-runner",
          "dask"], "task_runner applies to classification and regression only; leave it out "
         "for forecasting"),
        (["--dask-address", "tcp://127.0.0.1:8786"], "dask_address applies only with "
         "task_runner 'dask'; give --task-runner dask too, or leave it out"),
    ],
)
def test_bad_settings_fail_fast(data_dir, tmp_path, capsys, extra, pattern):
    """In-process through the CLI's ``main``: these are found before any flow or API is used
    (the subprocess path of a settings error is the next test's)."""
    from flows._cli import main

    out = tmp_path / "out"
    code = main(_FlowThatMustNotRun(), ["--data", str(data_dir / "customers.csv"), "--target",
                                        "label", "--task", "classification", "--output",
                                        str(out), *extra])
    captured = capsys.readouterr()
    _assert_one_line_error(subprocess.CompletedProcess([], code, captured.out, captured.err),
                           pattern)
    assert not out.exists()


def test_a_usage_error_is_one_line_not_the_whole_usage():
    cases = [
        ("flows.train", ["--time-budget", "abc"], "argument --time-budget: invalid float value"),
        ("flows.train", ["--baseline-margin", "x"], "argument --baseline-margin: invalid float"),
        ("flows.train", [], "the following arguments are required: --data, --target, --task"),
        ("flows.score", ["--model", "m"], "the following arguments are required: --data"),
        ("flows.registry", ["list"], "the following arguments are required: --registry"),
        ("flows.serve", ["--port", "eighty"], "argument --port: 'eighty' is not a port: give 0"),
    ]
    runs = run_side_by_side([[sys.executable, "-m", module, *argv] for module, argv, _ in cases],
                            [dict(os.environ)] * len(cases), str(ROOT), timeout=120)
    for (module, _, pattern), done in zip(cases, runs):
        _assert_one_line_error(done, pattern)
        assert done.stderr.strip().endswith(f"; see python -m {module} --help")


def test_a_settings_error_while_the_local_api_starts_is_still_one_line(data_dir, tmp_path):
    """With no API configured the CLI starts Prefect's local one in the background; an error
    found meanwhile must still be the only line on stderr, and nothing may outlive the run."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    out = tmp_path / "out"
    done = _run(["--data", str(data_dir / "customers.csv"), "--target", "label", "--task",
                 "classification", "--output", str(out), "--metric", "rmse"], env, timeout=120)
    _assert_one_line_error(done, "metric 'rmse' does not apply to classification")
    assert not out.exists()


def test_output_that_is_a_file(data_dir, tmp_path, server_env):
    target = tmp_path / "taken"
    target.write_text("keep me")
    done = _run(["--data", str(data_dir / "customers.csv"), "--target", "label", "--task",
                 "classification", "--output", str(target)], server_env, timeout=120)
    _assert_one_line_error(done, "is a file")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    ("data", "target", "task", "local_api", "pattern"),
    [
        ("customers.csv", "Label", "classification", True,
         "target column 'Label'.*Did you mean 'label'"),
        ("missing.csv", "label", "classification", False, "does not exist"),
        ("one_class.csv", "label", "classification", False, "single class"),
        ("customers.csv", "city", "regression", False, "non-numeric values such as"),
    ],
)
def test_bad_data_fails_before_training_and_writes_nothing(data_dir, tmp_path, server_env, data,
                                                          target, task, local_api, pattern):
    """The errors a flow run finds; with ``local_api`` on the CLI's own embedded API, which it
    stops at once: neither the run's queued logs (stderr) nor the stopped API's task-run
    recorder (a traceback on stdout) may add to the one line."""
    env = {k: v for k, v in server_env.items() if not (local_api and k == "PREFECT_API_URL")}
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pkl").write_bytes(b"earlier model")
    done = _run(["--data", str(data_dir / data), "--target", target, "--task", task,
                 "--output", str(out)], env)
    _assert_one_line_error(done, pattern)
    assert [p.name for p in out.iterdir()] == ["model.pkl"]
    assert (out / "model.pkl").read_bytes() == b"earlier model"


def _record(name: str, exc: BaseException,
            message: str = "Exception during reset or similar") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None,
                             (type(exc), exc, None))


def test_only_the_temporary_apis_cancelled_and_redone_work_is_kept_off_the_console():
    keep = ShutdownCancelFilter().filter
    assert not keep(_record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool",
                            asyncio.CancelledError()))
    assert keep(_record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", OSError("disk full")))
    assert keep(_record("prefect.flow_runs", asyncio.CancelledError()))
    recorder = "prefect.server.services.task_run_recorder"
    retried = "Error flushing 4 events (4 to retry, 0 dropped)"
    assert not keep(_record(recorder, asyncio.CancelledError(), retried))
    assert keep(_record(recorder, OSError("disk full"), retried))
    assert keep(_record(recorder, asyncio.CancelledError(),
                        "Error flushing 4 events (0 to retry, 4 dropped)"))


def test_local_run_on_the_embedded_api_records_every_task_run(data_dir, tmp_path):
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"], env["PREFECT_LOGGING_LEVEL"] = str(home), "INFO"
    out = tmp_path / "out"
    done = _run(["--data", str(data_dir / "numbers.csv"), "--target", "y", "--task",
                 "regression", "--max-trials", "6", "--time-budget", "120", "--output", str(out)],
                env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert done.stderr == ""
    assert "Traceback" not in done.stdout and "Error flushing" not in done.stdout
    # The command's own early API, not Prefect's: when the package imported Prefect before it
    # started one, Prefect started its own later, and the flow began 10 s later.
    assert "Starting temporary server" not in done.stdout
    assert "best:" in done.stdout and (out / "model.pkl").exists()
    assert len(pd.read_csv(out / "leaderboard.csv")) == 6
    # Its wall time includes stopping the API it started, after the flow.
    assert "3 s of the time budget are kept for stopping the temporary Prefect API" in done.stdout
    with sqlite3.connect(home / "prefect.db") as db:
        runs = dict(db.execute("select name, state_type from task_run").fetchall())
    trained = [n for n in runs if n.startswith("train-")]
    assert len(trained) == 6 and all(runs[n] == "COMPLETED" for n in trained)
    assert any(n.startswith("refit-") for n in runs)


def test_a_missing_data_file_or_column_fails_before_the_flow_starts(tmp_path):
    """The command waited for its local API and began a flow run (7 to 14 s) to find that the
    data file did not exist, was empty, or had no column of the target's name."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"], env["PREFECT_LOGGING_LEVEL"] = str(tmp_path / "home"), "INFO"
    (tmp_path / "empty.csv").write_text("\n")
    (tmp_path / "sales.csv").write_text("day,store,units\n2024-01-01,a,3\n")
    cases = [("nope.csv", ["--target", "y", "--task", "regression"], "error: data"),
             ("", ["--target", "y", "--task", "regression"], "error: data"),  # no Parquet in it
             ("empty.csv", ["--target", "y", "--task", "regression"], "error: data file"),
             ("sales.csv", ["--target", "unit", "--task", "regression"],
              "error: target column 'unit' is not in the data. Did you mean 'units'?"),
             ("sales.csv", ["--target", "units", "--task", "forecasting", "--time-column", "day",
                            "--horizon", "2", "--series-id", "shop"],
              "error: column 'shop' is not in the data.")]
    # Side by side, each with a Prefect home of its own (each may start a local API).
    runs = run_side_by_side(
        [[sys.executable, "-m", "flows.train", "--data", str(tmp_path / name), *settings,
          "--output", str(tmp_path / "out")] for name, settings, _ in cases],
        [{**env, "PREFECT_HOME": str(tmp_path / f"home{k}")} for k in range(len(cases))],
        str(ROOT))
    for (_, _, error), done in zip(cases, runs):
        assert done.returncode == 2 and "Beginning flow run" not in done.stdout, done.stdout
        assert done.stderr.startswith(error) and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "out").exists()


def test_ctrl_c_is_one_line_and_publishes_nothing(data_dir, tmp_path):
    """Ctrl-C printed a KeyboardInterrupt traceback of some 40 lines."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"], env["PREFECT_LOGGING_LEVEL"] = str(tmp_path / "home"), "INFO"
    out = tmp_path / "out"
    running = subprocess.Popen(
        [sys.executable, "-m", "flows.train", "--data", str(data_dir / "numbers.csv"), "--target",
         "y", "--task", "regression", "--time-budget", "120", "--output", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in running.stdout:  # the candidates are training
            if "Task run 'train-" in line:
                break
        running.send_signal(signal.SIGINT)
        stdout, stderr = running.communicate(timeout=120)
    finally:
        running.kill()
    assert running.returncode == 130, stdout[-2000:] + stderr
    assert stderr == ("error: interrupted; the output folder keeps what it held unless this run "
                      "had published its model\n")
    assert "Traceback" not in stdout and not out.exists()


def test_a_local_api_that_does_not_answer_in_time_is_stopped(data_dir, tmp_path):
    """A new PREFECT_HOME's database takes seconds to create, more than the 1 s allowed here: the
    run fails in one line and stops the server (an orphan would hold the caller's pipes, so
    ``subprocess.run`` would not return)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "home"),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")
    out = tmp_path / "out"
    done = _run(["--data", str(data_dir / "numbers.csv"), "--target", "y", "--task",
                 "regression", "--max-trials", "2", "--output", str(out)], env, timeout=60)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: run failed: RuntimeError: Prefect's local API did not answer within 1 s; raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or start a server")
    assert not out.exists()


def _alive_children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_the_local_api_does_not_outlive_a_killed_cli(data_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    cli = subprocess.Popen([sys.executable, "-m", "flows.train", "--data",
                            str(data_dir / "numbers.csv"), "--target", "y", "--task", "regression",
                            "--output", str(tmp_path / "out")], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not servers and time.monotonic() < deadline:
            time.sleep(0.2)
            servers = _alive_children(cli.pid)
        assert servers, "the CLI started no local API"
        cli.kill()
        cli.wait()
        deadline = time.monotonic() + 20
        while _alive(servers[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(servers[0]), "the local API outlived the killed CLI"
    finally:
        cli.kill()
        for pid in servers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_an_api_url_in_the_active_profile_is_used_not_a_local_api(data_dir, tmp_path,
                                                                   server_env):
    """The CLI starts its own local API only where Prefect would: a profile that names an API
    sends the run there."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    home = tmp_path / "home"
    home.mkdir()
    (home / "profiles.toml").write_text(
        f'active = "team"\n[profiles.team]\nPREFECT_API_URL = "{server_env["PREFECT_API_URL"]}"\n')
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)
    data = tmp_path / "profiled.csv"
    data.write_bytes((data_dir / "numbers.csv").read_bytes())
    done = _run(["--data", str(data), "--target", "y", "--task", "regression",
                 "--max-trials", "2", "--output", str(tmp_path / "out")], env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert not (home / "prefect.db").exists()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=["profiled-y-regression"])))
    assert [run.state_type.value for run in runs] == ["COMPLETED"]
