"""Model-based search inside one family: an optuna TPE study driven by ask/tell."""

from __future__ import annotations

import json
import math
from typing import Any, Optional

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial

from models import DataShape, Float, Int, ModelFamily, Param

__all__ = ["FamilyTuner"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _distribution(param: Param) -> BaseDistribution:
    if isinstance(param, Float):
        return FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Int):
        return IntDistribution(param.low, param.high, log=param.log)
    return CategoricalDistribution(tuple(param.options))


class FamilyTuner:
    """Proposes configurations of one family; a TPE sampler learns from the losses it is told.

    Parameters
    ----------
    family : ModelFamily subclass
    task : str
    shape : DataShape
    seed : int
    n_startup : int, default=4
        Random configurations before the sampler starts modelling.
    sampler : {"tpe", "random"}, default="tpe"
        ``"random"`` samples the space uniformly (a baseline for the model-based search).
    """

    def __init__(self, family: type[ModelFamily], task: str, shape: DataShape, seed: int,
                 n_startup: int = 4, sampler: str = "tpe") -> None:
        self.family = family
        self.space = family.search_space(task, shape)
        self.distributions = {name: _distribution(p) for name, p in self.space.items()}
        chosen = (optuna.samplers.RandomSampler(seed=seed) if sampler == "random" else
                  optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup,
                                             multivariate=True))
        self.study = optuna.create_study(direction="minimize", sampler=chosen)
        self.asked: dict[str, Any] = {}
        self.known: dict[str, Optional[float]] = {}

    @staticmethod
    def key(config: dict[str, Any]) -> str:
        """A canonical text form of a configuration."""
        return json.dumps(config, sort_keys=True, default=str)

    def ask(self) -> Optional[dict[str, Any]]:
        """A new configuration (None when the space is exhausted)."""
        if not self.distributions:
            return None
        for _ in range(20):
            trial = self.study.ask(self.distributions)
            config = dict(trial.params)
            key = self.key(config)
            if key not in self.known and key not in self.asked:
                self.asked[key] = trial
                return config
            # A repeat: tell the sampler what it already knows and ask again.
            previous = self.known.get(key)
            self.study.tell(trial, previous if previous is not None else None,
                            state=TrialState.COMPLETE if previous is not None else TrialState.FAIL)
        return None

    def tell(self, config: dict[str, Any], loss: Optional[float]) -> None:
        """Record the loss of ``config`` (None: it failed), asked here or proposed elsewhere."""
        key = self.key(config)
        value = None if loss is None or not math.isfinite(loss) else float(loss)
        self.known[key] = value
        trial = self.asked.pop(key, None)
        if trial is not None:
            self.study.tell(trial, value, state=TrialState.COMPLETE if value is not None
                            else TrialState.FAIL)
            return
        if value is None or set(config) != set(self.distributions):
            return
        try:  # a warm-start config joins the model when it lies inside this space
            self.study.add_trial(create_trial(params=config, distributions=self.distributions,
                                              value=value))
        except ValueError:
            pass
