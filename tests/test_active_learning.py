"""Active learning: unsure and diverse posts to label, labelling them, retraining reads them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from classifiers.model import LoadedModel
from pipeline.active_learning import (
    diverse_subset,
    iter_content_labels,
    label_post,
    select_to_label,
)
from pipeline.classify import load_scoring_model
from pipeline.cli import main
from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.records import Post, Score
from pipeline.retrain import reviewer_examples
from pipeline.store import Store
from tests.test_models_cli import models_config, versions  # noqa: F401 - the shared model fixture

THRESHOLD = 0.5  # model-b's threshold
CAMPAIGN = "Warga Sumber Makmur ayo datang ke TPS hari Rabu dan coblos nomor dua"
COPIES = [CAMPAIGN + suffix for suffix in ("", "!", "!!", " ✌️", " ya", " sekarang", " 🙏", " ok")]
NEAR = [
    "Jalan desa rusak parah sejak musim hujan, mohon perbaikan",
    "Selamat hari guru untuk semua pendidik hebat di kabupaten",
    "Rapat koordinasi dinas pendidikan diundur ke hari Kamis",
    "Pelatihan UMKM gratis di balai desa minggu depan",
    "Antrean SIM keliling panjang sekali pagi ini",
    "Posyandu buka Sabtu, bawa buku KIA ya ibu-ibu",
]
FAR = [
    "Coblos nomor 1, menangkan paslon kita di pilkada!",
    "Hari ini hujan, jemuran belum kering",
    "Relawan kampanye kumpul malam ini di posko pemenangan",
    "Resep sambal terasi ala ibu",
]


@pytest.fixture
def config(tmp_path: Path, versions: Path) -> Config:  # noqa: F811 - the imported fixture
    """A models folder whose current version is model-b (threshold 0.5), and a database."""
    return models_config(tmp_path, versions, "model-b")


@pytest.fixture
def model(config: Config) -> LoadedModel:
    """The current model."""
    return load_scoring_model(config)


def post(number: int, body: str) -> Post:
    """An invented post."""
    return Post(
        platform="x",
        post_id=str(7000 + number),
        text=body,
        created_at=datetime(2024, 11, 20, tzinfo=UTC) + timedelta(minutes=number),
        author_id=f"w{number}",
        author_handle=f"warga{number}",
    )


@pytest.fixture
def store(config: Config, model: LoadedModel) -> Iterator[Store]:
    """Posts with scores from the current model at chosen distances from its threshold."""
    instance = Store(config.database.url)
    instance.upgrade()
    rows: list[tuple[str, float]] = []
    rows += [(body, THRESHOLD + 0.001 * (n + 1)) for n, body in enumerate(COPIES)]
    rows += [(body, THRESHOLD - 0.05 - 0.01 * n) for n, body in enumerate(NEAR)]
    rows += [(body, 0.02 if n % 2 else 0.98) for n, body in enumerate(FAR)]
    rows += [
        ("Ayo dukung paslon dua, sudah saya labeli", THRESHOLD),  # labelled below
        ("Ayo dukung paslon dua, sudah saya labeli", THRESHOLD),  # the same text, another post
        ("   ", THRESHOLD),  # nothing to label
    ]
    posts = [post(number, body) for number, (body, _) in enumerate(rows)]
    instance.write_batch(posts)
    scored = []
    for item, (_, value) in zip(posts, rows, strict=True):
        stored = instance.get_post(item.key)
        assert stored is not None
        label = "partisan" if value >= THRESHOLD else "not_partisan"
        scored.append((stored.pk, Score(item.key, model.version, value, label, THRESHOLD)))  # type: ignore[arg-type]
    instance.write_scores(scored)
    labelled = posts[len(COPIES) + len(NEAR) + len(FAR)].key
    label_post(instance, labelled, "partisan", "Rina", model_version=model.version, score=0.5)
    yield instance
    instance.close()


def test_to_label_picks_unsure_diverse_unlabelled_posts(
    config: Config, store: Store, model: LoadedModel
) -> None:
    picked = select_to_label(config, store, 3, model=model)
    texts = [candidate.text for candidate in picked]
    assert len(picked) == 3
    # Ranking by uncertainty alone would return three copies of the campaign message.
    assert sum(body in COPIES for body in texts) == 1
    assert texts[0] == COPIES[0]  # the most uncertain comes first
    # The others come from the 12 most uncertain (8 copies + the 4 nearest others), not beyond.
    assert all(body in COPIES or body in NEAR[:4] for body in texts)
    assert "sudah saya labeli" not in " ".join(texts)
    assert all(candidate.model_version == "model-b" for candidate in picked)
    everything = select_to_label(config, store, 50, model=model)
    keys = {candidate.post_key for candidate in everything}
    assert len(everything) == len(COPIES) + len(NEAR) + len(FAR)  # minus labelled and empty
    assert len(keys) == len(everything)


def test_a_like_is_not_a_candidate_of_its_own(
    config: Config, store: Store, model: LoadedModel
) -> None:
    # the like's own score is that of its empty text; stored right at the threshold here, it
    # would be the "most uncertain" candidate, shown with the liked post's text and wrong score
    liked = post(len(COPIES) + len(NEAR) + 1, FAR[1]).key  # as the fixture numbers it
    like = Post(
        platform="x",
        post_id="7091",
        text="",
        kind="like",
        parent_id=liked.split(":", 1)[1],
        created_at=datetime(2024, 11, 21, tzinfo=UTC),
        author_id="w91",
    )
    store.write_batch([like])
    stored = store.get_post(like.key)
    assert stored is not None
    store.write_scores(
        [(stored.pk, Score(like.key, model.version, THRESHOLD, "partisan", THRESHOLD))]
    )
    everything = select_to_label(config, store, 50, model=model)
    assert all(candidate.kind != "like" for candidate in everything)
    assert [c.text for c in everything].count(FAR[1]) == 1  # the liked post, with its own score


def test_diverse_subset_takes_one_of_each_cluster() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3)
    rows = np.vstack([centre + rng.normal(0, 0.01, (4, 3)) for centre in centres])
    picked = diverse_subset(rows, 3)
    assert picked[0] == 0 and sorted(index // 4 for index in picked) == [0, 1, 2]
    assert diverse_subset(rows, 0) == [] and len(diverse_subset(rows, 50)) == 12


def test_review_label_flow_stores_labels_that_retraining_reads(
    config: Config,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_file = tmp_path / "netra.toml"
    config_file.write_text(
        f'[database]\nurl = "{config.database.url}"\n'
        f'[paths]\nmodels_dir = "{config.paths.models_dir}"\n',
        encoding="utf-8",
    )
    common = ["--config", str(config_file)]
    assert main(["queue", "to-label", "--n", "3", *common]) == 0
    listed = capsys.readouterr().out
    assert "x:7000" in listed and "netra review label" in listed
    monkeypatch.setattr("sys.stdin", io.StringIO("partisan\nn\nwhat\nskip\n"))
    assert main(["review", "label", "--reviewer", "Rina", "--n", "3", *common]) == 0
    out = capsys.readouterr().out
    assert "please answer with one of" in out
    assert "labelled (partisan: 1, not_partisan: 1), skipped 1" in out
    labels = {key: label for _text, label, _at, key in iter_content_labels(store)}
    assert labels["x:7000"] == 1 and len(labels) == 3  # two new beside the fixture's one
    assert main(["queue", "to-label", "--n", "3", *common]) == 0
    relisted = capsys.readouterr().out
    assert all(key not in relisted for key in labels)

    # A scripted label, then a correction: the latest label of a post wins.
    args = ["review", "label", "--post", "x:7008", "--reviewer", "Sari", *common]
    assert main([*args, "--label", "partisan"]) == 0
    assert main([*args, "--label", "not_partisan"]) == 0
    examples = {example.ref: example for example in reviewer_examples(store)}
    assert examples["x:7008"].label == 0 and examples["x:7008"].origin == "reviewer"
    assert examples["x:7000"].label == 1
    capsys.readouterr()
    assert main(["review", "label", "--post", "x:9999", "--label", "partisan", *args[4:]]) == 2
    assert "no stored post 'x:9999'" in capsys.readouterr().err
    assert main(["review", "label", "--post", "x:7008", *common]) == 2


def test_content_labels_are_append_only_and_checked(store: Store) -> None:
    with pytest.raises(UsageError, match="unknown label"):
        label_post(store, "x:7000", "maybe", "Rina")
    with pytest.raises(UsageError, match="reviewer"):
        label_post(store, "x:7000", "partisan", " ")
    with pytest.raises(UsageError, match="no text"):
        label_post(store, "x:7020", "partisan", "Rina")
    with pytest.raises(DBAPIError), store.transaction() as conn:
        conn.execute(text("UPDATE content_labels SET label = 'not_partisan'"))
    with pytest.raises(DBAPIError), store.transaction() as conn:
        conn.execute(text("DELETE FROM content_labels"))
    assert [label for _t, label, _a, _k in iter_content_labels(store)] == [1]
