"""The one exception type that means "the user's input or settings are wrong", and a candidate's
timeout. Light to import: the command line's package imports it before Prefect."""

from __future__ import annotations

import argparse
import difflib
import errno
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["AutoMLInputError", "CandidateTimedOut", "OneLineParser", "as_parameters",
           "nearest_existing", "listed", "nearest_names", "parameter_names", "shown",
           "store_errors", "unwritable"]

_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
#: What a message quotes: a command between backticks, or a name or path as ``repr`` shows it
#: (an apostrophe inside a word, ``data's``, opens no quote).
_QUOTED = re.compile(r"`[^`]*`|(?<!\w)'(?:[^'\\]|\\.)*'(?!\w)|(?<!\w)\"(?:[^\"\\]|\\.)*\"(?!\w)")


class AutoMLInputError(ValueError):
    """Bad data or settings, found before any training starts.

    The message is one line that names the column or setting and says what to do. The CLI prints it
    without a traceback and exits non-zero; nothing is written to the output folder.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class CandidateTimedOut(TimeoutError):
    """A candidate stopped at its deadline after ``seconds`` (``args[1]``), raised by
    :func:`tasks.train.evaluate_candidate`; its Prefect task returns it as a result."""

    @property
    def seconds(self) -> float:
        """How long the candidate ran."""
        return float(self.args[1]) if len(self.args) > 1 else 0.0

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error: ...`` line on stderr (exit 2), as
    the CLI's other input errors are, not the whole usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message}; see {self.prog} --help\n")
        raise SystemExit(2)


def as_parameters(message: str, parameters: Iterable[str]) -> str:
    """Return ``message`` with the command-line flags of ``parameters`` named as the flow's
    parameters, for a deployment's or a Python caller's eyes.

    Parameters
    ----------
    message : str
        An error message written for the CLI (``give a larger --time-budget``).
    parameters : iterable of str
        The flow's parameter names (``time_budget``).

    Returns
    -------
    str
        ``"give a larger time_budget"``. Flags of other commands, and anything quoted (a
        command between backticks, a path or a column name in quotes), are left as they are.
    """
    names = set(parameters)

    def named(match: re.Match[str]) -> str:
        name = match.group(1).replace("-", "_")
        return name if name in names else match.group(0)

    parts, end = [], 0
    for quoted in _QUOTED.finditer(message):
        parts += [_FLAG.sub(named, message[end:quoted.start()]), quoted.group(0)]
        end = quoted.end()
    return "".join(parts) + _FLAG.sub(named, message[end:])


@contextmanager
def parameter_names(parameters: Iterable[str], cli: bool) -> Iterator[None]:
    """Re-raise an :class:`AutoMLInputError` with its flags named as ``parameters`` (see
    :func:`as_parameters`), unless the run came from the command line (``cli``)."""
    try:
        yield
    except AutoMLInputError as exc:
        if not cli:
            exc.args = (as_parameters(str(exc), parameters),)
        raise


def listed(values: Iterable[Any], limit: int = 8, show: Callable[[Any], str] = repr) -> str:
    """Return ``values`` for a message: the first ``limit`` shown, then how many more.

    Examples
    --------
    >>> listed(["a", "b", "c"], limit=2)
    "'a', 'b' and 1 more"
    """
    values = list(values)
    text = ", ".join(show(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def shown(value: Any) -> str:
    """Return ``repr(value)`` as the user's data would print it: a numpy scalar as a Python one.

    Parameters
    ----------
    value : object
        A value from the user's data, e.g. a class label.

    Returns
    -------
    str
        ``"1"`` for ``np.int64(1)`` (whose own repr, ``"np.int64(1)"``, reads as code in a
        message), ``"'yes'"`` for ``"yes"``.
    """
    return repr(value.item() if isinstance(value, np.generic) else value)


def nearest_names(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return a ``"did you mean ...?"`` hint for a misspelt column or family name.

    Parameters
    ----------
    name : str
        The name the user gave.
    candidates : iterable of str
        The names that exist.
    n : int, default=3
        How many suggestions at most.

    Returns
    -------
    str
        ``" Did you mean 'a', 'b'?"``, or a list of some available names when nothing is close.
    """
    candidates = [str(c) for c in candidates]
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    if close:
        return " Did you mean " + ", ".join(repr(lowered[c]) for c in close) + "?"
    return f" Available: {listed(candidates)}."


def nearest_existing(path: Path) -> Path:
    """``path`` itself when it exists, else the nearest of its parents that does (``.`` for a
    relative path none of whose parents exists): where making ``path`` would start.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    pathlib.Path
    """
    return next((p for p in [path, *path.parents] if p.exists()), Path("."))


# What a store's client raises when retrying cannot help (by class name: the clients are
# optional): credentials or a region that cannot be found, a credentials file without the
# profile named.
_STORE_SETUP_ERRORS = {"NoCredentialsError", "PartialCredentialsError", "NoRegionError",
                       "ProfileNotFound", "DefaultCredentialsError", "ClientAuthenticationError"}


def _lasting(exc: Exception) -> bool:
    """Whether ``exc`` from a store's client will be raised again by a retry."""
    if isinstance(exc, (PermissionError, FileNotFoundError, NotADirectoryError)):
        return True  # fsspec's clients raise these for access denied and a missing bucket
    if isinstance(exc, OSError) and exc.errno == errno.EINVAL:  # e.g. a bucket name not valid
        return True
    return any(kind.__name__ in _STORE_SETUP_ERRORS for kind in type(exc).__mro__)


@contextmanager
def store_errors(problem: str) -> Iterator[None]:
    """Around an access to a store that may be remote: a failure of its client that a retry
    would meet again (credentials that cannot be found, access denied, a bucket that does not
    exist) becomes one line, ``problem`` (``"data 's3://b/t.csv' cannot be read"``) with the
    error and what to check. One that may pass (a connection reset, a timeout, a 503) is raised
    as it is, so that a task's retries still apply.

    Raises
    ------
    AutoMLInputError
    """
    try:
        yield
    except AutoMLInputError:
        raise
    except Exception as exc:
        if not _lasting(exc):
            raise
        detail = str(exc).splitlines()[0] if str(exc).strip() else "no detail"
        raise AutoMLInputError(f"{problem} ({type(exc).__name__}: {detail}); check the URI, "
                               "that its bucket exists, and the credentials") from None


def unwritable(folder: Path) -> Optional[str]:
    """Why nothing can be written in ``folder``, or None when a folder can be made there and
    removed. A real try: ``os.access`` says yes to root everywhere, even on ``/proc`` or a
    read-only disk.

    Parameters
    ----------
    folder : pathlib.Path
        An existing folder.

    Returns
    -------
    str or None
        The system's reason (``"Read-only file system"`` ...).
    """
    try:
        tempfile.TemporaryDirectory(prefix=".automl-check-", dir=folder).cleanup()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None
