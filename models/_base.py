"""What a model family declares: its tasks, a size-aware search space, a cheap start and a cost
hint."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Union

import numpy as np

__all__ = ["Choice", "DataShape", "Float", "Int", "ModelFamily", "Param"]


@dataclass(frozen=True)
class Float:
    """A real hyperparameter in ``[low, high]``, sampled on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one value."""
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Int:
    """An integer hyperparameter in ``[low, high]``, sampled on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False

    def sample(self, rng: np.random.Generator) -> int:
        """Draw one value."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(self.high, max(self.low, math.floor(value))))
        return int(rng.integers(self.low, self.high + 1))


@dataclass(frozen=True)
class Choice:
    """A categorical hyperparameter."""

    options: tuple

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one option."""
        option = self.options[int(rng.integers(len(self.options)))]
        return option.item() if isinstance(option, np.generic) else option


Param = Union[Float, Int, Choice]


@dataclass(frozen=True)
class DataShape:
    """What a family may look at when sizing its space.

    ``n_classes`` is 0 for regression; ``imbalanced`` is set when the class-imbalance guardrail
    fires, and families then put class weighting into their space.
    """

    n_rows: int
    n_features: int
    n_classes: int = 0
    imbalanced: bool = False


class ModelFamily(ABC):
    """A model family: one plug-in module in ``models/`` (or an ``automl.models`` entry point).

    Subclasses set ``name`` and ``tasks`` and implement :meth:`search_space`,
    :meth:`initial_config` and :meth:`build`. The search never sees estimators, only spaces and
    scores; :meth:`build` turns a config into an unfitted scikit-learn estimator.

    Attributes
    ----------
    name : str
        Unique family name, used by ``--include``/``--exclude`` and in the leaderboard.
    tasks : frozenset of str
        ``"classification"``, ``"regression"`` (and later ``"forecasting"``) that it supports.
    needs_scaling : bool
        Whether the featurizer should standardize numeric features in front of it.
    cost : float
        Relative cost hint (1 = a small random forest) on binary or regression data; cheap
        families are tried first.
    cost_grows_with_classes : bool
        Whether fit time grows with the number of classes (one tree or coefficient vector per
        class, as in boosters and multinomial linear models): on ``k`` classes the hint is then
        ``k`` times ``cost``. Forests and neighbours keep one model for all classes.
    baseline : bool
        Whether :meth:`initial_config` is a strong, cheap default that every search should
        evaluate first, before the portfolio (a floor the chosen model is compared against).
    """

    name: ClassVar[str]
    tasks: ClassVar[frozenset[str]]
    needs_scaling: ClassVar[bool] = False
    cost: ClassVar[float] = 1.0
    cost_grows_with_classes: ClassVar[bool] = False
    baseline: ClassVar[bool] = False

    @classmethod
    def is_applicable(cls, task: str, shape: DataShape) -> bool:
        """Whether to search this family for ``task`` on data of this shape."""
        return task in cls.tasks

    @classmethod
    def relative_cost(cls, shape: DataShape) -> float:
        """The cost hint on data of this shape (see ``cost`` and ``cost_grows_with_classes``)."""
        if cls.cost_grows_with_classes and shape.n_classes > 2:
            return cls.cost * shape.n_classes
        return cls.cost

    @classmethod
    def cost_units(cls, config: dict[str, Any]) -> float:
        """How the cost of ``config`` scales within the family (1 for the initial config).

        The default is 1; families whose fit time grows with a size parameter (trees, rounds)
        return e.g. ``n_estimators / 100`` so that the scheduler can predict a candidate's time.
        """
        return 1.0

    @classmethod
    @abstractmethod
    def search_space(cls, task: str, shape: DataShape) -> dict[str, Param]:
        """Hyperparameter space, sized to the data."""

    @classmethod
    @abstractmethod
    def initial_config(cls, task: str, shape: DataShape) -> dict[str, Any]:
        """A cheap configuration that is good on most data: tried first."""

    @classmethod
    @abstractmethod
    def build(cls, task: str, config: dict[str, Any], seed: int) -> Any:
        """An unfitted scikit-learn estimator for ``config`` (one thread)."""

    @classmethod
    def refit_params(cls, fitted: list[Any]) -> dict[str, Any]:
        """Estimator parameters for the refit on all rows, learned from the validation folds.

        Parameters
        ----------
        fitted : list of estimator
            The estimators :meth:`build` made, as fitted on each fold's training rows.

        Returns
        -------
        dict
            Passed to the refitted estimator's ``set_params``. The default, ``{}``, refits as
            built. A family that early-stops on rows held out of its own training data returns
            the size the folds chose, so that the refit learns from every row and does not
            choose its size on one small held-out part.
        """
        return {}
