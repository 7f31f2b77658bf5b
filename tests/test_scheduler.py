"""The scheduler with an injected clock: phases, restarts, misfires, retries, leases, shutdown.

APScheduler 3 reads `datetime.now` in two modules; the `clock` fixture replaces both with the
test's clock, and the scheduler's own decisions use the same clock. Jobs run inline (APScheduler's
debug executor) when a test calls `tick()`, so nothing here sleeps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest

from pipeline import leases
from pipeline import scheduler as scheduler_module
from pipeline.cli import main
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError, SourceUnavailable, StoreError
from pipeline.leases import LeaseKeeper, LeaseLost
from pipeline.notify import Webhook
from pipeline.run import STAGE_LEASE, RunReport, await_stage_lease, run_once
from pipeline.scheduler import SCHEDULER_LEASE, Scheduler, retry_delay, source_status
from pipeline.status import collect_status, format_status
from pipeline.store import Store, utcnow
from tests.conftest import make_post

WIB = ZoneInfo("Asia/Jakarta")


def wib(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=WIB)  # type: ignore[misc]


class FakeClock:
    """The one clock of a test: APScheduler's and the scheduler's."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(wib(2024, 2, 5, 10, 0))

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return fake.current.astimezone(tz) if tz else fake.current.replace(tzinfo=None)

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", FrozenDatetime)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", FrozenDatetime)
    return fake


@dataclass
class FakeRunner:
    """Stands in for `run_once`: records calls in the runs table; named sources fail."""

    clock: FakeClock
    failing: set[str] = field(default_factory=set)
    calls: list[tuple[str, datetime]] = field(default_factory=list)

    def __call__(
        self,
        config: Config,
        store: Store,
        *,
        sources: list[str],
        stop: threading.Event,
        lease_holder: str,
        client: object = None,
    ) -> RunReport:
        (name,) = sources
        self.calls.append((name, self.clock.now()))
        run_id = store.start_run("run", name)
        if name in self.failing:
            store.finish_run(run_id, "failed", {}, ["HTTP 503 from the platform"])
            raise SourceUnavailable(f"{name}: HTTP 503 from the platform")
        store.finish_run(run_id, "ok", {"collected": 4, "inserted": 3}, [])
        return RunReport(run_id, "ok", {"collected": 4, "inserted": 3})

    def times(self, name: str) -> list[datetime]:
        return [moment.astimezone(WIB) for source, moment in self.calls if source == name]


@dataclass
class FakeWebhook(Webhook):
    """Records events instead of posting them."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send(self, event: str, payload: Any) -> bool:
        self.events.append((event, dict(payload)))
        return True


BASE = """
[database]
url = "sqlite:///{db}"

[paths]
output_dir = "{out}"

[schedule]
default_interval_minutes = 1440
phase_intervals = {{ kampanye = 60, masa_tenang = 15 }}
misfire_grace_seconds = 600
lease_seconds = 900
retry_base_seconds = 60
retry_max_seconds = 3600
export_cron = ""
purge_cron = ""

[[schedule.phases]]
name = "kampanye"
start = 2024-01-01
end = 2024-02-10
[[schedule.phases]]
name = "masa_tenang"
start = 2024-02-11
end = 2024-02-13
[[schedule.phases]]
name = "pemungutan_suara"
start = 2024-02-14
end = 2024-02-14
"""


@pytest.fixture
def write_config(tmp_path: Path) -> Any:
    def write(sources: str, extra: str = "", name: str = "netra.toml") -> Config:
        text = BASE.format(db=tmp_path / "netra.db", out=tmp_path / "out")
        path = tmp_path / name
        path.write_text(text.replace("[schedule]\n", "[schedule]\n" + extra) + sources)
        return load_config(path, environ={})

    return write


TWO_SOURCES = """
[[sources]]
name = "berita"
platform = "file"
targets = ["path:berita.jsonl"]

[[sources]]
name = "kanal"
platform = "file"
targets = ["path:kanal.jsonl"]
schedule = { interval_minutes = 45 }
"""


@pytest.fixture
def db_store(tmp_path: Path) -> Iterator[Store]:
    instance = Store(f"sqlite:///{tmp_path / 'netra.db'}")
    instance.upgrade()
    yield instance
    instance.close()


@pytest.fixture
def schedulers() -> Iterator[list[Scheduler]]:
    made: list[Scheduler] = []
    yield made
    for item in made:
        item.close()
    scheduler_module._ACTIVE = None


def make(
    schedulers: list[Scheduler],
    config: Config,
    store: Store,
    clock: FakeClock,
    runner: FakeRunner,
    **options: Any,
) -> Scheduler:
    options.setdefault("holder", f"otherhost:{100 + len(schedulers)}:scheduler-test")
    instance = Scheduler(config, store, clock=clock.now, runner=runner, executor="debug", **options)
    schedulers.append(instance)
    return instance


def run_until(scheduler: Scheduler, clock: FakeClock, until: datetime, step: float = 5) -> None:
    """Tick every `step` minutes of fake time until `until` (exclusive)."""
    while clock.now() < until:
        scheduler.tick()
        clock.advance(minutes=step)


def test_intervals_follow_the_phases_and_switch_at_midnight(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    clock.set(wib(2024, 2, 10, 21, 30))
    runner = FakeRunner(clock)
    scheduler = make(schedulers, write_config(TWO_SOURCES), db_store, clock, runner)
    assert scheduler.activate()
    run_until(scheduler, clock, wib(2024, 2, 11, 1, 0))
    assert runner.times("berita") == [
        wib(2024, 2, 10, 21, 30),  # a new job runs at once
        wib(2024, 2, 10, 22, 30),  # hourly in the campaign
        wib(2024, 2, 10, 23, 30),
        wib(2024, 2, 11, 0, 0),  # masa tenang: at its start, then every 15 minutes
        wib(2024, 2, 11, 0, 15),
        wib(2024, 2, 11, 0, 30),
        wib(2024, 2, 11, 0, 45),
    ]
    # A source with its own interval keeps it through the switch.
    assert runner.times("kanal") == [
        wib(2024, 2, 10, 21, 30),
        wib(2024, 2, 10, 22, 15),
        wib(2024, 2, 10, 23, 0),
        wib(2024, 2, 10, 23, 45),
        wib(2024, 2, 11, 0, 30),
    ]
    jobs = {job.id: job for job in scheduler.jobs()}
    assert set(jobs) == {"source:berita", "source:kanal"}
    assert jobs["source:berita"].next_run == wib(2024, 2, 11, 1, 0)


def test_restart_keeps_the_schedule_and_coalesces_missed_runs(
    write_config: Any, store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    db_store = store  # SQLite and PostgreSQL: the job store lives in the project's database
    config = write_config(TWO_SOURCES)
    runner = FakeRunner(clock)
    first = make(schedulers, config, db_store, clock, runner)
    assert first.activate()
    first.tick()
    first.close()
    start = clock.now()
    # Down for five hours: five hourly runs were missed; the last one 5 minutes ago.
    clock.advance(hours=5, minutes=5)
    second = make(schedulers, config, db_store, clock, runner)
    assert second.activate()
    second.tick()
    assert runner.times("berita") == [start, start + timedelta(hours=5, minutes=5)]
    # The stored schedule was kept (not restarted from now): next on the hour grid.
    jobs = {job.id: job for job in second.jobs()}
    assert jobs["source:berita"].next_run == start + timedelta(hours=6)
    second.tick()
    assert len(runner.times("berita")) == 2


def test_missed_run_beyond_the_grace_time_waits_for_the_next_slot(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    config = write_config(TWO_SOURCES)
    runner = FakeRunner(clock)
    first = make(schedulers, config, db_store, clock, runner)
    assert first.activate()
    first.tick()
    first.close()
    start = clock.now()
    clock.advance(hours=5, minutes=30)  # the last missed run is 30 min late, grace is 10
    second = make(schedulers, config, db_store, clock, runner)
    assert second.activate()
    second.tick()
    assert runner.times("berita") == [start]
    clock.set(start + timedelta(hours=6))
    second.tick()
    assert runner.times("berita") == [start, start + timedelta(hours=6)]


def test_changed_config_replaces_jobs_and_drops_removed_sources(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    runner = FakeRunner(clock)
    first = make(schedulers, write_config(TWO_SOURCES), db_store, clock, runner)
    assert first.activate()
    first.tick()
    first.close()
    clock.advance(minutes=10)
    changed = TWO_SOURCES.replace(
        'targets = ["path:kanal.jsonl"]\nschedule = { interval_minutes = 45 }',
        'targets = ["path:kanal.jsonl"]\nschedule = { interval_minutes = 20 }',
    ).split('[[sources]]\nname = "berita"')[0]
    changed += (
        '[[sources]]\nname = "kanal"\nplatform = "file"\nschedule = { interval_minutes = 20 }\n'
    )
    second = make(schedulers, write_config(changed, name="changed.toml"), db_store, clock, runner)
    assert second.activate()
    assert {job.id for job in second.jobs()} == {"source:kanal"}
    second.tick()  # a changed schedule starts afresh: at once, then every 20 minutes
    assert runner.times("kanal")[-1] == clock.now()
    assert second.jobs()[0].next_run == clock.now() + timedelta(minutes=20)


def test_failures_retry_with_growing_delay_while_others_go_on(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    runner = FakeRunner(clock, failing={"berita"})
    webhook = FakeWebhook("http://127.0.0.1:9/", "s3cret", client=None)  # type: ignore[arg-type]
    config = write_config(TWO_SOURCES)
    scheduler = make(schedulers, config, db_store, clock, runner, webhook=webhook)
    assert scheduler.activate()
    start = clock.now()
    run_until(scheduler, clock, start + timedelta(minutes=59), step=0.5)
    offsets = [(moment - start).total_seconds() for moment in runner.times("berita")]
    # 60 s, then doubling: 120, 240, 480, 960; the next (1920 s) would pass the hourly run.
    assert offsets == [0, 60, 180, 420, 900, 1860]
    assert [t - start for t in runner.times("kanal")] == [timedelta(minutes=m) for m in (0, 45)]
    assert [event for event, _ in webhook.events] == ["source.failing"]
    assert webhook.events[0][1]["consecutive_failures"] == 3
    failures = [o for o in scheduler.outcomes if o.source == "berita"]
    assert failures[0].retry_at == start + timedelta(seconds=60)
    assert failures[-1].retry_at is None  # the regular hourly run comes first
    status = {row["name"]: row for row in source_status(config, db_store, clock.now())}
    assert status["berita"]["consecutive_failures"] == 6
    assert status["berita"]["last_run"]["errors"] == ["HTTP 503 from the platform"]
    assert status["berita"]["next_run"] == "2024-02-05T04:00:00Z"  # 11:00 WIB
    # The platform is back: the regular run succeeds and the recovery is announced.
    runner.failing.clear()
    clock.set(start + timedelta(hours=1))
    scheduler.tick()
    assert runner.times("berita")[-1] == start + timedelta(hours=1)
    assert [event for event, _ in webhook.events] == ["source.failing", "source.recovered"]
    assert scheduler.failures["berita"] == 0


def test_failure_count_survives_a_restart(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    config = write_config(TWO_SOURCES)
    runner = FakeRunner(clock, failing={"berita"})
    first = make(schedulers, config, db_store, clock, runner)
    assert first.activate()
    first.tick()
    clock.advance(seconds=60)
    first.tick()
    first.close()
    second = make(schedulers, config, db_store, clock, runner)
    assert second.activate()
    assert second.failures["berita"] == 2
    assert "retry:berita:2" in {job.id for job in second.jobs()}
    clock.advance(seconds=120)
    second.tick()
    assert len(runner.times("berita")) == 3


def test_retry_delay_doubles_and_is_capped() -> None:
    delays = [retry_delay(n, 60, 3600).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_second_scheduler_stands_by_until_the_lease_lapses(
    write_config: Any, store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    db_store = store
    config = write_config(TWO_SOURCES)
    runner = FakeRunner(clock)
    first = make(schedulers, config, db_store, clock, runner, holder="host-a:11:scheduler-a")
    second = make(schedulers, config, db_store, clock, runner, holder="host-b:22:scheduler-b")
    assert first.activate()
    assert not second.activate()
    first.tick()
    # host-a dies without a word: its jobs stop, its lease stays until it expires.
    assert first.aps is not None
    first.aps.shutdown(wait=False)
    first.aps = None
    scheduler_module._ACTIVE = None  # as if its process were gone
    clock.advance(seconds=899)
    assert not second.activate()
    clock.advance(seconds=2)
    assert second.activate()
    second.tick()
    assert [name for name, _ in runner.calls] == ["berita", "kanal"]
    assert not first.renew()  # were host-a to come back, it would stand by
    assert leases.current_holder(db_store, SCHEDULER_LEASE)[0] == "host-b:22:scheduler-b"


def test_lease_of_a_dead_local_process_is_taken_over_at_once(db_store: Store) -> None:
    alive = f"{socket.gethostname()}:{os.getppid()}:scheduler-parent"
    assert leases.acquire(db_store, SCHEDULER_LEASE, alive, 900)
    assert not leases.acquire(db_store, SCHEDULER_LEASE, "elsewhere:1:x", 900)
    db_store.release_lease(SCHEDULER_LEASE, alive)
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = f"{socket.gethostname()}:{finished.pid}:scheduler-x"
    assert leases.acquire(db_store, SCHEDULER_LEASE, dead, 900)
    assert leases.acquire(db_store, SCHEDULER_LEASE, "elsewhere:1:x", 900)
    assert leases.current_holder(db_store, SCHEDULER_LEASE)[0] == "elsewhere:1:x"


def test_manual_run_skips_a_source_the_scheduler_is_running(
    write_config: Any, db_store: Store
) -> None:
    config = write_config(TWO_SOURCES)
    assert leases.acquire(db_store, "source:berita", "host-a:11:schedule-1", 900)
    report = run_once(config, db_store, sources=["berita"], score=False, link=False)
    assert report.status == "skipped"
    assert report.sources[0]["name"] == "berita"
    assert db_store.last_runs(1)[0]["status"] == "skipped"
    assert leases.current_holder(db_store, "source:berita")[0] == "host-a:11:schedule-1"


def test_a_lost_lease_fences_the_old_holders_writes(db_store: Store) -> None:
    first = LeaseKeeper(db_store, "host-a:11:run-1", 900)
    assert first.acquire(["source:berita"]) == []
    target, guard = "berita|path:berita.jsonl", first.guard("source:berita")
    db_store.write_batch([make_post(1)], source=target, cursor="c1", guard=guard)
    # The first holder stalls past its lease and a second holder takes the source over.
    later = LeaseKeeper(
        db_store, "host-b:22:run-2", 900, clock=lambda: utcnow() + timedelta(days=1)
    )
    assert later.acquire(["source:berita"]) == []
    with pytest.raises(LeaseLost, match="lease source:berita was lost"):
        db_store.write_batch([make_post(2)], source=target, cursor="c2", guard=guard)
    # Nothing of the refused page was written: neither its post nor its cursor.
    assert db_store.get_post(make_post(2).key) is None
    assert db_store.get_cursor(target) == "c1"
    assert first.is_lost("source:berita") and first.held == []
    first.release()  # gives back only what it still holds
    assert leases.current_holder(db_store, "source:berita")[0] == "host-b:22:run-2"
    later.release()


def test_status_lists_each_source(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    config = write_config(TWO_SOURCES)
    runner = FakeRunner(clock)
    scheduler = make(schedulers, config, db_store, clock, runner)
    assert scheduler.activate()
    scheduler.tick()
    at_campaign = {row["name"]: row for row in source_status(config, db_store, clock.now())}
    assert at_campaign["berita"]["phase"] == "campaign"
    assert at_campaign["berita"]["rule"] == "every 60 min"
    assert at_campaign["kanal"]["rule"] == "every 45 min"
    report = collect_status(config)  # real time: long after the election, no phase
    rows = {row["name"]: row for row in report["source_status"]}
    assert rows["berita"]["last_run"]["status"] == "ok"
    assert rows["berita"]["last_run"]["items"] == 4
    assert rows["kanal"]["next_run"] == "2024-02-05T03:45:00Z"
    text = format_status(report)
    assert "berita (file): idle; no phase, every 1440 min" in text
    assert "last run: #1 ok" in text and "4 items (3 new)" in text
    assert "next run: 2024-02-05T04:00:00Z" in text


def test_maintenance_jobs_purge_and_export(
    write_config: Any,
    db_store: Store,
    clock: FakeClock,
    schedulers: list[Scheduler],
    tmp_path: Path,
) -> None:
    config = write_config("").with_overrides(
        schedule={"purge_cron": "30 3 * * *", "export_cron": "0 6 * * *"}
    )
    clock.set(wib(2024, 2, 5, 3, 0))
    scheduler = make(schedulers, config, db_store, clock, FakeRunner(clock))
    assert scheduler.activate()
    assert {job.id for job in scheduler.jobs()} == {"maintenance:purge", "maintenance:export"}
    run_until(scheduler, clock, wib(2024, 2, 5, 6, 5))
    assert [(o.job, o.status) for o in scheduler.outcomes] == [
        ("maintenance:purge", "ok"),
        ("maintenance:export", "ok"),
    ]
    kinds = [run["kind"] for run in db_store.last_runs(5)]
    assert kinds == ["export", "purge"]
    assert (tmp_path / "out" / "review_queue-2024-02-05.csv").exists()


def test_stop_lets_the_running_batch_finish(
    write_config: Any, db_store: Store, schedulers: list[Scheduler]
) -> None:
    """Real clock and threads, no sleeping: the run waits on events, not on time."""
    started, finished = threading.Event(), threading.Event()
    batches: list[str] = []

    def runner(
        config: Config,
        store: Store,
        *,
        sources: list[str],
        stop: threading.Event,
        lease_holder: str,
        client: object = None,
    ) -> RunReport:
        run_id = store.start_run("run", sources[0])
        batches.append("batch 1 committed")
        started.set()
        stop.wait(30)  # the scheduler's stop event ends the wait, not a timeout
        batches.append("batch 2 committed, cursor saved")
        store.finish_run(run_id, "ok", {"collected": 2})
        finished.set()
        return RunReport(run_id, "ok")

    config = write_config(TWO_SOURCES.split('[[sources]]\nname = "kanal"')[0])
    scheduler = Scheduler(config, db_store, runner=runner)  # type: ignore[arg-type]
    schedulers.append(scheduler)
    thread = threading.Thread(target=scheduler.serve)
    thread.start()
    assert started.wait(30)
    scheduler.request_stop()
    thread.join(30)
    assert not thread.is_alive()
    assert finished.is_set()
    assert batches == ["batch 1 committed", "batch 2 committed, cursor saved"]
    assert db_store.last_runs(1)[0]["status"] == "ok"
    assert leases.current_holder(db_store, SCHEDULER_LEASE) is None
    assert scheduler_module._ACTIVE is None


def test_once_runs_due_jobs_then_releases_the_lease(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    runner = FakeRunner(clock)
    scheduler = make(schedulers, write_config(TWO_SOURCES), db_store, clock, runner)
    outcomes = scheduler.run_due_once()
    assert outcomes is not None
    assert sorted((o.job, o.status) for o in outcomes) == [
        ("source:berita", "ok"),
        ("source:kanal", "ok"),
    ]
    assert leases.current_holder(db_store, SCHEDULER_LEASE) is None
    other = make(schedulers, write_config(TWO_SOURCES), db_store, clock, runner)
    assert leases.acquire(db_store, SCHEDULER_LEASE, "host-z:1:scheduler", 900, clock.now())
    assert other.run_due_once() is None


def test_clock_fixture_drives_apscheduler(clock: FakeClock) -> None:
    clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    assert apscheduler.schedulers.base.datetime.now(UTC) == datetime(2030, 1, 1, tzinfo=UTC)


def test_database_failure_mid_run_fails_that_run_only(
    write_config: Any, db_store: Store, clock: FakeClock, schedulers: list[Scheduler]
) -> None:
    runner = FakeRunner(clock)
    calls = {"n": 0}

    def flaky(config: Config, store: Store, **kwargs: Any) -> RunReport:
        calls["n"] += 1
        if kwargs["sources"] == ["berita"] and calls["n"] == 1:
            raise StoreError("database error on sqlite:///netra.db: disk I/O error")
        return runner(config, store, **kwargs)

    scheduler = make(schedulers, write_config(TWO_SOURCES), db_store, clock, flaky)  # type: ignore[arg-type]
    assert scheduler.activate()
    scheduler.tick()
    (failed,) = [o for o in scheduler.outcomes if o.status == "failed"]
    assert failed.source == "berita" and "disk I/O error" in (failed.error or "")
    assert runner.times("kanal") == [clock.now()]
    clock.advance(seconds=60)
    scheduler.tick()  # the retry resumes the source
    assert runner.times("berita") == [clock.now()]
    assert scheduler.failures["berita"] == 0


def test_cli_bad_schedule_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[sources]]\nname = "a"\nplatform = "file"\n'
        'schedule = { phases = { masa_tenang = "*/15 * * *" } }\n'
    )
    assert main(["schedule", "--config", str(path), "--once"]) == 2
    error = capsys.readouterr().err
    assert "bad.toml" in error and "'sources[0].schedule.phases.masa_tenang'" in error


def test_cli_unreachable_database_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "netra.toml"
    path.write_text('[database]\nurl = "postgresql+psycopg://netra@127.0.0.1:9/netra"\n')
    assert main(["schedule", "--config", str(path), "--once"]) == 1
    assert "cannot open database postgresql+psycopg://netra@127.0.0.1:9/netra" in (
        capsys.readouterr().err
    )


def test_cli_once_with_nothing_due(
    tmp_path: Path, db_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "netra.toml"
    path.write_text(f'[database]\nurl = "{db_store.url}"\n[schedule]\nexport_cron = ""\n')
    assert main(["schedule", "--config", str(path), "--once"]) == 0
    assert capsys.readouterr().out.strip() == "no job was due"
    assert leases.current_holder(db_store, SCHEDULER_LEASE) is None


def test_score_and_link_wait_for_another_run_to_finish_them(db_store: Store) -> None:
    other = "host-a:11:run-1"
    assert leases.acquire(db_store, STAGE_LEASE, other, 900)
    keeper = LeaseKeeper(db_store, "host-b:22:run-2", 900)
    waits: list[float] = []

    def other_run_finishes(seconds: float) -> bool:
        waits.append(seconds)
        db_store.release_lease(STAGE_LEASE, other)
        return False

    assert await_stage_lease(keeper, None, 900, wait=other_run_finishes)
    assert waits == [2.0]
    assert leases.current_holder(db_store, STAGE_LEASE)[0] == "host-b:22:run-2"
    keeper.release()
    assert leases.current_holder(db_store, STAGE_LEASE) is None
    # Held for good: give up when patience runs out, or at once when asked to stop.
    assert leases.acquire(db_store, STAGE_LEASE, other, 900)
    with LeaseKeeper(db_store, "host-b:22:run-3", 900) as waiting:
        assert not await_stage_lease(waiting, None, 0.0, wait=lambda seconds: False)
        assert not await_stage_lease(waiting, None, 900, wait=lambda seconds: True)
        assert waiting.held == []


def test_webhook_without_its_secret_is_a_config_error(
    write_config: Any, db_store: Store, tmp_path: Path
) -> None:
    config = write_config(TWO_SOURCES).with_overrides(
        webhook={"url": "https://hooks.example/netra", "secret_env": "NETRA_TEST_HOOK_SECRET"}
    )
    with pytest.raises(ConfigError, match="NETRA_TEST_HOOK_SECRET"):
        Scheduler(config, db_store, environ={})
    scheduler = Scheduler(config, db_store, environ={"NETRA_TEST_HOOK_SECRET": "rahasia"})
    assert scheduler.webhook is not None and scheduler.webhook.secret == "rahasia"
    scheduler.close()
