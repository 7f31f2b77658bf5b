"""The scikit-learn pipeline, and a fast path that reproduces its features from token lists.

The saved model is a plain scikit-learn `Pipeline`: a `ColumnTransformer` with word (1-2 gram)
TF-IDF over the stemmed word stream (stopwords removed), character (`char_wb`, 3-5) TF-IDF over
the unstemmed token stream and TF-IDF over the stance cue classes of the hand-written lexicon
(`support`, `attack`), then a logistic regression wrapped in `CalibratedClassifierCV`.
Cross-validation on the seed corpus (leave one corpus file out, leave one contest out) chose the
design: stems generalise word features over affixes, character n-grams keep the affixes
("memilih" vs "pilihan") that stemming loses, the cue classes pool rare stance words with common
ones; character 2-grams added nothing.

`FastFeatures` computes exactly the same TF-IDF values from the normaliser's token lists. What
depends on one token alone (its character n-gram ids, unigram id, cue id) is worked out once
per distinct token; a batch is then a few numpy operations. It also records which token each
feature occurrence came from, so every prediction can be explained term by term, and gives the
linear decision values directly (no sparse matrix is needed to score).
"""

from __future__ import annotations

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

from pipeline.errors import ModelError

TOKEN_CACHE_SIZE = 1 << 18


@dataclass(frozen=True)
class ModelSettings:
    """Hyper-parameters of one model; stored in its card so `netra train` can rebuild it."""

    word_ngram_max: int = 2
    char_ngram_min: int = 3
    char_ngram_max: int = 5
    min_df: int = 2
    C: float = 16.0
    class_weight: str | None = "balanced"
    calibration_folds: int = 5
    seed: int = 20240214
    stem: bool = True
    stopwords: bool = True
    cue_features: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSettings:
        """Inverse of `to_dict`; unknown keys are ignored so older cards still load."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def build_pipeline(settings: ModelSettings) -> Pipeline:
    """An unfitted pipeline over rows of (word stream, character stream, cue stream) strings."""
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
    blocks: list[tuple[str, TfidfVectorizer, int]] = [("word", word, 0), ("char", char, 1)]
    if settings.cue_features:
        cue = TfidfVectorizer(
            analyzer="word",
            token_pattern=r"\S+",
            lowercase=False,
            sublinear_tf=True,
            dtype=np.float64,
        )
        blocks.append(("cue", cue, 2))
    features = ColumnTransformer(blocks, sparse_threshold=1.0)
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
    share_occurrence: np.ndarray  # per share of a feature occurrence: its token occurrence
    share_entry: np.ndarray  # per share: its entry (position in matrix.data)
    share_weight: np.ndarray  # per share: 1, or 0.5 for each half of a word bigram
    n_occurrences: int  # token occurrences in the batch (all documents in order)


@dataclass
class Batch:
    """Decision values of a batch of texts, and per token occurrence its share of them."""

    decision: np.ndarray  # per document: the linear model's decision value
    has_features: np.ndarray  # per document: whether any feature fired
    contributions: np.ndarray | None  # per token occurrence (documents in order), if explained


# (token occurrences, raw feature occurrences, weight): how raw occurrences are shared
Share = tuple[np.ndarray, np.ndarray, float]


@dataclass
class _Counted:
    """A batch's TF-IDF entries, sorted by (document, feature), and how tokens share them."""

    n_docs: int
    n_occurrences: int
    rows: np.ndarray
    columns: np.ndarray
    values: np.ndarray  # TF-IDF values (normalised per document and block)
    counts: np.ndarray  # raw counts
    entry_of: np.ndarray  # per raw feature occurrence: its entry
    shares: list[Share]


def _grow(array: np.ndarray, needed: int) -> np.ndarray:
    """`array` with room for at least `needed` items (capacity doubles: amortised appends)."""
    if needed <= len(array):
        return array
    bigger = np.empty(max(needed, 2 * len(array)), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


class FastFeatures:
    """TF-IDF features of token lists, identical to the fitted `ColumnTransformer`'s output.

    All that depends on one token alone is worked out once per distinct token and kept in flat
    arrays (bounded): its character n-gram ids (`char_wb` n-grams never cross a token), its word
    unigram id, whether its stem is in the word stream, its cue id. A batch of texts is then one
    dictionary lookup per token and a fixed number of numpy operations over the whole batch:
    bigrams are matched by a sorted-key search, counts by one stable (radix) sort.

    A token's stem and cue must be functions of the token, as `Normalizer` makes them (the stem
    of a word, "" for a stopword); one instance serves one normaliser configuration.
    """

    def __init__(self, features: ColumnTransformer) -> None:
        transformers = features.named_transformers_
        word, char = transformers["word"], transformers["char"]
        cue = transformers.get("cue")
        if tuple(word.ngram_range) not in ((1, 1), (1, 2)):
            raise ModelError(f"fast features support word n-grams 1-2, not {word.ngram_range}")
        self.word_vocabulary: dict[str, int] = {k: int(v) for k, v in word.vocabulary_.items()}
        self.n_word = len(self.word_vocabulary)
        n_char = len(char.vocabulary_)
        self.char_vocabulary: dict[str, int] = {
            k: int(v) + self.n_word for k, v in char.vocabulary_.items()
        }
        offset = self.n_word + n_char
        self.cue_vocabulary: dict[str, int] = (
            {k: int(v) + offset for k, v in cue.vocabulary_.items()} if cue is not None else {}
        )
        self.n_features = offset + len(self.cue_vocabulary)
        blocks = [word.idf_, char.idf_] + ([cue.idf_] if cue is not None else [])
        self.idf = np.concatenate(blocks).astype(np.float64)
        self.n_blocks = len(blocks)
        self.feature_block = np.repeat(
            np.arange(len(blocks), dtype=np.int64), [len(idf) for idf in blocks]
        )
        self.bigrams = word.ngram_range[1] >= 2
        self.char_range: tuple[int, int] = tuple(char.ngram_range)  # type: ignore[assignment]
        keys: list[int] = []
        ids: list[int] = []
        for gram, index in self.word_vocabulary.items():
            first, space, second = gram.partition(" ")
            if space:
                # A bigram's words are at least as frequent as the bigram, so min_df kept them.
                a, b = self.word_vocabulary.get(first), self.word_vocabulary.get(second)
                if a is None or b is None:
                    raise ModelError(f"word bigram {gram!r} has a word outside the vocabulary")
                keys.append(a * self.n_word + b)
                ids.append(index)
        order = np.argsort(np.asarray(keys, dtype=np.int64), kind="stable")
        self._bigram_keys = np.asarray(keys, dtype=np.int64)[order]
        self._bigram_ids = np.asarray(ids, dtype=np.int64)[order]
        self._reset_tokens()

    # -- the per-token table ------------------------------------------------------------------

    def _reset_tokens(self) -> None:
        self._keys: dict[str, int] = {}
        self._char_start = np.zeros(1024, dtype=np.int64)  # token key -> start in _char_ids
        self._char_ids = np.zeros(8192, dtype=np.int64)
        self._char_used = 0
        self._unigram = np.zeros(1024, dtype=np.int64)  # word feature id of the stem, or -1
        self._in_stream = np.zeros(1024, dtype=bool)  # the stem is in the word stream
        self._cue = np.zeros(1024, dtype=np.int64)  # cue feature id, or -1

    def _register(self, token: str, stem: str, cue: str) -> int:
        key = len(self._keys)
        if char_token(token):
            vocabulary = self.char_vocabulary
            # sorted: a text's entries are then sorted runs, which the stable sort merges fast
            grams = sorted(
                vocabulary[gram]
                for gram in char_wb_ngrams(token, *self.char_range)
                if gram in vocabulary
            )
        else:
            grams = []
        self._char_start = _grow(self._char_start, key + 2)
        self._char_ids = _grow(self._char_ids, self._char_used + len(grams))
        self._char_ids[self._char_used : self._char_used + len(grams)] = grams
        self._char_start[key] = self._char_used
        self._char_used += len(grams)
        self._char_start[key + 1] = self._char_used
        for name in ("_unigram", "_in_stream", "_cue"):
            setattr(self, name, _grow(getattr(self, name), key + 1))
        self._unigram[key] = self.word_vocabulary.get(stem, -1) if stem else -1
        self._in_stream[key] = bool(stem)
        self._cue[key] = self.cue_vocabulary.get(cue, -1) if cue else -1
        self._keys[token] = key
        return key

    def _register_missing(self, doc: Streams, keys: list[int | None]) -> list[int]:
        cues = getattr(doc, "cues", ()) or ("",) * len(doc.tokens)
        complete: list[int] = []
        for key, token, stem, cue in zip(keys, doc.tokens, doc.stems, cues, strict=True):
            if key is None:
                key = self._keys.get(token)  # the same new token twice in one text
                if key is None:
                    key = self._register(token, stem, cue)
            complete.append(key)
        return complete

    def _token_keys(self, docs: Sequence[Streams]) -> tuple[np.ndarray, np.ndarray]:
        """Per token occurrence its key, and per document its token count."""
        if len(self._keys) > TOKEN_CACHE_SIZE:
            self._reset_tokens()  # bounded memory on endless streams; only between batches
        get = self._keys.get
        flat: list[int] = []
        lengths: list[int] = []
        for doc in docs:
            keys = list(map(get, doc.tokens))
            if None in keys:
                keys = self._register_missing(doc, keys)
            flat += keys
            lengths.append(len(keys))
        return np.asarray(flat, dtype=np.int64), np.asarray(lengths, dtype=np.int64)

    # -- a batch ----------------------------------------------------------------------------

    def _entries(
        self, keys: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[Share]]:
        """Every feature occurrence: (document, feature), plus how each is shared among tokens."""
        doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        occurrence = np.arange(len(keys), dtype=np.int64)
        docs: list[np.ndarray] = []
        feats: list[np.ndarray] = []
        shares: list[Share] = []
        start = 0

        def add(occurrences: np.ndarray, features: np.ndarray, weight: float = 1.0) -> None:
            nonlocal start
            docs.append(doc[occurrences])
            feats.append(features)
            shares.append((occurrences, np.arange(start, start + len(features)), weight))
            start += len(features)

        # character n-grams: each occurrence expands into its token's row of the table
        first = self._char_start[keys]
        sizes = self._char_start[keys + 1] - first
        total = int(sizes.sum())
        owner = np.repeat(occurrence, sizes)
        position = np.repeat(first - (np.cumsum(sizes) - sizes), sizes) + np.arange(
            total, dtype=np.int64
        )
        add(owner, self._char_ids[position])
        unigram = self._unigram[keys]
        found = np.flatnonzero(unigram >= 0)
        add(found, unigram[found])
        if self.bigrams:
            stream = np.flatnonzero(self._in_stream[keys])
            left, right = stream[:-1], stream[1:]
            a, b = unigram[left], unigram[right]
            usable = (doc[left] == doc[right]) & (a >= 0) & (b >= 0)
            left, right = left[usable], right[usable]
            wanted = a[usable] * self.n_word + b[usable]
            where = np.searchsorted(self._bigram_keys, wanted)
            where[where == len(self._bigram_keys)] = 0
            hit = self._bigram_keys[where] == wanted if len(self._bigram_keys) else wanted < 0
            left, right = left[hit], right[hit]
            add(left, self._bigram_ids[where[hit]], 0.5)
            # the right-hand half of each bigram shares the same entries as the left-hand half
            shares.append((right, shares[-1][1], 0.5))
        cue = self._cue[keys]
        found = np.flatnonzero(cue >= 0)
        add(found, cue[found])
        return np.concatenate(docs), np.concatenate(feats), shares

    def _counted(self, docs: Sequence[Streams]) -> _Counted:
        n_docs = len(docs)
        keys, lengths = self._token_keys(docs)
        rows_raw, features_raw, shares = self._entries(keys, lengths)
        # Count (document, feature) pairs: one sort of their combined key. Entries come as a
        # few runs sorted by document, and each token's n-grams are sorted: timsort merges fast.
        combined = rows_raw * self.n_features + features_raw
        order = np.argsort(combined, kind="stable")
        ordered = combined[order]
        fresh = np.ones(len(ordered), dtype=bool)
        fresh[1:] = ordered[1:] != ordered[:-1]
        starts = np.flatnonzero(fresh)
        sizes = np.diff(starts, append=len(ordered))
        unique = ordered[starts]
        entry_of = np.empty(len(combined), dtype=np.int64)
        entry_of[order] = np.cumsum(fresh) - 1
        per_doc = np.diff(np.searchsorted(unique, np.arange(n_docs + 1) * self.n_features))
        rows = np.repeat(np.arange(n_docs, dtype=np.int64), per_doc)
        columns = unique - rows * self.n_features
        counts = sizes.astype(np.float64)
        values = self.idf[columns]
        repeated = np.flatnonzero(sizes > 1)  # sublinear tf: 1 + log(count), 1 for most
        values[repeated] *= 1.0 + np.log(counts[repeated])
        block = rows * self.n_blocks + self.feature_block[columns]
        norms = np.sqrt(
            np.bincount(block, weights=values * values, minlength=n_docs * self.n_blocks)
        )
        values /= norms[block]
        return _Counted(n_docs, len(keys), rows, columns, values, counts, entry_of, shares)

    def batch(
        self, docs: Sequence[Streams], coef: np.ndarray, intercept: float, *, explain: bool
    ) -> Batch:
        """Decision values of the linear model with weights `coef`; per-token shares if asked."""
        counted = self._counted(docs)
        weighted = counted.values * coef[counted.columns]
        decision = np.bincount(counted.rows, weights=weighted, minlength=counted.n_docs)
        has_features = np.bincount(counted.rows, minlength=counted.n_docs) > 0
        contributions = None
        if explain:
            ratio = weighted / counted.counts
            occurrences = np.concatenate([share[0] for share in counted.shares])
            shares = np.concatenate(
                [
                    ratio[counted.entry_of[entries]] * weight
                    if weight != 1.0
                    else ratio[counted.entry_of[entries]]
                    for _, entries, weight in counted.shares
                ]
            )
            contributions = np.bincount(
                occurrences, weights=shares, minlength=counted.n_occurrences
            )
        return Batch(decision + intercept, has_features, contributions)

    def transform(
        self, docs: Sequence[Streams], explain: bool = False
    ) -> tuple[sp.csr_matrix, Explainable | None]:
        """TF-IDF matrix (CSR, float64) of normalised texts, plus what explanations need."""
        counted = self._counted(docs)
        indptr = np.zeros(counted.n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(counted.rows, minlength=counted.n_docs), out=indptr[1:])
        shape = (counted.n_docs, self.n_features)
        matrix = sp.csr_matrix((counted.values, counted.columns, indptr), shape=shape)
        if not explain:
            return matrix, None
        shares = counted.shares
        return matrix, Explainable(
            matrix=matrix,
            counts=sp.csr_matrix((counted.counts, counted.columns, indptr), shape=shape),
            share_occurrence=np.concatenate([share[0] for share in shares]),
            share_entry=np.concatenate([counted.entry_of[share[1]] for share in shares]),
            share_weight=np.concatenate([np.full(len(share[0]), share[2]) for share in shares]),
            n_occurrences=counted.n_occurrences,
        )


def token_contributions(explainable: Explainable, coef: np.ndarray) -> np.ndarray:
    """Per token occurrence: its share of the linear decision value (sums to X @ coef per doc).

    A feature's contribution (TF-IDF value x weight) is split evenly over its occurrences;
    a word bigram's occurrence is split half and half between its two tokens.
    """
    matrix = explainable.matrix
    ratio = matrix.data * coef[matrix.indices] / explainable.counts.data
    return np.bincount(
        explainable.share_occurrence,
        weights=ratio[explainable.share_entry] * explainable.share_weight,
        minlength=explainable.n_occurrences,
    )
