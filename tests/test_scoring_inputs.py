"""Scoring inputs that used to slip through: a prediction that overflows, an output path
through a file, a predictions file only its owner could read, and a published folder missing
its data contract or holding a broken manifest."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from flows.score import check_output, write_predictions
from flows.serve import predict_rows
from tasks.drift import NOT_FINITE, score_frame
from tasks.errors import AutoMLInputError
from tasks.model_io import LoadedModel, load_verified, read_published_json
from tasks.publish import file_sha256


def _linear() -> LinearRegression:
    X = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 2.0, 1.0]})
    return LinearRegression().fit(X, X["x1"] + X["x2"])


def _rows() -> pd.DataFrame:
    return pd.DataFrame({"x1": [1.0, 1e308, 2.0], "x2": [1.0, 1e308, 0.5]})


def test_a_prediction_that_overflows_is_an_error_on_its_row():
    with pytest.warns(RuntimeWarning, match="overflow"):  # the fault is real, not staged
        assert np.isinf(_linear().predict(_rows())[1])
        out = score_frame(_linear(), _rows())
    assert out["error"].tolist() == ["", NOT_FINITE, ""]
    assert np.isnan(out.loc[1, "prediction"]) and np.allclose(out["prediction"][[0, 2]], [2, 2.5])


def test_serving_refuses_a_prediction_that_overflows():
    loaded = LoadedModel(_linear(), {"feature_columns": ["x1", "x2"], "task": "regression"},
                         Path("model.pkl"))
    assert predict_rows(loaded, _rows().iloc[[0, 2]].to_dict("records"))["predictions"] == [
        pytest.approx(2.0), pytest.approx(2.5)]
    with pytest.raises(ValueError, match=f"row 1: {NOT_FINITE}"), pytest.warns(RuntimeWarning):
        predict_rows(loaded, _rows().to_dict("records"))


def test_an_output_under_a_file_or_at_a_folder_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(AutoMLInputError, match=r"afile' is a file, not a folder"):
        check_output(str(tmp_path / "afile" / "deeper" / "p.csv"))
    (tmp_path / "p.csv").mkdir()
    with pytest.raises(AutoMLInputError, match=r"is a folder; name a file in it"):
        check_output(str(tmp_path / "p.csv"))


def test_an_output_that_is_the_data_file_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "rows.csv"
    data.write_text("x1,x2\n1,2\n")
    monkeypatch.chdir(tmp_path)
    for output in (str(data), "rows.csv", f"file://{data}", str(tmp_path / "." / "rows.csv")):
        with pytest.raises(AutoMLInputError, match=r"is the data file being scored"):
            check_output(output, str(data))
    (tmp_path / "link.csv").symlink_to(data)
    with pytest.raises(AutoMLInputError, match=r"is the data file being scored"):
        check_output(str(tmp_path / "link.csv"), str(data))
    with pytest.raises(AutoMLInputError, match=r"is the data file being scored"):
        check_output("memory://bucket/rows.csv", "memory://bucket/rows.csv")
    check_output(str(tmp_path / "p.csv"), str(data))
    assert data.read_text() == "x1,x2\n1,2\n"


def test_predictions_are_written_to_fsspec_uris(tmp_path):
    import fsspec

    frame = pd.DataFrame({"prediction": [1.0, 2.0]})
    assert write_predictions(frame, "memory://scored/p.parquet") == "memory://scored/p.parquet"
    with fsspec.open("memory://scored/p.parquet", "rb") as handle:
        pd.testing.assert_frame_equal(pd.read_parquet(handle), frame)
    write_predictions(frame, f"file://{tmp_path}/deeper/p.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "deeper" / "p.csv"), frame)
    assert [p.name for p in (tmp_path / "deeper").iterdir()] == ["p.csv"]
    with pytest.raises(AutoMLInputError, match=r"output 'nosuchfs://x/p.csv' cannot be written"):
        check_output("nosuchfs://x/p.csv")


def test_predictions_are_readable_as_the_umask_allows(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_predictions(pd.DataFrame({"prediction": [1.0]}), str(tmp_path / "p.csv"))
    finally:
        os.umask(mask)
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]  # no staging file left


def test_a_missing_contract_or_broken_manifest_is_named(tmp_path):
    with pytest.raises(AutoMLInputError, match=r"no data_contract.json beside the model"):
        read_published_json(tmp_path / "data_contract.json")
    joblib.dump(_linear(), tmp_path / "model.pkl")
    (tmp_path / "manifest.json").write_text('{"model_sha256": "' + file_sha256(
        tmp_path / "model.pkl"))  # cut short
    with pytest.raises(AutoMLInputError, match=r"manifest.json is not valid JSON .*publish"):
        load_verified(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({
        "model_sha256": file_sha256(tmp_path / "model.pkl"), "feature_columns": ["x1", "x2"],
        "task": "regression"}))
    assert load_verified(str(tmp_path)).task == "regression"
