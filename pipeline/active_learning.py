"""Active learning: which posts a reviewer should label next, and labelling them.

`select_to_label` takes the stored posts the current model is least sure about — scores closest
to its threshold — in a pool a few times larger than asked for, then picks a diverse subset
greedily: each next post is the one farthest (cosine distance on the model's own TF-IDF
features) from every post already picked, starting from the most uncertain. One copy-pasted
campaign message therefore takes one place in the list, not fifty. Posts already labelled (by a
queue decision or here), empty texts and texts identical to a labelled one are left out.

Labels go to the append-only `content_labels` table with the judged text only (no author
fields); `netra retrain` reads them together with the queue's decision labels, the latest
label per post winning. Labelling a post here is not a finding against anyone: it only says
whether the text is partisan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import numpy as np
from sklearn.preprocessing import normalize
from sqlalchemy import and_, func, insert, select

from classifiers.model import LoadedModel
from pipeline import schema
from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.progress import Progress
from pipeline.queue import group_text_key
from pipeline.records import (
    PARENT_CONTENT_KINDS,
    content_hash,
    format_datetime,
    judged_text,
    takes_parent_content,
)
from pipeline.review import CONTENT_LABELS, iter_reviewer_labels, terminal_safe
from pipeline.store import Store, utcnow

log = logging.getLogger(__name__)

# Diversity is chosen among the POOL_FACTOR * n most uncertain posts, so it never trades
# an unsure post for a merely unusual one far from the threshold.
POOL_FACTOR = 4
TEXT_PREVIEW = 100


# -- labels ------------------------------------------------------------------------------------


def iter_content_labels(store: Store) -> Iterator[tuple[str, int, datetime, str]]:
    """(text, 1 partisan / 0 not, labelled_at, post_key): the latest label per post."""
    c = schema.content_labels
    latest: dict[str, Any] = {}
    with store.connect() as conn:
        for row in conn.execute(select(c).order_by(c.c.id)):
            latest[row.post_key] = row
    for row in sorted(latest.values(), key=lambda r: (r.labelled_at, r.id)):
        yield row.text, 1 if row.label == "partisan" else 0, row.labelled_at, row.post_key


def _judged_text(store: Store, post_key: str) -> str:
    stored = store.get_post(post_key)
    if stored is None:
        raise UsageError(f"no stored post {post_key!r}")
    text = stored.text
    if stored.post.kind in PARENT_CONTENT_KINDS and stored.post.parent_key:
        # a like, or a repost without words of its own, says what its parent says
        parent = store.get_post(stored.post.parent_key)
        text = judged_text(stored.post.kind, text, parent.text if parent else None)
    if not text.strip():
        raise UsageError(f"post {post_key} has no text to label")
    return text


def label_post(
    store: Store,
    post_key: str,
    label: str,
    reviewer: str,
    *,
    model_version: str | None = None,
    score: float | None = None,
    now: datetime | None = None,
) -> int:
    """Record a reviewer's content label of a stored post; returns the label's id."""
    if label not in CONTENT_LABELS:
        raise UsageError(f"unknown label {label!r} (expected partisan or not_partisan)")
    if not reviewer or not reviewer.strip():
        raise UsageError("a label needs the reviewer's name (--reviewer)")
    text = _judged_text(store, post_key)
    with store.transaction() as conn:
        inserted = conn.execute(
            insert(schema.content_labels).values(
                post_key=post_key,
                text=text,
                text_hash=content_hash(text),
                label=label,
                reviewer=reviewer.strip(),
                labelled_at=now or utcnow(),
                model_version=model_version,
                score=score,
            )
        )
    key = inserted.inserted_primary_key
    assert key is not None
    return int(key[0])


def labelled(store: Store) -> tuple[set[str], set[str]]:
    """Post keys and folded-text keys that already carry a content label."""
    keys: set[str] = set()
    texts: set[str] = set()
    for source in (iter_reviewer_labels(store), iter_content_labels(store)):
        for text, _label, _when, post_key in source:
            keys.add(post_key)
            texts.add(group_text_key(text))
    return keys, texts


# -- choosing what to label -----------------------------------------------------------------------


@dataclass(frozen=True)
class LabelCandidate:
    """A post worth labelling, with the current model's view of it."""

    post_key: str
    text: str
    kind: str
    created_at: datetime
    score: float
    threshold: float
    model_version: str
    explanation: tuple[tuple[str, float], ...]
    parent_text: str | None = None

    @property
    def margin(self) -> float:
        """Distance of the score from the threshold (small = unsure)."""
        return abs(self.score - self.threshold)


def _pool(store: Store, model: LoadedModel, size: int) -> list[LabelCandidate]:
    """Scored, unlabelled posts closest to the threshold, one per distinct text."""
    keys, texts = labelled(store)
    p, s = schema.posts, schema.scores
    parent = schema.posts.alias("parent")
    query = (
        select(
            p.c.platform,
            p.c.post_id,
            p.c.text,
            p.c.kind,
            p.c.created_at,
            parent.c.text.label("parent_text"),
            s.c.score,
            s.c.threshold,
            s.c.explanation,
        )
        .join(s, and_(s.c.post_pk == p.c.id, s.c.text_hash == p.c.text_hash))
        .outerjoin(
            parent, and_(parent.c.platform == p.c.platform, parent.c.post_id == p.c.parent_id)
        )
        .where(s.c.model_version == model.version)
        .order_by(func.abs(s.c.score - model.threshold), p.c.id)
    )
    pool: list[LabelCandidate] = []
    seen: set[str] = set()
    offset, page = 0, max(size * 2, 200)
    while len(pool) < size:
        with store.connect() as conn:
            rows = conn.execute(query.limit(page).offset(offset)).all()
        if not rows:
            break
        offset += len(rows)
        for row in rows:
            key = f"{row.platform}:{row.post_id}"
            if takes_parent_content(row.kind, row.text, row.parent_text):
                # A like, follow or bare repost says what its parent says, but its own score is
                # that of an empty text: the parent is a candidate of its own, with its score.
                continue
            text = judged_text(row.kind, row.text, row.parent_text)
            folded = group_text_key(text)
            if not text.strip() or key in keys or folded in texts or folded in seen:
                continue
            seen.add(folded)
            explanation = tuple(
                (str(term), float(weight)) for term, weight in (row.explanation or [])
            )
            pool.append(
                LabelCandidate(
                    key,
                    text,
                    row.kind,
                    row.created_at,
                    float(row.score),
                    float(row.threshold),
                    model.version,
                    explanation,
                    row.parent_text if row.kind == "comment" else None,
                )
            )
            if len(pool) >= size:
                break
    return pool


def diverse_subset(vectors: Any, n: int) -> list[int]:
    """Greedy max-min: start at row 0, then always the row farthest from all picked so far.

    `vectors` (dense or sparse, one row per candidate, most uncertain first) are compared by
    cosine distance; ties go to the earlier (more uncertain) row.
    """
    count = vectors.shape[0]
    if count == 0 or n <= 0:
        return []
    unit = normalize(vectors, norm="l2")
    similarity = unit @ unit.T
    similarity = similarity.toarray() if hasattr(similarity, "toarray") else np.asarray(similarity)
    distance = 1.0 - similarity
    picked = [0]
    nearest = distance[0].copy()
    nearest[0] = -np.inf
    while len(picked) < min(n, count):
        best = int(np.argmax(nearest))
        if nearest[best] == -np.inf:
            break
        picked.append(best)
        nearest = np.minimum(nearest, distance[best])
        nearest[picked] = -np.inf
    return picked


def select_to_label(
    config: Config,
    store: Store,
    n: int = 50,
    *,
    model: LoadedModel | None = None,
    progress: Progress | None = None,
) -> list[LabelCandidate]:
    """The `n` posts whose labels would teach the current model most: unsure and diverse."""
    from pipeline.classify import load_scoring_model, score_new_posts

    if n < 1:
        raise UsageError("--n must be at least 1")
    model = model or load_scoring_model(config)
    # Posts collected since the last run (or since a promotion) have no score from this model.
    score_new_posts(store, model, config=config, progress=progress)
    pool = _pool(store, model, n * POOL_FACTOR)
    if not pool:
        return []
    vectors, _ = model.features.transform(model.normalize([c.text for c in pool]))
    return [pool[index] for index in diverse_subset(vectors, n)]


def format_candidates(candidates: Sequence[LabelCandidate]) -> str:
    """The `netra queue to-label` listing."""
    if not candidates:
        return "nothing to label: no scored, unlabelled posts"
    lines = [f"{'#':>3}  {'post':<34} {'score':>5} {'thresh':>6}  text"]
    for rank, candidate in enumerate(candidates, start=1):
        text = terminal_safe(candidate.text).replace("\n", " ")
        if len(text) > TEXT_PREVIEW:
            text = text[: TEXT_PREVIEW - 1] + "…"
        lines.append(
            f"{rank:>3}  {terminal_safe(candidate.post_key)[:34]:<34} {candidate.score:5.3f} "
            f"{candidate.threshold:6.3f}  {text}"
        )
    lines.append(
        f"{len(candidates)} posts near the threshold of {candidates[0].model_version}; "
        "label them with `netra review label`"
    )
    return "\n".join(lines)


# -- the labelling session -----------------------------------------------------------------------


def render_candidate(candidate: LabelCandidate, number: int, total: int) -> str:
    """A post to label, as the reviewer sees it (escaped; no author details: only the text counts)."""
    lines = [
        f"== {number}/{total} {terminal_safe(candidate.post_key)} ({candidate.kind}, posted "
        f"{format_datetime(candidate.created_at)})",
        f"   model {candidate.model_version}: score {candidate.score:.3f} "
        f"(threshold {candidate.threshold:.3f})",
    ]
    if candidate.parent_text:
        lines.append("   in reply to: " + terminal_safe(candidate.parent_text).replace("\n", " "))
    lines.append("   text: " + terminal_safe(candidate.text).replace("\n", "\n         "))
    if candidate.explanation:
        terms = ", ".join(f"{term} ({weight:+.2f})" for term, weight in candidate.explanation[:8])
        lines.append("   why: " + terminal_safe(terms))
    return "\n".join(lines)


@dataclass
class LabelSummary:
    """What a labelling session did."""

    labelled: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    shown: int = 0


ANSWERS: tuple[str, ...] = ("partisan", "not_partisan", "skip", "quit")


def _ask(stdin: TextIO, stdout: TextIO) -> str | None:
    listing = "  ".join(f"{number}) {key}" for number, key in enumerate(ANSWERS, start=1))
    while True:
        stdout.write(f"is the text partisan? ({listing}): ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return None
        answer = line.strip().lower()
        if answer.isdigit() and 1 <= int(answer) <= len(ANSWERS):
            return ANSWERS[int(answer) - 1]
        if answer in ANSWERS:
            return answer
        matches = [key for key in ANSWERS if key.startswith(answer)] if answer else []
        if len(matches) == 1:
            return matches[0]
        stdout.write(f"  please answer with one of: {', '.join(ANSWERS)}\n")


def label_session(
    config: Config,
    store: Store,
    reviewer: str,
    stdin: TextIO,
    stdout: TextIO,
    *,
    n: int = 50,
    candidates: Sequence[LabelCandidate] | None = None,
) -> LabelSummary:
    """Show the to-label posts one by one and store the reviewer's answers."""
    if not reviewer or not reviewer.strip():
        raise UsageError("a labelling session needs the reviewer's name (--reviewer)")
    chosen = list(candidates) if candidates is not None else select_to_label(config, store, n)
    summary = LabelSummary()
    for number, candidate in enumerate(chosen, start=1):
        stdout.write(render_candidate(candidate, number, len(chosen)) + "\n")
        summary.shown += 1
        answer = _ask(stdin, stdout)
        if answer in (None, "quit"):
            break
        if answer == "skip":
            summary.skipped += 1
            continue
        label_post(
            store,
            candidate.post_key,
            answer,
            reviewer,
            model_version=candidate.model_version,
            score=candidate.score,
        )
        summary.labelled[answer] = summary.labelled.get(answer, 0) + 1
    if not chosen:
        stdout.write("nothing to label: no scored, unlabelled posts\n")
    return summary


__all__ = [
    "LabelCandidate",
    "LabelSummary",
    "diverse_subset",
    "format_candidates",
    "iter_content_labels",
    "label_post",
    "label_session",
    "labelled",
    "render_candidate",
    "select_to_label",
]
