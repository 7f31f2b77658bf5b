"""`netra demo`: the whole chain on bundled invented data, from an empty database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.progress import Progress
from pipeline.run import RunReport, run_once
from pipeline.store import Store


def reset_demo_database(config: Config) -> Store:
    """Delete the demo SQLite file (only SQLite: a demo must never wipe a real database)."""
    url = make_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        raise UsageError("netra demo runs only on a SQLite database (database.url)")
    if url.database and url.database != ":memory:":
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
    store = Store(config.database.url)
    store.upgrade()
    return store


def run_demo(config: Config, progress: Progress | None = None) -> dict[str, Any]:
    """Reset the demo database, run the pipeline once, and return a summary."""
    store = reset_demo_database(config)
    try:
        report: RunReport = run_once(config, store, progress=progress)
        return {"run": report, "counts": store.counts()}
    finally:
        store.close()


def format_demo_summary(summary: dict[str, Any]) -> str:
    """What `make demo` prints."""
    from pipeline.run import format_run_report

    return format_run_report(summary["run"])
