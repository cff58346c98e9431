"""The warm-start portfolio: configurations that did well across many datasets, measured.

``models/portfolio.json`` is written by ``benchmarks/build_portfolio.py``: it holds a pool of
configurations, each one's validation loss on every benchmark dataset (the measurements), and the
portfolio chosen greedily from them. ``settings.portfolio`` may name another file of that form,
or ``"none"`` to start from every family's ``initial_config`` alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tasks.errors import AutoMLInputError

__all__ = ["load_portfolio", "select_portfolio"]


def _read(path: Optional[str]) -> dict[str, Any]:
    if path is not None:
        if not Path(path).is_file():
            raise AutoMLInputError(f"portfolio file {path!r} does not exist; give a portfolio "
                                   "JSON file, or 'none'")
        return json.loads(Path(path).read_text())
    source = resources.files("models").joinpath("portfolio.json")
    return json.loads(source.read_text()) if source.is_file() else {}


def load_portfolio(task: str, path: Optional[str] = None) -> list[tuple[str, dict[str, Any]]]:
    """``[(family, config), ...]`` for ``task``, in the order to try them (empty when none).

    Parameters
    ----------
    task : str
    path : str, optional
        A portfolio file; the packaged one when None; ``"none"`` for no portfolio.
    """
    if path == "none":
        return []
    entries = _read(path).get(task, {}).get("portfolio", [])
    return [(entry["family"], dict(entry["config"])) for entry in entries]


def regrets(losses: np.ndarray) -> np.ndarray:
    """Per dataset (column), each configuration's loss above the best, in units of the spread.

    The spread is the median loss minus the best, so a dataset where every configuration is
    nearly equal does not dominate; failed configurations (non-finite losses) get regret 10.
    """
    out = np.full(losses.shape, 10.0)
    for j in range(losses.shape[1]):
        column = losses[:, j]
        finite = np.isfinite(column)
        if not finite.any():
            continue
        best, median = column[finite].min(), np.median(column[finite])
        spread = max(median - best, 1e-12)
        out[finite, j] = np.minimum((column[finite] - best) / spread, 10.0)
    return out


def select_portfolio(losses: np.ndarray, size: int,
                     exclude: Sequence[int] = ()) -> list[int]:
    """Greedy forward selection: each step adds the configuration that most lowers the mean,
    over datasets, of the best regret in the portfolio so far.

    Parameters
    ----------
    losses : ndarray of shape (n_configs, n_datasets)
        Validation losses (lower is better; NaN or inf for failures).
    size : int
        Configurations to choose.
    exclude : sequence of int
        Dataset columns to leave out (e.g. the dataset being benchmarked).

    Returns
    -------
    list of int
        Row indices, in the order chosen.

    Examples
    --------
    >>> losses = np.array([[0.1, 0.9], [0.9, 0.1], [0.3, 0.3]])
    >>> select_portfolio(losses, 2)
    [2, 0]
    """
    keep = [j for j in range(losses.shape[1]) if j not in set(exclude)]
    table = regrets(np.asarray(losses, dtype=float)[:, keep])
    chosen: list[int] = []
    current = np.full(table.shape[1], math.inf)
    for _ in range(min(size, table.shape[0])):
        scores = [np.mean(np.minimum(current, table[i])) if i not in chosen else math.inf
                  for i in range(table.shape[0])]
        pick = int(np.argmin(scores))
        chosen.append(pick)
        current = np.minimum(current, table[pick])
    return chosen
