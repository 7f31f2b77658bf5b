"""Content labels for active learning; the model version behind each queue item's score.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

`content_labels` holds reviewers' labels of posts picked by `netra queue to-label` (posts
that need not be queue items). It is append-only like the decision log: a later label of the
same post supersedes an earlier one when training, and nothing is ever rewritten. It keeps the
judged text and no author fields, so training data outlives the post's retention period
without keeping who wrote it.

`queue_items.model_version` names the model whose score `queue_items.score` is; it is filled
from the item's first evidence for existing rows and changes when pending items are re-scored
after a model promotion.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("post_key", sa.String(300), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("labelled_at", sa.DateTime, nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("score", sa.Float),
    )
    op.create_index("ix_content_labels_post", "content_labels", ["post_key"])
    with op.batch_alter_table("queue_items") as batch:
        batch.add_column(sa.Column("model_version", sa.String(64)))
    op.execute(
        "UPDATE queue_items SET model_version = (SELECT evidence.model_version FROM evidence"
        " WHERE evidence.id = queue_items.first_evidence_id)"
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER content_labels_no_{action.lower()} BEFORE {action} ON "
                "content_labels BEGIN SELECT RAISE(ABORT, 'content_labels is append-only'); END"
            )
    elif dialect == "postgresql":
        # netra_append_only() was created by migration 0002.
        op.execute(
            "CREATE TRIGGER content_labels_append_only BEFORE UPDATE OR DELETE ON content_labels "
            "FOR EACH ROW EXECUTE FUNCTION netra_append_only()"
        )


def downgrade() -> None:
    op.drop_table("content_labels")
    with op.batch_alter_table("queue_items") as batch:
        batch.drop_column("model_version")
