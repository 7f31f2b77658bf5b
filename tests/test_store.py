"""The store on SQLite and PostgreSQL: idempotence, versions, transactions, migrations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import inspect

from pipeline.errors import ConfigError, StoreError
from pipeline.records import Post, Score
from pipeline.store import Store, redact_url
from tests.conftest import make_post, netra


def test_writing_the_same_post_twice_stores_it_once(store: Store) -> None:
    first = store.write_batch([make_post(1), make_post(2)])
    again = store.write_batch([make_post(1), make_post(2)])
    assert (first.inserted, again.inserted, again.unchanged) == (2, 0, 2)
    assert store.counts()["posts"] == 2
    assert store.get_post("x:1001").post == make_post(1)  # type: ignore[union-attr]


def test_an_edited_post_keeps_its_earlier_version(store: Store) -> None:
    store.write_batch([make_post(1)])
    edited = dataclasses.replace(make_post(1), text="teks sudah diedit")
    result = store.write_batch([edited])
    assert result.updated == 1
    stored = store.get_post("x:1001")
    assert stored is not None and stored.text == "teks sudah diedit" and stored.version == 2
    (old,) = store.post_versions(stored.pk)
    assert old["text"] == make_post(1).text
    assert old["text_hash"] == make_post(1).text_hash


def test_metrics_refresh_without_a_new_version(store: Store) -> None:
    store.write_batch([make_post(1)])
    store.write_batch([dataclasses.replace(make_post(1), metrics={"likes": 99})])
    stored = store.get_post("x:1001")
    assert stored is not None and stored.version == 1
    assert stored.post.metrics == {"likes": 99}


def test_cursor_commits_with_its_batch(store: Store) -> None:
    store.write_batch([make_post(1)], source="src|tag:a", cursor="page-2")
    assert store.get_cursor("src|tag:a") == "page-2"
    assert store.get_cursor("unknown") is None


def test_a_failing_batch_leaves_nothing_half_written(store: Store) -> None:
    store.write_batch([make_post(1)], source="s", cursor="c1")

    def broken() -> list[Post]:
        def posts():  # type: ignore[no-untyped-def]
            yield make_post(2)
            yield make_post(3)
            raise RuntimeError("disk on fire")

        return posts()  # type: ignore[return-value]

    with pytest.raises(RuntimeError):
        store.write_stream(broken(), source="s", batch_size=1)
    assert store.counts()["posts"] == 1
    assert store.get_cursor("s") == "c1"
    assert store.get_post("x:1001") is not None


def test_nul_bytes_and_markup_are_stored_as_data(store: Store) -> None:
    post = make_post(1, text="<script>alert(1)</script>\x00=HYPERLINK()")
    store.write_batch([post])
    stored = store.get_post("x:1001")
    assert stored is not None
    assert stored.text == "<script>alert(1)</script>\ufffd=HYPERLINK()"


def test_scores_are_kept_per_model_and_text(store: Store) -> None:
    store.write_batch([make_post(1), make_post(2)])
    batches = list(store.iter_unscored("m1"))
    assert sum(len(b) for b in batches) == 2
    pk = batches[0][0].pk
    score = Score(post_key="x:1001", model_version="m1", score=0.9, label="partisan", threshold=0.5)
    assert store.write_scores([(pk, score)]) == 1
    assert store.write_scores([(pk, score)]) == 1  # second write is ignored, not duplicated
    assert store.counts()["scores"] == 1
    assert [p.key for batch in store.iter_unscored("m1") for p in batch] == ["x:1002"]
    latest = store.latest_score(pk)
    assert latest is not None and latest["score"] == 0.9
    # an edit makes the post unscored again for that model
    store.write_batch([dataclasses.replace(make_post(1), text="baru")])
    assert {p.key for batch in store.iter_unscored("m1") for p in batch} == {"x:1001", "x:1002"}


def test_runs_are_recorded(store: Store) -> None:
    run_id = store.start_run("run")
    store.finish_run(run_id, "partial", {"collected": 3}, ["yt: NETRA_YOUTUBE_API_KEY missing"])
    (run,) = store.last_runs()
    assert run["status"] == "partial" and run["counters"] == {"collected": 3}
    assert run["errors"] == ["yt: NETRA_YOUTUBE_API_KEY missing"]
    assert run["finished_at"] >= run["started_at"]


def test_leases_exclude_other_holders(store: Store) -> None:
    assert store.acquire_lease("source:a", "p1", 60)
    assert not store.acquire_lease("source:a", "p2", 60)
    store.release_lease("source:a", "p1")
    assert store.acquire_lease("source:a", "p2", 60)


def test_redact_url_hides_passwords_in_the_query_too() -> None:
    # libpq takes ?password=...; `netra status` prints the URL
    url = "postgresql://netra@127.0.0.1:5432/netra?password=Sup3rS3cret&sslmode=require"
    shown = redact_url(url)
    assert "Sup3rS3cret" not in shown and "password=***" in shown and "sslmode=require" in shown
    assert redact_url("postgresql://netra:Sup3rS3cret@h/db") == "postgresql://netra:***@h/db"


@pytest.mark.parametrize(
    "url",
    ["user:s3cret@host/db", "postgresql+psycopg://u:s3cret@host:notaport/db"],
)
def test_a_malformed_url_is_a_config_error_without_its_password(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Store(url)
    assert "database.url" in str(info.value) and "s3cret" not in str(info.value)
    assert info.value.exit_code == 2
    assert "s3cret" not in redact_url(url)
    # The command line names the variable the URL came from, exits 2 and shows no traceback.
    result = netra("status", cwd=tmp_path, env={"NETRA_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    assert "environment variable NETRA_DATABASE_URL" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_uninitialised_database_is_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError, match="netra init"):
        store.require_schema()


def test_upgrade_in_place_keeps_existing_data(database_url: str) -> None:
    store = Store(database_url)
    store.upgrade("0001")  # a database deployed by the first release
    store.write_batch([make_post(1)], source="s", cursor="c1")
    with pytest.raises(StoreError, match="netra init"):
        store.require_schema()
    before, after = store.upgrade()
    assert before == "0001" and after == store.head_revision()
    store.require_schema()
    assert store.get_post("x:1001") is not None
    assert store.get_cursor("s") == "c1"
    tables = set(inspect(store.engine).get_table_names())
    assert {"posts", "post_versions", "authors", "sources", "runs", "scores"} <= tables
    store.close()


def _history(store: Store, key: str) -> tuple[str, int, list[str], dict[str, int]]:
    stored = store.get_post(key)
    assert stored is not None
    earlier = [version["text"] for version in store.post_versions(stored.pk)]
    return stored.text, stored.version, earlier, dict(stored.post.metrics)


def test_an_edit_captured_in_the_same_batch_is_stored_as_two_batches_would(store: Store) -> None:
    def captures(number: int) -> list[Post]:
        first = make_post(number, text="Ayo coblos nomor 2 (asli)", metrics={"likes": 1})
        return [
            first,
            dataclasses.replace(first, metrics={"likes": 2}),  # same text: metrics only
            make_post(number + 1),
            make_post(number, text="Hari ini upacara (sudah diedit)", metrics={"likes": 3}),
            make_post(number, text="Ayo coblos nomor 2 (asli)", metrics={"likes": 4}),  # reverted
        ]

    for post in captures(10):
        store.write_batch([post])
    in_one = store.write_batch(captures(20))
    assert (in_one.inserted, in_one.updated, in_one.unchanged) == (2, 2, 1)
    assert in_one.new_keys == ["x:1020", "x:1021"]
    assert _history(store, "x:1020") == _history(store, "x:1010")
    assert _history(store, "x:1020") == (
        "Ayo coblos nomor 2 (asli)",
        3,
        ["Ayo coblos nomor 2 (asli)", "Hari ini upacara (sudah diedit)"],
        {"likes": 4},
    )
    # the same through the streaming import path, on a post that is already stored
    store.write_stream(captures(20)[3:])
    assert _history(store, "x:1020")[1:3] == (
        5,
        [
            "Ayo coblos nomor 2 (asli)",
            "Hari ini upacara (sudah diedit)",
            "Ayo coblos nomor 2 (asli)",
            "Hari ini upacara (sudah diedit)",
        ],
    )


def test_identical_captures_in_one_batch_stay_one_version(store: Store) -> None:
    first = make_post(1, metrics={"likes": 1})
    result = store.write_batch([first, dataclasses.replace(first, metrics={"likes": 7})])
    assert (result.inserted, result.updated, result.unchanged) == (1, 0, 1)
    assert _history(store, "x:1001") == (first.text, 1, [], {"likes": 7})


def test_a_score_of_a_text_edited_meanwhile_is_not_filed_under_the_new_text(store: Store) -> None:
    store.write_batch([make_post(1, text="Selamat pagi, upacara di sekolah.")])
    (read,) = next(store.iter_unscored("m1"))
    # a collector stores an edit between the scorer's read and its write
    store.write_batch([make_post(1, text="Coblos 02 tanggal 14, wajib!")])
    stale = Score(
        post_key=read.key,
        model_version="m1",
        score=0.03,
        label="not_partisan",
        threshold=0.5,
        text_hash=read.text_hash,
    )
    assert store.write_scores([(read.pk, stale)]) == 0
    assert store.counts()["scores"] == 0
    assert store.latest_score(read.pk, "m1") is None
    (again,) = next(store.iter_unscored("m1"))  # scored again, on the new text
    assert again.pk == read.pk and again.text == "Coblos 02 tanggal 14, wajib!"
    fresh = dataclasses.replace(stale, score=0.97, label="partisan", text_hash=again.text_hash)
    assert store.write_scores([(again.pk, fresh)]) == 1
    latest = store.latest_score(again.pk, "m1")
    assert latest is not None and latest["score"] == 0.97
    assert latest["text_hash"] == again.text_hash
    assert list(store.iter_unscored("m1")) == []
