"""Logging filter: a user-input error is reported as its one-line message, without a traceback."""

from __future__ import annotations

import logging

from tasks.errors import AutoMLInputError

__all__ = ["UserErrorFilter"]


class UserErrorFilter(logging.Filter):
    """Drop the traceback from records about an :class:`AutoMLInputError`."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, AutoMLInputError):
            record.exc_info = None
            record.exc_text = None
        return True
