"""Training, cross-validation, threshold choice and metrics (pure functions, no I/O).

Two cross-validation schemes, both measuring transfer rather than memory:

- leave one corpus file out (`file_folds`): each seed-corpus file has its own writer and style,
  so a model that never saw a writer is scored on that writer's texts. This is the closest the
  seed corpus gets to the shift onto real posts, so the operating threshold is chosen on these
  out-of-fold scores;
- leave one contest out (`contest_folds`): Pilpres 2014, 2019, 2024, Pilkada 2017 and Pilkada
  2024 held out in turn (rows of other contests spread by a hash of their text): transfer to an
  election the model was not written for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline

from classifiers.features import ModelSettings, build_pipeline
from classifiers.normalize import Normalized

HELD_OUT_CONTESTS: tuple[str, ...] = (
    "pilpres2014",
    "pilpres2019",
    "pilpres2024",
    "pilkada2017",
    "pilkada2024",
)


def columns(normalized: Sequence[Normalized]) -> np.ndarray:
    """The (n, 3) object array of (word, character, cue) streams the pipeline takes."""
    data = np.empty((len(normalized), 3), dtype=object)
    for index, item in enumerate(normalized):
        data[index, 0], data[index, 1], data[index, 2] = item.columns
    return data


def file_folds(files: Sequence[str]) -> np.ndarray:
    """Fold number per row: one fold per corpus file (sorted by name)."""
    names = sorted(set(files))
    return np.array([names.index(name) for name in files], dtype=np.int64)


def contest_folds(contests: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """Fold number per row: one fold per held-out contest, other rows spread by text hash."""
    n_folds = len(HELD_OUT_CONTESTS)
    folds = np.empty(len(contests), dtype=np.int64)
    for index, (contest, text) in enumerate(zip(contests, texts, strict=True)):
        if contest in HELD_OUT_CONTESTS:
            folds[index] = HELD_OUT_CONTESTS.index(contest)
        else:
            digest = hashlib.sha256(text.encode("utf-8")).digest()
            folds[index] = int.from_bytes(digest[:4], "big") % n_folds
    return folds


def fit(data: np.ndarray, labels: Sequence[int], settings: ModelSettings) -> Pipeline:
    """Fit a fresh pipeline (deterministic for fixed settings.seed)."""
    pipeline = build_pipeline(settings)
    pipeline.fit(data, np.asarray(labels))
    return pipeline


def cross_validated_scores(
    data: np.ndarray, labels: Sequence[int], folds: np.ndarray, settings: ModelSettings
) -> np.ndarray:
    """Out-of-fold probabilities, each from a model that never saw that fold's contest."""
    y = np.asarray(labels)
    scores = np.zeros(len(y), dtype=np.float64)
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        model = fit(data[train], y[train], settings)
        scores[test] = model.predict_proba(data[test])[:, 1]
    return scores


def choose_threshold(
    labels: Sequence[int], scores: np.ndarray, target_precision: float
) -> dict[str, Any]:
    """The lowest threshold whose out-of-fold precision reaches the target (most recall).

    Precision that climbs back above target only for a handful of top scores is ignored:
    the threshold must keep precision >= target for every higher threshold too.
    """
    y = np.asarray(labels)
    precision, recall, thresholds = precision_recall_curve(y, scores)
    precision, recall = precision[:-1], recall[:-1]
    # From the top score down: the running minimum of precision at or above each threshold.
    floor = np.minimum.accumulate(precision[::-1])[::-1]
    meeting = np.flatnonzero(floor >= target_precision)
    reached = bool(len(meeting))
    if reached:
        index = int(meeting[0])
        rule = f"lowest threshold with out-of-fold precision >= {target_precision} above it"
    else:
        index = int(np.argmax(precision))
        rule = f"target precision {target_precision} unreachable; best out-of-fold precision"
    return {
        "threshold": round(float(thresholds[index]), 4),
        "rule": rule,
        "reached": reached,
        "target_precision": target_precision,
        "oof_precision": round(float(precision[index]), 4),
        "oof_recall": round(float(recall[index]), 4),
    }


def binary_metrics(
    labels: Sequence[int], scores: Sequence[float], threshold: float
) -> dict[str, Any]:
    """PR-AUC, ROC-AUC, precision/recall/F1 at the threshold and the confusion matrix."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    predicted = (s >= threshold).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, predicted, labels=[0, 1]).ravel())
    # the card's convention: 0 where a ratio is undefined
    precision, recall, f1 = (value or 0.0 for value in precision_recall_f1(tp, fp, fn))
    both = len(set(y.tolist())) == 2
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "threshold": threshold,
        "pr_auc": round(float(average_precision_score(y, s)), 4) if both else None,
        "roc_auc": round(float(roc_auc_score(y, s)), 4) if both else None,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "false_positive_rate": round(fp / (fp + tn), 4) if fp + tn else None,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float | None, ...]:
    """Precision, recall and F1 from counts; None where a ratio is undefined (0 / 0)."""
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None or not precision + recall:
        return precision, recall, None
    return precision, recall, 2 * precision * recall / (precision + recall)


OPERATING_THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def operating_points(
    labels: Sequence[int], scores: Sequence[float], thresholds: Sequence[float]
) -> list[dict[str, Any]]:
    """Precision, recall, F1 and how many texts get flagged, at each threshold (ascending).

    What an authority needs to pick its own operating point on its own labelled posts: how many
    flags reviewers would see, and how many of them would be right.
    """
    y = np.asarray(labels, dtype=np.int64) == 1
    s = np.asarray(scores, dtype=np.float64)
    points = []
    for threshold in sorted(set(thresholds)):
        flagged = s >= threshold
        tp = int((flagged & y).sum())
        ratios = precision_recall_f1(tp, int(flagged.sum()) - tp, int(y.sum()) - tp)
        point: dict[str, Any] = {
            "threshold": round(float(threshold), 4),
            "flagged": int(flagged.sum()),
        }
        for name, value in zip(("precision", "recall", "f1"), ratios, strict=True):
            point[name] = None if value is None else round(value, 4)
        points.append(point)
    return points
