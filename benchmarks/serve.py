"""Latency of ``POST /predict`` on a real ``python -m flows.serve`` process.

    python -m benchmarks.serve [--model DIR_OR_PKL] [--data CSV] [--requests 1000] [--rows 1]

Without ``--model`` it first trains one on the bundled breast-cancer table (30 s budget). The
server runs in its own process on a free 127.0.0.1 port; the client sends ``--requests``
sequential requests over one keep-alive connection, each with ``--rows`` rows drawn from the data,
after 20 warm-up requests, and prints p50, p90, p99 and max latency in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "examples" / "breast_cancer.csv"
WARM_UP = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(output: Path) -> Path:
    subprocess.run([sys.executable, "-m", "flows.train", "--data", str(DEMO_DATA), "--target",
                    "diagnosis", "--task", "classification", "--time-budget", "30", "--output",
                    str(output)], cwd=ROOT, check=True)
    return output


def _wait_healthy(port: int, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"the server on port {port} did not become healthy in {seconds} s")


def request_bodies(data: pd.DataFrame, columns: list[str], count: int, rows: int,
                   seed: int = 0) -> list[bytes]:
    """``count`` JSON bodies of ``rows`` rows each, sampled from ``data``'s training columns."""
    rng = np.random.default_rng(seed)
    frame = data[columns].astype(object).where(data[columns].notna(), None)
    records = frame.to_dict(orient="records")
    return [json.dumps({"rows": [records[i] for i in rng.integers(0, len(records), rows)]}).encode()
            for _ in range(count)]


def measure(port: int, bodies: list[bytes]) -> np.ndarray:
    """Milliseconds per request, sent one after another over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        connection.request("POST", "/predict", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"/predict answered {response.status}: {payload[:300]!r}")
    return np.asarray(latencies)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="results folder or model.pkl (default: train one)")
    parser.add_argument("--data", default=str(DEMO_DATA), help="rows to send (CSV)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        model = Path(args.model) if args.model else _train(Path(scratch) / "model")
        manifest_dir = model if model.is_dir() else model.parent
        columns = json.loads((manifest_dir / "manifest.json").read_text())["feature_columns"]
        bodies = request_bodies(pd.read_csv(args.data), columns, args.requests + WARM_UP,
                                args.rows)
        port = _free_port()
        with open(Path(scratch) / "serve.log", "w") as log:
            server = subprocess.Popen([sys.executable, "-m", "flows.serve", "--model", str(model),
                                       "--port", str(port)], cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT)
            try:
                _wait_healthy(port, server)
                measure(port, bodies[:WARM_UP])
                latencies = measure(port, bodies[WARM_UP:])
            finally:
                server.terminate()
                server.wait(timeout=30)
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    print(f"POST /predict, {args.requests} requests of {args.rows} row(s), model {model.name}: "
          f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {latencies.max():.1f} ms, "
          f"{1000 / latencies.mean():.0f} requests/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
