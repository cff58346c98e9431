"""scikit-learn transformers that turn raw columns into model inputs, and the profiling that
picks them."""

from featurizers._auto import AutoFeaturizer
from featurizers._cleaning import CategoryStrings, ToNumeric
from featurizers._datetime import DatetimeFeatures
from featurizers._frequency import FrequencyEncoder
from featurizers._profile import ColumnProfile, profile_columns
from featurizers._text import TextEncoder
from featurizers._times import (
    day_first,
    has_zone,
    on_clock_of,
    parse_times,
    utc_naive,
    utc_offsets,
    wall_clock,
)

__all__ = [
    "AutoFeaturizer",
    "CategoryStrings",
    "ColumnProfile",
    "DatetimeFeatures",
    "day_first",
    "FrequencyEncoder",
    "has_zone",
    "on_clock_of",
    "TextEncoder",
    "ToNumeric",
    "parse_times",
    "profile_columns",
    "utc_naive",
    "utc_offsets",
    "wall_clock",
]
