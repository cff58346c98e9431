"""Validate the training table with Great Expectations, run the guardrails, prepare X and y."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from featurizers._cleaning import category_text
from featurizers._datetime import as_text, read_dates
from featurizers._numbers import as_numbers
from featurizers._times import day_first
from featurizers._profile import ColumnProfile, kinds, profile_columns
from tasks.errors import AutoMLInputError, listed, shown
from tasks.guardrails import Guardrail, run_guardrails
from tasks.load import data_fingerprint, select_columns
from tasks.settings import TrainSettings

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["MIN_ROWS", "PreparedData", "build_suite", "check_has_rows", "great_expectations",
           "prepare_data", "validate_task"]

MIN_ROWS = 20
CONTRACT_MAX_CATEGORIES = 100
logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """The validated training table, split into features and an (encoded) target."""

    X: pd.DataFrame
    y: np.ndarray
    classes: Optional[np.ndarray]
    target: str
    task: str
    profiles: dict[str, ColumnProfile]
    guardrails: list[Guardrail]
    suite: dict[str, Any]
    fingerprint: str
    n_validation_rows: int = 0
    n_rows_dropped: int = 0
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return 0 if self.classes is None else len(self.classes)

    @property
    def positive_class(self) -> Any:
        """The class binary metrics (average precision) and charts score: encoded 1, second in
        ``classes`` (None unless there are two classes)."""
        if self.n_classes != 2:
            return None
        label = self.classes[1]
        return label.item() if isinstance(label, np.generic) else label

    @property
    def labels(self) -> np.ndarray:
        """The target as the data had it: class labels, not their codes (regression: ``y``)."""
        return self.y if self.classes is None else self.classes[self.y]


def build_suite(frame: pd.DataFrame, target: str, task: str) -> gx.ExpectationSuite:
    """The expectation suite: hard checks on the target, and the input contract of the features.

    Hard checks (``meta.hard``) stop the run when they fail: the target exists and is not all
    null, it has two or more values (classes), a regression target is finite. The contract
    (``meta.contract``) records every feature column, the numeric ranges seen and the categories
    of text columns with at most ``CONTRACT_MAX_CATEGORIES`` values, for scoring.
    """
    _context()  # an ExpectationSuite needs an active data context
    gx = great_expectations()
    ex = gx.expectations
    hard = {"hard": True, "task": task}
    expectations = [
        ex.ExpectColumnToExist(column=target, meta=hard),
        ex.ExpectColumnValuesToNotBeNull(column=target, mostly=1e-9, meta=hard),
        ex.ExpectColumnUniqueValueCountToBeBetween(column=target, min_value=2, meta=hard),
    ]
    if task == "regression":
        expectations.append(ex.ExpectColumnValuesToBeBetween(
            column=target, min_value=-1e300, max_value=1e300, meta=hard))
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        meta = {"contract": True, "dtype": str(values.dtype)}
        expectations.append(ex.ExpectColumnToExist(column=column, meta=meta))
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            present = as_numbers(values).dropna()  # infinities are read as missing
            if len(present):
                expectations.append(ex.ExpectColumnValuesToBeBetween(
                    column=column, min_value=float(present.min()), max_value=float(present.max()),
                    meta=meta))
        elif _is_text(values) and 0 < values.nunique() <= CONTRACT_MAX_CATEGORIES:
            seen = sorted({category_text(v) for v in values.dropna().unique()})
            # The model reads "NA" and the like as missing unless they are in the set.
            expectations.append(ex.ExpectColumnValuesToBeInSet(
                column=column, value_set=seen, meta={**meta, "missing_text": True}))
    # Given at once: add_expectation one by one takes time in the square of their number
    # (8 s for 400 columns, minutes for thousands).
    return gx.ExpectationSuite(name=f"automl-input-{target}", expectations=expectations)


def great_expectations() -> Any:
    """The ``great_expectations`` module, imported on first use with its analytics off.

    Importing it takes seconds; a run whose settings are wrong fails before it needs it.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


def _contract_as_read(suite: dict[str, Any], profiles: dict[str, ColumnProfile],
                      X: pd.DataFrame) -> dict[str, Any]:
    """``suite`` with text columns checked as the features read them. A date or a number
    written as text is not drift for being one that training did not have: such a column
    gets no set of values, and numbers get their range, as a numeric column does. Date
    columns get the range of their dates."""
    read_as = {c: p.kind for c, p in profiles.items()
               if c in X.columns and _is_text(X[c]) and p.kind in ("datetime", "numeric")}
    expectations = [e for e in suite["expectations"]
                    if not (e["type"] == "expect_column_values_to_be_in_set"
                            and e["kwargs"].get("column") in read_as)]
    for column in [c for c, kind in read_as.items() if kind == "numeric"]:
        numbers = as_numbers(X[column]).dropna()
        if len(numbers):
            expectations.append({
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": column, "min_value": float(numbers.min()),
                           "max_value": float(numbers.max())},
                "meta": {"contract": True, "dtype": str(X[column].dtype)}})
    dates = [c for c, p in profiles.items() if c in X.columns and p.kind == "datetime"
             and not pd.api.types.is_numeric_dtype(X[c])]  # numbers have their range already
    return {**suite, "expectations": expectations + [
        e for e in map(_date_range, [X[c] for c in dates]) if e]}


def _date_range(values: pd.Series) -> Optional[dict[str, Any]]:
    """The contract's range of a date column, as the features read its dates (``meta``
    ``read_as``: scoring reads the rows' dates the same way before comparing)."""
    first = bool(day_first(as_text(values))) if _is_text(values) else False
    dates = read_dates(values, first).dropna()
    if not len(dates):
        return None
    return {"type": "expect_column_values_to_be_between",
            "kwargs": {"column": values.name, "min_value": dates.min().isoformat(),
                       "max_value": dates.max().isoformat()},
            "meta": {"contract": True, "dtype": str(values.dtype), "read_as": "datetime",
                     "day_first": first}}


def _is_text(values: pd.Series) -> bool:
    return (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
            or isinstance(values.dtype, pd.CategoricalDtype))


def _context() -> Any:
    gx = great_expectations()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _explain_failure(result: Any, target: str, frame: pd.DataFrame) -> str:
    kind = result.expectation_config.type
    if kind == "expect_column_to_exist":
        return f"target column {target!r} is not in the data"
    if kind == "expect_column_values_to_not_be_null":
        return f"target column {target!r} has no values; every row is empty"
    if kind == "expect_column_unique_value_count_to_be_between":
        only = frame[target].dropna().unique()[:1].tolist()
        if result.expectation_config.meta.get("task") == "regression":
            return (f"regression target {target!r} has a single value {only}: there is nothing "
                    "to learn; check the column")
        return (f"target column {target!r} has a single class {only}; classification needs at "
                "least two classes (or use --task regression)")
    if kind == "expect_column_values_to_be_between":
        return (f"regression target {target!r} has infinite values; replace or drop those rows")
    return f"data check {kind} failed on {target!r}"


def run_suite(frame: pd.DataFrame, suite: gx.ExpectationSuite, target: str) -> None:
    """Validate ``frame`` against the hard expectations of ``suite``; raise on the first that
    fails.

    The contract's expectations are left out: they were read from this same table, so they hold
    on it, and checking them takes seconds per hundred columns.
    """
    context = _context()
    asset = context.data_sources.add_pandas("automl").add_dataframe_asset("training")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    hard = great_expectations().ExpectationSuite(
        name=f"{suite.name}-hard",
        expectations=[e.copy() for e in suite.expectations if e.meta.get("hard")])
    outcome = batch.validate(hard)
    for result in outcome.results:
        if not result.success and result.expectation_config.meta.get("hard"):
            raise AutoMLInputError(_explain_failure(result, target, frame))


def _coerce_regression_target(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    values = frame[target]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return frame
    parsed = pd.to_numeric(values, errors="coerce")
    bad = values[values.notna() & parsed.isna()]
    if len(bad):
        raise AutoMLInputError(
            f"regression target {target!r} has non-numeric values such as {bad.iloc[0]!r}; "
            "clean the column, or use --task classification"
        )
    return frame.assign(**{target: parsed})


def check_has_rows(frame: pd.DataFrame) -> None:
    """Raise AutoMLInputError when the table has a header and no rows."""
    if len(frame) == 0:
        raise AutoMLInputError(f"the data has no rows, only the columns {listed(frame.columns)}"
                               "; give a table with rows to train on")


def _label_keys(y: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        return y.astype(float)  # 1 and 1.0 are one class
    return y.astype(str)


def _check_validation_classes(train: pd.Series, validation: pd.Series, target: str) -> None:
    known, given = _label_keys(train.dropna()), validation.dropna()
    unknown = given[~_label_keys(given).isin(set(known))].drop_duplicates()
    if len(unknown):
        raise AutoMLInputError(
            f"validation data has target class(es) {listed(unknown, 5, shown)} "
            f"in {target!r} that the training data lacks (it has "
            f"{listed(train.dropna().drop_duplicates(), 10, shown)}); use the "
            "same labels in both")


def _as_read_whole(y: pd.Series) -> pd.Series:
    """Labels as their column holds them without missing values: pandas makes a column of whole
    numbers float, and one of True/False object, as soon as a value is missing."""
    if pd.api.types.is_float_dtype(y) and np.isfinite(y).all() and (y % 1 == 0).all():
        return y.astype("int64")
    if y.dtype == object and len(y) and y.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return y.astype(bool)
    return y


def _encode_target(y: pd.Series, task: str, target: str, positive: Optional[str] = None
                   ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    if task == "regression":
        return y.to_numpy(dtype=float), None
    y = _as_read_whole(y)
    if pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        labels = y.to_numpy()
    else:  # text labels, possibly of mixed types: compare them as text
        labels = y.astype(str).to_numpy(dtype=object)
        raw = pd.Series(y.to_numpy(dtype=object)).drop_duplicates()
        text = raw.astype(str)
        twice = text[text.duplicated()]
        if len(twice):  # 1 and "1" would become one class
            pair = raw[text == twice.iloc[0]].iloc[:2]
            raise AutoMLInputError(
                f"target {target!r} has labels that read the same but differ in type: "
                f"{', '.join(shown(v) for v in pair)}; make the column one type")
        stripped = text.str.strip()
        spaced = stripped[stripped.duplicated()]
        if len(spaced):  # "yes" and "yes " would be two classes
            pair = raw[stripped == spaced.iloc[0]].iloc[:2]
            raise AutoMLInputError(
                f"target {target!r} has labels that differ only in spaces: "
                f"{', '.join(shown(v) for v in pair)}; strip the spaces from the column")
    classes, encoded = np.unique(labels, return_inverse=True)
    counts = np.bincount(encoded)
    if counts.min() < 2:
        rare = classes[int(np.argmin(counts))]
        # Mostly distinct numbers are a quantity to predict, not classes.
        continuous = (classes.dtype.kind in "iuf" and len(classes) > 0.5 * len(labels)
                      and len(classes) > 20)
        raise AutoMLInputError(
            f"target {target!r} has {len(classes)} distinct numbers in {len(labels)} rows: a "
            "quantity, not classes; use --task regression" if continuous else
            f"target class {shown(rare)} of {target!r} has only {counts.min()} row; every class "
            "needs at least 2 rows to be validated: add rows of that class or drop it"
        )
    if positive is not None and len(classes) != 2:
        raise AutoMLInputError(f"--positive-class applies to two classes; target {target!r} "
                               f"has {len(classes)}: leave it out")
    if len(classes) == 2 and _positive_index(classes, counts, positive, target) == 0:
        return 1 - encoded, classes[::-1]  # the positive class is encoded 1
    return encoded, classes


def _positive_index(classes: np.ndarray, counts: np.ndarray, given: Optional[str],
                    target: str) -> int:
    """Which of two classes is positive: the one given; else 1 or True of numbers or booleans,
    and the rarer class of labels written as text (the later in order when they are as many)."""
    if given is not None:
        texts = [str(label) for label in classes.tolist()]
        if given.strip() in texts:
            return texts.index(given.strip())
        try:
            return [float(c) for c in classes.tolist()].index(float(given))
        except (TypeError, ValueError):
            pass
        raise AutoMLInputError(f"--positive-class {given!r} is not a class of target "
                               f"{target!r}; give one of {listed(classes.tolist(), show=shown)}")
    if classes.dtype.kind in "biuf" or counts[0] == counts[1]:
        return 1
    return int(np.argmin(counts))


def prepare_data(
    frame: pd.DataFrame, settings: TrainSettings, validation: Optional[pd.DataFrame] = None
) -> PreparedData:
    """Check and prepare the training table (and an optional separate validation table).

    Raises
    ------
    AutoMLInputError
        One line naming the column or setting at fault, before any training starts.
    """
    if settings.task == "forecasting":
        raise ValueError("forecasting tables are prepared by tasks.forecast_data.prepare_panel")
    target = settings.target
    check_has_rows(frame)
    frame = select_columns(frame, target, settings.include_columns, settings.exclude_columns)
    n_validation = 0
    if validation is not None:
        missing = [c for c in frame.columns if c not in validation.columns]
        if missing:
            raise AutoMLInputError(
                f"validation data lacks column(s) {listed(missing)}; it needs the training "
                "columns")
        if settings.task == "classification":
            _check_validation_classes(frame[target], validation[target], target)
        n_validation = len(validation)
        frame = pd.concat([frame, validation[frame.columns]], ignore_index=True)
    if settings.task == "regression":
        frame = _coerce_regression_target(frame, target)
    suite = build_suite(frame, target, settings.task)
    run_suite(frame, suite, target)

    has_target = frame[target].notna().to_numpy()
    if validation is not None:
        n_validation = int(has_target[len(frame) - n_validation:].sum())
    frame = frame.loc[has_target].reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise AutoMLInputError(
            f"only {len(frame)} rows have a value in target {target!r}; at least {MIN_ROWS} are "
            "needed to train and validate"
        )
    X = frame.drop(columns=[target])
    y, classes = _encode_target(frame[target], settings.task, target, settings.positive_class)
    zeros = int((y == 0).sum()) if settings.metric == "mape" else 0
    if zeros:
        raise AutoMLInputError(
            f"metric 'mape' divides by the target, and {target!r} is 0 in {zeros} rows; choose "
            "--metric mae or rmse, or leave those rows out")
    profiles = profile_columns(X)
    roles = kinds(profiles)
    if not roles:
        raise AutoMLInputError(
            "no usable feature columns: every column besides the target is empty, constant or "
            "ID-like; add feature columns or check --include-columns/--exclude-columns"
        )
    guardrails = run_guardrails(
        frame, target, settings.task, profiles, int((~has_target).sum()), settings.seed
    )
    return PreparedData(
        X=X, y=y, classes=classes, target=target, task=settings.task, profiles=profiles,
        guardrails=guardrails, suite=_contract_as_read(suite.to_json_dict(), profiles, X),
        fingerprint=data_fingerprint(frame),
        n_validation_rows=n_validation, n_rows_dropped=int((~has_target).sum()), roles=roles,
    )


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(
    frame: pd.DataFrame, settings: TrainSettings, validation: Optional[pd.DataFrame] = None
) -> PreparedData:
    """Great Expectations validation, guardrails and target encoding."""
    return prepare_data(frame, settings, validation)
