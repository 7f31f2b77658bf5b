"""Shared fixtures: stores on SQLite (always) and PostgreSQL (when a server is configured)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pipeline.records import Post
from pipeline.store import Store

POSTGRES_URL = os.environ.get("NETRA_TEST_POSTGRES_URL")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
NETRA = str(Path(sys.executable).parent / "netra")


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend (PostgreSQL skipped without NETRA_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'netra.db'}"
    if not POSTGRES_URL:
        pytest.skip("set NETRA_TEST_POSTGRES_URL to run PostgreSQL store tests")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """An initialised store on each backend."""
    instance = Store(database_url)
    instance.upgrade()
    yield instance
    instance.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """An initialised SQLite store (for tests that need only one backend)."""
    instance = Store(f"sqlite:///{tmp_path / 'netra.db'}")
    instance.upgrade()
    yield instance
    instance.close()


def make_post(number: int = 1, **changes: object) -> Post:
    """An invented post for tests."""
    values: dict[str, object] = {
        "platform": "x",
        "post_id": str(1000 + number),
        "url": f"https://x.com/warga_{number}/status/{1000 + number}",
        "author_id": f"u{number % 7}",
        "author_handle": f"warga_{number % 7}",
        "author_name": f"Warga {number % 7}",
        "author_bio": "pecinta kopi",
        "text": f"postingan nomor {number} hari ini macet bgt di jalan raya",
        "created_at": datetime(2024, 1, 10, tzinfo=UTC) + timedelta(minutes=number),
        "metrics": {"likes": number},
        "raw": {"id": str(1000 + number)},
    }
    values.update(changes)
    return Post(**values)  # type: ignore[arg-type]


def netra(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script without the caller's NETRA_* settings, plus `env`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NETRA_")}
    environment.update(env or {})
    return subprocess.run(
        [NETRA, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
