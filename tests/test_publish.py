"""The results folder: a new run replaces what an earlier run published there, and only that."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

from tasks.errors import AutoMLInputError
from tasks.publish import check_output_folder, publish_results


def _publish(out, charts: dict[str, bytes]) -> None:
    model = DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0])
    publish_results(str(out), model, pd.DataFrame({"id": [0]}), {"metric": "rmse"},
                    {"task": "regression"}, {}, extra_files=charts)


def test_files_of_an_earlier_run_that_this_one_did_not_write_are_removed(tmp_path):
    out = tmp_path / "out"
    _publish(out, {"roc.png": b"classification chart", "report.html": b"old"})
    (out / "notes.txt").write_text("the user's own file")
    (out / "feature_importance_candidate_7.csv").write_text("flows.explain of candidate 7")
    _publish(out, {"forecast.png": b"forecasting chart", "report.html": b"new"})
    names = {p.name for p in out.iterdir()}
    assert "roc.png" not in names and (out / "report.html").read_bytes() == b"new"
    assert "feature_importance_candidate_7.csv" not in names  # another run's candidate 7
    assert {"forecast.png", "notes.txt", "model.pkl", "manifest.json"} <= names
    listed = json.loads((out / "manifest.json").read_text())["files"]
    assert set(listed) == names - {"notes.txt"}


def test_a_manifest_listing_paths_outside_the_folder_removes_nothing_there(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "keep.txt"
    outside.write_text("outside")
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"files": ["../keep.txt", str(outside)]}))
    _publish(out, {})
    assert outside.read_text() == "outside"


def test_json_files_hold_null_where_a_value_is_nan(tmp_path):
    out = tmp_path / "out"
    model = DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0])
    publish_results(str(out), model, pd.DataFrame({"id": [0]}),
                    {"value": float("nan"), "top": [{"importance": float("inf"), "std": 1.0}]},
                    {"task": "forecasting"}, {})

    def refuse(word):
        raise AssertionError(f"{word} is not JSON")

    facts = json.loads((out / "metrics.json").read_text(), parse_constant=refuse)
    assert facts == {"value": None, "top": [{"importance": None, "std": 1.0}]}


def test_a_guardrail_detail_with_a_pipe_stays_in_its_cell():
    from tasks.artifacts import summary_markdown
    from tasks.guardrails import Guardrail

    board = pd.DataFrame({"rank": [1], "id": [0], "family": ["linear"], "rmse": [1.0],
                          "fit_seconds": [0.1]})
    text = summary_markdown({"task": "regression", "target": "y"},
                            [Guardrail("high_missing_rate", "Alerted", "'a|b (62%)'")], board,
                            "rmse")
    row = next(line for line in text.splitlines() if line.startswith("| high_missing_rate"))
    assert row.replace("\\|", "").count("|") == 4  # three cells


def test_long_column_names_leave_the_importance_chart_its_room():
    import warnings

    from tasks.charts import importance_chart

    table = pd.DataFrame({"feature": ["x" * 104, "señal fuerte"], "importance": [0.2, 0.1],
                          "std": [0.01, 0.01], "metric": ["roc_auc", "roc_auc"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when the layout cannot fit the labels
        chart = importance_chart(table)
    assert chart.png.startswith(b"\x89PNG") and chart.numbers["x" * 104] == 0.2


def test_forecast_charts_name_the_series_by_their_id_columns():
    from tasks.forecast_charts import series_title

    assert series_title(("A",), ["store"]) == "store=A"
    assert series_title(("A", 3), ["store", "shelf"]) == "store=A, shelf=3"
    assert series_title((), []) == "(single series)"


def test_a_size_not_measured_is_an_empty_cell_not_zero(tmp_path):
    from tasks.publish import leaderboard_frame
    from tasks.types import CandidateResult, CandidateSpec

    results = [CandidateResult(CandidateSpec(1, "linear", {}), "ok", {"rmse": 1.0},
                               predict_seconds_per_1000=0.01, model_bytes=2048),
               CandidateResult(CandidateSpec(2, "knn", {}), "failed", error="ValueError: x")]
    leaderboard_frame(results, "rmse", False).to_csv(tmp_path / "leaderboard.csv", index=False)
    table = pd.read_csv(tmp_path / "leaderboard.csv").set_index("id")
    assert table.loc[1, "model_bytes"] == 2048
    assert pd.isna(table.loc[2, "model_bytes"])
    assert pd.isna(table.loc[2, "predict_seconds_per_1000"])
    assert ",2048," in (tmp_path / "leaderboard.csv").read_text()  # a whole number of bytes
    from tasks.html_page import table

    cells = table(leaderboard_frame(results, "rmse", False)[["id", "model_bytes"]], ["model_bytes"])
    assert '<td class="num">2048</td>' in cells and '<td class="num"></td>' in cells


def test_the_published_model_is_marked_and_shown_wherever_it_ranks():
    """The check against the defaults can publish candidate 1 at rank 39: the report's top
    rows left it out, and readers took rank 1 for the model shipped."""
    from tasks.html_page import leaderboard_view
    from tasks.publish import leaderboard_frame
    from tasks.types import CandidateResult, CandidateSpec

    results = [CandidateResult(CandidateSpec(i, "linear", {}), "ok", {"rmse": 10.0 - i / 10})
               for i in range(1, 41)]
    board = leaderboard_frame(results, "rmse", False, published=1)
    assert board.loc[board["published"], ["rank", "id"]].values.tolist() == [[40, 1]]
    view = leaderboard_view(board, "rmse", rows=10)
    assert view["id"].tolist() == [*range(40, 30, -1), 1] and view["published"].iloc[-1]
    assert not leaderboard_frame(results, "rmse", False)["published"].any()


def test_an_output_folder_under_a_file_is_refused_before_training(tmp_path):
    (tmp_path / "data.csv").write_text("x\n1\n")
    with pytest.raises(AutoMLInputError, match=r"under '.*data.csv', which is a file"):
        check_output_folder(str(tmp_path / "data.csv" / "results" / "run1"))
    assert check_output_folder(str(tmp_path / "new" / "run1")) == tmp_path / "new" / "run1"


def test_an_output_uri_is_refused_and_a_local_one_is_made_absolute(tmp_path, monkeypatch):
    """s3://bucket/x was written to a local folder named 's3:' with the run reported done;
    '~/res' was published under the home folder but reported under the working folder."""
    with pytest.raises(AutoMLInputError, match=r"output 's3://bucket/churn' is not a folder on "
                       r"this machine: .* --registry with the URI"):
        check_output_folder("s3://bucket/churn")
    assert check_output_folder(f"file://{tmp_path}/run") == tmp_path / "run"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert check_output_folder("~/res") == tmp_path / "home" / "res"
    assert check_output_folder("results") == tmp_path / "results"
