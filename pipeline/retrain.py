"""`netra retrain`: a candidate model from the seed corpus, reviewers' labels and labelled files,
measured against the current model before it may replace it.

Where the data comes from (each row keeps its origin):

- **seed** — `classifiers/corpus/*.csv`. A fixed fifth, chosen by a salted hash of each text, is
  held out for evaluation and never trained on.
- **reviewer** — content labels from the store: queue decisions (`netra review`) and labels of
  `netra queue to-label` posts (`netra review label`), the latest label per post. The newest
  fifth by decision time is held out for evaluation.
- **added** — `--add FILE.csv` (columns `text,label`, optional `contest`): training only.
  Every file is checked in full before anything is trained; bad rows are reported by line. A
  file (added or in the corpus) with the content of a held-out file recorded in a model card
  (`held_out_sha256`, from `netra train --dev`) is refused.

Near-duplicates (word 3-gram Jaccard >= 0.5, the corpus diversity test) are collapsed to one
row: campaign copy-paste would otherwise count one message many times. Within a group the label
comes from the most trusted row: the newest reviewer label, then an added file, then the seed.
A training text that nearly duplicates an evaluation text is dropped, so the evaluation never
measures memory.

Both models score the same evaluation rows with the same election profiles (the configured
ones, as scoring uses): PR-AUC, F1 and precision at each model's own threshold. The candidate's
threshold is re-chosen for `retrain.target_precision` on its out-of-fold training scores. Promotion is automatic only when the comparison is fair and the
candidate is not worse: the rows the current model trained on are left out (its card lists them;
a model from `netra train` trained on the whole seed corpus), at least `retrain.min_eval_rows`
rows with both labels remain, and no metric falls more than `retrain.tolerance` below the
current model's. Otherwise the new version stays a candidate with the reason, for a person to
promote or not (`netra models promote VERSION`).

The same data, settings and code give the same version name, model and metrics: fixed seeds, a
deterministic split, and a card without timestamps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from classifiers.artifacts import FORMAT_VERSION, verify_model_dir, write_model_dir
from classifiers.corpus import NEAR_DUPLICATE_JACCARD, Corpus, diversity, load_corpus
from classifiers.features import ModelSettings
from classifiers.model import LoadedModel
from classifiers.normalize import NORMALIZER_VERSION, Normalizer, data_fingerprint
from classifiers.profiles import ContestantMasker, ElectionProfile, load_profiles
from classifiers.training import (
    HELD_OUT_CONTESTS,
    binary_metrics,
    choose_threshold,
    columns,
    contest_folds,
    cross_validated_scores,
    fit,
)
from pipeline.classify import (
    CORPUS_DIR,
    SEED_PRECISION_MARGIN,
    card_header,
    corpus_file_hashes,
    election_profiles,
    held_out_files,
    library_versions,
    load_scoring_model,
    profiles_fingerprint,
    refuse_held_out,
    render_card,
    resolve_model_dir,
    scores_fingerprint,
)
from pipeline.config import Config
from pipeline.errors import InputFileError, ModelError, UsageError
from pipeline.models import PromotionResult, current_version, promote, record_trained
from pipeline.progress import Progress
from pipeline.queue import group_text_key
from pipeline.records import format_datetime
from pipeline.store import Store

log = logging.getLogger(__name__)

ORIGINS: tuple[str, ...] = ("seed", "reviewer", "added")
# Lower is more trusted when near-duplicates disagree.
ORIGIN_RANK: dict[str, int] = {"reviewer": 0, "added": 1, "seed": 2}
SPLIT_SALT = "netra-retrain-split-v1"
SEED_HELD_OUT_PERCENT = 20
REVIEWER_HELD_OUT_FRACTION = 0.2
SPLIT_RULE = (
    f"seed: {SEED_HELD_OUT_PERCENT}% held out by SHA-256('{SPLIT_SALT}' + folded text); "
    f"reviewer labels: newest {int(REVIEWER_HELD_OUT_FRACTION * 100)}% by decision time held out"
)
MIN_TRAIN_PER_CLASS = 10
MIN_EVAL_PER_CLASS = 5
COMPARED_METRICS: tuple[str, ...] = ("pr_auc", "f1", "precision")
TRAINING_KEY_CHARS = 16
LABEL_VALUES: dict[str, int] = {
    "1": 1,
    "1.0": 1,
    "true": 1,
    "yes": 1,
    "partisan": 1,
    "0": 0,
    "0.0": 0,
    "false": 0,
    "no": 0,
    "not_partisan": 0,
}
MAX_LISTED_ERRORS = 20
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Example:
    """One labelled text and where it came from."""

    text: str
    label: int
    origin: str  # seed | reviewer | added
    source: str  # seed file, "store", or the added file's name
    ref: str  # file:line, or the post key
    contest: str = "unknown"
    platform: str = "unknown"
    register: str = "unknown"
    category: str = "unknown"
    decided_at: datetime | None = None


def text_key(text: str) -> str:
    """The identity of a text for splits and overlap checks (case and whitespace folded)."""
    return group_text_key(text)[:TRAINING_KEY_CHARS]


# -- reading the data --------------------------------------------------------------------------


def read_labelled_file(path: Path) -> list[Example]:
    """A labelled CSV (`text`, `label`; optional `contest`), checked in full before use.

    Missing columns, empty texts and unknown labels raise one InputFileError listing every
    bad line (by its line number in the file).
    """
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(name, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(name, None, "not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        fields = [f.strip() for f in reader.fieldnames or []]
    except csv.Error as exc:
        raise InputFileError(name, 1, f"malformed CSV header: {exc}") from exc
    missing = [column for column in ("text", "label") if column not in fields]
    if missing:
        raise InputFileError(
            name,
            1,
            f"missing column(s) {', '.join(missing)}; found {', '.join(fields) or 'none'}"
            " (expected text,label)",
        )
    reader.fieldnames = fields
    examples: list[Example] = []
    errors: list[tuple[int, str]] = []
    try:
        for row in reader:
            line = reader.line_num  # a quoted text over several lines ends on this line
            text = (row.get("text") or "").strip()
            value = row.get("label")
            label = LABEL_VALUES.get(str(value).strip().lower()) if value is not None else None
            if not text:
                errors.append((line, "empty text"))
            if label is None:
                shown = "missing" if value is None or not str(value).strip() else repr(value)
                errors.append(
                    (line, f"unknown label {shown} (expected 1/0 or partisan/not_partisan)")
                )
            if text and label is not None:
                contest = (row.get("contest") or "").strip() or "added"
                examples.append(
                    Example(text, label, "added", path.name, f"{path.name}:{line}", contest)
                )
    except csv.Error as exc:
        raise InputFileError(name, reader.line_num, f"malformed CSV: {exc}") from exc
    if errors:
        listed = "\n".join(
            f"  {name}:{line}: {message}" for line, message in errors[:MAX_LISTED_ERRORS]
        )
        more = len(errors) - MAX_LISTED_ERRORS
        error = InputFileError(
            name,
            None,
            f"{len(errors)} bad row(s), nothing was trained:\n{listed}"
            + (f"\n  … and {more} more" if more > 0 else ""),
        )
        error.line = errors[0][0]
        raise error
    if not examples:
        raise InputFileError(name, None, "no labelled rows")
    return examples


def seed_examples(corpus: Corpus) -> list[Example]:
    """The seed corpus as examples."""
    rows: dict[str, int] = {}
    examples = []
    for index, text in enumerate(corpus.texts):
        source = corpus.files[index]
        rows[source] = rows.get(source, 0) + 1
        examples.append(
            Example(
                text,
                corpus.labels[index],
                "seed",
                source,
                f"{source}#{rows[source]}",
                corpus.contest[index],
                corpus.platform[index],
                corpus.register[index],
                corpus.category[index],
            )
        )
    return examples


def reviewer_examples(store: Store | None) -> list[Example]:
    """Reviewers' content labels, the latest per post, oldest decision first."""
    if store is None:
        return []
    from pipeline.active_learning import iter_content_labels
    from pipeline.review import iter_reviewer_labels

    latest: dict[str, Example] = {}
    for source in (iter_reviewer_labels(store), iter_content_labels(store)):
        for text, label, decided_at, post_key in source:
            if not text or not text.strip():
                continue
            known = latest.get(post_key)
            if known is not None and known.decided_at is not None and known.decided_at > decided_at:
                continue
            latest[post_key] = Example(
                text.strip(),
                int(label),
                "reviewer",
                "store",
                post_key,
                "reviewer",
                post_key.partition(":")[0] or "unknown",
                decided_at=decided_at,
            )
    return sorted(latest.values(), key=lambda e: (e.decided_at, e.ref))


# -- near-duplicates and the split ----------------------------------------------------------------


def near_duplicate_groups(texts: Sequence[str]) -> np.ndarray:
    """A group number per text: texts linked by word 3-gram Jaccard >= 0.5 share a group."""
    exact: dict[str, int] = {}
    unique_of = np.empty(len(texts), dtype=np.int64)
    unique_words: list[list[str]] = []
    for index, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        key = " ".join(words) if words else "\0" + " ".join(text.casefold().split())
        if key not in exact:
            exact[key] = len(unique_words)
            unique_words.append(words)
        unique_of[index] = exact[key]
    n_unique = len(unique_words)
    shingle_ids: dict[tuple[str, ...], int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for index, words in enumerate(unique_words):
        if not words:
            continue
        size = min(3, len(words))
        for shingle in {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}:
            rows.append(index)
            cols.append(shingle_ids.setdefault(shingle, len(shingle_ids)))
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(n_unique, max(len(shingle_ids), 1)),
    )
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    overlap = sp.triu(matrix @ matrix.T, k=1).tocoo()
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    jaccard = np.divide(overlap.data, union, out=np.zeros_like(overlap.data), where=union > 0)
    linked = jaccard >= NEAR_DUPLICATE_JACCARD
    graph = sp.coo_matrix(
        (np.ones(int(linked.sum())), (overlap.row[linked], overlap.col[linked])),
        shape=(n_unique, n_unique),
    )
    _, unique_groups = connected_components(graph, directed=False)
    return np.asarray(unique_groups[unique_of], dtype=np.int64)


def seed_held_out(text: str) -> bool:
    """Whether a seed text belongs to the evaluation part (stable across corpus additions)."""
    digest = hashlib.sha256(f"{SPLIT_SALT}\0{group_text_key(text)}".encode()).hexdigest()
    return int(digest[:8], 16) % 100 < SEED_HELD_OUT_PERCENT


@dataclass
class Datasets:
    """Training and evaluation rows after the split and near-duplicate collapsing."""

    train: list[Example]
    evaluation: list[Example]
    summary: dict[str, Any]


def _priority(example: Example, index: int) -> tuple[int, float, int]:
    stamp = example.decided_at.timestamp() if example.decided_at else 0.0
    return ORIGIN_RANK[example.origin], -stamp, index


def build_datasets(
    seed: Sequence[Example], reviewer: Sequence[Example], added: Sequence[Example]
) -> Datasets:
    """Split, collapse near-duplicates and keep evaluation texts out of training."""
    reviewer = sorted(reviewer, key=lambda e: (e.decided_at, e.ref))
    n_reviewer_eval = math.ceil(len(reviewer) * REVIEWER_HELD_OUT_FRACTION)
    rows: list[Example] = [*seed, *reviewer, *added]
    held_out = [seed_held_out(example.text) for example in seed]
    held_out += [i >= len(reviewer) - n_reviewer_eval for i in range(len(reviewer))]
    held_out += [False] * len(added)
    groups = near_duplicate_groups([example.text for example in rows])
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups.tolist()):
        members.setdefault(group, []).append(index)
    stats = {
        origin: Counter[str]() for origin in ORIGINS
    }  # input, train, evaluation, collapsed, dropped
    conflicts = 0
    train: list[Example] = []
    evaluation: list[Example] = []
    for example in rows:
        stats[example.origin]["input"] += 1
        stats[example.origin]["input_partisan"] += example.label
    for group_members in members.values():  # dict order: by first member, deterministic
        evaluation_members = [i for i in group_members if held_out[i]]
        pool = evaluation_members or group_members
        best = min(pool, key=lambda i: _priority(rows[i], i))
        if len({rows[i].label for i in pool}) > 1:
            conflicts += 1
        (evaluation if evaluation_members else train).append(rows[best])
        stats[rows[best].origin]["evaluation" if evaluation_members else "train"] += 1
        for i in group_members:
            if i == best:
                continue
            if evaluation_members and not held_out[i]:
                stats[rows[i].origin]["dropped_near_evaluation"] += 1
            else:
                stats[rows[i].origin]["collapsed"] += 1
    summary = {
        "origins": {
            origin: {
                "input_rows": counts["input"],
                "input_partisan": counts["input_partisan"],
                "train": counts["train"],
                "evaluation": counts["evaluation"],
                "collapsed_near_duplicates": counts["collapsed"],
                "dropped_near_evaluation_text": counts["dropped_near_evaluation"],
            }
            for origin, counts in stats.items()
        },
        "near_duplicate_groups_with_conflicting_labels": conflicts,
        "near_duplicate_rule": f"word 3-gram Jaccard >= {NEAR_DUPLICATE_JACCARD}",
        "conflict_rule": "newest reviewer label, then added file, then seed",
        "split_rule": SPLIT_RULE,
        "reviewer_evaluation_from": (
            format_datetime(reviewer[len(reviewer) - n_reviewer_eval].decided_at)  # type: ignore[arg-type]
            if n_reviewer_eval
            else None
        ),
    }
    return Datasets(train, evaluation, summary)


# -- training and evaluation ------------------------------------------------------------------


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    ).hexdigest()


def _class_table(examples: Sequence[Example], attribute: str) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for example in examples:
        row = table.setdefault(str(getattr(example, attribute)), {"rows": 0, "partisan": 0})
        row["rows"] += 1
        row["partisan"] += example.label
    return dict(sorted(table.items()))


def _metrics(labels: Any, scores: Any, threshold: float) -> dict[str, Any]:
    """binary_metrics for arrays or lists."""
    return binary_metrics(np.asarray(labels).tolist(), np.asarray(scores).tolist(), threshold)


def _metrics_by(
    examples: Sequence[Example], scores: np.ndarray, threshold: float, attribute: str
) -> dict[str, Any]:
    labels = np.array([example.label for example in examples], dtype=np.int64)
    keys = np.array([getattr(example, attribute) for example in examples], dtype=object)
    return {
        str(key): _metrics(labels[keys == key], scores[keys == key], threshold)
        for key in sorted(set(keys.tolist()))
    }


def _seen_by(card: dict[str, Any], evaluation: Sequence[Example]) -> list[bool]:
    """Which evaluation rows the model of `card` was trained on."""
    keys = (card.get("retrain") or {}).get("training_keys")
    if isinstance(keys, list):
        known = set(keys)
        return [text_key(example.text) in known for example in evaluation]
    # `netra train` fits the whole seed corpus; it never saw reviewer labels.
    return [example.origin == "seed" for example in evaluation]


def _new_data(
    card: dict[str, Any] | None,
    reviewer: Sequence[Example],
    added_files: dict[str, str],
    added: Sequence[Example],
) -> dict[str, Any]:
    """How much labelled data the current model has not had."""
    info = (card or {}).get("retrain") or {}
    until_text = (info.get("reviewer_labels") or {}).get("latest_decided_at")
    until = datetime.fromisoformat(until_text.replace("Z", "+00:00")) if until_text else None
    new_reviewer = sum(
        1 for e in reviewer if until is None or (e.decided_at is not None and e.decided_at > until)
    )
    known_files = set((info.get("added_files") or {}).values())
    new_files = {name for name, digest in added_files.items() if digest not in known_files}
    new_added = sum(1 for e in added if e.source in new_files)
    return {
        "reviewer_labels": new_reviewer,
        "added_rows": new_added,
        "total": new_reviewer + new_added,
        "since": until_text,
    }


@dataclass
class RetrainResult:
    """What `netra retrain` did."""

    status: str  # skipped | candidate | promoted
    message: str
    version: str | None = None
    directory: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)
    report_paths: tuple[Path, Path] | None = None
    promotion: PromotionResult | None = None


def _load_current(config: Config) -> tuple[LoadedModel | None, str | None, str | None]:
    """(model, its version name, error) for the model scoring uses now."""
    root = config.paths.models_dir
    try:
        name = config.classifier.model_version or current_version(root)
    except ModelError as exc:
        return None, None, str(exc)
    if name is None:
        return None, None, None
    try:
        # compared at its own stored threshold, as the candidate is at its own
        model = load_scoring_model(config, resolve_model_dir(config), operating_threshold=False)
        return model, name, None
    except ModelError as exc:
        return None, name, str(exc)


def _decide(
    config: Config,
    current: LoadedModel | None,
    current_name: str | None,
    current_error: str | None,
    comparison: dict[str, Any] | None,
) -> tuple[bool, str]:
    """Whether to promote automatically, and why (or why not)."""
    tolerance = config.retrain.tolerance
    if current_error is not None:
        return False, (
            f"the current model {current_name} cannot be loaded ({current_error}); "
            "check the candidate's report and promote it by hand"
        )
    if current is None:
        return True, "there was no current model"
    if config.classifier.model_version:
        return False, (
            f"classifier.model_version pins {config.classifier.model_version} in the config; "
            "promotion would not change what scores posts"
        )
    assert comparison is not None
    rows, positives = comparison["rows"], comparison["positives"]
    negatives = rows - positives
    if rows < config.retrain.min_eval_rows or min(positives, negatives) < MIN_EVAL_PER_CLASS:
        return False, (
            f"only {rows} evaluation rows ({positives} partisan, {negatives} not) that the "
            f"current model {current.version} was not trained on; automatic promotion needs "
            f"{config.retrain.min_eval_rows} with at least {MIN_EVAL_PER_CLASS} of each label "
            "(retrain.min_eval_rows) — label more posts, or promote by hand after reading the report"
        )
    worse = []
    for metric in COMPARED_METRICS:
        mine, theirs = comparison["candidate"][metric], comparison["current"][metric]
        if mine is None or theirs is None:
            return False, f"{metric} is undefined on the evaluation rows"
        if mine < theirs - tolerance:
            worse.append(f"{metric} {mine:.3f} < current {theirs:.3f} - tolerance {tolerance}")
    if worse:
        return False, "worse than the current model: " + "; ".join(worse)
    return True, (
        f"not worse than {current.version} beyond tolerance {tolerance} on "
        f"{', '.join(COMPARED_METRICS)} ({rows} evaluation rows)"
    )


def _read_added(
    add_files: Sequence[Path], held_out: Mapping[str, str]
) -> tuple[list[Example], dict[str, str]]:
    """Rows and SHA-256 of every `--add` file; all are checked before anything is trained.

    `held_out` maps the SHA-256 of known held-out files to their description: such a file is
    refused.
    """
    examples: list[Example] = []
    hashes: dict[str, str] = {}
    for path in map(Path, add_files):
        examples.extend(read_labelled_file(path))
        if path.name in hashes:
            raise UsageError(f"--add files must have different names: {path.name} twice")
        hashes[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        refuse_held_out({str(path): hashes[path.name]}, held_out, "--add")
    return examples, hashes


@dataclass
class Sources:
    """The labelled data one retraining draws on."""

    corpus: Corpus
    reviewer: list[Example]
    added: list[Example]
    added_files: dict[str, str]

    @property
    def reviewer_sha256(self) -> str:
        """Hash of the reviewer labels used (post, text, label, decision time)."""
        return _sha256_json(
            [
                [
                    e.ref,
                    text_key(e.text),
                    e.label,
                    e.decided_at.isoformat() if e.decided_at else None,
                ]
                for e in self.reviewer
            ]
        )


def _fit_candidate(
    config: Config,
    sources: Sources,
    data: Datasets,
    settings: ModelSettings,
    profiles: Sequence[ElectionProfile],
    progress: Progress,
) -> tuple[Any, dict[str, Any]]:
    """Cross-validate, choose the threshold, fit; returns the pipeline and its card."""
    train = data.train
    labels = [example.label for example in train]
    positives = sum(labels)
    if min(positives, len(labels) - positives) < MIN_TRAIN_PER_CLASS:
        raise UsageError(
            f"too little training data: {positives} partisan and {len(labels) - positives} "
            f"not partisan rows after the split; need {MIN_TRAIN_PER_CLASS} of each"
        )
    if not data.evaluation:
        raise UsageError("no evaluation rows: the seed corpus and reviewer labels are too small")
    normalizer = Normalizer(
        ContestantMasker(profiles), do_stem=settings.stem, drop_stopwords=settings.stopwords
    )
    texts = [example.text for example in train]
    progress.start("normalise", len(texts))
    matrix = columns([normalizer.normalize(text) for text in texts])
    progress.advance(len(texts))
    progress.finish()
    progress.start("cross-validate", len(HELD_OUT_CONTESTS))
    folds = contest_folds([example.contest for example in train], texts)
    oof = cross_validated_scores(matrix, labels, folds, settings)
    progress.advance(len(HELD_OUT_CONTESTS))
    progress.finish()
    # Seed texts are cleaner than real posts (see pipeline.classify): aim higher in proportion.
    seed_share = sum(example.origin == "seed" for example in train) / len(train)
    target = round(
        min(0.99, config.retrain.target_precision + SEED_PRECISION_MARGIN * seed_share), 4
    )
    choice = choose_threshold(labels, oof, target)
    threshold = float(choice["threshold"])
    model = fit(matrix, labels, settings)
    training_scores = model.predict_proba(matrix)[:, 1]
    reviewer_hash = sources.reviewer_sha256
    fingerprint = _sha256_json(
        {
            "seed": sources.corpus.sha256,
            "split": SPLIT_RULE,
            "reviewer": reviewer_hash,
            "added": list(sources.added_files.items()),
            "settings": settings.to_dict(),
            "target_precision": config.retrain.target_precision,
            "normalizer": [NORMALIZER_VERSION, data_fingerprint()],
            "profiles": profiles_fingerprint(profiles),
            "format": FORMAT_VERSION,
        }
    )
    features = model.named_steps["features"].named_transformers_
    latest = max((e.decided_at for e in sources.reviewer if e.decided_at), default=None)
    card: dict[str, Any] = {
        **card_header(f"partisan-v{FORMAT_VERSION}-{fingerprint[:10]}", choice, settings, profiles),
        "data": {
            "sha256": fingerprint,
            "seed_sha256": sources.corpus.sha256,
            "file_sha256": sources.corpus.file_hashes,
            "reviewer_labels_sha256": reviewer_hash,
            "added_files": sources.added_files,
            "rows": len(train),
            "partisan": positives,
            "not_partisan": len(train) - positives,
            "by_origin": _class_table(train, "origin"),
            "by_contest": _class_table(train, "contest"),
            "by_platform": _class_table(train, "platform"),
            "by_register": _class_table(train, "register"),
            "by_category": _class_table(train, "category"),
        },
        "diversity": diversity(texts),
        "features": {
            "word": len(features["word"].vocabulary_),
            "char": len(features["char"].vocabulary_),
        },
        "libraries": library_versions(),
        "metrics": {
            "cross_validation": {
                "scheme": "leave one contest out (" + ", ".join(HELD_OUT_CONTESTS) + "); "
                "reviewer and added rows spread over the folds by text hash",
                "overall": _metrics(labels, oof, threshold),
                "by_contest": _metrics_by(train, oof, threshold, "contest"),
                "by_category": _metrics_by(train, oof, threshold, "category"),
            },
            "training": _metrics(labels, training_scores, threshold),
        },
        "training_scores_sha256": scores_fingerprint(training_scores),
        "retrain": {
            "split": data.summary,
            "target_precision": config.retrain.target_precision,
            "reviewer_labels": {
                "count": len(sources.reviewer),
                "latest_decided_at": format_datetime(latest) if latest else None,
            },
            "added_files": sources.added_files,
            # Lets the next retraining leave out what this model has seen when comparing.
            "training_keys": sorted({text_key(text) for text in texts}),
        },
    }
    return model, card


@dataclass
class Scores:
    """Both models' scores on the evaluation rows."""

    rows: list[Example]
    labels: np.ndarray
    candidate: np.ndarray
    current: np.ndarray | None


def _score_evaluation(
    rows: list[Example],
    candidate: LoadedModel,
    current: LoadedModel | None,
    progress: Progress,
) -> Scores:
    """Both models' scores (both loaded with the configured profiles: see `retrain`)."""
    progress.start("evaluate", len(rows))
    texts = [example.text for example in rows]

    def scores(model: LoadedModel) -> np.ndarray:
        results = model.score(texts, explain=False)
        return np.array([result.score for result in results])

    result = Scores(
        rows,
        np.array([example.label for example in rows], dtype=np.int64),
        scores(candidate),
        scores(current) if current is not None else None,
    )
    progress.advance(len(rows))
    progress.finish()
    return result


def retrain(
    config: Config,
    store: Store | None,
    *,
    add_files: Sequence[Path] = (),
    corpus_dir: Path | None = None,
    settings: ModelSettings | None = None,
    auto_promote: bool = True,
    by: str | None = None,
    progress: Progress | None = None,
) -> RetrainResult:
    """Train a candidate, compare it with the current model, promote it if it is not worse."""
    progress = progress or Progress()
    root = config.paths.models_dir
    held_out = held_out_files(root)
    added, added_files = _read_added(add_files, held_out)
    corpus_dir = corpus_dir or CORPUS_DIR
    refuse_held_out(corpus_file_hashes(corpus_dir), held_out, "corpus file")
    corpus = load_corpus(corpus_dir)
    # What scoring masks with, so the comparison measures both models as they would score.
    scoring_profiles = election_profiles(config)
    sources = Sources(corpus, reviewer_examples(store), added, added_files)
    current, current_name, current_error = _load_current(config)
    new = _new_data(current.card if current else None, sources.reviewer, added_files, added)
    if current is not None and new["total"] < config.retrain.min_new_labels:
        message = (
            f"not enough new labelled data: {new['total']} new since {current.version} "
            f"({new['reviewer_labels']} reviewer labels, {new['added_rows']} rows from --add files);"
            f" retrain.min_new_labels is {config.retrain.min_new_labels}. No new version was made."
        )
        return RetrainResult("skipped", message, report={"new_data": new})

    data = build_datasets(seed_examples(sources.corpus), sources.reviewer, added)
    profiles = load_profiles(config.paths.elections_dir)
    settings = settings or ModelSettings(seed=config.retrain.seed)
    model, card = _fit_candidate(config, sources, data, settings, profiles, progress)
    version = card["version"]
    candidate = LoadedModel(model, card, root / version, scoring_profiles)
    # Other profiles mask other names: both models mask with the configured ones
    # (`current` comes from load_scoring_model, which uses election_profiles(config) too).
    scores = _score_evaluation(data.evaluation, candidate, current, progress)
    card["metrics"]["held_out"] = {
        "file": "evaluation rows (seed held-out part + newest reviewer labels)",
        "overall": _metrics(scores.labels, scores.candidate, candidate.threshold),
        "by_source": _metrics_by(scores.rows, scores.candidate, candidate.threshold, "origin"),
    }
    directory = _write_version(
        root, version, model, card, render_card(card) + _retrain_card_section(card)
    )

    report = _report(card, data, scores, current, current_name, current_error, new)
    report["evaluation"]["profiles"] = [profile.id for profile in scoring_profiles]
    promoted, reason = _decide(
        config, current, current_name, current_error, report["evaluation"]["comparison"]
    )
    if promoted and not auto_promote:
        promoted, reason = False, f"--no-promote (would have been promoted: {reason})"
    report["decision"] = {
        "promoted": promoted,
        "reason": reason,
        "tolerance": config.retrain.tolerance,
        "min_eval_rows": config.retrain.min_eval_rows,
        "metrics": list(COMPARED_METRICS),
    }
    promotion = None
    if promoted:
        promotion = promote(config, version, store=store, by=by or "netra retrain", reason=reason)
        report["rescored"] = promotion.rescored
    paths = _write_report(config, version, report)
    record_trained(root, version, promoted, reason, str(paths[0]))
    status = "promoted" if promoted else "candidate"
    message = (
        f"{version} promoted: {reason}" if promoted else f"{version} kept as a candidate: {reason}"
    )
    return RetrainResult(status, message, version, directory, report, paths, promotion)


def _write_version(
    root: Path, version: str, model: Any, card: dict[str, Any], card_md: str
) -> Path:
    """Write the model directory under a temporary name, then rename it into place."""
    final = root / version
    if final.exists():
        existing = verify_model_dir(final)  # a tampered directory is refused, not reused
        if existing.get("training_scores_sha256") != card["training_scores_sha256"]:
            raise ModelError(
                f"{final} exists with a different model for the same data; move it away first"
            )
        log.info("%s already exists with the same model; reusing it", final)
        return final
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    write_model_dir(temporary, model, card, card_md)
    try:
        os.rename(temporary, final)  # a listing or scorer never sees a half-written version
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        if not final.is_dir():
            raise
        # A concurrent retraining on the same data got there first: same name, same model.
        return _write_version(root, version, model, card, card_md)
    return final


def _retrain_card_section(card: dict[str, Any]) -> str:
    split = card["retrain"]["split"]
    lines = [
        "## Retraining data",
        "",
        f"Split: {split['split_rule']}. Near-duplicates ({split['near_duplicate_rule']}) are "
        f"collapsed; conflicting labels resolved by: {split['conflict_rule']} "
        f"({split['near_duplicate_groups_with_conflicting_labels']} groups).",
        "",
        "| origin | input rows | train | evaluation | collapsed | dropped (near an evaluation text) |",
        "|---|---|---|---|---|---|",
    ]
    for origin, row in split["origins"].items():
        lines.append(
            f"| {origin} | {row['input_rows']} | {row['train']} | {row['evaluation']} | "
            f"{row['collapsed_near_duplicates']} | {row['dropped_near_evaluation_text']} |"
        )
    data = card["data"]
    lines += [
        "",
        f"Data SHA-256: seed `{data['seed_sha256']}`, reviewer labels "
        f"`{data['reviewer_labels_sha256']}`"
        + "".join(f", `{name}` `{digest}`" for name, digest in data["added_files"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def _report(
    card: dict[str, Any],
    data: Datasets,
    scores: Scores,
    current: LoadedModel | None,
    current_name: str | None,
    current_error: str | None,
    new: dict[str, Any],
) -> dict[str, Any]:
    threshold = float(card["threshold"])
    rows, labels = scores.rows, scores.labels
    evaluation: dict[str, Any] = {
        "rows": len(rows),
        "by_origin": _class_table(rows, "origin"),
        "candidate": {
            "overall": _metrics(labels, scores.candidate, threshold),
            "by_origin": _metrics_by(rows, scores.candidate, threshold, "origin"),
        },
        "current": None,
        "comparison": None,
    }
    if current is not None and scores.current is not None:
        evaluation["current"] = {
            "overall": _metrics(labels, scores.current, current.threshold),
            "by_origin": _metrics_by(rows, scores.current, current.threshold, "origin"),
        }
        seen = np.array(_seen_by(current.card, rows), dtype=bool)
        fair = ~seen
        evaluation["comparison"] = {
            "rows": int(fair.sum()),
            "positives": int(labels[fair].sum()),
            "left_out_seen_by_current": int(seen.sum()),
            "candidate": _metrics(labels[fair], scores.candidate[fair], threshold)
            if fair.any()
            else None,
            "current": _metrics(labels[fair], scores.current[fair], current.threshold)
            if fair.any()
            else None,
        }
    return {
        "candidate": {
            "version": card["version"],
            "threshold": threshold,
            "threshold_choice": card["threshold_choice"],
            "cross_validation": card["metrics"]["cross_validation"]["overall"],
        },
        "current": {
            "version": current_name,
            "threshold": current.threshold if current else None,
            "error": current_error,
        }
        if current_name
        else None,
        "new_data": new,
        "data": {
            "training_rows": len(data.train),
            "training_partisan": sum(e.label for e in data.train),
            **data.summary,
        },
        "evaluation": evaluation,
    }


def _write_report(config: Config, version: str, report: dict[str, Any]) -> tuple[Path, Path]:
    """The report as JSON and text, side by side, in `<output_dir>/retrain/`."""
    folder = config.paths.output_dir / "retrain"
    folder.mkdir(parents=True, exist_ok=True)
    json_path, text_path = folder / f"{version}.json", folder / f"{version}.txt"
    json_path.write_text(
        json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n",
        encoding="utf-8",
    )
    text_path.write_text(format_report(report) + "\n", encoding="utf-8")
    return json_path, text_path


def _show(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def format_report(report: dict[str, Any]) -> str:
    """The retraining report as text: data per origin, then both models side by side."""
    candidate = report["candidate"]
    current = report.get("current") or {}
    data = report["data"]
    lines = [
        f"candidate {candidate['version']} (threshold {candidate['threshold']}, "
        f"{candidate['threshold_choice']['rule']}, target {candidate['threshold_choice']['target_precision']})",
        f"current   {current.get('version') or 'none'}"
        + (f" (threshold {current['threshold']})" if current.get("threshold") is not None else "")
        + (f" — cannot be loaded: {current['error']}" if current.get("error") else ""),
        "",
        "data          input  partisan  train  eval  collapsed  dropped(near eval)",
    ]
    for origin, row in data["origins"].items():
        lines.append(
            f"  {origin:<10} {row['input_rows']:>6} {row['input_partisan']:>9} {row['train']:>6} "
            f"{row['evaluation']:>5} {row['collapsed_near_duplicates']:>10} "
            f"{row['dropped_near_evaluation_text']:>19}"
        )
    balance = data["training_partisan"] / data["training_rows"] if data["training_rows"] else 0.0
    lines += [
        f"  training rows {data['training_rows']}, {balance:.1%} partisan; near-duplicate groups "
        f"with conflicting labels: {data['near_duplicate_groups_with_conflicting_labels']} "
        f"({data['conflict_rule']})",
        f"  split: {data['split_rule']}"
        + (
            f"; reviewer labels held out from {data['reviewer_evaluation_from']}"
            if data.get("reviewer_evaluation_from")
            else ""
        ),
        f"  new since the current model: {report['new_data']['total']} "
        f"({report['new_data']['reviewer_labels']} reviewer labels, "
        f"{report['new_data']['added_rows']} added rows)",
        "",
    ]
    evaluation = report["evaluation"]
    if evaluation.get("profiles"):
        lines += [f"election profiles (both models): {', '.join(evaluation['profiles'])}", ""]

    def block(title: str, mine: dict[str, Any], theirs: dict[str, Any] | None) -> list[str]:
        out = [
            f"{title}: {mine['n']} rows, {mine['positives']} partisan",
            f"  {'':<22} {'candidate':>10} {'current':>10}",
        ]
        for name, key in (
            ("PR-AUC", "pr_auc"),
            ("F1 at threshold", "f1"),
            ("precision at thresh.", "precision"),
            ("recall at threshold", "recall"),
            ("false-positive rate", "false_positive_rate"),
        ):
            other = theirs.get(key) if theirs else None
            out.append(f"  {name:<22} {_show(mine.get(key)):>10} {_show(other):>10}")
        return out

    current_eval = evaluation.get("current") or {}
    lines += block(
        "evaluation, all", evaluation["candidate"]["overall"], current_eval.get("overall")
    )
    for origin, metrics in evaluation["candidate"]["by_origin"].items():
        lines += block(
            f"evaluation, {origin}",
            metrics,
            (current_eval.get("by_origin") or {}).get(origin),
        )
    comparison = evaluation.get("comparison")
    if comparison and comparison["left_out_seen_by_current"]:
        lines.append(
            f"note: the current model was trained on {comparison['left_out_seen_by_current']} of "
            "these rows, so its figures above are optimistic; only rows it never saw decide"
        )
    if comparison and comparison["candidate"]:
        lines += block(
            f"compared for promotion (left out {comparison['left_out_seen_by_current']} rows the "
            "current model trained on)",
            comparison["candidate"],
            comparison["current"],
        )
    decision = report.get("decision")
    if decision:
        verdict = "PROMOTED" if decision["promoted"] else "kept as a candidate"
        lines += ["", f"decision: {verdict} — {decision['reason']}"]
    rescored = report.get("rescored")
    if rescored:
        lines.append(
            f"re-scored {rescored['pending_items']} pending queue items "
            f"({rescored['below_threshold']} now below the threshold)"
        )
    return "\n".join(lines)


__all__ = [
    "Example",
    "RetrainResult",
    "build_datasets",
    "format_report",
    "near_duplicate_groups",
    "read_labelled_file",
    "retrain",
    "reviewer_examples",
    "seed_held_out",
    "text_key",
]
