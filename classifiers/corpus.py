"""The seed training corpus: loading, hashing and diversity statistics.

`classifiers/corpus/*.csv`, columns `text,label,platform,register,contest,category`, label
1 = partisan. The data hash covers every file's name and bytes, so a model card names exactly
the data it was trained on.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from pipeline.errors import InputFileError

CORPUS_COLUMNS: tuple[str, ...] = ("text", "label", "platform", "register", "contest", "category")
NEAR_DUPLICATE_JACCARD = 0.5
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Corpus:
    """Labelled texts with their metadata columns."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    platform: tuple[str, ...]
    register: tuple[str, ...]
    contest: tuple[str, ...]
    category: tuple[str, ...]
    files: tuple[str, ...]  # per row: which file it came from
    sha256: str
    file_hashes: dict[str, str]

    def __len__(self) -> int:
        return len(self.texts)

    def summary(self) -> dict[str, Any]:
        """Sizes and label balance overall and per metadata column."""

        def table(values: Sequence[str]) -> dict[str, dict[str, int]]:
            counts: dict[str, dict[str, int]] = {}
            for value, label in zip(values, self.labels, strict=True):
                row = counts.setdefault(value, {"rows": 0, "partisan": 0})
                row["rows"] += 1
                row["partisan"] += label
            return dict(sorted(counts.items()))

        return {
            "rows": len(self),
            "partisan": sum(self.labels),
            "not_partisan": len(self) - sum(self.labels),
            "files": {name: self.files.count(name) for name in sorted(set(self.files))},
            "by_contest": table(self.contest),
            "by_platform": table(self.platform),
            "by_register": table(self.register),
            "by_category": table(self.category),
        }


def load_corpus(directory: Path) -> Corpus:
    """Read every `*.csv` in a folder (sorted by name); bad rows raise InputFileError."""
    paths = sorted(directory.glob("*.csv"))
    if not paths:
        raise InputFileError(str(directory), None, "no corpus CSV files found")
    digest = hashlib.sha256()
    columns: dict[str, list[Any]] = {name: [] for name in (*CORPUS_COLUMNS, "file")}
    file_hashes: dict[str, str] = {}
    for path in paths:
        raw = path.read_bytes()
        digest.update(path.name.encode("utf-8") + b"\0" + raw + b"\0")
        file_hashes[path.name] = hashlib.sha256(raw).hexdigest()
        reader = csv.DictReader(raw.decode("utf-8-sig").splitlines(keepends=True))
        missing = [c for c in CORPUS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputFileError(
                str(path), 1, f"missing column(s) {missing}; found {reader.fieldnames}"
            )
        for row in reader:
            line = reader.line_num
            text = (row["text"] or "").strip()
            if not text:
                raise InputFileError(str(path), line, "empty text")
            label = (row["label"] or "").strip()
            if label not in ("0", "1"):
                raise InputFileError(str(path), line, f"label must be 0 or 1, got {label!r}")
            columns["text"].append(text)
            columns["label"].append(int(label))
            for name in ("platform", "register", "contest", "category"):
                columns[name].append((row[name] or "").strip() or "unknown")
            columns["file"].append(path.name)
    return Corpus(
        texts=tuple(columns["text"]),
        labels=tuple(columns["label"]),
        platform=tuple(columns["platform"]),
        register=tuple(columns["register"]),
        contest=tuple(columns["contest"]),
        category=tuple(columns["category"]),
        files=tuple(columns["file"]),
        sha256=digest.hexdigest(),
        file_hashes=file_hashes,
    )


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def diversity(texts: Sequence[str]) -> dict[str, Any]:
    """Distinct word n-grams (distinct-n ratios) and the near-duplicate rate of a corpus.

    A text is a near-duplicate when another text shares at least half of their combined word
    3-gram shingles (Jaccard >= 0.5) - what slot-filled templates produce.
    """
    tokenised = [_words(text) for text in texts]
    stats: dict[str, Any] = {"texts": len(texts), "words": sum(len(t) for t in tokenised)}
    for n in (1, 2, 3):
        grams = Counter(
            tuple(words[i : i + n]) for words in tokenised for i in range(len(words) - n + 1)
        )
        total = sum(grams.values())
        stats[f"distinct_{n}grams"] = len(grams)
        stats[f"distinct_{n}_ratio"] = round(len(grams) / total, 4) if total else 0.0
    shingle_ids: dict[tuple[str, ...], int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for index, words in enumerate(tokenised):
        size = 3 if len(words) >= 3 else max(len(words), 1)
        shingles = {tuple(words[i : i + size]) for i in range(max(len(words) - size + 1, 0))}
        for shingle in shingles:
            rows.append(index)
            cols.append(shingle_ids.setdefault(shingle, len(shingle_ids)))
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(tokenised), max(len(shingle_ids), 1)),
    )
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    overlap = (matrix @ matrix.T).tocoo()
    off_diagonal = overlap.row != overlap.col
    inter = overlap.data[off_diagonal]
    union = sizes[overlap.row[off_diagonal]] + sizes[overlap.col[off_diagonal]] - inter
    jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    near = np.unique(overlap.row[off_diagonal][jaccard >= NEAR_DUPLICATE_JACCARD])
    exact = len(texts) - len({" ".join(words) for words in tokenised})
    stats["near_duplicate_threshold_jaccard_3gram"] = NEAR_DUPLICATE_JACCARD
    stats["near_duplicate_texts"] = len(near)
    stats["near_duplicate_rate"] = round(len(near) / len(texts), 4) if texts else 0.0
    stats["exact_duplicate_texts"] = int(exact)
    return stats
