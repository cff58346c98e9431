"""Logging filters: a user-input error is reported as its one-line message, without a traceback
(in every flow's run log); the CLI's temporary API's shutdown does not print the traces of work
it cancels and redoes."""

from __future__ import annotations

import asyncio
import logging

from tasks.errors import AutoMLInputError

__all__ = ["ShutdownCancelFilter", "UserErrorFilter", "quiet_user_errors"]

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class UserErrorFilter(logging.Filter):
    """Drop the traceback from records about an :class:`AutoMLInputError`: the message says all
    there is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, AutoMLInputError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_user_errors() -> None:
    """Keep a bad input one line in Prefect's run logs, wherever the flows run: the console, the
    worker's output and the UI. Prefect logs a failed task's and a failed flow's exception with
    its traceback; for an :class:`AutoMLInputError` that is noise around the message. Only such
    records change, and the caller still gets the exception."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UserErrorFilter) for f in logger.filters):
            logger.addFilter(UserErrorFilter())


class ShutdownCancelFilter(logging.Filter):
    """Drop the errors that stopping Prefect's temporary API logs for work it cancels, loses none
    of, and finishes before it exits.

    - SQLAlchemy pool errors caused by ``asyncio.CancelledError``: the event loop cancels the
      database connections still open, and SQLAlchemy logs "Exception during reset or similar"
      with the traceback (PrefectHQ/prefect#16504). The runs were recorded before the stop.
    - The task-run recorder's "Error flushing N events (N to retry, 0 dropped)" with a
      ``CancelledError``: the stop cancelled a periodic flush, whose events go back on the queue
      for the final flush that follows. A run that fails at once on bad input stops the API
      within the recorder's one-second flush interval, so it happens there.

    Any other cause, and any flush that drops events, is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, asyncio.CancelledError):
            return True
        if record.name.startswith("sqlalchemy.pool"):
            return False
        return not (record.name == "prefect.server.services.task_run_recorder"
                    and record.getMessage().endswith(" 0 dropped)"))
