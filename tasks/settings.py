"""The validated settings object that travels through a training run."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.errors import AutoMLInputError

__all__ = [
    "AtLeastOne",
    "CLASSIFICATION_METRICS",
    "ColumnName",
    "FORECASTING_METRICS",
    "FORECASTING_SETTINGS",
    "REGISTRY_SETTINGS",
    "TABULAR_SETTINGS",
    "Folds",
    "Fraction",
    "Finite",
    "NonNegative",
    "REGRESSION_METRICS",
    "Seed",
    "Seconds",
    "StdErrors",
    "TaskType",
    "TrainSettings",
    "Windows",
    "Workers",
    "settings_from_kwargs",
]

TaskType = Literal["classification", "regression", "forecasting"]

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "roc_auc",
    "log_loss",
    "f1_macro",
    "average_precision",
)
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
FORECASTING_METRICS = ("mase", "smape", "owa", "rmse", "mae")
METRICS_BY_TASK = {
    "classification": CLASSIFICATION_METRICS,
    "regression": REGRESSION_METRICS,
    "forecasting": FORECASTING_METRICS,
}

DEFAULT_TIME_BUDGET = 300.0
# Settings that only forecasting reads: given for another task (away from their defaults),
# they are a mistake.
FORECASTING_SETTINGS = ("time_column", "series_id", "horizon", "frequency", "seasonality",
                        "known_features", "short_series", "fill_gaps", "backtest_windows")
# Settings that only classification and regression read (forecasting searches no space, keeps no
# candidate timeout and no HistGradientBoosting baseline, and backtests on the flow's threads):
# given for forecasting, a mistake too.
TABULAR_SETTINGS = ("exit_score", "include_columns", "exclude_columns", "candidate_timeout",
                    "baseline_margin", "predict_time_limit", "portfolio", "search", "halving",
                    "task_runner", "dask_address", "positive_class")
# Settings that only registering reads.
REGISTRY_SETTINGS = ("model_name", "promotion_margin", "promotion_std_errors")

# The bounds of the numeric settings, shared by TrainSettings and the flow's signature: there they
# reach the deployment's parameter schema, so the Prefect UI's form and `prefect deployment run`
# refuse a value out of bounds before any worker starts the run.
ColumnName = Annotated[str, Field(min_length=1)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
AtLeastOne = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0)]
Folds = Annotated[int, Field(ge=2, le=20)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
Workers = Annotated[int, Field(ge=1, le=64)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
StdErrors = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Windows = Annotated[int, Field(ge=1, le=20)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class TrainSettings(BaseModel):
    """Everything a training run needs to know, checked once at the start.

    The flow's flat parameters and the CLI flags map one to one onto these fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(description="Path or fsspec URI of the training table.")
    target: ColumnName = Field(description="Name of the column to predict.")
    task: TaskType
    metric: Optional[str] = None
    time_budget: Optional[Seconds] = None
    max_trials: Optional[AtLeastOne] = None
    seed: Seed = 0
    output: str = "results"
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    exit_score: Optional[Finite] = None
    cv_folds: Optional[Folds] = None
    validation_fraction: Optional[Fraction] = None
    validation_data: Optional[str] = None
    include_columns: list[str] = Field(default_factory=list)
    exclude_columns: list[str] = Field(default_factory=list)
    n_workers: Workers = 2
    candidate_timeout: Optional[Seconds] = None
    ensemble: bool = True
    baseline_margin: NonNegative = 2.0
    portfolio: Optional[str] = None
    search: Literal["tpe", "random"] = "tpe"
    halving: bool = True
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: Optional[str] = None
    registry: Optional[str] = None
    model_name: Optional[str] = None
    promotion_margin: NonNegative = 0.0
    promotion_std_errors: StdErrors = 2.0
    predict_time_limit: Optional[Seconds] = None
    positive_class: Optional[str] = None
    time_column: Optional[str] = None
    series_id: list[str] = Field(default_factory=list)
    horizon: Optional[AtLeastOne] = None
    frequency: Optional[str] = None
    seasonality: Optional[AtLeastOne] = None
    known_features: list[str] = Field(default_factory=list)
    short_series: Literal["fallback", "drop"] = "fallback"
    fill_gaps: Literal["interpolate", "forward", "zero"] = "interpolate"
    backtest_windows: Windows = 3

    @model_validator(mode="after")
    def _check_combinations(self) -> "TrainSettings":
        allowed = METRICS_BY_TASK[self.task]
        if self.metric is not None and self.metric not in allowed:
            raise ValueError(
                f"metric {self.metric!r} does not apply to {self.task}; choose one of "
                + ", ".join(allowed)
            )
        if self.cv_folds is not None and (
            self.validation_fraction is not None or self.validation_data is not None
        ):
            raise ValueError(
                "cv_folds cannot be combined with validation_fraction or validation_data; "
                "give one way to validate"
            )
        if self.validation_fraction is not None and self.validation_data is not None:
            raise ValueError("give validation_fraction or validation_data, not both")
        both = set(self.include) & set(self.exclude)
        if both:
            raise ValueError(f"families {sorted(both)} are both included and excluded; pick one")
        if self.target in self.exclude_columns:
            raise ValueError(f"the target {self.target!r} cannot be an excluded column")
        unregistered = [] if self.registry else self._away_from_default(REGISTRY_SETTINGS)
        if unregistered:
            raise ValueError(f"{unregistered[0]} applies only when registering; give --registry "
                             "too, or leave it out")
        if self.task == "forecasting":
            self._check_forecasting()
            given = self._away_from_default(TABULAR_SETTINGS)
            if given:
                raise ValueError(f"{given[0]} applies to classification and regression only; "
                                 "leave it out for forecasting")
        else:
            given = self._away_from_default(FORECASTING_SETTINGS)
            if given:
                raise ValueError(f"{given[0]} applies to forecasting only; leave it out for "
                                 f"{self.task}, or use --task forecasting")
            if self.positive_class is not None and self.task != "classification":
                raise ValueError("positive_class applies to classification only; leave it out "
                                 f"for {self.task}")
            if self.dask_address and self.task_runner != "dask":
                raise ValueError("dask_address applies only with task_runner 'dask'; give "
                                 "--task-runner dask too, or leave it out")
        return self

    def _away_from_default(self, names: tuple[str, ...]) -> list[str]:
        fields = type(self).model_fields
        return [name for name in names
                if getattr(self, name) != fields[name].get_default(call_default_factory=True)]

    def _check_forecasting(self) -> None:
        if not self.time_column:
            raise ValueError("forecasting needs --time-column: the column holding each row's time")
        if self.horizon is None:
            raise ValueError("forecasting needs --horizon: how many periods ahead to forecast")
        named = [self.time_column, *self.series_id, *self.known_features]
        if self.target in named:
            raise ValueError(f"the target {self.target!r} cannot also be the time column, a "
                             "series id or a known-future feature")
        if self.cv_folds or self.validation_fraction or self.validation_data:
            raise ValueError("forecasting validates on rolling-origin windows; set "
                             "--backtest-windows instead of cv_folds/validation settings")
        repeated = sorted({c for c in named if named.count(c) > 1})
        if repeated:
            raise ValueError(f"column(s) {repeated} are named twice among --time-column, "
                             "--series-id and --known-features")

    @property
    def named_columns(self) -> list[str]:
        """The columns these settings name, the target first; the data must hold them all."""
        if self.task == "forecasting":
            return [self.target, *filter(None, [self.time_column]), *self.series_id,
                    *self.known_features]
        return [self.target, *self.include_columns, *self.exclude_columns]

    @property
    def effective_time_budget(self) -> Optional[float]:
        """Seconds for the whole run: the given budget, else a default unless trials bound it."""
        if self.time_budget is not None:
            return self.time_budget
        return None if self.max_trials is not None else DEFAULT_TIME_BUDGET


def settings_from_kwargs(**kwargs: object) -> TrainSettings:
    """Build :class:`TrainSettings`, turning pydantic's report into one clear line.

    Raises
    ------
    AutoMLInputError
        Naming the first bad setting and what is allowed.
    """
    try:
        return TrainSettings(**kwargs)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
        message = first.get("msg", "invalid value").removeprefix("Value error, ")
        if where:
            raise AutoMLInputError(f"setting {where!r}: {message}") from None
        raise AutoMLInputError(message) from None
