"""Featurizers: the scikit-learn estimator checks, and behaviour against tiny references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from featurizers import (
    AutoFeaturizer,
    CategoryStrings,
    DatetimeFeatures,
    FrequencyEncoder,
    TextEncoder,
    ToNumeric,
    profile_columns,
)
from featurizers._cleaning import MISSING, NA_TEXT
from featurizers._numbers import as_numbers, not_numbers, number_share
from tests.conftest import awkward_classification


@parametrize_with_checks(
    [ToNumeric(), FrequencyEncoder(), DatetimeFeatures(), AutoFeaturizer(),
     AutoFeaturizer(scale=True)],
)
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_string_transformers_are_outside_the_generic_checks():
    # The generic checks compare numeric outputs of 2-D numeric inputs. TextEncoder takes one text
    # column and CategoryStrings returns strings, so they are tested by behaviour below instead.
    tags = TextEncoder().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    out = CategoryStrings().fit_transform(pd.DataFrame({"c": ["a", None, 3.0, True]}))
    assert out.ravel().tolist() == ["a", "__missing__", "3", "True"]


def test_the_missing_value_texts_are_those_of_the_csv_reader():
    from pandas._libs.parsers import STR_NA_VALUES  # no public name: a new pandas may add some

    assert NA_TEXT == STR_NA_VALUES


def test_texts_a_csv_reads_as_missing_are_missing_unless_they_were_categories():
    fitted = CategoryStrings().fit(pd.DataFrame({"c": ["a", None, "b"],
                                                 "region": ["EU", "NA", "EU"]}))
    later = pd.DataFrame({"c": ["NA", "None", "", "null"], "region": ["NA", "None", "EU", ""]})
    out = fitted.transform(later)
    assert out[:, 0].tolist() == [MISSING] * 4
    assert out[:, 1].tolist() == ["NA", MISSING, "EU", MISSING]  # "NA" was North America
    del fitted.na_categories_  # as a model published before this rule reads them
    assert fitted.transform(later)[:, 0].tolist() == ["NA", "None", "", "null"]


def test_frequency_encoder_matches_reference():
    values = pd.DataFrame({"c": list("aabbbcd")})
    encoder = FrequencyEncoder().fit(values)
    reference = values["c"].map(values["c"].value_counts(normalize=True)).to_numpy()
    np.testing.assert_allclose(encoder.transform(values).ravel(), reference)
    np.testing.assert_allclose(encoder.transform(pd.DataFrame({"c": ["z", "a"]})).ravel(),
                               [0.0, 2 / 7])


def test_datetime_features_values_and_unparseable_rows():
    frame = pd.DataFrame({"d": ["2024-02-29 10:30", "2023-12-31 08:00", "not a date"]})
    encoder = DatetimeFeatures().fit(frame)
    out = encoder.transform(frame)
    names = list(encoder.get_feature_names_out())
    assert out[0, names.index("d_year")] == 2024 and out[0, names.index("d_day_of_year")] == 60
    assert out[1, names.index("d_hour")] == 8
    assert np.isnan(out[2]).all()
    # Words pandas reads as the current time are no time: a prediction must not follow the clock.
    words = encoder.transform(pd.DataFrame({"d": ["now", " Today", "2024-02-29 10:30"]}))
    assert np.isnan(words[:2]).all() and (words[2] == out[0]).all()
    from featurizers._times import wall_clock

    assert wall_clock(pd.Series(["now", "2024-02-29"])).isna().tolist() == [True, False]


def test_times_with_offsets_across_a_daylight_saving_change_are_one_utc_clock():
    """Local ISO times that change offset (+01:00, then +02:00) are read as UTC instants, in
    training and when new rows come with a single offset."""
    utc = pd.date_range("2024-03-30 20:00", periods=80, freq="h", tz="UTC")
    local = pd.DataFrame({"when": [t.isoformat() for t in utc.tz_convert("Europe/Oslo")]})
    assert local["when"].str[-6:].nunique() == 2
    assert profile_columns(local)["when"].kind == "datetime"
    encoder = DatetimeFeatures().fit(local)
    hours = encoder.transform(local)[:, list(encoder.get_feature_names_out()).index("when_hour")]
    np.testing.assert_array_equal(hours, utc.hour)
    later = local.iloc[-5:]  # all +02:00
    np.testing.assert_array_equal(encoder.transform(later), encoder.transform(local)[-5:])


@pytest.mark.parametrize("year", ["%Y", "%y"])
def test_dates_written_day_first_are_read_day_first_in_training_and_in_new_rows(year):
    """pandas reads 13/03/2024 as 13 March but 05/03/2024 as 3 May, each value on its own (and
    05/03/24 too)."""
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    frame = pd.DataFrame({"d": days.strftime(f"%d/%m/{year}"),
                          "e": days.strftime(f"%m/%d/{year}")})
    frame.loc[5, "d"] = days[5].strftime(f"%d.%m.{year} 10:30")  # another separator, a time
    assert profile_columns(frame)["d"].kind == "datetime"
    encoder = DatetimeFeatures().fit(frame)
    assert encoder.day_first_ == [True, False]
    names = list(encoder.get_feature_names_out())
    out = encoder.transform(frame)
    for column in "de":
        np.testing.assert_array_equal(out[:, names.index(f"{column}_month")], days.month)
        np.testing.assert_array_equal(out[:, names.index(f"{column}_day")], days.day)
    fifth_of_march = pd.Timestamp("2024-03-05")
    new = pd.DataFrame({"d": [fifth_of_march.strftime(f"%d/%m/{year}")],
                        "e": [fifth_of_march.strftime(f"%m/%d/{year}")]})
    parts = encoder.transform(new)[0]
    assert parts[names.index("d_month")] == parts[names.index("e_month")] == 3
    assert parts[names.index("d_day")] == parts[names.index("e_day")] == 5
    del encoder.day_first_  # as published before it existed: each value read on its own
    assert encoder.transform(new)[0][names.index("d_month")] == 5
    from featurizers import day_first

    # A long table sorted by date whose first 10,000 rows are all the first twelve days.
    sorted_panel = pd.Series(np.repeat(days.strftime("%d/%m/%Y"), 900))
    assert day_first(sorted_panel) and not day_first(pd.Series(
        np.repeat(days.strftime("%m/%d/%Y"), 900)))


def test_dates_whose_numbers_are_all_twelve_or_less_are_read_the_even_way():
    """The first of each month written day first (01.11.2019) was read month first: 11 and 12
    January, then 1 to 12 January of the next year; a forecast could not find its grid."""
    from featurizers import day_first

    months = pd.date_range("2019-11-01", periods=30, freq="MS")
    quarters = pd.date_range("2019-01-01", periods=12, freq="QS")
    for dates in (months, quarters):
        for written in ("%d.%m.%Y", "%d/%m/%Y", "%d-%m-%y"):
            assert day_first(pd.Series(dates.strftime(written))), written
        assert not day_first(pd.Series(dates.strftime("%m/%d/%Y")))
    # Twelve days of one month, month first: days apart, where day first they are months apart.
    assert not day_first(pd.Series(pd.date_range("2021-03-01", periods=12).strftime("%m/%d/%Y")))
    assert not day_first(pd.Series(["01/02/2020", "01/03/2020"]))  # too few to tell: month first
    # Within a year, either reading is even (months, or days in a row): month first, as pandas.
    for dates in (pd.date_range("2023-01-01", periods=12, freq="MS"),
                  pd.date_range("2023-01-01", periods=4, freq="QS"),
                  pd.date_range("2023-01-01", periods=6, freq="MS")):
        assert not day_first(pd.Series(dates.strftime("%m/%d/%Y")))


def test_times_of_mixed_zones_and_other_spellings_are_read():
    from datetime import datetime, timedelta, timezone

    from featurizers import parse_times, wall_clock

    objects = pd.Series([datetime(2024, 3, 30, 10, tzinfo=timezone(timedelta(hours=1))),
                         datetime(2024, 4, 1, 10, tzinfo=timezone(timedelta(hours=2)))],
                        dtype=object)
    assert [str(t) for t in parse_times(objects)] == ["2024-03-30 09:00:00+00:00",
                                                      "2024-04-01 08:00:00+00:00"]
    assert [str(t) for t in wall_clock(objects)] == ["2024-03-30 10:00:00",
                                                     "2024-04-01 10:00:00"]
    text = pd.Series(["Sun, 31 Mar 2024 10:00:00 GMT", "2024-03-31 12:00 +0200",
                      "2024-03-31 10:00 PM +01:00", "2024-03-31", "not a time", None])
    assert [str(t) for t in wall_clock(text)] == [
        "2024-03-31 10:00:00", "2024-03-31 12:00:00", "2024-03-31 22:00:00",
        "2024-03-31 00:00:00", "NaT", "NaT"]
    # Offsets the pattern cannot strip are read value by value.
    odd = pd.Series(["2024-03-31 10:00 GMT+1", "Mon, 01 Jan 2024 10:00:00 +0100 (CET)"])
    assert [str(t) for t in wall_clock(odd)] == ["2024-03-31 10:00:00", "2024-01-01 10:00:00"]


def test_text_encoder_dense_components():
    docs = pd.Series([f"word{i % 7} shared text number {i}" for i in range(60)], name="notes")
    encoder = TextEncoder(n_components=5).fit(docs)
    out = encoder.transform(docs)
    assert out.shape == (60, 5)
    assert encoder.get_feature_names_out()[0] == "notes_tfidf0"
    assert encoder.transform(pd.Series([None, "unseen words"])).shape == (2, 5)


@pytest.mark.parametrize(
    ("column", "kind"),
    [("row id", "id"), ("température °C", "numeric"), ("city", "categorical"),
     ("customer code", "high_cardinality"), ("is member", "numeric"),
     ("signup date", "datetime"), ("comment", "text"), ("always empty", "empty")],
)
def test_profile_kinds(column, kind):
    profiles = profile_columns(awkward_classification().drop(columns=["label"]))
    assert profiles[column].kind == kind


def test_integer_ids_written_as_text_are_ids_as_integers_are():
    """A database's text column of customer numbers was a numeric feature; the same numbers
    stored as integers were dropped as IDs."""
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(10_000, 10_200))
    frame = pd.DataFrame({"customer_id": ids.astype(str), "customer_no": ids,
                          "row": np.arange(200).astype(str), "visits": ids.astype(str),
                          "amount": rng.integers(0, 1000, 200).astype(str),
                          "price": [f"{i}.5" for i in range(200)],
                          # Sorted, but decimals: a float column, which is never an ID.
                          "income": [f"{52_000 + 100 * i:.2f}" for i in range(200)],
                          # Past 2**63: int64 could not hold them (a crash at first).
                          "iccid": [str(89_012_600_000_000_000_000 + i) for i in range(200)],
                          "iccid_kept": [str(89_012_600_000_000_000_000 + int(i)) for i in ids]})
    kinds = {name: p.kind for name, p in profile_columns(frame).items()}
    assert kinds == {"customer_id": "id", "customer_no": "numeric", "row": "id",
                     "visits": "numeric", "amount": "numeric", "price": "numeric",
                     "income": "numeric", "iccid": "id", "iccid_kept": "numeric"}


def test_a_table_sorted_by_a_distinct_integer_feature_keeps_it():
    """Distinct integers sorted in the file were dropped as IDs, even a feature the table was
    sorted by (incomes); a counter counts by equal steps or densely."""
    rng = np.random.default_rng(1)
    income = np.sort(rng.choice(np.arange(20_000, 200_000), 300, replace=False))
    kept = np.sort(rng.choice(np.arange(1, 2_000), 300, replace=False))  # a tenth of the rows
    frame = pd.DataFrame({"income": income, "income_text": income.astype(str),
                          "row": np.arange(300), "tick": 1000 * np.arange(300),
                          "filtered_row": kept, "shuffled": rng.permutation(income)})
    kinds = {name: p.kind for name, p in profile_columns(frame).items()}
    assert kinds == {"income": "numeric", "income_text": "numeric", "row": "id", "tick": "id",
                     "filtered_row": "id", "shuffled": "numeric"}


def test_auto_featurizer_on_awkward_data_and_unseen_values():
    frame = awkward_classification().dropna(subset=["label"])
    X, y = frame.drop(columns=["label"]), frame["label"].to_numpy()
    featurizer = AutoFeaturizer(scale=True, random_state=3).fit(X, y)
    out = featurizer.transform(X)
    names = featurizer.get_feature_names_out()
    assert out.shape == (len(X), len(names)) and np.isfinite(out).all()
    assert not any("row id" in n or "always empty" in n for n in names)
    new = X.head(3).copy()
    new["city"] = ["Atlantis", None, "Oslo"]
    new["noise"] = ["oops", None, "1.5"]  # text where numbers are expected
    assert np.isfinite(featurizer.transform(new)).all()
    assert clone(featurizer).get_params() == featurizer.get_params()


def test_fit_transform_cross_fits_target_encoding():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"code": [f"k{i}" for i in rng.integers(0, 40, size=200)]})
    y = rng.integers(0, 2, size=200)
    featurizer = AutoFeaturizer(roles={"code": "high_cardinality"}, random_state=0)
    assert not np.allclose(featurizer.fit_transform(X, y), featurizer.transform(X))


def test_a_column_of_booleans_with_missing_values_stays_two_categories():
    frame = pd.DataFrame({"flag": pd.Series([True, False, None, True] * 5, dtype=object)})
    assert profile_columns(frame)["flag"].kind == "categorical"
    assert number_share(frame["flag"].dropna()) == 0.0  # the guardrail's reading too


def test_booleans_written_as_text_are_read_as_booleans_in_a_numeric_column():
    """A column of booleans in training, read as text at scoring when one stray value is in
    the file: the model must read "True" as 1, not as missing."""
    train = pd.DataFrame({"flag": [True, False] * 10, "x": np.arange(20.0)})
    featurizer = AutoFeaturizer(roles={"flag": "numeric", "x": "numeric"}).fit(train)
    as_text = pd.DataFrame({"flag": ["True", "false", " TRUE ", "oops"], "x": [0.0, 1, 2, 3]})
    read = featurizer.transform(as_text)
    expected = featurizer.transform(pd.DataFrame({"flag": [True, False, True, None],
                                                  "x": [0.0, 1, 2, 3]}))
    np.testing.assert_array_equal(read, expected)
    assert not_numbers(as_text["flag"]).tolist() == ["oops"]  # the drift check's reading
    text_only = pd.DataFrame({"flag": pd.Series(["True", "False", None] * 5, dtype=object)})
    assert profile_columns(text_only)["flag"].kind == "categorical"  # two categories, as before


def test_one_reading_of_numbers_for_the_model_and_every_check():
    values = pd.Series([" 5 ", "n/a", True, "1e3", "ground", None, 2.5], dtype=object)
    read = ToNumeric().fit_transform(values.to_frame("v"))[:, 0]
    assert np.array_equal(np.isnan(read), [False, True, False, False, True, True, False])
    # The profile, the guardrail and the drift check count what the model reads as missing.
    assert not_numbers(values).tolist() == ["n/a", "ground"]
    assert np.array_equal(as_numbers(values).to_numpy(), read, equal_nan=True)


def _short_descriptions(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    material = rng.choice(["cotton", "wool", "denim", "silk", "linen", "leather"], n)
    item = rng.choice(["shirt", "jeans", "scarf", "jacket", "dress", "socks"], n)
    sku = rng.permutation(n) + 10_000  # makes almost every description distinct
    frame = pd.DataFrame({
        "description": [f"{m} {i} {s}" for m, i, s in zip(material, item, sku)],
        "order code": [f"ORD {s}" for s in sku],
    })
    return frame, np.isin(material, ["silk", "leather"]).astype(int)


def test_short_descriptions_are_text_and_codes_are_ids():
    frame, y = _short_descriptions()
    profiles = profile_columns(frame)
    assert profiles["description"].kind == "text"
    assert profiles["description"].reason == (
        "short free text (distinct phrases sharing 2.0 words with others on average): TF-IDF")
    assert profiles["order code"].kind == "id"  # one word in common: a prefix, not words
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(AutoFeaturizer(), LogisticRegression(max_iter=1000)).fit(frame, y)
    new, y_new = _short_descriptions(seed=1)
    assert model.score(new, y_new) > 0.9  # the words carry the material


def test_codes_names_addresses_and_repeated_phrases_are_not_short_text():
    rng = np.random.default_rng(0)
    n = 2000
    region = rng.choice(["EU", "US", "APAC"], n)
    first = rng.choice(["Mary", "John", "Ann", "Li", "Omar", "Eva", "Tom", "Zoe"], n)
    make = rng.choice([f"make{i}" for i in range(30)], n)
    frame = pd.DataFrame({
        "invoice": [f"INV {r} {i}" for r, i in zip(region, rng.permutation(n))],
        "order": [f"ORD-2023-{i}" for i in rng.permutation(n)],
        "name": [f"{f} {''.join(rng.choice(list('abcdefgh'), 7))}" for f in first],
        "email": [f"user{i}@example.com" for i in rng.permutation(n)],
        "make model": [f"{m} {w}" for m, w in zip(make, rng.choice(
            ["alpha", "beta", "gamma", "delta", "sigma", "omega", "zeta", "kappa", "rho",
             "tau"], n))],  # 300 values, repeated: categories
    })
    kinds = {name: p.kind for name, p in profile_columns(frame).items()}
    assert kinds == {"invoice": "id", "order": "id", "name": "id", "email": "id",
                     "make model": "high_cardinality"}
