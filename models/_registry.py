"""Collects model families: every public module of ``models/`` plus the ``automl.models`` entry
points."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import pkgutil
from types import ModuleType

from models._base import ModelFamily

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
        if not family.tasks or unknown:
            raise ValueError(f"{origin}: family {name!r} declares unknown tasks {sorted(unknown)}")
        if name in self._families and self._families[name] is not family:
            raise ValueError(
                f"model family {name!r} is registered twice: by {self._origins[name]} and by "
                f"{origin}; rename one of them"
            )
        self._families[name] = family
        self._origins[name] = origin

    def names(self, task: str | None = None) -> list[str]:
        """Registered family names (supporting ``task`` when given), cheapest first."""
        chosen = [f for f in self._families.values() if task is None or task in f.tasks]
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
                self.add(member, origin=f"module {module.__name__}")

    def discover(self) -> "FamilyRegistry":
        """Import the built-in family modules and load the entry points."""
        package = importlib.import_module("models")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            module_name = f"models.{info.name}"
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                self.skipped[module_name] = f"missing dependency: {exc}"
                logger.warning("model family module %s skipped: %s", module_name, exc)
                continue
            self._add_module(module)
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            origin = f"entry point {entry.name} = {entry.value}"
            try:
                loaded = entry.load()
            except ImportError as exc:
                self.skipped[origin] = f"missing dependency: {exc}"
                logger.warning("model family %s skipped: %s", origin, exc)
                continue
            if inspect.ismodule(loaded):
                self._add_module(loaded)
            else:
                self.add(loaded, origin=origin)
        return self


_REGISTRY: FamilyRegistry | None = None


def registry(refresh: bool = False) -> FamilyRegistry:
    """The process-wide registry, discovered on first use."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = FamilyRegistry().discover()
    return _REGISTRY
