"""One monitoring run: collect → score → link → enqueue, recorded in the `runs` table.

Each stage commits its own work in batches, so a crash in a later stage never loses what an
earlier one stored, and the next run picks up where this one stopped (cursors, unscored posts,
unlinked posts).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeline.config import Config
from pipeline.errors import NetraError
from pipeline.leases import LeaseKeeper, new_holder, source_lease
from pipeline.progress import Progress
from pipeline.store import Store

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """Outcome of one run: status, counters per stage and errors per source."""

    run_id: int
    status: str = "running"
    counters: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)


def make_http_client(config: Config) -> httpx.Client:
    """The one HTTP client a run shares across collectors (the policy adds retries/limits)."""
    return httpx.Client(
        timeout=httpx.Timeout(config.http.timeout_seconds),
        headers={"User-Agent": config.http.user_agent},
        follow_redirects=True,
        limits=httpx.Limits(max_connections=max(10, config.http.concurrency * 2)),
    )


def _select_sources(config: Config, names: Sequence[str] | None) -> Config:
    if not names:
        return config
    chosen = tuple(config.source(name) for name in names)
    return dataclasses.replace(config, sources=chosen)


def run_once(
    config: Config,
    store: Store,
    *,
    sources: Sequence[str] | None = None,
    client: httpx.Client | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    score: bool = True,
    link: bool = True,
    stop: threading.Event | None = None,
    lease_holder: str | None = None,
) -> RunReport:
    """Run the whole pipeline once over the configured (or named) sources.

    `stop` asks the run to finish its current batch, keep the cursor and return early
    (SIGTERM/SIGINT in the scheduler). A run over one source is recorded under its name.
    Each source is leased (`source:<name>`) for the run, so a scheduler and a manual run never
    collect the same source at once: a source another holder is running is skipped and
    reported; when every selected source is busy the run is recorded as `skipped`. A source
    whose lease is lost mid-run (it lapsed and another holder took it) stops at the next page
    boundary and is reported as an error of that source.
    """
    from pipeline.collect import collect_sources

    progress = progress or Progress()
    selected = _select_sources(config, sources)
    # A run over exactly one source is that source's run (`netra status` shows it per source).
    run_source = selected.sources[0].name if len(selected.sources) == 1 else None
    report = RunReport(run_id=store.start_run("run", run_source))
    leases = LeaseKeeper(store, lease_holder or new_holder("run"), config.schedule.lease_seconds)
    own_client = client is None
    http = client or make_http_client(config)
    try:
        selected, busy = _lease_sources(leases, selected)
        if busy and not selected.sources:
            report.sources = busy
            report.status = "skipped"
            return report
        collected = collect_sources(
            selected,
            store,
            http,
            environ=os.environ if environ is None else environ,
            progress=progress,
            stop=stop,
            # a page commits only while this run still holds its source's lease
            write_guard=lambda name: leases.guard(source_lease(name)),
        )
        report.counters.update(collected.counters())
        report.errors.extend(collected.error_lines())
        report.sources = collected.summary() + busy
        # Asked to stop: what was collected is committed; the next run scores and links it.
        stopping = stop is not None and stop.is_set()
        if stopping:
            score = link = False
        if (score or link) and not await_stage_lease(leases, stop, config.schedule.lease_seconds):
            # Another run is still scoring and linking; what it misses, the next run does.
            log.warning("score and link deferred: another run held them too long")
            report.counters["score_link_deferred"] = 1
            score = link = False
        if score:
            report.counters.update(score_stage(config, store, progress))
        if link:
            report.counters.update(link_stage(config, store))
        failed_sources = sum(1 for item in report.sources if item.get("status") == "failed")
        if failed_sources and failed_sources == len(report.sources):
            report.status = "failed"
        elif report.errors:
            report.status = "partial"
        else:
            report.status = "ok"
    except NetraError as exc:
        report.status = "failed"
        report.errors.append(str(exc))
        raise
    except BaseException as exc:  # record interrupted/crashed runs before re-raising
        report.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        report.errors.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        leases.release()
        if own_client:
            http.close()
        store.finish_run(report.run_id, report.status, report.counters, report.errors)
    return report


STAGE_LEASE = "stage:score-link"


def await_stage_lease(
    leases: LeaseKeeper,
    stop: threading.Event | None,
    patience: float,
    wait: Callable[[float], bool] | None = None,
) -> bool:
    """Wait until no other run scores and links, then hold that stage; False if it never frees.

    Score and link read a batch, then write it: two runs doing it at once (two sources of the
    scheduler, or the scheduler and a manual run) would collide on the same posts.
    """
    wait = wait or (stop or threading.Event()).wait
    deadline = time.monotonic() + patience
    while leases.acquire([STAGE_LEASE]):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or wait(min(2.0, remaining)):
            return False
    return True


def _lease_sources(leases: LeaseKeeper, selected: Config) -> tuple[Config, list[dict[str, Any]]]:
    """Lease each enabled source; returns the config narrowed to leased ones and the busy ones."""
    enabled = [source for source in selected.sources if source.enabled]
    taken = set(leases.acquire(source_lease(source.name) for source in enabled))
    busy: list[dict[str, Any]] = []
    for source in enabled:
        if source_lease(source.name) in taken:
            log.warning("source %s: skipped, another run holds its lease", source.name)
            busy.append(
                {
                    "name": source.name,
                    "platform": source.platform,
                    "status": "skipped",
                    "posts": 0,
                    "error": "already being run by another process",
                }
            )
    names = {item["name"] for item in busy}
    kept = tuple(source for source in selected.sources if source.name not in names)
    return dataclasses.replace(selected, sources=kept), busy


def score_stage(config: Config, store: Store, progress: Progress) -> dict[str, int]:
    """Score every post whose current text has no score from the current model."""
    from pipeline.classify import load_scoring_model, score_new_posts

    model = load_scoring_model(config)  # ModelError (missing/tampered) fails the run loudly
    progress.start("score")
    result = score_new_posts(store, model, config=config, progress=progress)
    progress.finish()
    return result


def link_stage(config: Config, store: Store) -> dict[str, int]:
    """Link authors to the ASN registry and enqueue partisan items by linked accounts."""
    from pipeline.queue import link_and_enqueue

    return link_and_enqueue(config, store)


def format_run_report(report: RunReport) -> str:
    """A short human summary of a run."""
    lines = [f"run #{report.run_id}: {report.status}"]
    if not report.sources and not report.counters.get("sources"):
        lines.append(
            "  no sources configured: add [[sources]] to the config (see config/example.toml)"
        )
    for name, value in report.counters.items():
        lines.append(f"  {name:<14} {value}")
    for item in report.sources:
        extra = f" — {item['error']}" if item.get("error") else ""
        lines.append(
            f"  source {item['name']}: {item.get('status', '?')}, {item.get('posts', 0)} posts{extra}"
        )
    lines.extend(f"  error: {error}" for error in report.errors[:20])
    return "\n".join(lines)
