"""``python -m flows.train``: the CLI contract of DESIGN.md over the ``automl`` flow."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Optional, Sequence

from tasks.errors import AutoMLInputError, OneLineParser
from tasks.settings import settings_from_kwargs

__all__ = ["build_parser", "main"]



def _process_started() -> float:
    """When this process started (so that start-up counts against the budget)."""
    try:
        with open("/proc/self/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):  # not Linux: this module's import
        return _IMPORTED


_IMPORTED = time.time()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; flag names match the flow's parameters."""
    p = OneLineParser(
        prog="python -m flows.train",
        description="Train, select and publish the best model for a labelled table.")
    p.add_argument("--data", required=True, help="CSV/TSV/Parquet path or fsspec URI")
    p.add_argument("--target", required=True, help="column to predict")
    p.add_argument("--task", required=True,
                   choices=["classification", "regression", "forecasting"])
    p.add_argument("--metric", help="primary metric (default: roc_auc, log_loss, rmse or mase)")
    p.add_argument("--time-budget", type=float, help="seconds for the whole run")
    p.add_argument("--max-trials", type=int, help="stop after this many candidates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="results", help="results folder (default: results)")
    p.add_argument("--include", nargs="+", default=[], metavar="FAMILY")
    p.add_argument("--exclude", nargs="+", default=[], metavar="FAMILY")
    p.add_argument("--exit-score", type=float, help="stop when a candidate reaches this score")
    p.add_argument("--cv-folds", type=int, help="force k-fold cross-validation")
    p.add_argument("--validation-fraction", type=float, help="force a holdout of this fraction")
    p.add_argument("--validation-data", help="separate validation table")
    p.add_argument("--include-columns", nargs="+", default=[], metavar="COLUMN")
    p.add_argument("--exclude-columns", nargs="+", default=[], metavar="COLUMN")
    p.add_argument("--n-workers", type=int, default=2, help="candidates trained at once")
    p.add_argument("--candidate-timeout", type=float, help="seconds per candidate")
    p.add_argument("--no-ensemble", dest="ensemble", action="store_false",
                   help="publish the best single candidate, never a blend")
    p.add_argument("--baseline-margin", type=float, default=2.0, metavar="STD_ERRORS",
                   help="publish the search's winner only when it beats HistGradientBoosting "
                   "defaults by this many standard errors on validation (default 2; 0: off)")
    p.add_argument("--predict-time-limit", type=float, metavar="SECONDS",
                   help="drop candidates slower than this to predict 1,000 rows")
    p.add_argument("--positive-class", metavar="LABEL",
                   help="of two classes, the one average precision and the charts score "
                   "(default: 1 or True, else the rarer class)")
    p.add_argument("--portfolio", metavar="FILE",
                   help="warm-start portfolio file, or 'none' (default: the packaged one)")
    p.add_argument("--search", choices=["tpe", "random"], default="tpe",
                   help="within a family after the warm start: TPE (default) or random")
    p.add_argument("--no-halving", dest="halving", action="store_false",
                   help="train every candidate on all rows, even on large data")
    p.add_argument("--task-runner", choices=["threads", "dask"], default="threads",
                   help="train candidates in threads (default) or on Dask")
    p.add_argument("--dask-address", help="existing Dask scheduler (default: a LocalCluster)")
    p.add_argument("--registry", metavar="DIR_OR_URI",
                   help="model registry: publish as its next version, champion if it wins")
    p.add_argument("--model-name", help="name in the registry (default: the target column)")
    p.add_argument("--promotion-margin", type=float, default=0.0,
                   help="how much better than the champion a new model must score "
                   "(forecasting: how much better the champion must score to stay)")
    p.add_argument("--promotion-std-errors", type=float, default=2.0, metavar="STD_ERRORS",
                   help="...and by how many standard errors of that gain (default 2; 0: off)")
    p.add_argument("--time-column", help="forecasting: the column holding each row's time")
    p.add_argument("--series-id", nargs="+", default=[], metavar="COLUMN",
                   help="forecasting: column(s) naming the series (none: one series)")
    p.add_argument("--horizon", type=int, help="forecasting: periods to forecast")
    p.add_argument("--frequency", help="forecasting: pandas frequency, e.g. h, D, W-SUN, MS "
                   "(default: inferred)")
    p.add_argument("--seasonality", type=int, help="forecasting: season length in periods "
                   "(default: from the frequency, e.g. 24 hourly, 7 daily, 12 monthly)")
    p.add_argument("--known-features", nargs="+", default=[], metavar="COLUMN",
                   help="forecasting: feature columns whose future values are known")
    p.add_argument("--short-series", choices=["fallback", "drop"], default="fallback",
                   help="forecasting: series too short to backtest get a naive forecast "
                   "(fallback) or are left out and reported (drop)")
    p.add_argument("--fill-gaps", choices=["interpolate", "forward", "zero"],
                   default="interpolate", help="forecasting: how missing periods are filled")
    p.add_argument("--backtest-windows", type=int, default=3,
                   help="forecasting: rolling-origin windows of the horizon's length")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(flow: Any, argv: Optional[Sequence[str]] = None) -> int:
    """Run the flow from command-line arguments; return the exit status.

    Bad input or settings print one ``error: ...`` line on stderr and return 2 (argparse's own
    usage errors are one such line too), before anything is written to the output folder.
    """
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    from flows import _env
    from flows._local_api import stop_local_api, wait_for_local_api
    from flows._select import choose_families
    from models import DataShape
    from tasks.portfolio import load_portfolio
    from tasks.load import check_named_columns, check_source, read_header
    from tasks.publish import check_output_folder

    args = vars(build_parser().parse_args(argv))
    debug = args.pop("debug")
    try:
        settings = settings_from_kwargs(**args)
        check_output_folder(settings.output)  # the flow checks again; here it fails in a second
        for source in (settings.data, settings.validation_data):  # so does a missing file
            if source:
                check_source(source)
        columns = read_header(settings.data)  # and a misspelt column, when the header reads
        if columns is not None:
            check_named_columns(columns, settings.named_columns, settings.target)
        choose_families(settings, DataShape(0, 0))
        load_portfolio(settings.task, settings.portfolio)
        _env.RUN_STARTED = _process_started()
        wait_for_local_api(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        with _env.command_line():
            result = flow(**args)  # its threads follow n_workers (flows._runners.flow_threads)
    except AutoMLInputError as exc:
        stop_local_api()  # not needed now: stopped at once, the error is not kept waiting
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted; the output folder keeps what it held unless this run had "
              "published its model", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, not a crash
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"error: run failed: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    print(f"model: {result.model_path}")
    print(f"best: {result.best.family} (candidate {result.best.id}) "
          f"{result.metric}={result.score:.5g} validated on {result.validation}")
    if result.ensemble and result.best.family in ("ensemble", "combination"):
        family = {c.id: c.family for c in result.leaderboard}
        print("blend of: " + ", ".join(f"{family[i]} (candidate {i}) x {w:g}" for i, w in sorted(
            result.ensemble.items(), key=lambda m: (-m[1], m[0]))))
    trained = sum(c.family != "ensemble" for c in result.leaderboard)
    print(f"candidates: {trained}; wall time {result.wall_seconds:.1f}s")
    if result.promotion:
        decision = result.promotion
        outcome = "the champion" if decision["promoted"] else "registered, not promoted"
        print(f"registry: {decision['name']} v{decision['challenger_version']} {outcome}: "
              f"{decision['reason']}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0
