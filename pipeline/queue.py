"""The review queue: link authors, enqueue partisan items by linked accounts, keep evidence.

`link_and_enqueue` is the pipeline step after scoring:

1. every post not yet linked (or linked against an older registry revision, or edited since)
   gets a `matches` row: level, confidence, account and evidence — or level NULL (no link);
2. every post whose link level is allowed (`linking.queue_levels`) and whose latest score
   passes the model's threshold becomes an item, with an immutable evidence snapshot. A comment
   is judged on its own text, with the parent post's text and score kept as context; a repost
   without text of its own is judged on what it shares, a like on the post it likes and a
   follow on the followed account's profile (name and bio). The same text by the same account
   is one item with several occurrences; a later edit of a queued post is a new evidence version
   beside the first. A decided item takes neither: a later copy or edit opens a new item.

Item states: pending → in_review → confirmed | dismissed | escalated (escalated → in_review |
confirmed | dismissed; in_review → pending releases a claim). Decisions live in review.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pipeline import schema
from pipeline.config import Config
from pipeline.linker import REGISTRY_LEVELS, Linker
from pipeline.progress import Progress
from pipeline.records import format_datetime, takes_parent_content
from pipeline.registry import current_revision, load_accounts
from pipeline.store import Store, StoredPost, stored_post_from_row, utcnow

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("pending", "in_review", "confirmed", "dismissed", "escalated")
# Items still open to review. A decided item never takes new occurrences: a reviewer's verdict
# covers the evidence they saw, so later posts (or edits) start a new item of their own.
OPEN_STATUSES: tuple[str, ...] = ("pending", "in_review", "escalated")
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"in_review"}),
    "in_review": frozenset({"pending", "confirmed", "dismissed", "escalated"}),
    "escalated": frozenset({"in_review", "confirmed", "dismissed"}),
    "confirmed": frozenset(),
    "dismissed": frozenset(),
}
DISMISS_REASONS: dict[str, str] = {
    "not_partisan": "bukan konten partisan",
    "not_this_asn": "bukan ASN yang dimaksud",
    "outside_period": "di luar masa pemilihan",
    "duplicate": "duplikat",
    "insufficient_evidence": "bukti tidak cukup",
}
# What the account did (the breach category); the first three follow from the post kind.
CATEGORIES: dict[str, str] = {
    "post": "membuat unggahan",
    "comment": "berkomentar",
    "share": "membagikan ulang",
    "like": "menyukai",
    "follow": "mengikuti/bergabung akun atau grup pemenangan",
    "campaign": "kampanye/sosialisasi calon",
    "photo_pose": "foto/pose/atribut mendukung calon",
    "event": "menghadiri kegiatan kampanye",
    "party_role": "anggota/pengurus partai atau tim kampanye",
}
KIND_CATEGORY: dict[str, str] = {
    "post": "post",
    "comment": "comment",
    "repost": "share",
    "like": "like",
    "follow": "follow",
    # a profile's own name and bio, when its account is linked (a campaign bio or frame)
    "profile": "campaign",
}

BATCH_SIZE = 1000
CONTEXT_TEXT_LIMIT = 4000


# -- evidence ---------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """The byte-stable JSON form hashed for evidence (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def evidence_content(row: Mapping[str, Any]) -> dict[str, Any]:
    """The captured content an evidence hash covers, from an `evidence` row (or its values)."""
    return {
        "platform": row["platform"],
        "post_id": row["post_id"],
        "version": row["post_version"],
        "kind": row["kind"],
        "permalink": row["permalink"],
        "text": row["text"],
        "created_at": format_datetime(row["created_at"]),
        "captured_at": format_datetime(row["captured_at"]),
        "author": row["author"],
        "raw": row["raw"],
    }


def evidence_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over the canonical JSON of the captured content."""
    return hashlib.sha256(canonical_json(evidence_content(row)).encode("utf-8")).hexdigest()


def verify_evidence(row: Mapping[str, Any]) -> bool:
    """Whether an evidence row still matches the hash recorded when it was captured."""
    return evidence_hash(row) == row["content_sha256"]


def group_text_key(text: str) -> str:
    """SHA-256 of a text with case and whitespace folded: 'same text' for grouping."""
    folded = re.sub(r"\s+", " ", text).strip().casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def reach_of(metrics: Mapping[str, Any] | None) -> int:
    """Audience size from captured metrics: interactions, with views discounted."""
    if not metrics:
        return 0

    def number(name: str) -> int:
        value = metrics.get(name)
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    return number("likes") + number("replies") + 2 * number("shares") + number("views") // 100


def priority_of(score: float, link_confidence: float, reach: int) -> float:
    """Priority in [0, 1]: mostly the score, then how sure the identity is, then reach."""
    reach_factor = min(1.0, math.log10(1 + max(0, reach)) / 4)  # 10,000 reach counts fully
    return round(0.55 * score + 0.3 * link_confidence + 0.15 * reach_factor, 4)


def score_passes(score: Mapping[str, Any] | None) -> bool:
    """A stored score passes when its label is partisan or it reaches its model's threshold."""
    if score is None:
        return False
    return score["label"] == "partisan" or float(score["score"]) >= float(score["threshold"])


# -- the pipeline step --------------------------------------------------------------------------


@dataclass
class QueueCounters:
    """What one link-and-enqueue pass did."""

    link_checked: int = 0
    linked: int = 0
    suspected: int = 0
    queued: int = 0
    occurrences: int = 0
    evidence_versions: int = 0
    by_level: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        """Counters for the run report."""
        return {
            "link_checked": self.link_checked,
            "linked": self.linked,
            "suspected": self.suspected,
            "queued": self.queued,
            "occurrences": self.occurrences,
            "evidence_versions": self.evidence_versions,
        }


def link_and_enqueue(
    config: Config,
    store: Store,
    *,
    model_version: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Link every post not yet linked, then enqueue what passes; returns counters."""
    counters = QueueCounters()
    progress = progress or Progress()
    link_posts(config, store, counters, now=now, progress=progress)
    enqueue_posts(
        config,
        store,
        counters,
        model_version=model_version or config.classifier.model_version,
        now=now,
        progress=progress,
    )
    return counters.as_dict()


def _needs_link(revision: int) -> Any:
    p, m = schema.posts, schema.matches
    current = (
        select(m.c.post_pk)
        .where(
            m.c.post_pk == p.c.id,
            m.c.registry_revision >= revision,
            m.c.post_version == p.c.version,
        )
        .exists()
    )
    return ~current


def link_posts(
    config: Config,
    store: Store,
    counters: QueueCounters | None = None,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> QueueCounters:
    """Record a link (or its absence) for every post not linked against the current registry."""
    counters = counters or QueueCounters()
    progress = progress or Progress()
    revision = current_revision(store)
    linker = Linker(
        load_accounts(store), name_similarity=config.linking.name_similarity, revision=revision
    )
    p = schema.posts
    last = 0
    progress.start("link")
    while True:
        with store.connect() as conn:
            rows = conn.execute(
                select(p)
                .where(p.c.id > last, _needs_link(revision))
                .order_by(p.c.id)
                .limit(BATCH_SIZE)
            ).all()
        if not rows:
            break
        moment = now or utcnow()
        values: list[dict[str, Any]] = []
        for row in rows:
            result = linker.match(
                row.platform,
                row.author_id,
                row.author_handle,
                row.author_name,
                row.author_bio,
                row.url,
            )
            values.append(
                {
                    "post_pk": row.id,
                    "post_version": row.version,
                    "registry_revision": revision,
                    "level": result.level,
                    "confidence": result.confidence,
                    "account_id": result.account_id,
                    "evidence": dict(result.evidence) or None,
                    "linked_at": moment,
                }
            )
            counters.link_checked += 1
            if result.level in REGISTRY_LEVELS:
                counters.linked += 1
            elif result.level == "self_declared":
                counters.suspected += 1
            if result.level:
                counters.by_level[result.level] = counters.by_level.get(result.level, 0) + 1
        with store.transaction() as conn:
            _upsert_matches(store, conn, values)
        progress.advance(len(rows))
        last = rows[-1].id
    progress.finish()
    return counters


def _upsert_matches(store: Store, conn: Connection, values: list[dict[str, Any]]) -> None:
    dialect = sqlite if store.is_sqlite else postgresql
    statement = dialect.insert(schema.matches)
    statement = statement.on_conflict_do_update(
        index_elements=["post_pk"],
        set_={
            name: statement.excluded[name]
            for name in (
                "post_version",
                "registry_revision",
                "level",
                "confidence",
                "account_id",
                "evidence",
                "linked_at",
            )
        },
    )
    conn.execute(statement, values)


def _latest_scores(
    conn: Connection, post_pks: Sequence[int], model_version: str | None
) -> dict[int, dict[str, Any]]:
    """The newest score of each post's current text."""
    if not post_pks:
        return {}
    p, s = schema.posts, schema.scores
    query = (
        select(s)
        .join(p, and_(p.c.id == s.c.post_pk, p.c.text_hash == s.c.text_hash))
        .where(s.c.post_pk.in_(list(post_pks)))
        .order_by(s.c.post_pk, s.c.scored_at.desc(), s.c.id.desc())
    )
    if model_version is not None:
        query = query.where(s.c.model_version == model_version)
    latest: dict[int, dict[str, Any]] = {}
    for row in conn.execute(query):
        latest.setdefault(row.post_pk, dict(row._mapping))
    return latest


def _parents(conn: Connection, posts: Iterable[StoredPost]) -> dict[str, StoredPost]:
    wanted: dict[str, list[str]] = {}
    for stored in posts:
        if stored.post.parent_id:
            wanted.setdefault(stored.post.platform, []).append(stored.post.parent_id)
    found: dict[str, StoredPost] = {}
    p = schema.posts
    for platform, ids in wanted.items():
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(p).where(p.c.platform == platform, p.c.post_id.in_(ids[start : start + 500]))
            )
            for row in rows:
                parent = stored_post_from_row(row)
                found[parent.key] = parent
    return found


def enqueue_posts(
    config: Config,
    store: Store,
    counters: QueueCounters | None = None,
    *,
    model_version: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> QueueCounters:
    """Queue linked posts whose score passes; add occurrences and new versions to items."""
    counters = counters or QueueCounters()
    progress = progress or Progress()
    levels = list(config.linking.queue_levels)
    if not levels:
        return counters
    p, m, e = schema.posts, schema.matches, schema.evidence
    has_evidence = (
        select(e.c.id).where(e.c.post_pk == p.c.id, e.c.post_version == p.c.version).exists()
    )
    last = 0
    progress.start("enqueue")
    while True:
        with store.connect() as conn:
            rows = conn.execute(
                select(p, m.c.level, m.c.confidence, m.c.account_id, m.c.evidence.label("mev"))
                .join(m, m.c.post_pk == p.c.id)
                .where(p.c.id > last, m.c.level.in_(levels), ~has_evidence)
                .order_by(p.c.id)
                .limit(BATCH_SIZE)
            ).all()
        if not rows:
            break
        with store.transaction() as conn:
            _enqueue_batch(conn, rows, counters, model_version, now or utcnow())
        progress.advance(len(rows))
        last = rows[-1].id
    progress.finish()
    return counters


def _enqueue_batch(
    conn: Connection,
    rows: Sequence[Any],
    counters: QueueCounters,
    model_version: str | None,
    moment: datetime,
) -> None:
    stored = [stored_post_from_row(row) for row in rows]
    parents = _parents(conn, stored)
    scores = _latest_scores(
        conn, [s.pk for s in stored] + [s.pk for s in parents.values()], model_version
    )
    occ = schema.queue_occurrences
    pks = [s.pk for s in stored]
    items = schema.queue_items
    # per post: the newest item holding it, if that item is still open
    newest = (
        select(occ.c.post_pk, func.max(occ.c.item_id).label("item_id"))
        .where(occ.c.post_pk.in_(pks))
        .group_by(occ.c.post_pk)
        .subquery()
    )
    item_of_post: dict[int, int] = dict(
        conn.execute(
            select(newest.c.post_pk, newest.c.item_id)
            .join(items, items.c.id == newest.c.item_id)
            .where(items.c.status.in_(OPEN_STATUSES))
        ).all()
    )
    for row, post in zip(rows, stored, strict=True):
        match = {
            "level": row.level,
            "confidence": row.confidence,
            "account_id": row.account_id,
            "evidence": row.mev or {},
        }
        parent = parents.get(post.post.parent_key or "")
        parent_score = scores.get(parent.pk) if parent else None
        own_score = scores.get(post.pk)
        existing_item = item_of_post.get(post.pk)
        if existing_item is not None:
            # An edit of a post in an open item: the new text is kept beside the first as
            # evidence. (An edit of a post in a decided item is judged afresh below.)
            evidence_id = _insert_evidence(
                conn, post, own_score, match, _context(post, parent, parent_score), moment
            )
            _add_occurrence(conn, existing_item, evidence_id, post, moment)
            counters.evidence_versions += 1
            continue
        judged_text, judged_score = post.text, own_score
        if takes_parent_content(post.post.kind, post.text, parent.text if parent else None):
            # A repost's, like's or follow's content is what it shares, likes or follows: judge
            # the parent's (for a follow, the followed account's name and bio).
            judged_text = parent.text if parent is not None else post.text
            judged_score = parent_score
        if not judged_text.strip() or not score_passes(judged_score):
            continue
        assert judged_score is not None
        evidence_id = _insert_evidence(
            conn, post, judged_score, match, _context(post, parent, parent_score), moment
        )
        author_key = _author_key(post)
        account_part = f"a{match['account_id']}" if match["account_id"] else f"u{author_key}"
        base_key = f"{post.post.platform}|{account_part}|{group_text_key(judged_text)}"
        # the newest item of this group: "<key>", then "<key>#2", "<key>#3"... once decided
        item = conn.execute(
            select(
                items.c.id,
                items.c.reach,
                items.c.score,
                items.c.link_confidence,
                items.c.status,
                items.c.group_key,
            )
            # "<key>" or "<key>#<n>": a range, not LIKE ("_" in handles is a LIKE wildcard,
            # SQLite's LIKE ignores case, and a range can use the unique index)
            .where(
                (items.c.group_key == base_key)
                | ((items.c.group_key > base_key + "#") & (items.c.group_key < base_key + "$"))
            )
            .order_by(items.c.id.desc())
            .limit(1)
        ).first()
        group_key = base_key
        if item is not None and item.status not in OPEN_STATUSES:
            _, _, generation = item.group_key.partition("#")
            group_key = f"{base_key}#{int(generation or 1) + 1}"
            item = None
        reach = reach_of(post.post.metrics)
        if item is not None:
            _add_occurrence(conn, item.id, evidence_id, post, moment)
            total_reach = int(item.reach) + reach
            conn.execute(
                update(items)
                .where(items.c.id == item.id)
                .values(
                    reach=total_reach,
                    priority=priority_of(item.score, item.link_confidence, total_reach),
                    updated_at=moment,
                )
            )
            counters.occurrences += 1
            continue
        score_value = float(judged_score["score"])
        confidence = float(match["confidence"] or 0.0)
        item_id = conn.execute(
            insert(items).values(
                group_key=group_key,
                account_id=match["account_id"],
                platform=post.post.platform,
                author_key=author_key,
                text_hash=group_text_key(judged_text),
                category=KIND_CATEGORY.get(post.post.kind, "post"),
                status="pending",
                priority=priority_of(score_value, confidence, reach),
                score=score_value,
                link_level=match["level"],
                link_confidence=confidence,
                reach=reach,
                first_post_pk=post.pk,
                first_evidence_id=evidence_id,
                model_version=judged_score["model_version"],
                created_at=moment,
                updated_at=moment,
            )
        ).inserted_primary_key[0]
        _add_occurrence(conn, int(item_id), evidence_id, post, moment)
        item_of_post[post.pk] = int(item_id)
        counters.queued += 1


def _author_key(post: StoredPost) -> str:
    if post.post.author_id:
        return post.post.author_id
    if post.post.author_handle:
        return "@" + post.post.author_handle.lstrip("@").lower()
    return f"post:{post.post.post_id}"


def _context(
    post: StoredPost, parent: StoredPost | None, parent_score: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    if not post.post.parent_id:
        return None
    context: dict[str, Any] = {"parent_key": post.post.parent_key, "parent_captured": False}
    if parent is not None:
        context.update(
            parent_captured=True,
            parent_permalink=parent.post.url,
            parent_text=parent.text[:CONTEXT_TEXT_LIMIT],
            parent_created_at=format_datetime(parent.post.created_at),
        )
    if parent_score is not None:
        context.update(
            parent_score=float(parent_score["score"]),
            parent_label=parent_score["label"],
            parent_model_version=parent_score["model_version"],
            parent_explanation=parent_score["explanation"] or [],
        )
    return context


def _insert_evidence(
    conn: Connection,
    post: StoredPost,
    score: Mapping[str, Any] | None,
    match: Mapping[str, Any],
    context: Mapping[str, Any] | None,
    moment: datetime,
) -> int:
    values: dict[str, Any] = {
        "post_pk": post.pk,
        "post_key": post.key,
        "post_version": post.version,
        "platform": post.post.platform,
        "post_id": post.post.post_id,
        "kind": post.post.kind,
        "permalink": post.post.url,
        "text": post.text,
        "created_at": post.post.created_at,
        "captured_at": post.first_seen,
        "author": {
            "id": post.post.author_id,
            "handle": post.post.author_handle,
            "name": post.post.author_name,
            "bio": post.post.author_bio,
        },
        "metrics": dict(post.post.metrics),
        "raw": post.post.raw,
        "model_version": score["model_version"] if score else None,
        "score": float(score["score"]) if score else None,
        "threshold": float(score["threshold"]) if score else None,
        "explanation": (score["explanation"] or []) if score else [],
        "contestants": (score["contestants"] or []) if score else [],
        "match": dict(match),
        "context": dict(context) if context else None,
        "recorded_at": moment,
    }
    values["content_sha256"] = evidence_hash(values)
    return int(conn.execute(insert(schema.evidence).values(**values)).inserted_primary_key[0])


def _add_occurrence(
    conn: Connection, item_id: int, evidence_id: int, post: StoredPost, moment: datetime
) -> None:
    conn.execute(
        insert(schema.queue_occurrences).values(
            item_id=item_id,
            evidence_id=evidence_id,
            post_pk=post.pk,
            kind=post.post.kind,
            added_at=moment,
        )
    )


# -- reading the queue --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    """A queue item with what a reviewer or an export needs."""

    id: int
    status: str
    priority: float
    score: float
    category: str
    link_level: str
    link_confidence: float
    reach: int
    platform: str
    account: dict[str, Any] | None
    evidence: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    @property
    def first(self) -> dict[str, Any]:
        """The evidence that put the item in the queue."""
        return self.evidence[0]

    @property
    def last_decision(self) -> dict[str, Any] | None:
        """The newest audit entry, if any."""
        return self.decisions[-1] if self.decisions else None

    @property
    def verdict_decision(self) -> dict[str, Any] | None:
        """The newest decision that carried a verdict beyond claiming or releasing."""
        for decision in reversed(self.decisions):
            if decision["to_status"] in ("confirmed", "dismissed", "escalated"):
                return decision
        return None


def item_ids(
    store: Store,
    *,
    statuses: Sequence[str] | None = None,
    since: datetime | None = None,
    instansi: str | None = None,
    limit: int | None = None,
) -> list[int]:
    """Item ids by priority (highest first), filtered by status, posting time and agency."""
    q, a, e = schema.queue_items, schema.registry_accounts, schema.evidence
    query = (
        select(q.c.id)
        .select_from(
            q.join(e, e.c.id == q.c.first_evidence_id).outerjoin(a, a.c.id == q.c.account_id)
        )
        .order_by(q.c.priority.desc(), q.c.id)
    )
    if statuses:
        query = query.where(q.c.status.in_(list(statuses)))
    if since is not None:
        query = query.where(e.c.created_at >= since)
    if instansi:
        query = query.where(func.lower(a.c.instansi).contains(instansi.lower(), autoescape=True))
    if limit is not None:
        query = query.limit(limit)
    with store.connect() as conn:
        return [int(row[0]) for row in conn.execute(query)]


def load_items(store: Store, ids: Sequence[int]) -> list[QueueItem]:
    """Full items (account, evidence in order, audit log) for the given ids, in that order."""
    if not ids:
        return []
    q, a, e, o, d = (
        schema.queue_items,
        schema.registry_accounts,
        schema.evidence,
        schema.queue_occurrences,
        schema.review_decisions,
    )
    items: dict[int, dict[str, Any]] = {}
    evidence: dict[int, list[dict[str, Any]]] = {}
    decisions: dict[int, list[dict[str, Any]]] = {}
    accounts: dict[int, dict[str, Any]] = {}
    with store.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            for row in conn.execute(select(q).where(q.c.id.in_(chunk))):
                items[row.id] = dict(row._mapping)
            for row in conn.execute(
                select(e, o.c.item_id)
                .join(o, o.c.evidence_id == e.c.id)
                .where(o.c.item_id.in_(chunk))
                .order_by(o.c.item_id, e.c.id)
            ):
                evidence.setdefault(row.item_id, []).append(dict(row._mapping))
            for row in conn.execute(
                select(d).where(d.c.item_id.in_(chunk)).order_by(d.c.item_id, d.c.id)
            ):
                decisions.setdefault(row.item_id, []).append(dict(row._mapping))
        account_ids = {item["account_id"] for item in items.values() if item["account_id"]}
        if account_ids:
            for row in conn.execute(select(a).where(a.c.id.in_(sorted(account_ids)))):
                accounts[row.id] = dict(row._mapping)
    result: list[QueueItem] = []
    for item_id in ids:
        item = items.get(item_id)
        if item is None:
            continue
        result.append(
            QueueItem(
                id=item["id"],
                status=item["status"],
                priority=item["priority"],
                score=item["score"],
                category=item["category"],
                link_level=item["link_level"],
                link_confidence=item["link_confidence"],
                reach=item["reach"],
                platform=item["platform"],
                account=accounts.get(item["account_id"]) if item["account_id"] else None,
                evidence=evidence.get(item_id, []),
                decisions=decisions.get(item_id, []),
                created_at=item["created_at"],
                updated_at=item["updated_at"],
            )
        )
    return result


def get_item(store: Store, item_id: int) -> QueueItem | None:
    """One item, or None when there is no such item."""
    found = load_items(store, [item_id])
    return found[0] if found else None


def list_items(
    store: Store, *, statuses: Sequence[str] | None = None, limit: int | None = None
) -> list[QueueItem]:
    """Items by priority, optionally only some statuses."""
    return load_items(store, item_ids(store, statuses=statuses, limit=limit))


def status_counts(store: Store) -> dict[str, int]:
    """How many items are in each state."""
    q = schema.queue_items
    with store.connect() as conn:
        rows = conn.execute(select(q.c.status, func.count()).group_by(q.c.status)).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(count) for status, count in rows})
    return counts


def link_level_counts(store: Store) -> dict[str, int]:
    """Posts per link level (None = checked, not linked)."""
    m = schema.matches
    with store.connect() as conn:
        rows = conn.execute(select(m.c.level, func.count()).group_by(m.c.level)).all()
    return {str(level): int(count) for level, count in rows}


def stage_counts(store: Store, model_version: str | None = None) -> dict[str, int]:
    """Posts per pipeline stage: collected, scored, partisan, linked, suspected, queued."""
    p, s, m, q = schema.posts, schema.scores, schema.matches, schema.queue_items
    with store.connect() as conn:
        collected = int(conn.execute(select(func.count()).select_from(p)).scalar() or 0)
        query = (
            select(s.c.post_pk, s.c.score, s.c.threshold, s.c.label)
            .join(p, and_(p.c.id == s.c.post_pk, p.c.text_hash == s.c.text_hash))
            .order_by(s.c.post_pk, s.c.scored_at.desc(), s.c.id.desc())
        )
        if model_version is not None:
            query = query.where(s.c.model_version == model_version)
        latest: dict[int, Any] = {}
        for row in conn.execute(query):
            latest.setdefault(row.post_pk, row)
        levels = dict(conn.execute(select(m.c.level, func.count()).group_by(m.c.level)).all())
        queued = int(conn.execute(select(func.count()).select_from(q)).scalar() or 0)
    return {
        "collected": collected,
        "scored": len(latest),
        "partisan": sum(1 for row in latest.values() if score_passes(row._mapping)),
        "linked": sum(int(levels.get(level, 0)) for level in REGISTRY_LEVELS),
        "suspected": int(levels.get("self_declared", 0)),
        "queued": queued,
    }
