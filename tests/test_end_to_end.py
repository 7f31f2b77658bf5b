"""End to end on the bundled demo data: registry → import → score → link → queue → review → export.

The demo README documents which demo author must link at which level (and which same-name
strangers must not); this test reads that table and checks the linker against it. Scores come
from a keyword stand-in (the real model is the classifier's and has its own tests), so this
file tests linking, queueing, review and export, not the model.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from pipeline import schema
from pipeline.cli import main
from pipeline.config import Config, load_config
from pipeline.demo import is_demo_database, reset_demo_database
from pipeline.errors import UsageError
from pipeline.importer import import_files
from pipeline.queue import link_and_enqueue, list_items, stage_counts
from pipeline.records import Score
from pipeline.review import audit_log
from pipeline.store import Store
from tests.conftest import make_post

DEMO = Path(__file__).resolve().parent.parent / "config" / "demo"
QUEUED_LEVELS = ("user_id", "handle", "profile_url", "name_agency")
CAMPAIGN = re.compile(
    r"coblos|nyoblos|paslon|menang|relawan|kampanye|dukung|lanjutkan|\b0?[123]\b|[123]\ufe0f\u20e3"
    r"|\u270c|#\w+2024|prabowo|gibran|anies|ganjar|amin\b|agus.?ratna|bersamabe",
    re.IGNORECASE,
)

pytestmark = pytest.mark.skipif(not (DEMO / "posts.jsonl").exists(), reason="demo data not present")


def documented_levels() -> tuple[dict[str, str], set[str]]:
    """{handle: level} and the handles that must not link, from config/demo/README.md."""
    levels: dict[str, str] = {}
    must_not: set[str] = set()
    for line in (DEMO / "README.md").read_text(encoding="utf-8").splitlines():
        found = re.match(r"\|\s*`(\w+)`[^|]*\|(.*)\|\s*$", line)
        if not found:
            continue
        level, cell = found.group(1), re.sub(r"\([^)]*\)", "", found.group(2))
        linked, _, strangers = cell.partition("must NOT link:")
        linked = linked.split("Same name")[0]
        for handle in filter(None, (h.strip(" .") for h in linked.split(","))):
            levels[handle] = level
        must_not.update(filter(None, (h.strip(" .") for h in strangers.split(","))))
    return levels, must_not


def keyword_scores(store: Store) -> None:
    """A stand-in classifier: campaign words score 0.9, anything else 0.1."""
    rows = []
    for stored in store.iter_posts():
        value = 0.9 if CAMPAIGN.search(stored.text) else 0.1
        rows.append(
            (
                stored.pk,
                Score(
                    post_key=stored.key,
                    model_version="keyword-standin",
                    score=value,
                    label="partisan" if value >= 0.5 else "not_partisan",
                    threshold=0.5,
                    explanation=(("kata kampanye", 0.9),) if value >= 0.5 else (),
                ),
            )
        )
    store.write_scores(rows)


def cli(store: Store, *args: str) -> int:
    return main([*args, "--database", store.url])


def test_demo_chain(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    levels, must_not = documented_levels()
    assert len(levels) > 30 and must_not  # the README table was read

    # A broken registry is refused with line numbers and imports nothing.
    assert cli(store, "registry", "import", str(DEMO / "registry_bad.csv")) == 2
    assert "line 3, column nip" in capsys.readouterr().err
    assert cli(store, "registry", "import", str(DEMO / "asn_registry.csv")) == 0
    assert "0 deactivated" in capsys.readouterr().out
    import_files(store, [str(DEMO / "posts.jsonl")])
    keyword_scores(store)

    counters = link_and_enqueue(Config(), store)
    assert counters["queued"] > 0 and counters["linked"] > counters["queued"]

    # Every documented author links at the documented level; the strangers do not link.
    with store.connect() as conn:
        rows = conn.execute(
            schema.posts.select()
            .with_only_columns(schema.posts.c.author_handle, schema.matches.c.level)
            .join_from(schema.posts, schema.matches)
        ).all()
    seen: dict[str, set[str | None]] = {}
    for handle, level in rows:
        seen.setdefault(handle, set()).add(level)
    for handle, level in levels.items():
        assert seen.get(handle) == {level}, handle
    for handle in must_not:
        assert seen.get(handle) == {None}, handle

    # The queue holds only allowed levels, comments carry their parent as context.
    items = list_items(store)
    assert items and all(item.link_level in QUEUED_LEVELS for item in items)
    for item in items:
        author = item.first["author"]["handle"]
        assert levels.get(author) == item.link_level, author
    comments = [item for item in items if item.category == "comment"]
    assert comments and any(item.first["context"]["parent_captured"] for item in comments)
    stages = stage_counts(store)
    assert stages["collected"] == 568 and stages["queued"] == len(items)
    # Mega follows the Agus–Ratna volunteers' account: judged on its profile, filed as a follow
    (follow,) = [item for item in items if item.category == "follow"]
    assert follow.first["author"]["handle"] == "megapuspita.bsky.social"
    assert "coblos nomor 2" in follow.first["context"]["parent_text"]
    assert stages["scored"] >= stages["partisan"] >= stages["queued"]

    # Review the top item by CLI, then export the queue and the case sheet.
    top = items[0].id
    decide = ("review", "decide", str(top), "--verdict", "confirmed", "--reviewer", "Demo")
    assert cli(store, *decide, "--label", "partisan", "--note", "ajakan memilih") == 0
    assert [row["to_status"] for row in audit_log(store, top)] == ["in_review", "confirmed"]
    out = tmp_path / "out"
    for name in ("review_queue.csv", "review_queue.xlsx", "all.jsonl"):
        status = "all" if name.endswith("jsonl") else "pending"
        args = ("export", "--status", status, "--output", str(out / name))
        assert cli(store, *args) == 0
    with open(out / "review_queue.csv", encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.reader(handle))) == len(items)  # header + all but the confirmed
    exported = [json.loads(line) for line in (out / "all.jsonl").read_text().splitlines()]
    assert len(exported) == len(items)
    assert cli(store, "export", "case", str(top), "--output", str(out / "case.html")) == 0
    assert "Demo" in (out / "case.html").read_text(encoding="utf-8")
    capsys.readouterr()
    assert cli(store, "queue", "list", "--limit", "3") == 0
    assert f"#{top}" in capsys.readouterr().out
    assert cli(store, "registry", "show", "197904122005032001") == 0
    assert "Sri Wahyuningsih" in capsys.readouterr().out
    assert cli(store, "purge", "--dry-run") == 0
    assert "would delete" in capsys.readouterr().out


def test_netra_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo`: the whole chain with the real model, when one has been trained."""
    from pipeline.config import load_config
    from pipeline.errors import ModelError

    try:
        from classifiers.model import current_model_dir

        current_model_dir(load_config(None).paths.models_dir)
    except (ImportError, ModelError) as exc:
        pytest.skip(f"no trained model to run the demo with: {exc}")
    config = tmp_path / "demo.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "demo.db"}"\n'
        f'[paths]\noutput_dir = "{tmp_path / "out"}"\n'
        '[[sources]]\nname = "demo-export"\nplatform = "file"\n'
        f'targets = ["path:{DEMO / "posts.jsonl"}"]\n',
        encoding="utf-8",
    )
    assert main(["demo", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    for stage in ("collected", "scored", "partisan", "linked", "queued", "top items"):
        assert stage in printed
    assert (tmp_path / "out" / "review_queue.csv").exists()
    assert (tmp_path / "out" / "review_queue.xlsx").exists()
    # `make demo` again: the database it made is reset, and the figures are the same
    assert main(["demo", "--config", str(config)]) == 0
    assert capsys.readouterr().out == printed


def demo_config(tmp_path: Path, database: Path) -> Path:
    """A demo config on `database`, writing its outputs under `tmp_path`."""
    config = tmp_path / "demo.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f'[paths]\noutput_dir = "{tmp_path / "out"}"\n'
        '[[sources]]\nname = "demo-export"\nplatform = "file"\n'
        f'targets = ["path:{DEMO / "posts.jsonl"}"]\n',
        encoding="utf-8",
    )
    return config


def test_netra_demo_never_deletes_a_database_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "netra.db"
    store = Store(f"sqlite:///{real}")
    store.upgrade()
    store.write_stream([make_post(1), make_post(2)])
    store.close()
    config = demo_config(tmp_path, tmp_path / "demo.db")
    # The database named by the environment or by --database, not the demo config's
    monkeypatch.setenv("NETRA_DATABASE_URL", f"sqlite:///{real}")
    assert main(["demo", "--config", str(config)]) == 2
    monkeypatch.delenv("NETRA_DATABASE_URL")
    assert main(["demo", "--config", str(config), "--database", f"sqlite:///{real}"]) == 2
    err = capsys.readouterr().err
    assert f"netra demo would delete {real}" in err and "--config config/demo.toml" in err
    with Store(f"sqlite:///{real}") as kept:
        assert kept.counts()["posts"] == 2
    assert not (tmp_path / "demo.db").exists() and not (tmp_path / "out").exists()


def test_only_a_database_the_demo_made_counts_as_one(tmp_path: Path) -> None:
    config = load_config(demo_config(tmp_path, tmp_path / "demo.db"), environ={})
    store, demo_run = reset_demo_database(config)
    store.finish_run(demo_run, "ok", {"last_run_id": demo_run})
    store.close()
    assert is_demo_database(tmp_path / "demo.db")
    # a run of its own after the demo (`netra run` on the demo database) may hold real posts
    with Store(config.database.url) as store:
        store.finish_run(store.start_run("run"), "ok")
    assert not is_demo_database(tmp_path / "demo.db")
    with pytest.raises(UsageError, match="did not make it"):
        reset_demo_database(config)
    other = tmp_path / "other.db"
    other.write_text("not a database\n", encoding="utf-8")
    assert not is_demo_database(other)
    other.write_bytes(b"")
    assert is_demo_database(other)  # an empty file holds nothing to lose
