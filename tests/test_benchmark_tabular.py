"""The tabular benchmark's paired bootstrap against HistGradientBoosting defaults."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.tabular import (BENCHDATA, _resampled_scores, main, published, score,
                                summarize, versus_baseline)


def _binary(n: int = 400, seed: int = 0) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.integers(0, 2, n))
    sharp = np.clip(y + rng.normal(0, 0.3, n), 0, 1)
    vague = np.clip(y + rng.normal(0, 3.0, n), 0, 1)
    return y, np.column_stack([1 - sharp, sharp]), np.column_stack([1 - vague, vague])


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss", "rmse"])
def test_resampling_every_row_once_gives_the_score(metric):
    y, sharp, _ = _binary()
    prediction, classes = (sharp[:, 1], None) if metric == "rmse" else (sharp, [0, 1])
    whole = _resampled_scores(metric, y, prediction, classes, np.arange(len(y))[None, :])
    assert whole[0] == pytest.approx(score(metric, y, prediction, classes), rel=1e-6)


def test_a_clearly_better_system_has_its_interval_above_zero_and_a_twin_straddles_it():
    y, sharp, vague = _binary()
    low, high = versus_baseline("roc_auc", y, (sharp, [0, 1]), (vague, [0, 1]))
    assert 0 < low < high
    low, high = versus_baseline("log_loss", y, (vague, [0, 1]), (sharp, [0, 1]))
    assert low < high < 0
    noisy = np.clip(sharp + np.random.default_rng(1).normal(0, 0.01, sharp.shape), 0, 1)
    low, high = versus_baseline("roc_auc", y, (noisy, [0, 1]), (sharp, [0, 1]))
    assert low <= 0 <= high


def _results(*rows: tuple) -> pd.DataFrame:
    """Result rows from ``(dataset, metric, system, score, low, high)``; HGB rows have no
    interval and take 1 s, the others 60 s."""
    return pd.DataFrame([
        {"dataset": d, "metric": m, "system": s, "score": v, "budget": 60,
         "wall_seconds": 1 if s == "hgb" else 60,
         **({} if s == "hgb" else {"vs_hgb_low": low, "vs_hgb_high": high})}
        for d, m, s, v, low, high in rows])


def test_summary_counts_datasets_worse_than_hgb_and_those_beyond_chance():
    rows = _results(("a", "roc_auc", "project", 0.80, -0.05, 0.01),
                    ("a", "roc_auc", "hgb", 0.81, None, None),
                    ("b", "rmse", "project", 2.0, -0.9, -0.2),
                    ("b", "rmse", "hgb", 1.5, None, None))
    last = summarize(rows).splitlines()[-1]
    assert last.startswith("| worse than hgb") and "| 2 (1) |" in last


def test_scores_equal_but_for_the_last_bits_rank_and_compare_as_a_tie():
    rows = _results(("a", "roc_auc", "project", 0.9914021164021164, -0.01, 0.01),
                    ("a", "roc_auc", "hgb", 0.9914021164021165, None, None))
    lines = summarize(rows).splitlines()
    assert "| a | roc_auc | 0.9914 (1.5) | 0.9914 (1.5) |" in lines
    assert lines[-1].startswith("| worse than hgb") and "| 0 (0) |" in lines[-1]


def _main_error(monkeypatch, capsys, *argv: str) -> str:
    monkeypatch.setattr("sys.argv", ["tabular.py", *argv])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_negative_split_seed_is_refused_in_one_line(monkeypatch, capsys):
    assert _main_error(monkeypatch, capsys, "--split-seed", "-1") == (
        "tabular.py: error: --split-seed -1: use an integer from 0 to 2**32 - 1")


@pytest.mark.skipif(not (BENCHDATA / "MANIFEST.csv").is_file(),
                    reason="the benchmark data (../shared/benchdata) is not on this machine")
def test_an_unknown_dataset_is_named_before_anything_runs(monkeypatch, capsys):
    line = _main_error(monkeypatch, capsys, "--datasets", "wdbc", "no_such_set")
    assert "--datasets: no_such_set not in" in line and "choose from adult," in line


def test_what_a_project_run_published_is_read_from_its_metrics(tmp_path):
    facts = {"best": {"family": "ensemble", "config": {"members": {"3": 0.5, "8": 0.5}}},
             "baseline_check": {"gain": 0.006, "std_error": 0.004, "std_errors": 1.5}}
    (tmp_path / "metrics.json").write_text(json.dumps(facts))
    assert published(tmp_path) == "ensemble of 2 (winner 1.5 s.e. over the baseline)"
    facts["baseline_check"].update(std_error=0.0, std_errors=None)  # infinite, null in JSON
    (tmp_path / "metrics.json").write_text(json.dumps(facts))
    assert published(tmp_path) == "ensemble of 2 (winner inf s.e. over the baseline)"
    facts["baseline_check"].update(gain=-0.01)
    (tmp_path / "metrics.json").write_text(json.dumps(facts))
    assert published(tmp_path) == "ensemble of 2 (winner -inf s.e. over the baseline)"
    facts = {"best": {"family": "hist_gradient_boosting", "config": {}}, "baseline_check": None}
    (tmp_path / "metrics.json").write_text(json.dumps(facts))
    assert published(tmp_path) == "hist_gradient_boosting"
