"""Fixtures for classifier tests: profiles, a normaliser and a small model trained once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers.artifacts import write_model_dir
from classifiers.corpus import Corpus, load_corpus
from classifiers.features import ModelSettings
from classifiers.model import LoadedModel, load_model
from classifiers.normalize import NORMALIZER_VERSION, Normalizer, data_fingerprint
from classifiers.profiles import ContestantMasker, ElectionProfile, load_profiles
from classifiers.training import columns, fit

ROOT = Path(__file__).resolve().parent.parent.parent
ELECTIONS = ROOT / "config" / "elections"
CORPUS = ROOT / "classifiers" / "corpus"
SMALL_SETTINGS = ModelSettings(calibration_folds=3, seed=11)


@pytest.fixture(scope="session")
def profiles() -> list[ElectionProfile]:
    """Every shipped election profile."""
    return load_profiles(ELECTIONS)


@pytest.fixture(scope="session")
def normalizer(profiles: list[ElectionProfile]) -> Normalizer:
    """A normaliser masking every shipped contest."""
    return Normalizer(ContestantMasker(profiles))


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    """The seed corpus."""
    return load_corpus(CORPUS)


@pytest.fixture(scope="session")
def small_sample(corpus: Corpus) -> tuple[list[str], list[int]]:
    """Every fifth seed text: enough to train a real (small) model quickly."""
    texts = list(corpus.texts[::5])
    labels = list(corpus.labels[::5])
    return texts, labels


def small_card(version: str = "test-small") -> dict[str, object]:
    """The minimum card a loadable model needs."""
    return {
        "format_version": 1,
        "version": version,
        "threshold": 0.5,
        "settings": SMALL_SETTINGS.to_dict(),
        "normalizer": {"version": NORMALIZER_VERSION, "data_sha256": data_fingerprint()},
    }


@pytest.fixture(scope="session")
def small_model_dir(
    tmp_path_factory: pytest.TempPathFactory,
    normalizer: Normalizer,
    small_sample: tuple[list[str], list[int]],
) -> Path:
    """A model trained on the small sample and written to disk."""
    texts, labels = small_sample
    pipeline = fit(columns([normalizer.normalize(t) for t in texts]), labels, SMALL_SETTINGS)
    directory = tmp_path_factory.mktemp("models") / "test-small"
    write_model_dir(directory, pipeline, small_card(), "# test model\n")
    return directory


@pytest.fixture(scope="session")
def small_model(small_model_dir: Path, profiles: list[ElectionProfile]) -> LoadedModel:
    """The small model, loaded and verified."""
    return load_model(small_model_dir, profiles)


def scores_of(model: LoadedModel, texts: list[str]) -> np.ndarray:
    """Scores as an array."""
    return np.array([result.score for result in model.score(texts)])
