"""Model directories on disk: skops file, model card and a manifest of SHA-256 hashes.

    models/
      CURRENT                  the current version's directory name (switched with os.replace)
      <version>/
        model.skops            scikit-learn Pipeline, loaded without executing code
        card.json, card.md     data hash, sizes, library versions, metrics, threshold
        manifest.json          format version + SHA-256 of every file above

Loading checks the format version, every hash and skops' list of untrusted types against an
explicit allow-list; anything else is a `ModelError`, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

from pipeline.errors import ModelError

FORMAT_VERSION = 1
MODEL_FILE = "model.skops"
CARD_JSON = "card.json"
CARD_MD = "card.md"
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Types skops does not trust by default but our pipeline legitimately contains. Anything else
# in a model file means it was not written by `netra train`, and loading is refused.
ALLOWED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.model_selection._split.StratifiedKFold",
    }
)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_version_name(version: str) -> str:
    """A model version must be a plain directory name."""
    if not _VERSION_NAME.match(version) or version in (".", ".."):
        raise ModelError(f"invalid model version name {version!r}")
    return version


def write_model_dir(directory: Path, pipeline: Any, card: dict[str, Any], card_md: str) -> None:
    """Write model, card and manifest into a new sibling directory, then rename it into place.

    A crash leaves at most a hidden `.<name>.*.tmp` sibling, never a `directory` whose files
    disagree. An existing `directory` (a rebuild of the same version, as `netra train` on the
    same data does) is replaced only once the new one is complete.
    """
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    temporary = _new_sibling(directory, "tmp")
    try:
        _write_files(temporary, pipeline, card, card_md)
        _move_into_place(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _move_into_place(temporary: Path, directory: Path) -> None:
    try:
        os.rename(temporary, directory)  # atomic while `directory` does not exist
        return
    except OSError:
        if not directory.is_dir():
            raise
    # POSIX cannot rename over a non-empty directory: move the old one aside first. A reader
    # in between finds no directory (a clear ModelError), never a mix of old and new files.
    old = _new_sibling(directory, "old")
    os.rename(directory, old / directory.name)
    try:
        os.rename(temporary, directory)
    except OSError:
        os.rename(old / directory.name, directory)  # if this fails too, `old` keeps the model
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _new_sibling(directory: Path, suffix: str) -> Path:
    """A new hidden, uniquely named directory beside `directory` (mode from the umask)."""
    while True:
        candidate = directory.parent / f".{directory.name}.{uuid.uuid4().hex[:12]}.{suffix}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


def _write_files(directory: Path, pipeline: Any, card: dict[str, Any], card_md: str) -> None:
    """Model, card and manifest into `directory`; the manifest last."""
    sio.dump(pipeline, directory / MODEL_FILE, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    (directory / CARD_JSON).write_text(
        json.dumps(card, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (directory / CARD_MD).write_text(card_md, encoding="utf-8")
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {name: sha256_file(directory / name) for name in (MODEL_FILE, CARD_JSON, CARD_MD)},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: missing") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable or not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def verify_model_dir(directory: Path) -> dict[str, Any]:
    """Check format version and every file hash; returns the card."""
    if not directory.is_dir():
        raise ModelError(f"model directory {directory} does not exist")
    manifest = _read_json(directory / MANIFEST)
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{directory / MANIFEST}: no format_version")
    if version > FORMAT_VERSION:
        raise ModelError(
            f"{directory}: model format {version} is newer than this Netra supports "
            f"({FORMAT_VERSION}); upgrade Netra or use an older model"
        )
    files = manifest.get("files")
    # All three: an unlisted card.md could be rewritten at will, and `netra models show` and
    # reviewers read it.
    required = (MODEL_FILE, CARD_JSON, CARD_MD)
    if not isinstance(files, dict) or any(name not in files for name in required):
        raise ModelError(f"{directory / MANIFEST}: must list {', '.join(required)}")
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            raise ModelError(f"{path}: listed in the manifest but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelError(
                f"{path}: SHA-256 {actual[:12]}… does not match the manifest ({str(expected)[:12]}…);"
                " the model was modified after training"
            )
    card = _read_json(directory / CARD_JSON)
    card_format = card.get("format_version", FORMAT_VERSION)
    if not isinstance(card_format, int) or isinstance(card_format, bool):
        raise ModelError(f"{directory / CARD_JSON}: format_version must be a number")
    if card_format > FORMAT_VERSION:
        raise ModelError(f"{directory / CARD_JSON}: card format is newer than this Netra supports")
    return card


def load_pipeline(directory: Path) -> Any:
    """Load the skops file after checking its types against the allow-list."""
    path = directory / MODEL_FILE
    try:
        # One pass: skops audits the whole tree against the allow-list before it builds any
        # object, and refuses the file if anything else is in it (a separate
        # get_untrusted_types call would read and walk the tree twice).
        return sio.load(path, trusted=sorted(ALLOWED_TYPES))
    except sio.exceptions.UntrustedTypesFoundException as exc:
        raise ModelError(f"{path}: refusing to load types not on the allow-list: {exc}") from exc
    except Exception as exc:  # skops raises assorted errors on a corrupt archive
        raise ModelError(f"{path}: not a readable skops model: {exc}") from exc


def current_model_dir(models_root: Path) -> Path:
    """The directory named by `models/CURRENT`."""
    pointer = models_root / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ModelError(f"{pointer}: cannot read the current model pointer: {exc}") from exc
    return models_root / check_version_name(name)


def set_current_model(models_root: Path, version: str) -> None:
    """Point `models/CURRENT` at a version atomically (write a temp file, then os.replace)."""
    check_version_name(version)
    if not (models_root / version).is_dir():
        raise ModelError(f"{models_root / version}: no such model directory")
    temporary = models_root / f".{CURRENT}.{os.getpid()}.tmp"
    temporary.write_text(version + "\n", encoding="utf-8")
    os.replace(temporary, models_root / CURRENT)
