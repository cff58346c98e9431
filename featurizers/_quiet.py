"""Ignoring a warning for a while in one thread, while other threads run.

Python 3.11 has one warning filter list for the whole process, and ``warnings.catch_warnings``
is not thread-safe: it restores the list it found, so two threads inside it at once can leave
one's filter in place for good (an "ignore everything" left behind by one forecast hid every
later warning of the process), and a filter added for a block applies to every thread while it
is in place. Here each kind of ignored warning has one "ignore" filter whose category is a
class that only the threads inside :func:`ignoring` for it see as matching: the filter stays in
the list once added and matches nothing in any other thread.

The list itself is swapped all the time by other threads (pandas' dtype checks, statsmodels'
optimizers and scikit-learn's joblib workers all enter ``catch_warnings``), and one of them that
was entered before our filter was added puts back a list without it. A warning that gets past
the filters that way is dropped before it is shown, if the thread showing it ignores it: the
warnings module's display step, ``warnings._showwarnmsg``, is wrapped once (``catch_warnings``
does not swap that step; where it is missing, the filters alone apply).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

__all__ = ["ignoring"]

_LOCK = threading.Lock()
_INSIDE = threading.local()  # .counts: {key: how many blocks of this thread ignore it}


def _counts() -> dict[tuple, int]:
    if not hasattr(_INSIDE, "counts"):
        _INSIDE.counts = {}
    return _INSIDE.counts


class _ThreadScoped(type):
    """The type of a warning category that matches only in the threads ignoring it now."""

    key: tuple
    real: type[Warning]

    def __subclasscheck__(cls, subclass: type) -> bool:
        return bool(_counts().get(cls.key)) and issubclass(subclass, cls.real)


@lru_cache(maxsize=None)
def _category(key: tuple) -> type[Warning]:
    """The filter category of ``key`` (one class per key, so that its filter is added once)."""
    real = key[0]
    return _ThreadScoped(f"Ignored{real.__name__}", (real,), {"key": key, "real": real})


def _module_of(filename: str) -> str:
    """The dotted module name of a source file, as found from the import path."""
    path = os.path.abspath(filename)
    roots = [os.path.abspath(entry or os.curdir) for entry in sys.path if isinstance(entry, str)]
    root = max((r for r in roots if path.startswith(r.rstrip(os.sep) + os.sep)), key=len,
               default=os.path.dirname(path))
    parts = os.path.splitext(os.path.relpath(path, root))[0].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _ignored(message: Any) -> bool:
    """Whether this thread ignores a warning about to be shown."""
    active = [key for key, inside in list(_counts().items()) if inside]
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
    this thread only. The program's own filters are left as they are, and rank after ours when
    they turn warnings into errors.
    """
    key: Any = (category, message, module)
    scoped = _category(key)
    counts = _counts()
    counts[key] = counts.get(key, 0) + 1
    with _LOCK:
        filters = warnings.filters
        place = next((i for i, entry in enumerate(filters) if entry[2] is scoped), None)
        # Moved to the front (rarely: each change of the list makes "default" warnings show
        # again) when an "error" filter added since would raise the warning before it is shown.
        if place is None or any(entry[0] == "error" for entry in filters[:place]):
            warnings.filterwarnings("ignore", message, scoped, module)
    try:
        yield
    finally:
        counts[key] -= 1
