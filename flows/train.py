"""The ``automl`` flow: validate -> split -> featurize -> candidates -> select -> refit -> publish.

Run locally with ``python -m flows.train --data PATH --target COLUMN --task classification``, as a
deployment with ``prefect deployment run automl/train --param ...``, or call :func:`train` from
another flow.
"""

from __future__ import annotations

if __name__ == "__main__":  # the CLI logs to stdout, leaving stderr to the one-line error
    from flows._env import use_cli_logging
    from flows._local_api import start_local_api_early

    use_cli_logging()
    start_local_api_early()

import dataclasses  # noqa: E402
import inspect  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any, Literal, NamedTuple, Optional, Union  # noqa: E402

import pandas as pd  # noqa: E402
from prefect.logging import get_run_logger  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402
from pydantic import Field, WithJsonSchema  # noqa: E402

from flows import _env, _local_api  # noqa: E402
from flows._ensemble import plan_ensemble  # noqa: E402
from flows._forecast import run_forecasting  # noqa: E402
from flows._frames import frame_flow  # noqa: E402
from flows._loop import (  # noqa: E402
    BASELINE_CHECK_SECONDS,
    EXPLAIN_SECONDS,
    REGISTER_SECONDS,
    Budget,
    publish_seconds,
    refit_bytes,
    refit_seconds,
    run_candidates,
)
from flows._registry import (  # noqa: E402
    check_registry, register_task, registering, training_rows_file)
from flows._runners import candidate_runner, flow_threads  # noqa: E402
from flows._report import (  # noqa: E402
    chosen_members,
    explanation_seconds,
    prediction_warnings,
    publish_report_artifacts,
    report_task,
)
from flows._select import (  # noqa: E402
    baseline_of, check_time_for_candidates, choose_families, select_best, summarize_run)
from models import DataShape, registry  # noqa: E402
from models._calibration import calibrates  # noqa: E402
from models._ensemble import make_ensemble  # noqa: E402
from prefect import unmapped  # noqa: E402
from tasks.baseline import BaselineCheck, check_baseline  # noqa: E402
from tasks.artifacts import (  # noqa: E402
    Progress,
    experiment_key,
    mark_progress_failed,
    publish_artifacts,
)
from tasks.evaluate import METRICS, default_metric  # noqa: E402
from tasks.errors import parameter_names  # noqa: E402
from tasks.explain import explain_task  # noqa: E402
from tasks.featurize import featurize_task  # noqa: E402
from tasks.load import FRAME_DATA, frame_table, load_table_task  # noqa: E402
from tasks.publish import check_output_folder, leaderboard_frame, publish_task  # noqa: E402
from tasks.costs import CostModel  # noqa: E402
from tasks.portfolio import load_portfolio  # noqa: E402
from tasks.search import Searcher  # noqa: E402
from tasks.settings import (  # noqa: E402
    AtLeastOne, ColumnName, Finite, Folds, Fraction, NonNegative, Seconds, Seed, StdErrors,
    TrainSettings, Windows, Workers, settings_from_kwargs)
from tasks.split import SplitPlan, split_task  # noqa: E402
from tasks.train import refit_task  # noqa: E402
from tasks.types import CandidateResult, CandidateSummary, TrainResult  # noqa: E402
from tasks.validate import PreparedData, validate_task  # noqa: E402

__all__ = ["train"]

# The families installed where the flow is deployed (entry points included) are the choices of
# the deployment's form; the values themselves are checked by choose_families, whose one-line
# error suggests the closest name.
Family = Annotated[str, WithJsonSchema({"type": "string",
                                        "enum": sorted(registry().names())})]

# A path or URI in the deployment's form and schema (the server refuses `data=123`); a Python
# caller may pass a DataFrame.
TableSource = Annotated[Union[str, Any], WithJsonSchema({"type": "string", "minLength": 1})]

MetricName = Literal["accuracy", "balanced_accuracy", "roc_auc", "log_loss", "f1_macro",
                     "average_precision", "rmse", "mae", "r2", "mape", "mase", "smape",
                     "owa"]


def _run_name() -> str:
    params = flow_run.parameters
    data = params.get("data")
    source = Path(data).name.split(".")[0] if isinstance(data, str) else "dataframe"
    return f"{source}-{params.get('target')}-{params.get('task')}"


@frame_flow(name="automl", flow_run_name=_run_name, on_failure=[mark_progress_failed],
            task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)
def train(
    data: TableSource = Field(
        ..., description="Training table: a CSV/TSV/Parquet path or fsspec URI (or a DataFrame "
        "when called from Python)."),
    target: ColumnName = Field(..., description="Column to predict."),
    task: Literal["classification", "regression", "forecasting"] = Field(
        ..., description="Kind of problem."),
    metric: Optional[MetricName] = Field(
        None, description="Primary metric; default roc_auc (binary), log_loss (multiclass), rmse, "
        "mase (forecasting)."),
    time_budget: Optional[Seconds] = Field(
        None, description="Seconds for the whole run, start-up to publishing (default 300 "
        "unless max_trials is set)."),
    max_trials: Optional[AtLeastOne] = Field(None, description="Stop after this many candidates."),
    seed: Seed = Field(0, description="Seed for splits, search and models."),
    output: str = Field("results", description="Results folder (model.pkl, leaderboard ...)."),
    include: Optional[list[Family]] = Field(
        None, description="Only these model families (empty: all)."),
    exclude: Optional[list[Family]] = Field(None, description="Leave out these families."),
    exit_score: Optional[Finite] = Field(
        None, description="Stop as soon as a candidate reaches this primary-metric value."),
    cv_folds: Optional[Folds] = Field(None, description="Force k-fold cross-validation."),
    validation_fraction: Optional[Fraction] = Field(
        None, description="Force a holdout of this fraction of the rows."),
    validation_data: Optional[str] = Field(
        None, description="Separate validation table (path or URI)."),
    include_columns: Optional[list[str]] = Field(
        None, description="Use only these feature columns."),
    exclude_columns: Optional[list[str]] = Field(
        None, description="Drop these columns before training."),
    n_workers: Workers = Field(2, description="Candidates trained at once (threads)."),
    candidate_timeout: Optional[Seconds] = Field(
        None, description="Seconds after which one candidate is stopped and recorded as timeout."),
    ensemble: bool = Field(True, description="Blend the best candidates when that validates "
                           "better than the best one alone."),
    baseline_margin: NonNegative = Field(
        2.0, description="Publish the search's winner only when it beats HistGradientBoosting "
        "defaults on validation by this many standard errors of the difference (bootstrap); "
        "otherwise publish the defaults. 0 switches the check off."),
    predict_time_limit: Optional[Seconds] = Field(
        None, description="Drop candidates that need more than this many seconds to predict "
        "1,000 rows."),
    positive_class: Optional[str] = Field(
        None, description="Of two classes, the one average precision and the charts score "
        "(default: 1 or True, else the rarer class)."),
    portfolio: Optional[str] = Field(
        None, description="Warm-start portfolio file (default: the packaged one; 'none': "
        "start from each family's cheap configuration)."),
    search: Literal["tpe", "random"] = Field(
        "tpe", description="How configurations are drawn within a family after the warm start: "
        "optuna's TPE model, or uniformly at random."),
    halving: bool = Field(True, description="On large data, try candidates on a subsample first "
                          "and train only the promising ones on all rows."),
    task_runner: Literal["threads", "dask"] = Field(
        "threads", description="Where candidates train: the flow's threads, or Dask (a "
        "LocalCluster of n_workers processes, or the cluster at dask_address)."),
    dask_address: Optional[str] = Field(
        None, description="Address of an existing Dask scheduler (tcp://host:8786)."),
    registry: Optional[str] = Field(
        None, description="Model registry (folder or fsspec URI): the published model becomes "
        "its next version, and the champion when it wins (a forecaster: unless the champion "
        "forecast the periods new to it clearly better)."),
    model_name: Optional[str] = Field(
        None, description="Name in the registry (default: the target column)."),
    promotion_margin: NonNegative = Field(
        0.0, description="How much better (in the primary metric) the new model must score than "
        "the champion, on the same validation rows, to replace it (forecasting: how much "
        "better the champion must have forecast the new periods to stay)."),
    promotion_std_errors: StdErrors = Field(
        2.0, description="How many standard errors of that gain (paired bootstrap of the rows) "
        "the new model must also win by: its score is the winner of a search, so a small gain "
        "can be luck. 0 switches this off."),
    time_column: Optional[str] = Field(None, description="Forecasting: the time column."),
    series_id: Optional[list[str]] = Field(None, description="Forecasting: series-id columns."),
    horizon: Optional[AtLeastOne] = Field(None, description="Forecasting: periods to forecast."),
    frequency: Optional[str] = Field(
        None, description="Forecasting: pandas frequency, e.g. h, D, W-SUN, MS (default: "
        "inferred)."),
    seasonality: Optional[AtLeastOne] = Field(
        None, description="Forecasting: season length in periods (default: from the "
        "frequency: 24 hourly, 7 daily, 52 weekly, 12 monthly, 4 quarterly)."),
    known_features: Optional[list[str]] = Field(
        None, description="Forecasting: feature columns whose future values are known."),
    short_series: Literal["fallback", "drop"] = Field(
        "fallback", description="Forecasting: series too short to backtest get a (seasonal) "
        "naive forecast, or are left out and reported."),
    fill_gaps: Literal["interpolate", "forward", "zero"] = Field(
        "interpolate", description="Forecasting: how missing periods are filled."),
    backtest_windows: Windows = Field(
        3, description="Forecasting: rolling-origin windows of the horizon's length."),
) -> TrainResult:
    """Train, select and publish the best pipeline for a labelled table."""
    # Errors name `time_budget`, not `--time-budget`, unless the command line started the run.
    with parameter_names(inspect.signature(train.fn).parameters, cli=_env.in_command_line()):
        started = _env.RUN_STARTED or time.time()
        frame = data if isinstance(data, pd.DataFrame) else None
        settings = settings_from_kwargs(
            data=FRAME_DATA if frame is not None else data, target=target, task=task,
            metric=metric, time_budget=time_budget, max_trials=max_trials, seed=seed,
            output=output, include=include or [], exclude=exclude or [], exit_score=exit_score,
            cv_folds=cv_folds,
            validation_fraction=validation_fraction, validation_data=validation_data,
            include_columns=include_columns or [], exclude_columns=exclude_columns or [],
            n_workers=n_workers, candidate_timeout=candidate_timeout, ensemble=ensemble,
            baseline_margin=baseline_margin,
            predict_time_limit=predict_time_limit, positive_class=positive_class,
            portfolio=portfolio, search=search,
            halving=halving, task_runner=task_runner, dask_address=dask_address,
            registry=registry, model_name=model_name,
            promotion_margin=promotion_margin, promotion_std_errors=promotion_std_errors,
            time_column=time_column,
            series_id=series_id or [],
            horizon=horizon, frequency=frequency, seasonality=seasonality,
            known_features=known_features or [], short_series=short_series, fill_gaps=fill_gaps,
            backtest_windows=backtest_windows)
        seconds = settings.effective_time_budget
        if seconds is not None and settings.registry:  # registering comes after the budget
            seconds = max(0.0, seconds - REGISTER_SECONDS)
        if seconds is not None and _local_api.started_here():  # so does stopping it at exit
            seconds = max(0.0, seconds - _local_api.STOP_SECONDS)
            get_run_logger().info("%g s of the time budget are kept for stopping the temporary "
                                  "Prefect API at exit", _local_api.STOP_SECONDS)
        with flow_threads(settings.n_workers):
            return run_training(settings, frame, Budget(started, seconds,
                                                         settings.effective_time_budget))


def run_training(settings: TrainSettings, frame: Optional[pd.DataFrame],
                 budget: Budget) -> TrainResult:
    """The body of the flow, step by step (called inside a flow run)."""
    logger = get_run_logger()
    check_output_folder(settings.output)
    choose_families(settings, DataShape(0, 0))  # unknown family names fail before loading
    runner = candidate_runner(settings)  # a missing prefect-dask fails before loading too
    if settings.registry:
        check_registry(settings)  # so do a registry that cannot be written and its champion
    frame = load_table_task(settings.data) if frame is None else frame_table(frame)
    if settings.task == "forecasting":
        return run_forecasting(settings, frame, budget)
    validation = load_table_task(settings.validation_data) if settings.validation_data else None
    prepared = validate_task(frame, settings, validation)
    imbalanced = any(g.name == "class_imbalance" and g.status == "Alerted"
                     for g in prepared.guardrails)
    shape = DataShape(len(prepared.y), prepared.X.shape[1], prepared.n_classes, imbalanced)
    families = choose_families(settings, shape)
    metric = settings.metric or default_metric(settings.task, prepared.n_classes)
    plan = split_task(prepared.y, settings.task, settings.seed, settings.cv_folds,
                      settings.validation_fraction, prepared.n_validation_rows,
                      # The settings' budget, as `flows.explain` plans it (a registry's share
                      # taken from the run's budget must not change the folds).
                      time_budget=settings.effective_time_budget,
                      n_features=prepared.X.shape[1])
    features = featurize_task(prepared, settings.seed)
    logger.info("%d rows, %d columns -> %d features; validating with %s; families: %s",
                len(prepared.y), prepared.X.shape[1], len(features), plan.describe(),
                ", ".join(f.name for f in families))
    key = experiment_key(settings.target, settings.output)
    progress = Progress(key, f"Candidates trained for {settings.target}")
    searcher = Searcher(families, settings.task, shape, metric, settings.seed,
                        warm_start=load_portfolio(settings.task, settings.portfolio),
                        measured_time=budget.seconds is not None, sampler=settings.search)
    costs = CostModel({f.name: f for f in families}, shape)
    with runner as candidates_on:
        results, stop_reason = run_candidates(searcher, prepared, plan, settings, metric,
                                              budget, costs, progress.update, candidates_on)
    check_time_for_candidates(results, budget, settings.candidate_timeout)
    best = select_best(results, metric)
    logger.info("stopped: %s; best single %s %s=%.5g", stop_reason, best.spec.run_name, metric,
                best.metrics[metric])
    final = fit_final(settings, prepared, plan, metric, results, best, budget,
                      baseline_of(results, settings.task, shape))
    chosen, model = final.chosen, final.model
    blended = chosen.spec.family == "ensemble"
    # A blend passed over for the baseline stays on the leaderboard: it was validated.
    results = [*results, final.blend] if final.blend is not None else results
    leaderboard = leaderboard_frame(results, metric, METRICS[metric].greater_is_better,
                                    chosen.spec.id)
    facts, manifest = summarize_run(settings, prepared, plan, metric, chosen, results,
                                    stop_reason, budget, features)
    facts["baseline_check"] = None if final.check is None else final.check.to_dict()
    if final.check is not None:
        facts["summary"]["baseline check"] = final.check.describe(metric)
    facts["warnings"] = prediction_warnings(prepared, chosen)
    for warning in facts["warnings"]:
        logger.warning(warning)
    if facts["warnings"]:
        facts["summary"]["warning"] = "; ".join(facts["warnings"])
    specs, weights, temperatures = chosen_members(chosen, results)
    explanation = explain_task(
        specs, weights, prepared, plan, metric, settings.seed, model,
        fit_seconds=explanation_seconds(chosen, len(plan.folds)),
        seconds_left=budget.remaining() - publish_seconds(chosen.model_bytes),
        temperatures=temperatures,
        blend_temperature=chosen.temperature if chosen.spec.family == "ensemble" else 1.0)
    report = report_task(prepared, chosen, leaderboard, facts["summary"], settings.model_dump(),
                         facts, explanation, features)
    facts["charts"] = report.chart_numbers()
    facts["feature_importance"] = {"source": explanation.source, "top": explanation.table.head(
        10)[["feature", "importance", "std"]].to_dict("records"),
        "near_duplicates": explanation.shared}
    # A registry version records the rows it trained on: the next run compares on new ones.
    rows_file = training_rows_file(prepared, model) if settings.registry else {}
    model_path = publish_task(settings.output, model, leaderboard, facts, manifest,
                              prepared.suite, features, {**report.files, **rows_file})
    progress.update(1.0)
    by_id = {r.spec.id: r for r in results}
    publish_artifacts(key, leaderboard, prepared.guardrails, facts["summary"], metric)
    publish_report_artifacts(key, report)
    decision = None
    if settings.registry:
        output = str(Path(model_path).parent)
        with registering(output):
            decision = register_task(settings, output, prepared, plan, metric, chosen, key,
                                     BASELINE_CHECK_SECONDS
                                     if budget.seconds is not None else None)
    return TrainResult(
        model_path=model_path, output=str(Path(model_path).parent), task=settings.task,
        metric=metric, score=chosen.metrics[metric], best=CandidateSummary.of(chosen, True),
        leaderboard=[CandidateSummary.of(by_id[i], i == chosen.spec.id)
                     for i in leaderboard["id"]],
        guardrails=[g.to_dict() for g in prepared.guardrails], validation=plan.describe(),
        wall_seconds=round(time.time() - budget.started, 2),
        ensemble=None if not blended else {
            int(k): v for k, v in chosen.spec.config["members"].items()},
        promotion=None if decision is None else decision.to_dict(),
        warnings=facts["warnings"])


class FinalModel(NamedTuple):
    """What :func:`fit_final` publishes: its leaderboard entry and fitted model; the comparison
    of the search's winner with the baseline (None when none was made); and the blend planned
    (its leaderboard entry, also when the baseline is published instead; None: no blend)."""

    chosen: CandidateResult
    model: Any
    check: Optional[BaselineCheck]
    blend: Optional[CandidateResult]


def fit_final(settings: TrainSettings, data: PreparedData, plan: SplitPlan, metric: str,
              results: list[CandidateResult], best: CandidateResult, budget: Budget,
              baseline: Optional[CandidateResult] = None) -> FinalModel:
    """Refit the ensemble's members (when it wins and its refits fit the budget) or the best one;
    or the ``baseline`` when the winner does not beat it by ``settings.baseline_margin`` standard
    errors on validation (see :mod:`tasks.baseline`).

    Returns what is published, with the comparison and the blend planned (see
    :class:`FinalModel`).
    """
    logger = get_run_logger()

    def blend_seconds(members: list[CandidateResult]) -> float:
        """Refitting ``members`` on all rows (on the workers, side by side) and writing them."""
        return (refit_seconds(members, plan, settings.n_workers)
                + publish_seconds(refit_bytes(members, plan)) - publish_seconds(0))

    # Short of time, a blend may take what the best alone would: its refit, and the seconds kept
    # for explaining it (explaining then measures the published model in the time left).
    floor = blend_seconds([best]) + EXPLAIN_SECONDS
    ensemble = None
    if settings.ensemble:
        ensemble = plan_ensemble(results, data, metric, best, blend_seconds,
                                 budget.remaining() - publish_seconds(0), floor,
                                 calibrate=calibrates(metric),
                                 predict_limit=settings.predict_time_limit)
    if ensemble is not None and ensemble.passed_over:
        logger.info("ensemble: choosing it took longer than planned; an earlier blend whose "
                    "refits still fit is used (%d better ones passed over)", ensemble.passed_over)
    blend = ensemble.result if ensemble is not None else None
    winner = blend if blend is not None else best
    check = None
    if baseline is not None and settings.baseline_margin > 0:
        # Clock-bound resampling only under a time budget: runs bounded by trials reproduce.
        check = check_baseline(winner, baseline, data.y, data.task, metric,
                               settings.baseline_margin, settings.seed,
                               BASELINE_CHECK_SECONDS if budget.seconds is not None else None)
    refitted = ensemble.members if ensemble is not None else [best]
    if check is not None:
        if check.keeps_baseline and blend_seconds([baseline]) > max(
                budget.remaining() - publish_seconds(0), blend_seconds(refitted)):
            check = dataclasses.replace(check, baseline_fits=False)
        logger.info(check.describe(metric))
        if check.keeps_baseline:
            ensemble, best, refitted = None, baseline, [baseline]
    # A refit that takes longer than planned stops growing (rounds, trees) in time to publish.
    deadline = None if budget.seconds is None else (
        budget.started + budget.seconds - publish_seconds(refit_bytes(refitted, plan)))
    if ensemble is not None:
        futures = refit_task.map([m.spec for m in ensemble.members], data=unmapped(data),
                                 seed=unmapped(settings.seed),
                                 params=[m.refit_params for m in ensemble.members],
                                 temperature=[m.temperature for m in ensemble.members],
                                 deadline=unmapped(deadline))
        members = [f.result() for f in futures]
        weights = ensemble.result.spec.config["members"]
        logger.info("ensemble of %d: %s; %s=%.5g (best single %.5g)", len(weights),
                    ", ".join(f"candidate {m} x {w:.2f}" for m, w in weights.items()),
                    metric, ensemble.result.metrics[metric], best.metrics[metric])
        return FinalModel(ensemble.result, make_ensemble(
            data.task, members, ensemble.weights, ensemble.temperature), check, blend)
    return FinalModel(best, refit_task(best.spec, data, settings.seed, best.refit_params,
                                       best.temperature, deadline), check, blend)


if __name__ == "__main__":
    from flows._cli import main

    raise SystemExit(main(train))
