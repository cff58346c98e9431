"""Ignoring a warning for a while, from several threads at once.

``warnings.catch_warnings`` is not thread-safe: it restores the filter list it found, so two
threads inside it at once can leave one's filter in place for good (an "ignore everything" left
behind by one forecast hid every later warning of the process). Here each filter is added once
while any thread needs it and removed when the last one leaves. Python 3.11 has no per-thread
filters, so another thread's ``catch_warnings`` (scikit-learn's input checks use one) can still
put back a filter of ours after we removed it; each use removes such strays again, and the
filters are kept narrow. The same swap can also take our filter away while a thread is still
inside: a warning that gets past the filters that way is dropped before it is shown (the
warnings module's display step is wrapped once; ``catch_warnings`` does not swap that step).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

__all__ = ["ignoring"]

# A regular-expression comment: the filter matches the texts the message matches, and it is
# told apart from the program's own filters (and ours from each other).
_MARK = "(?#automl-quiet)"
_LOCK = threading.Lock()
_USERS: dict[tuple, int] = {}


def _key(entry: tuple) -> Optional[tuple]:
    """The (category, message, module) of one of our filters; None for another filter."""
    _, message, category, module, _ = entry
    if message is None or not message.pattern.startswith(_MARK):
        return None
    return category, message.pattern[len(_MARK):], module.pattern if module else ""


def _tidy() -> None:
    """Remove our filters that no thread needs now (called under ``_LOCK``)."""
    stray = [e for e in list(warnings.filters) if (k := _key(e)) is not None and not _USERS.get(k)]
    for entry in stray:
        try:
            warnings.filters.remove(entry)
        except ValueError:  # another thread's catch_warnings swapped the list meanwhile
            pass
    if stray:  # as warnings' own functions do after a change: cached decisions are dropped
        getattr(warnings, "_filters_mutated", lambda: None)()


def _module_of(filename: str) -> str:
    """The dotted module name of a source file, as found from the import path."""
    path = os.path.abspath(filename)
    roots = [os.path.abspath(entry or os.curdir) for entry in sys.path if isinstance(entry, str)]
    root = max((r for r in roots if path.startswith(r.rstrip(os.sep) + os.sep)), key=len,
               default=os.path.dirname(path))
    parts = os.path.splitext(os.path.relpath(path, root))[0].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _ignored(message: Any) -> bool:
    """Whether a warning about to be shown is one that a thread inside ``ignoring`` ignores."""
    active = [key for key, users in list(_USERS.items()) if users]
    return any(issubclass(message.category, category)
               and re.match(text, str(message.message), re.IGNORECASE)
               and (not module or re.match(module, _module_of(message.filename)))
               for category, text, module in active)


def _show_unless_ignored(message: Any) -> None:
    if not _ignored(message):
        _SHOW(message)


_SHOW = getattr(warnings, "_showwarnmsg", None)
if _SHOW is not None:
    warnings._showwarnmsg = _show_unless_ignored  # type: ignore[attr-defined]


@contextmanager
def ignoring(category: type[Warning] = Warning, message: str = "",
             module: str = "") -> Iterator[None]:
    """Ignore warnings of ``category`` whose text starts with ``message`` and that are raised
    from a module whose name starts with ``module`` (regular expressions) inside the block, in
    every thread while any is inside. The program's own filters are left as they are.
    """
    key: Any = (category, message, module)
    with _LOCK:
        _USERS[key] = _USERS.get(key, 0) + 1
        if not any(_key(e) == key for e in warnings.filters):
            warnings.filterwarnings("ignore", _MARK + message, category, module)
        _tidy()
    try:
        yield
    finally:
        with _LOCK:
            _USERS[key] -= 1
            _tidy()
