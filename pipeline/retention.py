"""`netra purge`: keep unlinked, unqueued posts no longer than `retention.days` (UU PDP).

A post is kept while its author is linked to the registry (user_id, handle, profile_url or
name_agency), while it is evidence in the queue, while it is the parent (context) of a linked
post or of evidence (what a like, follow or bare repost was judged on), or while it came in as
a tip. Anything else last seen before the cut-off is deleted with
its scores, versions and link rows; author profiles with no remaining posts go too. A real purge
is recorded in `runs` (the record of processing); a dry run only counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, literal, or_, select

from pipeline import schema
from pipeline.config import Config
from pipeline.linker import REGISTRY_LEVELS
from pipeline.store import Store, utcnow

log = logging.getLogger(__name__)

CHUNK = 500


def _parent_of_a_child_with(table: Any, name: str, *condition: Callable[[Any], Any]) -> Any:
    """EXISTS: the post is the parent of a post that has a row in `table` (meeting `condition`)."""
    p = schema.posts
    child = schema.posts.alias(f"child_{name}")
    row = table.alias(f"child_{name}_row")
    return (
        select(child.c.id)
        .join(row, row.c.post_pk == child.c.id)
        .where(
            child.c.platform == p.c.platform,
            child.c.parent_id == p.c.post_id,
            *(check(row) for check in condition),
        )
        .exists()
    )


def _expired_posts(cutoff: datetime) -> Any:
    p, m, o, e, t = (
        schema.posts,
        schema.matches,
        schema.queue_occurrences,
        schema.evidence,
        schema.tips,
    )
    linked = (
        select(m.c.post_pk).where(m.c.post_pk == p.c.id, m.c.level.in_(REGISTRY_LEVELS)).exists()
    )
    queued = select(o.c.id).where(o.c.post_pk == p.c.id).exists()
    evidenced = select(e.c.id).where(e.c.post_pk == p.c.id).exists()
    tipped = select(t.c.id).where(t.c.post_pk == p.c.id).exists()
    context_of_linked = _parent_of_a_child_with(
        m, "match", lambda row: row.c.level.in_(REGISTRY_LEVELS)
    )
    # The parent of evidence is what a like, a follow or a bare repost was judged on: it stays
    # as long as the evidence does, even after the child's author leaves the registry.
    context_of_evidence = _parent_of_a_child_with(e, "evidence")
    return select(p.c.id).where(
        p.c.last_seen < cutoff,
        ~linked,
        ~queued,
        ~evidenced,
        ~tipped,
        ~context_of_linked,
        ~context_of_evidence,
    )


def _orphan_authors(cutoff: datetime) -> Any:
    a, p = schema.authors, schema.posts
    has_posts = (
        select(p.c.id)
        .where(
            p.c.platform == a.c.platform,
            or_(
                p.c.author_id == a.c.author_key,
                and_(
                    p.c.author_id.is_(None),
                    literal("@") + func.lower(p.c.author_handle) == a.c.author_key,
                ),
            ),
        )
        .exists()
    )
    return select(a.c.id).where(a.c.last_seen < cutoff, ~has_posts)


def _delete_in(conn: Connection, table: Any, column: Any, ids: list[int]) -> int:
    total = 0
    for start in range(0, len(ids), CHUNK):
        total += conn.execute(delete(table).where(column.in_(ids[start : start + CHUNK]))).rowcount
    return total


class _DryRun(Exception):
    """Raised inside the purge transaction to roll a dry run back after counting."""


def purge(
    config: Config, store: Store, *, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Delete (or with `dry_run` only count) what the retention period no longer allows."""
    moment = now or utcnow()
    cutoff = moment - timedelta(days=config.retention.days)
    report: dict[str, Any] = {"cutoff": cutoff, "dry_run": dry_run}
    try:
        # A dry run performs the same deletes and rolls them back, so its counts are exact.
        with store.transaction() as conn:
            post_ids = [int(row[0]) for row in conn.execute(_expired_posts(cutoff))]
            report["posts"] = len(post_ids)
            for name in ("scores", "post_versions", "matches"):
                table = schema.metadata.tables[name]
                report[name] = _delete_in(conn, table, table.c.post_pk, post_ids)
            _delete_in(conn, schema.posts, schema.posts.c.id, post_ids)
            author_ids = [int(row[0]) for row in conn.execute(_orphan_authors(cutoff))]
            report["authors"] = _delete_in(conn, schema.authors, schema.authors.c.id, author_ids)
            if dry_run:
                raise _DryRun
    except _DryRun:
        return report
    counters = {k: v for k, v in report.items() if isinstance(v, int) and k != "dry_run"}
    run_id = store.start_run("purge")
    store.finish_run(run_id, "ok", counters)
    log.info("purge before %s: %s", cutoff.isoformat(), counters)
    return report
