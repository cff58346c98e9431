"""Every registered model family keeps the plug-in contract; the registry validates plug-ins."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyRegressor

from models import DataShape, FamilyRegistry, make_model, registry
from featurizers import AutoFeaturizer
from tasks.settings import TrainSettings
from tasks.split import SplitPlan
from tasks.train import evaluate_candidate
from tasks.types import CandidateSpec
from tasks.validate import prepare_data
from tests.conftest import awkward_classification, fixed_family, small_regression

FAMILIES = registry().names()
TABULAR = sorted(set(registry().names("classification")) | set(registry().names("regression")))
SHAPE = DataShape(n_rows=200, n_features=8, n_classes=2)


def _data(task: str):
    if task == "classification":
        frame = awkward_classification(n=120).dropna(subset=["label"])
        return frame.drop(columns=["label"]), frame["label"].to_numpy()
    frame = small_regression(n=120)
    return frame.drop(columns=["y"]), frame["y"].to_numpy()


def test_the_issue_families_are_registered():
    expected = {"linear", "elastic_net", "random_forest", "extra_trees", "hist_gradient_boosting",
                "xgboost", "knn", "naive", "seasonal_naive", "exponential_smoothing", "theta",
                "arima", "global_linear", "global_hist_gradient_boosting", "global_xgboost"}
    assert expected <= set(FAMILIES)
    assert registry().skipped == {}


@pytest.mark.parametrize("name", FAMILIES)
def test_family_declaration(name):
    family = registry().get(name)
    assert family.tasks and family.cost > 0 and isinstance(family.needs_scaling, bool)
    for task in family.tasks:
        space = family.search_space(task, SHAPE)
        initial = family.initial_config(task, SHAPE)
        assert set(initial) <= set(space) | set(initial)
        assert set(space) <= set(initial), "the cheap start sets every searched parameter"


@pytest.mark.parametrize("name", TABULAR)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_family_builds_models_that_fit_and_predict(name, task):
    family = registry().get(name)
    if task not in family.tasks:
        pytest.skip(f"{name} does not declare {task}")
    X, y = _data(task)
    rng = np.random.default_rng(0)
    space = family.search_space(task, DataShape(len(X), X.shape[1], 2))
    configs = [family.initial_config(task, SHAPE),
               {k: p.sample(rng) for k, p in space.items()}]
    for config in configs:
        estimator = family.build(task, config, seed=0)
        assert repr(clone(estimator)) == repr(estimator)
        model = make_model(task, AutoFeaturizer(scale=family.needs_scaling, task=task),
                           estimator).fit(X, y)
        prediction = model.predict(X.head(7))
        assert prediction.shape == (7,)
        if task == "classification":
            proba = model.predict_proba(X.head(7))
            assert proba.shape == (7, 2) and np.allclose(proba.sum(axis=1), 1)
            assert set(prediction) <= set(model.classes_) == {"no", "yes"}


def test_search_spaces_shrink_or_stay_with_data_size():
    small, large = DataShape(1_000, 10, 2), DataShape(200_000, 10, 2)
    assert registry().get("knn").is_applicable("classification", small)
    assert not registry().get("knn").is_applicable("classification", large)
    forest = registry().get("random_forest")
    assert (forest.search_space("regression", large)["n_estimators"].high
            < forest.search_space("regression", small)["n_estimators"].high)


_Dummy = fixed_family("linear", {"regression"}, DummyRegressor)


def test_registry_rejects_a_name_collision_and_says_what_to_fix():
    reg = FamilyRegistry().discover()
    with pytest.raises(ValueError, match="registered twice.*rename one"):
        reg.add(_Dummy, origin="test")


def test_registry_rejects_unknown_tasks():
    bad = type("Bad", (_Dummy,), {"name": "bad", "tasks": frozenset({"clustering"})})
    with pytest.raises(ValueError, match="unknown tasks"):
        FamilyRegistry().add(bad, origin="test")


def test_third_party_family_through_an_entry_point(tmp_path, monkeypatch):
    (tmp_path / "acme_models.py").write_text(textwrap.dedent("""
        from sklearn.dummy import DummyClassifier, DummyRegressor
        from models import ModelFamily

        class Constant(ModelFamily):
            name = "acme_constant"
            tasks = frozenset({"classification", "regression"})

            @classmethod
            def search_space(cls, task, shape):
                return {}

            @classmethod
            def initial_config(cls, task, shape):
                return {}

            @classmethod
            def build(cls, task, config, seed):
                return DummyClassifier() if task == "classification" else DummyRegressor()
    """))
    dist = tmp_path / "acme_models-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[automl.models]\nconstant = acme_models:Constant\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reg = registry(refresh=True)
        assert "acme_constant" in reg.names("regression")
    finally:
        monkeypatch.undo()
        sys.modules.pop("acme_models", None)
        registry(refresh=True)
    assert "acme_constant" not in registry().names()


def test_a_family_module_with_a_missing_dependency_is_skipped_with_a_message(tmp_path,
                                                                                monkeypatch):
    (tmp_path / "broken_models.py").write_text("import not_a_real_package_xyz\n")
    dist = tmp_path / "broken_models-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[automl.models]\nbroken = broken_models\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reg = FamilyRegistry().discover()
        assert any("not_a_real_package_xyz" in why for why in reg.skipped.values())
        assert "xgboost" in reg.names()
    finally:
        monkeypatch.undo()


def test_broken_plug_ins_are_skipped_with_why_and_the_rest_still_load(tmp_path, monkeypatch):
    """One broken plug-in stopped every run (a traceback at import of flows.train)."""
    (tmp_path / "acme_broken.py").write_text(textwrap.dedent("""
        from sklearn.dummy import DummyRegressor
        from models import ModelFamily

        class Named(ModelFamily):
            tasks = frozenset({"regression"})
            search_space = classmethod(lambda cls, task, shape: {})
            initial_config = classmethod(lambda cls, task, shape: {})
            build = classmethod(lambda cls, task, config, seed: DummyRegressor())

        Linear = type("Linear", (Named,), {"name": "linear"})
        NoTasks = type("NoTasks", (Named,), {"name": "no_tasks", "tasks": frozenset()})
        Plain = type("Plain", (Named,), {"name": "plain", "tasks": frozenset({"forecasting"})})
        Mixed = type("Mixed", (Named,), {"name": "mixed",
                                         "tasks": frozenset({"forecasting", "regression"})})
        Fine = type("Fine", (Named,), {"name": "acme_fine"})
    """))
    (tmp_path / "acme_raises.py").write_text("raise RuntimeError('bad plug-in')\n")
    dist = tmp_path / "acme_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[automl.models]\n" + "".join(
        f"{name} = {value}\n" for name, value in [
            ("typo", "acme_broken:DoesNotExist"), ("raises", "acme_raises"),
            ("linear", "acme_broken:Linear"), ("no_tasks", "acme_broken:NoTasks"),
            ("plain", "acme_broken:Plain"), ("mixed", "acme_broken:Mixed"),
            ("fine", "acme_broken:Fine")]))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reg = FamilyRegistry().discover()
        why = {origin.split(" = ")[0].removeprefix("entry point "): text
               for origin, text in reg.skipped.items()}
        assert "AttributeError" in why["typo"] and "DoesNotExist" in why["typo"]
        assert why["raises"] == "RuntimeError: bad plug-in"
        assert "registered twice" in why["linear"] and "declares no tasks" in why["no_tasks"]
        assert "must subclass models.ForecastFamily" in why["plain"]
        assert "used for regression only" in why["mixed"]  # was skipped for regression too
        assert "mixed" in reg.names("regression") and "mixed" not in reg.names("forecasting")
        assert "acme_fine" in reg.names("regression") and "xgboost" in reg.names()
        assert reg.get("linear").__module__ == "models.linear"
        from tasks.publish import package_versions

        assert package_versions()["acme-broken"] == "1.0"  # for loading its models elsewhere
    finally:
        monkeypatch.undo()
        for module in ("acme_broken", "acme_raises"):
            sys.modules.pop(module, None)


class _NoProba(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


class _ShortProba(_NoProba):
    def predict_proba(self, X):
        return np.full((len(X) - 1, len(self.classes_)), 0.5)


class _NanProba(_NoProba):
    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), np.nan)


@pytest.mark.parametrize("estimator, says", [
    (_NoProba, "TypeError: _NoProba has no predict_proba: a classification family's estimator "
               "must give class probabilities"),
    (_ShortProba, "ValueError: predict_proba returned shape (39, 2) for 40 rows; expected "
                  "(40, 2)"),
    (_NanProba, "ValueError: predict_proba returned probabilities that are not finite"),
])
def test_a_classifier_family_without_usable_probabilities_fails_saying_why(estimator, says):
    """They failed as 'This Pipeline has no attribute predict_proba', a broadcasting error and
    'index -1 is out of bounds for axis 0 with size 0'."""
    frame = awkward_classification(n=120)
    data = prepare_data(frame, TrainSettings(data="x", target="label", task="classification"))
    rows = np.arange(len(data.y))
    plan = SplitPlan("holdout", ((rows[40:], rows[:40]),), 40)
    reg = registry()
    reg.add(fixed_family("test_bad_proba", {"classification"}, estimator), origin="test")
    try:
        result = evaluate_candidate(CandidateSpec(1, "test_bad_proba", {}), data, plan, seed=0)
    finally:
        registry(refresh=True)
    assert (result.status, result.error) == ("failed", says)


def test_ensemble_keeps_the_model_contract():
    from models._ensemble import make_ensemble

    X, y = _data("classification")
    members = [make_model("classification", AutoFeaturizer(scale=True), registry().get(name).build(
        "classification", registry().get(name).initial_config("classification", SHAPE), 0)
    ).fit(X, y) for name in ("linear", "random_forest")]
    blend = make_ensemble("classification", members, [0.25, 0.75])
    expected = 0.25 * members[0].predict_proba(X) + 0.75 * members[1].predict_proba(X)
    np.testing.assert_allclose(blend.predict_proba(X), expected)
    assert list(blend.classes_) == ["no", "yes"]
    assert set(blend.predict(X.head(5))) <= {"no", "yes"}
    with pytest.raises(ValueError, match="missing column"):
        blend.predict(X.drop(columns="city"))
