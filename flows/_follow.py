"""Serving a registry's champion as it changes: an ASGI application that looks at the champion
every few seconds and, when another version is promoted (or rolled back to), serves that one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, MutableMapping

from tasks.errors import AutoMLInputError
from tasks.model_io import LoadedModel, registered_model
from tasks.registry import Registry

__all__ = ["ChampionFollower"]

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]],
                    Callable[[Any], Awaitable[None]]], Awaitable[None]]
log = logging.getLogger("uvicorn.error")


class ChampionFollower:
    """An ASGI application that serves a registry's champion and follows its promotions.

    Requests go to the application built for the version being served. Every ``poll_seconds``
    the champion is read again; when it names another version, that version is fetched, its
    sha256 checked, and an application built for it (with its own request schema) replaces the
    previous one. Requests already under way finish on the previous model. A champion that
    cannot be read or served leaves the previous model in service, and says why in the log
    once.

    Parameters
    ----------
    registry : Registry
        The registry entry (location and model name) whose champion is served.
    version : int
        The version ``app`` serves.
    app : ASGI application
        The application serving ``version``.
    build : callable
        ``build(loaded, version)`` returns the application serving a loaded model.
    poll_seconds : float
        Seconds between two readings of the champion.
    """

    def __init__(self, registry: Registry, version: int, app: ASGIApp,
                 build: Callable[[LoadedModel, int], ASGIApp], poll_seconds: float) -> None:
        self.registry = registry
        self.version = version
        self.app = app
        self.build = build
        self.poll_seconds = poll_seconds
        self._said: set[str] = set()

    async def __call__(self, scope: MutableMapping[str, Any],
                       receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.app(scope, receive, send)

    async def _lifespan(self, receive: Callable[[], Awaitable[Any]],
                        send: Callable[[Any], Awaitable[None]]) -> None:
        """Poll between the server's start-up and its shutdown."""
        polling = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                polling = asyncio.create_task(self._poll())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if polling is not None:
                    polling.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await polling
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await asyncio.to_thread(self.check)
            except Exception as exc:  # a long-running service keeps serving what it has
                self._say_once(f"looking for a new champion failed ({type(exc).__name__}: "
                               f"{exc}); still serving v{self.version}", exc_info=True)

    def check(self) -> bool:
        """Read the champion once and serve it if it is another version.

        Returns
        -------
        bool
            True when the application now serves another version.
        """
        try:
            number = self.registry.number("champion")
        except (AutoMLInputError, OSError) as exc:
            self._say_once(f"cannot read the champion: {exc}; still serving v{self.version}")
            return False
        if number == self.version:
            return False
        try:
            with registered_model(self.registry, number) as (loaded, number):
                pass
        except (AutoMLInputError, OSError) as exc:
            self._say_once(f"cannot serve the new champion v{number}: {exc}; still serving "
                           f"v{self.version}")
            return False
        self.app, previous, self.version = self.build(loaded, number), self.version, number
        self._said.clear()
        log.info("now serving %s (the champion; was v%d)", loaded.source, previous)
        return True

    def _say_once(self, message: str, exc_info: bool = False) -> None:
        if message not in self._said:
            self._said.add(message)
            log.warning(message, exc_info=exc_info)
