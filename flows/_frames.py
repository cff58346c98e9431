"""Flows that take a pandas DataFrame from a Python caller without sending its rows to the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from prefect import Flow

__all__ = ["FrameFlow", "frame_flow", "shape_of"]


def shape_of(frame: pd.DataFrame) -> str:
    """How a DataFrame parameter is recorded: ``<DataFrame: 4000 rows x 7 columns>``."""
    return f"<DataFrame: {len(frame)} rows x {frame.shape[1]} columns>"


class FrameFlow(Flow):
    """A Prefect flow whose DataFrame parameters are recorded by their shape (:func:`shape_of`).

    Prefect records a flow run's parameters through its API as JSON: a DataFrame's every row.
    The API refuses parameters over 512 KB (a table of a few thousand rows), and below that
    the user's rows would be kept in its database and shown in the UI. The flow itself still
    gets the DataFrame.
    """

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The parameters as the API records them, DataFrames by their shape."""
        return super().serialize_parameters(
            {k: shape_of(v) if isinstance(v, pd.DataFrame) else v for k, v in parameters.items()})

    def with_options(self, **options: Any) -> "FrameFlow":
        """A copy with other options (Prefect's own copy would be a plain ``Flow``)."""
        copy = super().with_options(**options)
        copy.__class__ = FrameFlow
        return copy


def frame_flow(**options: Any) -> Callable[[Callable[..., Any]], FrameFlow]:
    """Like ``prefect.flow(**options)``, making a :class:`FrameFlow`."""
    return lambda fn: FrameFlow(fn=fn, **options)
