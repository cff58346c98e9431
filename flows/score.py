"""The ``automl-score`` flow: a published model and a table in, a predictions file out.

    python -m flows.score --model DIR_OR_PKL_OR_URI --data PATH_OR_URI --output OUT.csv|.parquet
    python -m flows.score --registry DIR_OR_URI --model NAME [--version N|champion] ...

The model's sha256 is checked against its manifest before it is unpickled; the rows are checked
against the data contract saved with it (Great Expectations): missing training columns stop the
run with one line, values outside the training range and unseen categories are reported as a
drift artifact. Every input row gets an output row, in order: the ``--keep-columns`` copied from
the data (none unless asked), ``prediction`` (and ``proba_<class>`` for classifiers), and
``error`` for a row that could not be scored.
"""

from __future__ import annotations

if __name__ == "__main__":  # the CLI logs to stdout, leaving stderr to the one-line error
    from flows._env import use_cli_logging
    from flows._local_api import start_local_api_early

    use_cli_logging()
    start_local_api_early()

import inspect  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path, PurePosixPath  # noqa: E402
from typing import Any, Optional, Union  # noqa: E402

import fsspec  # noqa: E402
import pandas as pd  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from flows import _env  # noqa: E402
from flows._local_api import stop_local_api, wait_for_local_api  # noqa: E402
from tasks.artifacts import scoring_key  # noqa: E402
from tasks.drift import DriftReport, check_against_contract, score_frame  # noqa: E402
from tasks.errors import (  # noqa: E402
    AutoMLInputError, OneLineParser, nearest_names, parameter_names)
from tasks.load import check_source, load_table, read_header  # noqa: E402
from tasks.model_io import (  # noqa: E402
    fetch_published,
    load_verified,
    local_path,
    read_published_json,
)

__all__ = ["ScoreResult", "kept_columns", "main", "score", "write_predictions"]


class ScoreResult(BaseModel):
    """What the ``automl-score`` flow returns."""

    output: str
    rows: int
    scored: int
    failed: int
    drift: list[dict[str, Any]]
    version: Optional[int] = None  # the registry version scored with (None: no registry)


def _same_file(data: str, output: str) -> bool:
    try:
        here, there = local_path(data), local_path(output)
    except (ImportError, ValueError):  # the data's filesystem: loading it will say
        here = there = None
    if here is None or there is None:
        return data.rstrip("/") == output.rstrip("/")
    if here.exists() and there.exists():
        return os.path.samefile(here, there)
    return here.resolve() == there.resolve()


def check_output(output: str, data: Optional[str] = None) -> None:
    """Raise AutoMLInputError unless ``output`` names a CSV or Parquet file that can be made (a
    local path whose folders are not files, or an fsspec URI whose filesystem is installed)
    other than the ``data`` file, which it would overwrite."""
    if PurePosixPath(output).suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise AutoMLInputError(f"output {output!r} must end in .csv or .parquet")
    try:
        path = local_path(output)
    except (ImportError, ValueError) as exc:
        raise AutoMLInputError(f"output {output!r} cannot be written: "
                               f"{str(exc).splitlines()[0]}") from None
    if path is not None and path.is_dir():
        raise AutoMLInputError(f"output {output!r} is a folder; name a file in it")
    for parent in path.parents if path is not None else ():
        if parent.exists() and not parent.is_dir():
            raise AutoMLInputError(f"output {output!r} cannot be written: {str(parent)!r} is a "
                                   "file, not a folder")
    if data is not None and _same_file(data, output):
        raise AutoMLInputError(f"output {output!r} is the data file being scored, which it "
                               "would overwrite; name another file")


def _write(frame: pd.DataFrame, path: str, suffix: str) -> None:
    if suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def write_predictions(frame: pd.DataFrame, output: str) -> str:
    """Write CSV or Parquet (by the file name) whole or not at all: a temporary file, then a
    rename (a local file) or one upload (another fsspec URI). Returns where it is."""
    check_output(output)
    path = local_path(output)
    suffix = PurePosixPath(output).suffix
    if path is None:
        with tempfile.TemporaryDirectory(prefix="automl-predictions-") as local:
            _write(frame, os.path.join(local, f"predictions{suffix}"), suffix)
            fs, target = fsspec.core.url_to_fs(output)
            fs.put_file(os.path.join(local, f"predictions{suffix}"), target)
        return output
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its file is private (0600), and the rename would keep that.
    staging = str(path.parent / f".predictions-{uuid.uuid4().hex}{path.suffix}")
    try:
        _write(frame, staging, path.suffix)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return str(path)


def kept_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The columns of ``frame`` to copy into the predictions file.

    Raises
    ------
    AutoMLInputError
        For a name not in the data (with the nearest ones), given twice, or that the
        predictions file has a column of its own by (``prediction``, ``error``, ``proba_*``).
    """
    for i, name in enumerate(names):
        if name not in frame.columns:
            raise AutoMLInputError(f"--keep-columns: {name!r} is not in the data."
                                   + nearest_names(name, frame.columns))
        if name in ("prediction", "error") or name.startswith("proba_"):
            raise AutoMLInputError(f"--keep-columns: {name!r} would clash with the predictions "
                                   "file's own column of that name; rename it in the data")
        if name in names[:i]:
            raise AutoMLInputError(f"--keep-columns: {name!r} is given twice")
    return frame[list(names)]


@task(name="check-contract", cache_policy=NO_CACHE)
def contract_task(frame: pd.DataFrame, contract: dict[str, Any],
                  required: list[str]) -> DriftReport:
    """Great Expectations: the data contract saved with the model."""
    return check_against_contract(frame, contract, required)


@task(name="predict", cache_policy=NO_CACHE)
def predict_task(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row, with an error for rows that cannot be scored."""
    return score_frame(model, frame)


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return f"score-{Path(str(params.get('data'))).name.split('.')[0]}"


@flow(name="automl-score", flow_run_name=_run_name)
def score(
    model: str = Field(..., description="Results folder of a training run, or its model.pkl "
                       "(a path or fsspec URI); with `registry`, the model's name there."),
    data: str = Field(..., description="Rows to score: CSV/TSV/Parquet path or fsspec URI."),
    output: str = Field(..., description="Predictions file to write (.csv or .parquet)."),
    registry: Optional[str] = Field(None, description="Model registry (folder or fsspec URI)."),
    version: Union[int, str] = Field(
        "champion", description="Registry version (2 or 'v2'), or 'champion'."),
    keep_columns: Optional[list[str]] = Field(
        None, description="Columns of the data copied into the predictions file, before the "
        "predictions: an id to join them back by, a forecast's series and time."),
) -> ScoreResult:
    """Score a table with a published model; report drift and rows that could not be scored."""
    with parameter_names(inspect.signature(score.fn).parameters, cli=_env.in_command_line()):
        check_output(output, data)
        with tempfile.TemporaryDirectory(prefix="automl-model-") as local:
            path, number, scored_with = fetch_published(model, registry, version, local)
            loaded = load_verified(path, source=scored_with)
            contract = read_published_json(loaded.path.with_name("data_contract.json"),
                                           loaded.source)
        frame = load_table(data)
        kept = kept_columns(frame, keep_columns or [])
        drift = contract_task(frame, contract, loaded.required)
        predictions = predict_task(loaded.model, frame)
        path = write_predictions(pd.concat([kept, predictions.set_index(kept.index)], axis=1),
                                 output)
        failed = int((predictions["error"] != "").sum())
        key = scoring_key(output)
        create_table_artifact(table=drift.findings.to_dict("records"), key=f"{key}-drift",
                              description="Drift signs against the training data contract")
        create_markdown_artifact(
            markdown=f"Model: {scored_with}\n\n{drift.markdown()}\n\n"
                     f"{len(frame) - failed} of {len(frame)} rows scored; "
                     f"{failed} could not be (see the `error` column of "
                     f"{PurePosixPath(path).name}).",
            key=f"{key}-summary", description="Scoring summary")
        return ScoreResult(output=path, rows=len(frame), scored=len(frame) - failed,
                           failed=failed, drift=drift.findings.to_dict("records"), version=number)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; exit 2 with one ``error:`` line on bad input, 1 when the run fails."""
    parser = OneLineParser(prog="python -m flows.score", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="results folder or its model.pkl (path or fsspec URI); with "
                        "--registry, the model's name")
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--registry", help="model registry folder or fsspec URI")
    parser.add_argument("--version", default="champion", help="registry version or 'champion'")
    parser.add_argument("--keep-columns", nargs="+", default=None, metavar="COLUMN",
                        help="columns of the data to copy into the predictions file, before "
                        "the predictions (an id; a forecast's series and time)")
    args = parser.parse_args(argv)
    try:
        # The flow checks again; here it fails before any flow run.
        check_output(args.output, args.data)
        check_source(args.data)
        columns = read_header(args.data) if args.keep_columns else None
        if columns is not None:
            kept_columns(pd.DataFrame(columns=columns), args.keep_columns)
        wait_for_local_api(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        with _env.command_line():
            result = score(model=args.model, data=args.data, output=args.output,
                           registry=args.registry, version=args.version,
                           keep_columns=args.keep_columns)
    except AutoMLInputError as exc:
        stop_local_api()  # not needed now: stopped at once, the error is not kept waiting
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, not a crash
        print(f"error: scoring failed: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return 1
    by = "" if result.version is None else f"{args.model} v{result.version}, "
    print(f"predictions: {result.output} ({by}{result.scored} of {result.rows} rows scored, "
          f"{len(result.drift)} drift signs)")
    for sign in result.drift:
        print(f"drift: {sign['column']!r} {sign['check'].replace('_', ' ')}: "
              f"{sign['unexpected_count']} rows ({sign['unexpected_percent']:.1f}%)"
              + (f", e.g. {sign['examples']}" if sign["examples"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
