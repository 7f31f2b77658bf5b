"""The model: features, determinism, round trip, explanations, artifacts and the shipped model."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from classifiers import artifacts
from classifiers import features as features_module
from classifiers.artifacts import (
    current_model_dir,
    set_current_model,
    verify_model_dir,
    write_model_dir,
)
from classifiers.corpus import Corpus, diversity
from classifiers.features import FastFeatures, ModelSettings
from classifiers.model import LoadedModel, load_model, top_terms
from classifiers.normalize import Normalizer
from classifiers.profiles import ElectionProfile
from classifiers.training import (
    binary_metrics,
    choose_threshold,
    columns,
    file_folds,
    fit,
    operating_points,
)
from pipeline.errors import ModelError
from tests.classifiers.conftest import ROOT, SMALL_SETTINGS, scores_of, small_card

ODD_INPUTS: list[object] = [
    "",
    "   ",
    None,
    12345,
    "✌️✌️✌️",
    "@user https://t.co/x",
    "Ayo coblos nomor 1! #BersamaBE Bambang Endang pasti menang 🔥",
    "KPU Kabupaten Sumber Makmur mengumumkan jadwal rapat pleno rekapitulasi.",
    "wkwkwk " * 2000,
]


def test_fast_features_equal_the_sklearn_transform(
    small_model: LoadedModel, normalizer: Normalizer, corpus: Corpus
) -> None:
    normalized = [normalizer.normalize(text) for text in corpus.texts[1::7]]
    expected = small_model.pipeline.named_steps["features"].transform(columns(normalized))
    got, _ = small_model.features.transform(normalized)
    assert got.shape == expected.shape
    assert abs(got - expected).max() < 1e-12


def test_training_is_deterministic(
    normalizer: Normalizer, small_sample: tuple[list[str], list[int]]
) -> None:
    texts, labels = small_sample
    data = columns([normalizer.normalize(t) for t in texts[:300]])
    first = fit(data, labels[:300], SMALL_SETTINGS).predict_proba(data)[:, 1]
    second = fit(data, labels[:300], SMALL_SETTINGS).predict_proba(data)[:, 1]
    assert np.array_equal(first, second)
    other_seed = fit(data, labels[:300], ModelSettings(calibration_folds=3, seed=12))
    assert not np.array_equal(first, other_seed.predict_proba(data)[:, 1])


def test_save_load_round_trip(
    small_model: LoadedModel, normalizer: Normalizer, corpus: Corpus
) -> None:
    texts = list(corpus.texts[2::40])
    in_memory = small_model.pipeline.predict_proba(
        columns([normalizer.normalize(t) for t in texts])
    )[:, 1]
    reloaded = load_model(small_model.directory, small_model.profiles)
    assert np.allclose(scores_of(reloaded, texts), in_memory, rtol=0, atol=1e-12)
    assert reloaded.version == "test-small" and reloaded.threshold == 0.5


def test_probabilities_are_in_range_and_odd_rows_are_flagged(small_model: LoadedModel) -> None:
    results = small_model.score(ODD_INPUTS)
    assert len(results) == len(ODD_INPUTS)
    for result in results:
        assert 0.0 <= result.score <= 1.0
        assert result.label in ("partisan", "not_partisan")
    assert "empty_text" in results[0].flags and "empty_text" in results[1].flags
    assert "non_text" in results[2].flags and "non_text" in results[3].flags
    assert "truncated" in results[-1].flags
    assert results[6].contestants == ("H. Bambang Sutrisno", "Dra. Endang Wulandari")


def test_explanations_match_the_model_weights(small_model: LoadedModel) -> None:
    text = "Ayo coblos nomor 2 ✌️ Agus Ratna pasti menang, jangan pilih yang lain!"
    terms = small_model.explain_all(text)
    decision = small_model.decision_function([text])[0]
    assert sum(value for _, value in terms) + small_model.intercept == pytest.approx(decision)
    [result] = small_model.score([text])
    positive = [w for _, w in result.explanation if w > 0]
    negative = [w for _, w in result.explanation if w < 0]
    assert positive == sorted(positive, reverse=True)
    assert negative == sorted(negative)
    totals = dict(terms)
    for term, weight in result.explanation:
        assert totals[term] == pytest.approx(weight, abs=1e-4)
    if positive:
        assert positive[0] == pytest.approx(max(totals.values()), abs=1e-4)
    # the score is the calibrated sigmoid of the same decision value
    calibrator = small_model.classifier.calibrated_classifiers_[0].calibrators[0]
    assert result.score == pytest.approx(float(calibrator.predict(np.array([decision]))[0]))


def test_explanation_terms_are_words_of_the_text(small_model: LoadedModel) -> None:
    [result] = small_model.score(["Dukung #BersamaBE, coblos no 1 ya gaes"])
    assert result.explanation
    for term, _ in result.explanation:
        assert term.lstrip("#") in "dukung #bersamabe, coblos no 1 ya gaes"


def _copy(directory: Path, tmp_path: Path) -> Path:
    target = tmp_path / directory.name
    shutil.copytree(directory, target)
    return target


def test_tampered_model_is_refused(small_model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(small_model_dir, tmp_path)
    model_file = copy / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the manifest"):
        load_model(copy)


def test_edited_card_is_refused(small_model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(small_model_dir, tmp_path)
    card = json.loads((copy / "card.json").read_text())
    card["threshold"] = 0.01
    (copy / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"card\.json"):
        load_model(copy)


def test_missing_and_newer_models_are_refused(small_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope")
    copy = _copy(small_model_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="newer than this Netra supports"):
        load_model(copy)


def _rehash(directory: Path) -> None:
    """Recompute the manifest hashes of the files it lists (a deliberate edit, not a slip)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"] = {
        name: artifacts.sha256_file(directory / name) for name in manifest["files"]
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_an_unlisted_card_md_or_odd_manifest_is_refused(
    small_model_dir: Path, tmp_path: Path
) -> None:
    copy = _copy(small_model_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["card.md"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "card.md").write_text("Precision 0.99 (edited)\n")
    with pytest.raises(ModelError, match=r"must list model\.skops, card\.json, card\.md"):
        load_model(copy)
    other = _copy(small_model_dir, tmp_path / "b")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["format_version"] = True
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="no format_version"):
        load_model(other)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("threshold", "high", "'threshold' must be a number from 0 to 1"),
        ("threshold", 1.5, "'threshold' must be a number from 0 to 1"),
        ("normalizer", "v5", "'normalizer' must be an object"),
        ("settings", [1], "'settings' must be an object"),
        ("version", None, "'version' must be a non-empty string"),
    ],
)
def test_a_card_with_wrong_field_types_is_a_model_error(
    small_model_dir: Path, tmp_path: Path, key: str, value: object, message: str
) -> None:
    copy = _copy(small_model_dir, tmp_path)
    card = json.loads((copy / "card.json").read_text())
    card[key] = value
    (copy / "card.json").write_text(json.dumps(card))
    _rehash(copy)
    with pytest.raises(ModelError, match=message):
        load_model(copy)


def test_types_outside_the_allow_list_are_refused(
    small_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts, "ALLOWED_TYPES", frozenset())
    with pytest.raises(ModelError, match="allow-list"):
        load_model(small_model_dir)


def test_the_stemmer_is_not_in_the_model(small_model_dir: Path) -> None:
    import zipfile

    with zipfile.ZipFile(small_model_dir / "model.skops") as archive:
        schema = archive.read("schema.json").decode()
    assert "Sastrawi" not in schema and "Stemmer" not in schema


def test_current_pointer_switches_atomically(small_model_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(small_model_dir, root / "v-a")
    shutil.copytree(small_model_dir, root / "v-b")
    with pytest.raises(ModelError):
        current_model_dir(root)
    set_current_model(root, "v-a")
    assert current_model_dir(root) == root / "v-a"
    set_current_model(root, "v-b")
    assert current_model_dir(root) == root / "v-b"
    assert sorted(p.name for p in root.iterdir()) == ["CURRENT", "v-a", "v-b"]
    (root / "CURRENT").write_text("../elsewhere\n")
    with pytest.raises(ModelError, match="invalid model version"):
        current_model_dir(root)


def test_threshold_choice_and_metrics() -> None:
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = np.array([0.1, 0.2, 0.3, 0.75, 0.6, 0.7, 0.8, 0.9])
    choice = choose_threshold(labels, scores, 0.99)
    assert choice["threshold"] == 0.8  # 0.75 is a false positive, so stop above it
    metrics = binary_metrics(labels, scores, choice["threshold"])
    assert metrics["precision"] == 1.0 and metrics["recall"] == 0.5
    assert metrics["confusion_matrix"] == {"tn": 4, "fp": 0, "fn": 2, "tp": 2}


def test_operating_points_count_flags_at_each_threshold() -> None:
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.75, 0.6, 0.7, 0.8, 0.9]
    points = operating_points(labels, scores, [0.95, 0.5, 0.75, 0.5])
    assert [p["threshold"] for p in points] == [0.5, 0.75, 0.95]  # sorted, once each
    at_half, at_75, at_95 = points
    assert (at_half["flagged"], at_half["precision"], at_half["recall"]) == (5, 0.8, 1.0)
    assert at_half["f1"] == round(2 * 0.8 / 1.8, 4)
    assert (at_75["flagged"], at_75["precision"], at_75["recall"]) == (3, round(2 / 3, 4), 0.5)
    # nothing flagged: precision and F1 are undefined, not zero
    assert at_95 == {"threshold": 0.95, "flagged": 0, "precision": None, "recall": 0.0, "f1": None}


def test_diversity_counts_near_duplicates() -> None:
    texts = [
        "ayo warga semua pilih calon kita yang jujur dan merakyat nomor satu",
        "ayo warga semua pilih calon kita yang jujur dan merakyat nomor dua",
        "hari ini hujan deras sekali di kantor",
    ]
    stats = diversity(texts)
    assert stats["near_duplicate_texts"] == 2
    assert stats["distinct_1grams"] == len({w for t in texts for w in t.split()})


def test_write_model_dir_hashes_every_file(small_model: LoadedModel, tmp_path: Path) -> None:
    target = tmp_path / "again"
    write_model_dir(target, small_model.pipeline, small_card("again"), "# again\n")
    manifest = json.loads((target / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest


def test_write_model_dir_replaces_a_version_only_when_the_new_one_is_complete(
    small_model: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "models" / "rebuilt"
    write_model_dir(target, small_model.pipeline, small_card("old"), "# old\n")
    (target / "stale.txt").write_text("left by the old build")

    def crash(path: Path) -> str:
        raise RuntimeError("killed while writing the manifest")

    # A crash after the model and cards are written, before the manifest.
    with monkeypatch.context() as patched:
        patched.setattr(artifacts, "sha256_file", crash)
        with pytest.raises(RuntimeError):
            write_model_dir(target, small_model.pipeline, small_card("new"), "# new\n")
    assert verify_model_dir(target)["version"] == "old"  # untouched, still consistent
    assert sorted(p.name for p in target.parent.iterdir()) == ["rebuilt"]  # nothing left over

    write_model_dir(target, small_model.pipeline, small_card("new"), "# new\n")
    assert verify_model_dir(target)["version"] == "new"
    assert not (target / "stale.txt").exists()  # a new directory, not the old one rewritten
    assert sorted(p.name for p in target.parent.iterdir()) == ["rebuilt"]


def test_write_model_dir_rebuilds_the_current_model_in_place(
    small_model: LoadedModel, tmp_path: Path
) -> None:
    # `netra train` on unchanged data rebuilds the current version under the same name
    root = tmp_path / "models"
    write_model_dir(root / "in-use", small_model.pipeline, small_card("in-use"), "# in use\n")
    set_current_model(root, "in-use")
    write_model_dir(root / "in-use", small_model.pipeline, small_card("in-use"), "# rebuilt\n")
    assert verify_model_dir(root / "in-use")["version"] == "in-use"
    assert (root / "in-use" / "card.md").read_text() == "# rebuilt\n"
    assert current_model_dir(root) == root / "in-use"
    assert sorted(p.name for p in root.iterdir()) == ["CURRENT", "in-use"]


# -- the shipped model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(profiles: list[ElectionProfile]) -> LoadedModel:
    return load_model(current_model_dir(ROOT / "models"), profiles)


def test_shipped_model_reproduces_its_card(
    shipped: LoadedModel, corpus: Corpus, normalizer: Normalizer
) -> None:
    card = shipped.card
    assert card["data"]["sha256"] == corpus.sha256, "corpus changed: run `netra train`"
    assert card["profiles"]["ids"] == [p.id for p in shipped.profiles]
    normalized = [normalizer.normalize(text) for text in corpus.texts]
    scores = shipped.pipeline.predict_proba(columns(normalized))[:, 1]
    rounded = ";".join(f"{value:.6f}" for value in scores.tolist())
    assert hashlib.sha256(rounded.encode()).hexdigest() == card["training_scores_sha256"]
    assert binary_metrics(corpus.labels, scores, shipped.threshold) == card["metrics"]["training"]
    fast, _ = shipped.features.transform(normalized[:200])
    assert np.allclose(
        shipped.classifier.predict_proba(fast)[:, 1], scores[:200], rtol=0, atol=1e-12
    )


def test_shipped_model_card_is_complete(shipped: LoadedModel) -> None:
    card = shipped.card
    for key in ("version", "threshold", "data", "diversity", "libraries", "metrics", "settings"):
        assert key in card
    assert card["version"] == shipped.directory.name
    assert 0.0 < shipped.threshold < 1.0
    assert "held_out" in card["metrics"], "ship the model with --dev figures in its card"
    assert card["metrics"]["cross_validation_by_file"]["by_file"].keys() == set(
        card["data"]["files"]
    )
    assert card["held_out_log"], "every look at the held-out set is logged"
    assert "Looks at the held-out set" in (shipped.directory / "card.md").read_text()
    assert (shipped.directory / "card.md").read_text().startswith("# Model card")


def test_shipped_model_separates_obvious_cases(shipped: LoadedModel) -> None:
    partisan, neutral = shipped.score(
        [
            "Ayo warga Sumber Makmur, 27 November coblos nomor 1! Bambang Endang pasti menang ✌️",
            "KPU Kabupaten Sumber Makmur mengingatkan warga membawa KTP ke TPS pada 27 November.",
        ]
    )
    assert partisan.label == "partisan" and neutral.label == "not_partisan"
    assert partisan.score > neutral.score


def test_top_terms_sums_surfaces_ranks_and_limits() -> None:
    surfaces = [
        ("a", "b", "a", "c", "d", "e", "f", "g"),
        (),
        ("x", "y", "x", "z"),
    ]
    values = np.array([1.0, -2.0, 0.5, 3.0, 0.2, -0.1, -2.0, 0.0, 0.3, 0.3, -0.5, -0.3])
    first, empty, last = top_terms(surfaces, values, limit=2)
    # "a" sums to 1.5; "b" and "f" tie at -2.0 and keep text order; zero terms are left out
    assert first == (("c", 3.0), ("a", 1.5), ("b", -2.0), ("f", -2.0))
    assert empty == ()
    # "x" sums to -0.2: against, after the stronger "z"
    assert last == (("y", 0.3), ("z", -0.3), ("x", -0.2))


def test_fast_decision_matches_sklearn_and_survives_a_cache_reset(
    small_model: LoadedModel,
    normalizer: Normalizer,
    corpus: Corpus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    normalized = [normalizer.normalize(text) for text in corpus.texts[3::11]]
    linear = small_model.classifier.calibrated_classifiers_[0].estimator
    expected = linear.decision_function(
        small_model.pipeline.named_steps["features"].transform(columns(normalized))
    )
    features = FastFeatures(small_model.pipeline.named_steps["features"])
    got = features.batch(normalized, small_model.coef, small_model.intercept, explain=False)
    assert np.allclose(got.decision, expected, rtol=0, atol=1e-10)
    # a tiny token table is cleared between batches; results must not change
    monkeypatch.setattr(features_module, "TOKEN_CACHE_SIZE", 50)
    for start in range(0, len(normalized), 40):
        part = features.batch(
            normalized[start : start + 40], small_model.coef, small_model.intercept, explain=True
        )
        assert np.allclose(part.decision, expected[start : start + 40], rtol=0, atol=1e-10)
        assert part.contributions is not None
    assert len(features._keys) <= 50 + 40 * 200


def test_file_folds_hold_out_one_file_each() -> None:
    folds = file_folds(["b.csv", "a.csv", "b.csv", "c.csv"])
    assert folds.tolist() == [1, 0, 1, 2]


def test_other_profiles_keep_the_operating_threshold(small_model: LoadedModel) -> None:
    # an authority's configured threshold is set on the loaded model; re-masking with other
    # profiles must not silently fall back to the card's threshold
    small_model.threshold, stored = 0.91, small_model.threshold
    try:
        assert small_model.with_profiles(()).threshold == 0.91
    finally:
        small_model.threshold = stored
