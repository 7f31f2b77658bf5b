"""`netra import`: Post JSON Lines or mapped CSV files into the store, one file atomically."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collectors.file import read_posts_file
from pipeline.progress import Progress
from pipeline.store import Store

log = logging.getLogger(__name__)


@dataclass
class FileImport:
    """What importing one file did."""

    path: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0


@dataclass
class ImportReport:
    """Per-file results of an import."""

    files: list[FileImport] = field(default_factory=list)
    new_keys: list[str] = field(default_factory=list)


def import_files(
    store: Store,
    paths: Sequence[str],
    *,
    columns: Mapping[str, str] | None = None,
    platform: str | None = None,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import each file in its own transaction: a bad line stores nothing from that file."""
    progress = progress or Progress()
    report = ImportReport()
    for path in paths:
        item = FileImport(path="<stdin>" if path == "-" else path)
        skipped: list[str] = []

        def note_skip(
            line: int,
            reason: str,
            _payload: object,
            name: str = item.path,
            out: list[str] = skipped,
        ) -> None:
            out.append(f"{name}:{line}: {reason}")

        posts = (
            post
            for _line, post in read_posts_file(
                path,
                columns=dict(columns) if columns else None,
                platform=platform,
                skip_invalid=skip_invalid,
                on_skip=note_skip,
            )
        )
        progress.start(f"import {item.path}")
        result = store.write_stream(posts, source=f"import|{item.path}", on_batch=progress.advance)
        progress.finish()
        item.inserted, item.updated, item.unchanged = (
            result.inserted,
            result.updated,
            result.unchanged,
        )
        item.skipped = len(skipped)
        for error in skipped[:20]:
            log.warning("skipped invalid line: %s", error)
        report.files.append(item)
        report.new_keys.extend(result.new_keys)
    return report
