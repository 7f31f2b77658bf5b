"""What `netra status` reports: the model, the database, row counts, last runs and errors."""

from __future__ import annotations

from typing import Any

from pipeline.config import Config
from pipeline.errors import NetraError, StoreError
from pipeline.records import format_datetime
from pipeline.store import Store


def model_status(config: Config) -> dict[str, Any]:
    """The model `netra run` would score with: version, thresholds, and whether it verifies."""
    from classifiers.artifacts import verify_model_dir
    from pipeline.classify import resolve_model_dir

    operating = config.classifier.threshold
    try:
        directory = resolve_model_dir(config)
        card = verify_model_dir(directory)  # every file against its manifest hash
    except NetraError as exc:
        return {"ok": False, "problem": str(exc), "operating_threshold": operating}
    stored = card.get("threshold")
    return {
        "ok": True,
        "version": card.get("version"),
        "directory": str(directory),
        "stored_threshold": stored,
        "operating_threshold": operating if operating is not None else stored,
        "threshold_from": "classifier.threshold" if operating is not None else "model",
    }


def collect_status(config: Config, run_limit: int = 10) -> dict[str, Any]:
    """Gather the status report as plain data (printable or JSON)."""
    store = Store(config.database.url, echo=config.database.echo)
    report: dict[str, Any] = {
        "model": model_status(config),
        "database": {"url": store.display_url, "ok": False},
        "counts": {},
        "runs": [],
        "sources": [s.name for s in config.sources],
        "source_status": [],
    }
    try:
        current, head = store.current_revision(), store.head_revision()
        report["database"].update(schema=current, expected_schema=head)
        if current is None:
            report["database"]["problem"] = "not initialised: run `netra init`"
            return report
        if current != head:
            report["database"]["problem"] = "schema out of date: run `netra init`"
            return report
        report["database"]["ok"] = True
        report["counts"] = store.counts()
        from pipeline.scheduler import source_status

        report["source_status"] = source_status(config, store)
        for run in store.last_runs(run_limit):
            report["runs"].append(
                {
                    "id": run["id"],
                    "kind": run["kind"],
                    "source": run["source"],
                    "status": run["status"],
                    "started_at": format_datetime(run["started_at"]),
                    "finished_at": format_datetime(run["finished_at"])
                    if run["finished_at"]
                    else None,
                    "counters": run["counters"] or {},
                    "errors": run["errors"] or [],
                }
            )
    except StoreError as exc:
        report["database"]["problem"] = str(exc)
    finally:
        store.close()
    return report


def format_status(report: dict[str, Any]) -> str:
    """Human-readable form of `collect_status`."""
    model = report.get("model", {})
    if model.get("ok"):
        where = (
            "stored with the model"
            if model["threshold_from"] == "model"
            else f"from classifier.threshold; the model stores {model['stored_threshold']}"
        )
        lines = [
            f"model: {model['version']} (verified), threshold {model['operating_threshold']} "
            f"({where})"
        ]
    else:
        lines = [f"model: problem: {model.get('problem', 'unknown')}"]
    db = report["database"]
    lines.append(f"database: {db['url']}")
    if not db["ok"]:
        lines.append(f"  problem: {db.get('problem', 'unknown')}")
        return "\n".join(lines)
    lines.append(f"  schema: {db['schema']}")
    lines.append("counts:")
    lines.extend(f"  {name:<16} {count}" for name, count in sorted(report["counts"].items()))
    lines.append(f"configured sources: {', '.join(report['sources']) or 'none'}")
    from pipeline.scheduler import format_source_status

    lines.extend(format_source_status(report.get("source_status", [])))
    lines.append("last runs:")
    if not report["runs"]:
        lines.append("  none yet")
    for run in report["runs"]:
        counters = ", ".join(f"{k}={v}" for k, v in run["counters"].items())
        where = f" [{run['source']}]" if run["source"] else ""
        lines.append(
            f"  #{run['id']} {run['kind']}{where} {run['status']} at {run['started_at']}"
            + (f" ({counters})" if counters else "")
        )
        lines.extend(f"    error: {error}" for error in run["errors"][:5])
    return "\n".join(lines)
