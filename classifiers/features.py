"""The scikit-learn pipeline, and a fast path that reproduces its features from token lists.

The saved model is a plain scikit-learn `Pipeline`: a `ColumnTransformer` with word (1-2 gram)
TF-IDF over the stemmed word stream (stopwords removed) and character (`char_wb`) TF-IDF over the
unstemmed token stream, then a logistic regression wrapped in `CalibratedClassifierCV`.
Cross-validation on the seed corpus chose the split: stems generalise word features over
affixes, while character n-grams keep the affixes ("memilih" vs "pilihan") that stemming loses.

`FastFeatures` computes exactly the same TF-IDF matrix from the normaliser's token lists with
per-token caches (character n-grams never cross a token in `char_wb`, so each token's n-grams
are looked up once), and records which token each feature occurrence came from, so every
prediction can be explained term by term.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

TOKEN_CACHE_SIZE = 1 << 18


@dataclass(frozen=True)
class ModelSettings:
    """Hyper-parameters of one model; stored in its card so `netra train` can rebuild it."""

    word_ngram_max: int = 2
    char_ngram_min: int = 2
    char_ngram_max: int = 5
    min_df: int = 2
    C: float = 4.0
    class_weight: str | None = "balanced"
    calibration_folds: int = 5
    seed: int = 20240214
    stem: bool = True
    stopwords: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSettings:
        """Inverse of `to_dict`; unknown keys are ignored so older cards still load."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def build_pipeline(settings: ModelSettings) -> Pipeline:
    """An unfitted pipeline over rows of (word stream, character stream) strings."""
    word = TfidfVectorizer(
        analyzer="word",
        token_pattern=r"\S+",
        lowercase=False,
        ngram_range=(1, settings.word_ngram_max),
        min_df=settings.min_df,
        sublinear_tf=True,
        dtype=np.float64,
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        lowercase=False,
        ngram_range=(settings.char_ngram_min, settings.char_ngram_max),
        min_df=settings.min_df,
        sublinear_tf=True,
        dtype=np.float64,
    )
    linear = LogisticRegression(
        C=settings.C,
        solver="liblinear",
        class_weight=settings.class_weight,
        max_iter=2000,
        random_state=settings.seed,
    )
    calibrated = CalibratedClassifierCV(
        linear,
        method="sigmoid",
        cv=StratifiedKFold(settings.calibration_folds, shuffle=True, random_state=settings.seed),
        ensemble=False,  # one linear model + one sigmoid: explanations match the score exactly
    )
    features = ColumnTransformer([("word", word, 0), ("char", char, 1)], sparse_threshold=1.0)
    return Pipeline([("features", features), ("classifier", calibrated)])


def char_token(token: str) -> bool:
    """Whether a token feeds the character n-grams: words only, not placeholders or emoji.

    Placeholders are categories, not spellings: their shared "__" n-grams would let any URL or
    mention count like a contestant's name.
    """
    return not token.startswith("__") and any(ch.isalpha() for ch in token)


def char_wb_ngrams(token: str, low: int, high: int) -> list[str]:
    """The `char_wb` n-grams scikit-learn makes from one whitespace-free token."""
    padded = f" {token} "
    length = len(padded)
    grams: list[str] = []
    for n in range(low, high + 1):
        if length <= n:
            grams.append(padded)
            break
        grams.extend(padded[i : i + n] for i in range(length - n + 1))
    return grams


class Streams(Protocol):
    """A normalised text: unstemmed tokens and, per token, its stem ("" = not a word feature)."""

    @property
    def tokens(self) -> tuple[str, ...]: ...

    @property
    def stems(self) -> tuple[str, ...]: ...


@dataclass
class Explainable:
    """What `token_contributions` needs to split each decision value over the text's tokens."""

    matrix: sp.csr_matrix  # TF-IDF values, documents x features
    counts: sp.csr_matrix  # raw counts, same sparsity structure as `matrix`
    token_doc: np.ndarray  # per token occurrence (all documents in order): its document
    token_unique: np.ndarray  # per token occurrence: its row in `char_map`
    char_map: sp.csr_matrix  # distinct tokens of the batch x features: char n-gram counts
    word_token: np.ndarray  # per word-feature share: token occurrence
    word_doc: np.ndarray  # per word-feature share: document
    word_feature: np.ndarray  # per word-feature share: feature
    word_weight: np.ndarray  # per word-feature share: 1, or 0.5 for each half of a bigram


class FastFeatures:
    """TF-IDF features of token lists, identical to the fitted `ColumnTransformer`'s output."""

    def __init__(self, features: ColumnTransformer) -> None:
        word = features.named_transformers_["word"]
        char = features.named_transformers_["char"]
        self.word_vocabulary: dict[str, int] = {k: int(v) for k, v in word.vocabulary_.items()}
        self.n_word = len(self.word_vocabulary)
        self.char_vocabulary: dict[str, int] = {
            k: int(v) + self.n_word for k, v in char.vocabulary_.items()
        }
        self.n_features = self.n_word + len(self.char_vocabulary)
        self.idf = np.concatenate([word.idf_, char.idf_]).astype(np.float64)
        self.bigrams = word.ngram_range[1] >= 2
        self.char_range: tuple[int, int] = tuple(char.ngram_range)  # type: ignore[assignment]
        self._char_cache: dict[str, list[int]] = {}

    def _char_indices(self, token: str) -> list[int]:
        cached = self._char_cache.get(token)
        if cached is None:
            vocabulary = self.char_vocabulary
            cached = (
                [
                    vocabulary[gram]
                    for gram in char_wb_ngrams(token, *self.char_range)
                    if gram in vocabulary
                ]
                if char_token(token)
                else []
            )
            if len(self._char_cache) > TOKEN_CACHE_SIZE:
                self._char_cache.clear()  # bounded memory on endless streams
            self._char_cache[token] = cached
        return cached

    def transform(
        self, docs: Sequence[Streams], explain: bool = False
    ) -> tuple[sp.csr_matrix, Explainable | None]:
        """TF-IDF matrix (CSR, float64) of normalised texts, plus what explanations need."""
        n_docs = len(docs)
        word_rows: list[int] = []
        word_cols: list[int] = []
        shares: tuple[list[int], list[int], list[int], list[float]] = ([], [], [], [])
        token_rows: list[int] = []
        token_ids: list[int] = []
        distinct: dict[str, int] = {}
        lookup = self.word_vocabulary.get
        bigrams = self.bigrams
        token_base = 0
        for d, doc in enumerate(docs):
            tokens = doc.tokens
            n_tokens = len(tokens)
            token_ids.extend([distinct.setdefault(token, len(distinct)) for token in tokens])
            token_rows.extend([d] * n_tokens)
            stems = [stem for stem in doc.stems if stem]
            found = [lookup(stem) for stem in stems]
            if bigrams:
                found += [lookup(a + " " + b) for a, b in itertools.pairwise(stems)]
            if explain:
                gids = [token_base + i for i, stem in enumerate(doc.stems) if stem]
                n_stems = len(stems)
                for j, index in enumerate(found):
                    if index is None:
                        continue
                    if j < n_stems:
                        shares[0].append(gids[j])
                        shares[1].append(d)
                        shares[2].append(index)
                        shares[3].append(1.0)
                    else:
                        k = j - n_stems
                        shares[0].extend((gids[k], gids[k + 1]))
                        shares[1].extend((d, d))
                        shares[2].extend((index, index))
                        shares[3].extend((0.5, 0.5))
            found = [index for index in found if index is not None]
            word_cols.extend(found)
            word_rows.extend([d] * len(found))
            token_base += n_tokens
        shape = (n_docs, self.n_features)
        word_counts = sp.csr_matrix(
            (np.ones(len(word_rows)), (word_rows, word_cols)), shape=shape, dtype=np.float64
        )
        map_rows: list[int] = []
        map_cols: list[int] = []
        for token, row in distinct.items():
            grams = self._char_indices(token)
            map_rows.extend([row] * len(grams))
            map_cols.extend(grams)
        char_map = sp.csr_matrix(
            (np.ones(len(map_rows)), (map_rows, map_cols)),
            shape=(len(distinct), self.n_features),
            dtype=np.float64,
        )
        occurrences = sp.csr_matrix(
            (np.ones(len(token_rows)), (token_rows, token_ids)),
            shape=(n_docs, len(distinct)),
            dtype=np.float64,
        )
        counts = (word_counts + occurrences @ char_map).tocsr()
        counts.sum_duplicates()
        counts.sort_indices()
        counts.eliminate_zeros()
        rows = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(counts.indptr))
        values = (1.0 + np.log(counts.data)) * self.idf[counts.indices]
        block = rows * 2 + (counts.indices >= self.n_word)
        norms = np.sqrt(np.bincount(block, weights=values * values, minlength=2 * n_docs))
        matrix = sp.csr_matrix(
            (values / norms[block], counts.indices.copy(), counts.indptr.copy()), shape=shape
        )
        if not explain:
            return matrix, None
        return matrix, Explainable(
            matrix=matrix,
            counts=counts,
            token_doc=np.asarray(token_rows, dtype=np.int64),
            token_unique=np.asarray(token_ids, dtype=np.int64),
            char_map=char_map,
            word_token=np.asarray(shares[0], dtype=np.int64),
            word_doc=np.asarray(shares[1], dtype=np.int64),
            word_feature=np.asarray(shares[2], dtype=np.int64),
            word_weight=np.asarray(shares[3], dtype=np.float64),
        )


def token_contributions(explainable: Explainable, coef: np.ndarray) -> np.ndarray:
    """Per token occurrence: its share of the linear decision value (sums to X @ coef per doc).

    A feature's contribution (TF-IDF value x weight) is split evenly over its occurrences;
    a word bigram's occurrence is split half and half between its two tokens.
    """
    ratio = explainable.matrix.copy()
    ratio.data = ratio.data * coef[ratio.indices] / explainable.counts.data
    n_cols = np.int64(ratio.shape[1])
    # Sorted (document, feature) keys of the CSR entries, for vectorised lookups.
    entry_rows = np.repeat(np.arange(ratio.shape[0], dtype=np.int64), np.diff(ratio.indptr))
    keys = entry_rows * n_cols + ratio.indices
    # Expand each token occurrence into its character n-grams (its row of char_map).
    char_map = explainable.char_map
    lengths = np.diff(char_map.indptr)[explainable.token_unique]
    total = int(lengths.sum())
    occurrence = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    first = np.cumsum(lengths) - lengths
    position = np.repeat(char_map.indptr[explainable.token_unique] - first, lengths) + np.arange(
        total, dtype=np.int64
    )
    wanted = explainable.token_doc[occurrence] * n_cols + char_map.indices[position]
    values = ratio.data[np.searchsorted(keys, wanted)] * char_map.data[position]
    result = np.bincount(occurrence, weights=values, minlength=len(lengths))
    if len(explainable.word_token):
        wanted = explainable.word_doc * n_cols + explainable.word_feature
        shares = ratio.data[np.searchsorted(keys, wanted)] * explainable.word_weight
        result += np.bincount(explainable.word_token, weights=shares, minlength=len(result))
    return result
