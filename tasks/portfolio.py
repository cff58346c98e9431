"""The warm-start portfolio: configurations that did well across many datasets, measured.

``models/portfolio.json`` is written by ``benchmarks/build_portfolio.py`` (which says how it was
measured); without it the search starts from every family's ``initial_config``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["load_portfolio"]


def load_portfolio(task: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(family, config), ...]`` for ``task``, in the order to try them (empty when none)."""
    source = resources.files("models").joinpath("portfolio.json")
    if not source.is_file():
        return []
    entries = json.loads(source.read_text()).get(task, [])
    return [(entry["family"], dict(entry["config"])) for entry in entries]
