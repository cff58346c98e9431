"""Prefect flows: ``automl`` (train) and, later, scoring and serving."""

from flows._env import apply_prefect_defaults

apply_prefect_defaults()
