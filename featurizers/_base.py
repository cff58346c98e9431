"""The shared input handling of the table transformers (DataFrame or 2-D array in, column-wise)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from featurizers._profile import as_frame

__all__ = ["TableTransformer"]


class TableTransformer(TransformerMixin, BaseEstimator):
    """Base class: records the input columns in ``fit`` and checks them in ``transform``.

    Subclasses accept strings and missing values (declared in their tags), which is why they read
    their input as a DataFrame rather than through ``check_array``'s numeric conversion.
    """

    def _start_fit(self, X) -> pd.DataFrame:
        frame = as_frame(X)
        if len(frame) == 0:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return frame

    def _checked_frame(self, X, fitted: str) -> pd.DataFrame:
        check_is_fitted(self, fitted)
        frame = as_frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {frame.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return frame

    def _input_names(self, input_features=None) -> list[str]:
        if input_features is not None:
            return [str(name) for name in input_features]
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return [f"x{i}" for i in range(self.n_features_in_)]
        return [str(name) for name in names]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags
