"""Ignoring warnings in one thread while others run: only that thread's warnings are ignored, and
the filters left in the process's list match nothing outside the blocks."""

from __future__ import annotations

import re
import threading
import time
import warnings

import numpy as np
import pytest

from featurizers._quiet import _category, ignoring
from models.naive import NaiveForecaster


def _in_threads_each(works) -> None:
    threads = [threading.Thread(target=work) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _in_threads(work, n: int = 2) -> None:
    _in_threads_each([work] * n)


def _added(before: list) -> list:
    return [entry for entry in warnings.filters if entry not in before]


def test_threads_ignoring_at_once_leave_one_filter_that_matches_nothing_outside():
    before = list(warnings.filters)

    def work():
        for _ in range(300):
            with ignoring():
                time.sleep(0.0005)  # another thread enters and leaves meanwhile

    _in_threads(work)
    assert len(_added(before)) == 1 and warnings.filters[1:] == before
    with pytest.warns(UserWarning, match="still shown"):
        warnings.warn("still shown", UserWarning)


def test_another_threads_warnings_are_shown_while_one_thread_ignores_them():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        inside, warned = threading.Event(), threading.Event()

        def ours():
            with ignoring(UserWarning, "noisy"):
                inside.set()
                warnings.warn("noisy, in the ignoring thread", UserWarning)
                warned.wait()
            warnings.warn("noisy, after the block", UserWarning)

        thread = threading.Thread(target=ours)
        thread.start()
        inside.wait()
        warnings.warn("noisy, in another thread", UserWarning)
        warned.set()
        thread.join()
    assert sorted(str(w.message) for w in seen) == ["noisy, after the block",
                                                    "noisy, in another thread"]


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


def test_a_filter_another_thread_took_away_still_ignores_in_this_thread_only():
    """Python 3.11 has one filter list: a catch_warnings in another thread (scikit-learn's input
    checks use one) entered before our first use puts back the list it saw, without our filter,
    while we are still inside. The warning is dropped before it is shown, in our thread only."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        theirs_in, ours_in, theirs_out = threading.Event(), threading.Event(), threading.Event()
        main_warned = threading.Event()
        where = re.escape(__name__)
        scoped, present = _category((UserWarning, "step reached", where)), []

        def theirs():
            with warnings.catch_warnings():
                theirs_in.set()
                ours_in.wait()
            theirs_out.set()

        def ours():
            theirs_in.wait()
            with ignoring(UserWarning, "step reached", module=where):
                ours_in.set()
                theirs_out.wait()
                present.append(any(entry[2] is scoped for entry in warnings.filters))
                warnings.warn("step reached max_iter, in the window", UserWarning)
                warnings.warn("something else", UserWarning)
                main_warned.wait()
            with ignoring(UserWarning, "step reached", module=where):
                present.append(any(entry[2] is scoped for entry in warnings.filters))
                warnings.warn("step reached max_iter, later", UserWarning)

        thread = threading.Thread(target=ours)
        _in_threads_each([theirs, lambda: (thread.start(), theirs_out.wait())])
        warnings.warn("step reached max_iter, in another thread", UserWarning)
        main_warned.set()
        thread.join()
    assert sorted(str(w.message) for w in seen) == ["something else",
                                                    "step reached max_iter, in another thread"]
    assert present == [False, True]  # taken away, then added again at the next use


class _Warns(NaiveForecaster):
    """A forecaster that warns while it forecasts, as statsmodels does on short series."""

    def forecast(self, y, horizon, season):
        time.sleep(0.0005)
        warnings.warn("did not converge", UserWarning, stacklevel=2)  # from models._forecast
        return super().forecast(y, horizon, season)


def test_forecasters_run_in_threads_show_none_of_their_warnings():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        model, forecasts = _Warns(), []

        def work():
            for _ in range(200):
                forecasts.append(model(np.arange(10.0), 3, 1).tolist())

        _in_threads(work)
        assert len(_added(before)) == 1
        warnings.warn("did not converge", UserWarning)  # from this module, outside
    assert forecasts == [[9.0, 9.0, 9.0]] * 400
    assert [str(w.message) for w in seen] == ["did not converge"]


def test_the_module_of_a_warning_is_found_from_its_file():
    import sklearn.linear_model._sag as sag

    from featurizers._quiet import _module_of

    assert _module_of(sag.__file__) == "sklearn.linear_model._sag"
    assert _module_of(__file__) == __name__
    assert _module_of(np.__file__) == "numpy"


def test_an_error_filter_added_after_the_first_use_does_not_raise_an_ignored_warning():
    with warnings.catch_warnings():
        with ignoring(UserWarning, "step reached"):
            pass
        warnings.simplefilter("error")  # in front of ours
        with ignoring(UserWarning, "step reached"):
            warnings.warn("step reached max_iter", UserWarning)
            with pytest.raises(UserWarning, match="something else"):
                warnings.warn("something else", UserWarning)
        with pytest.raises(UserWarning, match="step reached"):
            warnings.warn("step reached max_iter", UserWarning)
