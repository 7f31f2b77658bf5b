"""Scoring texts with a saved model: probabilities, labels, explanations, contestants.

    model = load_model(current_model_dir(Path("models")), profiles=load_profiles(elections))
    [result] = model.score(["Ayo coblos nomor 2! #BersamaBE"])
    result.score, result.label, result.explanation, result.contestants, result.flags

An explanation lists the terms (as written in the text) that pushed the score up (+) and down
(-), in logit units of the linear model: the contributions of all terms plus the intercept add
up to the model's decision value, which the calibrated sigmoid turns into `score`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.artifacts import current_model_dir, load_pipeline, verify_model_dir
from classifiers.features import FastFeatures, ModelSettings
from classifiers.normalize import NORMALIZER_VERSION, Normalized, Normalizer, data_fingerprint
from classifiers.profiles import ContestantMasker, ElectionProfile, load_profiles
from pipeline.errors import ModelError

__all__ = [
    "LABELS",
    "LoadedModel",
    "TextResult",
    "current_model_dir",
    "load_model",
    "load_profiles",
]

log = logging.getLogger(__name__)

LABELS: tuple[str, str] = ("not_partisan", "partisan")
EXPLANATION_TERMS = 5
SCORE_BATCH = 512


@dataclass(frozen=True, slots=True)
class TextResult:
    """The verdict on one text."""

    score: float
    label: str  # "partisan" | "not_partisan"
    explanation: tuple[tuple[str, float], ...]  # top terms for (+) then against (-)
    contestants: tuple[str, ...]
    flags: tuple[str, ...]


def top_terms(
    surfaces: Sequence[Sequence[str]], contributions: np.ndarray, limit: int
) -> list[tuple[tuple[str, float], ...]]:
    """Per text: up to `limit` terms for (+, largest first) and against (-, most negative first).

    `surfaces` holds each text's token surfaces, `contributions` each token occurrence's share
    (texts in order). A term is a surface; its value sums its occurrences. Ties keep text order.
    The whole batch is grouped and ranked with a few numpy sorts; Python only slices the result.
    """
    n_docs = len(surfaces)
    flat = list(chain.from_iterable(surfaces))
    if not flat:
        return [()] * n_docs
    lengths = np.fromiter(map(len, surfaces), dtype=np.int64, count=n_docs)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    # Equal surfaces of a text form one term; surfaces are told apart by their 64-bit hash.
    hashes = np.fromiter(map(hash, flat), dtype=np.int64, count=len(flat))
    distinct, surface = np.unique(hashes, return_inverse=True)
    key = doc * len(distinct) + surface
    order = np.argsort(key, kind="stable")  # nearly sorted (by text already): fast
    ordered = key[order]
    fresh = np.ones(len(order), dtype=bool)
    fresh[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(fresh)
    totals = np.bincount(np.cumsum(fresh) - 1, weights=contributions[order])
    first_seen = order[starts]  # stable sort: a term's first member is its first occurrence
    # Terms in text order, then one stable sort by (text, value): largest first within a text.
    by_position = np.argsort(first_seen, kind="stable")
    first_seen, totals = first_seen[by_position], totals[by_position]
    term_doc = doc[first_seen]
    ranked = np.lexsort((-totals, term_doc))
    ranked_doc = term_doc[ranked]
    begin = np.searchsorted(ranked_doc, np.arange(n_docs + 1))
    index = np.arange(len(ranked))
    values = totals[ranked]
    chosen_for = np.flatnonzero((index - begin[ranked_doc] < limit) & (values > 0))
    # against: the negative terms again, most negative first (ties: text order)
    against = np.flatnonzero(values < 0)
    against = against[np.lexsort((values[against], ranked_doc[against]))]
    against_doc = ranked_doc[against]
    rank = np.arange(len(against)) - np.searchsorted(against_doc, against_doc)
    chosen_against = against[rank < limit]
    sides = []
    for chosen in (chosen_for, chosen_against):
        terms = [flat[i] for i in first_seen[ranked[chosen]].tolist()]
        pairs = list(zip(terms, np.round(values[chosen], 4).tolist(), strict=True))
        bounds = np.searchsorted(ranked_doc[chosen], np.arange(n_docs + 1)).tolist()
        sides.append((pairs, bounds))
    (pros, pro_bounds), (cons, con_bounds) = sides
    return [
        (*pros[pro_bounds[d] : pro_bounds[d + 1]], *cons[con_bounds[d] : con_bounds[d + 1]])
        for d in range(n_docs)
    ]


class LoadedModel:
    """A verified model plus the normaliser (with election profiles) that feeds it."""

    def __init__(
        self,
        pipeline: Any,
        card: dict[str, Any],
        directory: Path,
        profiles: Sequence[ElectionProfile] = (),
    ) -> None:
        self.pipeline = pipeline
        self.card = card
        self.directory = directory
        self.version: str = str(card["version"])
        self.threshold: float = float(card["threshold"])
        self.settings = ModelSettings.from_dict(card.get("settings", {}))
        self.profiles: tuple[ElectionProfile, ...] = tuple(profiles)
        self.normalizer = Normalizer(
            ContestantMasker(self.profiles),
            do_stem=self.settings.stem,
            drop_stopwords=self.settings.stopwords,
        )
        self.classifier = pipeline.named_steps["classifier"]
        calibrated = self.classifier.calibrated_classifiers_
        if len(calibrated) != 1 or len(calibrated[0].calibrators) != 1:
            raise ModelError(f"{directory}: expected one linear model with one calibrator")
        # The calibrated score is this sigmoid of the linear decision value, computed directly
        # from the fast features (what CalibratedClassifierCV.predict_proba does on a matrix).
        self.calibrator = calibrated[0].calibrators[0]
        linear = calibrated[0].estimator
        self.coef: np.ndarray = np.asarray(linear.coef_, dtype=np.float64).ravel()
        self.intercept = float(np.asarray(linear.intercept_).ravel()[0])
        self.features = FastFeatures(pipeline.named_steps["features"])
        if self.coef.shape[0] != self.features.n_features:
            raise ModelError(f"{directory}: classifier and features disagree in size")

    def with_profiles(self, profiles: Sequence[ElectionProfile]) -> LoadedModel:
        """The same model (and operating threshold) with other election profiles for masking."""
        other = LoadedModel(self.pipeline, self.card, self.directory, profiles)
        other.threshold = self.threshold  # an authority's configured threshold stays
        return other

    def normalize(
        self, texts: Sequence[object], days: Sequence[date | None] | None = None
    ) -> list[Normalized]:
        """Normalise texts as the model sees them."""
        days = days if days is not None else [None] * len(texts)
        return [self.normalizer.normalize(text, day) for text, day in zip(texts, days, strict=True)]

    def decision_function(self, texts: Sequence[object]) -> np.ndarray:
        """The linear model's decision values (logits before calibration)."""
        normalized = self.normalize(texts)
        return self.features.batch(normalized, self.coef, self.intercept, explain=False).decision

    def explain_all(self, text: object) -> list[tuple[str, float]]:
        """Every term's contribution (unrounded, unsorted by sign), for audits and tests."""
        [normalized] = self.normalize([text])
        batch = self.features.batch([normalized], self.coef, self.intercept, explain=True)
        values = batch.contributions
        assert values is not None
        totals: dict[str, float] = {}
        for surface, value in zip(normalized.surfaces, values.tolist(), strict=True):
            totals[surface] = totals.get(surface, 0.0) + value
        return sorted(totals.items(), key=lambda item: -abs(item[1]))

    def score(
        self,
        texts: Sequence[object],
        days: Sequence[date | None] | None = None,
        explain: bool = True,
    ) -> list[TextResult]:
        """Score texts (any objects: non-strings and empty texts are flagged, not fatal)."""
        results: list[TextResult] = []
        for start in range(0, len(texts), SCORE_BATCH):
            chunk_days = days[start : start + SCORE_BATCH] if days is not None else None
            results.extend(
                self._score_batch(texts[start : start + SCORE_BATCH], chunk_days, explain)
            )
        return results

    def _score_batch(
        self, texts: Sequence[object], days: Sequence[date | None] | None, explain: bool
    ) -> list[TextResult]:
        normalized = self.normalize(texts, days)
        batch = self.features.batch(normalized, self.coef, self.intercept, explain=explain)
        probabilities = self.calibrator.predict(batch.decision)
        contributions = batch.contributions
        row_has_features = batch.has_features
        explanations: list[tuple[tuple[str, float], ...]] = (
            top_terms([item.surfaces for item in normalized], contributions, EXPLANATION_TERMS)
            if contributions is not None
            else [()] * len(normalized)
        )
        labels = np.where(probabilities >= self.threshold, LABELS[1], LABELS[0]).tolist()
        results = []
        for item, probability, label, explanation, has_features in zip(
            normalized,
            probabilities.tolist(),
            labels,
            explanations,
            row_has_features.tolist(),
            strict=True,
        ):
            flags = item.flags
            if not item.tokens:
                results.append(TextResult(0.0, LABELS[0], (), item.contestants, flags))
                continue
            if not has_features:
                flags = (*flags, "unknown_vocabulary")
            results.append(TextResult(probability, label, explanation, item.contestants, flags))
        return results


def load_model(directory: Path, profiles: Sequence[ElectionProfile] = ()) -> LoadedModel:
    """Verify and load a model directory; `profiles` drive contestant masking.

    Without profiles, contestant names reach the model unmasked, which it was not trained on:
    pass the configured election profiles (see `pipeline.classify.load_scoring_model`).
    """
    card = verify_model_dir(directory)
    _check_card_fields(directory, card)
    normalizer = card["normalizer"]
    if normalizer.get("version") != NORMALIZER_VERSION:
        raise ModelError(
            f"{directory}: trained with normaliser version {normalizer.get('version')!r}, "
            f"this Netra has {NORMALIZER_VERSION}; retrain with `netra train`"
        )
    if normalizer.get("data_sha256") != data_fingerprint():
        log.warning(
            "%s: slang/stopword data changed since this model was trained; scores may drift",
            directory,
        )
    pipeline = load_pipeline(directory)
    try:
        return LoadedModel(pipeline, card, directory, profiles)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        # a pipeline of allowed types but the wrong shape (not what `netra train` writes)
        raise ModelError(f"{directory}: not a Netra model: {type(exc).__name__}: {exc}") from exc


def _check_card_fields(directory: Path, card: dict[str, Any]) -> None:
    """The card fields loading relies on, with their types: a clear ModelError, not a crash."""
    where = directory / "card.json"
    if not isinstance(card.get("version"), str) or not card["version"]:
        raise ModelError(f"{where}: 'version' must be a non-empty string")
    threshold = card.get("threshold")
    if (
        not isinstance(threshold, int | float)
        or isinstance(threshold, bool)
        or not 0.0 <= threshold <= 1.0
    ):
        raise ModelError(f"{where}: 'threshold' must be a number from 0 to 1, got {threshold!r}")
    for key in ("normalizer", "settings"):
        if not isinstance(card.get(key, {}), dict):
            raise ModelError(f"{where}: {key!r} must be an object")
    card.setdefault("normalizer", {})
