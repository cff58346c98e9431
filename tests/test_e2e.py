"""End to end with real parts: `prefect server start`, `prefect deploy`, a process worker,
`prefect deployment run automl/train --watch` twice (the second exercises promotion), and the
flow-run and leaderboard-artifact pages of the UI in headless Chromium (driven by Playwright)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float, process: subprocess.Popen) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return time.perf_counter() - started
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer in {seconds} s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A Prefect server and a worker on the `automl` process pool, with both deployments."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
           "PREFECT_SERVER_UI_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_URL": f"http://127.0.0.1:{port}", "PREFECT_WORKER_QUERY_SECONDS": "2"}
    timings: dict[str, float] = {}
    # Logs go to files: a pipe nobody reads would block the process once it fills.
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, cwd=home,
                              stdout=open(home / "server.log", "w"), stderr=subprocess.STDOUT)
    worker = None
    try:
        timings["server_start"] = _wait_for(f"{api}/health", 120, server)
        subprocess.run([PREFECT, "work-pool", "create", "automl", "--type", "process"], env=env,
                       check=True, capture_output=True, timeout=120)
        started = time.perf_counter()
        # prefect.yaml's pull step works from {{ $PWD }}: the checkout.
        deploy = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"],
                                env={**env, "PWD": str(ROOT)}, cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        timings["deploy"] = time.perf_counter() - started
        worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "automl"], env=env,
                                  cwd=ROOT, stdout=open(home / "worker.log", "w"),
                                  stderr=subprocess.STDOUT)
        yield env, f"http://127.0.0.1:{port}", timings
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGINT)  # a worker stops on SIGINT, not SIGTERM
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))


def _run_deployment(env: dict, output: Path, registry: Path, margin: float) -> str:
    params = {"data": str(ROOT / "examples" / "breast_cancer.csv"), "target": "diagnosis",
              "task": "classification", "output": str(output), "time_budget": 40,
              "registry": str(registry), "model_name": "breast-cancer",
              "promotion_margin": margin}
    args = [PREFECT, "deployment", "run", "automl/train", "--watch"]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for line in done.stdout.splitlines():
        if "UUID" in line:
            return line.split()[-1]
    raise AssertionError(f"no flow run id in: {done.stdout[-2000:]}")


def _api(base: str, path: str, body: dict) -> list | dict:
    request = urllib.request.Request(f"{base}/api{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _ui_shows(base: str, flow_run_id: str, candidate: dict, artifact_id: str,
              shots: Path) -> None:
    """The flow run's page lists its task runs, a candidate's page names it, and the leaderboard
    artifact's page shows the candidates' families and scores."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed; `make test` and .ci/run install Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=[f for f in CHROMIUM_FLAGS if f != "--headless"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/runs/flow-run/{flow_run_id}")
        page.locator("#task-runs").click()
        page.get_by_text(re.compile(r"^\d+ Task runs$")).first.wait_for(timeout=60_000)
        page.get_by_text("breast_cancer-diagnosis-classification").first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "flow-run.png"))
        page.goto(f"{base}/runs/task-run/{candidate['id']}")
        page.get_by_text(candidate["name"]).first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "candidate.png"))
        page.goto(f"{base}/artifacts/artifact/{artifact_id}")
        try:
            page.get_by_text("hist_gradient_boosting").first.wait_for(state="attached",
                                                                       timeout=60_000)
            assert page.get_by_text("roc_auc").count() >= 1
        finally:
            page.screenshot(path=str(shots / "leaderboard.png"))
        browser.close()


def test_deployment_runs_publish_register_and_show_in_the_ui(stack, tmp_path):
    env, base, timings = stack
    registry = tmp_path / "registry"
    started = time.perf_counter()
    first_id = _run_deployment(env, tmp_path / "run1", registry, margin=0.0)
    timings["first_run"] = time.perf_counter() - started
    assert (tmp_path / "run1" / "model.pkl").is_file()
    assert (tmp_path / "run1" / "report.html").is_file()
    champion = json.loads((registry / "breast-cancer" / "champion.json").read_text())
    assert champion["version"] == 1

    started = time.perf_counter()
    _run_deployment(env, tmp_path / "run2", registry, margin=0.5)  # cannot win by 0.5 ROC AUC
    timings["second_run"] = time.perf_counter() - started
    decisions = [json.loads(line) for line in
                 (registry / "breast-cancer" / "decisions.jsonl").read_text().splitlines()]
    assert [d["promoted"] for d in decisions] == [True, False]
    assert json.loads((registry / "breast-cancer" / "champion.json").read_text())["version"] == 1

    # The server records task runs from the worker's events a moment after the run ends.
    deadline = time.time() + 60
    while True:
        task_runs = _api(base, "/task_runs/filter",
                         {"flow_runs": {"id": {"any_": [first_id]}},
                          "task_runs": {"name": {"like_": "train-hist_gradient_boosting-"}},
                          "limit": 50})
        names = {run["name"] for run in task_runs}
        candidates = [r for r in task_runs if r["name"].startswith("train-hist_gradient_boosting-")]
        if candidates:
            break
        assert time.time() < deadline, (first_id, sorted(names))
        time.sleep(1)

    leaderboard = _api(base, "/artifacts/filter", {
        "artifacts": {"key": {"any_": ["automl-run1-diagnosis-leaderboard"]}},
        "sort": "CREATED_DESC", "limit": 1})
    assert leaderboard, "no leaderboard artifact"
    _ui_shows(base, first_id, candidates[0], leaderboard[0]["id"], tmp_path)
