"""HTTP scoring of a published model (FastAPI + uvicorn, both installed with Prefect).

    python -m flows.serve --model DIR_OR_PKL_OR_URI [--host 127.0.0.1] [--port 8000]
    python -m flows.serve --registry DIR_OR_URI --model NAME [--version N|champion]
                          [--poll-seconds 30] ...

``GET /health`` answers 200 once the model is loaded (with the registry version served: the
champion is read again every ``--poll-seconds``, and a newly promoted one served from then on,
its request schema included); ``POST /predict`` takes
``{"rows": [{column: value, ...}, ...]}`` and answers ``{"predictions": [...]}`` (classifiers
also ``"classes"`` and ``"probabilities"``, one list per row in ``classes`` order). The request
schema, and so the OpenAPI document at ``/openapi.json``, is generated from the training columns
in ``manifest.json``. Bad requests get a 4xx with a message: malformed JSON, unknown or missing
columns and wrong types 422 (the first 20 errors, then a count), a row whose prediction is not
finite 422, bodies over ``--max-body-bytes`` 413 (a POST without a
Content-Length 411), a POST whose Content-Type is not JSON 415, a body that has not arrived
whole after ``--body-timeout`` seconds 408. The model file's sha256 is
checked against the manifest before it is unpickled.
"""

# No ``from __future__ import annotations`` here: FastAPI must see the request model that
# create_app builds at run time as a real annotation, not as a string it cannot resolve.
import argparse
import asyncio
import math
import socket
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError,
                      WithJsonSchema, WrapValidator, create_model)
from typing_extensions import Annotated

from featurizers._cleaning import NA_TEXT
from featurizers._numbers import as_numbers
from featurizers._datetime import read_dates
from flows._follow import ChampionFollower
from tasks.drift import NOT_FINITE, date_readings, not_finite
from tasks.errors import AutoMLInputError, OneLineParser
from tasks.model_io import LoadedModel, fetch_published, load_verified
from tasks.registry import Registry

__all__ = ["build_parser", "create_app", "main", "predict_rows"]

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
MAX_ERRORS = 20  # validation errors listed in a 422
BODY_SECONDS = 30.0
POLL_SECONDS = 30.0

Number = Annotated[float, Field(allow_inf_nan=False)]


def _one_error(value: Any, handler: Any) -> Any:
    """A number column's value, or one error saying what it takes (not one per union member)."""
    try:
        return handler(value)
    except ValidationError:
        amount = as_numbers(pd.Series([value], dtype=object)).iloc[0] if isinstance(
            value, str) else math.nan
        if not math.isnan(amount):  # "$17,463", "1.234,5": as the model reads the column
            return float(amount)
        if isinstance(value, float):  # NaN or Infinity, which Python's JSON parser reads
            raise ValueError("not a finite number: send a number, or null for a missing "
                             "value") from None
        raise ValueError("not a number: send a number (or numeric text), JSON true/false, or "
                         "null for a missing value") from None


# What the schema says a number column takes: _one_error also reads numeric text.
_NUMERIC_SCHEMA = {"anyOf": [
    {"type": "number"}, {"type": "boolean"},
    {"type": "string", "description": "numeric text, read as the model reads it: 1.5, 1,5, "
     "1,234.5, $1,234, 45%"},
    {"type": "null"}]}

_TYPES: dict[str, Any] = {
    # Strict: lax booleans would read "yes", "on" or "t" in a number column as 1.
    "numeric": Annotated[Optional[Union[Number, StrictBool]], WrapValidator(_one_error),
                         WithJsonSchema(_NUMERIC_SCHEMA)],
    "datetime": Optional[str],
    "text": Optional[str],
}
_ANY_SCALAR = Optional[Union[Number, bool, str]]
# A forecaster's time column of years (2024) or dates written 20240131 takes them as numbers.
_NUMBER_TIMES = Optional[Union[StrictInt, str]]


def _row_model(loaded: LoadedModel) -> type[BaseModel]:
    fields = {}
    required = set(loaded.required)
    number_times = getattr(loaded.model, "numbers_as_dates", False)
    for i, column in enumerate(loaded.columns):
        kind = loaded.roles.get(column)
        annotation = _TYPES.get(kind, _ANY_SCALAR)
        if number_times and column == getattr(loaded.model, "time_column", None):
            annotation = _NUMBER_TIMES
        fields[f"c{i}"] = (annotation, Field(... if column in required else None, alias=column))
    config = ConfigDict(extra="forbid", populate_by_name=False)
    return create_model("Row", __config__=config, **fields)


def _request_model(row: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        "PredictRequest", __config__=ConfigDict(extra="forbid"),
        rows=(list[row], Field(..., min_length=1, max_length=MAX_ROWS,
                               description="Rows to score, each with every training column "
                               "the model uses.")))


class PredictResponse(BaseModel):
    """Predictions, one per row, in row order."""

    predictions: list[Any]
    classes: Optional[list[Any]] = None
    probabilities: Optional[list[list[float]]] = None


def _plain(values: np.ndarray) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def _check_dates(loaded: LoadedModel, frame: pd.DataFrame) -> None:
    """Raise ValueError naming the first value of a date column that the model would read as
    missing (``"yesterday"``, ``"2020-02-30"``, ``"31/01/2021"`` to a model that reads dates
    month first). (A forecaster reads its time column itself, and says so of a time it
    cannot read.)"""
    if loaded.task == "forecasting":
        return
    # As training read each column; both readings for a model published without its contract.
    firsts = date_readings(loaded.contract) if loaded.contract else {}
    for column in [c for c in loaded.columns if loaded.roles.get(c) == "datetime"]:
        values = frame[column]
        given = values.notna() & ~values.astype(str).str.strip().isin(NA_TEXT)
        if not given.any():
            continue
        readings = [firsts[column]] if column in firsts else [False, True]
        unread = given & np.logical_and.reduce([read_dates(values, first).isna()
                                                for first in readings])
        if unread.any():
            row = int(np.flatnonzero(unread.to_numpy())[0])
            text = str(values.iloc[row])
            shown = repr(text if len(text) <= 40 else text[:40] + "...")
            raise ValueError(f"row {row}: {column!r} is {shown}, not a date as the model reads "
                             "them (e.g. 2024-01-31 or 2024-01-31 13:45); send null for a "
                             "missing value")


def predict_rows(loaded: LoadedModel, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Score rows given as ``{column: value}`` dicts (pure function behind ``POST /predict``)."""
    frame = pd.DataFrame(rows, columns=loaded.columns)
    _check_dates(loaded, frame)
    predictions = np.asarray(loaded.model.predict(frame))
    proba = loaded.model.predict_proba(frame) if loaded.task == "classification" else None
    bad = not_finite(predictions, proba)
    if bad:
        raise ValueError(f"row {bad[0]}: {NOT_FINITE}")
    answer: dict[str, Any] = {"predictions": _plain(predictions)}
    if proba is not None:
        answer["classes"] = _plain(np.asarray(loaded.model.classes_))
        answer["probabilities"] = np.round(proba, 6).tolist()
    return answer


def create_app(loaded: LoadedModel, max_body_bytes: int = MAX_BODY_BYTES,
               body_seconds: float = BODY_SECONDS, version: Optional[int] = None) -> Any:
    """The FastAPI application serving ``loaded`` (``version``: its number in the registry it
    came from); a request body that has not arrived whole after ``body_seconds`` is a 408."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    row = _row_model(loaded)
    request_model = _request_model(row)
    app = FastAPI(title=f"AutoML model: {loaded.manifest.get('target', 'target')}",
                  description=f"{loaded.task} model from {loaded.source}", version="1")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # noqa: ANN202 - FastAPI middleware
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            return JSONResponse({"detail": f"body over {max_body_bytes} bytes"}, status_code=413)
        if length is None and request.method == "POST":
            return JSONResponse({"detail": "a Content-Length header is required"},
                                status_code=411)
        body = b""
        if request.method == "POST":
            try:  # read here (Starlette hands it on): a short body would hold the connection
                body = await asyncio.wait_for(request.body(), timeout=body_seconds)
            except asyncio.TimeoutError:
                return JSONResponse({"detail": f"the body did not arrive in {body_seconds:g} s; "
                                     "is Content-Length larger than the body?"}, status_code=408)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method == "POST" and not (
                kind == "application/json" or kind.startswith("application/") and
                kind.endswith("+json")):
            # FastAPI reads such a body (curl -d sends a form type; some clients send none) as
            # no JSON at all, and answers "Input should be a valid dictionary".
            return JSONResponse({"detail": "the body must be JSON, sent with Content-Type: "
                                 f"application/json (not {kind or 'none'!r})"}, status_code=415)
        try:  # FastAPI answers "There was an error parsing the body"
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            return JSONResponse({"detail": f"the body is not UTF-8 (byte {error.start}): send "
                                 "the JSON encoded as UTF-8"}, status_code=400)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which JSON cannot always carry back
        # (an Infinity made it a 500); the location and the reason are what a caller needs.
        found = exc.errors()
        errors = [{"loc": [str(part) for part in error.get("loc", ())],
                   "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
                  for error in found[:MAX_ERRORS]]
        if len(found) > MAX_ERRORS:  # one bad value per cell of a large body: megabytes
            errors.append({"loc": [], "msg": f"and {len(found) - MAX_ERRORS} more errors",
                           "type": "truncated"})
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """200 when the model is loaded."""
        return {"status": "ok", "task": loaded.task, "target": loaded.manifest.get("target"),
                "model_sha256": loaded.manifest.get("model_sha256"), "source": loaded.source,
                "version": version}

    # A regressor's or forecaster's answer has no classes or probabilities (not null ones).
    @app.post("/predict", response_model=PredictResponse, response_model_exclude_none=True)
    def predict(body: request_model) -> dict[str, Any]:  # type: ignore[valid-type]
        """Predict every row; a row the model cannot score is a 422 naming the problem."""
        rows = [r.model_dump(by_alias=True) for r in body.rows]
        try:
            return predict_rows(loaded, rows)
        except (ValueError, TypeError) as exc:
            raise HTTPException(status_code=422,
                                detail=f"cannot score these rows: {str(exc).splitlines()[0]}")

    return app


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give 0 to 65535 (0 takes a "
                                         "free one)")
    return port


def _positive(kind: type) -> Any:
    def read(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r}: give a finite number above 0")
        return value

    return read


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m flows.serve``."""
    parser = OneLineParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="results folder or its model.pkl (path or fsspec URI); with "
                        "--registry, the model's name")
    parser.add_argument("--registry", help="model registry folder or fsspec URI")
    parser.add_argument("--version", default="champion",
                        help="registry version or 'champion' (default)")
    parser.add_argument("--poll-seconds", type=float, default=None,
                        help="with --registry and the champion: seconds between two readings "
                        "of the champion, a newly promoted one being served from then on "
                        f"(default {POLL_SECONDS:g}; 0 serves the one read at start)")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine)")
    parser.add_argument("--port", type=_port, default=8000,
                        help="0 to 65535; 0 takes a free one (default 8000)")
    parser.add_argument("--max-body-bytes", type=_positive(int), default=MAX_BODY_BYTES)
    parser.add_argument("--body-timeout", type=_positive(float), default=BODY_SECONDS,
                        help="seconds for a request body to arrive whole (else 408)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; exit 2 with one ``error:`` line when the model cannot be used."""
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="automl-model-") as local:
        try:
            poll = _poll_seconds(args)
            _check_listen(args.host, args.port)
            path, number, source = fetch_published(args.model, args.registry, args.version,
                                                   local)
            loaded = load_verified(path, source=source)
        except AutoMLInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    import uvicorn

    def build(model: LoadedModel, version: Optional[int]) -> Any:
        return create_app(model, args.max_body_bytes, args.body_timeout, version)

    app = build(loaded, number)
    if poll and number is not None:
        app = ChampionFollower(Registry(args.registry, args.model), number, app, build, poll)
    # Info, without a line per request: uvicorn says when it is up and on which port (--port 0
    # takes a free one).
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def _check_listen(host: str, port: int) -> None:
    """Raise :class:`AutoMLInputError` when nothing can listen at ``host:port`` (a port in use,
    a host that is not this machine's): uvicorn would say so in many lines, after loading."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        raise AutoMLInputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; give another --port (0 "
            "takes a free one) or --host") from None


def _poll_seconds(args: argparse.Namespace) -> float:
    """Seconds between two readings of the champion; 0 when the model served is fixed.

    Raises
    ------
    AutoMLInputError
        For ``--poll-seconds`` below 0, or given when no champion is served.
    """
    if args.poll_seconds is None:
        follows = args.registry and args.version == "champion"
        return POLL_SECONDS if follows else 0.0
    if not args.poll_seconds >= 0:  # NaN too
        raise AutoMLInputError(f"--poll-seconds {args.poll_seconds:g}: give 0 or more seconds")
    if not args.registry or args.version != "champion":
        raise AutoMLInputError("--poll-seconds follows a registry's champion: give --registry "
                               "without --version, or leave it out")
    return args.poll_seconds


if __name__ == "__main__":
    raise SystemExit(main())
