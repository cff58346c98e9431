"""Write the results folder of DESIGN.md: staged, then moved in with manifest.json last."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import fsspec
import joblib
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from models import ENTRY_POINT_GROUP
from tasks.errors import AutoMLInputError, nearest_existing, unwritable
from tasks.types import CandidateResult, json_safe

__all__ = ["check_output_folder", "file_sha256", "leaderboard_frame", "publish_results",
           "publish_task"]

_PACKAGES = ("prefect", "pandas", "pyarrow", "scikit-learn", "xgboost-cpu", "xgboost",
             "statsmodels", "great-expectations", "joblib", "numpy", "prefect-automl")


def check_output_folder(output: str) -> Path:
    """Fail early, before training, when the results cannot be written to ``output``: a file,
    under a file, not writable, not on this machine's disk, or inside a model registry.

    Returns
    -------
    pathlib.Path
        The folder, absolute.
    """
    protocol, local = fsspec.core.split_protocol(output)
    if protocol not in (None, "file", "local"):
        raise AutoMLInputError(
            f"output {output!r} is not a folder on this machine: the results are written to "
            "local disk; give a local --output, and --registry with the URI to keep the model "
            "in object storage")
    path = Path(local).expanduser().resolve()
    inside = next((p for p in [path, *path.parents]
                   if (p / "champion.json").is_file() or (p / "decisions.jsonl").is_file()), None)
    if inside is not None:
        raise AutoMLInputError(
            f"output {output!r} is inside the model registry folder {str(inside)!r}, whose "
            "versions only registering writes; give a results folder outside it")
    if path.exists() and not path.is_dir():
        raise AutoMLInputError(f"output {output!r} is a file; give a folder for the results")
    parent = nearest_existing(path)
    if not parent.is_dir():
        raise AutoMLInputError(f"output {output!r} is under {str(parent)!r}, which is a file; "
                               "give a folder for the results")
    why = unwritable(parent)
    if why:
        raise AutoMLInputError(f"output folder {output!r} is not writable ({why}); choose another "
                               "--output")
    return path


def leaderboard_frame(results: Sequence[CandidateResult], metric: str,
                      greater_is_better: bool, published: Optional[int] = None) -> pd.DataFrame:
    """One row per candidate, best first; subsample-only, failed and timed-out candidates last.
    ``published`` is the id of the one in ``model.pkl`` (``published`` column), which need not
    rank first: the check against the baseline may keep the defaults."""
    rows = []
    for r in results:
        rows.append({
            "id": r.spec.id, "family": r.spec.family,
            "config": json.dumps(r.spec.config, sort_keys=True, default=str),
            "status": r.status, "published": r.spec.id == published,
            metric: r.metrics.get(metric, float("nan")),
            **{f"valid_{k}": v for k, v in r.metrics.items()},
            "fraction": r.spec.fraction,
            "fit_seconds": round(r.fit_seconds, 3),
            "predict_seconds_per_1000": round(r.predict_seconds_per_1000, 5),
            # No model measured (a failure, a forecaster): an empty cell, not a size of 0.
            "model_bytes": r.model_bytes or None, "finished_seconds": r.finished_seconds,
            "cached": r.cached, "error": r.error,
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["model_bytes"] = frame["model_bytes"].astype("Int64")
    if any(r.temperature != 1.0 for r in results):
        frame.insert(frame.columns.get_loc("fraction"), "temperature",
                     [r.temperature for r in results])
    frame["_ok"] = (frame["status"] == "ok") & (frame["fraction"] >= 1.0)
    frame = frame.sort_values(["_ok", metric, "id"], ascending=[False, not greater_is_better, True],
                              na_position="last").drop(columns="_ok")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a model.pkl depends on: the project's and those of
    the model-family plug-ins (``automl.models`` entry points)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.dist is not None:
            versions.setdefault(entry.dist.name, entry.dist.version)
    return versions


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, payload: Any) -> None:
    # allow_nan=False: a NaN would be written as the bare word NaN, which is not JSON.
    path.write_text(json.dumps(json_safe(payload), indent=2, sort_keys=True, default=str,
                               allow_nan=False) + "\n")


def publish_results(
    output: str,
    model: Any,
    leaderboard: pd.DataFrame,
    metrics: dict[str, Any],
    manifest: dict[str, Any],
    data_contract: dict[str, Any],
    featurization: pd.DataFrame | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write the results folder; an earlier model there stays whole until the new one is complete.

    ``extra_files`` (name -> content: charts, feature importance, the report) are written with
    the rest.

    Every file is written into a staging folder beside the output, then moved in with
    ``os.replace`` (atomic per file): model.pkl first, manifest.json (which holds model.pkl's
    sha256 and lists the files published) last. A failure before the moves leaves the folder
    untouched. Then the files an earlier run published there (by its manifest's list) and this
    one did not are removed, so that no chart of another model is left beside this one, and so
    are ``flows.explain``'s ``feature_importance_candidate_N.csv`` (N was an earlier run's
    candidate); other files in the folder are kept.

    Returns
    -------
    pathlib.Path
        The path of model.pkl.
    """
    target = check_output_folder(output)
    target.mkdir(parents=True, exist_ok=True)
    earlier = _published_files(target / "manifest.json") | {
        p.name for p in target.glob("feature_importance_candidate_*.csv")}
    staging = Path(tempfile.mkdtemp(prefix=".automl-staging-", dir=target))
    try:
        joblib.dump(model, staging / "model.pkl")
        leaderboard.to_csv(staging / "leaderboard.csv", index=False)
        _write_json(staging / "metrics.json", metrics)
        _write_json(staging / "data_contract.json", data_contract)
        order = ["model.pkl", "leaderboard.csv", "metrics.json", "data_contract.json"]
        if featurization is not None:
            featurization.to_csv(staging / "featurization.csv", index=False)
            order.append("featurization.csv")
        for name, content in (extra_files or {}).items():
            (staging / name).write_bytes(content)
            order.append(name)
        manifest = {**manifest, "model_sha256": file_sha256(staging / "model.pkl"),
                    "packages": package_versions(), "files": sorted([*order, "manifest.json"]),
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_json(staging / "manifest.json", manifest)
        for name in [*order, "manifest.json"]:
            os.replace(staging / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for name in earlier - set(manifest["files"]):
        (target / name).unlink(missing_ok=True)
    return target / "model.pkl"


def _published_files(manifest: Path) -> set[str]:
    """The files an earlier run listed in its manifest (plain names only: nothing outside the
    folder is ever removed); none when there is no readable list."""
    try:
        names = json.loads(manifest.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {n for n in names
            if isinstance(n, str) and n == Path(n).name and n not in {"", ".", ".."}}


@task(name="publish", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def publish_task(output: str, model: Any, leaderboard: pd.DataFrame, metrics: dict[str, Any],
                 manifest: dict[str, Any], data_contract: dict[str, Any],
                 featurization: pd.DataFrame | None = None,
                 extra_files: dict[str, bytes] | None = None) -> str:
    """Write the results folder."""
    return str(publish_results(output, model, leaderboard, metrics, manifest, data_contract,
                               featurization, extra_files))
