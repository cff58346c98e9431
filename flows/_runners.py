"""Which task runner trains the candidates: the flow's threads, or Dask through prefect-dask."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from tasks.errors import AutoMLInputError
from tasks.settings import TrainSettings

__all__ = ["candidate_runner"]


def candidate_runner(settings: TrainSettings) -> AbstractContextManager[Any]:
    """A context manager giving the runner for candidate tasks (None: the flow's threads).

    ``task_runner="dask"`` starts a ``LocalCluster`` of ``n_workers`` single-threaded worker
    processes for the run, or connects to the cluster at ``dask_address``.
    """
    if settings.task_runner == "threads":
        return nullcontext(None)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise AutoMLInputError(
            "task_runner 'dask' needs prefect-dask: pip install 'prefect-automl[dask]'") from None
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": settings.n_workers,
                                          "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})
