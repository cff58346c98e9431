"""HTTP scoring over real HTTP: a `python -m flows.serve` process on a free 127.0.0.1 port."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import joblib
import pandas as pd
import pytest

from flows.train import train
from tests.conftest import awkward_classification

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve") / "model"
    frame = awkward_classification()
    frame.loc[(frame["label"] == "yes") & (frame.index % 3 == 0), "city"] = None  # informative
    # Written day first, as in much of the world: 13/01/2021.
    frame["signup date"] = pd.to_datetime(frame["signup date"]).dt.strftime("%d/%m/%Y")
    train(data=frame, target="label", task="classification", max_trials=3, output=str(out),
          include=["linear", "hist_gradient_boosting"])
    return out, frame


def _start(model: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "flows.serve", "--model", str(model),
                                "--port", str(port), *extra], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return process, url
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode())
            time.sleep(0.2)
    process.kill()
    raise TimeoutError("the model server did not answer /health in 60 s")


@pytest.fixture(scope="module")
def server(trained):
    process, url = _start(trained[0], "--max-body-bytes", "20000", "--body-timeout", "3")
    yield url
    process.terminate()
    process.wait(timeout=30)


def _post(url: str, body: bytes | str, headers: dict | None = None) -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url + "/predict", data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _rows(frame: pd.DataFrame, n: int) -> list[dict]:
    rows = frame.drop(columns="label").head(n)
    return json.loads(rows.to_json(orient="records"))


def test_health_and_predictions(server, trained):
    with urllib.request.urlopen(server + "/health") as response:
        health = json.loads(response.read())
    assert response.status == 200 and health["task"] == "classification"
    status, answer = _post(server, json.dumps({"rows": _rows(trained[1], 5)}))
    assert status == 200 and len(answer["predictions"]) == 5
    assert answer["classes"] == ["no", "yes"]
    assert all(abs(sum(p) - 1) < 1e-4 for p in answer["probabilities"])
    assert set(answer["predictions"]) <= {"no", "yes"}


def test_amounts_written_as_people_write_them_score_as_their_numbers(server, trained):
    """The model reads "1,234.5" or "$12" in a number column as the number; the service
    refused them with 422 'not a number'."""
    row = _rows(trained[1], 1)[0]
    for number, written in ((1234.5, "1,234.5"), (12.0, "$12"), (-3.5, "-3,5 €")):
        answers = [_post(server, json.dumps({"rows": [{**row, "température °C": value}]}))
                   for value in (number, written)]
        assert [code for code, _ in answers] == [200, 200], answers
        assert answers[0][1]["probabilities"] == answers[1][1]["probabilities"]


def test_texts_a_csv_reads_as_missing_score_as_missing(server, trained):
    """"NA" in a JSON row means what it meant in the training CSV: a missing value."""
    rows = _rows(trained[1], 3)
    answers = [_post(server, json.dumps({"rows": [{**row, "city": city} for row in rows]}))
               for city in (None, "NA", "None", "", "Oslo")]
    assert all(status == 200 for status, _ in answers)
    missing = answers[0][1]["probabilities"]
    assert [a["probabilities"] for _, a in answers[1:4]] == [missing] * 3
    assert answers[4][1]["probabilities"] != missing  # city is read by the model


def test_openapi_schema_lists_the_training_columns(server):
    with urllib.request.urlopen(server + "/openapi.json") as response:
        schema = json.loads(response.read())
    row = schema["components"]["schemas"]["Row"]
    assert {"city", "température °C", "signup date", "comment"} <= set(row["properties"])
    assert "label" not in row["properties"]
    # A number column takes numeric text too ("1,5", "$1,234"); the schema said number only.
    takes = row["properties"]["température °C"]["anyOf"]
    assert {t["type"] for t in takes} == {"number", "boolean", "string", "null"}


@pytest.mark.parametrize("body, status, words", [
    ("{not json", 422, "json"),
    (json.dumps({"rows": []}), 422, "rows"),
    (json.dumps({"rows": "abc"}), 422, "rows"),
    (json.dumps({"columns": []}), 422, "rows"),
])
def test_malformed_requests_are_4xx(server, body, status, words):
    code, answer = _post(server, body)
    assert code == status and words in json.dumps(answer).lower()


def test_unknown_missing_and_mistyped_columns_are_422(server, trained):
    row = _rows(trained[1], 1)[0]
    unknown = {**row, "surprise": 1}
    missing = {k: v for k, v in row.items() if k != "city"}
    mistyped = {**row, "température °C": "warm"}
    # Text a lax boolean would take for 1 or 0 is no number either (the model reads it as
    # missing in batch).
    yes = {**row, "température °C": "yes"}
    infinite = json.dumps({"rows": [{**row, "température °C": 1.5}]}, ensure_ascii=False,
                          separators=(",", ":")).replace(":1.5", ":Infinity")
    assert "Infinity" in infinite
    for body in (json.dumps({"rows": [unknown]}), json.dumps({"rows": [missing]}),
                 json.dumps({"rows": [mistyped]}), json.dumps({"rows": [yes]}), infinite):
        code, answer = _post(server, body)
        assert code == 422, (body, answer)
    assert "surprise" in json.dumps(_post(server, json.dumps({"rows": [unknown]}))[1])
    # One error per bad value, which says what the column takes.
    (error,) = _post(server, json.dumps({"rows": [mistyped]}))[1]["detail"]
    assert error["loc"][-1] == "température °C" and error["msg"].startswith(
        "Value error, not a number: send a number (or numeric text), JSON true/false, or null")
    (error,) = _post(server, infinite)[1]["detail"]
    assert error["msg"].startswith("Value error, not a finite number")
    assert "city" in json.dumps(_post(server, json.dumps({"rows": [missing]}))[1])
    # Columns dropped in training (empty, ID-like) may be left out.
    lean = {k: v for k, v in row.items() if k not in ("always empty", "row id")}
    code, answer = _post(server, json.dumps({"rows": [lean]}))
    full = _post(server, json.dumps({"rows": [row]}))[1]
    assert code == 200 and answer["probabilities"] == full["probabilities"]


def test_a_date_the_model_cannot_read_is_422_naming_the_column(server, trained):
    """Any text in a date column was a 200: the model read it as missing, silently. So was a
    date that reads only month first (01/31/2021) to a model that reads its dates day first."""
    row = _rows(trained[1], 1)[0]
    model = joblib.load(trained[0] / "model.pkl")
    as_missing = model.predict_proba(pd.DataFrame([{**row, "signup date": None}]))
    assert (model.predict_proba(pd.DataFrame([{**row, "signup date": "01/31/2021"}]))
            == as_missing).all()
    assert (model.predict_proba(pd.DataFrame([{**row, "signup date": "31/01/2021"}]))
            != as_missing).any()
    for bad in ("yesterday", "2020-13-45", "2020-02-30", "x" * 10_000, "01/31/2021"):
        code, answer = _post(server, json.dumps({"rows": [row, {**row, "signup date": bad}]}))
        assert code == 422, (bad, answer)
        assert answer["detail"].startswith("cannot score these rows: row 1: 'signup date' is '")
        assert "not a date as the model reads them" in answer["detail"]
        assert len(answer["detail"]) < 250
    for good in ("2021-03-05", "05/03/2021", "31/01/2021", "2021-03-05 13:45", None, "NA"):
        code, answer = _post(server, json.dumps({"rows": [{**row, "signup date": good}]}))
        assert code == 200, (good, answer)


def test_oversized_bodies_are_413(server, trained):
    rows = _rows(trained[1], 1) * 150  # about 40 kB, over the 20 kB limit
    code, answer = _post(server, json.dumps({"rows": rows}))
    assert code == 413 and "bytes" in answer["detail"]


def test_a_tampered_model_is_refused_before_unpickling(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    with open(copy / "model.pkl", "ab") as handle:
        handle.write(b"\0")
    done = subprocess.run([sys.executable, "-m", "flows.serve", "--model", str(copy / "model.pkl"),
                           "--port", str(_free_port())], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "sha256" in done.stderr and "refusing to unpickle" in done.stderr


def test_a_model_needing_a_module_not_installed_is_one_line(trained, tmp_path, monkeypatch):
    """A plug-in family missing where the model is served: a traceback before."""
    import importlib

    import joblib

    from tasks.publish import file_sha256

    (tmp_path / "plugx.py").write_text("class Family:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    joblib.dump(importlib.import_module("plugx").Family(), copy / "model.pkl")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model_sha256"] = file_sha256(copy / "model.pkl")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([sys.executable, "-m", "flows.serve", "--model", str(copy),
                           "--port", str(_free_port())], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {copy} cannot be loaded here (ModuleNotFoundError: No module "
        "named 'plugx'); install the packages and plug-ins it was trained with (versions in "
        "its manifest.json, 'packages')"]


def test_a_model_at_an_fsspec_uri_is_served(trained, server):
    # simplecache:: wraps the local files in a filesystem that is not the local one, as s3://
    # would be: the model is copied, checked and loaded as from object storage.
    uri = f"simplecache::file://{trained[0]}"
    process, url = _start(uri)
    try:
        rows = json.dumps({"rows": _rows(trained[1], 5)})
        assert _post(url, rows) == _post(server, rows)
        with urllib.request.urlopen(url + "/openapi.json", timeout=10) as response:
            assert json.loads(response.read())["info"]["description"].endswith(uri)
    finally:
        process.terminate()
        process.wait(timeout=30)
    done = subprocess.run([sys.executable, "-m", "flows.serve", "--model",
                           "simplecache::file:///nowhere/model", "--port", str(_free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: no model at 'simplecache::file:///nowhere/model'; give a results folder or its "
        "model.pkl"]


def test_the_champion_of_a_registry_is_served_with_its_version(trained, server, tmp_path):
    from tasks.registry import Registry

    registry = Registry(str(tmp_path / "registry"), "labels")
    registry.set_champion(registry.add(str(trained[0])))
    registry.add(str(trained[0]))  # v2, not the champion
    process, url = _start(Path("labels"), "--registry", str(tmp_path / "registry"))
    try:
        with urllib.request.urlopen(url + "/health", timeout=10) as response:
            health = json.loads(response.read())
        assert health["version"] == 1
        assert health["source"] == f"labels v1 of registry {tmp_path / 'registry'}"
        rows = json.dumps({"rows": _rows(trained[1], 5)})
        assert _post(url, rows) == _post(server, rows)
    finally:
        process.terminate()
        process.wait(timeout=30)
    for extra, error in [
        (["--registry", str(tmp_path / "registry"), "--version", "7"],
         "error: model 'labels' has no version 7; versions: [1, 2]"),
        (["--version", "2"], "error: version '2' names a registry version; give --registry "
         "too, or leave it out")]:
        done = subprocess.run([sys.executable, "-m", "flows.serve", "--model", "labels",
                               "--port", str(_free_port()), *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [error]


def test_binds_loopback_unless_told():
    from flows.serve import build_parser

    assert build_parser().parse_args(["--model", "m"]).host == "127.0.0.1"
    assert build_parser().parse_args(["--model", "m", "--host", "0.0.0.0"]).host == "0.0.0.0"



def test_schema_driven_fuzzing_finds_no_5xx(server):
    """schemathesis generates valid and invalid requests from /openapi.json; none may be a 5xx."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", server + "/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", "150", "--mode", "all",
         "--seed", "1", "--no-color"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert counts and int(counts.group(1)) >= 100 and counts.group(1) == counts.group(2)


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--port", "99999", "'99999' is not a port: give 0 to 65535 (0 takes a free one)"),
    ("--port", "-5", "'-5' is not a port"), ("--max-body-bytes", "-1", "give a finite number"),
    ("--body-timeout", "inf", "'inf': give a finite number above 0")])
def test_settings_out_of_bounds_are_one_line(option, value, says, capsys):
    """A port out of range was a 71-line traceback at bind; a negative body limit or timeout
    was taken, and then refused every request."""
    from flows.serve import build_parser

    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--model", "m", option, value])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: argument {option}: ") and says in lines[0]


def test_a_port_in_use_is_one_line(trained, capsys):
    """uvicorn printed its own lines and exited 3 after the model was loaded."""
    from flows.serve import main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        taken.listen()
        assert main(["--model", str(trained[0]), "--port", str(port)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert lines[0].endswith("give another --port (0 takes a free one) or --host")


def test_a_forecasting_model_is_served_with_its_series_ids_and_times(tmp_path):
    import joblib
    import numpy as np

    rng = np.random.default_rng(0)
    frame = pd.concat([pd.DataFrame({
        "store": s, "month": pd.date_range("2015-01-01", periods=48, freq="MS"),
        "sales": 100 + 10 * s + np.cumsum(rng.normal(0, 1, 48))}) for s in (1, 2, 3)],
        ignore_index=True)
    out = tmp_path / "forecast"
    train(data=frame, target="sales", task="forecasting", time_column="month",
          series_id=["store"], horizon=3, include=["theta"], max_trials=1, output=str(out))
    process, url = _start(out)
    try:
        rows = [{"store": 2, "month": "2019-02-01"}, {"store": 1, "month": "2019-01-01"}]
        status, answer = _post(url, json.dumps({"rows": rows}))
        assert status == 200, answer
        assert set(answer) == {"predictions"}  # it had "classes": null and "probabilities": null
        expected = joblib.load(out / "model.pkl").predict(pd.DataFrame(rows))
        assert answer["predictions"] == pytest.approx(list(expected))
        # A time written as digits is read as model.predict reads it (it was a 422).
        status, answer = _post(url, json.dumps({"rows": [{"store": 2, "month": 20190201}]}))
        assert status == 200 and answer["predictions"] == pytest.approx([expected[0]])
        status, answer = _post(url, json.dumps({"rows": [{"store": 9, "month": "2019-01-01"}]}))
        assert status == 422 and "'store': 9" in answer["detail"]
        assert "was not in training" in answer["detail"]
        status, answer = _post(url, json.dumps({"rows": [{"store": 1, "month": "2020-01-01"}]}))
        assert status == 422 and "is not one of the 3" in answer["detail"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_422_lists_the_first_errors_and_counts_the_rest(server, trained):
    rows = [{**row, "température °C": "warm"} for row in _rows(trained[1], 50)]
    code, answer = _post(server, json.dumps({"rows": rows}, ensure_ascii=False))
    assert code == 422 and len(answer["detail"]) == 21, answer
    assert answer["detail"][0]["loc"][:3] == ["body", "rows", "0"]
    last = answer["detail"][-1]
    assert last["type"] == "truncated" and re.fullmatch(r"and \d+ more errors", last["msg"])


def test_a_body_not_sent_as_json_is_415_naming_the_content_type(server, trained):
    body = json.dumps({"rows": _rows(trained[1], 1)})
    code, answer = _post(server, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 415 and "Content-Type: application/json" in answer["detail"]
    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", "/predict", body=body.encode())  # no type at all
    response = connection.getresponse()
    assert response.status == 415 and "(not 'none')" in json.loads(response.read())["detail"]
    connection.close()


def test_a_body_not_in_utf8_is_400_naming_the_byte(server, trained):
    body = json.dumps({"rows": _rows(trained[1], 1)}, ensure_ascii=False)
    assert "é" in body  # the column "température °C"
    code, answer = _post(server, body.encode("latin-1"))
    offset = body.encode("latin-1").index("é".encode("latin-1"))
    assert code == 400 and answer["detail"].startswith(f"the body is not UTF-8 (byte {offset})")
    code, _ = _post(server, body.encode("utf-8"))
    assert code == 200


def test_a_body_shorter_than_its_content_length_is_408_in_time(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n{\"rows\": []}")
        started = time.perf_counter()
        answer = b""
        while not answer.endswith(b"}"):  # the head and the JSON body may come apart
            chunk = raw.recv(65536)
            if not chunk:
                break
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 408") and "Content-Length larger" in answer, answer
    assert time.perf_counter() - started < 25  # the server's limit is 3 s; without it: never
    code, _ = _post(server, json.dumps({"rows": []}))  # and the server still answers
    assert code == 422
