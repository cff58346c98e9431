"""Training inputs that used to slip through: a repeated column name, a UTF-16 file, validation
data with other labels, labels equal as text but not in type, and a categorical target that lists
a category it never uses."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.errors import AutoMLInputError
from tasks.load import load_table
from tasks.settings import TrainSettings, settings_from_kwargs
from tasks.validate import prepare_data
from tests.conftest import awkward_classification


def _settings() -> TrainSettings:
    return TrainSettings(data="x", target="label", task="classification")


def _frame(n: int = 60) -> pd.DataFrame:
    return awkward_classification(n=n)[["température °C", "noise", "city", "label"]].dropna(
        subset=["label"]).reset_index(drop=True)


@pytest.mark.parametrize(("header", "name"), [("a,a,label", "a"), ("a,label,label", "label")])
def test_a_repeated_column_name_is_refused(tmp_path, header, name):
    path = tmp_path / "data.csv"
    path.write_text(header + "\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(30)) + "\n")
    with pytest.raises(AutoMLInputError, match=f"has two columns named '{name}'; rename or drop"):
        load_table(str(path))


def test_a_csv_with_an_unnamed_index_column_still_loads(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(",a,label\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(30)) + "\n")
    assert list(load_table(str(path)).columns) == ["Unnamed: 0", "a", "label"]


def test_a_utf16_csv_is_read_with_its_names(tmp_path):
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False, encoding="utf-16")
    loaded = load_table(str(path))
    assert list(loaded.columns) == ["température °C", "noise", "city", "label"]
    assert set(loaded["city"]) >= {"Zürich", "São Paulo"}


def test_validation_labels_the_training_data_lacks_are_refused():
    frame = _frame()
    numbers = frame.assign(label=(frame["label"] == "yes").astype(int))
    with pytest.raises(AutoMLInputError, match=r"validation data has target class\(es\) [01], "
                       r"[01] in 'label' that the training data lacks \(it has '(yes|no)', "
                       r"'(yes|no)'\); use the same labels in both"):
        prepare_data(frame, _settings(), numbers)
    one_class = frame[frame["label"] == "yes"]  # fewer classes than training is fine
    assert prepare_data(frame, _settings(), one_class).n_validation_rows == len(one_class)


def test_labels_equal_as_text_but_not_in_type_are_refused():
    frame = _frame().assign(label=lambda f: (f["label"] == "yes").astype(int).astype(object))
    frame.loc[frame.index[:10], "label"] = frame["label"][:10].map(str)
    with pytest.raises(AutoMLInputError, match=r"labels that read the same but differ in type: "
                       r"(1, '1'|'1', 1|0, '0'|'0', 0); make the column one type"):
        prepare_data(frame, _settings())


def test_labels_that_differ_only_in_spaces_are_refused():
    frame = _frame()
    frame.loc[frame.index[:4], "label"] = frame["label"][:4] + " "
    with pytest.raises(AutoMLInputError, match=r"target 'label' has labels that differ only in "
                       r"spaces: '(yes|no) ?', '(yes|no) ?'; strip the spaces from the column"):
        prepare_data(frame, _settings())


def test_an_unused_category_of_the_target_raises_no_imbalance_alert():
    frame = _frame()
    frame["label"] = pd.Categorical(frame["label"], categories=["no", "yes", "maybe"])
    prepared = prepare_data(frame, _settings())
    alert = next(g for g in prepared.guardrails if g.name == "class_imbalance")
    assert alert.status == "Passed" and "maybe" not in alert.detail
    assert sorted(prepared.classes) == ["no", "yes"]


def test_a_table_with_only_a_header_says_so():
    with pytest.raises(AutoMLInputError, match=r"the data has no rows, only the columns "
                       r"'température °C', 'noise', 'city', 'label'; give"):
        prepare_data(_frame().iloc[:0], _settings())
    wide = _frame().iloc[:0].assign(**{f"x{i}": [] for i in range(8)})  # 12 columns: not all
    with pytest.raises(AutoMLInputError, match=r"'x3' and 4 more; give a table with rows"):
        prepare_data(wide, _settings())


def test_family_names_are_checked_against_the_task():
    from flows._select import choose_families
    from models import DataShape, registry

    settings = TrainSettings(data="x", target="label", task="classification", include=["thta"])
    with pytest.raises(AutoMLInputError, match="unknown model family 'thta'") as raised:
        choose_families(settings, DataShape(0, 0))
    assert "theta" not in str(raised.value)  # a forecasting family is no hint here
    everything = registry().names("classification")
    settings = TrainSettings(data="x", target="label", task="classification", exclude=everything)
    with pytest.raises(AutoMLInputError, match=r"no model family left for classification after "
                       r"--include/--exclude"):
        choose_families(settings, DataShape(0, 0))


def test_a_library_upgrade_gives_cached_candidates_new_keys(monkeypatch):
    from types import SimpleNamespace

    import tasks.train as train_module

    parameters = {"spec": SimpleNamespace(family="xgboost", config={"max_depth": 3},
                                          fraction=1.0),
                  "data": SimpleNamespace(fingerprint="abc", roles={"x": "numeric"},
                                          classes=None),
                  "plan": SimpleNamespace(signature="5-fold"), "seed": 0}
    now = train_module.candidate_cache_key(None, parameters)
    assert now == train_module.candidate_cache_key(None, parameters)
    upgraded = {**train_module.library_versions(), "xgboost-cpu": "99.0"}
    monkeypatch.setattr(train_module, "library_versions", lambda: upgraded)
    assert train_module.candidate_cache_key(None, parameters) != now


def test_the_time_budget_error_says_whether_candidates_started():
    import time

    from flows._loop import AT_CANDIDATE_TIMEOUT, TOO_LITTLE_TIME, Budget
    from flows._select import check_time_for_candidates
    from tasks.types import CandidateResult, CandidateSpec

    budget = Budget(time.time() - 12, 10.0)
    left_out = CandidateResult(CandidateSpec(1, "linear", {}), "too_slow", error=TOO_LITTLE_TIME)
    stopped = CandidateResult(CandidateSpec(2, "xgboost", {}), "timeout", error="deadline")
    with pytest.raises(AutoMLInputError, match=r"could be trained: 12 s went to start-up"):
        check_time_for_candidates([left_out], budget)
    with pytest.raises(AutoMLInputError, match=r"before any candidate finished: 1 started and "
                       r"was stopped at its deadline; give"):
        check_time_for_candidates([left_out, stopped], budget)
    # Every one stopped by the candidate timeout (the loop says so in its error): it is named.
    capped = CandidateResult(CandidateSpec(6, "xgboost", {}), "timeout",
                             error=f"deadline ({AT_CANDIDATE_TIMEOUT}, 0.5 s)")
    for limits in (Budget(time.time(), None), budget):
        with pytest.raises(AutoMLInputError, match=r"^--candidate-timeout 0.5 s stopped every "
                           r"candidate \(1\) before it finished; give a larger "
                           r"--candidate-timeout$"):
            check_time_for_candidates([capped], limits, candidate_timeout=0.5)
    with pytest.raises(AutoMLInputError, match="--time-budget 10 s ran out"):  # one by the budget
        check_time_for_candidates([capped, stopped], budget, candidate_timeout=0.5)
    screen = CandidateResult(CandidateSpec(4, "xgboost", {}, 0.25), "ok")
    promoted = CandidateResult(CandidateSpec(5, "xgboost", {}), "too_slow", error=TOO_LITTLE_TIME)
    with pytest.raises(AutoMLInputError, match=r"before any candidate was trained on all rows: 1 "
                       r"was trained on a subsample"):
        check_time_for_candidates([screen, promoted], budget)
    finished = CandidateResult(CandidateSpec(3, "linear", {}), "ok")
    check_time_for_candidates([stopped, finished], budget)  # one finished: nothing to say
    check_time_for_candidates([stopped, finished], budget, candidate_timeout=0.5)
    check_time_for_candidates([left_out], Budget(time.time(), None))  # no budget, no error


def test_the_flows_form_carries_every_bound_of_the_settings():
    """The deployment's parameter schema (the UI's form; `prefect deployment run` is checked
    against it by the server) bounds each number as TrainSettings does."""
    from prefect.utilities.callables import parameter_schema

    from flows.train import train

    kinds = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength")

    def bounds(prop: dict) -> dict:
        return {k: v for part in prop.get("anyOf", [prop]) for k, v in part.items() if k in kinds}

    form = parameter_schema(train).model_dump()["properties"]
    settings = TrainSettings.model_json_schema()["properties"]
    bounded = {name: bounds(prop) for name, prop in settings.items() if bounds(prop)}
    assert {"time_budget", "cv_folds", "validation_fraction", "backtest_windows"} <= set(bounded)
    assert {name: bounds(form[name]) for name in bounded} == bounded
    from models import registry

    for name in ("include", "exclude"):  # the form offers the installed families
        items = next(p["items"] for p in form[name]["anyOf"] if p.get("type") == "array")
        assert items["enum"] == sorted(registry().names())
    # A path or URI: the server refused nothing (`data=123`), though Python may pass a DataFrame.
    assert {k: form["data"][k] for k in ("type", "minLength")} == {"type": "string",
                                                                   "minLength": 1}


def test_settings_that_belong_to_another_task_are_refused():
    TrainSettings(data="x", target="y", task="regression", registry="models")  # fine
    with pytest.raises(AutoMLInputError, match="horizon applies to forecasting only"):
        settings_from_kwargs(data="x", target="y", task="regression", horizon=7)
    with pytest.raises(AutoMLInputError, match="backtest_windows applies to forecasting only"):
        settings_from_kwargs(data="x", target="y", task="regression", backtest_windows=5)
    settings_from_kwargs(data="x", target="y", task="regression", backtest_windows=3,
                         fill_gaps="interpolate", short_series="fallback")  # the defaults
    settings_from_kwargs(data="x", target="y", task="forecasting", time_column="t",
                         horizon=7, registry="models", promotion_margin=0.1)  # fine too
    forecasting = dict(data="x", target="y", task="forecasting", time_column="t", horizon=7)
    for name, value in [("exit_score", 0.9), ("candidate_timeout", 10.0),
                        ("predict_time_limit", 0.1), ("exclude_columns", ["id"]),
                        ("baseline_margin", 0.0), ("portfolio", "none"), ("search", "random"),
                        ("task_runner", "dask"), ("dask_address", "tcp://127.0.0.1:8786")]:
        with pytest.raises(AutoMLInputError, match=f"{name} applies to classification and "
                           "regression only; leave it out for forecasting"):
            settings_from_kwargs(**forecasting, **{name: value})
    settings_from_kwargs(**forecasting, baseline_margin=2.0, search="tpe", halving=True,
                         include_columns=[])  # the defaults
    with pytest.raises(AutoMLInputError, match="promotion_margin applies only when registering; "
                       "give --registry too, or leave it out"):
        settings_from_kwargs(data="x", target="y", task="regression", promotion_margin=0.1)
    settings_from_kwargs(data="x", target="y", task="regression", registry="models",
                         promotion_margin=0.1, model_name="m")


def test_labels_keep_their_type_when_some_targets_are_missing(tmp_path):
    """A missing value makes pandas read whole numbers as floats and True/False as objects: the
    model's classes (and the score flow's proba_<class> columns) must not become 1.0 or 'True'."""
    frame = _frame()
    frame["label"] = (frame["label"] == "yes").astype(int)
    frame["flag"] = frame["label"] == 1
    for column, expected in [("label", [0, 1]), ("flag", [False, True])]:
        path = tmp_path / f"{column}.csv"
        frame.assign(**{column: frame[column].astype(object).where(frame.index % 7 != 3)}).drop(
            columns="flag" if column == "label" else "label").to_csv(path, index=False)
        table = load_table(str(path))
        assert table[column].isna().sum() > 0 and table[column].dtype in ("float64", object)
        classes = prepare_data(table, TrainSettings(data="x", target=column,
                                                    task="classification")).classes
        assert list(classes) == expected and [type(c) for c in classes.tolist()] == [
            type(e) for e in expected]


def test_errors_name_flags_for_the_command_line_and_parameters_for_the_flow():
    """A deployment's or a Python caller's errors named CLI flags (`give --registry`)."""
    from tasks.errors import as_parameters

    message = ("give a larger --time-budget or --include/--exclude; roll back with "
               "`python -m flows.registry --registry r --name m rollback 2`; see --help")
    # A path or a column name in quotes is the user's text, even where it looks like a flag.
    assert as_parameters("output '/data/--seed/m' is a file; the data's --seed, \"--seed\"",
                         ["seed", "output"]) == (
        "output '/data/--seed/m' is a file; the data's seed, \"--seed\"")
    assert as_parameters(message, ["time_budget", "include", "exclude", "registry"]) == (
        "give a larger time_budget or include/exclude; roll back with "
        "`python -m flows.registry --registry r --name m rollback 2`; see --help")


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_called_from_python_names_its_parameters(tmp_path):
    from flows import _env
    from flows.train import train

    frame = awkward_classification(n=60)
    with pytest.raises(AutoMLInputError, match="give registry too") as raised:
        train(data=frame, target="label", task="classification", promotion_margin=0.1,
              output=str(tmp_path / "o"))
    assert "--" not in str(raised.value)
    with _env.command_line(), pytest.raises(AutoMLInputError, match="give --registry too"):
        train(data=frame, target="label", task="classification", promotion_margin=0.1,
              output=str(tmp_path / "o"))
    assert not _env.in_command_line() and not (tmp_path / "o").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_a_command_line_in_another_thread_does_not_change_a_python_callers_errors(tmp_path):
    """The command-line flag was one global: a CLI `main()` running in one thread of a process
    made a Python caller's errors in another thread name flags."""
    import threading

    from flows import _env
    from flows.train import train

    entered, leave = threading.Event(), threading.Event()

    def command_line_running():
        with _env.command_line():
            entered.set()
            leave.wait(60)

    other = threading.Thread(target=command_line_running)
    other.start()
    try:
        assert entered.wait(60)
        with pytest.raises(AutoMLInputError, match="give registry too"):
            train(data=awkward_classification(n=60), target="label", task="classification",
                  promotion_margin=0.1, output=str(tmp_path / "o"))
    finally:
        leave.set()
        other.join()
