"""Side-by-side tabular benchmark: this project, FLAML, AutoGluon and HistGradientBoosting defaults.

For every dataset of ``MANIFEST.csv`` (PMLB sets in ../shared/benchdata/tabular): one seeded 80/20
split (stratified for classification); each system trains on the 80% within the same budget, one
after another, and is scored on the 20% as the AutoML Benchmark does: ROC AUC (binary), log loss
(multiclass), RMSE (regression). Prints scores, ranks, mean rank and wall time against budget.

    python benchmarks/tabular.py --budget 60 [--datasets credit_g wdbc ...]
        [--systems project flaml autogluon hgb] [--peer-python PATH] [--results FILE]

Ablations: the systems ``project-no-portfolio``, ``project-random-search``, ``project-no-halving``,
``project-no-ensemble`` and ``project-no-baseline-check`` run the project with one part switched
off (``--portfolio none``, ``--search random``, ``--no-halving``, ``--no-ensemble``,
``--baseline-margin 0``); compare them with ``project``, e.g.

    python benchmarks/tabular.py --systems project project-no-portfolio project-random-search \
        project-no-halving project-no-ensemble

FLAML and AutoGluon are optional: they run with ``--peer-python`` (an interpreter where they are
installed, e.g. a separate virtual environment) and are skipped when they cannot be imported
there. They are never dependencies of the project.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.evaluate import binary_auc  # noqa: E402
from tasks.portfolio import portfolio_from  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCHDATA = ROOT.parent / "shared" / "benchdata" / "tabular"
PEERS = Path(__file__).resolve().parent / "peers"
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
ABLATIONS = {
    "project": [],
    "project-no-portfolio": ["--portfolio", "none"],
    "project-random-search": ["--search", "random"],
    "project-no-halving": ["--no-halving"],
    "project-no-ensemble": ["--no-ensemble"],
    "project-no-baseline-check": ["--baseline-margin", "0"],
}
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
RESAMPLES = 1000


def split(frame: pd.DataFrame, kind: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seeded 80/20 split (stratified for classification)."""
    stratify = frame["target"] if kind != "regression" else None
    return train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)


def _aligned(y_true: pd.Series, prediction: np.ndarray,
             classes: list) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The string labels, the probabilities in sorted-label order (clipped, rows summing to 1)
    and the labels."""
    labels = sorted(str(c) for c in y_true.unique())
    labels = sorted(set(labels) | {str(c) for c in classes})
    proba = np.zeros((len(y_true), len(labels)))
    for j, c in enumerate(classes):
        proba[:, labels.index(str(c))] = prediction[:, j]
    proba = np.clip(proba, 1e-15, 1)
    proba /= proba.sum(axis=1, keepdims=True)
    return y_true.astype(str).to_numpy(), proba, labels


def score(metric: str, y_true: pd.Series, prediction: np.ndarray, classes: list | None) -> float:
    """AMLB metric of a system's test predictions."""
    if metric == "rmse":
        return float(np.sqrt(mean_squared_error(y_true, prediction)))
    truth, proba, labels = _aligned(y_true, prediction, classes)
    if metric == "roc_auc":
        return float(roc_auc_score(truth == labels[1], proba[:, 1]))
    return float(log_loss(truth, proba, labels=labels))


def _resampled_scores(metric: str, y_true: pd.Series, prediction: np.ndarray,
                      classes: list | None, draws: np.ndarray) -> np.ndarray:
    """The metric on each bootstrap resample of the test rows (``draws``: one row of indices
    per resample)."""
    if metric == "rmse":
        squared = (y_true.to_numpy(float) - np.asarray(prediction, float)) ** 2
        return np.sqrt(squared[draws].mean(axis=1))
    truth, proba, labels = _aligned(y_true, prediction, classes)
    if metric == "log_loss":
        rows = -np.log(proba[np.arange(len(truth)), [labels.index(t) for t in truth]])
        return rows[draws].mean(axis=1)
    positive, p = truth == labels[1], proba[:, 1]
    # The same statistic as roc_auc_score, without its input checks (thousands of resamples).
    return np.array([binary_auc(positive[d], p[d]) if positive[d].any() and not
                     positive[d].all() else np.nan for d in draws])


def versus_baseline(metric: str, y_true: pd.Series, system: tuple[np.ndarray, list | None],
                    baseline: tuple[np.ndarray, list | None],
                    seed: int = 0) -> tuple[float, float]:
    """How much better ``system`` scores than ``baseline`` on the same test rows: the 2.5% and
    97.5% quantiles of the difference over paired bootstrap resamples (positive = better).

    A single 20% split leaves several datasets with a few hundred test rows (coil2000: 117
    positives), where a system that is better by cross-validation can score lower on the split
    by chance; an interval below zero says the system is worse beyond that chance.
    """
    draws = np.random.default_rng(seed).integers(0, len(y_true), (RESAMPLES, len(y_true)))
    ours = _resampled_scores(metric, y_true, *system, draws)
    theirs = _resampled_scores(metric, y_true, *baseline, draws)
    better = ours - theirs if GREATER_IS_BETTER[metric] else theirs - ours
    low, high = np.nanquantile(better, [0.025, 0.975])
    return float(low), float(high)


def lodo_portfolio(task: str, name: str, work: Path) -> str:
    """The packaged portfolio re-selected without ``name``'s measurements (leave one out).

    The portfolio was measured on these very datasets (on their training splits only); leaving
    the scored dataset out keeps its own measurements from steering its warm start.
    """
    packaged = ROOT / "models" / "portfolio.json"
    if not packaged.is_file():
        return "none"
    section = json.loads(packaged.read_text()).get(task)
    if not section or name not in section["datasets"]:
        return str(packaged)
    chosen = portfolio_from(section, exclude=[name])
    path = work / "portfolio.json"
    path.write_text(json.dumps({task: {"portfolio": chosen}}))
    return str(path)


def published(out: Path) -> str:
    """What a project run published (from its ``metrics.json``): the family or the ensemble's
    size, and how many standard errors the search's winner beat the baseline by."""
    facts = json.loads((out / "metrics.json").read_text())
    best = facts["best"]
    text = (f"ensemble of {len(best['config']['members'])}" if best["family"] == "ensemble"
            else best["family"])
    check = facts.get("baseline_check")
    if check:
        ratio = check.get("std_errors")  # null when infinite (no spread), absent before
        shown = f"{ratio:.1f}" if ratio is not None else "inf" if check["gain"] > 0 else "-inf"
        text += f" (winner {shown} s.e. over the baseline)"
    return text


def run_project(name: str, train: Path, test: pd.DataFrame, task: str, metric: str,
                budget: float, work: Path, home: Path,
                extra: list[str] = ()) -> tuple[np.ndarray, list | None, str]:
    """``python -m flows.train`` on the training file (Prefect home shared across the run).

    ``extra`` arguments come last, so they override the defaults here (an ablation). Returns the
    predictions, the classes and what was published (see :func:`published`).
    """
    # Every run trains afresh: an ablation must not reuse the full run's cached candidates.
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_TASKS_REFRESH_CACHE": "true"}
    env.pop("PREFECT_API_URL", None)
    out = work / "project"
    if out.exists():
        shutil.rmtree(out)
    done = subprocess.run(
        [sys.executable, "-m", "flows.train", "--data", str(train), "--target", "target",
         "--task", task, "--metric", metric, "--time-budget", str(budget), "--seed", "0",
         "--portfolio", lodo_portfolio(task, name, work), "--output", str(out), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or done.stdout[-500:])
    model = joblib.load(out / "model.pkl")
    X = test.drop(columns="target")
    if task == "classification":
        return model.predict_proba(X), list(model.classes_), published(out)
    return model.predict(X), None, published(out)


def warm_up(home: Path) -> None:
    """Create the Prefect database once, so that no system's timing includes its migration."""
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    with tempfile.TemporaryDirectory() as tmp:
        frame = pd.DataFrame({"x": np.arange(40.0), "target": [0, 1] * 20})
        frame.to_csv(Path(tmp) / "warm.csv", index=False)
        subprocess.run([sys.executable, "-m", "flows.train", "--data", str(Path(tmp) / "warm.csv"),
                        "--target", "target", "--task", "classification", "--max-trials", "1",
                        "--output", str(Path(tmp) / "out")], cwd=ROOT, env=env,
                       capture_output=True, check=True)


def run_peer(script: str, python: str, train: Path, test_path: Path, task: str, metric: str,
             budget: float, work: Path) -> tuple[np.ndarray, list | None]:
    """A peer's runner script under ``python``; predictions come back through files."""
    out = work / script
    done = subprocess.run([python, str(PEERS / f"run_{script}.py"), str(train), str(test_path),
                           task, metric, str(budget), str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return np.load(str(out) + ".npy", allow_pickle=False), json.load(
        open(str(out) + ".json")).get("classes")


def run_hgb(train: pd.DataFrame, test: pd.DataFrame, task: str) -> tuple[np.ndarray, list | None]:
    """scikit-learn's HistGradientBoosting with default settings on the raw columns."""
    X, y = train.drop(columns="target"), train["target"]
    if task == "classification":
        model = HistGradientBoostingClassifier(random_state=0).fit(X, y.astype(str))
        return model.predict_proba(test.drop(columns="target")), list(model.classes_)
    model = HistGradientBoostingRegressor(random_state=0).fit(X, y)
    return model.predict(test.drop(columns="target")), None


def peer_available(python: str, module: str) -> bool:
    """Whether ``module`` imports under ``python``."""
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def benchmark_dataset(name: str, kind: str, systems: list[str], budget: float,
                      peer_python: str, home: Path, split_seed: int = 0) -> list[dict]:
    """Every system on one dataset (split with ``split_seed``); one row per system."""
    frame = pd.read_csv(BENCHDATA / f"{name}.tsv.gz", sep="\t")
    task = "regression" if kind == "regression" else "classification"
    metric = METRIC[kind]
    train, test = split(frame, kind, split_seed)
    rows, predictions = [], {}
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        work = Path(tmp)
        train_path, test_path = work / "train.parquet", work / "test.parquet"
        train.to_parquet(train_path)
        test.to_parquet(test_path)
        for system in systems:
            started, chosen = time.perf_counter(), ""
            try:
                if system in ABLATIONS:
                    prediction, classes, chosen = run_project(
                        name, train_path, test, task, metric, budget, work, home,
                        ABLATIONS[system])
                elif system == "hgb":
                    prediction, classes = run_hgb(train, test, task)
                else:
                    prediction, classes = run_peer(system, peer_python, train_path, test_path,
                                                   task, metric, budget, work)
                wall = time.perf_counter() - started
                value, error = score(metric, test["target"], prediction, classes), ""
                predictions[system] = (prediction, classes)
            except Exception as exc:  # noqa: BLE001 - a system failing on a dataset is a result
                wall, value, error = time.perf_counter() - started, float("nan"), str(exc)[:200]
            rows.append({"dataset": name, "kind": kind, "metric": metric, "system": system,
                         "score": value, "wall_seconds": round(wall, 1), "budget": budget,
                         "error": error, "published": chosen})
            print(f"{name:>20} {system:>10} {metric}={value:.5g} wall={wall:.1f}s {chosen}"
                  f"{error}", flush=True)
    for row in rows:
        if "hgb" in predictions and row["system"] in predictions and row["system"] != "hgb":
            row["vs_hgb_low"], row["vs_hgb_high"] = versus_baseline(
                metric, test["target"], predictions[row["system"]], predictions["hgb"])
    return rows


def _comparable(scores: pd.Series) -> pd.Series:
    """Scores rounded to 10 significant digits, so that two systems whose scores differ only in
    the last bits of floating-point summation (equal ROC AUCs, say) rank, and compare, as a tie."""
    return scores.map(lambda v: float(f"{v:.10g}"))


def summarize(results: pd.DataFrame) -> str:
    """Scores and ranks per dataset, mean rank and wall time against budget, as markdown."""
    results = results.assign(score=_comparable(results["score"]))
    ranks = []
    for _, group in results.groupby("dataset", sort=False):
        better = GREATER_IS_BETTER[group["metric"].iloc[0]]
        value = group["score"].fillna(-np.inf if better else np.inf)
        ranks.append(value.rank(ascending=not better, method="average"))
    results = results.assign(rank=pd.concat(ranks))
    systems = list(dict.fromkeys(results["system"]))
    lines = ["| dataset | metric | " + " | ".join(systems) + " |",
             "|---|---|" + "---|" * len(systems)]
    for name, group in results.groupby("dataset", sort=False):
        cells = {r.system: f"{r.score:.4f} ({r.rank:g})" for r in group.itertuples()}
        lines.append(f"| {name} | {group['metric'].iloc[0]} | "
                     + " | ".join(cells.get(s, "") for s in systems) + " |")
    mean_rank = results.groupby("system")["rank"].mean()
    ratio = results.assign(r=results["wall_seconds"] / results["budget"]).groupby("system")["r"]
    lines.append("| **mean rank** | | " + " | ".join(f"{mean_rank[s]:.2f}" for s in systems) + " |")
    lines.append("| wall/budget mean (max) | | " + " | ".join(
        f"{ratio.mean()[s]:.2f} ({ratio.max()[s]:.2f})" for s in systems) + " |")
    if "vs_hgb_high" in results and "hgb" in systems:
        worse = _worse_than_hgb(results)
        cells = ["" if s == "hgb" else f"{worse[s][0]} ({worse[s][1]})" for s in systems]
        lines.append("| worse than hgb: by score (95% bootstrap interval below 0) | | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _worse_than_hgb(results: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Per system: datasets where it scores worse than HistGradientBoosting defaults, and those
    of them where the paired bootstrap interval of the difference lies below zero."""
    baseline = results[results["system"] == "hgb"].set_index("dataset")["score"]
    out = {}
    for system, group in results[results["system"] != "hgb"].groupby("system"):
        rows = list(group.itertuples())
        worse = [r.score < baseline[r.dataset] if GREATER_IS_BETTER[r.metric]
                 else r.score > baseline[r.dataset] for r in rows]
        sure = [w and r.vs_hgb_high < 0 for w, r in zip(worse, rows)]
        out[system] = (sum(worse), sum(sure))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--datasets", nargs="+", help="default: every MANIFEST.csv entry")
    parser.add_argument("--systems", nargs="+", default=["project", "flaml", "autogluon", "hgb"])
    parser.add_argument("--peer-python", default=sys.executable)
    parser.add_argument("--results", default=str(ROOT / "results" / "benchmark-tabular.csv"))
    parser.add_argument("--split-seed", type=int, default=0,
                        help="random_state of the 80/20 split (0: the reported runs' split)")
    args = parser.parse_args()
    if not 0 <= args.split_seed < 2**32:
        parser.error(f"--split-seed {args.split_seed}: use an integer from 0 to 2**32 - 1")
    if not (BENCHDATA / "MANIFEST.csv").is_file():
        parser.error(f"no benchmark data at {BENCHDATA}: the PMLB sets and their MANIFEST.csv "
                     "are read from ../shared/benchdata/tabular beside the checkout")
    manifest = pd.read_csv(BENCHDATA / "MANIFEST.csv")
    if args.datasets:
        unknown = sorted(set(args.datasets) - set(manifest["name"]))
        if unknown:
            parser.error(f"--datasets: {', '.join(unknown)} not in {BENCHDATA / 'MANIFEST.csv'}; "
                         f"choose from {', '.join(manifest['name'])}")
        manifest = manifest[manifest["name"].isin(args.datasets)]
    modules = {"flaml": "flaml", "autogluon": "autogluon.tabular"}
    systems = [s for s in args.systems
               if s not in modules or peer_available(args.peer_python, modules[s])]
    skipped = sorted(set(args.systems) - set(systems))
    if skipped:
        print(f"skipped (not importable with {args.peer_python}): {', '.join(skipped)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-prefect-home-") as home:
        if set(systems) & set(ABLATIONS):
            warm_up(Path(home))
        for entry in manifest.itertuples():
            rows += benchmark_dataset(entry.name, entry.task, systems, args.budget,
                                      args.peer_python, Path(home), args.split_seed)
            Path(args.results).parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(args.results, index=False)
    print()
    print(summarize(pd.DataFrame(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
