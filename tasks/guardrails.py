"""Data guardrails in the manner of Azure AutoML: each check reports Passed, Done or Alerted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from featurizers._numbers import not_numbers, number_share
from featurizers._profile import DROPPED_KINDS, ColumnProfile
from tasks.errors import listed, shown

__all__ = ["Guardrail", "run_guardrails"]

Status = Literal["Passed", "Done", "Alerted"]
HIGH_MISSING = 0.5
IMBALANCE_RATIO = 0.2
LEAK_PURITY = 0.99
LEAK_CORRELATION = 0.99
_LEAK_SAMPLE = 20_000
MOSTLY_NUMBERS = 0.5  # a categorical column with at least this share of numbers is flagged


@dataclass(frozen=True)
class Guardrail:
    """One guardrail's outcome: ``Done`` means the system fixed it, ``Alerted`` needs a person."""

    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict:
        """Plain-dict form for tables and JSON."""
        return asdict(self)


def _column_checks(profiles: dict[str, ColumnProfile]) -> list[Guardrail]:
    kept = {n: p for n, p in profiles.items() if p.kind not in DROPPED_KINDS}
    dropped = [f"{n} ({p.kind})" for n, p in profiles.items() if p.kind in DROPPED_KINDS]
    imputed = [n for n, p in kept.items() if p.missing_fraction > 0]
    sparse = [f"{n} ({p.missing_fraction:.0%})" for n, p in kept.items()
              if p.missing_fraction > HIGH_MISSING]
    high_card = [n for n, p in kept.items() if p.kind == "high_cardinality"]
    return [
        Guardrail("missing_feature_values", "Done" if imputed else "Passed",
                  f"imputed with missing indicators: {listed(imputed)}" if imputed
                  else "no missing values in the features"),
        Guardrail("high_missing_rate", "Alerted" if sparse else "Passed",
                  f"over {HIGH_MISSING:.0%} missing (kept, with indicators): {listed(sparse)}"
                  if sparse else f"no feature is over {HIGH_MISSING:.0%} missing"),
        Guardrail("high_cardinality", "Done" if high_card else "Passed",
                  f"target and frequency encoded: {listed(high_card)}" if high_card
                  else "no high-cardinality categorical feature"),
        Guardrail("unusable_columns", "Done" if dropped else "Passed",
                  f"dropped ID-like, constant or empty columns: {listed(dropped)}" if dropped
                  else "no ID-like, constant or empty column"),
    ]


def _numbers_with_text(features: pd.DataFrame, profiles: dict[str, ColumnProfile],
                       seed: int) -> Guardrail:
    """Columns of numbers with some text values (``n/a``, ``?``, ``ground``, units). Mostly
    text: read as categories, which loses the numbers' order (Alerted). Nearly all numbers:
    read as numbers, the text values as missing (Done, naming them: a row sent to the HTTP
    service with such a value is refused as not a number)."""
    as_categories, as_missing = [], []
    for name, profile in profiles.items():
        if name not in features or profile.kind not in ("categorical", "high_cardinality",
                                                        "numeric"):
            continue
        column = features[name]
        if profile.kind == "numeric":  # every row: the count is reported
            text = not_numbers(column)
            if len(text):
                as_missing.append(f"{name!r} ({len(text)} values such as {_examples(text)})")
            continue
        present = column.dropna()
        if len(present) > _LEAK_SAMPLE:
            present = present.sample(_LEAK_SAMPLE, random_state=seed)
        share = number_share(present)
        if len(present) and MOSTLY_NUMBERS <= share:
            as_categories.append(f"{name!r} ({share:.0%} numbers; also "
                                 f"{_examples(not_numbers(present))})")
    details = []
    if as_categories:
        details.append(f"read as categories although mostly numbers: "
                       f"{'; '.join(as_categories[:5])}; blank or fix the text values to have "
                       "them read as numbers (missing values are imputed)")
    if as_missing:
        details.append(f"read as numbers, their text values and infinities as missing: "
                       f"{'; '.join(as_missing[:5])}")
    if not details:
        return Guardrail("numbers_with_text", "Passed", "no column mixes numbers and text")
    return Guardrail("numbers_with_text", "Alerted" if as_categories else "Done",
                     ". ".join(details))


def _examples(text: pd.Series) -> str:
    return ", ".join(repr(v) for v in pd.unique(text.astype(str).str.strip())[:3])


def _class_imbalance(y: pd.Series) -> Guardrail:
    counts = y.value_counts()
    counts = counts[counts > 0]  # a categorical column lists its unused categories too
    ratio = counts.min() / counts.max()
    if ratio < IMBALANCE_RATIO:
        return Guardrail(
            "class_imbalance", "Alerted",
            f"smallest class {shown(counts.idxmin())} has {counts.min()} rows, "
            f"{ratio:.1%} of the largest ({counts.max()}); prefer balanced_accuracy, f1_macro or "
            "average_precision as the metric",
        )
    return Guardrail("class_imbalance", "Passed", f"smallest/largest class ratio {ratio:.2f}")


def _similar_labels(y: pd.Series) -> Guardrail:
    """Labels that differ only in case (and spaces around them) are likely one class typed
    two ways: each is trained as a class of its own."""
    labels = pd.Series(sorted({v for v in y.dropna() if isinstance(v, str)}), dtype=object)
    folded = labels.str.strip().str.casefold()
    alike = [list(labels[folded == f]) for f in sorted(set(folded[folded.duplicated()]))]
    if alike:
        pairs = "; ".join(" and ".join(shown(v) for v in group) for group in alike[:3])
        more = f" (and {len(alike) - 3} more)" if len(alike) > 3 else ""
        return Guardrail("similar_labels", "Alerted",
                         f"target labels {pairs}{more} differ only in case: each is a class of "
                         "its own; if they are one class, write them alike in the data")
    return Guardrail("similar_labels", "Passed", "no two target labels differ only in case")


def _leak_score(feature: pd.Series, y: pd.Series, task: str) -> float:
    numeric = pd.to_numeric(feature, errors="coerce") if feature.dtype != bool else feature
    if task == "regression":
        if numeric.notna().mean() < 0.95 or numeric.nunique() < 3:
            return 0.0
        corr = np.corrcoef(numeric.fillna(numeric.median()).astype(float), y.astype(float))[0, 1]
        return float(abs(corr)) if np.isfinite(corr) else 0.0
    if numeric.notna().mean() >= 0.95 and numeric.nunique() > 20:
        groups = pd.qcut(numeric.rank(method="first"), 20, labels=False)
    elif feature.nunique() <= max(20, len(feature) // 5):
        groups = feature.astype("object").where(feature.notna(), "__missing__")
    else:
        return 0.0
    table = pd.crosstab(groups, y)
    return float(table.max(axis=1).sum() / len(y))


def _target_leakage(frame: pd.DataFrame, y: pd.Series, task: str,
                    profiles: dict[str, ColumnProfile], seed: int) -> Guardrail:
    kept = [n for n, p in profiles.items() if p.kind in ("numeric", "categorical")]
    if len(frame) > _LEAK_SAMPLE:
        rows = np.random.default_rng(seed).choice(len(frame), _LEAK_SAMPLE, replace=False)
        frame, y = frame.iloc[rows], y.iloc[rows]
    baseline = float(y.value_counts(normalize=True).max()) if task == "classification" else 0.0
    threshold = LEAK_PURITY if task == "classification" else LEAK_CORRELATION
    leaks = []
    if baseline < threshold:
        leaks = [n for n in kept[:500] if _leak_score(frame[n], y, task) >= threshold]
    if leaks:
        how = "predicts the target almost perfectly on its own"
        return Guardrail("target_leakage", "Alerted",
                         f"{listed(leaks)} {how}; if it is only known after the outcome, "
                         "exclude it with --exclude-columns")
    return Guardrail("target_leakage", "Passed", "no single feature predicts the target alone")


def run_guardrails(
    frame: pd.DataFrame,
    target: str,
    task: str,
    profiles: dict[str, ColumnProfile],
    n_missing_target: int,
    seed: int = 0,
) -> list[Guardrail]:
    """Run every guardrail on the training table (rows with a target only).

    Parameters
    ----------
    frame : DataFrame
        Features and target.
    target : str
    task : {"classification", "regression"}
    profiles : dict of str to ColumnProfile
        From :func:`featurizers.profile_columns` on the features.
    n_missing_target : int
        Rows dropped before this call because their target was missing.
    seed : int, default=0

    Returns
    -------
    list of Guardrail
    """
    y = frame[target]
    rails = [
        Guardrail("missing_target", "Done" if n_missing_target else "Passed",
                  f"dropped {n_missing_target} rows whose target is missing"
                  if n_missing_target else "every row has a target"),
        *_column_checks(profiles),
        _numbers_with_text(frame, profiles, seed),
    ]
    if task == "classification":
        rails += [_class_imbalance(y), _similar_labels(y)]
    rails.append(_target_leakage(frame.drop(columns=[target]), y, task, profiles, seed))
    return rails
