"""The positive class of two: what average precision and the charts score."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from tasks.errors import AutoMLInputError
from tasks.settings import TrainSettings
from tasks.validate import prepare_data


def _churn(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """About one row in six churns, and x1 tells it only roughly."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    churns = rng.random(n) < 1 / (1 + np.exp(-(1.2 * x1 - 2.0)))
    return pd.DataFrame({"x1": x1, "x2": x2, "label": np.where(churns, "churn", "stay")})


def _prepared(labels, **settings) -> object:
    frame = pd.DataFrame({"x": np.arange(len(labels), dtype=float), "label": labels})
    return prepare_data(frame, TrainSettings(data="x", target="label", task="classification",
                                             **settings))


@pytest.mark.parametrize("labels, positive", [
    (["stay"] * 30 + ["churn"] * 10, "churn"),  # text: the rarer, though it sorts first
    (["no"] * 30 + ["yes"] * 10, "yes"),
    (["b"] * 20 + ["a"] * 20, "b"),  # as common: the later in order
    ([1] * 30 + [0] * 10, 1),  # numbers: 1, even when it is the common one
    ([True] * 30 + [False] * 10, True),
])
def test_the_default_positive_class(labels, positive):
    """Text labels scored the class that sorts last: 'stay', not the rare 'churn'."""
    data = _prepared(labels)
    assert data.positive_class == positive and data.classes[1] == positive
    assert (data.labels == np.asarray(labels, dtype=object)).all()  # the codes follow the order


def test_a_given_positive_class_and_its_errors():
    labels = ["stay"] * 30 + ["churn"] * 10
    assert _prepared(labels, positive_class="stay").positive_class == "stay"
    assert _prepared([1] * 30 + [0] * 10, positive_class="0").positive_class == 0
    with pytest.raises(AutoMLInputError, match=r"^--positive-class 'Churn' is not a class of "
                       r"target 'label'; give one of 'churn', 'stay'$"):
        _prepared(labels, positive_class="Churn")
    with pytest.raises(AutoMLInputError, match=r"^--positive-class applies to two classes; "
                       r"target 'label' has 3: leave it out$"):
        _prepared(labels + ["gone"] * 5, positive_class="churn")
    with pytest.raises(ValueError, match="positive_class applies to classification only"):
        TrainSettings(data="x", target="label", task="regression", positive_class="1")


@pytest.mark.usefixtures("prefect_harness")
def test_average_precision_scores_the_positive_class(tmp_path):
    """Trained for average precision, a run scored (and chose by) the AP of 'stay', the
    majority: near 1 whatever the model. A rerun for another positive class must not reuse the
    first run's cached candidates, whose labels were encoded the other way."""
    from flows.train import train

    frame = _churn()
    common = dict(target="label", task="classification", metric="average_precision",
                  include=["linear"], max_trials=2, seed=1)
    rare = train(data=frame, output=str(tmp_path / "rare"), **common)
    common_class = train(data=frame, output=str(tmp_path / "common"), positive_class="stay",
                         **common)
    # About one row in six churns: AP of 'churn' is far from that of 'stay'.
    assert rare.score < 0.8 < 0.9 < common_class.score
    assert not any(c.cached for c in common_class.leaderboard)
    metrics = json.loads((tmp_path / "rare" / "metrics.json").read_text())
    assert metrics["positive_class"] == "churn"
    assert metrics["summary"]["positive class"].startswith("'churn' (the rarer;")
    manifest = json.loads((tmp_path / "rare" / "manifest.json").read_text())
    model = joblib.load(rare.model_path)
    assert manifest["classes"] == list(model.classes_) == ["churn", "stay"]  # sorted, as before
