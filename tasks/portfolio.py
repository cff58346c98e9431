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

__all__ = ["load_portfolio", "portfolio_from", "select_portfolio"]


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


def select_portfolio(losses: np.ndarray, size: int, exclude: Sequence[int] = (),
                     start: Optional[int] = None,
                     seconds: Optional[np.ndarray] = None) -> list[int]:
    """Greedy forward selection: each step adds the configuration that most lowers the mean,
    over datasets, of the best regret in the portfolio so far.

    Parameters
    ----------
    losses : ndarray of shape (n_configs, n_datasets)
        Validation losses (lower is better; NaN or inf for failures).
    size : int
        Configurations to choose at most; fewer when no other one lowers the regret.
    exclude : sequence of int
        Dataset columns to leave out (e.g. the dataset being benchmarked).
    start : int, optional
        Row of a configuration that every run evaluates before the portfolio (the baseline):
        the portfolio is chosen to improve on it, and leaves it out.
    seconds : ndarray of shape (n_configs, n_datasets), optional
        What each evaluation took. When given, each step adds the configuration that lowers the
        mean regret most *per second* (seconds relative to the dataset's median), so that a
        short budget reaches good configurations sooner.

    Returns
    -------
    list of int
        Row indices, in the order chosen.

    Examples
    --------
    >>> losses = np.array([[0.1, 0.9], [0.9, 0.1], [0.3, 0.3]])
    >>> select_portfolio(losses, 2)
    [2, 0]
    >>> select_portfolio(losses, 2, start=0)
    [1]
    """
    keep = [j for j in range(losses.shape[1]) if j not in set(exclude)]
    table = regrets(np.asarray(losses, dtype=float)[:, keep])
    cost = np.ones(table.shape[0])
    if seconds is not None:
        columns = np.asarray(seconds, dtype=float)[:, keep]
        cost = np.maximum(np.mean(columns / np.maximum(np.median(columns, axis=0), 1e-9),
                                  axis=1), 1e-9)
    chosen: list[int] = []
    current = np.full(table.shape[1], 10.0) if start is None else table[start]
    for _ in range(min(size, table.shape[0])):
        gain = np.mean(current) - np.array([np.mean(np.minimum(current, row)) for row in table])
        gain[chosen + ([] if start is None else [start])] = -math.inf
        if not (gain > 0).any():
            break
        pick = int(np.argmax(gain / cost))
        chosen.append(pick)
        current = np.minimum(current, table[pick])
    return chosen


def portfolio_from(section: dict[str, Any], exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The portfolio that one task's measurements give, re-selected without some datasets.

    Parameters
    ----------
    section : dict
        One task's part of a file written by ``benchmarks/build_portfolio.py``: ``pool``,
        ``datasets``, ``losses``, ``seconds``, and the selection's settings: ``size``,
        ``start`` (the row of the baseline configuration that every run evaluates first, or
        None) and ``per_second`` (weigh each configuration's seconds).
    exclude : sequence of str
        Datasets whose measurements are left out (e.g. the one being benchmarked).

    Returns
    -------
    list of dict
        Pool entries (``family``, ``config``, ``source``), in the order to try them.
    """
    losses = np.array([[math.inf if v is None else v for v in row] for row in section["losses"]])
    seconds = section["seconds"] if section.get("per_second") else None
    chosen = select_portfolio(
        losses, section["size"],
        exclude=[section["datasets"].index(name) for name in exclude
                 if name in section["datasets"]],
        start=section.get("start"),
        seconds=None if seconds is None else np.array(seconds, dtype=float))
    return [section["pool"][i] for i in chosen]
