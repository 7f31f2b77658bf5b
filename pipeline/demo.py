"""`netra demo`: the whole chain on bundled invented data, from an empty database.

The demo deletes its database before each run, so it marks the databases it makes: the first row
of `runs` is a `demo` run, which on finishing records the last run the demo made. Only a missing
file, an empty one (no bytes or no tables), or one so marked with no run after the demo's own is
ever deleted; anything else may be someone's real data and is refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pipeline import schema
from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.progress import Progress
from pipeline.run import RunReport, run_once
from pipeline.store import Store

DEMO_RUN_KIND = "demo"
DEMO_CONFIG = "config/demo.toml"


def is_demo_database(path: Path) -> bool:
    """Whether the SQLite file at `path` holds nothing the demo may not delete."""
    if path.stat().st_size == 0:
        return True
    # Read-only and without Store's pragmas: a file that is refused must be left as it was.
    # Without a write-ahead log the file is the whole database: `immutable` then keeps SQLite
    # from creating -wal/-shm files beside it just to look.
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if pending else "&immutable=1")
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            if not tables:
                return True
            if schema.runs.name not in tables:
                return False
            runs = schema.runs
            query = select(runs.c.id, runs.c.kind, runs.c.counters).order_by(runs.c.id)
            rows = conn.execute(query).all()
    except (SQLAlchemyError, sqlite3.Error, ValueError):
        # Not a SQLite file, or another program's schema: not the demo's.
        return False
    finally:
        engine.dispose()
    if not rows or rows[0].kind != DEMO_RUN_KIND:
        return False
    first, *later = rows
    # A run after the demo's own (`netra run` on the demo database) may have stored real posts.
    counters = first.counters if isinstance(first.counters, dict) else {}
    last_demo_run = counters.get("last_run_id")
    if not isinstance(last_demo_run, int):
        last_demo_run = first.id
    return all(row.id <= last_demo_run for row in later)


def reset_demo_database(config: Config) -> tuple[Store, int]:
    """Delete and recreate the demo SQLite database; returns it and the demo run marking it.

    Refused (UsageError) for other backends and for an existing file the demo did not make.
    """
    url = make_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        raise UsageError("netra demo runs only on a SQLite database (database.url)")
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        if path.exists() and not is_demo_database(path):
            raise UsageError(
                f"netra demo would delete {path} to start afresh, but `netra demo` did not make "
                "it (or it has runs of its own since): refused, nothing was changed. Run the "
                f"demo on its own database: `make demo` or `netra demo --config {DEMO_CONFIG}`, "
                "with no NETRA_DATABASE_URL or --database. A demo database from an older Netra "
                "has no demo mark: delete it yourself (`make clean` removes data/demo.db)."
            )
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
    store = Store(config.database.url)
    try:
        store.upgrade()
        return store, store.start_run(DEMO_RUN_KIND)
    except BaseException:
        store.close()
        raise


DEMO_REGISTRY = Path(__file__).resolve().parent.parent / "config" / "demo" / "asn_registry.csv"


def run_demo(
    config: Config, progress: Progress | None = None, registry: Path | None = None
) -> dict[str, Any]:
    """Reset the demo database, import the demo registry, run once, write the review queue."""
    from pipeline.export import write_review_outputs
    from pipeline.registry import import_registry

    store, demo_run = reset_demo_database(config)
    status = "failed"
    try:
        imported = import_registry(store, registry or DEMO_REGISTRY)
        report: RunReport = run_once(config, store, progress=progress)
        outputs = write_review_outputs(store, config.paths.output_dir)
        status = "ok"
        return {"run": report, "counts": store.counts(), "registry": imported, **outputs}
    finally:
        try:
            # The runs up to here are the demo's own; the next demo may delete them.
            last = store.last_runs(1)
            counters = {"last_run_id": last[0]["id"] if last else demo_run}
            store.finish_run(demo_run, status, counters)
        finally:
            store.close()


def format_demo_summary(summary: dict[str, Any]) -> str:
    """What `make demo` prints."""
    from pipeline.export import format_review_outputs
    from pipeline.run import format_run_report

    registry = summary.get("registry")
    lines = [f"registry: {registry.rows} accounts imported"] if registry else []
    lines.append(format_run_report(summary["run"]))
    if "stages" in summary:
        lines.append(format_review_outputs(summary))
    return "\n".join(lines)
