"""`netra schedule`: unattended monitoring runs that survive restarts and crashes.

APScheduler 3 keeps its jobs in the project's database (`SQLAlchemyJobStore`, table
`apscheduler_jobs`), so a restart keeps every schedule; after downtime a job runs once
(`coalesce`) if its last missed time is within `schedule.misfire_grace_seconds`, else it waits
for its next time. Jobs:

    source:<name>        one per enabled source, a `PhasedTrigger` (pipeline.calendar)
    retry:<name>:<n>     the n-th retry after consecutive failures, with growing delay
    maintenance:purge    retention purge (`schedule.purge_cron`, pipeline.retention)
    maintenance:export   daily queue export (`schedule.export_cron`, pipeline.export)

A source's job is `run_once` for that source (collect → score → link → queue), which commits
batch by batch and holds the `source:<name>` lease, so a manual `netra run` and the scheduler
never run one source at the same time. Only one scheduler per database is active: it holds the
`scheduler` lease and renews it; another one stands by and takes over when the lease lapses (or
at once when the holder died on this host). SIGTERM/SIGINT: running sources finish their current
batch, the cursor is kept, the process exits 0.

Job functions are module-level and take only names (APScheduler pickles jobs); they reach the
process's active `Scheduler` through `_ACTIVE`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
from apscheduler.executors.debug import DebugExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Column, Float, MetaData, String, Table, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from pipeline import leases, schema
from pipeline.calendar import (
    ElectionCalendar,
    PhasedTrigger,
    SourcePlan,
    build_trigger,
    validate_schedule,
)
from pipeline.config import Config
from pipeline.errors import ConfigError, NetraError
from pipeline.notify import (
    Webhook,
    notify_new_queue_items,
    notify_source_failing,
    notify_source_recovered,
    start_queue_watch,
    webhook_from_config,
)
from pipeline.records import format_datetime
from pipeline.run import RunReport, run_once
from pipeline.store import Store, utcnow

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
SCHEDULER_LEASE = "scheduler"
MAINTENANCE_TASKS: dict[str, tuple[str, str]] = {
    # task: (module that must exist, config key with its cron expression)
    "purge": ("pipeline.retention", "purge_cron"),
    "export": ("pipeline.export", "export_cron"),
}
Clock = Callable[[], datetime]


class Runner(Protocol):
    """What runs one source: `pipeline.run.run_once` (tests inject fakes)."""

    def __call__(
        self,
        config: Config,
        store: Store,
        *,
        sources: list[str],
        stop: threading.Event,
        lease_holder: str,
        client: httpx.Client | None = None,
    ) -> RunReport: ...


def source_job_id(name: str) -> str:
    """The id of a source's regular job."""
    return f"source:{name}"


def retry_job_id(name: str, attempt: int) -> str:
    """The id of a source's `attempt`-th retry."""
    return f"retry:{name}:{attempt}"


def retry_delay(failures: int, base_seconds: float, max_seconds: float) -> timedelta:
    """Wait before retrying after `failures` consecutive failures: doubling, capped."""
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, failures - 1)))


# -- job functions: module level, picklable arguments only -------------------------------------

_ACTIVE: Scheduler | None = None
_ACTIVE_LOCK = threading.Lock()


def _active() -> Scheduler:
    scheduler = _ACTIVE
    if scheduler is None:
        raise NetraError("no active Netra scheduler in this process")
    return scheduler


def run_source_job(source: str) -> None:
    """APScheduler job: one run of a source."""
    _active().run_source(source)


def retry_source_job(source: str, attempt: int) -> None:
    """APScheduler job: a retry after `attempt` consecutive failures (stale ones do nothing)."""
    _active().run_source(source, attempt=attempt)


def maintenance_job(task: str) -> None:
    """APScheduler job: a maintenance task (`purge` or `export`)."""
    _active().run_maintenance(task)


# -- maintenance tasks ------------------------------------------------------------------------


def maintenance_available(task: str) -> bool:
    """Whether the module a maintenance task needs is part of this installation."""
    module, _ = MAINTENANCE_TASKS[task]
    return importlib.util.find_spec(module) is not None


def _record_failure(store: Store, task: str, exc: BaseException) -> None:
    with contextlib.suppress(NetraError):
        store.finish_run(store.start_run(task), "failed", {}, [f"{type(exc).__name__}: {exc}"])


def run_purge(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """Apply the retention policy (pipeline.retention records the successful run)."""
    try:
        if not maintenance_available("purge"):
            raise NetraError("retention purge is not available: pipeline/retention.py is missing")
        from pipeline import retention

        report = retention.purge(config, store, now=now)
    except Exception as exc:
        _record_failure(store, "purge", exc)
        raise
    return {key: value for key, value in report.items() if isinstance(value, int)}


def run_export(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """Write the day's pending review queue to `paths.output_dir` (pipeline.export)."""
    stamp = now.astimezone(ZoneInfo(config.schedule.timezone)).strftime("%Y-%m-%d")
    output = config.paths.output_dir / f"review_queue-{stamp}.csv"
    try:
        if not maintenance_available("export"):
            raise NetraError("queue export is not available: pipeline/export.py is missing")
        from pipeline import export

        count = export.export_items(store, output, status="pending", file_format="csv")
    except Exception as exc:
        _record_failure(store, "export", exc)
        raise
    counters = {"items": count}
    store.finish_run(store.start_run("export"), "ok", counters)
    log.info("queue export: %d pending items written to %s", count, output)
    return counters


MAINTENANCE_RUNNERS: dict[str, Callable[[Config, Store, datetime], dict[str, Any]]] = {
    "purge": run_purge,
    "export": run_export,
}


# -- the scheduler ----------------------------------------------------------------------------


class _SharedEngineJobStore(SQLAlchemyJobStore):
    """The job store on the Store's engine; stopping the scheduler must not dispose of it."""

    def shutdown(self) -> None:
        pass


class _DrivenScheduler(BaseScheduler):
    """APScheduler whose job processing is driven by `Scheduler`'s loop (or a test's ticks)."""

    def __init__(self, wake: threading.Event, **options: Any) -> None:
        self._wake = wake
        super().__init__(**options)

    def wakeup(self) -> None:
        self._wake.set()

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        self._wake.set()

    def tick(self) -> float | None:
        """Start every due job; returns seconds until the next one (None: no jobs)."""
        return self._process_jobs()


@dataclass
class Outcome:
    """What one scheduled execution did (kept in memory for `--once` and tests)."""

    job: str
    source: str | None
    status: str
    at: datetime
    error: str | None = None
    retry_at: datetime | None = None


@dataclass
class JobInfo:
    """A job as stored: id, next run, trigger description."""

    id: str
    next_run: datetime | None
    trigger: str


@dataclass
class _Spec:
    func: Callable[..., None]
    args: tuple[Any, ...]
    trigger: Any
    name: str


def _same_trigger(old: Any, new: Any) -> bool:
    if isinstance(new, PhasedTrigger):
        return old == new
    return type(old) is type(new) and repr(old) == repr(new)


class Scheduler:
    """One process's scheduler: validates the schedule, holds the lease, runs the jobs."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Clock = utcnow,
        runner: Runner | None = None,
        executor: str = "threadpool",
        holder: str | None = None,
        environ: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        webhook: Webhook | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.runner: Runner = runner or run_once  # type: ignore[assignment]
        self.executor = executor
        self.holder = holder or leases.new_holder("scheduler")
        self.environ = os.environ if environ is None else environ
        self.calendar: ElectionCalendar
        self.plans: dict[str, SourcePlan]
        self.calendar, self.plans = validate_schedule(config)
        self.zone = ZoneInfo(config.schedule.timezone)
        self.http_client = http_client
        self._own_client: httpx.Client | None = None
        if webhook is None and config.webhook.url:
            self._own_client = httpx.Client(timeout=httpx.Timeout(15.0))
            try:
                webhook = webhook_from_config(config.webhook, self.environ, self._own_client)
            except ConfigError:
                self._own_client.close()
                raise
        self.webhook = webhook
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.failures: dict[str, int] = {}
        self.outcomes: list[Outcome] = []
        self.aps: _DrivenScheduler | None = None
        self._lock = threading.Lock()
        self._notify_lock = threading.Lock()
        self._last_renewal: datetime | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether this scheduler holds the lease and runs jobs."""
        return self.aps is not None

    def activate(self) -> bool:
        """Take the scheduler lease and start the jobs; False when another scheduler has it."""
        global _ACTIVE
        if self.active:
            return True
        now = self.clock()
        seconds = self.config.schedule.lease_seconds
        if not leases.acquire(self.store, SCHEDULER_LEASE, self.holder, seconds, now):
            found = leases.current_holder(self.store, SCHEDULER_LEASE)
            log.info(
                "standing by: scheduler %s holds the lease until %s",
                found[0] if found else "?",
                format_datetime(found[1]) if found else "?",
            )
            return False
        with _ACTIVE_LOCK:
            if _ACTIVE is not None and _ACTIVE is not self:
                self.store.release_lease(SCHEDULER_LEASE, self.holder)
                raise NetraError("another scheduler is already active in this process")
            _ACTIVE = self
        self._last_renewal = now
        try:
            self.failures = {name: consecutive_failures(self.store, name) for name in self.plans}
            if self.webhook is not None:
                start_queue_watch(self.store)
            self.aps = self._build_aps()
            self.aps.start()
            self.sync_jobs()
        except BaseException:
            self.deactivate(wait=False)
            raise
        log.info("scheduler %s active with %d jobs", self.holder, len(self.jobs()))
        return True

    def _build_aps(self) -> _DrivenScheduler:
        settings = self.config.schedule
        executor: Any
        if self.executor == "debug":
            executor = DebugExecutor()
        else:
            workers = max(2, min(8, len(self.plans) + len(MAINTENANCE_TASKS)))
            executor = ThreadPoolExecutor(max_workers=workers)
        return _DrivenScheduler(
            self.wake,
            timezone=self.zone,
            jobstores={"default": _SharedEngineJobStore(engine=self.store.engine)},
            executors={"default": executor},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": settings.misfire_grace_seconds,
            },
        )

    def deactivate(self, wait: bool = True) -> None:
        """Stop running jobs (waiting for running ones by default) and give the lease back."""
        global _ACTIVE
        aps = self.aps
        if aps is not None and aps.running:
            aps.shutdown(wait=wait)  # running jobs still see `self.aps` while they finish
        self.aps = None
        with _ACTIVE_LOCK:
            if _ACTIVE is self:
                _ACTIVE = None
        try:
            self.store.release_lease(SCHEDULER_LEASE, self.holder)
        except NetraError as exc:
            log.warning("scheduler lease not released (it will expire): %s", exc)

    def close(self) -> None:
        """Deactivate and close what this scheduler opened."""
        self.deactivate()
        if self._own_client is not None:
            self._own_client.close()

    def renew(self) -> bool:
        """Renew the scheduler lease; False when another scheduler took it."""
        now = self.clock()
        try:
            held = leases.acquire(
                self.store, SCHEDULER_LEASE, self.holder, self.config.schedule.lease_seconds, now
            )
        except NetraError as exc:
            log.warning("scheduler lease not renewed (will retry): %s", exc)
            return True
        if held:
            self._last_renewal = now
        return held

    def request_stop(self) -> None:
        """Ask running sources to finish their batch and the loop to end."""
        self.stop.set()
        self.wake.set()

    # -- jobs ---------------------------------------------------------------------------------

    def _desired_jobs(self) -> dict[str, _Spec]:
        specs: dict[str, _Spec] = {}
        for name, plan in self.plans.items():
            specs[source_job_id(name)] = _Spec(
                run_source_job, (name,), build_trigger(self.calendar, plan), f"source {name}"
            )
        for task, (module, key) in MAINTENANCE_TASKS.items():
            expression = getattr(self.config.schedule, key)
            if not expression:
                continue
            if not maintenance_available(task):
                log.warning(
                    "maintenance %s not scheduled: %s is not part of this installation",
                    task,
                    module,
                )
                continue
            specs[f"maintenance:{task}"] = _Spec(
                maintenance_job,
                (task,),
                CronTrigger.from_crontab(expression, timezone=self.zone),
                f"maintenance {task}",
            )
        return specs

    def sync_jobs(self) -> None:
        """Make the stored jobs match the config; unchanged jobs keep their next run time."""
        aps = self._require_aps()
        grace = self.config.schedule.misfire_grace_seconds
        desired = self._desired_jobs()
        existing = {job.id: job for job in aps.get_jobs()}
        for job_id, spec in desired.items():
            job = existing.get(job_id)
            if (
                job is not None
                and job.func is spec.func
                and tuple(job.args) == spec.args
                and job.misfire_grace_time == grace
                and _same_trigger(job.trigger, spec.trigger)
            ):
                continue
            if job is not None:
                log.info("job %s: schedule changed, replacing it", job_id)
            aps.add_job(
                spec.func,
                trigger=spec.trigger,
                args=spec.args,
                id=job_id,
                name=spec.name,
                replace_existing=True,
            )
        for job_id in existing:
            if job_id in desired:
                continue
            kind, _, rest = job_id.partition(":")
            source = rest.rsplit(":", 1)[0] if kind == "retry" else rest
            if kind == "retry" and source in self.plans:
                continue
            log.info("job %s: no longer configured, removing it", job_id)
            self._remove_job(job_id)

    def _remove_job(self, job_id: str) -> None:
        # A date job removes itself after running, so it may be gone already.
        with contextlib.suppress(JobLookupError):
            self._require_aps().remove_job(job_id)

    def _require_aps(self) -> _DrivenScheduler:
        if self.aps is None:
            raise NetraError("the scheduler is not active")
        return self.aps

    def jobs(self) -> list[JobInfo]:
        """Every stored job with its next run, soonest first."""
        aps = self._require_aps()
        found = [JobInfo(job.id, job.next_run_time, str(job.trigger)) for job in aps.get_jobs()]
        return sorted(found, key=lambda info: (info.next_run is None, info.next_run or 0, info.id))

    def tick(self) -> float | None:
        """Run every due job once; returns seconds until the next one is due."""
        return self._require_aps().tick()

    # -- executing jobs ---------------------------------------------------------------------

    def run_source(self, name: str, attempt: int | None = None) -> None:
        """The body of a source job: one run, then failure bookkeeping and notifications."""
        job = retry_job_id(name, attempt) if attempt is not None else source_job_id(name)
        if self.stop.is_set():
            return
        if name not in self.plans:
            log.warning("job %s: source %r is not configured (any more); skipped", job, name)
            return
        with self._lock:
            before = self.failures.get(name, 0)
        if attempt is not None and attempt != before:
            # A later run already succeeded or failed again: this retry is out of date.
            log.debug("job %s: stale retry skipped", job)
            return
        error: str | None = None
        try:
            report = self.runner(
                self.config,
                self.store,
                sources=[name],
                stop=self.stop,
                lease_holder=leases.new_holder("schedule"),
                client=self.http_client,
            )
            status = report.status
            if report.errors:
                error = report.errors[0]
        except Exception as exc:  # one failing source must never stop the scheduler
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("source %s: run failed: %s", name, error)
        outcome = Outcome(job, name, status, self.clock(), error)
        if status == "failed":
            outcome.retry_at = self._after_failure(name, error)
        elif status != "skipped":
            self._after_success(name, before)
        with self._lock:
            self.outcomes.append(outcome)
        self._announce_queue()

    def _after_failure(self, name: str, error: str | None) -> datetime | None:
        settings = self.config.schedule
        with self._lock:
            failures = self.failures[name] = self.failures.get(name, 0) + 1
        now = self.clock()
        retry_at = now + retry_delay(
            failures, settings.retry_base_seconds, settings.retry_max_seconds
        )
        regular = self._next_regular_run(name, now)
        scheduled: datetime | None = None
        aps = self.aps
        if aps is None or not aps.running:
            # Shutting down: no new jobs can be stored now; the regular schedule takes over.
            log.info("source %s: no retry scheduled while the scheduler stops", name)
        elif regular is None or retry_at < regular:
            aps.add_job(
                retry_source_job,
                trigger=DateTrigger(run_date=retry_at, timezone=self.zone),
                args=(name, failures),
                id=retry_job_id(name, failures),
                name=f"retry {name} #{failures}",
                replace_existing=True,
            )
            scheduled = retry_at
        next_attempt = scheduled or regular
        log.warning(
            "source %s: failure %d in a row; next attempt %s",
            name,
            failures,
            format_datetime(next_attempt) if next_attempt else "none",
        )
        if self.webhook is not None and failures == self.config.webhook.failure_threshold:
            notify_source_failing(self.webhook, name, failures, error, next_attempt)
        return scheduled

    def _next_regular_run(self, name: str, now: datetime) -> datetime | None:
        """When the source's regular job runs next (after the run in progress, if it is one)."""
        job = self.aps.get_job(source_job_id(name)) if self.aps is not None else None
        if job is None:
            return None
        upcoming: datetime | None = job.next_run_time
        # During the source job's own run the stored time may still be this run's time.
        while upcoming is not None and upcoming <= now:
            upcoming = job.trigger.get_next_fire_time(upcoming, now)
        return upcoming

    def _after_success(self, name: str, before: int) -> None:
        with self._lock:
            self.failures[name] = 0
        if self.webhook is not None and before >= self.config.webhook.failure_threshold:
            notify_source_recovered(self.webhook, name, before)

    def _announce_queue(self) -> None:
        if self.webhook is None:
            return
        with self._notify_lock:
            try:
                notify_new_queue_items(self.store, self.webhook, self.config.webhook.min_priority)
            except (NetraError, SQLAlchemyError) as exc:
                log.warning("queue notification postponed: %s", exc)

    def run_maintenance(self, task: str) -> None:
        """The body of a maintenance job, under its own lease (the task records its run)."""
        if self.stop.is_set():
            return
        holder = leases.new_holder("schedule")
        name = f"maintenance:{task}"
        if not leases.acquire(self.store, name, holder, self.config.schedule.lease_seconds):
            log.info("maintenance %s skipped: already running elsewhere", task)
            return
        status, error = "ok", None
        try:
            MAINTENANCE_RUNNERS[task](self.config, self.store, self.clock())
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("maintenance %s failed: %s", task, error)
        finally:
            with contextlib.suppress(NetraError):
                self.store.release_lease(name, holder)
        with self._lock:
            self.outcomes.append(Outcome(name, None, status, self.clock(), error))

    # -- loops --------------------------------------------------------------------------------

    def serve(
        self,
        on_active: Callable[[Scheduler], None] | None = None,
        on_standby: Callable[[str], None] | None = None,
    ) -> None:
        """Run until `request_stop`: stand by without the lease, run jobs with it."""
        renew_every = max(1.0, self.config.schedule.lease_seconds / 3)
        standing_by = False
        while not self.stop.is_set():
            if not self.active:
                if not self.activate():
                    if not standing_by and on_standby is not None:
                        found = leases.current_holder(self.store, SCHEDULER_LEASE)
                        on_standby(found[0] if found else "?")
                    standing_by = True
                    self.stop.wait(min(60.0, renew_every))
                    continue
                standing_by = False
                if on_active is not None:
                    on_active(self)
            try:
                wait = self.tick()
            except Exception as exc:  # e.g. the database went away; the next tick retries
                log.error("scheduler: processing jobs failed: %s", exc)
                wait = 30.0
            last = self._last_renewal
            due = last is None or (self.clock() - last).total_seconds() >= renew_every
            if due and not self.renew():
                log.error("scheduler lease lost to another scheduler; standing by")
                self.deactivate()
                continue
            self.wake.wait(min(wait if wait is not None else renew_every, renew_every))
            self.wake.clear()
        self.deactivate()

    def run_due_once(self) -> list[Outcome] | None:
        """Run the jobs due now and return what they did; None when another scheduler is active."""
        if not self.activate():
            return None
        try:
            self.tick()
        finally:
            self.deactivate(wait=True)
        return list(self.outcomes)


# -- reading the schedule back (status) -------------------------------------------------------


def _jobs_table() -> Table:
    # Only the plain columns: reading next run times needs no unpickling.
    return Table(
        JOBS_TABLE,
        MetaData(),
        Column("id", String(191), primary_key=True),
        Column("next_run_time", Float(25)),
    )


def stored_next_runs(store: Store) -> dict[str, datetime | None]:
    """Next run time per stored job id ({} before the first `netra schedule`)."""
    from datetime import UTC

    if not inspect(store.engine).has_table(JOBS_TABLE):
        return {}
    table = _jobs_table()
    with store.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.next_run_time)).all()
    return {
        row.id: datetime.fromtimestamp(row.next_run_time, UTC)
        if row.next_run_time is not None
        else None
        for row in rows
    }


def consecutive_failures(store: Store, source: str, limit: int = 200) -> int:
    """How many of a source's latest runs failed in a row (skipped/interrupted ones ignored)."""
    r = schema.runs
    with store.connect() as conn:
        statuses = conn.execute(
            select(r.c.status).where(r.c.source == source).order_by(r.c.id.desc()).limit(limit)
        ).scalars()
        count = 0
        for status in statuses:
            if status == "failed":
                count += 1
            elif status in ("ok", "partial"):
                break
    return count


def source_status(
    config: Config, store: Store, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per configured source: phase and rule, last run, outcome, items, errors, next run."""
    moment = now or utcnow()
    try:
        calendar, plans = validate_schedule(config)
        problem = None
    except ConfigError as exc:
        calendar, plans, problem = ElectionCalendar(), {}, str(exc)
    next_runs = stored_next_runs(store)
    phase = calendar.phase_at(moment)
    r = schema.runs
    rows: list[dict[str, Any]] = []
    for source in config.sources:
        with store.connect() as conn:
            last = conn.execute(
                select(r)
                .where(r.c.source == source.name, r.c.status != "skipped")
                .order_by(r.c.id.desc())
                .limit(1)
            ).first()
        failures = consecutive_failures(store, source.name)
        candidates = [next_runs.get(source_job_id(source.name))]
        if failures:
            candidates.append(next_runs.get(retry_job_id(source.name, failures)))
        upcoming = [value for value in candidates if value is not None]
        holder = leases.current_holder(store, leases.source_lease(source.name))
        plan = plans.get(source.name)
        entry: dict[str, Any] = {
            "name": source.name,
            "platform": source.platform,
            "enabled": source.enabled,
            "phase": phase,
            "rule": plan.rule(phase).describe() if plan else None,
            "last_run": None,
            "consecutive_failures": failures,
            "next_run": format_datetime(min(upcoming)) if upcoming else None,
            "running": bool(holder and holder[1] > moment),
        }
        if last is not None:
            counters = last.counters or {}
            entry["last_run"] = {
                "id": last.id,
                "status": last.status,
                "started_at": format_datetime(last.started_at),
                "finished_at": format_datetime(last.finished_at) if last.finished_at else None,
                "items": counters.get("collected", 0),
                "new": counters.get("inserted", 0),
                "errors": list(last.errors or [])[:3],
            }
        rows.append(entry)
    if problem:
        rows.append({"problem": problem})
    return rows


def format_jobs(jobs: list[JobInfo], calendar: ElectionCalendar, now: datetime) -> str:
    """The plan printed when the scheduler becomes active."""
    phase = calendar.phase_at(now) or "no phase"
    lines = [f"calendar: {calendar.origin}; phase now: {phase}", "jobs:"]
    for job in jobs:
        when = format_datetime(job.next_run) if job.next_run else "paused"
        lines.append(f"  {job.id:<32} next {when}")
    return "\n".join(lines)


def format_outcomes(outcomes: list[Outcome]) -> str:
    """What `netra schedule --once` ran."""
    if not outcomes:
        return "no job was due"
    lines = []
    for item in outcomes:
        extra = f" — {item.error}" if item.error else ""
        retry = f" (retry at {format_datetime(item.retry_at)})" if item.retry_at else ""
        lines.append(f"{item.job}: {item.status}{retry}{extra}")
    return "\n".join(lines)


# -- the command --------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, flush=True)  # a service's log collector should see it at once


def serve_scheduler(
    config: Config, store: Store, *, once: bool = False, say: Callable[[str], None] = _say
) -> int:
    """`netra schedule`: run the scheduler until SIGTERM/SIGINT (or the due jobs, with `once`)."""
    # With --once the due jobs run one after another in this thread, so each finishes (and
    # stores its retry) before the scheduler stops.
    scheduler = Scheduler(config, store, executor="debug" if once else "threadpool")
    try:
        if once:
            outcomes = scheduler.run_due_once()
            if outcomes is None:
                holder = leases.current_holder(store, SCHEDULER_LEASE)
                say(f"another scheduler is active ({holder[0] if holder else '?'}); nothing run")
                return 0
            say(format_outcomes(outcomes))
            return 1 if any(item.status == "failed" for item in outcomes) else 0
        previous = _install_signal_handlers(scheduler)
        try:
            scheduler.serve(
                on_active=lambda active: say(
                    format_jobs(active.jobs(), active.calendar, active.clock())
                ),
                on_standby=lambda holder: say(
                    f"standing by: scheduler {holder} is active on this database"
                ),
            )
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        say("scheduler stopped")
        return 0
    finally:
        scheduler.close()


def _install_signal_handlers(scheduler: Scheduler) -> dict[int, Any]:
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        log.warning("%s: finishing the current batch, then stopping", signal.Signals(signum).name)
        # Setting the events from another thread: the main thread may hold an event's lock
        # right now, and taking it again inside the handler would deadlock.
        threading.Thread(target=scheduler.request_stop, name="stop-request").start()
        # A second signal should act at once: give the defaults back.
        for number, handler in previous.items():
            signal.signal(number, handler)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handle)
    return previous


def format_source_status(rows: list[dict[str, Any]]) -> list[str]:
    """`netra status` lines per source: last run, outcome, items, errors, next run."""
    lines: list[str] = []
    for row in rows:
        if "problem" in row:
            lines.append(f"  schedule problem: {row['problem']}")
            continue
        phase = row["phase"] or "no phase"
        state = "running now" if row["running"] else "idle"
        if not row["enabled"]:
            state = "disabled"
        lines.append(f"  {row['name']} ({row['platform']}): {state}; {phase}, {row['rule']}")
        last = row["last_run"]
        if last is None:
            lines.append("    last run: never")
        else:
            lines.append(
                f"    last run: #{last['id']} {last['status']} at {last['started_at']}, "
                f"{last['items']} items ({last['new']} new)"
            )
            lines.extend(f"    error: {error}" for error in last["errors"])
        if row["consecutive_failures"]:
            lines.append(f"    failing: {row['consecutive_failures']} runs in a row")
        lines.append(f"    next run: {row['next_run'] or 'not scheduled (start `netra schedule`)'}")
    return lines
