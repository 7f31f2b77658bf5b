"""The store: SQLAlchemy 2 Core over SQLite (embedded default) or PostgreSQL (by URL).

Every write is one transaction: a batch of posts and the source cursor that follows it commit
together or not at all, so a crash between batches loses nothing and duplicates nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from pipeline import schema
from pipeline.errors import ConfigError, StoreError
from pipeline.records import Post, Score, content_hash

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_BATCH_SIZE = 2000


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def clean_text(text: str) -> str:
    """Text as stored: NUL cannot live in a PostgreSQL text column, so it becomes U+FFFD."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


@dataclass
class WriteResult:
    """What a write did: new posts, posts whose text changed (new version), unchanged ones."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    new_keys: list[str] = field(default_factory=list)

    def add(self, other: WriteResult) -> None:
        """Accumulate another result into this one."""
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.new_keys.extend(other.new_keys)

    @property
    def total(self) -> int:
        """Posts seen."""
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True)
class StoredPost:
    """A post as stored, with its primary key and bookkeeping."""

    pk: int
    post: Post
    text_hash: str
    version: int
    first_seen: datetime
    last_seen: datetime
    source: str | None = None

    @property
    def key(self) -> str:
        """`platform:post_id`."""
        return self.post.key

    @property
    def text(self) -> str:
        """The captured text."""
        return self.post.text


# Query options of a database URL that hold secrets (libpq takes `?password=` too).
_SECRET_QUERY = ("password", "passfile", "sslpassword", "token", "secret", "key")


def redact_url(url: str) -> str:
    """A database URL safe to print (passwords hidden; an unparsable one is not shown at all)."""
    try:
        parsed = make_url(url)
        secret = [key for key in parsed.query if any(part in key.lower() for part in _SECRET_QUERY)]
        if secret:
            parsed = parsed.update_query_dict(dict.fromkeys(secret, "***"))
        return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "<invalid database URL>"


def _post_from_row(row: Any) -> Post:
    return Post(
        platform=row.platform,
        post_id=row.post_id,
        url=row.url,
        author_id=row.author_id,
        author_handle=row.author_handle,
        author_name=row.author_name,
        author_bio=row.author_bio,
        text=row.text,
        created_at=row.created_at,
        parent_id=row.parent_id,
        kind=row.kind,
        lang=row.lang,
        metrics=row.metrics or {},
        raw=row.raw,
    )


def stored_post_from_row(row: Any) -> StoredPost:
    """Build a StoredPost from a `posts` row."""
    return StoredPost(
        pk=row.id,
        post=_post_from_row(row),
        text_hash=row.text_hash,
        version=row.version,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        source=row.source,
    )


class Store:
    """Access to Netra's database; one instance per process, safe across threads."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:
            # Neither the URL nor the parser's message: either can carry the password.
            raise ConfigError(
                "database.url: not a valid database URL (expected "
                "dialect+driver://user:password@host:port/database or sqlite:///path)"
            ) from exc
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            else:
                kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise ConfigError(f"database.url: cannot use {redact_url(url)}: {exc}") from exc
        except ValueError as exc:
            # A bad query value (`?timeout=abc`); its message may quote any part of the URL.
            raise ConfigError(
                f"database.url: cannot use {redact_url(url)}: an option in it has an invalid value"
            ) from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite allows one writer; serialise this process's writers instead of retrying.
        self._write_lock = threading.RLock() if self.is_sqlite else contextlib.nullcontext()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return redact_url(self.url)

    def _alembic_config(self, connection: Connection) -> AlembicConfig:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        return config

    def head_revision(self) -> str | None:
        """The newest migration this code knows."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        return ScriptDirectory.from_config(config).get_current_head()

    def current_revision(self) -> str | None:
        """The migration the database is at (None for an empty database)."""
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except OperationalError as exc:
            raise StoreError(f"cannot open database {self.display_url}: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {self.display_url}: {exc}") from exc

    def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Create or upgrade the schema in place; returns (from, to) revisions."""
        before = self.current_revision()
        try:
            with self._write_lock, self.engine.begin() as conn:
                command.upgrade(self._alembic_config(conn), revision)
        except SQLAlchemyError as exc:
            raise StoreError(f"migration failed on {self.display_url}: {exc}") from exc
        return before, self.current_revision()

    def require_schema(self) -> None:
        """Raise StoreError unless the database is at the newest migration."""
        current, head = self.current_revision(), self.head_revision()
        if current is None:
            raise StoreError(
                f"database {self.display_url} is not initialised: run `netra init` first"
            )
        if current != head:
            raise StoreError(
                f"database {self.display_url} is at schema {current}, this Netra needs {head}: "
                "run `netra init` to upgrade"
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (serialised per process on SQLite)."""
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    yield conn
            except OperationalError as exc:
                raise StoreError(f"database error on {self.display_url}: {exc.orig}") from exc

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database error on {self.display_url}: {exc.orig}") from exc

    # -- posts -----------------------------------------------------------------------------

    def write_batch(
        self,
        posts: Sequence[Post],
        *,
        source: str | None = None,
        cursor: str | None = None,
        now: datetime | None = None,
        guard: Callable[[Connection], None] | None = None,
    ) -> WriteResult:
        """Store posts and (optionally) the source's cursor in one transaction.

        `guard` runs first inside that transaction; if it raises, nothing is written (a run
        checks there that it still holds the source's lease).
        """
        seen_at = now or utcnow()
        with self.transaction() as conn:
            if guard is not None:
                guard(conn)
            result = self._write_posts(conn, posts, source, seen_at)
            if source is not None and cursor is not None:
                self._save_cursor(conn, source, cursor, seen_at)
        return result

    def write_stream(
        self,
        posts: Iterable[Post],
        *,
        source: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_batch: Callable[[int], None] | None = None,
    ) -> WriteResult:
        """Stream posts in batches inside ONE transaction: all are stored or none is."""
        total = WriteResult()
        now = utcnow()
        with self.transaction() as conn:
            batch: list[Post] = []
            for post in posts:
                batch.append(post)
                if len(batch) >= batch_size:
                    total.add(self._write_posts(conn, batch, source, now))
                    if on_batch:
                        on_batch(len(batch))
                    batch = []
            if batch:
                total.add(self._write_posts(conn, batch, source, now))
                if on_batch:
                    on_batch(len(batch))
        return total

    def _write_posts(
        self, conn: Connection, posts: Sequence[Post], source: str | None, now: datetime
    ) -> WriteResult:
        result = WriteResult()
        rounds = _capture_rounds(posts)
        for captures in rounds:
            result.add(self._write_round(conn, captures, source, now))
        # A repeat of a text already in the batch is counted as a later batch would count it.
        result.unchanged += len(posts) - sum(len(captures) for captures in rounds)
        if posts:
            self._upsert_authors(conn, posts, now)
        return result

    def _write_round(
        self,
        conn: Connection,
        unique: dict[tuple[str, str], _Capture],
        source: str | None,
        now: datetime,
    ) -> WriteResult:
        """Write captures of distinct posts (one per key), as `_capture_rounds` groups them."""
        result = WriteResult()
        existing: dict[tuple[str, str], Any] = {}
        by_platform: dict[str, list[str]] = {}
        for platform, post_id in unique:
            by_platform.setdefault(platform, []).append(post_id)
        table = schema.posts
        for platform, ids in by_platform.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    select(
                        table.c.id,
                        table.c.platform,
                        table.c.post_id,
                        table.c.text_hash,
                        table.c.version,
                    ).where(table.c.platform == platform, table.c.post_id.in_(chunk))
                )
                for row in rows:
                    existing[(row.platform, row.post_id)] = row
        inserts: list[_Capture] = []
        touches: list[dict[str, Any]] = []
        changed: list[tuple[Any, _Capture]] = []
        for identity, capture in unique.items():
            post, text, digest = capture
            row = existing.get(identity)
            if row is None:
                inserts.append(capture)
                result.new_keys.append(post.key)
            elif row.text_hash == digest:
                touches.append({"b_id": row.id, "b_metrics": dict(post.metrics), "b_seen": now})
            else:
                changed.append((row, capture))
        if inserts:
            self._bulk_insert_posts(conn, inserts, source, now)
            result.inserted = len(inserts)
        if touches:
            conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(
                    metrics=bindparam("b_metrics", schema.JSONText()), last_seen=bindparam("b_seen")
                ),
                touches,
            )
            result.unchanged = len(touches)
        for row, (post, text, digest) in changed:
            self._supersede(conn, row.id, now)
            values = _post_values(post, text, digest)
            values.update(version=row.version + 1, first_seen=now, last_seen=now)
            conn.execute(update(table).where(table.c.id == row.id).values(**values))
            result.updated += 1
        return result

    def _supersede(self, conn: Connection, post_pk: int, now: datetime) -> None:
        """Copy a post's current content into post_versions before it is replaced."""
        p = schema.posts
        old = conn.execute(select(p).where(p.c.id == post_pk)).one()
        conn.execute(
            insert(schema.post_versions).values(
                post_pk=post_pk,
                version=old.version,
                url=old.url,
                author_handle=old.author_handle,
                author_name=old.author_name,
                author_bio=old.author_bio,
                text=old.text,
                text_hash=old.text_hash,
                metrics=old.metrics,
                raw=old.raw,
                captured_at=old.first_seen,
                superseded_at=now,
            )
        )

    def _db_time(self, value: datetime) -> Any:
        """A datetime in the form the driver stores for UTCDateTime (bulk paths skip SQLAlchemy)."""
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # SQLAlchemy's SQLite DATETIME text format, so reads through the ORM types agree.
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if self.is_sqlite else naive

    def _executemany(self, conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """executemany straight on the driver: the per-row SQLAlchemy overhead dominates imports."""
        if not self.is_sqlite:
            sql = sql.replace("?", "%s")
        conn.exec_driver_sql(sql, rows)

    def _bulk_insert_posts(
        self, conn: Connection, rows: list[tuple[Post, str, str]], source: str | None, now: datetime
    ) -> None:
        seen = self._db_time(now)
        values = [
            (
                post.platform,
                post.post_id,
                post.url,
                post.author_id,
                post.author_handle,
                post.author_name,
                post.author_bio,
                text,
                digest,
                self._db_time(post.created_at),
                post.parent_id,
                post.kind,
                post.lang,
                schema.dump_json(dict(post.metrics)),
                None if post.raw is None else schema.dump_json(post.raw),
                source,
                1,
                seen,
                seen,
            )
            for post, text, digest in rows
        ]
        placeholders = ", ".join("?" for _ in _BULK_POST_COLUMNS)
        self._executemany(
            conn,
            f"INSERT INTO posts ({', '.join(_BULK_POST_COLUMNS)}) VALUES ({placeholders})",
            values,
        )

    def _upsert_authors(self, conn: Connection, posts: Iterable[Post], now: datetime) -> None:
        rows: dict[tuple[str, str], tuple[Any, ...]] = {}
        seen = self._db_time(now)
        for post in posts:
            key = post.author_id or (
                f"@{post.author_handle.lower()}" if post.author_handle else None
            )
            if key is None:
                continue
            rows[(post.platform, key)] = (
                post.platform,
                key,
                post.author_id,
                post.author_handle,
                post.author_name,
                post.author_bio,
                seen,
                seen,
            )
        if not rows:
            return
        # Same ON CONFLICT syntax on SQLite (>= 3.24) and PostgreSQL; sorted to avoid deadlocks
        # between concurrent writers on PostgreSQL.
        self._executemany(
            conn,
            "INSERT INTO authors (platform, author_key, author_id, handle, name, bio, first_seen,"
            " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, author_key) DO"
            " UPDATE SET handle = COALESCE(excluded.handle, authors.handle),"
            " name = COALESCE(excluded.name, authors.name),"
            " bio = COALESCE(excluded.bio, authors.bio), last_seen = excluded.last_seen",
            [rows[key] for key in sorted(rows)],
        )

    def get_post(self, key: str) -> StoredPost | None:
        """The stored post with key `platform:post_id`, or None."""
        platform, _, post_id = key.partition(":")
        p = schema.posts
        with self.connect() as conn:
            row = conn.execute(
                select(p).where(p.c.platform == platform, p.c.post_id == post_id)
            ).first()
        return stored_post_from_row(row) if row else None

    def post_versions(self, post_pk: int) -> list[dict[str, Any]]:
        """Earlier versions of a post, oldest first."""
        v = schema.post_versions
        with self.connect() as conn:
            rows = conn.execute(select(v).where(v.c.post_pk == post_pk).order_by(v.c.version))
            return [dict(row._mapping) for row in rows]

    def iter_posts(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[StoredPost]:
        """Every stored post, in primary-key order, read in batches."""
        p = schema.posts
        last = 0
        while True:
            with self.connect() as conn:
                rows = conn.execute(
                    select(p).where(p.c.id > last).order_by(p.c.id).limit(batch_size)
                ).all()
            if not rows:
                return
            for row in rows:
                yield stored_post_from_row(row)
            last = rows[-1].id

    def iter_unscored(
        self, model_version: str, batch_size: int = 1000
    ) -> Iterator[list[StoredPost]]:
        """Batches of posts whose current text has no score from `model_version`."""
        p, s = schema.posts, schema.scores
        last = 0
        while True:
            scored = (
                select(s.c.id)
                .where(
                    s.c.post_pk == p.c.id,
                    s.c.model_version == model_version,
                    s.c.text_hash == p.c.text_hash,
                )
                .exists()
            )
            with self.connect() as conn:
                rows = conn.execute(
                    select(p).where(p.c.id > last, ~scored).order_by(p.c.id).limit(batch_size)
                ).all()
            if not rows:
                return
            yield [stored_post_from_row(row) for row in rows]
            last = rows[-1].id

    def write_scores(self, rows: Sequence[tuple[int, Score]], now: datetime | None = None) -> int:
        """Store scores (post pk, Score); returns how many were for the post's current text.

        A score is filed under the hash of the text it was computed on (`Score.text_hash`). If
        the post was edited since that text was read, the score is dropped, not stored: the post
        stays unscored for that model and is scored again on its new text. A score already
        stored for a text is kept.
        """
        if not rows:
            return 0
        scored_at = now or utcnow()
        p, s = schema.posts, schema.scores
        with self.transaction() as conn:
            current = dict(
                conn.execute(
                    select(p.c.id, p.c.text_hash).where(p.c.id.in_([pk for pk, _ in rows]))
                ).all()
            )
            values = []
            for pk, score in rows:
                text_hash = current.get(pk)
                # An edit committed after this read cannot misfile the score either: it is kept
                # under the hash read here, which is the hash of the text that was scored.
                if text_hash is None or score.text_hash not in (None, text_hash):
                    continue
                values.append(
                    {
                        "post_pk": pk,
                        "text_hash": text_hash,
                        "model_version": score.model_version,
                        "score": float(score.score),
                        "label": score.label,
                        "threshold": float(score.threshold),
                        "explanation": [list(item) for item in score.explanation],
                        "contestants": list(score.contestants),
                        "flags": list(score.flags),
                        "scored_at": scored_at,
                    }
                )
            if len(values) < len(rows):
                log.info(
                    "%d score(s) not stored: the post was edited or removed while it was scored",
                    len(rows) - len(values),
                )
            if values:
                dialect = postgresql if not self.is_sqlite else sqlite
                statement = dialect.insert(s).on_conflict_do_nothing(
                    index_elements=["post_pk", "model_version", "text_hash"]
                )
                conn.execute(statement, values)
        return len(values)

    def latest_score(self, post_pk: int, model_version: str | None = None) -> dict[str, Any] | None:
        """The newest score of a post's current text (optionally from one model)."""
        p, s = schema.posts, schema.scores
        query = (
            select(s)
            .join(p, p.c.id == s.c.post_pk)
            .where(s.c.post_pk == post_pk, s.c.text_hash == p.c.text_hash)
            .order_by(s.c.scored_at.desc(), s.c.id.desc())
            .limit(1)
        )
        if model_version is not None:
            query = query.where(s.c.model_version == model_version)
        with self.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    # -- sources, runs, tips, leases -----------------------------------------------------------

    def _save_cursor(self, conn: Connection, source: str, cursor: str, now: datetime) -> None:
        dialect = postgresql if not self.is_sqlite else sqlite
        statement = dialect.insert(schema.sources).values(
            name=source, cursor=cursor, updated_at=now
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["name"],
                set_={"cursor": statement.excluded.cursor, "updated_at": now},
            )
        )

    def save_cursor(self, source: str, cursor: str) -> None:
        """Save a source's checkpoint on its own (normally done by `write_batch`)."""
        with self.transaction() as conn:
            self._save_cursor(conn, source, cursor, utcnow())

    def get_cursor(self, source: str) -> str | None:
        """The saved checkpoint of a source, or None before its first batch."""
        with self.connect() as conn:
            return conn.execute(
                select(schema.sources.c.cursor).where(schema.sources.c.name == source)
            ).scalar()

    def start_run(self, kind: str, source: str | None = None) -> int:
        """Record the start of a run; returns its id."""
        with self.transaction() as conn:
            return int(
                conn.execute(
                    insert(schema.runs).values(
                        kind=kind, source=source, started_at=utcnow(), status="running"
                    )
                ).inserted_primary_key[0]
            )

    def finish_run(
        self,
        run_id: int,
        status: str,
        counters: dict[str, Any] | None = None,
        errors: Sequence[str] | None = None,
    ) -> None:
        """Record the end of a run with its outcome, counters and errors."""
        with self.transaction() as conn:
            conn.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id)
                .values(
                    finished_at=utcnow(),
                    status=status,
                    counters=counters or {},
                    errors=list(errors or []),
                )
            )

    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The most recent runs, newest first."""
        r = schema.runs
        with self.connect() as conn:
            rows = conn.execute(select(r).order_by(r.c.id.desc()).limit(limit))
            return [dict(row._mapping) for row in rows]

    def add_tip(
        self,
        post: Post,
        reporter: str | None = None,
        screenshot: str | None = None,
        screenshot_sha256: str | None = None,
    ) -> int:
        """Store a tip's post, with the reporter's identity kept in a separate table."""
        now = utcnow()
        with self.transaction() as conn:
            self._write_posts(conn, [post], "tips", now)
            p = schema.posts
            post_pk = conn.execute(
                select(p.c.id).where(p.c.platform == post.platform, p.c.post_id == post.post_id)
            ).scalar_one()
            tip_id = int(
                conn.execute(
                    insert(schema.tips).values(
                        post_pk=post_pk,
                        screenshot=screenshot,
                        screenshot_sha256=screenshot_sha256,
                        received_at=now,
                    )
                ).inserted_primary_key[0]
            )
            if reporter:
                conn.execute(insert(schema.tip_reporters).values(tip_id=tip_id, reporter=reporter))
        return tip_id

    def acquire_lease(
        self, name: str, holder: str, seconds: float, now: datetime | None = None
    ) -> bool:
        """Take (or renew) a named lease unless another holder has an unexpired one."""
        moment = now or utcnow()
        expires = moment + timedelta(seconds=seconds)
        table = schema.leases
        with self.transaction() as conn:
            dialect = postgresql if not self.is_sqlite else sqlite
            statement = dialect.insert(table).values(name=name, holder=holder, expires_at=expires)
            statement = statement.on_conflict_do_update(
                index_elements=["name"],
                set_={"holder": holder, "expires_at": expires},
                where=(table.c.holder == holder) | (table.c.expires_at < moment),
            )
            conn.execute(statement)
            current = conn.execute(select(table.c.holder).where(table.c.name == name)).scalar()
        return current == holder

    def release_lease(self, name: str, holder: str) -> None:
        """Give a lease back (only its holder can)."""
        table = schema.leases
        with self.transaction() as conn:
            conn.execute(delete(table).where(table.c.name == name, table.c.holder == holder))

    # -- reporting -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for `netra status`)."""
        result: dict[str, int] = {}
        with self.connect() as conn:
            for name, table in schema.metadata.tables.items():
                result[name] = int(
                    conn.execute(select(func.count()).select_from(table)).scalar() or 0
                )
        return result


# A post as it will be stored: the Post, its stored text and that text's hash.
_Capture = tuple[Post, str, str]


def _capture_rounds(posts: Sequence[Post]) -> list[dict[tuple[str, str], _Capture]]:
    """Split a batch into rounds that each hold a post at most once, in capture order.

    Written in order, the rounds store exactly what one batch per capture would: each change of
    a post's text within the batch starts its next round, so an edit becomes a new version and
    the text before it is kept in post_versions. A repeat of the same text only refreshes the
    metrics, as a later batch would.
    """
    rounds: list[dict[tuple[str, str], _Capture]] = []
    latest: dict[tuple[str, str], int] = {}
    for post in posts:
        identity = (post.platform, post.post_id)
        text = clean_text(post.text)
        digest = content_hash(text)
        index = latest.get(identity)
        if index is not None:
            held, held_text, held_digest = rounds[index][identity]
            if held_digest == digest:
                refreshed = dataclasses.replace(held, metrics=post.metrics)
                rounds[index][identity] = (refreshed, held_text, held_digest)
                continue
            index += 1
        else:
            index = 0
        if index == len(rounds):
            rounds.append({})
        rounds[index][identity] = (post, text, digest)
        latest[identity] = index
    return rounds


_BULK_POST_COLUMNS: tuple[str, ...] = (
    "platform",
    "post_id",
    "url",
    "author_id",
    "author_handle",
    "author_name",
    "author_bio",
    "text",
    "text_hash",
    "created_at",
    "parent_id",
    "kind",
    "lang",
    "metrics",
    "raw",
    "source",
    "version",
    "first_seen",
    "last_seen",
)


def _post_values(post: Post, text: str, digest: str) -> dict[str, Any]:
    return {
        "platform": post.platform,
        "post_id": post.post_id,
        "url": post.url,
        "author_id": post.author_id,
        "author_handle": post.author_handle,
        "author_name": post.author_name,
        "author_bio": post.author_bio,
        "text": text,
        "text_hash": digest,
        "created_at": post.created_at,
        "parent_id": post.parent_id,
        "kind": post.kind,
        "lang": post.lang,
        "metrics": dict(post.metrics),
        "raw": post.raw,
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (status, review) work while a run writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_store(url: str, *, echo: bool = False, require_schema: bool = True) -> Store:
    """Open the store at `url`, checking (by default) that its schema is current."""
    store = Store(url, echo=echo)
    if require_schema:
        store.require_schema()
    return store
