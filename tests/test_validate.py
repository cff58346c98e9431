"""Great Expectations hard checks, guardrails and target preparation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.errors import AutoMLInputError
from tasks.settings import TrainSettings
from tasks.validate import prepare_data
from tests.conftest import awkward_classification, small_regression


def _settings(task="classification", target="label", **kw):
    return TrainSettings(data="x", target=target, task=task, **kw)


def test_awkward_data_is_prepared(classification_frame):
    data = prepare_data(classification_frame, _settings())
    assert sorted(data.classes) == ["no", "yes"] and data.n_rows_dropped == 5
    rarer = pd.Series(data.labels).value_counts().idxmin()
    assert data.positive_class == rarer == data.classes[1]
    assert len(data.y) == len(classification_frame) - 5
    status = {g.name: g.status for g in data.guardrails}
    assert status["missing_target"] == "Done" and status["unusable_columns"] == "Done"
    assert status["high_cardinality"] == "Done" and status["target_leakage"] == "Passed"
    assert status["numbers_with_text"] == "Passed"
    kinds = {e["type"] for e in data.suite["expectations"]}
    assert {"expect_column_to_exist", "expect_column_values_to_not_be_null"} <= kinds
    contract = [e for e in data.suite["expectations"] if e["meta"].get("contract")]
    assert {e["kwargs"]["column"] for e in contract} >= {"city", "température °C"}


def test_a_column_of_numbers_with_a_few_text_values_is_alerted(classification_frame):
    frame = classification_frame.copy()
    frame["weight"] = np.round(np.linspace(50, 90, len(frame)), 1).astype(object)
    frame.loc[::6, "weight"] = "n/a"  # one row in six: not numbers enough to be read as such
    rails = {g.name: g for g in prepare_data(frame, _settings()).guardrails}
    rail = rails["numbers_with_text"]
    assert rail.status == "Alerted"
    assert "'weight' (83% numbers; also 'n/a')" in rail.detail


def test_text_values_in_a_column_read_as_numbers_are_named(classification_frame):
    frame = classification_frame.copy()
    frame["floor"] = np.arange(len(frame)).astype(object)
    frame.loc[[3, 9], "floor"] = "ground"  # under 5%: the column is read as numbers
    data = prepare_data(frame, _settings())
    assert data.roles["floor"] == "numeric"
    rail = {g.name: g for g in data.guardrails}["numbers_with_text"]
    assert rail.status == "Done"
    assert rail.detail == ("read as numbers, their text values and infinities as missing: "
                           "'floor' (2 values such as 'ground')")


def test_infinities_in_a_feature_are_read_as_missing_and_said_so():
    """A ratio divided by zero stopped the run: "featurization failed: Input X contains
    infinity", naming no column; the contract's range of the column had no upper end."""
    from featurizers import AutoFeaturizer

    frame = awkward_classification()
    frame["noise"] = frame["noise"].where(frame.index % 20 != 0, np.inf)
    data = prepare_data(frame, _settings())
    rail = {g.name: g for g in data.guardrails}["numbers_with_text"]
    infinite = int(np.isinf(data.X["noise"]).sum())  # rows with a target
    assert rail.status == "Done" and f"'noise' ({infinite} values such as 'inf')" in rail.detail
    (limits,) = [e["kwargs"] for e in data.suite["expectations"]
                 if e["kwargs"].get("column") == "noise" and "max_value" in e["kwargs"]]
    assert limits["max_value"] == frame["noise"][np.isfinite(frame["noise"])].max()
    features = AutoFeaturizer().fit_transform(data.X, data.y)
    assert np.isfinite(features).all()


@pytest.mark.parametrize(
    ("mutate", "task", "match"),
    [
        (lambda f: f.assign(label="yes"), "classification", "single class"),
        (lambda f: f.assign(label=None), "classification", "has no values"),
        (lambda f: f.head(12), "classification", "at least 20 are needed"),
        (lambda f: f.assign(label=["rare"] + ["no", "yes"] * 119 + ["no"]), "classification",
         "class 'rare' .* only 1 row"),
        (lambda f: f.assign(label=np.where(np.arange(len(f)) == 3, "abc", "1.5")), "regression",
         "non-numeric values such as 'abc'"),
        (lambda f: f.assign(label=np.where(np.arange(len(f)) == 3, np.inf, 1.5)), "regression",
         "infinite values"),
        (lambda f: f.assign(label=5.0), "regression",
         r"regression target 'label' has a single value \[5.0\]: there is nothing to learn"),
    ],
)
def test_hard_failures_are_one_clear_line(classification_frame, mutate, task, match):
    with pytest.raises(AutoMLInputError, match=match) as info:
        prepare_data(mutate(classification_frame), _settings(task=task))
    assert "\n" not in str(info.value)


def test_mape_with_a_zero_target_is_refused(classification_frame):
    frame = classification_frame.assign(label=np.arange(len(classification_frame)) % 7 * 1.5)
    with pytest.raises(AutoMLInputError, match=r"metric 'mape' divides by the target, and "
                       r"'label' is 0 in \d+ rows; choose --metric mae or rmse"):
        prepare_data(frame, _settings(task="regression", metric="mape"))
    assert prepare_data(frame, _settings(task="regression", metric="mae")).task == "regression"


def test_no_usable_features():
    frame = pd.DataFrame({"id": range(50), "k": 1, "label": ["a", "b"] * 25})
    with pytest.raises(AutoMLInputError, match="no usable feature columns"):
        prepare_data(frame, _settings())


def test_imbalance_and_leakage_are_alerted():
    rng = np.random.default_rng(0)
    label = np.where(rng.random(400) < 0.1, "fraud", "ok")
    frame = pd.DataFrame({"x": rng.normal(size=400), "leak": (label == "fraud") * 2.0 + 1,
                          "label": label})
    status = {g.name: g for g in prepare_data(frame, _settings()).guardrails}
    assert status["class_imbalance"].status == "Alerted"
    assert status["class_imbalance"].detail.startswith("smallest class 'fraud' has ")
    assert status["target_leakage"].status == "Alerted"
    assert "'leak'" in status["target_leakage"].detail


def test_labels_that_differ_only_in_case_are_alerted_and_a_tiny_share_shown():
    """'Yes', 'yes', 'No' and ' no' trained as four classes without a word, and the imbalance
    guardrail called a class of 0.5 % of the largest '0%'."""
    rng = np.random.default_rng(0)
    label = rng.choice(["Yes", "No"], 1200)
    label[:6], label[6:12] = "yes", " no"
    frame = pd.DataFrame({"x": rng.normal(size=1200), "label": label})
    status = {g.name: g for g in prepare_data(frame, _settings()).guardrails}
    assert status["similar_labels"].status == "Alerted"
    assert status["similar_labels"].detail.startswith(
        "target labels ' no' and 'No'; 'Yes' and 'yes' differ only in case: each is a class")
    assert "1.0% of the largest" in status["class_imbalance"].detail
    plain = prepare_data(frame.assign(label=np.where(label == "yes", "Yes", label)).query(
        "label != ' no'"), _settings())
    assert {g.name: g.status for g in plain.guardrails}["similar_labels"] == "Passed"


def test_a_continuous_target_for_classification_says_to_use_regression():
    """'target class -1.92 of 'price' has only 1 row' did not say what was wrong."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "price": rng.normal(size=200).round(2)})
    with pytest.raises(AutoMLInputError, match=r"^target 'price' has \d+ distinct numbers in 200 "
                       r"rows: a quantity, not classes; use --task regression$"):
        prepare_data(frame, _settings(target="price"))


def test_amounts_written_with_currency_and_thousands_are_numbers():
    """'$17,463' was a category of near-unique values: the income it held was lost."""
    rng = np.random.default_rng(0)
    income = rng.integers(1_000, 90_000, size=300)
    frame = pd.DataFrame({"income": [f"${v:,}" for v in income],
                          "rate": [f"{v:.1f}%" for v in rng.uniform(0, 40, 300)],
                          "label": np.where(income > 45_000, "high", "low")})
    data = prepare_data(frame, _settings())
    assert data.roles["income"] == data.roles["rate"] == "numeric"
    from featurizers._numbers import as_numbers
    assert (as_numbers(data.X["income"]).to_numpy() == income).all()


def test_imbalance_names_a_numeric_class_as_the_data_does():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400), "label": (rng.random(400) < 0.1) * 1})
    detail = {g.name: g for g in prepare_data(frame, _settings()).guardrails}[
        "class_imbalance"].detail
    assert detail.startswith("smallest class 1 has "), detail


def test_a_class_with_one_row_is_named_as_the_data_writes_it():
    frame = small_regression(n=60).assign(label=[0, 1] * 29 + [2, 0])
    with pytest.raises(AutoMLInputError, match=r"^target class 2 of 'label' has only 1 row;"):
        prepare_data(frame.drop(columns="y"), _settings())


def test_regression_leakage_by_correlation():
    frame = small_regression()
    frame["copy"] = frame["y"] * 2 + 1
    rails = {g.name: g for g in prepare_data(frame, _settings("regression", "y")).guardrails}
    assert rails["target_leakage"].status == "Alerted"


def test_validation_table_is_appended_and_counted(classification_frame):
    valid = awkward_classification(n=60, seed=5)
    data = prepare_data(classification_frame, _settings(), validation=valid)
    assert data.n_validation_rows == valid["label"].notna().sum()
    with pytest.raises(AutoMLInputError, match="validation data lacks"):
        prepare_data(classification_frame, _settings(), validation=valid.drop(columns="city"))


def test_forecasting_tables_take_the_forecasting_path(classification_frame):
    settings = _settings(task="forecasting", metric="mase", time_column="signup date",
                         horizon=3)
    with pytest.raises(ValueError, match="prepare_panel"):
        prepare_data(classification_frame, settings)


def test_dates_and_numbers_written_as_text_get_no_set_of_categories():
    """A month column of 12 dates had its values recorded as categories, so scoring next
    year's rows reported every one of them as an unseen category: they are one date range."""
    from tasks.drift import check_against_contract

    months = pd.date_range("2024-01-01", periods=12, freq="MS").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"month": np.tile(months, 10), "size": np.tile(["1", "2", "3"], 40),
                          "plan": np.tile(["basic", "pro", "team"], 40),
                          "label": np.tile(["no", "yes"], 60)})
    suite = prepare_data(frame, _settings()).suite
    sets = {e["kwargs"]["column"] for e in suite["expectations"]
            if e["type"] == "expect_column_values_to_be_in_set"}
    assert sets == {"plan"}
    ranges = {e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
              for e in suite["expectations"]
              if e["type"] == "expect_column_values_to_be_between"}
    # Numbers written as text: their range, as numbers; dates: the range of their dates.
    assert ranges == {"size": (1.0, 3.0),
                      "month": ("2024-01-01T00:00:00", "2024-12-01T00:00:00")}
    next_year = frame.drop(columns="label").assign(month="2025-03-01", plan="enterprise")
    found = check_against_contract(next_year, suite).findings
    assert set(zip(found["column"], found["check"], found["examples"])) == {
        ("month", "out_of_range", "2025-03-01"), ("plan", "unseen_category", "enterprise")}
    odd = next_year.head(4).assign(month="2024-03-01", plan="pro",
                                   size=["2", "999", "abc", "-5"])
    found = check_against_contract(odd, suite).findings.set_index("check")
    assert found.loc["out_of_range", "examples"] == "999, -5"
    assert found.loc["not_numeric", "examples"] == "abc"
