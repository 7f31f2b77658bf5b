"""The collect step: configured sources into the store, ad hoc collection, and tips.

`collect_sources` runs every enabled source concurrently (threads, `http.concurrency`), each
target page by page. Every page's posts and that target's cursor are written in one
transaction, so a crash at any point loses nothing and duplicates nothing: the next run resumes
from the last committed cursor and the store dedups by post key. A failing source (or target)
is recorded in the report and the others go on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection

from collectors import COLLECTORS, Collector, HttpPolicy, Page, Target, get_collector
from collectors.base import Reject, UnitLedger
from collectors.tips import file_sha256, make_tip_post
from pipeline.config import Config, HttpConfig, SourceConfig
from pipeline.errors import CollectorError, CredentialMissing, NetraError, UsageError
from pipeline.leases import LeaseLost
from pipeline.progress import Progress
from pipeline.records import Post
from pipeline.store import Store

log = logging.getLogger(__name__)

MAX_SAMPLES_PER_SOURCE = 5


@dataclass
class SourceResult:
    """What collecting one source did."""

    name: str
    platform: str
    status: str = "ok"
    pages: int = 0
    posts: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)


@dataclass
class CollectReport:
    """Per-source outcome of a collect step and the keys of newly stored posts."""

    sources: list[SourceResult] = field(default_factory=list)
    new_keys: list[str] = field(default_factory=list)
    requests: int = 0

    def counters(self) -> dict[str, int]:
        """Totals for the run record."""
        totals = {
            "sources": len(self.sources),
            "sources_failed": sum(1 for item in self.sources if item.status == "failed"),
            "pages": 0,
            "collected": 0,
            "inserted": 0,
            "updated": 0,
            "unchanged": 0,
            "skipped_items": 0,
            "requests": self.requests,
        }
        for item in self.sources:
            totals["pages"] += item.pages
            totals["collected"] += item.posts
            totals["inserted"] += item.inserted
            totals["updated"] += item.updated
            totals["unchanged"] += item.unchanged
            totals["skipped_items"] += item.skipped
        return totals

    def error_lines(self) -> list[str]:
        """One line per error, prefixed with its source."""
        return [f"{item.name}: {error}" for item in self.sources for error in item.errors]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per source (name, platform, status, counts, first error)."""
        return [
            {
                "name": item.name,
                "platform": item.platform,
                "status": item.status,
                "pages": item.pages,
                "posts": item.posts,
                "inserted": item.inserted,
                "updated": item.updated,
                "unchanged": item.unchanged,
                "skipped": item.skipped,
                "error": item.errors[0] if item.errors else None,
            }
            for item in self.sources
        ]


def build_policy(
    http_config: HttpConfig,
    client: httpx.Client,
    sources: Iterable[SourceConfig] = (),
    **overrides: Any,
) -> HttpPolicy:
    """The run's HTTP policy from the `[http]` config and per-source rate limits."""
    settings: dict[str, Any] = {
        "user_agent": http_config.user_agent,
        "timeout_seconds": http_config.timeout_seconds,
        "max_retries": http_config.max_retries,
        "backoff_seconds": http_config.backoff_seconds,
        "obey_robots": http_config.respect_robots,
        **overrides,
    }
    policy = HttpPolicy(client, **settings)
    # Several sources may share a host: the strictest configured limit wins.
    limits: dict[str, float] = {}
    for source in sources:
        if not source.rate_limit_per_second or source.platform not in COLLECTORS:
            continue
        root = source.base_url or COLLECTORS[source.platform].default_base_url
        host = (
            urlsplit(root if root and "://" in root else f"https://{root}").hostname
            if root
            else None
        )
        if host:
            limits[host] = min(
                limits.get(host, source.rate_limit_per_second), source.rate_limit_per_second
            )
    for host, per_second in limits.items():
        policy.set_rate_limit(host, per_second)
    return policy


def make_collector(source: SourceConfig, http: HttpPolicy, environ: Mapping[str, str]) -> Collector:
    """Instantiate the collector a source names."""
    cls = get_collector(source.platform)
    options = dict(source.options)
    if source.rate_limit_per_second:
        options.setdefault("rate_limit_per_second", source.rate_limit_per_second)
    return cls(
        http,
        base_url=source.base_url,
        credentials=source.credentials,
        environ=environ,
        options=options,
        page_budget=source.page_budget,
    )


# Source name -> a check run inside each page's write transaction (e.g. "this run still holds
# the source's lease"); it raises to refuse the page.
WriteGuard = Callable[[str], Callable[[Connection], None]]


class _Shared:
    """What concurrently running sources share: the store (one writer at a time) and progress."""

    def __init__(
        self,
        store: Store,
        progress: Progress,
        debug_dir: Path | None,
        stop: threading.Event | None = None,
        write_guard: WriteGuard | None = None,
    ) -> None:
        self.store = store
        self.progress = progress
        self.debug_dir = debug_dir
        self.lock = threading.Lock()
        self.stop = stop or threading.Event()
        self.new_keys: list[str] = []
        self.write_guard = write_guard


def collect_sources(
    config: Config,
    store: Store,
    client: httpx.Client,
    *,
    environ: Mapping[str, str] = os.environ,
    progress: Progress | None = None,
    policy: HttpPolicy | None = None,
    debug_dir: Path | None = None,
    stop: threading.Event | None = None,
    write_guard: WriteGuard | None = None,
) -> CollectReport:
    """Collect every enabled source into the store, concurrently; failures are reported.

    Setting `stop` (SIGTERM in the scheduler) lets each running source finish and commit its
    current page, then return; sources not started yet are skipped. Cursors stay consistent.
    `write_guard(source)` is checked in every page's write transaction; when it raises
    LeaseLost the source stops there (its pages so far are stored with their cursors).
    """
    progress = progress or Progress()
    sources = [source for source in config.sources if source.enabled]
    http = policy or build_policy(config.http, client, sources)
    # Daily quotas (YouTube) are per day, not per run: start from what earlier runs spent.
    http.units.restore(_saved_units(store))
    shared = _Shared(store, progress, debug_dir or config.paths.debug_dir, stop, write_guard)
    report = CollectReport()
    progress.start("collect")
    workers = max(1, min(config.http.concurrency, len(sources) or 1))
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect")
    try:
        futures = [
            executor.submit(_collect_source, source, http, environ, shared) for source in sources
        ]
        report.sources = [future.result() for future in futures]
    except BaseException:
        # Ctrl-C: let running sources stop after their current page (already committed).
        shared.stop.set()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        progress.finish()
    _save_units(store, http.units)
    report.new_keys = shared.new_keys
    report.requests = sum(http.requests_by_host.values())
    return report


# Units spent against daily quotas, kept as a checkpoint row of its own (hashed key buckets).
UNITS_CHECKPOINT = "netra|quota-units"
UNITS_KEPT_DAYS = 3


def _saved_units(store: Store) -> dict[str, Any]:
    try:
        saved = json.loads(store.get_cursor(UNITS_CHECKPOINT) or "{}")
    except json.JSONDecodeError:
        log.warning("saved quota units are unreadable; counting from zero")
        return {}
    return saved if isinstance(saved, dict) else {}


def _save_units(store: Store, units: UnitLedger) -> None:
    """Save the units spent (merged with any saved by another run meanwhile), newest days only."""
    units.restore(_saved_units(store))  # the larger count wins
    spent = units.snapshot()
    if not spent:
        return
    days = sorted({key.rpartition("|")[2] for key in spent}, reverse=True)[:UNITS_KEPT_DAYS]
    kept = {key: count for key, count in spent.items() if key.rpartition("|")[2] in days}
    store.save_cursor(UNITS_CHECKPOINT, json.dumps(kept, sort_keys=True))


def _collect_source(
    source: SourceConfig, http: HttpPolicy, environ: Mapping[str, str], shared: _Shared
) -> SourceResult:
    result = SourceResult(source.name, source.platform)
    if shared.stop.is_set():
        result.status = "skipped"  # not started: the run was asked to stop
        return result
    try:
        collector = make_collector(source, http, environ)
        targets = [Target.parse(text) for text in source.targets]
        for target in targets:
            collector.check_target(target)
    except NetraError as exc:
        result.status = "failed"
        result.errors.append(http.redact(str(exc)))
        log.error("source %s: %s", source.name, result.errors[-1])
        return result
    failed_targets = 0
    guard = shared.write_guard(source.name) if shared.write_guard else None
    for text, target in zip(source.targets, targets, strict=True):
        if shared.stop.is_set():
            break
        store_name = f"{source.name}|{text}"
        try:
            with shared.lock:
                cursor = shared.store.get_cursor(store_name)
            for page in collector.collect(target, cursor, limit=source.limit):
                _commit(page, store_name, result, shared, guard)
                if shared.stop.is_set():
                    break
        except (LeaseLost, CredentialMissing) as exc:
            # Every other target would fail alike (another process now runs this source, or
            # the same variable is missing): stop the source here. Before the CollectorError
            # clause: LeaseLost is one.
            result.errors.append(str(exc))
            failed_targets = len(targets)
            break
        except (CollectorError, UsageError) as exc:
            failed_targets += 1
            result.errors.append(f"{target}: {http.redact(str(exc))}")
        except Exception as exc:  # a bug in one collector must not stop the other sources
            failed_targets += 1
            log.exception("source %s, target %s: unexpected error", source.name, target)
            result.errors.append(f"{target}: {type(exc).__name__}: {http.redact(str(exc))}")
    for error in result.errors:
        log.error("source %s: %s", source.name, error)
    if failed_targets and failed_targets >= len(targets):
        result.status = "failed"
    elif result.errors:
        result.status = "partial"
    return result


def _commit(
    page: Page,
    store_name: str,
    result: SourceResult,
    shared: _Shared,
    guard: Callable[[Connection], None] | None = None,
) -> None:
    with shared.lock:
        written = shared.store.write_batch(
            page.posts, source=store_name, cursor=page.cursor, guard=guard
        )
        shared.new_keys.extend(written.new_keys)
        shared.progress.advance(len(page.posts))
    result.pages += 1
    result.posts += len(page.posts)
    result.inserted += written.inserted
    result.updated += written.updated
    result.unchanged += written.unchanged
    result.skipped += page.skipped
    for reject in page.rejects:
        if len(result.samples) >= MAX_SAMPLES_PER_SOURCE:
            break
        saved = _save_sample(shared.debug_dir, store_name, reject)
        if saved:
            result.samples.append(saved)


def _save_sample(debug_dir: Path | None, store_name: str, reject: Reject) -> str | None:
    """Write a skipped item's payload for debugging; returns the file name."""
    if debug_dir is None:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", store_name)[:80]
    path = Path(debug_dir) / f"{safe}-{stamp}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"source": store_name, "reason": reject.reason, "payload": reject.payload},
                ensure_ascii=False,
                indent=2,
                default=str,
            ),
            encoding="utf-8",
        )
    except OSError as exc:
        log.warning("could not save a sample of a skipped item to %s: %s", path, exc)
        return None
    log.warning("%s: skipped item sample saved to %s", store_name, path)
    return str(path)


def collect_adhoc(
    platform: str,
    targets: Sequence[str],
    *,
    base_url: str | None = None,
    limit: int | None = None,
    client: httpx.Client,
    environ: Mapping[str, str] = os.environ,
    http_config: HttpConfig | None = None,
    options: Mapping[str, Any] | None = None,
    policy: HttpPolicy | None = None,
) -> Iterator[Post]:
    """Collect targets without a database (`netra collect`), newest first, without duplicates.

    Targets are validated before any request, so a typo fails fast with the valid kinds.
    """
    cls = get_collector(platform)
    parsed = [Target.parse(text) for text in targets]
    for target in parsed:
        cls.check_target(target)
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    http = policy or build_policy(http_config or HttpConfig(), client)
    collector = cls(http, base_url=base_url, environ=environ, options=options)
    return _adhoc_posts(collector, parsed, limit)


def _adhoc_posts(
    collector: Collector, targets: Sequence[Target], limit: int | None
) -> Iterator[Post]:
    platform = collector.name
    seen: set[str] = set()
    for target in targets:
        count = 0
        for page in collector.collect(target, None, limit=limit):
            for post in page.posts:
                if post.key in seen:
                    continue
                seen.add(post.key)
                count += 1
                yield post
                # A collector's limit is soft (a page is kept whole so its checkpoint holds);
                # ad hoc mode saves no checkpoint, so it can stop at exactly N posts.
                if limit is not None and count >= limit:
                    break
            if page.skipped:
                log.warning("%s %s: %d malformed items skipped", platform, target, page.skipped)
            if limit is not None and count >= limit:
                break
        log.info("%s %s: %d posts", platform, target, count)


def add_tip(
    store: Store,
    url: str,
    text: str,
    *,
    author: str | None = None,
    screenshot: str | None = None,
    reporter: str | None = None,
    platform: str | None = None,
) -> tuple[int, Post]:
    """Record a tip: the post goes with the others, the reporter into a separate table."""
    digest = None
    screenshot_path = None
    if screenshot:
        path = Path(screenshot).expanduser()
        if not path.is_file():
            raise UsageError(f"screenshot {screenshot} does not exist")
        digest = file_sha256(path)
        screenshot_path = str(path.resolve())
    post = make_tip_post(url, text, author=author, platform=platform, screenshot_sha256=digest)
    tip_id = store.add_tip(
        post,
        reporter=reporter.strip() if reporter and reporter.strip() else None,
        screenshot=screenshot_path,
        screenshot_sha256=digest,
    )
    return tip_id, post


__all__ = [
    "CollectReport",
    "SourceResult",
    "add_tip",
    "build_policy",
    "collect_adhoc",
    "collect_sources",
    "make_collector",
]
