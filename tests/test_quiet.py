"""Ignoring warnings from several threads at once leaves the process's filters as they were."""

from __future__ import annotations

import re
import threading
import time
import warnings

import numpy as np
import pytest

from featurizers._quiet import ignoring
from models.naive import NaiveForecaster


def _in_threads_each(works) -> None:
    threads = [threading.Thread(target=work) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _in_threads(work, n: int = 2) -> None:
    _in_threads_each([work] * n)


def test_threads_ignoring_at_once_leave_no_filter_behind():
    before = list(warnings.filters)

    def work():
        for _ in range(300):
            with ignoring():
                time.sleep(0.0005)  # another thread enters and leaves meanwhile

    _in_threads(work)
    assert warnings.filters == before
    with pytest.warns(UserWarning, match="still shown"):
        warnings.warn("still shown", UserWarning)


def test_only_the_named_warnings_are_ignored_and_a_filter_set_before_stays():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with ignoring(RuntimeWarning, "overflow"):
            warnings.warn("overflow in exp", RuntimeWarning)
            warnings.warn("divide by zero", RuntimeWarning)
            warnings.warn("overflow in exp", UserWarning)
        warnings.warn("overflow in exp", RuntimeWarning)
        assert [str(w.message) for w in seen] == ["divide by zero", "overflow in exp",
                                                  "overflow in exp"]
        warnings.filterwarnings("ignore", "overflow", RuntimeWarning)
        own = list(warnings.filters)
        with ignoring(RuntimeWarning, "overflow"):
            pass
        assert warnings.filters == own  # the program's own filter stays, where it was
        warnings.warn("overflow again", RuntimeWarning)
        assert len(seen) == 3
        with ignoring(UserWarning, module=re.escape(__name__)):
            warnings.warn("from this module", UserWarning)
        assert len(seen) == 3
        with ignoring(UserWarning, module=r"statsmodels\."):
            warnings.warn("from this module", UserWarning)
        assert len(seen) == 4


def test_a_filter_another_thread_puts_back_is_removed_at_the_next_use():
    """Python 3.11 has one filter list: a catch_warnings in another thread (scikit-learn's input
    checks use one) that spans our exit restores the list it saw, our filter in it."""
    before = list(warnings.filters)
    entered, copied, left = threading.Event(), threading.Event(), threading.Event()

    def ours():
        with ignoring():
            entered.set()
            copied.wait()
        left.set()

    def theirs():
        entered.wait()
        with warnings.catch_warnings():
            copied.set()
            left.wait()

    threads = [threading.Thread(target=ours), threading.Thread(target=theirs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert warnings.filters != before  # put back by the other thread
    with ignoring(RuntimeWarning, "overflow"):
        pass
    assert warnings.filters == before


class _Warns(NaiveForecaster):
    """A forecaster that warns while it forecasts, as statsmodels does on short series."""

    def forecast(self, y, horizon, season):
        time.sleep(0.0005)
        warnings.warn("did not converge", UserWarning, stacklevel=2)  # from models._forecast
        return super().forecast(y, horizon, season)


def test_forecasters_run_in_threads_leave_the_warning_filters_as_they_were():
    before = list(warnings.filters)
    model, forecasts = _Warns(), []

    def work():
        for _ in range(200):
            forecasts.append(model(np.arange(10.0), 3, 1).tolist())

    _in_threads(work)
    assert warnings.filters == before
    assert forecasts == [[9.0, 9.0, 9.0]] * 400


def _after_another_thread_swapped_the_filters(warn) -> None:
    """Call ``warn`` inside ``ignoring`` after another thread's catch_warnings, entered before
    ours, has put back the filter list it saw: our filter is gone while we are still inside."""
    theirs_in, ours_in, theirs_out = threading.Event(), threading.Event(), threading.Event()

    def theirs():
        with warnings.catch_warnings():
            theirs_in.set()
            ours_in.wait()
        theirs_out.set()

    def ours():
        theirs_in.wait()
        with ignoring(UserWarning, "step reached", module=re.escape(__name__)):
            ours_in.set()
            theirs_out.wait()
            warn()

    _in_threads_each([theirs, ours])


def test_a_warning_is_still_ignored_when_another_thread_took_our_filter_away():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _after_another_thread_swapped_the_filters(
            lambda: warnings.warn("step reached max_iter", UserWarning))
        assert seen == []
        _after_another_thread_swapped_the_filters(
            lambda: warnings.warn("something else", UserWarning))
        assert [str(w.message) for w in seen] == ["something else"]
        warnings.warn("step reached max_iter", UserWarning)  # nobody ignores it now
        assert len(seen) == 2


def test_the_module_of_a_warning_is_found_from_its_file():
    import sklearn.linear_model._sag as sag

    from featurizers._quiet import _module_of

    assert _module_of(sag.__file__) == "sklearn.linear_model._sag"
    assert _module_of(__file__) == __name__
    assert _module_of(np.__file__) == "numpy"
