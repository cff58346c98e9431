"""A model registry on any fsspec location: numbered versions and an atomic champion pointer.

Layout under ``REGISTRY/NAME/``::

    v1/ v2/ ...       a copy of each published results folder (model.pkl, manifest.json, ...)
    champion.json     {"version": N, ...}: the version that scores by default
    decisions.jsonl   one line per retraining (both scores, the rows, the margin, the gain's
                      standard error, promoted or not) and per rollback by hand

A version published for the registry also holds ``training_rows.npy``: a hash of each row it
trained on (the columns the model uses, and the label), so that the next run can score it only
on rows it has not seen (see :func:`tasks.row_hashes.row_hashes`).

A version folder is copied in under a temporary name and renamed when complete (an object store,
which cannot rename a folder, copies its files to the number, the manifest last: a version
counts only with its manifest); the champion pointer is written to a temporary file and renamed
over the old one, so a reader always sees a whole version and a whole pointer. A failed or
worse retraining never moves the pointer.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import fsspec
from fsspec.implementations.local import LocalFileSystem

from tasks.decisions import Decision, decided_now
from tasks.errors import AutoMLInputError, listed, nearest_existing, store_errors, unwritable
from tasks.types import json_safe

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, as on object stores
    fcntl = None

__all__ = ["TRAINING_ROWS", "Registry", "RegistryBusy"]

TRAINING_ROWS = "training_rows.npy"
LOCK_WAIT_SECONDS = 60.0  # the lock is held for milliseconds: longer means a stuck process

_VERSION = re.compile(r"^v(\d+)$")
# Object stores whose first path part is a bucket, which making folders would create.
_BUCKET_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}


def _published_files(folder: Path) -> list[str]:
    """The files of the model published in ``folder``: those its manifest lists (every file
    for a manifest without the list, or not readable).

    Raises
    ------
    AutoMLInputError
        When the manifest lists a file that is not in the folder (or a path out of it).
    """
    try:
        listed = json.loads((folder / "manifest.json").read_text()).get("files")
    except (ValueError, AttributeError):
        listed = None
    if not listed:
        return sorted(p.name for p in folder.iterdir()
                      if p.is_file() and not p.name.startswith("."))
    for name in listed:
        if Path(name).name != name or not (folder / name).is_file():
            raise AutoMLInputError(f"{str(folder)!r}: its manifest.json lists {name!r}, which "
                                   "is not a file there; publish the model again")
    return sorted(listed)


class RegistryBusy(AutoMLInputError):
    """Another process held the registry's promotion lock for longer than the wait allows."""


class Registry:
    """Numbered model versions with a champion, in a folder or at any fsspec URI.

    Parameters
    ----------
    location : str
        Local folder or fsspec URI (``s3://bucket/models``, ``memory://...``).
    name : str
        The model's name (a folder under ``location``).
    """

    def __init__(self, location: str, name: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise AutoMLInputError(f"model name {name!r}: start with a letter or digit, then "
                                   "use letters, digits, '.', '_' or '-'")
        try:
            self.fs, root = fsspec.core.url_to_fs(location)
            is_file = self.fs.isfile(root)
        except (ImportError, ValueError) as exc:
            raise AutoMLInputError(f"cannot open registry {location!r}: "
                                   f"{str(exc).splitlines()[0]}") from None
        if is_file:
            raise AutoMLInputError(f"registry {location!r} is a file; give a folder or URI")
        self.location = location
        self.root = f"{root.rstrip('/')}/{name}"
        self.name = name

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def check_exists(self) -> None:
        """Raise when the registry holds no model of this name (naming those it holds), or
        cannot be read."""
        with store_errors(f"registry {self.location!r} cannot be read"):
            if self.fs.exists(self.root):
                return
        parent = self.root.rsplit("/", 1)[0]
        names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(parent, detail=False)
                       if self.fs.isdir(p)) if self.fs.isdir(parent) else []
        held = f"it holds {listed(names, 10, str)}" if names else "it holds no models"
        raise AutoMLInputError(f"registry {self.location!r} has no model {self.name!r} ({held}); "
                               "check --registry and the model name")

    def check_writable(self) -> None:
        """That versions can be written: on a local disk, that the model's folder can be made;
        elsewhere, that an empty object can be written under it and removed (a bucket that
        does not exist, which registering would otherwise create, or access denied; on a store
        with folders, the model's folder is made first).

        Raises
        ------
        AutoMLInputError
            When the folder or one above it is a file, or it cannot be written.
        """
        if not isinstance(self.fs, LocalFileSystem):
            probe = self._path(f".write-check-{uuid.uuid4().hex}")
            protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) else set(
                self.fs.protocol)
            with store_errors(f"registry {self.location!r} cannot be written"):
                if not protocols & _BUCKET_STORES:  # folders that exist (sftp, smb, memory)
                    self.fs.makedirs(self.root, exist_ok=True)
                self.fs.pipe(probe, b"")
                self.fs.rm(probe)
            return
        existing = nearest_existing(Path(self.root))
        if not existing.is_dir():
            raise AutoMLInputError(f"registry {self.location!r} is under {str(existing)!r}, "
                                   "which is a file; give a folder")
        why = unwritable(existing)
        if why:
            raise AutoMLInputError(f"registry {self.location!r} cannot be written here "
                                   f"({str(existing)!r}: {why}); give one you can write to")

    def versions(self) -> list[int]:
        """The complete versions, oldest first."""
        # Object stores' filesystems (s3fs, gcsfs) keep listings: read what other runs wrote.
        self.fs.invalidate_cache(self.root)
        return sorted(n for n in self._numbers()
                      if self.fs.exists(f"{self.version_path(n)}/manifest.json"))

    def _numbers(self) -> list[int]:
        """The numbers of every version folder, complete or not."""
        if not self.fs.exists(self.root):
            return []
        names = (entry.rstrip("/").rsplit("/", 1)[-1]
                 for entry in self.fs.ls(self.root, detail=False))
        return [int(match.group(1)) for match in map(_VERSION.match, names) if match]

    def version_path(self, version: int) -> str:
        """Where version ``version`` lives."""
        return self._path(f"v{version}")

    def add(self, results_folder: str) -> int:
        """Copy a published results folder in as the next version; return its number.

        Only the files its manifest lists are copied (what else is in the folder, such as
        predictions scored into it, belongs to no version); the manifest comes last.
        """
        source = Path(results_folder)
        if not (source / "manifest.json").is_file():
            raise AutoMLInputError(f"{results_folder!r} holds no published model")
        names = sorted(_published_files(source), key=lambda n: n == "manifest.json")
        self.fs.makedirs(self.root, exist_ok=True)
        staging = self._path(f".staging-{uuid.uuid4().hex}")
        self.fs.makedirs(staging, exist_ok=True)
        try:
            for name in names:
                self.fs.put_file(str(source / name), f"{staging}/{name}")
            return self._claim(staging, names)
        finally:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)

    def _claim(self, staging: str, names: list[str]) -> int:
        """Move ``staging`` (holding ``names``, the manifest last) in as the next version.

        On a local disk the rename is atomic and refuses a number another run took meanwhile,
        so runs registering at once get a version each. Object stores cannot rename a folder:
        the files are copied on the store, the manifest last, so the version is listed only
        when whole; two runs registering there at once may race. The number is one no folder
        has, whole or not (a copy cut short keeps its number).
        """
        self.fs.invalidate_cache(self.root)
        version = max(self._numbers(), default=0) + 1
        if not isinstance(self.fs, LocalFileSystem):
            for name in names:
                self.fs.copy(f"{staging}/{name}", f"{self.version_path(version)}/{name}")
            return version
        while True:
            try:
                os.rename(staging, self.version_path(version))
                return version
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
            version = max(max(self._numbers(), default=0), version) + 1

    def champion(self) -> Optional[int]:
        """The champion version (None before the first promotion).

        Raises
        ------
        AutoMLInputError
            When ``champion.json`` cannot be read or names a version that is not there.
        """
        path = self._path("champion.json")
        self.fs.invalidate_cache(path)
        if not self.fs.exists(path):
            return None
        fix = f"point it at a version with `python -m flows.registry --registry " \
              f"{self.location} --name {self.name} rollback N`"
        try:
            with self.fs.open(path, "r") as handle:
                version = int(json.load(handle)["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AutoMLInputError(f"{path} cannot be read ({type(exc).__name__}: {exc}); "
                                   f"{fix}") from None
        if version not in self.versions():
            raise AutoMLInputError(f"{path} names version {version}, which is not there "
                                   f"(versions: {self.versions()}); {fix}")
        return version

    @contextlib.contextmanager
    def promotion_lock(self, wait: Optional[float] = None) -> Iterator[None]:
        """Hold while reading the champion and replacing it: on a local disk an exclusive lock
        (``.lock``) that other runs promoting wait for; elsewhere nothing.

        Raises
        ------
        RegistryBusy
            When another process holds the lock for more than ``wait`` seconds (default
            ``LOCK_WAIT_SECONDS``).
        """
        if fcntl is None or not isinstance(self.fs, LocalFileSystem):
            yield
            return
        self.fs.makedirs(self.root, exist_ok=True)
        path = self._path(".lock")
        # Read-only is enough for flock, so a registry shared by a group needs no write access.
        handle = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        wait = LOCK_WAIT_SECONDS if wait is None else wait
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RegistryBusy(
                            f"the registry lock {path} was held by another process for more "
                            f"than {wait:g} s (a stuck run or rollback of {self.name!r}?)"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(handle)  # closing releases the lock

    def set_champion(self, version: int, note: str = "") -> None:
        """Point the champion at ``version`` (atomic rename of a complete pointer file)."""
        if version not in self.versions():
            raise AutoMLInputError(f"model {self.name!r} has no version {version}; versions: "
                                   f"{self.versions()}")
        staging = self._path(f".champion-{uuid.uuid4().hex}.json")
        with self.fs.open(staging, "w") as handle:
            json.dump({"version": version, "note": note, "set_at": decided_now()}, handle)
        self.fs.mv(staging, self._path("champion.json"))

    def record(self, decision: Decision) -> None:
        """Append a decision to ``decisions.jsonl`` (and keep it beside the challenger)."""
        line = self._append(decision)
        with self.fs.open(f"{self.version_path(decision.challenger_version)}/promotion.json",
                          "w") as handle:
            handle.write(line + "\n")

    def roll_back(self, version: int) -> Decision:
        """Make ``version`` the champion by hand, under the promotion lock, and append that
        to ``decisions.jsonl`` (``reason`` "rolled back by hand"; no scores)."""
        with self.promotion_lock():
            try:
                previous = self.champion()
            except AutoMLInputError:  # a broken pointer: what rollback is for mending
                previous = None
            self.set_champion(version, note="rolled back by hand")
        decision = Decision(self.name, version, previous, "", math.nan, None, 0.0, True,
                            "rolled back by hand", decided_now())
        self._append(decision)
        return decision

    def _append(self, decision: Decision) -> str:
        """Append ``decision`` to ``decisions.jsonl`` as one JSON line, and return the line."""
        # A score that is not a number (r2 on one row, say) is null: the file stays JSON.
        line = json.dumps(json_safe(decision.to_dict()), allow_nan=False)
        log = self._path("decisions.jsonl")
        if isinstance(self.fs, LocalFileSystem):  # one appended write: runs at once keep theirs
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        else:  # object stores cannot append: read and rewrite
            previous = ""
            if self.fs.exists(log):
                with self.fs.open(log, "r") as handle:
                    previous = handle.read()
            with self.fs.open(log, "w") as handle:
                handle.write(previous + line + "\n")
        return line

    def resolve(self, version: str | int = "champion") -> str:
        """The folder of ``version`` (see :meth:`number`), local or remote."""
        return self.version_path(self.number(version))

    def number(self, version: str | int = "champion") -> int:
        """The number of ``version``: a number (``2`` or ``"v2"``) or ``"champion"``.

        Raises
        ------
        AutoMLInputError
            When there is no such version, or no champion yet.
        """
        self.check_exists()
        if str(version) == "champion":
            champion = self.champion()
            if champion is None:
                raise AutoMLInputError(f"model {self.name!r} has no champion yet")
            return champion
        match = re.fullmatch(r"v?(\d+)", str(version).strip())
        if match is None:
            raise AutoMLInputError(f"version {version!r}: give a number such as 2 (or v2), or "
                                   "'champion'")
        number = int(match.group(1))
        if number not in self.versions():
            raise AutoMLInputError(f"model {self.name!r} has no version {number}; versions: "
                                   f"{self.versions()}")
        return number
