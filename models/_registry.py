"""Collects model families: every public module of ``models/`` plus the ``automl.models`` entry
points."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import pkgutil
from collections.abc import Callable
from types import ModuleType

from models._base import ModelFamily
from models._forecast import ForecastFamily

__all__ = ["ENTRY_POINT_GROUP", "FamilyRegistry", "registry"]

ENTRY_POINT_GROUP = "automl.models"
KNOWN_TASKS = frozenset({"classification", "regression", "forecasting"})
logger = logging.getLogger(__name__)


class FamilyRegistry:
    """Name -> :class:`ModelFamily`, validated; families whose dependency is missing are skipped.

    Attributes
    ----------
    skipped : dict of str to str
        Module or entry point -> why it was not registered.
    """

    def __init__(self) -> None:
        self._families: dict[str, type[ModelFamily]] = {}
        self._origins: dict[str, str] = {}
        self._tasks: dict[str, frozenset[str]] = {}
        self.skipped: dict[str, str] = {}

    def add(self, family: type[ModelFamily], origin: str) -> None:
        """Register ``family``, checking its declaration and that its name is free.

        Raises
        ------
        TypeError, ValueError
            Saying what to fix.
        """
        if not (inspect.isclass(family) and issubclass(family, ModelFamily)):
            raise TypeError(f"{origin}: {family!r} is not a models.ModelFamily subclass")
        name = getattr(family, "name", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{origin}: family name {name!r} must be an identifier-like string")
        unknown = set(getattr(family, "tasks", ())) - KNOWN_TASKS
        if not family.tasks:
            raise ValueError(f"{origin}: family {name!r} declares no tasks; set tasks to some of "
                             f"{sorted(KNOWN_TASKS)}")
        if unknown:
            raise ValueError(f"{origin}: family {name!r} declares unknown tasks {sorted(unknown)}")
        tasks = frozenset(family.tasks)
        why = (f"family {name!r} forecasts, so it must subclass models.ForecastFamily (see "
               "models/naive.py)")
        if "forecasting" in tasks and not issubclass(family, ForecastFamily):
            tasks -= {"forecasting"}
            if not tasks:
                raise TypeError(f"{origin}: {why}")
        if name in self._families and self._families[name] is not family:
            raise ValueError(
                f"model family {name!r} is registered twice: by {self._origins[name]} and by "
                f"{origin}; rename one of them"
            )
        self._families[name] = family
        self._origins[name] = origin
        self._tasks[name] = tasks
        if tasks != family.tasks:
            self._skip(f"{origin} (forecasting)",
                       f"{why}; it is used for {', '.join(sorted(tasks))} only")

    def names(self, task: str | None = None) -> list[str]:
        """Registered family names (supporting ``task`` when given), cheapest first."""
        chosen = [f for n, f in self._families.items() if task is None or task in self._tasks[n]]
        return [f.name for f in sorted(chosen, key=lambda f: (f.cost, f.name))]

    def get(self, name: str) -> type[ModelFamily]:
        """The family called ``name``."""
        return self._families[name]

    def __contains__(self, name: object) -> bool:
        return name in self._families

    def _add_module(self, module: ModuleType) -> None:
        for _, member in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(member, ModelFamily)
                and member.__module__ == module.__name__
                and not inspect.isabstract(member)
            ):
                origin = f"module {module.__name__}"
                self._guarded(f"{origin} ({member.__name__})",
                              lambda family=member: self.add(family, origin=origin))

    def discover(self) -> "FamilyRegistry":
        """Import the built-in family modules and load the entry points.

        A module or entry point that cannot be loaded or declares a family wrongly is skipped
        with a warning saying why (in ``skipped``): one broken plug-in does not stop every run.
        """
        package = importlib.import_module("models")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                module_name = f"models.{info.name}"
                self._guarded(module_name, lambda: self._add_module(
                    importlib.import_module(module_name)))
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            self._guarded(f"entry point {entry.name} = {entry.value}",
                          lambda: self._add_loaded(entry))
        return self

    def _add_loaded(self, entry: importlib.metadata.EntryPoint) -> None:
        loaded = entry.load()
        if inspect.ismodule(loaded):
            self._add_module(loaded)
        else:
            self.add(loaded, origin=f"entry point {entry.name} = {entry.value}")

    def _guarded(self, origin: str, load: Callable[[], None]) -> None:
        try:
            load()
        except ImportError as exc:
            self._skip(origin, f"missing dependency: {exc}")
        except Exception as exc:  # noqa: BLE001 - a plug-in's own error, reported below
            self._skip(origin, f"{type(exc).__name__}: {exc}".splitlines()[0].rstrip(": "))

    def _skip(self, origin: str, why: str) -> None:
        self.skipped[origin] = why
        logger.warning("model family %s skipped: %s", origin.removeprefix("module "), why)


_REGISTRY: FamilyRegistry | None = None


def registry(refresh: bool = False) -> FamilyRegistry:
    """The process-wide registry, discovered on first use."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = FamilyRegistry().discover()
    return _REGISTRY
