"""Ignoring a warning for a while, from several threads at once.

``warnings.catch_warnings`` is not thread-safe: it restores the filter list it found, so two
threads inside it at once can leave one's filter in place for good (an "ignore everything" left
behind by one forecast hid every later warning of the process). Here each filter is added once
while any thread needs it and removed, alone, when the last one leaves.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ignoring"]

_LOCK = threading.Lock()
_USERS: dict[tuple, int] = {}
_ADDED: dict[tuple, tuple] = {}  # the filter entry this module put in place, by key


@contextmanager
def ignoring(category: type[Warning] = Warning, message: str = "") -> Iterator[None]:
    """Ignore warnings of ``category`` whose text starts with ``message`` (a regular
    expression, case-insensitive) inside the block, in every thread while any is inside.

    A filter the program had already set the same way is left as it was.
    """
    key = (category, message)
    with _LOCK:
        if not _USERS.get(key):
            had = set(warnings.filters)
            warnings.filterwarnings("ignore", message, category)
            if warnings.filters[0] not in had:
                _ADDED[key] = warnings.filters[0]
        _USERS[key] = _USERS.get(key, 0) + 1
    try:
        yield
    finally:
        with _LOCK:
            _USERS[key] -= 1
            entry = _ADDED.pop(key, None) if not _USERS[key] else None
            if entry is not None and entry in warnings.filters:
                warnings.filters.remove(entry)
                # As warnings' own functions do after a change: cached decisions are dropped.
                getattr(warnings, "_filters_mutated", lambda: None)()
