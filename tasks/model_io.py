"""Loading a published model safely: the sha256 in its manifest is checked before unpickling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from tasks.errors import AutoMLInputError
from tasks.publish import file_sha256

__all__ = ["LoadedModel", "load_verified", "read_published_json", "used_columns"]


class LoadedModel:
    """A verified model with its manifest."""

    def __init__(self, model: Any, manifest: dict[str, Any], path: Path) -> None:
        self.model = model
        self.manifest = manifest
        self.path = path
        self.columns: list[str] = list(manifest["feature_columns"])
        self.roles: dict[str, str] = dict(manifest.get("column_roles", {}))
        self.task: str = manifest["task"]

    @property
    def required(self) -> list[str]:
        """The columns rows to score must have: the model's ``required_columns()`` (a column
        its featurizer dropped as empty, constant or ID-like may be left out; a forecaster's are
        its time, series-id and known-future feature columns); every column for a model
        without it."""
        return used_columns(self.model, self.columns)


def used_columns(model: Any, default: Optional[list[str]] = None) -> list[str]:
    """The training columns ``model`` uses: its ``required_columns()`` (a column its featurizer
    dropped as empty, constant or ID-like is not one); for a model without it, ``default``, else
    every column it was fitted on."""
    if hasattr(model, "required_columns"):
        return [str(c) for c in model.required_columns()]
    if default is not None:
        return list(default)
    return [str(c) for c in model.feature_names_in_]


def read_published_json(path: Path) -> dict[str, Any]:
    """A JSON file published beside ``model.pkl`` (manifest, data contract).

    Raises
    ------
    AutoMLInputError
        Naming the file when it is missing or not valid JSON.
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AutoMLInputError(f"no {path.name} beside the model ({path}); publish the model "
                               "again") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AutoMLInputError(f"{path} is not valid JSON ({exc}); publish the model "
                               "again") from None


def load_verified(model: str) -> LoadedModel:
    """Load ``model.pkl`` (a results folder or the file) after checking its sha256.

    Raises
    ------
    AutoMLInputError
        When the file or its manifest is missing, or the hash differs (nothing is unpickled).
    """
    path = Path(model)
    pkl = path / "model.pkl" if path.is_dir() else path
    manifest_path = pkl.with_name("manifest.json")
    if not pkl.is_file():
        raise AutoMLInputError(f"no model at {model!r}; give a results folder or its model.pkl")
    if not manifest_path.is_file():
        raise AutoMLInputError(f"no manifest.json beside {pkl}; it holds the model's sha256")
    manifest = read_published_json(manifest_path)
    actual = file_sha256(pkl)
    if actual != manifest.get("model_sha256"):
        raise AutoMLInputError(
            f"{pkl} does not match the sha256 in its manifest.json ({actual[:12]}... vs "
            f"{str(manifest.get('model_sha256'))[:12]}...); refusing to unpickle it")
    import joblib

    return LoadedModel(joblib.load(pkl), manifest, pkl)
