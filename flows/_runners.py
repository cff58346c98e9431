"""Which task runners do the work: the flow's threads, sized by ``n_workers``, and for the
candidates optionally Dask through prefect-dask."""

from __future__ import annotations

import socket
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Iterator

from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.errors import AutoMLInputError
from tasks.settings import TrainSettings

__all__ = ["candidate_runner", "check_reachable", "flow_threads"]


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
        check_reachable(settings.dask_address)
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": settings.n_workers,
                                          "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None})


def check_reachable(address: str, seconds: float = 5.0) -> None:
    """Fail before the data is read when nothing answers at the Dask scheduler ``address``.

    Parameters
    ----------
    address : str
        ``tcp://`` or ``tls://`` (or no scheme) ``HOST[:PORT]``, the port 8786 when left out,
        as Dask reads it; other transports are not checked.
    seconds : float, default=5.0
        How long to wait for the scheduler to answer.

    Raises
    ------
    AutoMLInputError
        Naming ``dask_address`` and why it cannot be reached.
    """
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return
    rest = rest.rstrip("/")
    host, port = rest, "8786"
    if rest.count(":") == 1 or rest.startswith("[") and "]:" in rest:  # HOST:PORT, [IPv6]:PORT
        host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise AutoMLInputError(f"dask_address {address!r} is not a scheduler address; give "
                               "one as tcp://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        raise AutoMLInputError(
            f"dask_address {address!r} cannot be reached ({exc.strerror or exc}); start the "
            "Dask scheduler there or give its address") from None


@contextmanager
def flow_threads(n_workers: int) -> Iterator[None]:
    """Inside a flow run on a thread pool, tasks submitted within run on ``n_workers`` threads.

    A flow's task runner is fixed where the flow is declared. A deployment run and a call from
    Python get that one, whatever their ``n_workers``: this swaps in a pool of the size asked
    for, until the block ends (also over a pool of another size given with ``with_options``:
    ``n_workers`` decides). Outside a flow run, or on another kind of runner, it does nothing.
    """
    context = FlowRunContext.get()
    wanted = ThreadPoolTaskRunner(max_workers=n_workers)
    if (context is None or not isinstance(context.task_runner, ThreadPoolTaskRunner)
            or context.task_runner == wanted):  # equal: the same number of workers
        yield
        return
    with wanted as runner, context.model_copy(update={"task_runner": runner}):
        yield
