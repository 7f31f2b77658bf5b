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


DEMO_REGISTRY = Path(__file__).resolve().parent.parent / "config" / "demo" / "asn_registry.csv"


def run_demo(
    config: Config, progress: Progress | None = None, registry: Path | None = None
) -> dict[str, Any]:
    """Reset the demo database, import the demo registry, run once, write the review queue."""
    from pipeline.export import write_review_outputs
    from pipeline.registry import import_registry

    store = reset_demo_database(config)
    try:
        imported = import_registry(store, registry or DEMO_REGISTRY)
        report: RunReport = run_once(config, store, progress=progress)
        outputs = write_review_outputs(store, config.paths.output_dir)
        return {"run": report, "counts": store.counts(), "registry": imported, **outputs}
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
