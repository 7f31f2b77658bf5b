"""Retraining: data from seed + reviewer labels + files, evaluation, promotion, reproducibility.

Every model here is trained on a small slice of the seed corpus (every 12th row) in a temporary
models directory; the repository's `models/` is never written.
"""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classifiers.artifacts import CURRENT, verify_model_dir
from classifiers.corpus import CORPUS_COLUMNS, load_corpus
from classifiers.features import ModelSettings
from classifiers.model import LoadedModel
from pipeline.active_learning import label_post, select_to_label
from pipeline.classify import load_scoring_model, score_new_posts
from pipeline.cli import main
from pipeline.config import Config, DatabaseConfig, PathsConfig, RetrainConfig
from pipeline.errors import InputFileError, ModelError
from pipeline.importer import import_files
from pipeline.models import read_history
from pipeline.queue import link_and_enqueue, list_items
from pipeline.registry import import_registry
from pipeline.retrain import (
    Example,
    build_datasets,
    read_labelled_file,
    retrain,
    reviewer_examples,
    text_key,
)
from pipeline.review import decide
from pipeline.store import Store
from tests.conftest import PROJECT_ROOT

DEMO = PROJECT_ROOT / "config" / "demo"
SEED = PROJECT_ROOT / "classifiers" / "corpus"
SETTINGS = ModelSettings(calibration_folds=3, seed=7)
# The demo's reviewer: campaign words mean partisan (a stand-in for a person's judgement).
CAMPAIGN = re.compile(
    r"coblos|nyoblos|paslon|menang|relawan|kampanye|dukung|lanjutkan|\b0?[123]\b|[123]\ufe0f\u20e3"
    r"|\u270c|#\w+2024|prabowo|gibran|anies|ganjar|amin\b|agus.?ratna|bersamabe",
    re.IGNORECASE,
)
DECIDED = datetime(2024, 2, 1, tzinfo=UTC)


def small_corpus(folder: Path, step: int = 12) -> Path:
    """Every `step`-th row of each seed CSV (a few hundred rows in all)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(SEED.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
        with (folder / path.name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(CORPUS_COLUMNS), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows[::step])
    return folder


def make_config(root: Path, **retrain: object) -> Config:
    """Database, models and outputs under `root`; a lenient policy for small test data."""
    policy = {"target_precision": 0.8, "min_new_labels": 10, "min_eval_rows": 20, **retrain}
    return Config(
        database=DatabaseConfig(url=f"sqlite:///{root / 'netra.db'}"),
        paths=PathsConfig(models_dir=root / "models", output_dir=root / "out"),
        retrain=RetrainConfig(**policy),  # type: ignore[arg-type]
    )


def write_config_file(config: Config, path: Path) -> Path:
    """The same settings as a TOML file for the CLI."""
    policy = config.retrain
    path.write_text(
        f'[database]\nurl = "{config.database.url}"\n'
        f'[paths]\nmodels_dir = "{config.paths.models_dir}"\n'
        f'output_dir = "{config.paths.output_dir}"\n'
        f"[retrain]\ntarget_precision = {policy.target_precision}\n"
        f"min_new_labels = {policy.min_new_labels}\nmin_eval_rows = {policy.min_eval_rows}\n",
        encoding="utf-8",
    )
    return path


def demo_decisions(config: Config, store: Store) -> int:
    """Score the demo posts, queue them, decide every item and label 30 `to-label` posts."""
    import_registry(store, DEMO / "asn_registry.csv")
    import_files(store, [str(DEMO / "posts.jsonl")])
    score_new_posts(store, load_scoring_model(config), config=config)
    link_and_enqueue(config, store)
    labels = 0
    for minute, item in enumerate(list_items(store)):
        moment = DECIDED + timedelta(minutes=minute)
        if CAMPAIGN.search(item.first["text"]):
            decide(store, item.id, "confirmed", "Demo", label="partisan", now=moment)
        else:
            reason = "not_partisan"
            decide(store, item.id, "dismissed", "Demo", reason=reason, label=reason, now=moment)
        labels += 1
    for minute, candidate in enumerate(select_to_label(config, store, 30)):
        label = "partisan" if CAMPAIGN.search(candidate.text) else "not_partisan"
        moment = DECIDED + timedelta(hours=5, minutes=minute)
        label_post(store, candidate.post_key, label, "Demo", now=moment)
        labels += 1
    return labels


@dataclass
class World:
    """A copy of the prepared demo world for one test."""

    root: Path
    corpus: Path
    config: Config
    store: Store
    baseline: str


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A baseline model (seed only, promoted) and a demo database full of reviewer labels."""
    root = tmp_path_factory.mktemp("world")
    corpus = small_corpus(root / "corpus")
    config = make_config(root)
    first = retrain(config, None, corpus_dir=corpus, settings=SETTINGS)
    assert first.status == "promoted" and first.version
    store = Store(config.database.url)
    store.upgrade()
    assert demo_decisions(config, store) > 50
    store.close()
    return root, first.version


@pytest.fixture
def world(prepared: tuple[Path, str], tmp_path: Path) -> Iterator[World]:
    """The demo world copied into this test's own directory."""
    source, baseline = prepared
    root = tmp_path / "world"
    shutil.copytree(source, root)
    config = make_config(root)
    store = Store(config.database.url)
    yield World(root, root / "corpus", config, store, baseline)
    store.close()


def model_dirs(config: Config) -> list[str]:
    """Version directories in the models folder."""
    return sorted(
        p.name
        for p in config.paths.models_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".")
    )


# -- the data ------------------------------------------------------------------------------------


def example(text: str, label: int, origin: str, minute: int | None = None) -> Example:
    decided = DECIDED + timedelta(minutes=minute) if minute is not None else None
    return Example(text, label, origin, origin, f"{origin}:{text[:10]}", decided_at=decided)


def test_near_duplicates_collapse_and_never_straddle_the_split() -> None:
    campaign = "Ayo warga Sumber Makmur, hari Rabu coblos nomor dua demi desa yang maju"
    copies = [
        example(campaign + suffix, 1, "reviewer", minute)
        for minute, suffix in enumerate(["", "!", " !!", " ✌️", "  "])
    ]
    calm = [
        example(text, 0, "reviewer", 11 + n)
        for n, text in enumerate(
            [
                "Posyandu buka Sabtu pagi, bawa buku KIA ya ibu-ibu",
                "Hujan deras sejak subuh, hati-hati di jalan licin",
                "Rapat koordinasi dinas pendidikan diundur ke Kamis",
                "Selamat hari guru untuk semua pendidik di kabupaten",
                "Antrean SIM keliling hari ini panjang sekali",
            ]
        )
    ]
    # A seed row with the campaign text but the opposite label, and an added copy of it.
    seed = [example(campaign.lower(), 0, "seed")]
    added = [example(campaign + " sekarang", 0, "added")]
    data = build_datasets(seed, [*copies, *calm], added)
    texts = [e.text for e in data.train] + [e.text for e in data.evaluation]
    assert len([t for t in texts if "coblos nomor dua" in t]) == 1  # one group, one row
    # The newest 20 % of reviewer labels (2 of 10) are evaluation rows: the two newest.
    reviewer_eval = [e for e in data.evaluation if e.origin == "reviewer"]
    assert {e.decided_at for e in reviewer_eval} == {DECIDED + timedelta(minutes=14)} | {
        DECIDED + timedelta(minutes=15)
    }
    group = next(e for e in data.train + data.evaluation if "coblos nomor dua" in e.text)
    assert group.origin == "reviewer" and group.label == 1  # the newest reviewer label wins
    origins = data.summary["origins"]
    assert origins["reviewer"]["collapsed_near_duplicates"] == 4
    assert (
        origins["seed"]["input_rows"] == 1
        and data.summary["near_duplicate_groups_with_conflicting_labels"] == 1
    )
    # Nothing in training nearly duplicates an evaluation text.
    assert not {text_key(e.text) for e in data.train} & {text_key(e.text) for e in data.evaluation}


def test_a_training_copy_of_an_evaluation_text_is_dropped() -> None:
    newest = example(
        "Pilih nomor 3 untuk kabupaten yang lebih baik, jangan golput", 1, "reviewer", 9
    )
    older = [
        example(f"Rapat koordinasi dinas ke-{n} soal jalan desa", 0, "reviewer", n)
        for n in range(4)
    ]
    copy = example(newest.text + " ya", 1, "added")
    data = build_datasets([], [*older, newest], [copy])
    assert [e.text for e in data.evaluation] == [newest.text]
    assert copy.text not in [e.text for e in data.train]
    assert data.summary["origins"]["added"]["dropped_near_evaluation_text"] == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("text,kategori\nhalo,1\n", r"add\.csv:1: missing column\(s\) label"),
        (
            "text,label\nCoblos nomor 1!,1\nRapat dinas pagi ini,maybe\n,0\nAman,2\n",
            r"3 bad row\(s\), nothing was trained:\n  .*add\.csv:3: unknown label 'maybe'.*\n"
            r"  .*add\.csv:4: empty text\n  .*add\.csv:5: unknown label '2'",
        ),
        ("text,label\n", r"no labelled rows"),
    ],
)
def test_bad_labelled_files_name_their_lines(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "add.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError, match=expected):
        read_labelled_file(path)


def test_labelled_file_accepts_label_words_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "words.csv"
    path.write_text(
        "\ufefftext,label,contest\nAyo coblos!,partisan,pilkada2024\nJalan rusak,not_partisan,\n",
        encoding="utf-8",
    )
    rows = read_labelled_file(path)
    assert [(r.label, r.contest, r.ref) for r in rows] == [
        (1, "pilkada2024", "words.csv:2"),
        (0, "added", "words.csv:3"),
    ]


# -- retraining ----------------------------------------------------------------------------------


def test_retrain_on_demo_decisions_makes_a_version_with_a_card(world: World) -> None:
    labels = reviewer_examples(world.store)
    assert len(labels) > 50 and {e.label for e in labels} == {0, 1}
    result = retrain(world.config, world.store, corpus_dir=world.corpus, settings=SETTINGS)
    assert result.status in ("promoted", "candidate") and result.version != world.baseline
    assert result.directory is not None and result.version in model_dirs(world.config)
    card = verify_model_dir(result.directory)
    assert card["version"] == result.version
    data = card["data"]
    assert data["seed_sha256"] == load_corpus(world.corpus).sha256
    assert len(data["reviewer_labels_sha256"]) == 64
    assert data["by_origin"]["reviewer"]["rows"] > 0 and data["by_origin"]["seed"]["rows"] > 0
    assert {"python", "scikit-learn", "numpy", "skops"} <= set(card["libraries"])
    assert (result.directory / "card.md").read_text(encoding="utf-8").count("## Retraining data")
    # The newest reviewer labels are evaluation rows and never training rows.
    report = result.report
    newest = sorted(labels, key=lambda e: e.decided_at)[-len(labels) // 5 :]  # type: ignore[arg-type, return-value]
    training = set(card["retrain"]["training_keys"])
    assert not {text_key(e.text) for e in newest} & training
    assert report["evaluation"]["by_origin"]["reviewer"]["rows"] > 0
    assert report["data"]["origins"]["reviewer"]["evaluation"] > 0
    # Both models are measured on the same rows, side by side, in JSON and text.
    evaluation = report["evaluation"]
    assert evaluation["candidate"]["overall"]["n"] == evaluation["current"]["overall"]["n"]
    assert evaluation["comparison"]["left_out_seen_by_current"] == 0  # baseline kept them out
    assert result.report_paths is not None
    json_report, text_report = result.report_paths
    assert json.loads(json_report.read_text(encoding="utf-8"))["candidate"]["version"] == (
        result.version
    )
    text = text_report.read_text(encoding="utf-8")
    assert "candidate" in text and "current" in text and "PR-AUC" in text and "decision:" in text
    events = read_history(world.config.paths.models_dir)
    assert events[-1]["action"] == "trained" and events[-1]["version"] == result.version
    current = (world.config.paths.models_dir / CURRENT).read_text().strip()
    assert current == (result.version if result.status == "promoted" else world.baseline)


def test_a_worse_candidate_is_not_promoted(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = load_corpus(world.corpus)
    labels = list(corpus.labels)
    random.Random(3).shuffle(labels)
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(corpus.texts, labels, strict=True))
    config_file = write_config_file(world.config, tmp_path / "netra.toml")
    args = ["retrain", "--config", str(config_file), "--corpus", str(world.corpus)]
    assert main([*args, "--add", str(shuffled)]) == 0
    out = capsys.readouterr().out
    assert "decision: kept as a candidate — worse than the current model" in out
    assert (world.config.paths.models_dir / CURRENT).read_text().strip() == world.baseline
    trained = read_history(world.config.paths.models_dir)[-1]
    assert trained["action"] == "trained" and not trained["promoted"]
    assert "worse" in trained["reason"] and "pr_auc" in trained["reason"]
    report = json.loads(Path(trained["report"]).read_text(encoding="utf-8"))
    compared = report["evaluation"]["comparison"]
    # Shuffled labels teach nothing: far below the current model, not a tolerance hair.
    assert compared["candidate"]["pr_auc"] < compared["current"]["pr_auc"] - 0.1
    assert compared["candidate"]["f1"] < compared["current"]["f1"]
    assert main(["models", "list", "--config", str(config_file)]) == 0
    listing = capsys.readouterr().out
    assert f"{trained['version']}" in listing and "candidate" in listing
    assert "not promoted: worse than the current model" in listing


def test_two_retrains_on_the_same_data_agree(world: World, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(world.root, other)
    configs = [world.config, make_config(other)]
    results = []
    for config in configs:
        store = Store(config.database.url)
        try:
            results.append(retrain(config, store, corpus_dir=world.corpus, settings=SETTINGS))
        finally:
            store.close()
    first, second = results
    assert first.version == second.version
    assert first.directory and second.directory
    card_one = json.loads((first.directory / "card.json").read_text(encoding="utf-8"))
    card_two = json.loads((second.directory / "card.json").read_text(encoding="utf-8"))
    assert card_one == card_two  # same metrics, threshold, data hashes, training-score hash
    assert first.report["evaluation"] == second.report["evaluation"]
    probe = ["Ayo coblos nomor 2 demi Sumber Makmur!", "Jadwal vaksinasi di puskesmas besok"]
    scores = [
        [r.score for r in load_scoring_model(c, d).score(probe)]
        for c, d in zip(configs, (first.directory, second.directory), strict=True)
    ]
    assert np.allclose(scores[0], scores[1], rtol=0, atol=1e-12)


def test_too_little_new_data_makes_no_version(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = tmp_path / "few.csv"
    few.write_text(
        "text,label\nCoblos nomor 1 ya!,1\nMacet lagi di jalan tol,0\n", encoding="utf-8"
    )
    empty = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    empty.upgrade()
    before = model_dirs(world.config)
    result = retrain(world.config, empty, add_files=[few], corpus_dir=world.corpus)
    empty.close()
    assert result.status == "skipped" and result.version is None
    assert "not enough new labelled data: 2 new since" in result.message
    assert "retrain.min_new_labels is 10" in result.message
    assert model_dirs(world.config) == before
    # Through the CLI, too: a clear message, exit 0, nothing written.
    config_file = write_config_file(world.config, tmp_path / "netra.toml")
    empty_url = f"sqlite:///{tmp_path / 'empty.db'}"
    args = ["retrain", "--config", str(config_file), "--database", empty_url]
    assert main([*args, "--corpus", str(world.corpus)]) == 0
    assert "not enough new labelled data: 0 new since" in capsys.readouterr().out
    assert model_dirs(world.config) == before


def test_bad_added_file_trains_nothing(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("text,label\nAyo dukung paslon 2,1\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nAyo dukung paslon 2,1\nRapat pagi,tidak tahu\n", encoding="utf-8")
    before = model_dirs(world.config)
    history = read_history(world.config.paths.models_dir)
    config_file = write_config_file(world.config, tmp_path / "netra.toml")
    args = ["retrain", "--config", str(config_file), "--corpus", str(world.corpus)]
    assert main([*args, "--add", str(good), "--add", str(bad)]) == 2
    assert "bad.csv:3: unknown label 'tidak tahu'" in capsys.readouterr().err
    assert model_dirs(world.config) == before
    assert read_history(world.config.paths.models_dir) == history


def test_a_tampered_version_is_refused_not_reused(world: World) -> None:
    result = retrain(
        world.config, world.store, corpus_dir=world.corpus, settings=SETTINGS, auto_promote=False
    )
    assert result.status == "candidate"
    assert result.directory is not None
    card = result.directory / "card.json"
    card.write_text(card.read_text(encoding="utf-8").replace('"threshold": 0.', '"threshold": 0.0'))
    with pytest.raises(ModelError, match="does not match the manifest"):
        retrain(world.config, world.store, corpus_dir=world.corpus, settings=SETTINGS)
    with pytest.raises(ModelError, match="does not match the manifest"):
        load_scoring_model(world.config, result.directory)


def test_a_broken_current_model_is_never_replaced_automatically(world: World) -> None:
    card_md = world.config.paths.models_dir / world.baseline / "card.md"
    card_md.write_text("# edited by hand\n", encoding="utf-8")
    result = retrain(world.config, world.store, corpus_dir=world.corpus, settings=SETTINGS)
    assert result.status == "candidate"
    assert f"the current model {world.baseline} cannot be loaded" in result.message
    assert "does not match the manifest" in result.message
    assert (world.config.paths.models_dir / CURRENT).read_text().strip() == world.baseline
    assert result.report["current"]["error"] and result.report["evaluation"]["current"] is None


def test_both_models_are_measured_with_the_configured_profiles(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = ("pilkada-2024-sumber-makmur",)
    config = world.config.with_overrides(classifier={"elections": configured})
    scored_with: set[tuple[str, ...]] = set()
    score = LoadedModel.score

    def spy(self: LoadedModel, *args: Any, **kwargs: Any) -> Any:
        scored_with.add(tuple(profile.id for profile in self.profiles))
        return score(self, *args, **kwargs)

    monkeypatch.setattr(LoadedModel, "score", spy)
    result = retrain(
        config, world.store, corpus_dir=world.corpus, settings=SETTINGS, auto_promote=False
    )
    assert result.report["evaluation"]["current"] is not None
    # Masking with more profiles hides more names: both sides see the same ones, as scoring does.
    assert scored_with == {configured}
    assert result.report["evaluation"]["profiles"] == list(configured)
