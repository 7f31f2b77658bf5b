"""Registry, links, evidence, review queue and the append-only decision log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

`evidence` and `review_decisions` refuse UPDATE and DELETE at the database level: evidence must
stay exactly as captured, and the audit log is append-only, whatever code touches the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES: tuple[str, ...] = ("evidence", "review_decisions")


def upgrade() -> None:
    op.create_table(
        "registry_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("inserted", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("deactivated", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_table(
        "registry_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("nip", sa.String(18)),
        sa.Column("nama", sa.Text, nullable=False),
        sa.Column("instansi", sa.Text, nullable=False),
        sa.Column("unit_kerja", sa.Text),
        sa.Column("jabatan", sa.Text),
        sa.Column("wilayah", sa.Text),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("handle", sa.String(255)),
        sa.Column("user_id", sa.String(255)),
        sa.Column("profile_url", sa.Text),
        sa.Column("url_handle", sa.String(255)),
        sa.Column("url_user_id", sa.String(255)),
        sa.Column("account_key", sa.String(300), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("source_line", sa.Integer),
        sa.Column("last_import_id", sa.Integer, sa.ForeignKey("registry_imports.id")),
        sa.Column("first_imported_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("platform", "account_key", name="uq_registry_platform_account"),
    )
    op.create_index("ix_registry_nip", "registry_accounts", ["nip"])
    op.create_index("ix_registry_user_id", "registry_accounts", ["platform", "user_id"])
    op.create_index("ix_registry_handle", "registry_accounts", ["platform", "handle"])
    op.create_table(
        "matches",
        sa.Column(
            "post_pk",
            sa.Integer,
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("post_version", sa.Integer, nullable=False),
        sa.Column("registry_revision", sa.Integer, nullable=False),
        sa.Column("level", sa.String(16)),
        sa.Column("confidence", sa.Float),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("registry_accounts.id")),
        sa.Column("evidence", sa.Text),
        sa.Column("linked_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_matches_level", "matches", ["level"])
    op.create_index("ix_matches_account", "matches", ["account_id"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("post_pk", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("post_key", sa.String(300), nullable=False),
        sa.Column("post_version", sa.Integer, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("post_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("permalink", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("captured_at", sa.DateTime, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("metrics", sa.Text),
        sa.Column("raw", sa.Text),
        sa.Column("model_version", sa.String(64)),
        sa.Column("score", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("explanation", sa.Text),
        sa.Column("contestants", sa.Text),
        sa.Column("match", sa.Text),
        sa.Column("context", sa.Text),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("post_pk", "post_version", name="uq_evidence_post_version"),
    )
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("group_key", sa.String(400), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("registry_accounts.id")),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("author_key", sa.String(255), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("link_level", sa.String(16), nullable=False),
        sa.Column("link_confidence", sa.Float, nullable=False),
        sa.Column("reach", sa.Integer, nullable=False),
        sa.Column("first_post_pk", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("first_evidence_id", sa.Integer, sa.ForeignKey("evidence.id"), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("group_key", name="uq_queue_items_group"),
    )
    op.create_index("ix_queue_status_priority", "queue_items", ["status", "priority"])
    op.create_table(
        "queue_occurrences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False),
        sa.Column("evidence_id", sa.Integer, sa.ForeignKey("evidence.id"), nullable=False),
        sa.Column("post_pk", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("evidence_id", name="uq_queue_occurrences_evidence"),
    )
    op.create_index("ix_queue_occurrences_item", "queue_occurrences", ["item_id"])
    op.create_index("ix_queue_occurrences_post", "queue_occurrences", ["post_pk"])
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("decided_at", sa.DateTime, nullable=False),
        sa.Column("category", sa.String(32)),
        sa.Column("reason", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.Column("content_label", sa.String(16)),
    )
    op.create_index("ix_review_decisions_item", "review_decisions", ["item_id"])
    _create_append_only_guards()


def _create_append_only_guards() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION netra_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION netra_append_only()"
            )


def downgrade() -> None:
    for table in (
        "review_decisions",
        "queue_occurrences",
        "queue_items",
        "evidence",
        "matches",
        "registry_accounts",
        "registry_imports",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS netra_append_only()")
