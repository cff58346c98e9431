"""Python callers: training on a DataFrame, and the published model on awkward frames."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from flows.train import train
from tasks.errors import AutoMLInputError
from tests.conftest import small_regression

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _wide(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 8)).round(6), columns=[f"x{i}" for i in range(8)])
    return frame.assign(label=np.where(frame["x0"] + rng.normal(size=n) > 0, "yes", "no"))


def test_a_dataframe_too_large_for_a_parameter_trains_and_is_recorded_by_its_shape(tmp_path):
    """Prefect sent the DataFrame's rows to its API as the run's parameter: the API refused
    tables over 512 KB (422), and kept smaller ones in its database."""
    frame = _wide(12_000).rename(columns={"label": "big_label"})  # a run name of its own
    assert len(frame.to_json()) > 2**19
    result = train(data=frame, target="big_label", task="classification", max_trials=1,
                   include=["linear"], ensemble=False, output=str(tmp_path / "o"))
    assert result.best.family == "linear"
    with get_client(sync_client=True) as client:
        recorded = [run.parameters["data"] for run in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(
                any_=["dataframe-big_label-classification"])))]
    assert recorded == ["<DataFrame: 12000 rows x 9 columns>"]
    assert train.with_options(retries=0).serialize_parameters({"data": frame}) == {
        "data": "<DataFrame: 12000 rows x 9 columns>"}


def test_a_dataframe_with_a_repeated_column_is_refused_naming_it(tmp_path):
    """It failed inside validation with AttributeError: 'DataFrame' object has no attribute
    'dtype' (a CSV's repeated header was already refused)."""
    frame = _wide(100)
    with pytest.raises(AutoMLInputError,
                       match="the DataFrame given as data has two columns named 'x1'"):
        train(data=pd.concat([frame, frame[["x1"]]], axis=1), target="label",
              task="classification", max_trials=1, output=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_integer_column_labels_are_read_as_a_files_names_are(tmp_path):
    """A frame from numpy (or read_csv(header=None)) has integer labels: target="8" was 'not
    in the data. Did you mean '8'?'."""
    frame = _wide(200)
    frame.columns = range(9)
    result = train(data=frame, target="8", task="classification", max_trials=1,
                   include=["linear"], ensemble=False, output=str(tmp_path / "o"))
    model = joblib.load(result.model_path)
    assert list(model.classes_) == ["no", "yes"]
    proba = model.predict_proba(frame.drop(columns=8))  # integer labels again, as trained
    np.testing.assert_allclose(proba, model.predict_proba(frame.drop(columns=8).rename(
        columns=str)))
    # Columns of two levels (a pivot table's) were named one way in training and another in
    # predict, which found every column missing.
    frame.columns = pd.MultiIndex.from_tuples([("x", str(i)) for i in range(8)] + [("label", "")])
    result = train(data=frame, target="('label', '')", task="classification", max_trials=1,
                   include=["linear"], ensemble=False, output=str(tmp_path / "multi"))
    model = joblib.load(result.model_path)
    np.testing.assert_allclose(model.predict_proba(frame.drop(columns=[("label", "")])), proba)


def test_the_model_answers_zero_rows_with_zero_predictions(tmp_path):
    """scikit-learn's input checks refused an empty frame ('Found array with 0 sample(s)')."""
    frame = _wide(200)
    classifier = joblib.load(train(
        data=frame, target="label", task="classification", max_trials=2,
        include=["linear", "extra_trees"], output=str(tmp_path / "c")).model_path)
    assert classifier.predict_proba(frame.head(0)).shape == (0, 2)
    assert classifier.predict(frame.head(0)).shape == (0,)
    regression = small_regression()
    regressor = joblib.load(train(
        data=regression, target="y", task="regression", max_trials=1, include=["linear"],
        output=str(tmp_path / "r")).model_path)
    assert regressor.predict(regression.head(0)).shape == (0,)
    with pytest.raises(ValueError, match="column 'x1' appears twice in the rows to score"):
        classifier.predict(pd.concat([frame, frame[["x1"]]], axis=1))
    extra = frame[["x1"]].rename(columns={"x1": "note"})  # a column the model does not read
    np.testing.assert_array_equal(classifier.predict(pd.concat([frame, extra, extra], axis=1)),
                                  classifier.predict(frame))
