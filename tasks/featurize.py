"""Fit the featurizer once on the whole training table: a fail-fast check and a summary."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from featurizers import AutoFeaturizer
from tasks.errors import AutoMLInputError
from tasks.validate import PreparedData

__all__ = ["featurization_summary", "featurize_task"]


def featurization_summary(data: PreparedData, seed: int = 0) -> pd.DataFrame:
    """Map every engineered feature back to its raw column and transformer.

    Fitting here also proves, before any budget is spent on candidates, that the chosen
    transformers accept this data.

    Returns
    -------
    DataFrame
        Columns ``feature`` (engineered), ``raw_column``, ``transformer``.
    """
    featurizer = AutoFeaturizer(roles=data.roles, task=data.task, random_state=seed)
    labels = data.y
    try:
        featurizer.fit(data.X, labels)
    except ValueError as exc:
        raise AutoMLInputError(f"featurization failed: {str(exc).splitlines()[0]}") from None
    rows = []
    for name, transformer, columns in featurizer.transformer_.transformers_:
        if name == "remainder":
            continue
        columns = [columns] if isinstance(columns, str) else list(columns)
        produced = transformer.get_feature_names_out(
            None if name.startswith("text_") else columns
        )
        for feature in produced:
            raw = next((c for c in sorted(columns, key=len, reverse=True)
                        if str(feature).startswith(c) or f"_{c}" in str(feature)), columns[0])
            rows.append({"feature": f"{name}__{feature}", "raw_column": raw, "transformer": name})
    return pd.DataFrame(rows, columns=["feature", "raw_column", "transformer"])


@task(name="featurize", cache_policy=NO_CACHE)
def featurize_task(data: PreparedData, seed: int) -> pd.DataFrame:
    """Fit the column transformer on all rows and summarize the engineered features."""
    return featurization_summary(data, seed)
