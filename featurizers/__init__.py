"""scikit-learn transformers that turn raw columns into model inputs, and the profiling that
picks them."""

from featurizers._auto import AutoFeaturizer
from featurizers._cleaning import CategoryStrings, ToNumeric
from featurizers._datetime import DatetimeFeatures
from featurizers._frequency import FrequencyEncoder
from featurizers._profile import ColumnProfile, parse_times, profile_columns, utc_naive
from featurizers._text import TextEncoder

__all__ = [
    "AutoFeaturizer",
    "CategoryStrings",
    "ColumnProfile",
    "DatetimeFeatures",
    "FrequencyEncoder",
    "TextEncoder",
    "ToNumeric",
    "parse_times",
    "profile_columns",
    "utc_naive",
]
