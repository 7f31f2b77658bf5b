"""Model versions: list, show, promote, rollback, atomic switching and re-scoring the queue."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from classifiers.artifacts import CURRENT, write_model_dir
from classifiers.corpus import load_corpus
from classifiers.features import ModelSettings
from classifiers.model import current_model_dir, load_model
from classifiers.normalize import NORMALIZER_VERSION, Normalizer, data_fingerprint
from classifiers.profiles import ContestantMasker, load_profiles
from classifiers.training import columns, fit
from pipeline import schema
from pipeline.cli import main
from pipeline.config import Config, DatabaseConfig, PathsConfig
from pipeline.errors import ModelError, UsageError
from pipeline.models import (
    promote,
    promotion_stack,
    read_history,
    rollback,
    rollback_target,
)
from pipeline.queue import get_item, link_and_enqueue, list_items
from pipeline.store import Store
from tests.conftest import PROJECT_ROOT
from tests.test_queue import asn_post, score_posts, setup_registry

VERSIONS = ("model-a", "model-b", "model-c")
SETTINGS = ModelSettings(calibration_folds=3, seed=5)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three versions of one small pipeline (every 15th seed text), written once."""
    corpus = load_corpus(PROJECT_ROOT / "classifiers" / "corpus")
    profiles = load_profiles(PROJECT_ROOT / "config" / "elections")
    normalizer = Normalizer(ContestantMasker(profiles))
    texts, labels = corpus.texts[::15], corpus.labels[::15]
    pipeline = fit(columns([normalizer.normalize(t) for t in texts]), labels, SETTINGS)
    root = tmp_path_factory.mktemp("versions")
    for number, version in enumerate(VERSIONS):
        write_version(root, version, pipeline, 0.4 + number / 10)
    return root


def write_version(root: Path, version: str, pipeline: Any, threshold: float) -> Path:
    """A loadable model directory; versions differ in name and threshold."""
    card = {
        "format_version": 1,
        "version": version,
        "threshold": threshold,
        "settings": SETTINGS.to_dict(),
        "normalizer": {"version": NORMALIZER_VERSION, "data_sha256": data_fingerprint()},
        "data": {"rows": 100},
    }
    directory = root / version
    write_model_dir(directory, pipeline, card, f"# Model card: {version}\n")
    return directory


def models_config(tmp_path: Path, versions: Path, current: str) -> Config:
    """A config with a copy of `versions` as its models folder, `current` current, and a database."""
    root = tmp_path / "models"
    shutil.copytree(versions, root)
    (root / CURRENT).write_text(f"{current}\n", encoding="utf-8")
    return Config(
        database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'netra.db'}"),
        paths=PathsConfig(models_dir=root, output_dir=tmp_path / "out"),
    )


@pytest.fixture
def config(tmp_path: Path, versions: Path) -> Config:
    """Three versions in a temporary models folder, model-a current (as `netra train` leaves it)."""
    return models_config(tmp_path, versions, "model-a")


@pytest.fixture
def config_file(config: Config, tmp_path: Path) -> Path:
    """The config as TOML for the CLI (the database is initialised)."""
    store = Store(config.database.url)
    store.upgrade()
    store.close()
    path = tmp_path / "netra.toml"
    path.write_text(
        f'[database]\nurl = "{config.database.url}"\n'
        f'[paths]\nmodels_dir = "{config.paths.models_dir}"\n',
        encoding="utf-8",
    )
    return path


def current(config: Config) -> str:
    return (config.paths.models_dir / CURRENT).read_text(encoding="utf-8").strip()


def cli(config_file: Path, *args: str) -> int:
    return main(["models", *args, "--config", str(config_file)])


def test_list_show_promote_and_rollback(
    config: Config, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config_file, "list") == 0
    listing = capsys.readouterr().out
    assert "* model-a" in listing and "current" in listing
    assert all(version in listing for version in VERSIONS)

    assert cli(config_file, "promote", "model-b", "--by", "Lead") == 0
    assert "promoted model-b (was model-a)" in capsys.readouterr().out
    assert cli(config_file, "promote", "model-c") == 0
    assert current(config) == "model-c"
    capsys.readouterr()
    assert cli(config_file, "list", "--json") == 0
    statuses = {row["version"]: row["status"] for row in json.loads(capsys.readouterr().out)}
    assert statuses == {"model-a": "promoted earlier", "model-b": "previous", "model-c": "current"}

    assert cli(config_file, "rollback", "--by", "Lead") == 0
    assert "rolled back to model-b (was model-c)" in capsys.readouterr().out
    assert current(config) == "model-b"
    assert cli(config_file, "rollback") == 0
    assert current(config) == "model-a"
    assert cli(config_file, "rollback") == 2
    assert "no earlier promoted model" in capsys.readouterr().err
    assert current(config) == "model-a"

    history = read_history(config.paths.models_dir)
    assert [(e["action"], e["version"], e["previous"]) for e in history] == [
        ("promote", "model-b", "model-a"),
        ("promote", "model-c", "model-b"),
        ("rollback", "model-b", "model-c"),
        ("rollback", "model-a", "model-b"),
    ]
    assert history[0]["by"] == "Lead"

    assert cli(config_file, "show", "model-b") == 0
    shown = capsys.readouterr().out
    assert "model-b: rolled back" in shown
    assert "promote by Lead" in shown and "rollback by" in shown
    assert "# Model card: model-b" in shown


def test_rollback_after_a_version_set_outside_the_history(config: Config) -> None:
    promote(config, "model-b")
    # `netra train` switches CURRENT itself, without a history entry.
    (config.paths.models_dir / CURRENT).write_text("model-c\n", encoding="utf-8")
    assert rollback_target(config.paths.models_dir) == "model-b"
    rollback(config)
    assert current(config) == "model-b"
    assert rollback_target(config.paths.models_dir) == "model-a"
    assert promotion_stack(read_history(config.paths.models_dir)) == ["model-a", "model-b"]


def test_promote_refuses_tampered_or_unknown_versions(
    config: Config, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = config.paths.models_dir / "model-b" / "card.json"
    card.write_text(card.read_text(encoding="utf-8").replace("0.5", "0.05"), encoding="utf-8")
    assert cli(config_file, "promote", "model-b") == 1
    assert "does not match the manifest" in capsys.readouterr().err
    with pytest.raises(ModelError):
        promote(config, "model-b")
    assert current(config) == "model-a" and read_history(config.paths.models_dir) == []
    assert cli(config_file, "list") == 0
    listing = capsys.readouterr().out
    assert "invalid" in listing and "refused:" in listing
    assert cli(config_file, "show", "model-b") == 1
    assert cli(config_file, "promote", "model-x") == 2
    assert "no model version 'model-x'" in capsys.readouterr().err
    with pytest.raises(ModelError, match="invalid model version name"):
        promote(config, "../model-a")
    assert promote(config, "model-a").changed is False  # already current: nothing recorded
    assert read_history(config.paths.models_dir) == []


def test_promote_refuses_a_directory_not_named_as_its_version(
    config: Config, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = config.paths.models_dir
    shutil.copytree(root / "model-b", root / "backup-copy")  # verifies: same files, same card
    assert cli(config_file, "promote", "backup-copy") == 2
    assert "its card names version 'model-b', not 'backup-copy'" in capsys.readouterr().err
    with pytest.raises(UsageError, match="promote 'model-b'"):
        promote(config, "backup-copy")
    assert current(config) == "model-a" and read_history(root) == []
    # the version itself, under its own name, is promoted as before
    assert cli(config_file, "promote", "model-b") == 0
    assert current(config) == "model-b"


def test_a_scorer_never_fails_while_versions_switch(config: Config) -> None:
    root = config.paths.models_dir
    profiles = load_profiles(config.paths.elections_dir)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: set[str] = set()

    def scorer() -> None:
        while not stop.is_set():
            try:
                model = load_model(current_model_dir(root), profiles)
                [result] = model.score(["Ayo coblos nomor 2 di TPS!"])
                assert 0.0 <= result.score <= 1.0
                seen.add(model.version)
            except BaseException as exc:  # any failure at all fails the test
                errors.append(exc)
                return

    def pointer_reader() -> None:
        # Many cheap reads: a pointer written in place would be caught empty or torn.
        while not stop.is_set():
            try:
                assert (current_model_dir(root) / "model.skops").is_file()
            except BaseException as exc:  # any failure at all fails the test
                errors.append(exc)
                return

    threads = [threading.Thread(target=scorer), threading.Thread(target=pointer_reader)]
    for thread in threads:
        thread.start()
    try:
        for round_number in range(8):
            promote(config, VERSIONS[1 + round_number % 2])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors
    assert len(seen) >= 2
    assert current(config) == "model-c"


@pytest.fixture
def store(config: Config, tmp_path: Path) -> Iterator[Store]:
    """A store with two pending items and one decided, scored by an older model."""
    instance = Store(config.database.url)
    instance.upgrade()
    setup_registry(instance, tmp_path)
    texts = {
        1: "Ayo coblos nomor 2 di TPS, menangkan paslon kita!",
        2: "Rapat koordinasi dinas kesehatan soal posyandu besok pagi",
        3: "Relawan kumpul Sabtu, kita kampanye door to door",
    }
    instance.write_batch([asn_post(n, text=value) for n, value in texts.items()])
    score_posts(instance, {"x:5001": 0.9, "x:5002": 0.8, "x:5003": 0.7}, model="old-model")
    link_and_enqueue(Config(), instance)
    yield instance
    instance.close()


def test_promotion_rescores_pending_items_and_names_the_model(config: Config, store: Store) -> None:
    from pipeline.review import decide

    items = {item.first["post_key"]: item for item in list_items(store)}
    assert {item.first["model_version"] for item in items.values()} == {"old-model"}
    decided = items["x:5003"].id
    decide(store, decided, "confirmed", "Rina", label="partisan")
    result = promote(config, "model-b", store=store)
    assert result.rescored == {"pending_items": 2, "below_threshold": 1, "posts_scored": 2}
    model = load_model(
        config.paths.models_dir / "model-b", load_profiles(config.paths.elections_dir)
    )
    with store.connect() as conn:
        rows = {
            row.id: row
            for row in conn.execute(
                select(
                    schema.queue_items.c.id,
                    schema.queue_items.c.score,
                    schema.queue_items.c.priority,
                    schema.queue_items.c.model_version,
                )
            )
        }
        score_rows = conn.execute(
            select(schema.scores.c.post_pk, schema.scores.c.model_version, schema.scores.c.score)
        ).all()
    for key in ("x:5001", "x:5002"):
        item_id = items[key].id
        [expected] = model.score([items[key].first["text"]])
        assert rows[item_id].model_version == "model-b"
        assert rows[item_id].score == pytest.approx(expected.score)
        assert get_item(store, item_id).status == "pending"  # type: ignore[union-attr]
        # The evidence keeps the score the item was queued with.
        assert get_item(store, item_id).first["model_version"] == "old-model"  # type: ignore[union-attr]
    assert rows[decided].model_version == "old-model"  # decided items are left alone
    assert {version for _pk, version, _score in score_rows} == {"old-model", "model-b"}
    assert all(version for _pk, version, _score in score_rows)


def test_migration_names_the_model_of_existing_queue_items(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url)
    old.upgrade("0002")
    old.write_batch([asn_post(1)])
    moment = "2024-01-20 08:00:00.000000"
    with old.transaction() as conn:
        # An item queued by the 0002 code, which had no queue_items.model_version.
        conn.execute(
            text(
                "INSERT INTO evidence (post_pk, post_key, post_version, platform, post_id, kind,"
                " text, created_at, captured_at, model_version, score, content_sha256,"
                " recorded_at) VALUES (1, 'x:5001', 1, 'x', '5001', 'post', 'Ayo coblos', :t,"
                " :t, 'model-2023', 0.9, 'abc', :t)"
            ),
            {"t": moment},
        )
        conn.execute(
            text(
                "INSERT INTO queue_items (group_key, platform, author_key, text_hash, category,"
                " status, priority, score, link_level, link_confidence, reach, first_post_pk,"
                " first_evidence_id, created_at, updated_at) VALUES ('g', 'x', '1111', 'h',"
                " 'post', 'pending', 0.8, 0.9, 'user_id', 1.0, 0, 1, 1, :t, :t)"
            ),
            {"t": moment},
        )
    old.close()
    store = Store(url)
    before, after = store.upgrade()
    assert (before, after) == ("0002", store.head_revision())
    with store.connect() as conn:
        assert conn.execute(select(schema.queue_items.c.model_version)).scalar() == "model-2023"
    store.close()


def test_promote_without_a_database_still_switches(config: Config) -> None:
    result = promote(config, "model-c")
    assert result.changed and result.rescored is None
    assert "not re-scored" in " ".join(result.notes)
    with pytest.raises(UsageError, match="no model version"):
        promote(config, "model-z")


def test_promotion_warns_when_the_config_overrides_the_threshold(config: Config) -> None:
    strict = dataclasses.replace(
        config, classifier=dataclasses.replace(config.classifier, threshold=0.93)
    )
    result = promote(strict, "model-c")
    assert result.changed
    warning = next(note for note in result.notes if "classifier.threshold" in note)
    assert "0.93" in warning and "model-c" in warning and "netra evaluate" in warning
    assert not any("classifier.threshold" in note for note in promote(config, "model-b").notes)
