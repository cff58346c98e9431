"""Object storage end to end, on a real S3 API over HTTP (moto's server): training data read
from S3, a registry on S3 that retraining promotes into, scoring from its champion into S3,
rollback, and the model server following the champion there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import fsspec
import pandas as pd
import pytest

from flows.registry import main as registry_main
from flows.score import score
from flows.train import train
from tasks.errors import AutoMLInputError
from tasks.registry import Registry
from tests.conftest import awkward_classification, run_side_by_side
from tests.test_follow import _health
from tests.test_serve import ROOT, _start

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def s3_folder(s3_bucket) -> str:
    """A prefix of its own in the bucket, for one test."""
    return f"{s3_bucket}/{uuid.uuid4().hex[:8]}"


def test_retraining_from_s3_into_a_registry_on_s3(s3_folder, tmp_path, capsys):
    frame = awkward_classification(n=600)
    first, grown, registry = (f"{s3_folder}/first.csv", f"{s3_folder}/grown",
                              f"{s3_folder}/models")
    with fsspec.open(first, "w") as handle:
        frame.iloc[:300].to_csv(handle, index=False)
    for part, rows in enumerate((frame.iloc[:300], frame.iloc[300:])):  # a folder of Parquet
        rows.to_parquet(f"{grown}/part-{part}.parquet")
    common = ["--target", "label", "--task", "classification", "--registry", registry,
              "--model-name", "customers", "--max-trials", "1", "--seed", "1"]
    done = subprocess.run([sys.executable, "-m", "flows.train", "--data", first, *common,
                           "--include", "linear", "--output", str(tmp_path / "run1")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    entry = Registry(registry, "customers")
    assert entry.versions() == [1] and entry.champion() == 1
    held = sorted(p.rsplit("/", 1)[-1] for p in entry.fs.ls(entry.version_path(1), detail=False))
    assert held == sorted(json.loads((tmp_path / "run1" / "manifest.json").read_text())["files"]
                          + ["promotion.json"])
    assert "training_rows.npy" in held

    retrained = train(data=grown, target="label", task="classification", registry=registry,
                      model_name="customers", max_trials=1, seed=1,
                      include=["hist_gradient_boosting"], output=str(tmp_path / "run2"))
    decision = retrained.promotion
    assert decision["challenger_version"] == 2 and decision["champion_version"] == 1
    assert decision["rows"] == frame["label"].iloc[300:].notna().sum()  # the new rows only
    assert entry.versions() == [1, 2] and entry.champion() == (2 if decision["promoted"] else 1)
    with fsspec.open(f"{registry}/customers/decisions.jsonl", "r") as handle:
        assert [json.loads(line)["challenger_version"] for line in handle] == [1, 2]

    assert registry_main(["--registry", registry, "--name", "customers", "rollback", "2"]) == 0
    assert registry_main(["--registry", registry, "--name", "customers", "list"]) == 0
    assert "* v2" in capsys.readouterr().out
    new_rows = f"{s3_folder}/new.csv"
    with fsspec.open(new_rows, "w") as handle:
        awkward_classification(n=25, seed=7).drop(columns="label").to_csv(handle, index=False)
    scored = score(model="customers", registry=registry, data=new_rows,
                   output=f"{s3_folder}/scored/predictions.parquet")
    assert scored.version == 2 and scored.scored == 25
    predictions = pd.read_parquet(f"{s3_folder}/scored/predictions.parquet")
    assert len(predictions) == 25 and {"prediction", "proba_yes"} <= set(predictions.columns)

    process, url = _start("customers", "--registry", registry, "--poll-seconds", "0.3")
    try:
        assert _health(url)["version"] == 2
        assert registry_main(["--registry", registry, "--name", "customers", "rollback",
                              "1"]) == 0
        deadline = time.time() + 60
        while _health(url)["version"] != 1 and time.time() < deadline:
            time.sleep(0.2)
        assert _health(url)["source"] == f"customers v1 of registry {registry}"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_registry_whose_bucket_does_not_exist_stops_the_run_before_training(s3_bucket,
                                                                              tmp_path):
    """Registering created the bucket, after training: a mistyped name became a new bucket."""
    missing = "s3://automl-tests-no-such-bucket/models"
    with pytest.raises(AutoMLInputError, match=(
            r"^registry 's3://automl-tests-no-such-bucket/models' cannot be written "
            r"\(FileNotFoundError: .+\); check the URI, that its bucket exists, and the "
            r"credentials$")):
        train(data=awkward_classification(n=60), target="label", task="classification",
              registry=missing, max_trials=1, output=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    s3 = fsspec.filesystem("s3")
    s3.invalidate_cache()
    assert not s3.exists("automl-tests-no-such-bucket")
    Registry(f"{s3_bucket}/writable", "m").check_writable()  # and leaves nothing behind
    assert not s3.exists(f"{s3_bucket}/writable")


def test_without_credentials_data_and_registry_on_s3_are_one_line(s3_folder, tmp_path):
    """Credentials that cannot be found ended the run as 'run failed: NoCredentialsError'."""
    with fsspec.open(f"{s3_folder}/t.csv", "w") as handle:
        awkward_classification(n=60).to_csv(handle, index=False)
    awkward_classification(n=60).head(5).to_csv(tmp_path / "t.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=os.environ["AWS_ENDPOINT_URL"], AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"))
    fix = "; check the URI, that its bucket exists, and the credentials"
    cases = [
        (["flows.train", "--data", f"{s3_folder}/t.csv", "--target", "label", "--task",
          "classification", "--output", str(tmp_path / "out")], f"data '{s3_folder}/t.csv'"),
        (["flows.registry", "--registry", f"{s3_folder}/models", "--name", "m", "list"],
         f"registry '{s3_folder}/models'"),
        (["flows.score", "--model", f"{s3_folder}/published", "--data", str(tmp_path / "t.csv"),
          "--output", str(tmp_path / "p.csv")], f"model '{s3_folder}/published'"),
    ]
    runs = run_side_by_side(  # each with a Prefect home of its own: each may start a local API
        [[sys.executable, "-m", *command] for command, _ in cases],
        [{**env, "PREFECT_HOME": str(tmp_path / f"home{k}")} for k in range(len(cases))],
        str(ROOT), timeout=120)
    for (_, problem), done in zip(cases, runs):
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [
            f"error: {problem} cannot be read (NoCredentialsError: Unable to locate "
            f"credentials){fix}"]
    assert not (tmp_path / "out").exists()
