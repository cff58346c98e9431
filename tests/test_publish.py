"""The results folder: a new run replaces what an earlier run published there, and only that."""

from __future__ import annotations

import json

import pandas as pd
from sklearn.dummy import DummyRegressor

from tasks.publish import publish_results


def _publish(out, charts: dict[str, bytes]) -> None:
    model = DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0])
    publish_results(str(out), model, pd.DataFrame({"id": [0]}), {"metric": "rmse"},
                    {"task": "regression"}, {}, extra_files=charts)


def test_files_of_an_earlier_run_that_this_one_did_not_write_are_removed(tmp_path):
    out = tmp_path / "out"
    _publish(out, {"roc.png": b"classification chart", "report.html": b"old"})
    (out / "notes.txt").write_text("the user's own file")
    _publish(out, {"forecast.png": b"forecasting chart", "report.html": b"new"})
    names = {p.name for p in out.iterdir()}
    assert "roc.png" not in names and (out / "report.html").read_bytes() == b"new"
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
