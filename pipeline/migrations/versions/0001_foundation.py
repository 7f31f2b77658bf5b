"""Foundation: posts and their versions, authors, sources, runs, scores, tips, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("post_id", sa.String(255), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("author_id", sa.String(255)),
        sa.Column("author_handle", sa.String(255)),
        sa.Column("author_name", sa.Text),
        sa.Column("author_bio", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("parent_id", sa.String(255)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lang", sa.String(16)),
        sa.Column("metrics", sa.Text),
        sa.Column("raw", sa.Text),
        sa.Column("source", sa.String(512)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.UniqueConstraint("platform", "post_id", name="uq_posts_platform_post_id"),
    )
    op.create_index("ix_posts_author", "posts", ["platform", "author_id"])
    op.create_index("ix_posts_last_seen", "posts", ["last_seen"])
    op.create_index("ix_posts_parent", "posts", ["platform", "parent_id"])
    op.create_table(
        "post_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "post_pk", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("author_handle", sa.String(255)),
        sa.Column("author_name", sa.Text),
        sa.Column("author_bio", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("metrics", sa.Text),
        sa.Column("raw", sa.Text),
        sa.Column("captured_at", sa.DateTime, nullable=False),
        sa.Column("superseded_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("post_pk", "version", name="uq_post_versions_post_version"),
    )
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("author_key", sa.String(255), nullable=False),
        sa.Column("author_id", sa.String(255)),
        sa.Column("handle", sa.String(255)),
        sa.Column("name", sa.Text),
        sa.Column("bio", sa.Text),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.UniqueConstraint("platform", "author_key", name="uq_authors_platform_key"),
    )
    op.create_table(
        "sources",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(512)),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counters", sa.Text),
        sa.Column("errors", sa.Text),
    )
    op.create_index("ix_runs_source_started", "runs", ["source", "started_at"])
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "post_pk", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("explanation", sa.Text),
        sa.Column("contestants", sa.Text),
        sa.Column("flags", sa.Text),
        sa.Column("scored_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint(
            "post_pk", "model_version", "text_hash", name="uq_scores_post_model_text"
        ),
    )
    op.create_index("ix_scores_model", "scores", ["model_version"])
    op.create_table(
        "tips",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "post_pk", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("screenshot", sa.Text),
        sa.Column("screenshot_sha256", sa.String(64)),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "tip_reporters",
        sa.Column(
            "tip_id",
            sa.Integer,
            sa.ForeignKey("tips.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("reporter", sa.Text, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "leases",
        "tip_reporters",
        "tips",
        "scores",
        "runs",
        "sources",
        "authors",
        "post_versions",
        "posts",
    ):
        op.drop_table(table)
