"""SQLAlchemy Core table definitions: the current shape of the store.

Migrations in `pipeline/migrations/versions/` create and change these tables; this module is
what queries are written against. Datetimes are stored as naive UTC and returned aware; JSON is
stored as text so SQLite and PostgreSQL behave the same (and NUL escapes survive).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import DateTime, TypeDecorator

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def dump_json(value: Any) -> str:
    """The JSON text form stored for JSON columns (stable keys, UTF-8 kept)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class JSONText(TypeDecorator[Any]):
    """JSON serialised to text (stable keys, UTF-8 kept, NUL escaped by json itself)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return dump_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(32), nullable=False),
    Column("post_id", String(255), nullable=False),
    Column("url", Text),
    Column("author_id", String(255)),
    Column("author_handle", String(255)),
    Column("author_name", Text),
    Column("author_bio", Text),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("parent_id", String(255)),
    Column("kind", String(16), nullable=False),
    Column("lang", String(16)),
    Column("metrics", JSONText),
    Column("raw", JSONText),
    Column("source", String(512)),
    Column("version", Integer, nullable=False, default=1),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    UniqueConstraint("platform", "post_id", name="uq_posts_platform_post_id"),
    Index("ix_posts_author", "platform", "author_id"),
    Index("ix_posts_last_seen", "last_seen"),
    Index("ix_posts_parent", "platform", "parent_id"),
)

# Earlier captured versions of a post whose text changed: they may be evidence.
post_versions = Table(
    "post_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_pk", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("url", Text),
    Column("author_handle", String(255)),
    Column("author_name", Text),
    Column("author_bio", Text),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("metrics", JSONText),
    Column("raw", JSONText),
    Column("captured_at", UTCDateTime, nullable=False),
    Column("superseded_at", UTCDateTime, nullable=False),
    UniqueConstraint("post_pk", "version", name="uq_post_versions_post_version"),
)

authors = Table(
    "authors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(32), nullable=False),
    Column("author_key", String(255), nullable=False),
    Column("author_id", String(255)),
    Column("handle", String(255)),
    Column("name", Text),
    Column("bio", Text),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    UniqueConstraint("platform", "author_key", name="uq_authors_platform_key"),
)

sources = Table(
    "sources",
    metadata,
    Column("name", String(512), primary_key=True),
    Column("cursor", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("source", String(512)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String(16), nullable=False),
    Column("counters", JSONText),
    Column("errors", JSONText),
    Index("ix_runs_source_started", "source", "started_at"),
)

scores = Table(
    "scores",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_pk", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("label", String(16), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("explanation", JSONText),
    Column("contestants", JSONText),
    Column("flags", JSONText),
    Column("scored_at", UTCDateTime, nullable=False),
    UniqueConstraint("post_pk", "model_version", "text_hash", name="uq_scores_post_model_text"),
    Index("ix_scores_model", "model_version"),
)

tips = Table(
    "tips",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_pk", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("screenshot", Text),
    Column("screenshot_sha256", String(64)),
    Column("received_at", UTCDateTime, nullable=False),
)

# Tipsters' identities live apart from the tip and are never exported by default.
tip_reporters = Table(
    "tip_reporters",
    metadata,
    Column("tip_id", Integer, ForeignKey("tips.id", ondelete="CASCADE"), primary_key=True),
    Column("reporter", Text, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(512), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# -- registry, links, evidence, review queue (migration 0002) -----------------------------

# One row per registry file import: its id/revision tells the linker which posts to re-link.
registry_imports = Table(
    "registry_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_file", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("deactivated", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
)

# Known ASN accounts, one row per account; rows missing from a later import turn inactive.
registry_accounts = Table(
    "registry_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("nip", String(18)),
    Column("nama", Text, nullable=False),
    Column("instansi", Text, nullable=False),
    Column("unit_kerja", Text),
    Column("jabatan", Text),
    Column("wilayah", Text),
    Column("platform", String(32), nullable=False),
    Column("handle", String(255)),
    Column("user_id", String(255)),
    Column("profile_url", Text),
    Column("url_handle", String(255)),
    Column("url_user_id", String(255)),
    Column("account_key", String(300), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("source_line", Integer),
    Column("last_import_id", Integer, ForeignKey("registry_imports.id")),
    Column("first_imported_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("platform", "account_key", name="uq_registry_platform_account"),
    Index("ix_registry_nip", "nip"),
    Index("ix_registry_user_id", "platform", "user_id"),
    Index("ix_registry_handle", "platform", "handle"),
)

# The current link of each post's author (level NULL = checked, no link).
matches = Table(
    "matches",
    metadata,
    Column("post_pk", Integer, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("post_version", Integer, nullable=False),
    Column("registry_revision", Integer, nullable=False),
    Column("level", String(16)),
    Column("confidence", Float),
    Column("account_id", Integer, ForeignKey("registry_accounts.id")),
    Column("evidence", JSONText),
    Column("linked_at", UTCDateTime, nullable=False),
    Index("ix_matches_level", "level"),
    Index("ix_matches_account", "account_id"),
)

# Immutable snapshots of a queued post version (append-only, enforced by triggers).
evidence = Table(
    "evidence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_pk", Integer, ForeignKey("posts.id"), nullable=False),
    Column("post_key", String(300), nullable=False),
    Column("post_version", Integer, nullable=False),
    Column("platform", String(32), nullable=False),
    Column("post_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("permalink", Text),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("captured_at", UTCDateTime, nullable=False),
    Column("author", JSONText),
    Column("metrics", JSONText),
    Column("raw", JSONText),
    Column("model_version", String(64)),
    Column("score", Float),
    Column("threshold", Float),
    Column("explanation", JSONText),
    Column("contestants", JSONText),
    Column("match", JSONText),
    Column("context", JSONText),
    Column("content_sha256", String(64), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("post_pk", "post_version", name="uq_evidence_post_version"),
)

queue_items = Table(
    "queue_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_key", String(400), nullable=False),
    Column("account_id", Integer, ForeignKey("registry_accounts.id")),
    Column("platform", String(32), nullable=False),
    Column("author_key", String(255), nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("category", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("link_level", String(16), nullable=False),
    Column("link_confidence", Float, nullable=False),
    Column("reach", Integer, nullable=False),
    Column("first_post_pk", Integer, ForeignKey("posts.id"), nullable=False),
    Column("first_evidence_id", Integer, ForeignKey("evidence.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("model_version", String(64)),  # whose score `score` is (migration 0003)
    UniqueConstraint("group_key", name="uq_queue_items_group"),
    Index("ix_queue_status_priority", "status", "priority"),
)

queue_occurrences = Table(
    "queue_occurrences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("queue_items.id"), nullable=False),
    Column("evidence_id", Integer, ForeignKey("evidence.id"), nullable=False),
    Column("post_pk", Integer, ForeignKey("posts.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    UniqueConstraint("evidence_id", name="uq_queue_occurrences_evidence"),
    Index("ix_queue_occurrences_item", "item_id"),
    Index("ix_queue_occurrences_post", "post_pk"),
)

# The audit log of review decisions: append-only (triggers refuse UPDATE and DELETE).
review_decisions = Table(
    "review_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("queue_items.id"), nullable=False),
    Column("reviewer", Text, nullable=False),
    Column("from_status", String(16), nullable=False),
    Column("to_status", String(16), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("category", String(32)),
    Column("reason", String(32)),
    Column("note", Text),
    Column("content_label", String(16)),
    Index("ix_review_decisions_item", "item_id"),
)

# -- content labels for active learning (migration 0003) -----------------------------------

# Reviewers' labels of posts picked by `netra queue to-label`; append-only (triggers), the
# latest label of a post wins. Only the judged text is kept, no author fields.
content_labels = Table(
    "content_labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_key", String(300), nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("label", String(16), nullable=False),
    Column("reviewer", Text, nullable=False),
    Column("labelled_at", UTCDateTime, nullable=False),
    Column("model_version", String(64)),
    Column("score", Float),
    Index("ix_content_labels_post", "post_key"),
)
