"""Measure the warm-start portfolio (``models/portfolio.json``) on the benchmark datasets.

How it is measured, per task (classification, regression):

1. Pool: on the 80% training split of every dataset (the split ``benchmarks/tabular.py`` uses;
   its 20% test part is never read), run the project's search without a portfolio for
   ``--trials`` candidates, and keep the ``--keep`` best configurations, plus every family's
   ``initial_config``.
2. Matrix: evaluate every pool configuration on every dataset of the task (3-fold CV on at most
   ``--max-rows`` rows of the training split), recording the validation loss.
3. Portfolio: greedy forward selection (``tasks.portfolio.select_portfolio``) of up to
   ``--size`` configurations, each step lowering most the mean over datasets of the best
   normalized regret. It starts from the baseline's regret (HistGradientBoosting defaults, which
   every run evaluates first) and, unless ``--per-config``, counts the gain per second of
   evaluation, so that a short budget reaches good configurations sooner.

The JSON keeps the pool, the datasets, the loss matrix, the seconds each evaluation took (fit and
predict, ``--jobs`` evaluations at a time) and the chosen order, so a benchmark can re-select
the portfolio without the dataset it is scored on (leave-one-dataset-out).

    python benchmarks/build_portfolio.py [--trials 40] [--keep 3] [--size 12] [--jobs 2]
    python benchmarks/build_portfolio.py --reselect [--size 12] [--per-config]   # step 3 only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tabular import BENCHDATA, METRIC, split  # noqa: E402
from models import DataShape, registry  # noqa: E402
from tasks.evaluate import loss_of  # noqa: E402
from tasks.portfolio import portfolio_from  # noqa: E402
from tasks.search import Searcher  # noqa: E402
from tasks.settings import TrainSettings  # noqa: E402
from tasks.split import plan_split  # noqa: E402
from tasks.train import evaluate_candidate  # noqa: E402
from tasks.types import CandidateSpec  # noqa: E402
from tasks.validate import prepare_data  # noqa: E402

OUTPUT = Path(__file__).resolve().parents[1] / "models" / "portfolio.json"


def _prepared(name: str, kind: str, max_rows: int):
    frame = pd.read_csv(BENCHDATA / f"{name}.tsv.gz", sep="\t")
    train, _ = split(frame, kind)
    if len(train) > max_rows:
        train = train.sample(max_rows, random_state=0)
    task = "regression" if kind == "regression" else "classification"
    data = prepare_data(train.reset_index(drop=True),
                        TrainSettings(data=name, target="target", task=task, metric=METRIC[kind]))
    return data, task, METRIC[kind]


def search_pool(name: str, kind: str, trials: int, keep: int, max_rows: int) -> list[dict]:
    """The best configurations the search finds on one dataset's training split."""
    data, task, metric = _prepared(name, kind, max_rows)
    plan = plan_split(data.y, task, seed=0, cv_folds=3)
    shape = DataShape(len(data.y), data.X.shape[1], data.n_classes)
    families = [registry().get(n) for n in registry().names(task)
                if registry().get(n).is_applicable(task, shape)]
    searcher = Searcher(families, task, shape, metric, seed=0)
    found = []
    for _ in range(trials):
        spec = searcher.propose()
        if spec is None:
            break
        result = evaluate_candidate(spec, data, plan, seed=0)
        searcher.tell([result])
        if result.status == "ok":
            found.append((loss_of(metric, result.metrics[metric]), spec))
    found.sort(key=lambda item: item[0])
    return [{"family": s.family, "config": s.config, "source": name} for _, s in found[:keep]]


def evaluate_pool(name: str, kind: str, pool: list[dict],
                  max_rows: int) -> tuple[list[float], list[float]]:
    """Validation loss, and seconds of fitting and predicting, of every pool configuration on
    one dataset."""
    data, task, metric = _prepared(name, kind, max_rows)
    plan = plan_split(data.y, task, seed=0, cv_folds=3)
    losses, seconds = [], []
    for i, entry in enumerate(pool):
        spec = CandidateSpec(i, entry["family"], entry["config"])
        result = evaluate_candidate(spec, data, plan, seed=0)
        losses.append(loss_of(metric, result.metrics[metric]) if result.status == "ok"
                      else math.inf)
        seconds.append(result.fit_seconds + result.predict_seconds)
    return losses, seconds


def measure(kinds: tuple[str, ...], task: str, args: argparse.Namespace) -> dict:
    """Steps 1 and 2 for one task: the pool and its losses and seconds on every dataset."""
    manifest = pd.read_csv(BENCHDATA / "MANIFEST.csv")
    sets = manifest[manifest["task"].isin(kinds)][["name", "task"]].values.tolist()
    pools = Parallel(n_jobs=args.jobs)(
        delayed(search_pool)(n, k, args.trials, args.keep, args.max_rows) for n, k in sets)
    shape = DataShape(1000, 10, 2 if task == "classification" else 0)
    pool = [{"family": f, "config": registry().get(f).initial_config(task, shape),
             "source": "initial_config"} for f in registry().names(task)]
    seen = {json.dumps([e["family"], e["config"]], sort_keys=True) for e in pool}
    for entry in (e for found in pools for e in found):
        key = json.dumps([entry["family"], entry["config"]], sort_keys=True)
        if key not in seen:
            seen.add(key)
            pool.append(entry)
    columns = Parallel(n_jobs=args.jobs)(
        delayed(evaluate_pool)(n, k, pool, args.max_rows) for n, k in sets)
    losses = np.array([c[0] for c in columns], dtype=float).T  # (configs, datasets)
    seconds = np.array([c[1] for c in columns], dtype=float).T
    return {
        "datasets": [n for n, _ in sets],
        "pool": pool,
        "losses": [[None if not math.isfinite(v) else round(float(v), 6) for v in row]
                   for row in losses],
        "seconds": [[round(float(v), 3) for v in row] for row in seconds],
    }


def select(section: dict, args: argparse.Namespace) -> dict:
    """Step 3: the selection's settings and the portfolio they give, added to ``section``."""
    section["size"] = args.size
    section["start"] = next(i for i, e in enumerate(section["pool"])
                            if e["source"] == "initial_config"
                            and registry().get(e["family"]).baseline)
    section["per_second"] = not args.per_config
    section["portfolio"] = portfolio_from(section)
    return section


def _settings(args: argparse.Namespace, previous: dict) -> dict:
    """The settings the file records: those the measurements were made with (a reselection
    keeps the earlier run's trials, keep, rows and jobs) and this run's selection settings."""
    measured = previous.get("settings", {})
    current = {k: v for k, v in vars(args).items() if k != "reselect"}
    return {**current, **measured, "size": args.size, "per_config": args.per_config}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--size", type=int, default=12)
    parser.add_argument("--max-rows", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--per-config", action="store_true",
                        help="choose by the gain per configuration, not per second")
    parser.add_argument("--reselect", action="store_true",
                        help="only step 3, on the measurements already in models/portfolio.json")
    args = parser.parse_args()
    previous = json.loads(OUTPUT.read_text()) if args.reselect and OUTPUT.is_file() else {}
    if args.reselect and any("seconds" not in previous.get(task, {})
                             for task in ("classification", "regression")):
        parser.error(f"--reselect needs the measurements (with seconds) in {OUTPUT}; "
                     "run without --reselect to measure them")
    started = time.time()
    output: dict = {"how": __doc__.split("How it is measured, per task")[1].split("The JSON")[0]
                    .strip(),
                    "settings": _settings(args, previous)}
    for task, kinds in (("classification", ("binary", "multiclass")), ("regression",
                                                                       ("regression",))):
        section = previous[task] if args.reselect else measure(kinds, task, args)
        output[task] = select(section, args)
        print(f"{task}: pool {len(section['pool'])} x {len(section['datasets'])} datasets; "
              "portfolio " + ", ".join(e["family"] for e in section["portfolio"])
              + f" ({time.time() - started:.0f}s)", flush=True)
    OUTPUT.write_text(json.dumps(output, indent=1, default=str) + "\n")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
