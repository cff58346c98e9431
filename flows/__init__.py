"""Prefect flows: ``automl`` (train) and, later, scoring and serving."""

from flows._env import apply_prefect_defaults
from flows._logging import quiet_user_errors

apply_prefect_defaults()
quiet_user_errors()
