"""Forecasting benchmark on M4 and M3 sets, scored as the M4 organisers score (sMAPE, MASE, OWA).

M4 Hourly, Weekly and Yearly (Y1..Y300) and M3 Yearly, Quarterly and Monthly; OWA is relative to
Naive2.

    python benchmarks/forecast.py [--sets m4-hourly m4-weekly ...] [--budget-scale 1.0]

Each set is written as a long table (id, t, y) on a regular grid of its frequency (the series
have no dates; they end in 2020), with ``--seasonality`` set to the organisers' MASE period,
trained through the CLI with the set's budget and ``--metric owa`` (the measure the sets are
scored by), and the published model predicts the h periods after each series. The check
first: the official Naive2 forecasts in ``benchmark_forecasts/`` must reproduce the published
Naive2 figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from models.naive import NaiveForecaster  # noqa: E402
from models.theta import ThetaForecaster  # noqa: E402

DATA = ROOT.parent / "shared" / "benchdata" / "forecast"


@dataclass(frozen=True)
class ForecastSet:
    name: str
    train: str
    test: str
    horizon: int
    season: int
    budget: float
    freq: str = "D"
    first: int = 0  # 0: every series; n: the first n (Y1..Yn)
    published: tuple = ()  # (method, sMAPE, MASE, OWA) from REFERENCE_RESULTS.md
    target_owa: float = float("nan")


SETS = {
    "m4-hourly": ForecastSet("m4-hourly", "M4/Hourly-train.csv", "M4/Hourly-test.csv", 48, 24,
                             900, freq="h", target_owa=0.50, published=(
                                 ("Naive2", 18.383, 2.395, 1.000), ("Theta", 18.138, 2.455, 1.006),
                                 ("FFORMA", 11.506, 0.819, 0.484))),
    "m4-weekly": ForecastSet("m4-weekly", "M4/Weekly-train.csv", "M4/Weekly-test.csv", 13, 1,
                             600, freq="W-SUN", target_owa=0.80, published=(
                                 ("Naive2", 9.161, 2.777, 1.000), ("Theta", 9.093, 2.637, 0.971),
                                 ("FFORMA", 7.625, 2.108, 0.796))),
    "m4-yearly-300": ForecastSet("m4-yearly-300", "M4/Yearly-train.csv.gz", "M4/Yearly-test.csv",
                                 6, 1, 300, freq="YS", first=300, target_owa=0.82),
    "m3-yearly": ForecastSet("m3-yearly", "M3/M3-Yearly-train.csv", "M3/M3-Yearly-test.csv", 6,
                             1, 300, freq="YS"),
    "m3-quarterly": ForecastSet("m3-quarterly", "M3/M3-Quarterly-train.csv",
                                "M3/M3-Quarterly-test.csv", 8, 4, 300, freq="QS"),
    "m3-monthly": ForecastSet("m3-monthly", "M3/M3-Monthly-train.csv", "M3/M3-Monthly-test.csv",
                              18, 12, 300, freq="MS"),
}


def read_wide(path: Path, first: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """Series ids and values (oldest first) of an M4-layout file."""
    frame = pd.read_csv(path, index_col=0)
    if first:
        frame = frame.iloc[:first]
    return list(frame.index.astype(str)), [row.dropna().to_numpy(float)
                                           for _, row in frame.iterrows()]


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))


def mase(history: np.ndarray, actual: np.ndarray, forecast: np.ndarray, m: int) -> float:
    scale = np.mean(np.abs(history[m:] - history[:-m]))
    return float(np.mean(np.abs(actual - forecast)) / scale)


def score(histories: list[np.ndarray], actuals: np.ndarray, forecasts: np.ndarray,
          m: int) -> tuple[float, float]:
    """sMAPE and MASE, each averaged over the series (as the organisers)."""
    return (float(np.mean([smape(a, f) for a, f in zip(actuals, forecasts)])),
            float(np.mean([mase(h, a, f, m) for h, a, f in zip(histories, actuals, forecasts)])))


def owa(s: tuple[float, float], naive2: tuple[float, float]) -> float:
    return 0.5 * (s[0] / naive2[0] + s[1] / naive2[1])


def check_official_naive2(spec: ForecastSet) -> tuple[float, float] | None:
    """sMAPE and MASE of the official Naive2 forecasts on the set (all its series)."""
    official = DATA / "M4" / "benchmark_forecasts" / "submission-Naive2.included-series.csv.gz"
    if not spec.name.startswith("m4"):
        return None
    ids, histories = read_wide(DATA / spec.train)
    test = pd.read_csv(DATA / spec.test, index_col=0).to_numpy(float)
    table = pd.read_csv(official, index_col=0)
    forecasts = table.loc[ids].to_numpy(float)[:, :spec.horizon]
    return score(histories, test, forecasts, spec.season)


def long_table(ids: list[str], histories: list[np.ndarray], freq: str) -> pd.DataFrame:
    """The series end-aligned on a regular grid ending 2020-01-01."""
    parts = []
    for key, y in zip(ids, histories):
        times = pd.date_range(end="2020-01-01", periods=len(y), freq=freq)
        parts.append(pd.DataFrame({"id": key, "t": times, "y": y}))
    return pd.concat(parts, ignore_index=True)


def run_set(spec: ForecastSet, scratch: Path, budget_scale: float) -> dict:
    ids, histories = read_wide(DATA / spec.train, spec.first)
    test = pd.read_csv(DATA / spec.test, index_col=0)
    test = test.loc[ids].to_numpy(float)[:, :spec.horizon]
    data = scratch / f"{spec.name}.parquet"
    long_table(ids, histories, spec.freq).to_parquet(data)
    output = scratch / spec.name
    budget = spec.budget * budget_scale
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "flows.train", "--data", str(data), "--target",
                           "y", "--task", "forecasting", "--time-column", "t", "--series-id",
                           "id", "--horizon", str(spec.horizon), "--frequency", spec.freq,
                           "--seasonality", str(spec.season), "--time-budget", str(budget),
                           "--metric", "owa", "--output", str(output)], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"{spec.name}: {done.stderr.strip()[-500:]}")
    model = joblib.load(output / "model.pkl")
    last = {key[0]: end for key, end in zip(model.keys, model.ends)}
    future = pd.concat([pd.DataFrame({"id": key, "t": pd.date_range(
        last[key], periods=spec.horizon + 1, freq=spec.freq)[1:]}) for key in ids],
        ignore_index=True)
    forecasts = model.predict(future).reshape(len(ids), spec.horizon)
    naive2 = np.stack([NaiveForecaster(adjusted=True)(y, spec.horizon, spec.season)
                       for y in histories])
    theta = np.stack([ThetaForecaster()(y, spec.horizon, spec.season) for y in histories])
    n2 = score(histories, test, naive2, spec.season)
    ours = score(histories, test, forecasts, spec.season)
    th = score(histories, test, theta, spec.season)
    facts = json.loads((output / "metrics.json").read_text())
    return {"set": spec.name, "series": len(ids), "budget": budget, "wall": round(wall, 1),
            "smape": ours[0], "mase": ours[1], "owa": owa(ours, n2),
            "naive2_smape": n2[0], "naive2_mase": n2[1], "theta_owa": owa(th, n2),
            "chosen": facts["best"]["family"], "selection": facts["selection"]["mode"],
            "target_owa": spec.target_owa}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--budget-scale", type=float, default=1.0,
                        help="multiply every set's budget (1: 15, 10 or 5 min per set)")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        parser.error(f"no benchmark data at {DATA}: the M3 and M4 sets are read from "
                     "../shared/benchdata/forecast beside the checkout")
    print("Check: official Naive2 forecasts vs the published Naive2 figures")
    for name in args.sets:
        spec = SETS[name]
        got = check_official_naive2(spec)
        published = next((p for p in spec.published if p[0] == "Naive2"), None)
        if got is not None and published:
            print(f"  {name}: sMAPE {got[0]:.3f} (published {published[1]:.3f}), MASE "
                  f"{got[1]:.3f} (published {published[2]:.3f})")
        else:
            print(f"  {name}: no official Naive2 forecasts to check (the M4 sets have them)")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.sets:
            row = run_set(SETS[name], Path(scratch), args.budget_scale)
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table[["set", "series", "budget", "wall", "smape", "mase", "owa", "theta_owa",
                 "target_owa", "chosen", "selection"]].to_string(index=False,
                                                                 float_format="%.3f"))
    print("\nPublished (M4, all series of the set): "
          + "; ".join(f"{s.name} " + ", ".join(f"{p[0]} OWA {p[3]:.3f}" for p in s.published)
                      for s in (SETS[n] for n in args.sets) if s.published))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
