"""Ignoring a warning for a while, from several threads at once.

``warnings.catch_warnings`` is not thread-safe: it restores the filter list it found, so two
threads inside it at once can leave one's filter in place for good (an "ignore everything" left
behind by one forecast hid every later warning of the process). Here each filter is added once
while any thread needs it and removed when the last one leaves. Python 3.11 has no per-thread
filters, so another thread's ``catch_warnings`` (scikit-learn's input checks use one) can still
put back a filter of ours after we removed it; each use removes such strays again, and the
filters are kept narrow.
"""

from __future__ import annotations

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
