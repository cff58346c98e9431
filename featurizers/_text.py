"""TF-IDF for free-text columns, reduced to a few dense components."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

__all__ = ["TextEncoder"]


class TextEncoder(TransformerMixin, BaseEstimator):
    """TF-IDF of word 1-2-grams of one text column, then truncated SVD to dense components.

    The SVD step (latent semantic analysis) keeps the output dense and small so every model family,
    including those that do not accept sparse input, can use it.

    Parameters
    ----------
    max_features : int, default=5000
        Vocabulary size of the TF-IDF step.
    n_components : int, default=32
        Dense components kept; fewer when the vocabulary is smaller.
    random_state : int, default=0
        Seed of the randomized SVD.

    Attributes
    ----------
    vectorizer_ : TfidfVectorizer
    svd_ : TruncatedSVD or None
        None when the vocabulary is too small to reduce; the TF-IDF columns are used as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> text = pd.Series(["red apples", "green apples", "red cars", "fast green cars"])
    >>> TextEncoder(n_components=2).fit_transform(text).shape
    (4, 2)
    """

    def __init__(self, max_features: int = 5000, n_components: int = 32, random_state: int = 0):
        self.max_features = max_features
        self.n_components = n_components
        self.random_state = random_state

    @staticmethod
    def _documents(X) -> list[str]:
        values = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X).ravel())
        return values.astype("object").where(values.notna(), "").astype(str).tolist()

    def fit(self, X, y=None):
        """Learn the vocabulary and the SVD basis.

        Parameters
        ----------
        X : Series, one-column DataFrame or 1-D array of str
        y : ignored

        Returns
        -------
        self
        """
        documents = self._documents(X)
        self.column_ = str(getattr(X, "name", None) or (
            X.columns[0] if isinstance(X, pd.DataFrame) else "text"))
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features, ngram_range=(1, 2), min_df=1, sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",
        )
        try:
            tfidf = self.vectorizer_.fit_transform(documents)
        except ValueError:  # no words at all: encode as one empty column
            self.vectorizer_ = TfidfVectorizer(analyzer="char", ngram_range=(1, 1))
            tfidf = self.vectorizer_.fit_transform([d or " " for d in documents])
        k = min(self.n_components, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        self.svd_ = None
        if k >= 1 and tfidf.shape[1] > self.n_components:
            self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state).fit(tfidf)
        return self

    def transform(self, X):
        """Return dense components (or the TF-IDF columns when the vocabulary was tiny).

        Parameters
        ----------
        X : Series, one-column DataFrame or 1-D array of str

        Returns
        -------
        ndarray of shape (n_samples, n_output_features)
        """
        check_is_fitted(self, "vectorizer_")
        tfidf = self.vectorizer_.transform(self._documents(X))
        return self.svd_.transform(tfidf) if self.svd_ is not None else tfidf.toarray()

    def get_feature_names_out(self, input_features=None):
        """``<column>_tfidf0, ...`` (components) or ``<column>_<term>`` (tiny vocabularies)."""
        check_is_fitted(self, "vectorizer_")
        if self.svd_ is not None:
            names = [f"tfidf{i}" for i in range(self.svd_.n_components)]
        else:
            names = list(self.vectorizer_.get_feature_names_out())
        return np.asarray([f"{self.column_}_{name}" for name in names], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
