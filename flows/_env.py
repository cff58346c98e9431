"""Prefect settings that must be in place before ``prefect`` is imported (user values win)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Optional

#: Set by the CLI to the process start time, so that ``time_budget`` also covers start-up.
RUN_STARTED: Optional[float] = None
#: True while a command line runs its flow (see :func:`command_line`). A context variable, so
#: that a Python call beside a command line in one process keeps naming parameters.
_CLI: ContextVar[bool] = ContextVar("automl_cli", default=False)

_DEFAULTS = {
    # The embedded API's task-run recorder writes one record per transaction by default and loses
    # most of them when the process exits (and logs "Error flushing events"); batching keeps up.
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    # Telemetry cannot reach the internet here; each attempt logs an error and locks the database.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The local API's first start in a new PREFECT_HOME creates its database, which takes about
    # 20 s on 2 cores: Prefect's default wait (20 s) then gives up on a server that is coming up.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


@contextmanager
def command_line() -> Iterator[None]:
    """Run a flow for a command line: its errors name flags (``--time-budget``); a
    deployment's or a Python caller's name the flow's parameters (``time_budget``)."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def in_command_line() -> bool:
    """Whether the flow runs for a command line (inside :func:`command_line`)."""
    return _CLI.get()


def apply_prefect_defaults() -> None:
    """Set the defaults above where the user has not chosen otherwise."""
    for name, value in _DEFAULTS.items():
        os.environ.setdefault(name, value)


def use_cli_logging() -> None:
    """Route Prefect's console log to stdout and keep user errors one line (CLI only)."""
    os.environ.setdefault(
        "PREFECT_LOGGING_SETTINGS_PATH", str(Path(__file__).with_name("logging.yml"))
    )
