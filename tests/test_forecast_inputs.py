"""Forecasting inputs a user gets wrong, or right in a less common way: one series without
series ids, one time written two ways, a horizon longer than the history, a frequency finer
than the data's, a time budget too small to backtest anything, periods missing here and there,
numeric and day-first times, and a series without target values."""

from __future__ import annotations

import json
import re

import joblib
import numpy as np
import pandas as pd
import pytest

from tasks.errors import AutoMLInputError
from tasks.forecast_data import prepare_panel
from tests.conftest import small_regression
from tests.test_forecast import _cli, _settings, promo_sales, shop_sales


def _one_shop() -> pd.DataFrame:
    return shop_sales(n_series=1).drop(columns="shop")


def test_one_series_needs_no_series_id():
    prepared = prepare_panel(_one_shop(), _settings(series_id=[]))
    assert prepared.panel.keys == [()] and len(prepared.panel.values[0]) == 24 * 12


@pytest.mark.parametrize("series_id", [[], ["shop"]])
def test_one_time_written_two_ways_is_a_duplicate(series_id):
    frame = shop_sales(n_series=1) if series_id else _one_shop()
    frame["hour"] = frame["hour"].dt.strftime("%Y-%m-%d %H:%M:%S")
    again = frame.iloc[[5]].assign(hour=pd.Timestamp(frame["hour"].iloc[5]).isoformat())
    for extra in (frame.iloc[[5]], again):  # the same text, then the same time written anew
        with pytest.raises(AutoMLInputError,
                           match=r"duplicate timestamps within a series: .*2024-03-01.05"):
            prepare_panel(pd.concat([frame, extra]), _settings(series_id=series_id))


@pytest.mark.parametrize("short_series", ["fallback", "drop"])
def test_a_horizon_longer_than_every_series_names_the_horizon(short_series):
    with pytest.raises(AutoMLInputError, match=r"every series is shorter than 48 periods .*"
                       r"the longest has 20\); lower --horizon"):
        prepare_panel(shop_sales(n_series=0, short=2),
                      _settings(short_series=short_series))


def test_a_frequency_finer_than_the_data_is_refused_before_filling_it():
    daily = shop_sales().iloc[::24]  # one row a day
    with pytest.raises(AutoMLInputError, match=r"at frequency 'h', \d+ of \d+ periods have no "
                       r"row and would be filled by interpolate; give the data's --frequency"):
        prepare_panel(daily, _settings(frequency="h", horizon=7))
    zero = prepare_panel(daily, _settings(frequency="h", horizon=7, fill_gaps="zero"))
    assert zero.n_filled > 0.9 * sum(len(v) for v in zero.panel.values)  # no row means zero


def test_times_off_the_given_frequency_name_the_series():
    with pytest.raises(AutoMLInputError, match=r"^series shop='shop 0' has time .*, which is "
                       r"not on the 'D' grid"):
        prepare_panel(shop_sales(), _settings(frequency="D"))


def test_times_off_the_grid_name_the_grid():
    weekly = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=30, freq="D"),
                           "sales": np.arange(30.0)})  # 2024-01-01 is a Monday
    with pytest.raises(AutoMLInputError, match=r"^the series has time 2024-01-01 00:00:00, "
                       r"which is not on the 'W' "
                       r"grid \(2024-01-07 00:00:00, 2024-01-14 00:00:00, ...\)"):
        prepare_panel(weekly, _settings(time_column="day", series_id=[], frequency="W",
                                        horizon=2))


@pytest.mark.usefixtures("prefect_harness")
def test_one_series_trains_and_forecasts_without_series_ids(tmp_path):
    from flows.train import train

    frame = _one_shop()
    result = train(data=frame, target="sales", task="forecasting", time_column="hour",
                   horizon=24, include=["seasonal_naive", "theta"], max_trials=2,
                   output=str(tmp_path / "out"))
    model = joblib.load(result.model_path)
    future = pd.DataFrame({"hour": pd.date_range(frame["hour"].max() + pd.Timedelta(hours=1),
                                                 periods=24, freq="h")})
    predicted = model.predict(future.iloc[::-1])
    assert predicted.shape == (24,) and np.all(np.isfinite(predicted))
    assert np.allclose(predicted[::-1], model.predict(future))  # one value per row, in order


def test_the_hour_repeated_when_clocks_go_back_is_a_duplicate_with_a_hint():
    utc = pd.date_range("2024-10-26 20:00", periods=48, freq="h", tz="UTC")
    local = pd.DataFrame({"hour": [t.isoformat() for t in utc.tz_convert("Europe/Oslo")],
                          "sales": np.arange(48.0)})
    with pytest.raises(AutoMLInputError, match=r"2024-10-27 02:00:00 appears more than once; "
                       r".*repeats an hour when clocks go back: give such a time column in UTC"):
        prepare_panel(local, _settings(series_id=[], horizon=6))
    local["hour"] = [t.isoformat() for t in utc]  # in UTC: no repeat
    assert prepare_panel(local, _settings(series_id=[], horizon=6)).n_filled == 0


def test_the_frequency_of_times_read_from_text_with_a_gap_is_their_step():
    """Text becomes microsecond times under pandas 3: the most common step must still be read
    as one hour, not 3.6 seconds."""
    frame = _one_shop().drop(index=[10, 11])
    frame["hour"] = frame["hour"].dt.strftime("%Y-%m-%d %H:%M")
    prepared = prepare_panel(frame, _settings(series_id=[]))
    assert prepared.panel.freq in {"h", "H"} and prepared.n_filled == 2


@pytest.mark.parametrize("written", ["offsets", "zone"])
def test_daily_times_with_a_zone_across_a_daylight_saving_change_keep_their_grid(written):
    """Local midnights in Oslo, +01:00 before 2024-03-31 and +02:00 after: on their own clock
    they are one day apart, as ISO text with offsets or as a column with a zone."""
    days = pd.date_range("2024-03-01", periods=60, freq="D", tz="Europe/Oslo")
    frame = pd.DataFrame({"day": [t.isoformat() for t in days] if written == "offsets"
                          else days, "sales": np.arange(60.0)})
    prepared = prepare_panel(frame, _settings(time_column="day", series_id=[], horizon=7))
    assert prepared.panel.freq == "D" and prepared.n_filled == 0


@pytest.mark.usefixtures("prefect_harness")
def test_hourly_times_with_offsets_across_a_daylight_saving_change(tmp_path):
    """ISO times with the local offset: the hour clocks skip (02:00 on 2024-03-31 in Oslo) is a
    gap that is filled, and new rows written with their offsets find their steps."""
    from flows.train import train

    frame = _one_shop()
    utc = pd.date_range("2024-03-25", periods=len(frame), freq="h", tz="UTC")
    frame["hour"] = [t.isoformat() for t in utc.tz_convert("Europe/Oslo")]
    prepared = prepare_panel(frame, _settings(series_id=[]))
    assert prepared.n_filled == 1 and len(prepared.panel.values[0]) == len(frame) + 1
    result = train(data=frame, target="sales", task="forecasting", time_column="hour",
                   horizon=24, include=["seasonal_naive"], max_trials=1,
                   output=str(tmp_path / "out"))
    model = joblib.load(result.model_path)
    future = pd.date_range(utc[-1] + pd.Timedelta(hours=1), periods=24, freq="h",
                           tz="UTC").tz_convert("Europe/Oslo")
    predicted = model.predict(pd.DataFrame({"hour": [t.isoformat() for t in future]}))
    assert np.all(np.isfinite(predicted))
    np.testing.assert_allclose(predicted, model.predict(pd.DataFrame({"hour": future})))
    np.testing.assert_allclose(predicted, model.predict(
        pd.DataFrame({"hour": future.tz_localize(None)})))  # the local clock without a zone
    # Training saw Oslo's two offsets: a UTC time could be on either clock.
    with pytest.raises(ValueError, match=r"^row 0: '.*Z' is at UTC offset \+00:00, but the "
                       r"training times were at \+01:00 and \+02:00; write the times as in"):
        model.predict(pd.DataFrame({"hour": [f"{t:%Y-%m-%dT%H:%M}Z" for t in future]}))


def test_new_times_at_another_offset_are_read_on_the_training_clock(tmp_path):
    """A model trained on +02:00 times read 22:00Z, midnight at +02:00, on its own clock:
    two hours early, a wrong step of an hourly forecast, without an error."""
    from flows.train import train

    frame = _one_shop()
    utc = pd.date_range("2024-05-01", periods=len(frame), freq="h", tz="UTC")
    frame["hour"] = [t.isoformat() for t in utc.tz_convert("+02:00")]
    result = train(data=frame, target="sales", task="forecasting", time_column="hour",
                   horizon=24, include=["seasonal_naive"], max_trials=1,
                   output=str(tmp_path / "out"))
    model = joblib.load(result.model_path)
    future = pd.date_range(utc[-1] + pd.Timedelta(hours=1), periods=24, freq="h", tz="UTC")
    expected = model.predict(pd.DataFrame({"hour": [t.isoformat() for t in future.tz_convert(
        "+02:00")]}))
    assert len(set(expected)) > 1  # the rows' order matters
    for written in ([f"{t:%Y-%m-%dT%H:%M}Z" for t in future], future,
                    [t.isoformat() for t in future.tz_convert("-05:00")]):
        np.testing.assert_allclose(model.predict(pd.DataFrame({"hour": written})), expected)
    # One hour off the training's offset is the zone's daylight-saving change: its own clock.
    summer = [f"{t:%Y-%m-%dT%H:%M}+03:00" for t in future.tz_convert("+02:00")]
    np.testing.assert_allclose(model.predict(pd.DataFrame({"hour": summer})), expected)


@pytest.mark.parametrize("task", ["regression", "forecasting"])
def test_a_time_budget_spent_before_training_is_a_clear_error(tmp_path, task):
    if task == "forecasting":
        shop_sales().to_csv(tmp_path / "data.csv", index=False)
        args = ["--target", "sales", "--time-column", "hour", "--series-id", "shop",
                "--horizon", "24"]
    else:
        small_regression().to_csv(tmp_path / "data.csv", index=False)
        # The budget named is the one given, not what is left once registering has its share.
        args = ["--target", "y", "--registry", str(tmp_path / "registry")]
    # One second is gone before the data is read: no candidate can start.
    done = _cli(["--data", str(tmp_path / "data.csv"), "--task", task, *args,
                 "--time-budget", "1", "--output", str(tmp_path / "out")])
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "error: --time-budget 1 s ran out before any candidate could be trained" in done.stderr
    assert "give a larger --time-budget" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("prefect_harness")
# A statistical forecaster does not read the known-future features; they are checked all the same.
@pytest.mark.parametrize("family", ["global_linear", "naive"])
def test_known_future_features_and_ids_at_predict_time(tmp_path, family):
    from flows.train import train
    from tasks.drift import score_frame

    frame = promo_sales([1, 2, 3], 120, seed=5, share=0.3, base=60.0, lift=20.0)
    result = train(data=frame, target="sales", task="forecasting", time_column="day",
                   series_id=["shop"], horizon=7, known_features=["promo"],
                   include=[family], max_trials=1, output=str(tmp_path / "out"))
    model = joblib.load(result.model_path)
    assert model.required_columns() == ["day", "shop", "promo"]
    report = (tmp_path / "out" / "report.html").read_text()
    assert "&quot;shop&quot;: ..., &quot;day&quot;: ..., &quot;promo&quot;: ..." in report
    days = pd.date_range("2020-04-30", periods=7, freq="D")
    rows = pd.DataFrame({"shop": 2, "day": days, "promo": [0.0, 1.0] * 3 + [0.0]})
    expected = model.predict(rows)
    with pytest.raises(ValueError, match=r"columns \['promo'\] are missing; .* and the "
                       r"known-future features \['promo'\]"):
        model.predict(rows.drop(columns="promo"))
    # An id sent as text, as JSON clients often do, finds its series.
    assert np.allclose(model.predict(rows.assign(shop="2")), expected)
    with pytest.raises(ValueError, match=r"series \{'shop': '7'\} was not in training"):
        model.predict(rows.assign(shop="7"))
    empty = rows.assign(promo=rows["promo"].where(rows.index != 3))
    with pytest.raises(ValueError, match=r"row 3: known-future feature 'promo' is nan; give"):
        model.predict(empty)
    with pytest.raises(ValueError, match=r"row 0: known-future feature 'promo' is 'yes'"):
        model.predict(rows.astype({"promo": object}).assign(promo=["yes"] + [0.0] * 6))
    clash = pd.concat([rows, rows.iloc[[2]].assign(promo=1.0)], ignore_index=True)
    with pytest.raises(ValueError, match=r"rows 2 and 7 are the same period of one series with "
                       r"different known-future features"):
        model.predict(clash)
    again = pd.concat([rows, rows.iloc[[2]]], ignore_index=True)  # the same row twice is fine
    assert np.allclose(model.predict(again)[:7], expected)
    # Scored in batch, a series whose rows clash gets the error on each of its rows (together
    # they give the features of its horizon); another series in the file is scored as alone.
    other = rows.assign(shop=1)
    out = score_frame(model, pd.concat([clash, other], ignore_index=True))
    assert out["error"][:8].str.startswith("rows 2 and 7 are the same period").all()
    assert (out["error"][8:] == "").all()
    assert np.allclose(out["prediction"][8:].astype(float), model.predict(other))


@pytest.mark.parametrize(("freq", "season"), [("W-SUN", 52), ("MS", 12), ("QS-JAN", 4)])
def test_data_missing_some_periods_keeps_its_frequency_and_season(freq, season):
    """Without a gap-free series pandas infers nothing, and the most common step was taken: 7
    days gave weekly data a season of 1, and 31 days made monthly data an error."""
    times = pd.date_range("2015-01-01", periods=80, freq=freq)
    frame = pd.DataFrame({"shop": np.repeat(["a", "b"], 80), "week": np.tile(times, 2),
                          "sales": np.arange(160.0)}).drop(index=[3, 30, 41, 50, 77, 120])
    prepared = prepare_panel(frame, _settings(time_column="week", horizon=4))
    assert (prepared.panel.freq, prepared.panel.season) == (freq, season)
    assert prepared.n_filled == 6


def test_weekday_data_missing_holidays_is_business_days():
    """Weekday data missing a holiday has no gap-free series; it was read as daily, with each
    weekend two missing periods to interpolate (season 7, forecasts dated on Saturdays)."""
    days = pd.bdate_range("2024-01-01", periods=120)
    frame = pd.DataFrame({"shop": np.repeat(["a", "b"], 120), "day": np.tile(days, 2),
                          "sales": np.arange(240.0)}).drop(index=[9, 44, 150])
    prepared = prepare_panel(frame, _settings(time_column="day", horizon=5))
    assert (prepared.panel.freq, prepared.panel.season, prepared.n_filled) == ("B", 5, 3)
    with_weekends = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=120),
                                  "sales": np.arange(120.0)}).drop(index=[9, 44])
    prepared = prepare_panel(with_weekends, _settings(time_column="day", horizon=5, series_id=[]))
    assert (prepared.panel.freq, prepared.panel.season) == ("D", 7)


def _yearly(years: list) -> pd.DataFrame:
    return pd.DataFrame({"shop": np.repeat(["a", "b", "closed"], len(years)),
                         "year": np.tile(years, 3),
                         "sales": np.r_[np.arange(30.0), 100 + np.arange(30.0), [np.nan] * 30]})


def test_numeric_times_are_years_or_written_dates_and_other_numbers_are_refused():
    settings = _settings(time_column="year", horizon=2)
    prepared = prepare_panel(_yearly(list(range(1991, 2021))), settings)
    assert prepared.panel.freq.startswith("YS") and len(prepared.panel.values[0]) == 30
    days = pd.date_range("2024-01-01", periods=30, freq="D").strftime("%Y%m%d").astype(int)
    assert prepare_panel(_yearly(list(days)), settings).panel.freq == "D"
    for numbers, shown in [(range(1, 31), "1"), (range(1_700_000_000, 1_700_108_000, 3600),
                                                  "1700000000")]:
        with pytest.raises(AutoMLInputError, match=rf"time column 'year' has values that are not "
                           rf"times, such as {shown} \(numbers are read as years, 2024, or as "
                           r"dates written 20240131: write period numbers or epoch seconds as "
                           r"dates\)"):
            prepare_panel(_yearly(list(numbers)), settings)


@pytest.mark.usefixtures("prefect_harness")
def test_a_series_without_target_values_is_left_out_and_said_so(tmp_path):
    """Integer years in training and at predict time; the series 'closed' has no sales."""
    from flows.train import train

    frame = _yearly(list(range(1991, 2021)))
    prepared = prepare_panel(frame, _settings(time_column="year", horizon=2))
    assert prepared.empty == [("closed",)] and prepared.dropped == [("closed",)]
    alert = next(g for g in prepared.guardrails if g.name == "empty_series")
    assert alert.status == "Alerted" and "1 series have no 'sales' values" in alert.detail
    result = train(data=frame, target="sales", task="forecasting", time_column="year",
                   series_id=["shop"], horizon=2, include=["naive"], max_trials=1,
                   output=str(tmp_path / "out"))
    model = joblib.load(result.model_path)
    predicted = model.predict(pd.DataFrame({"shop": ["a", "b"], "year": [2021, 2022]}))
    np.testing.assert_allclose(predicted, [29.0, 129.0])  # naive: the last value
    with pytest.raises(ValueError, match=r"series \{'shop': 'closed'\} was not in training "
                       r"\(no 'sales' values in training\)"):
        model.predict(pd.DataFrame({"shop": ["closed"], "year": [2021]}))
    facts = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert facts["dropped_series"] == [["closed"]]
    # A forecaster published before numbers were read as dates reads them as it was trained.
    state = {k: v for k, v in model.__dict__.items() if k not in ("numbers_as_dates",
                                                                   "day_first")}
    old = type(model).__new__(type(model))
    old.__setstate__(state)
    assert old.numbers_as_dates is False and old.day_first is False
    from featurizers import wall_clock

    assert wall_clock(pd.Series([2021]), digits=False)[0] == pd.Timestamp(2021, unit="ns")


def test_a_backtest_history_ending_in_a_gap_does_not_see_the_value_after_it():
    """Interpolation fills the two days before the window's first day from that day's value;
    at the origin that value is still unknown, so the history ends on the last day seen."""
    from models.naive import NaiveForecaster
    from tasks.backtest import backtest

    days = pd.date_range("2024-01-01", periods=50, freq="D")
    frame = pd.DataFrame({"day": days, "sales": np.r_[np.zeros(40), np.full(10, 90.0)]})
    prepared = prepare_panel(frame.drop(index=[38, 39]),
                             _settings(time_column="day", series_id=[], horizon=10))
    panel = prepared.panel
    np.testing.assert_allclose(panel.values[0][38:40], [30.0, 60.0])  # the whole series: filled
    np.testing.assert_allclose(panel.history(0, 10)[-3:], 0.0)
    np.testing.assert_allclose(panel.cut(10).values[0][-3:], 0.0)  # what global models fit on
    forecast = backtest(NaiveForecaster(), panel, horizon=10, windows=1)
    np.testing.assert_allclose(forecast[0, 0], 0.0)  # 60 when it saw the filled days
    zero = prepare_panel(frame.drop(index=[38, 39]), _settings(
        time_column="day", series_id=[], horizon=10, fill_gaps="zero"))
    assert zero.panel.filled is None  # zeros are the data's own values


@pytest.mark.usefixtures("prefect_harness")
def test_day_first_dates_are_read_day_first_in_training_and_at_predict_time(tmp_path):
    from flows.train import train

    days = pd.date_range("2024-02-01", periods=60, freq="D")  # to 2024-03-31
    frame = pd.DataFrame({"day": days.strftime("%d/%m/%Y"),
                          "sales": 50 + 10 * np.sin(2 * np.pi * np.arange(60) / 7)})
    prepared = prepare_panel(frame, _settings(time_column="day", series_id=[], horizon=7))
    assert prepared.day_first and prepared.panel.freq == "D" and prepared.n_filled == 0
    assert prepared.panel.ends[0] == days[-1]
    result = train(data=frame, target="sales", task="forecasting", time_column="day",
                   horizon=7, include=["naive"], max_trials=1, output=str(tmp_path / "out"))
    model = joblib.load(result.model_path)
    after = pd.date_range("2024-04-01", periods=7, freq="D")  # 01/04/2024 alone reads 4 January
    predicted = model.predict(pd.DataFrame({"day": after.strftime("%d/%m/%Y")}))
    np.testing.assert_allclose(predicted, model.predict(pd.DataFrame({"day": after})))


def test_numeric_series_ids_trained_on_are_not_drift():
    """The contract held the ids as numbers and scoring compared them as text: every row of
    a forecaster with numeric series ids was reported as an unseen series."""
    from tasks.drift import check_against_contract
    from tasks.forecast_data import build_forecast_suite

    days = pd.date_range("2024-01-01", periods=30).strftime("%Y-%m-%d")
    frame = pd.DataFrame({"store": np.repeat([101, 102], 30), "day": np.tile(days, 2),
                          "sales": np.arange(60.0)})
    settings = _settings(time_column="day", series_id=["store"], horizon=3)
    contract = build_forecast_suite(frame, settings).to_json_dict()
    rows = pd.DataFrame({"store": [101, 102.0, 999], "day": ["2024-01-31"] * 3})
    expected = [["store", "unseen_category", 1, "999"]]
    columns = ["column", "check", "unexpected_count", "examples"]
    assert check_against_contract(rows, contract).findings[columns].values.tolist() == expected
    for expectation in contract["expectations"]:  # as forecasters published before wrote it
        if expectation["type"] == "expect_column_values_to_be_in_set":
            expectation["kwargs"]["value_set"] = [101, 102]
    assert check_against_contract(rows, contract).findings[columns].values.tolist() == expected


def test_columns_the_forecasts_do_not_use_are_named():
    """A promo column left undeclared was ignored without a word."""
    frame = shop_sales().assign(promo=0.0, note="x")
    rail = next(g for g in prepare_panel(frame, _settings()).guardrails
                if g.name == "unused_columns")
    assert rail.status == "Alerted" and rail.detail.startswith("not used: 'promo', 'note'; ")
    assert "(--known-features)" in rail.detail
    used = next(g for g in prepare_panel(frame.drop(columns="note"), _settings(
        known_features=["promo"])).guardrails if g.name == "unused_columns")
    assert used.status == "Passed"


def test_frequencies_pandas_retired_say_what_to_give():
    """--frequency M was 'not a pandas frequency (e.g. h, D, W-SUN, MS, QS, YS)'; so were a
    multiple (2M), an anchor (Q-DEC) and a case slip (m, me)."""
    for given, says in [("M", "give MS (periods dated by their first day) or ME (by their "
                               "last)"), ("Q", "give QS"), ("H", "give h"), ("T", "give min"),
                        ("2M", "give 2MS (periods"), ("Q-DEC", "give QS-DEC (periods"),
                        ("me", "give ME"), ("m", "give MS or ME (months dated by their first "
                                                 "or last day) or min (minutes)")]:
        with pytest.raises(AutoMLInputError, match=rf"^frequency '{given}' is not a "
                           rf"pandas frequency: {re.escape(says)}"):
            prepare_panel(shop_sales(), _settings(frequency=given))
    with pytest.raises(AutoMLInputError, match="'X' is not a pandas frequency"):
        prepare_panel(shop_sales(), _settings(frequency="X"))
