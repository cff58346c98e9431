"""Prefect's temporary local API for a command-line run, started before anything is imported.

Left to itself, Prefect starts its local API on the first API call: it imports ``prefect.server``
(seconds), then spawns the server, which imports it all again before it answers. On 2 cores a run
reached its flow 16-19 s after the process started. Spawned first, by the same command Prefect
uses (``SubprocessASGIServer``), on a socket this process already listens on, the server is ready
as the CLI's own imports finish, about 9 s in, and the time goes to the search instead.

The CLI's process then talks to it as to any API (``PREFECT_API_URL``), so it is only started
where Prefect would have used its local API anyway: no API URL and the local API not switched
off, in the environment, the active profile or the working directory's settings files.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Optional

_PROCESS: Optional[subprocess.Popen] = None
_URL: Optional[str] = None
_FALSE = {"0", "false", "no", "off"}
_PR_SET_PDEATHSIG = 1


def _mentions_api_choice(settings: Mapping[str, Any]) -> bool:
    """Whether flat ``PREFECT_*`` settings choose an API URL or switch the local API off."""
    for key, value in settings.items():
        name = str(key).upper()
        if "API_URL" in name and value:
            return True
        if "EPHEMERAL" in name and str(value).strip().lower() in _FALSE:
            return True
    return False


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _profile_chooses(environ: Mapping[str, str], home: Path) -> bool:
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    if not path.is_file():
        return False
    data = _read_toml(path)
    active = environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    return _mentions_api_choice(data.get("profiles", {}).get(active, {}))


def _files_choose(cwd: Path) -> bool:
    if (cwd / ".env").is_file():
        if "PREFECT_" in (cwd / ".env").read_text(errors="replace").upper():
            return True  # any Prefect setting there (a profile, a home) may choose an API
    for name, section in (("prefect.toml", ()), ("pyproject.toml", ("tool", "prefect"))):
        if not (cwd / name).is_file():
            continue
        data: Any = _read_toml(cwd / name)
        for key in section:
            data = data.get(key, {})
        if data.get("api", {}).get("url") or "ephemeral" in str(data.get("server", {})).lower():
            return True
        if _mentions_api_choice(data):
            return True
    return False


def api_chosen_elsewhere(environ: Mapping[str, str], cwd: Path) -> bool:
    """Whether Prefect's settings could name an API or switch its local API off.

    Reads what Prefect reads (the environment, the active profile, and ``.env``,
    ``prefect.toml`` and ``pyproject.toml`` in ``cwd``) without importing Prefect, and answers
    yes when in doubt: the local API is then started by Prefect itself, as usual.
    """
    if _mentions_api_choice({k: v for k, v in environ.items() if k.startswith("PREFECT_")}):
        return True
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        return _profile_chooses(environ, home) or _files_choose(cwd)
    except (OSError, ValueError, AttributeError):  # unreadable or odd: let Prefect decide
        return True


def _server_command(fd: int) -> list[str]:
    spec = importlib.util.find_spec("prefect")  # finds the package without importing it
    app_dir = str(Path(spec.origin).parent.parent)
    return [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
            "prefect.server.api.server:create_app", "--fd", str(fd), "--log-level", "error",
            "--lifespan", "on"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: have the kernel stop the server when the CLI's process dies (even by SIGKILL)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start_local_api_early() -> None:
    """Spawn Prefect's local API now and point this process at it (CLI only, before Prefect
    is imported). Does nothing where Prefect would not use its local API, or not on POSIX."""
    global _PROCESS, _URL
    if _PROCESS is not None or os.name != "posix":
        return
    if api_chosen_elsewhere(os.environ, Path.cwd()):
        return
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)  # requests made before the server is up wait in the backlog
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        _PROCESS = subprocess.Popen(
            _server_command(listener.fileno()), env=env, pass_fds=(listener.fileno(),),
            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        _URL = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    finally:
        listener.close()  # the server holds its own copy
    atexit.register(stop_local_api)
    os.environ["PREFECT_API_URL"] = _URL
    # The server has no UI and ends with the run: no "View at" links to a page that never was.
    os.environ.setdefault("PREFECT_UI_URL", "")


def wait_for_local_api(timeout: float) -> None:
    """Wait until the early-started local API answers.

    Raises
    ------
    RuntimeError
        If its process ends, or it does not answer within ``timeout`` seconds; it is stopped.
    """
    if _PROCESS is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        code = _PROCESS.poll()
        if code is not None:
            stop_local_api()
            raise RuntimeError(f"Prefect's local API exited with code {code} before it answered")
        try:
            with urllib.request.urlopen(f"{_URL}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() >= deadline:
            stop_local_api()
            raise RuntimeError(
                f"Prefect's local API did not answer within {timeout:g} s; raise "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or start a server")
        time.sleep(0.1)


#: Seconds a command line's exit takes to send its last logs and stop the API it started
#: (about 2 to 4 on 2 cores): kept out of the run's budget, which its wall time includes.
STOP_SECONDS = 3.0


def started_here() -> bool:
    """Whether this process started the local API and it is still up (it stops at exit)."""
    return _PROCESS is not None and _PROCESS.poll() is None


def _send_pending_logs() -> None:
    """Send the logs and events Prefect still queues for the API while it is up: stopped first,
    they would fail at exit with "--- Error logging to API ---" on stderr (after a flow run
    that failed on bad input, whose one-line error must stay the only line)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5)


def stop_local_api() -> None:
    """Stop the early-started local API, if any (at exit, or at once on a settings error)."""
    global _PROCESS
    process, _PROCESS = _PROCESS, None
    if process is None or process.poll() is not None:
        return
    _send_pending_logs()
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
