"""Check rows to score against the data contract saved with a model (Great Expectations)."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd

from featurizers._cleaning import NA_TEXT, category_text, read_as_missing
from featurizers._datetime import read_dates
from featurizers._numbers import as_numbers, not_numbers
from tasks.errors import AutoMLInputError, listed

__all__ = ["NOT_FINITE", "DriftReport", "check_against_contract", "date_readings", "not_finite",
           "score_frame"]

_KINDS = {
    "expect_column_values_to_be_between": "out_of_range",
    "expect_column_values_to_be_in_set": "unseen_category",
}
DRIFT_COLUMNS = ["column", "check", "unexpected_count", "unexpected_percent", "examples"]


@dataclass
class DriftReport:
    """Signs that the rows differ from the training data, one row per failed check."""

    rows: int
    findings: pd.DataFrame

    def markdown(self) -> str:
        """A short summary for the Prefect UI."""
        if self.findings.empty:
            return f"{self.rows} rows checked: no drift signs against the training contract."
        lines = [f"{self.rows} rows checked; drift signs:", "",
                 "| column | check | rows | % | examples |", "|---|---|---|---|---|"]
        lines += [f"| {r.column} | {r.check} | {r.unexpected_count} | "
                  f"{r.unexpected_percent:.2f} | {r.examples} |"
                  for r in self.findings.itertuples()]
        return "\n".join(lines)


def _contract_expectations(contract: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in contract.get("expectations", []) if (e.get("meta") or {}).get("contract")]


def date_readings(contract: dict[str, Any] | list[dict[str, Any]]) -> dict[str, bool]:
    """The contract's date columns, each with whether its dates written as 05/03/2024 put the
    day first (as training read them).

    Parameters
    ----------
    contract : dict or list of dict
        A data contract (``data_contract.json``), or its expectations.

    Returns
    -------
    dict
        Column -> day first.
    """
    expectations = (_contract_expectations(contract) if isinstance(contract, dict)
                    else contract)
    return {e["kwargs"]["column"]: bool(e["meta"].get("day_first")) for e in expectations
            if (e.get("meta") or {}).get("read_as") == "datetime"}


def check_against_contract(frame: pd.DataFrame, contract: dict[str, Any],
                           required: Optional[Collection[str]] = None) -> DriftReport:
    """Validate ``frame`` with the contract's expectations.

    ``required`` names the columns the model uses (default: every column of the contract); a
    column outside it may be absent, and is not checked.

    Raises
    ------
    AutoMLInputError
        When training columns are missing (the model cannot score such rows at all).

    Returns
    -------
    DriftReport
        Values outside the training range and categories never seen in training, per column.
    """
    expectations = _contract_expectations(contract)
    needed = [e["kwargs"]["column"] for e in expectations if e["type"] == "expect_column_to_exist"]
    if required is not None:
        needed = [c for c in needed if c in set(required)]
    # A column the model does not use cannot move its predictions: it is not checked.
    expectations = [_as_read(e) for e in expectations if e["kwargs"].get("column") in set(needed)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise AutoMLInputError(
            f"the data lacks training column(s) {listed(missing)}; the model needs every column it "
            "was trained with")
    dates = date_readings(expectations)
    numeric = [e["kwargs"]["column"] for e in expectations
               if e["type"] == "expect_column_values_to_be_between"
               and e["kwargs"]["column"] not in dates]
    checked = _as_dates(_as_numbers(_as_categories(frame, {
        e["kwargs"]["column"]: (e["kwargs"].get("value_set", []),
                                bool((e.get("meta") or {}).get("missing_text")))
        for e in expectations if e["type"] == "expect_column_values_to_be_in_set"}), numeric),
        dates)
    # Great Expectations takes ~10 ms per expectation (30 s for 3,000 columns): it is given
    # only those that a plain look at the values cannot clear.
    doubtful = [e for e in expectations if e["type"] in _KINDS and _may_fail(checked, e)]
    findings = _with_text_in_numbers(frame, numeric, _validate(checked, doubtful))
    return DriftReport(len(frame), pd.DataFrame(
        _with_unread(findings, "not_a_date", {
            c: _without_missing_text(frame[c][frame[c].notna() & checked[c].isna()])
            for c in dates}, len(frame)),
        columns=DRIFT_COLUMNS))


def _as_read(expectation: dict[str, Any]) -> dict[str, Any]:
    """``expectation`` with its values as the rows' values are compared: a set as text
    (forecasters published before this wrote numeric series ids as numbers), a date range as
    timestamps."""
    kwargs = expectation["kwargs"]
    if (expectation.get("meta") or {}).get("read_as") == "datetime":
        return {**expectation, "kwargs": {**kwargs, **{
            k: pd.Timestamp(kwargs[k]) for k in ("min_value", "max_value") if k in kwargs}}}
    return _set_as_categories(expectation)


def _set_as_categories(expectation: dict[str, Any]) -> dict[str, Any]:
    """``expectation`` with its set of values as the rows' values are compared: as text
    (forecasters published before this wrote numeric series ids as numbers)."""
    kwargs = expectation["kwargs"]
    if expectation["type"] != "expect_column_values_to_be_in_set" or "value_set" not in kwargs:
        return expectation
    value_set = sorted({category_text(v) for v in kwargs["value_set"]})
    return {**expectation, "kwargs": {**kwargs, "value_set": value_set}}


def _as_categories(frame: pd.DataFrame,
                   value_sets: dict[str, tuple[list[str], bool]]) -> pd.DataFrame:
    """``frame`` with the columns of ``value_sets`` (``column -> (set, rule)``) as the model
    reads categories (41 and 41.0 read from another file are the category '41' seen in
    training); missing values are missing, and so, where ``rule`` (the contracts of models that
    read them so), are texts the CSV reader reads as missing (``"NA"``) that are not in the
    set."""
    if not value_sets:
        return frame
    frame = frame.copy(deep=False)
    for column, (value_set, rule) in value_sets.items():
        values = frame[column]
        text = values.astype(object).map(category_text)
        missing = read_as_missing(values, text, value_set) if rule else values.isna()
        frame[column] = text.where(~missing)
    return frame


def _without_missing_text(values: pd.Series) -> pd.Series:
    """``values`` without the texts the CSV reader reads as missing (``"NA"``, ``""``): the
    model reads them as missing, not as a value it cannot read."""
    return values[~values.astype(str).isin(NA_TEXT)]


def _as_numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` as the model reads numbers: a column that came as text
    (numbers written as text, or one stray word) is compared with its range by its numbers;
    what is not a number is counted apart (``not_numeric``)."""
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])
            or pd.api.types.is_bool_dtype(frame[c])]
    if not text:
        return frame
    frame = frame.copy(deep=False)
    for column in text:
        frame[column] = as_numbers(frame[column])
    return frame


def _as_dates(frame: pd.DataFrame, dates: dict[str, bool]) -> pd.DataFrame:
    """``frame`` with the columns of ``dates`` read as the model reads dates (day first as
    in training, per column); what is not a date is missing."""
    if not dates:
        return frame
    frame = frame.copy(deep=False)
    for column, first in dates.items():
        frame[column] = read_dates(frame[column], first)
    return frame


def _may_fail(frame: pd.DataFrame, expectation: dict[str, Any]) -> bool:
    """False only when ``expectation`` (one the contract writes) surely holds on ``frame``:
    the column's non-null values are numbers in its range, or categories in its set."""
    kwargs = expectation["kwargs"]
    values = frame[kwargs["column"]].dropna()
    if expectation["type"] == "expect_column_values_to_be_between":
        if set(kwargs) - {"column", "min_value", "max_value"} or not (
                pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
                or pd.api.types.is_datetime64_any_dtype(values)):
            return True
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        return bool((low is not None and (values < low).any())
                    or (high is not None and (values > high).any()))
    if set(kwargs) - {"column", "value_set"}:
        return True
    return not bool(values.isin(kwargs["value_set"]).all())


def _validate(frame: pd.DataFrame, expectations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One finding per expectation of ``expectations`` that ``frame`` fails (Great
    Expectations)."""
    if not expectations:
        return []
    from tasks.validate import _context, great_expectations

    gx = great_expectations()
    context = _context()
    suite = gx.ExpectationSuite(name="automl-scoring-contract", expectations=[
        {"type": e["type"], "kwargs": e["kwargs"], "meta": e.get("meta") or {}}
        for e in expectations])
    asset = context.data_sources.add_pandas("automl-score").add_dataframe_asset("rows")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame})
    outcome = batch.validate(suite)
    findings = []
    for result in outcome.results:
        if result.success:
            continue
        details = result.result or {}
        findings.append({
            "column": result.expectation_config.kwargs["column"],
            "check": _KINDS[result.expectation_config.type],
            "unexpected_count": int(details.get("unexpected_count") or 0),
            # Of the rows scored, as the other checks count (Great Expectations counts the
            # values that are not missing).
            "unexpected_percent": 100.0 * int(details.get("unexpected_count") or 0)
            / max(len(frame), 1),
            # Distinct values: the list repeats one unseen category once per row.
            "examples": ", ".join(list(dict.fromkeys(
                _shown(v) for v in details.get("partial_unexpected_list") or []))[:5]),
        })
    return findings


def _with_text_in_numbers(frame: pd.DataFrame, numeric: list[str],
                          findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``findings`` plus, per numeric column holding values that are not numbers (the model
    reads them as missing), a ``not_numeric`` one."""
    return _with_unread(findings, "not_numeric", {
        c: _without_missing_text(not_numbers(frame[c])) for c in numeric}, len(frame))


def _with_unread(findings: list[dict[str, Any]], check: str, unread: dict[str, pd.Series],
                 rows: int) -> list[dict[str, Any]]:
    """``findings`` plus a ``check`` finding per column of ``unread`` with values the model
    cannot read (and reads as missing); the range check's finding on such a column counts
    nothing, so it gives way."""
    for column, bad in unread.items():
        if not len(bad):
            continue
        findings = [f for f in findings if not (f["column"] == column
                                                and f["unexpected_count"] == 0)]
        findings.append({"column": column, "check": check, "unexpected_count": len(bad),
                         "unexpected_percent": 100.0 * len(bad) / max(rows, 1),
                         "examples": ", ".join(_shown(v) for v in bad.unique()[:5])})
    return findings


def _shown(value: Any) -> str:
    """A value as a finding lists it: floats to 10 significant digits (262.2, not
    262.20000000000005; 1234567, not 1234567.0), dates without a midnight time."""
    if isinstance(value, (datetime.datetime, np.datetime64)):  # a date without its midnight
        return str(pd.Timestamp(value)).removesuffix(" 00:00:00")
    return format(value, ".10g") if isinstance(value, float) else str(value)


NOT_FINITE = "the prediction is not finite; check this row's values against the training range"


def not_finite(prediction: np.ndarray, proba: np.ndarray | None = None) -> list[int]:
    """Rows whose numeric prediction or class probabilities are infinite or NaN (a value far
    beyond the training range can overflow a linear model)."""
    bad = np.zeros(len(prediction), dtype=bool)
    try:
        values = pd.to_numeric(pd.Series(prediction, dtype=object), errors="raise")
        bad |= ~np.isfinite(values.to_numpy(dtype=float))
    except (ValueError, TypeError):  # class labels
        pass
    if proba is not None:
        bad |= ~np.isfinite(np.asarray(proba, dtype=float)).all(axis=1)
    return [int(i) for i in np.flatnonzero(bad)]


def _predict(model: Any, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    prediction = np.asarray(model.predict(rows))
    proba = model.predict_proba(rows) if hasattr(model, "predict_proba") else None
    return prediction, proba


def score_frame(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row, in order; a row the model cannot score gets its ``error``.

    Returns
    -------
    DataFrame
        ``prediction``, for classifiers ``proba_<class>`` per class, and ``error`` (empty when
        the row was scored). The batch is scored at once; only if that fails is it split in
        halves, and each failing half again, so that one bad row does not hide the others nor
        make every row a call of its own. Rows a model predicts together (its
        ``row_groups``: a forecaster's series whose rows give known-future features) are
        never split.
    """
    out = _Scores(model, len(frame))
    if len(frame):
        try:
            out.prediction, out.proba = _predict(model, frame)
        except (ValueError, TypeError):
            out.prediction = np.full(len(frame), None, dtype=object)
            units = _units(model, frame)
            if len(units) == 1:
                out.attempt(frame, units)
            else:
                out.search(frame, units)
    prediction, proba, errors = out.prediction, out.proba, out.errors
    for i in not_finite(prediction, proba):
        if errors[i]:
            continue
        errors[i] = NOT_FINITE
        prediction[i] = np.nan if prediction.dtype.kind == "f" else None
    result = pd.DataFrame({"prediction": prediction}, index=frame.index)
    if proba is not None:
        for j, label in enumerate(model.classes_):
            result[f"proba_{label}"] = proba[:, j]
    result["error"] = errors
    return result.reset_index(drop=True)


class _Scores:
    """What :func:`score_frame` fills in: predictions, probabilities and errors by row."""

    def __init__(self, model: Any, n: int) -> None:
        self.model = model
        self.prediction = np.full(n, None, dtype=object)
        self.proba = (np.full((n, len(model.classes_)), np.nan)
                      if hasattr(model, "predict_proba") else None)
        self.errors = np.array([""] * n, dtype=object)

    def attempt(self, frame: pd.DataFrame, units: list[np.ndarray]) -> bool:
        """Score these units' rows in one call; an error goes on every row of a single unit."""
        rows = np.sort(np.concatenate(units))
        try:
            one, one_proba = _predict(self.model, frame.iloc[rows])
        except (ValueError, TypeError) as exc:
            if len(units) == 1:
                self.errors[rows] = str(exc).splitlines()[0][:200]
            return False
        self.prediction[rows] = list(one)
        if self.proba is not None:
            self.proba[rows] = one_proba
        return True

    def search(self, frame: pd.DataFrame, units: list[np.ndarray]) -> None:
        """Score units that failed together: each half at once, a failing half searched again
        (k bad rows in n cost about 2k log2(n/k) calls; when every row is bad, 2n)."""
        for half in (units[:len(units) // 2], units[len(units) // 2:]):
            if not self.attempt(frame, half) and len(half) > 1:
                self.search(frame, half)


def _units(model: Any, frame: pd.DataFrame) -> list[np.ndarray]:
    """The row positions that are scored together: each row alone, or the model's groups."""
    groups = model.row_groups(frame) if hasattr(model, "row_groups") else None
    if groups is None:
        return [np.array([i]) for i in range(len(frame))]
    labels, first = np.unique(np.asarray(groups), return_index=True)
    return [np.flatnonzero(groups == label) for label in labels[np.argsort(first)]]
