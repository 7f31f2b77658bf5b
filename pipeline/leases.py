"""Leases: at most one holder runs a source (or the scheduler) at a time, across processes.

A lease is a row in the `leases` table with a holder and an expiry; the holder renews it while
it works. A holder is `host:pid:token`, so a lease left behind by a process that died on this
host (`kill -9`) is taken over at once instead of blocking the source until it expires.

A holder can still lose a lease (a stall longer than the lease lets it lapse and another process
takes it). `LeaseKeeper.guard` fences writes against that: checked inside the transaction that
stores a page and its cursor, it refuses the page once the lease belongs to someone else.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import Connection, select, update

from pipeline import schema
from pipeline.errors import CollectorError
from pipeline.store import Store, utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class LeaseLost(CollectorError):
    """Another holder took a lease this process was working under; its work there stopped."""

    # A CollectorError so the collect step records it against the source and goes on with the
    # other sources, as it does for any source that cannot be collected.
    def __init__(self, name: str) -> None:
        super().__init__(
            f"lease {name} was lost to another holder: stopped collecting at a page boundary "
            "(every page stored so far was stored with its cursor)"
        )
        self.name = name


def source_lease(name: str) -> str:
    """The lease name that guards a configured source."""
    return f"source:{name}"


def new_holder(role: str = "run") -> str:
    """A holder id unique to this process and call: `host:pid:role-token`."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def holder_is_dead(holder: str) -> bool:
    """True when the holder is a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and not _pid_alive(pid)


def current_holder(store: Store, name: str) -> tuple[str, datetime] | None:
    """The holder of a lease and its expiry, or None when nobody holds it."""
    table = schema.leases
    with store.connect() as conn:
        row = conn.execute(
            select(table.c.holder, table.c.expires_at).where(table.c.name == name)
        ).first()
    return (row.holder, row.expires_at) if row else None


def acquire(
    store: Store, name: str, holder: str, seconds: float, now: datetime | None = None
) -> bool:
    """Take or renew a lease; a lease held by a dead process on this host is taken over."""
    moment = now or utcnow()
    if store.acquire_lease(name, holder, seconds, moment):
        return True
    found = current_holder(store, name)
    if found is None or not holder_is_dead(found[0]):
        return False
    table = schema.leases
    with store.transaction() as conn:
        # Conditional on the dead holder, so two processes taking over cannot both win.
        taken = conn.execute(
            update(table)
            .where(table.c.name == name, table.c.holder == found[0])
            .values(holder=holder, expires_at=moment + timedelta(seconds=seconds))
        ).rowcount
    if taken:
        log.warning("lease %s: took over from %s, which is no longer running", name, found[0])
    return bool(taken)


class LeaseKeeper:
    """Holds a set of leases and renews them in a background thread until released."""

    def __init__(
        self,
        store: Store,
        holder: str,
        seconds: float,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.holder = holder
        self.seconds = seconds
        self.clock = clock
        self.held: list[str] = []
        self.lost: list[str] = []
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def acquire(self, names: Iterable[str]) -> list[str]:
        """Try each lease; returns the names that another holder has (busy)."""
        busy: list[str] = []
        for name in names:
            if acquire(self.store, name, self.holder, self.seconds, self.clock()):
                with self._lock:
                    self.held.append(name)
            else:
                busy.append(name)
        if self.held and self._thread is None:
            self._thread = threading.Thread(
                target=self._renew_loop, name="lease-keeper", daemon=True
            )
            self._thread.start()
        return busy

    def _renew_loop(self) -> None:
        # Renew well before expiry so one slow renewal does not let the lease lapse.
        interval = max(1.0, self.seconds / 3)
        while not self._done.wait(interval):
            with self._lock:
                names = list(self.held)
            for name in names:
                try:
                    renewed = acquire(self.store, name, self.holder, self.seconds, self.clock())
                except Exception as exc:  # a database hiccup: try again next round
                    log.warning("lease %s: renewal failed: %s", name, exc)
                    continue
                if not renewed:
                    self._mark_lost(name)

    def _mark_lost(self, name: str) -> None:
        with self._lock:
            if name in self.lost:
                return
            if name in self.held:
                self.held.remove(name)
            self.lost.append(name)
        log.error("lease %s: lost to another holder while running", name)

    def is_lost(self, name: str) -> bool:
        """Whether lease `name` was held and then lost to another holder."""
        with self._lock:
            return name in self.lost

    def guard(self, name: str) -> Callable[[Connection], None]:
        """A `Store.write_batch` guard: raises LeaseLost unless this keeper still holds `name`.

        The check runs in the write's own transaction, so a page is stored with its cursor only
        while the lease is ours, even if the renewal thread has not noticed the loss yet.
        """

        def check(conn: Connection) -> None:
            if self.is_lost(name):
                raise LeaseLost(name)
            table = schema.leases
            # An UPDATE, not a SELECT: it takes the row (PostgreSQL) or the database (SQLite)
            # for the rest of the transaction, so no takeover can slip in before the commit.
            held = conn.execute(
                update(table)
                .where(table.c.name == name, table.c.holder == self.holder)
                .values(holder=self.holder)
            ).rowcount
            if not held:
                self._mark_lost(name)
                raise LeaseLost(name)

        return check

    def release(self) -> None:
        """Stop renewing and give every held lease back."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            names, self.held = list(self.held), []
        for name in names:
            try:
                self.store.release_lease(name, self.holder)
            except Exception as exc:  # expiry frees it anyway
                log.warning("lease %s: could not be released (it will expire): %s", name, exc)

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
