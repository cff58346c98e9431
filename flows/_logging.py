"""Logging filters of the CLI: a user-input error is reported as its one-line message, without a
traceback; the temporary API's shutdown does not print SQLAlchemy's cancelled-connection trace."""

from __future__ import annotations

import asyncio
import logging

from tasks.errors import AutoMLInputError

__all__ = ["ShutdownCancelFilter", "UserErrorFilter"]


class UserErrorFilter(logging.Filter):
    """Drop the traceback from records about an :class:`AutoMLInputError`."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, AutoMLInputError):
            record.exc_info = None
            record.exc_text = None
        return True


class ShutdownCancelFilter(logging.Filter):
    """Drop SQLAlchemy pool errors caused by ``asyncio.CancelledError``.

    When the CLI stops Prefect's temporary API, its event loop cancels the database connections
    still open, and SQLAlchemy logs "Exception during reset or similar" with the traceback
    (PrefectHQ/prefect#16504). Nothing is lost: the runs were recorded before the stop. Pool
    errors with any other cause are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (record.name.startswith("sqlalchemy.pool")
                    and isinstance(exc, asyncio.CancelledError))
