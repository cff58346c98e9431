"""The automl-score flow: predictions for every row, the data contract, drift signs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from prefect.artifacts import Artifact

from flows.score import score
from flows.train import train
from models._pipeline import MissingColumnsError
from tasks.drift import (_KINDS, _as_dates, _as_read, _contract_expectations, _may_fail,
                         _validate, _with_text_in_numbers, check_against_contract, score_frame)
from tasks.artifacts import scoring_key
from tasks.errors import AutoMLInputError
from tasks.validate import _date_range
from tests.conftest import awkward_classification

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("score") / "model"
    train(data=awkward_classification(), target="label", task="classification", max_trials=3,
          output=str(out), include=["linear", "hist_gradient_boosting"])
    return out


def _new_rows(n: int = 30) -> pd.DataFrame:
    rows = awkward_classification(n=n, seed=9).drop(columns="label")
    rows.loc[0, "city"] = "Paris"  # never seen in training
    rows.loc[1, "température °C"] = 1000.0  # far outside the training range
    rows.loc[2, "city"] = None  # a missing value is no drift, and counts in the shares' rows
    return rows


def test_every_row_is_scored_and_drift_is_reported(model_dir, tmp_path):
    data = tmp_path / "new.csv"
    _new_rows().to_csv(data, index=False)
    result = score(model=str(model_dir), data=str(data), output=str(tmp_path / "p.parquet"))
    predictions = pd.read_parquet(tmp_path / "p.parquet")
    assert len(predictions) == result.rows == result.scored == 30 and result.failed == 0
    assert set(predictions["prediction"]) <= {"no", "yes"}
    assert np.allclose(predictions[["proba_no", "proba_yes"]].sum(axis=1), 1)
    found = {(d["column"], d["check"]): d for d in result.drift}
    assert found[("city", "unseen_category")]["unexpected_count"] == 1
    assert "Paris" in found[("city", "unseen_category")]["examples"]
    assert found[("température °C", "out_of_range")]["unexpected_count"] >= 1
    # Shares are of the rows scored, for every check; floats read as they would be written.
    assert found[("city", "unseen_category")]["unexpected_percent"] == pytest.approx(100 / 30)
    assert "1000" in found[("température °C", "out_of_range")]["examples"].split(", ")
    assert Artifact.get(f"{scoring_key(str(tmp_path / 'p.parquet'))}-drift") is not None


def test_an_output_named_in_any_letters_gets_its_artifacts(model_dir, tmp_path):
    """'é' passed str.isalnum into the artifact key, which Prefect refused after the
    predictions were written: the run failed with its output on disk."""
    data = tmp_path / "new.csv"
    _new_rows().to_csv(data, index=False)
    result = score(model=str(model_dir), data=str(data), output=str(tmp_path / "prévisions.csv"))
    assert result.scored == 30 and (tmp_path / "prévisions.csv").is_file()
    assert Artifact.get(f"{scoring_key(str(tmp_path / 'prévisions.csv'))}-summary") is not None
    assert scoring_key("results/run1/prévisions.csv") == "automl-score-run1-pr-visions"
    assert scoring_key("s3://b/runs/Run 1/p.parquet") == "automl-score-run-1-p"


def test_columns_the_featurizer_dropped_may_be_left_out(model_dir, tmp_path):
    """'always empty' and the ID 'row id' were dropped in training: rows need not carry them."""
    rows = _new_rows()
    model = joblib.load(model_dir / "model.pkl")
    assert {"always empty", "row id"} <= set(model.feature_names_in_)
    assert not {"always empty", "row id"} & set(model.required_columns())
    lean = rows.drop(columns=["always empty", "row id"])
    assert np.allclose(model.predict_proba(lean), model.predict_proba(rows))
    lean.to_csv(tmp_path / "lean.csv", index=False)
    result = score(model=str(model_dir), data=str(tmp_path / "lean.csv"),
                   output=str(tmp_path / "p.csv"))
    assert result.scored == 30 and result.failed == 0
    with pytest.raises(MissingColumnsError, match="'city'"):
        model.predict(lean.drop(columns="city"))


def test_missing_training_columns_stop_before_anything_is_written(model_dir, tmp_path):
    data = tmp_path / "new.csv"
    _new_rows().drop(columns=["city"]).to_csv(data, index=False)
    with pytest.raises(AutoMLInputError, match=r"lacks training column\(s\) 'city'; "):
        score(model=str(model_dir), data=str(data), output=str(tmp_path / "p.csv"))
    assert not (tmp_path / "p.csv").exists()


def test_cli_writes_csv_and_fails_in_one_line(model_dir, tmp_path):
    data = tmp_path / "new.csv"
    _new_rows(12).to_csv(data, index=False)
    done = subprocess.run([sys.executable, "-m", "flows.score", "--model", str(model_dir),
                           "--data", str(data), "--output", str(tmp_path / "p.csv"),
                           "--keep-columns", "row id", "city"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(tmp_path / "p.csv")
    assert len(written) == 12 and list(written.columns[:3]) == ["row id", "city", "prediction"]
    # Each drift sign is a line: the column, the check, how many rows, examples.
    assert "drift: 'city' unseen category: 1 rows (8.3%), e.g. Paris" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "flows.score", "--model", str(model_dir),
                          "--data", str(data), "--output", str(tmp_path / "p.txt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: output {str(tmp_path / 'p.txt')!r} must end in .csv or .parquet"]
    # A missing data file or a misspelt column to keep: found before any flow run starts (the
    # command waited for its local API and a flow run, some 7 s, to say so).
    for data_file, keep, error in [
            (tmp_path / "nope.csv", [], "error: data file"),
            (data, ["--keep-columns", "row_id"], "error: --keep-columns: 'row_id' is not in the "
                                                 "data. Did you mean 'row id'?")]:
        bad = subprocess.run([sys.executable, "-m", "flows.score", "--model", str(model_dir),
                              "--data", str(data_file), "--output", str(tmp_path / "q.csv"),
                              *keep], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PREFECT_LOGGING_LEVEL": "INFO"})
        assert bad.returncode == 2 and "Beginning flow run" not in bad.stdout, bad.stdout
        assert bad.stderr.startswith(error) and bad.stderr.count("\n") == 1, bad.stderr


def test_columns_kept_from_the_data_come_first_in_row_order(model_dir, tmp_path):
    """The predictions file held only predictions: rows had to be joined back by position."""
    rows = _new_rows(12).assign(order_ref=[f"o{i}" for i in range(12)]).sample(frac=1,
                                                                               random_state=2)
    data = tmp_path / "new.csv"
    rows.to_csv(data, index=False)
    score(model=str(model_dir), data=str(data), output=str(tmp_path / "p.parquet"),
          keep_columns=["order_ref"])
    written = pd.read_parquet(tmp_path / "p.parquet")
    assert list(written["order_ref"]) == list(rows["order_ref"])
    assert list(written.columns) == ["order_ref", "prediction", "proba_no", "proba_yes", "error"]
    clash = tmp_path / "clash.csv"
    rows.assign(prediction="x").to_csv(clash, index=False)
    for source, keep, says in [
            (data, ["order"], "keep_columns: 'order' is not in the data. Did you mean "
                              "'order_ref'"),
            (data, ["order_ref", "order_ref"], "keep_columns: 'order_ref' is given twice"),
            (clash, ["prediction"], "keep_columns: 'prediction' would clash")]:
        with pytest.raises(AutoMLInputError, match=says):  # named as the flow's parameter
            score(model=str(model_dir), data=str(source), output=str(tmp_path / "q.csv"),
                  keep_columns=keep)
    assert not (tmp_path / "q.csv").exists()


class _FailsOnSentinel:
    """A fault we cannot cause with a real model: one row that makes predict raise."""

    def __init__(self, model):
        self.model, self.classes_, self.calls = model, model.classes_, 0

    def _check(self, rows):
        self.calls += 1
        if (rows["noise"] == -999).any():
            raise ValueError("cannot score noise=-999")

    def predict(self, rows):
        self._check(rows)
        return self.model.predict(rows)

    def predict_proba(self, rows):
        self._check(rows)
        return self.model.predict_proba(rows)


def test_rows_that_cannot_be_scored_are_reported_not_dropped(model_dir):
    import joblib

    rows = _new_rows(30)
    rows.loc[4, "noise"] = -999
    out = score_frame(_FailsOnSentinel(joblib.load(model_dir / "model.pkl")), rows)
    assert len(out) == 30 and out.loc[4, "error"] == "cannot score noise=-999"
    assert out.drop(index=4)["error"].eq("").all() and out.drop(index=4)["prediction"].notna().all()
    # Two bad rows in 2,000: the failing halves are split again, not every row tried alone.
    many = pd.concat([_new_rows(30)] * 67, ignore_index=True).iloc[:2000]
    many.loc[[17, 1234], "noise"] = -999
    model = _FailsOnSentinel(joblib.load(model_dir / "model.pkl"))
    out = score_frame(model, many)
    assert list(out.index[out["error"] != ""]) == [17, 1234]
    expected = joblib.load(model_dir / "model.pkl").predict_proba(many.drop(index=[17, 1234]))
    assert np.allclose(out.drop(index=[17, 1234])[["proba_no", "proba_yes"]], expected)
    assert model.calls <= 2 * (1 + 2 * 2 * 11)  # predict and predict_proba; 2 x log2(2000)


def test_text_in_a_numeric_column_is_reported_as_drift(model_dir, tmp_path):
    rows = _new_rows(12).drop(index=1)  # no out-of-range value left in température
    rows["température °C"] = rows["température °C"].astype(object)
    rows.loc[rows.index[2], "température °C"] = "abc"
    rows.loc[rows.index[3], "température °C"] = " 21 "  # read as 21, as the model reads it
    rows.to_csv(tmp_path / "new.csv", index=False)
    result = score(model=str(model_dir), data=str(tmp_path / "new.csv"),
                   output=str(tmp_path / "p.csv"))
    found = [d for d in result.drift if d["column"] == "température °C"]
    assert [(d["check"], d["unexpected_count"], d["examples"]) for d in found] == [
        ("not_numeric", 1, "abc")]
    assert result.scored == 11  # the model reads the text as a missing value


def test_the_drift_signs_are_those_great_expectations_finds_on_every_check(model_dir):
    """Checks that the values plainly meet are not given to Great Expectations (~10 ms each,
    30 s for 3,000 columns): the findings are still those of validating every check."""
    contract = json.loads((model_dir / "data_contract.json").read_text())
    rows = _new_rows()
    rows.loc[2, "noise"] = -1e9  # below the range of a column with missing values
    rows["is member"] = rows["is member"].astype(object)
    rows.loc[3, "is member"] = "maybe"  # a boolean column the contract gives no set
    rows["city"] = rows["city"].where(rows.index != 5)  # a missing category is no drift sign
    rows.loc[4, "signup date"] = "2031-06-01"  # after training's dates
    every = [_as_read(e) for e in _contract_expectations(contract) if e["type"] in _KINDS]
    dates = {e["kwargs"]["column"]: e["meta"]["day_first"] for e in every
             if e["meta"].get("read_as") == "datetime"}
    numeric = [e["kwargs"]["column"] for e in every
               if e["type"] == "expect_column_values_to_be_between"
               and e["kwargs"]["column"] not in dates]
    assert len(every) >= 3 and numeric and list(dates) == ["signup date"]
    found = check_against_contract(rows, contract).findings
    expected = _with_text_in_numbers(rows, numeric, _validate(_as_dates(rows, dates), every))
    assert found.to_dict("records") == expected
    assert {("city", "unseen_category"), ("température °C", "out_of_range"),
            ("noise", "out_of_range"), ("signup date", "out_of_range")} <= set(
        zip(found["column"], found["check"]))
    # No drift: nothing needs Great Expectations.
    calm = awkward_classification().head(40).drop(columns="label")
    assert not [e for e in every if _may_fail(_as_dates(calm, dates), e)]
    assert check_against_contract(calm, contract).findings.empty


def test_categories_are_compared_as_the_model_reads_them_and_only_where_it_uses_them():
    def contract_of(column: str, older: bool = False, **kwargs) -> list[dict]:
        meta = {"contract": True, **({} if older else {"missing_text": True})}
        return [{"type": "expect_column_to_exist", "kwargs": {"column": column}, "meta": meta},
                {"type": "expect_column_values_to_be_in_set",
                 "kwargs": {"column": column, **kwargs}, "meta": meta}]

    contract = {"expectations": contract_of("mixed", value_set=["0", "1", "10", "n/a"])
                + contract_of("code", value_set=["a", "b"])}
    # A column of numbers and 'n/a' in training, read as numbers from a file without 'n/a'.
    # "NA" is missing to the model (as the CSV reader reads it) unless it was a category.
    rows = pd.DataFrame({"mixed": [0, 1, 10, 10, 2, 2, 2], "code": ["a", "z", "z", "z", "b",
                                                                    "NA", None]})
    found = check_against_contract(rows, contract).findings.set_index("column")
    assert found.loc["mixed", "unexpected_count"] == 3 and found.loc["mixed", "examples"] == "2"
    assert found.loc["code", "unexpected_count"] == 3 and found.loc["code", "examples"] == "z"
    assert check_against_contract(rows.assign(mixed="n/a"), contract).findings.set_index(
        "column").index.tolist() == ["code"]
    # A model published before reads "NA" as an unseen category, and its contract says so.
    older = {"expectations": contract_of("code", older=True, value_set=["a", "b"])}
    found = check_against_contract(rows[["code"]], older).findings
    assert found["unexpected_count"].tolist() == [4] and found["examples"].tolist() == ["z, NA"]
    floats = rows.assign(mixed=[0.0, 1.0, 10.0, np.nan, 1.0, 0.0, 10.0])
    assert check_against_contract(floats, contract, required=["mixed"]).findings.empty


def test_texts_read_as_missing_are_not_reported_as_unreadable_numbers_or_dates():
    """The model reads "NA", "" and "null" in a number or date column as missing, as the
    training CSV did: they are no drift sign (they were 'not_numeric' and 'not_a_date')."""
    contract = {"expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": c}, "meta": {"contract": True}}
        for c in ("x", "day")] + [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "x", "min_value": 0.0, "max_value": 10.0},
         "meta": {"contract": True}},
        _date_range(pd.Series(["2024-01-01", "2024-06-01"], name="day"))]}
    rows = pd.DataFrame({"x": [1, "NA", "", None, "null", "oops"],
                         "day": ["2024-03-01", "", "NA", None, "None", "soon"]})
    found = check_against_contract(rows, contract).findings.set_index("check")
    assert found["examples"].to_dict() == {"not_numeric": "oops", "not_a_date": "soon"}


def test_dates_are_compared_with_the_training_dates_as_the_model_reads_them():
    days = pd.Series(["13/01/2021", "05/03/2021", "01/12/2021"], name="day")  # the day first
    stamps = pd.Series(pd.to_datetime(["2021-01-01 10:00", "2021-06-01 00:00"], utc=True),
                       name="at")
    contract = {"expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": c}, "meta": {"contract": True}}
        for c in ("day", "at")] + [_date_range(days), _date_range(stamps)]}
    rows = pd.DataFrame({"day": ["02/03/2021", "05/01/2022", "soon", None],
                         "at": pd.to_datetime(["2021-03-01 00:00", "2021-01-01 09:00", None,
                                               "2021-02-01 00:00"])})
    found = check_against_contract(rows, contract).findings.set_index(["column", "check"])
    assert found["examples"].to_dict() == {("day", "out_of_range"): "2022-01-05",
                                           ("day", "not_a_date"): "soon",
                                           ("at", "out_of_range"): "2021-01-01 09:00:00"}
    assert found.loc[("day", "not_a_date"), "unexpected_percent"] == 25.0
    assert check_against_contract(rows.iloc[[0]], contract).findings.empty


def test_an_empty_table_gives_an_empty_predictions_file(model_dir, tmp_path):
    _new_rows().iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    result = score(model=str(model_dir), data=str(tmp_path / "empty.csv"),
                   output=str(tmp_path / "p.csv"))
    assert (result.rows, result.scored, result.failed) == (0, 0, 0)
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["prediction", "proba_no",
                                                             "proba_yes", "error"]


def test_a_model_at_an_fsspec_uri_is_scored_as_the_local_one(model_dir, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    for name in ("model.pkl", "manifest.json", "data_contract.json"):
        fs.put(str(model_dir / name), f"/published/run1/{name}")
    data = tmp_path / "new.csv"
    _new_rows(12).to_csv(data, index=False)
    local = score(model=str(model_dir), data=str(data), output=str(tmp_path / "local.csv"))
    for uri in ("memory://published/run1", "memory://published/run1/model.pkl"):
        result = score(model=uri, data=str(data), output=str(tmp_path / "uri.csv"))
        assert result.drift == local.drift
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "uri.csv"),
                                      pd.read_csv(tmp_path / "local.csv"))
    with pytest.raises(AutoMLInputError, match="no model at 'memory://published/none'"):
        score(model="memory://published/none", data=str(data), output=str(tmp_path / "x.csv"))
    missing = f"file://{tmp_path}/none"  # named as given, not as the local path it reads
    with pytest.raises(AutoMLInputError, match=f"^no model at '{missing}'; give a results"):
        score(model=missing, data=str(data), output=str(tmp_path / "x.csv"))
    with fs.open("/published/run1/model.pkl", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(AutoMLInputError, match="refusing to unpickle it"):
        score(model="memory://published/run1", data=str(data), output=str(tmp_path / "x.csv"))
    with pytest.raises(AutoMLInputError, match="cannot open model 'nosuch://m'"):
        score(model="nosuch://m", data=str(data), output=str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


def test_errors_about_a_model_at_a_uri_name_the_uri(model_dir, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.put(str(model_dir / "model.pkl"), "/nomanifest/model.pkl")
    data = tmp_path / "new.csv"
    _new_rows(12).to_csv(data, index=False)
    with pytest.raises(AutoMLInputError) as caught:
        score(model="memory://nomanifest", data=str(data), output=str(tmp_path / "x.csv"))
    assert str(caught.value) == ("no manifest.json beside memory://nomanifest; it holds the "
                                 "model's sha256")


def test_a_version_without_a_registry_is_refused(model_dir, tmp_path):
    data = tmp_path / "new.csv"
    _new_rows(12).to_csv(data, index=False)
    with pytest.raises(AutoMLInputError, match="version 'v2' names a registry version; give "
                       "registry too, or leave it out"):  # the flow's parameter, not a flag
        score(model=str(model_dir), data=str(data), output=str(tmp_path / "x.csv"),
              version="v2")
    assert not (tmp_path / "x.csv").exists()
