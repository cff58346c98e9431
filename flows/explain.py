"""Raw-column permutation importance of any candidate of a finished run, on demand.

    python -m flows.explain --results DIR --data PATH [--candidate ID] [--repeats N]

The run's settings come from ``DIR/manifest.json`` and the candidate (default: the published
one) from ``DIR/leaderboard.csv``. The candidate is trained again on the first validation fold's
training rows of the same split, and its columns are shuffled on that fold's validation rows.
Writes ``DIR/feature_importance_candidate_<ID>.csv`` and prints the top columns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from tasks.errors import AutoMLInputError, OneLineParser
from tasks.explain import explain_model
from tasks.load import load_table
from tasks.settings import FORECASTING_SETTINGS, REGISTRY_SETTINGS, settings_from_kwargs
from tasks.split import plan_split
from tasks.types import CandidateSpec
from tasks.validate import prepare_data

__all__ = ["explain_candidate", "main"]


class _Candidate(NamedTuple):
    """A leaderboard entry to explain: its members (one unless it is an ensemble), their
    weights and temperatures, the blend's temperature, and its id."""

    specs: list[CandidateSpec]
    weights: list[float]
    temperatures: list[float]
    blend_temperature: float
    id: int


def _temperature(row: pd.Series) -> float:
    """A leaderboard row's temperature (the column exists only when a run calibrated)."""
    value = row.get("temperature", 1.0)
    return 1.0 if pd.isna(value) else float(value)


def _candidate(leaderboard: pd.DataFrame, candidate: int | None, chosen_id: int) -> _Candidate:
    wanted = chosen_id if candidate is None else candidate
    rows = leaderboard.set_index("id")
    if wanted not in rows.index:
        raise AutoMLInputError(f"candidate {wanted} is not in leaderboard.csv; give one of its ids")
    row = rows.loc[wanted]
    if row["status"] != "ok":
        raise AutoMLInputError(f"candidate {wanted} did not finish ({row['status']}); choose one "
                               "with status ok")
    config = json.loads(row["config"])
    if row["family"] != "ensemble":
        return _Candidate([CandidateSpec(int(wanted), row["family"], config)], [1.0],
                          [_temperature(row)], 1.0, int(wanted))
    members = [int(i) for i in config["members"]]
    specs = [CandidateSpec(i, rows.loc[i, "family"], json.loads(rows.loc[i, "config"]))
             for i in members]
    return _Candidate(specs, [float(w) for w in config["members"].values()],
                      [_temperature(rows.loc[i]) for i in members], _temperature(row),
                      int(wanted))


def explain_candidate(results: str, data: str, candidate: int | None = None,
                      repeats: int = 5) -> Path:
    """Compute and write one candidate's raw-column importance; return the file written."""
    folder = Path(results)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        leaderboard = pd.read_csv(folder / "leaderboard.csv")
    except FileNotFoundError as exc:
        raise AutoMLInputError(f"{results!r} is not a results folder ({Path(exc.filename).name} "
                               "missing); give the --output folder of a training run") from None
    if manifest["settings"].get("task") == "forecasting":
        raise AutoMLInputError(f"{results!r} holds a forecasting run; explain measures the "
                               "columns of classification and regression models")
    # Runs of earlier versions may hold forecasting or registry settings, which they ignored
    # (registering does not change what is explained).
    unread = {*FORECASTING_SETTINGS, *REGISTRY_SETTINGS, "registry"}
    given = {k: v for k, v in manifest["settings"].items() if k not in unread}
    settings = settings_from_kwargs(**{**given, "data": data})
    prepared = prepare_data(load_table(data), settings)
    if prepared.fingerprint != manifest["data_fingerprint"]:
        raise AutoMLInputError(f"{data!r} is not the table this run trained on (its fingerprint "
                               "differs); pass the same --data as the training run")
    plan = plan_split(prepared.y, settings.task, settings.seed, settings.cv_folds,
                      settings.validation_fraction, prepared.n_validation_rows,
                      time_budget=settings.effective_time_budget,
                      n_features=prepared.X.shape[1])
    chosen_id = int(metrics["best"]["id"])
    chosen = _candidate(leaderboard, candidate, chosen_id)
    explanation = explain_model(chosen.specs, chosen.weights, prepared, plan, metrics["metric"],
                                settings.seed, final_model=None, n_repeats=repeats,
                                temperatures=chosen.temperatures,
                                blend_temperature=chosen.blend_temperature)
    path = folder / f"feature_importance_candidate_{chosen.id}.csv"
    explanation.table.to_csv(path, index=False)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: exit 0 with the file written, 2 with one ``error:`` line on bad input."""
    parser = OneLineParser(prog="python -m flows.explain", description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="results folder of a training run")
    parser.add_argument("--data", required=True, help="the training table of that run")
    parser.add_argument("--candidate", type=int, help="leaderboard id (default: the published)")
    parser.add_argument("--repeats", type=int, default=5, help="shuffles per column")
    args = parser.parse_args(argv)
    try:
        path = explain_candidate(args.results, args.data, args.candidate, args.repeats)
    except AutoMLInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = pd.read_csv(path)
    print(table[["feature", "importance", "std"]].head(10).to_string(index=False))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
