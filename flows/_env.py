"""Prefect settings that must be in place before ``prefect`` is imported (user values win)."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Optional

#: Set by the CLI to the process start time, so that ``time_budget`` also covers start-up.
RUN_STARTED: Optional[float] = None

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


def apply_prefect_defaults() -> None:
    """Set the defaults above where the user has not chosen otherwise."""
    for name, value in _DEFAULTS.items():
        os.environ.setdefault(name, value)


def use_cli_logging() -> None:
    """Route Prefect's console log to stdout and keep user errors one line (CLI only)."""
    os.environ.setdefault(
        "PREFECT_LOGGING_SETTINGS_PATH", str(Path(__file__).with_name("logging.yml"))
    )


_LOCAL_API: Optional[threading.Thread] = None
_ALIAS_WARNING = "The 'alias' attribute with value '"


def _start_local_api() -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    try:
        server.start()
    except Exception:
        # Prefect leaves the server process running when its start times out; a later start
        # replaces it unseen, and the orphan outlives the run (holding its caller's pipes).
        server.stop()
        raise


def _quiet_route_alias_warning() -> None:
    """Filter pydantic's warning about Prefect 3.8.8's own API route parameters.

    FastAPI hides it ("The 'alias' attribute with value 'flow_runs'", 'flows' or 'task_runs')
    with ``warnings.catch_warnings``, which is not thread-safe: importing Prefect's API in the
    background while the CLI imports pydantic models can restore the filters under it, and the
    warning reaches the CLI's stderr (the API's process shares it too). Only that message is
    filtered, in this process and, through ``PYTHONWARNINGS``, in the API's.
    """
    warnings.filterwarnings("ignore", message=_ALIAS_WARNING)
    entry = f"ignore:{_ALIAS_WARNING}"
    current = os.environ.get("PYTHONWARNINGS", "")
    if entry not in current:
        os.environ["PYTHONWARNINGS"] = f"{current},{entry}" if current else entry


def start_local_api_early() -> None:
    """Start Prefect's temporary local API in the background while the CLI imports the rest.

    Without a configured API a local run starts one on first use, which takes seconds; started
    here, that overlaps the imports. :func:`wait_for_local_api` joins it before the flow runs (if
    it failed, Prefect simply tries again on first use).
    """
    global _LOCAL_API
    if os.environ.get("PREFECT_API_URL") or _LOCAL_API is not None:
        return
    _quiet_route_alias_warning()
    _LOCAL_API = threading.Thread(target=_start_local_api, name="prefect-local-api", daemon=True)
    _LOCAL_API.start()


def wait_for_local_api() -> None:
    """Wait until the early start of the local API (if any) has finished."""
    if _LOCAL_API is not None:
        _LOCAL_API.join()
