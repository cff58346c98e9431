"""Loading a published model safely: the sha256 in its manifest is checked before unpickling."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import posixpath
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import fsspec
from fsspec.implementations.local import LocalFileSystem

from tasks.errors import AutoMLInputError, store_errors
from tasks.publish import file_sha256
from tasks.registry import Registry

__all__ = ["LoadedModel", "fetch_model", "fetch_published", "fetch_registered", "load_verified",
           "local_path", "read_published_json", "registered_model", "used_columns"]


class LoadedModel:
    """A verified model with its manifest."""

    def __init__(self, model: Any, manifest: dict[str, Any], path: Path,
                 source: Optional[str] = None,
                 contract: Optional[dict[str, Any]] = None) -> None:
        self.model = model
        self.manifest = manifest
        self.path = path
        self.source = source or str(path)  # where it was published: a path or a URI
        self.contract = contract  # data_contract.json, when it was beside the model
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


def read_published_json(path: Path, where: Optional[str] = None) -> dict[str, Any]:
    """A JSON file published beside ``model.pkl`` (manifest, data contract); ``where`` names
    the model in errors (default: the file's path).

    Raises
    ------
    AutoMLInputError
        Naming the file when it is missing or not valid JSON.
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AutoMLInputError(f"no {path.name} beside the model ({where or path}); publish "
                               "the model again") from None
    except (ValueError, UnicodeDecodeError) as exc:
        named = path if where is None else f"{path.name} of {where}"
        raise AutoMLInputError(f"{named} is not valid JSON ({exc}); publish the model "
                               "again") from None


def load_verified(model: str, source: Optional[str] = None) -> LoadedModel:
    """Load ``model.pkl`` (a results folder or the file) after checking its sha256; ``source``
    names where it came from when ``model`` is a local copy (see :func:`fetch_model`).

    Raises
    ------
    AutoMLInputError
        When the file or its manifest is missing, or the hash differs (nothing is unpickled),
        or the model needs a module or class that is not installed.
    """
    path = Path(model)
    pkl = path / "model.pkl" if path.is_dir() else path
    where = source or str(pkl)
    manifest_path = pkl.with_name("manifest.json")
    if not pkl.is_file():
        raise AutoMLInputError(f"no model at {source or model!r}; give a results folder or its "
                               "model.pkl")
    if not manifest_path.is_file():
        raise AutoMLInputError(f"no manifest.json beside {where}; it holds the model's sha256")
    manifest = read_published_json(manifest_path, source)
    actual = file_sha256(pkl)
    if actual != manifest.get("model_sha256"):
        raise AutoMLInputError(
            f"{where} does not match the sha256 in its manifest.json ({actual[:12]}... vs "
            f"{str(manifest.get('model_sha256'))[:12]}...); refusing to unpickle it")
    import joblib

    try:
        model = joblib.load(pkl)
    except (ImportError, AttributeError, EOFError, TypeError, ValueError,
            pickle.UnpicklingError) as exc:  # a module or class missing here, or a bad file
        raise AutoMLInputError(
            f"{where} cannot be loaded here ({type(exc).__name__}: {exc}); install the packages "
            "and plug-ins it was trained with (versions in its manifest.json, 'packages')"
        ) from None
    contract_path = pkl.with_name("data_contract.json")
    contract = (read_published_json(contract_path, source) if contract_path.is_file() else None)
    return LoadedModel(model, manifest, pkl, source, contract)


def local_path(uri: str) -> Optional[Path]:
    """The local file ``uri`` names (a path or a ``file://`` URI); None for another fsspec
    URI.

    Raises
    ------
    ValueError, ImportError
        From fsspec, for a protocol it does not know or whose package is not installed.
    """
    fs, path = fsspec.core.url_to_fs(uri)
    return Path(path) if isinstance(fs, LocalFileSystem) else None


def fetch_registered(entry: Registry, version: str | int, into: str) -> tuple[int, str]:
    """Copy version ``version`` (a number, ``v2``, or ``"champion"``) of ``entry``'s model into
    the folder ``into``; its number, and where it came from as a message names it
    (``"churn v2 of registry s3://bucket/models"``).

    Raises
    ------
    AutoMLInputError
        When the model or the version does not exist, or there is no champion.
    """
    number = entry.number(version)
    entry.fs.get(entry.version_path(number).rstrip("/") + "/", into, recursive=True)
    return number, f"{entry.name} v{number} of registry {entry.location}"


@contextlib.contextmanager
def registered_model(entry: Registry, version: str | int = "champion"
                     ) -> Iterator[tuple[LoadedModel, int]]:
    """Version ``version`` of ``entry``'s model, verified and loaded from a temporary copy, and
    its number; the copy (``loaded.path.parent``, with the version's other files) lasts until
    the block ends.

    Raises
    ------
    AutoMLInputError
        As :func:`fetch_registered` and :func:`load_verified`.
    """
    with tempfile.TemporaryDirectory(prefix="automl-model-") as local:
        number, source = fetch_registered(entry, version, local)
        yield load_verified(local, source=source), number


def fetch_published(model: str, registry: Optional[str], version: str | int,
                    into: str) -> tuple[str, Optional[int], str]:
    """Where :func:`load_verified` finds the model that scoring is given: ``model`` itself (a
    path or URI, see :func:`fetch_model`) or, with ``registry``, version ``version`` of the
    model named ``model`` there, copied into ``into``. Also its registry version (None without
    a registry) and where it came from.

    Raises
    ------
    AutoMLInputError
        As :func:`fetch_model` and :func:`fetch_registered`; and for a ``version`` other than
        ``"champion"`` without a registry.
    """
    if registry:
        number, source = fetch_registered(Registry(registry, model), version, into)
        return into, number, source
    if version != "champion":
        raise AutoMLInputError(f"version {version!r} names a registry version; give --registry "
                               "too, or leave it out")
    return fetch_model(model, into), None, model


def fetch_model(model: str, into: str) -> str:
    """Where ``load_verified`` finds ``model``: a local path (or ``file://`` URI) as it is; a
    results folder or ``.pkl`` file at another fsspec URI, copied into the folder ``into`` with
    the manifest and data contract published beside it.

    Raises
    ------
    AutoMLInputError
        When the filesystem is unknown or not installed, or there is no model at ``model``.
    """
    try:
        local = local_path(model)
        if local is not None:
            return model if fsspec.core.split_protocol(model)[0] is None else str(local)
        fs, path = fsspec.core.url_to_fs(model)
        with store_errors(f"model {model!r} cannot be read"):
            fs.exists(path)  # isfile says False for credentials not found or access denied
        is_file = path.endswith(".pkl") and fs.isfile(path)
        folder, name = posixpath.split(path) if is_file else (path.rstrip("/"), "model.pkl")
        if not fs.isfile(f"{folder}/{name}"):
            raise AutoMLInputError(f"no model at {model!r}; give a results folder or its "
                                   "model.pkl")
        for part in (name, "manifest.json", "data_contract.json"):
            if fs.isfile(f"{folder}/{part}"):  # a missing one is named by load_verified
                fs.get(f"{folder}/{part}", os.path.join(into, part))
    except AutoMLInputError:
        raise
    except (ImportError, ValueError, OSError) as exc:
        raise AutoMLInputError(f"cannot open model {model!r}: "
                               f"{str(exc).splitlines()[0]}") from None
    return os.path.join(into, name)
