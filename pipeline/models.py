"""Model versions in the models directory: list, show, promote, roll back, re-score the queue.

    models/
      CURRENT          the current version's name (switched atomically with os.replace)
      HISTORY.jsonl    append-only events: trained (with the promotion decision), promote, rollback
      <version>/       model.skops, card.json, card.md, manifest.json (classifiers.artifacts)

Promotion loads the version first, so a corrupt or tampered directory is refused before
anything changes; then, under a file lock, `CURRENT` is replaced in one `os.replace` and the
event is appended to the history. Model directories are complete before they are named and are
never modified, so a scorer reading `CURRENT` at that moment loads the old model or the new
one, never half of either. Afterwards the pending queue items are re-scored with the new model;
each item and each score row names the model version it came from.

Rollback returns to the version that was current before the promotion now in effect: the history
replays as a stack (a promotion pushes, a rollback pops), so rolling back twice walks back twice.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from classifiers.artifacts import (
    CARD_MD,
    CURRENT,
    MANIFEST,
    check_version_name,
    set_current_model,
    verify_model_dir,
)
from classifiers.model import LoadedModel
from pipeline import schema
from pipeline.config import Config
from pipeline.errors import ModelError, UsageError
from pipeline.queue import priority_of
from pipeline.records import format_datetime, judged_text
from pipeline.store import Store, utcnow

try:  # POSIX; elsewhere promotions rely on os.replace alone
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

HISTORY = "HISTORY.jsonl"
LOCK = ".lock"
RESCORE_BATCH = 500


# -- history ----------------------------------------------------------------------------------


@contextlib.contextmanager
def models_lock(root: Path) -> Iterator[None]:
    """Serialise promotions, rollbacks and history writes across processes and threads."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_history(root: Path) -> list[dict[str, Any]]:
    """The history events, oldest first (a torn last line from a crash is skipped)."""
    path = root / HISTORY
    if not path.exists():
        return []
    events: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s:%d: unreadable history line skipped", path, number)
            continue
        if isinstance(event, dict) and isinstance(event.get("version"), str):
            events.append(event)
    return events


def append_history(root: Path, event: dict[str, Any]) -> None:
    """Append one event (flushed to disk before returning); call under `models_lock`."""
    line = json.dumps(event, ensure_ascii=False, sort_keys=True, default=str)
    with open(root / HISTORY, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def current_version(root: Path) -> str | None:
    """The name in `CURRENT`, or None when there is no current model yet."""
    pointer = root / CURRENT
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    return check_version_name(name) if name else None


def promotion_stack(history: Sequence[dict[str, Any]]) -> list[str]:
    """Versions in promotion order after replaying promote (push) and rollback (pop) events."""
    stack: list[str] = []
    for event in history:
        version = event["version"]
        if event.get("action") == "promote":
            previous = event.get("previous")
            if previous and (not stack or stack[-1] != previous):
                # CURRENT was set outside this history (first promotion, or `netra train`).
                stack.append(previous)
            stack.append(version)
        elif event.get("action") == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
    return stack


def rollback_target(root: Path) -> str | None:
    """The version a rollback would make current, or None."""
    stack = promotion_stack(read_history(root))
    current = current_version(root)
    if stack and stack[-1] == current:
        return stack[-2] if len(stack) >= 2 else None
    return stack[-1] if stack else None


def _actor(by: str | None) -> str:
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# -- promotion ---------------------------------------------------------------------------------


@dataclass
class PromotionResult:
    """What a promotion or rollback did."""

    action: str
    version: str
    previous: str | None
    changed: bool
    rescored: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)


def load_version(config: Config, version: str) -> LoadedModel:
    """Verify and load one version with the configured election profiles.

    ModelError if it does not verify, UsageError if it is missing or its directory name is not
    the version in its card.
    """
    from pipeline.classify import load_scoring_model

    root = config.paths.models_dir
    check_version_name(version)
    if not (root / version).is_dir():
        raise UsageError(f"no model version {version!r} in {root}")
    model = load_scoring_model(config, root / version)
    if model.version != version:
        # CURRENT would name the directory while every score names the card's version.
        raise UsageError(
            f"{root / version}: its card names version {model.version!r}, not {version!r}, so "
            "models/CURRENT and the version stored with every score would disagree: promote "
            f"{model.version!r} (a directory of that name) instead"
        )
    return model


def promote(
    config: Config,
    version: str,
    *,
    store: Store | None = None,
    action: str = "promote",
    by: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> PromotionResult:
    """Make `version` current (refused if it does not verify and load), then re-score the queue."""
    root = config.paths.models_dir
    model = load_version(config, version)
    with models_lock(root):
        previous = current_version(root)
        if previous == version:
            return PromotionResult(action, version, previous, False, notes=["already current"])
        set_current_model(root, version)
        append_history(
            root,
            {
                "action": action,
                "version": version,
                "previous": previous,
                "at": format_datetime(now or utcnow()),
                "by": _actor(by),
                "reason": reason,
            },
        )
    log.info("%s: %s is now current (was %s)", action, version, previous)
    result = PromotionResult(action, version, previous, True)
    if config.classifier.model_version:
        result.notes.append(
            f"classifier.model_version pins {config.classifier.model_version} in the config: "
            "scoring keeps using that version, so pending items were not re-scored"
        )
    elif store is not None:
        result.rescored = rescore_pending(store, model, now=now)
    else:
        result.notes.append("no database: pending items were not re-scored")
    if config.classifier.threshold is not None:
        # A threshold chosen on one model's scores says little about another model's.
        result.notes.append(
            f"classifier.threshold {config.classifier.threshold} in the config replaces "
            f"{version}'s own threshold {model.card.get('threshold')}: check it against your "
            "labelled posts with `netra evaluate` before relying on it"
        )
    return result


def rollback(
    config: Config,
    *,
    store: Store | None = None,
    by: str | None = None,
    now: datetime | None = None,
) -> PromotionResult:
    """Return to the version that was current before the latest promotion still in effect."""
    root = config.paths.models_dir
    target = rollback_target(root)
    if target is None:
        raise UsageError(f"no earlier promoted model to roll back to (history: {root / HISTORY})")
    return promote(config, target, store=store, action="rollback", by=by, now=now)


def record_trained(
    root: Path, version: str, promoted: bool, reason: str, report: str | None = None
) -> None:
    """Record a retraining's outcome (promoted or kept as a candidate, and why)."""
    with models_lock(root):
        append_history(
            root,
            {
                "action": "trained",
                "version": version,
                "promoted": promoted,
                "reason": reason,
                "report": report,
                "at": format_datetime(utcnow()),
            },
        )


# -- re-scoring pending queue items -----------------------------------------------------------


def rescore_pending(
    store: Store, model: LoadedModel, *, now: datetime | None = None
) -> dict[str, int]:
    """Score pending items (and their posts) with `model`; items keep their place in the queue.

    The item's score, priority and model version change; its evidence keeps the score it was
    queued with. An item that now falls below the threshold stays pending: a person decides.
    """
    from pipeline.classify import score_record

    moment = now or utcnow()
    q, e, o, p = schema.queue_items, schema.evidence, schema.queue_occurrences, schema.posts
    counts = {"pending_items": 0, "below_threshold": 0, "posts_scored": 0}
    last = 0
    while True:
        with store.connect() as conn:
            items = conn.execute(
                select(
                    q.c.id,
                    q.c.link_confidence,
                    q.c.reach,
                    e.c.text,
                    e.c.kind,
                    e.c.context,
                    e.c.created_at,
                )
                .join(e, e.c.id == q.c.first_evidence_id)
                .where(q.c.status == "pending", q.c.id > last)
                .order_by(q.c.id)
                .limit(RESCORE_BATCH)
            ).all()
            if not items:
                break
            posts = conn.execute(
                select(p.c.id, p.c.platform, p.c.post_id, p.c.text, p.c.text_hash, p.c.created_at)
                .where(
                    p.c.id.in_(
                        select(o.c.post_pk).where(o.c.item_id.in_([row.id for row in items]))
                    )
                )
                .order_by(p.c.id)
            ).all()
        last = items[-1].id
        texts = [
            judged_text(row.kind, row.text, (row.context or {}).get("parent_text")) for row in items
        ]
        results = model.score(texts, [row.created_at.date() for row in items], explain=False)
        with store.transaction() as conn:
            for row, result in zip(items, results, strict=True):
                conn.execute(
                    update(q)
                    .where(q.c.id == row.id, q.c.status == "pending")
                    .values(
                        score=result.score,
                        priority=priority_of(result.score, row.link_confidence, row.reach),
                        model_version=model.version,
                        updated_at=moment,
                    )
                )
                counts["pending_items"] += 1
                counts["below_threshold"] += result.score < model.threshold
        post_results = model.score(
            [row.text for row in posts], [r.created_at.date() for r in posts]
        )
        counts["posts_scored"] += store.write_scores(
            [
                (
                    row.id,
                    score_record(f"{row.platform}:{row.post_id}", model, result, row.text_hash),
                )
                for row, result in zip(posts, post_results, strict=True)
            ],
            now=moment,
        )
    log.info("re-scored %d pending items with %s", counts["pending_items"], model.version)
    return counts


# -- listing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """One directory in the models folder and what is known about it."""

    version: str
    status: (
        str  # current | previous | promoted earlier | rolled back | candidate | available | invalid
    )
    card: dict[str, Any] | None
    error: str | None
    modified: datetime
    reason: str | None = None


def _status_of(
    version: str,
    current: str | None,
    previous: str | None,
    history: Sequence[dict[str, Any]],
) -> tuple[str, str | None]:
    if version == current:
        return "current", None
    if version == previous:
        return "previous", None
    if version in promotion_stack(history):
        return "promoted earlier", None
    if any(e["version"] == version and e.get("action") == "promote" for e in history):
        return "rolled back", None
    trained = [e for e in history if e["version"] == version and e.get("action") == "trained"]
    if trained and not trained[-1].get("promoted"):
        return "candidate", trained[-1].get("reason")
    return "available", None


def list_models(root: Path) -> list[ModelInfo]:
    """Every model directory, oldest first, each verified (a tampered one shows as invalid)."""
    if not root.is_dir():
        return []
    history = read_history(root)
    current = current_version(root)
    previous = rollback_target(root)
    infos: list[ModelInfo] = []
    for directory in root.iterdir():
        if not directory.is_dir() or directory.name.startswith("."):
            continue
        if not (directory / MANIFEST).exists() and directory.name != current:
            continue  # not a model directory (e.g. a reports folder)
        try:
            card: dict[str, Any] | None = verify_model_dir(directory)
            error = None
        except ModelError as exc:
            card, error = None, str(exc)
        status, reason = _status_of(directory.name, current, previous, history)
        if error is not None:
            status = "invalid" if status != "current" else "current (INVALID)"
        stamp = directory / MANIFEST if (directory / MANIFEST).exists() else directory
        modified = datetime.fromtimestamp(stamp.stat().st_mtime, UTC)
        infos.append(ModelInfo(directory.name, status, card, error, modified, reason))
    infos.sort(key=lambda info: (info.modified, info.version))
    return infos


def show_model(root: Path, version: str) -> dict[str, Any]:
    """A version's card, card text, status and history events."""
    check_version_name(version)
    for info in list_models(root):
        if info.version == version:
            break
    else:
        raise UsageError(f"no model version {version!r} in {root}")
    card_md = root / version / CARD_MD
    return {
        "version": version,
        "status": info.status,
        "reason": info.reason,
        "error": info.error,
        "card": info.card,
        "card_md": card_md.read_text(encoding="utf-8") if card_md.exists() else None,
        "history": [
            event
            for event in read_history(root)
            if version in (event["version"], event.get("previous"))
        ],
    }


def format_models(infos: Sequence[ModelInfo]) -> str:
    """The `netra models list` table."""
    if not infos:
        return "no models"
    lines = [f"  {'version':<32} {'status':<17} {'thresh':>6}  trained on (rows)"]
    for info in infos:
        marker = "*" if info.status.startswith("current") else " "
        card = info.card or {}
        data = card.get("data", {})
        rows = data.get("rows")
        origins = data.get("by_origin")
        if isinstance(origins, dict):
            trained_on = ", ".join(f"{name} {value['rows']}" for name, value in origins.items())
        else:
            trained_on = f"seed {rows}" if rows is not None else "–"
        threshold = card.get("threshold")
        lines.append(
            f"{marker} {info.version:<32} {info.status:<17} "
            f"{threshold if threshold is not None else '–':>6}  {trained_on}"
        )
        if info.reason:
            lines.append(f"      not promoted: {info.reason}")
        if info.error:
            lines.append(f"      refused: {info.error}")
    return "\n".join(lines)


def format_promotion(result: PromotionResult) -> str:
    """What `netra models promote|rollback` prints."""
    if not result.changed:
        return f"{result.version} is already the current model"
    verb = "rolled back to" if result.action == "rollback" else "promoted"
    lines = [f"{verb} {result.version} (was {result.previous or 'none'})"]
    if result.rescored is not None:
        counts = result.rescored
        lines.append(
            f"re-scored {counts['pending_items']} pending queue items "
            f"({counts['below_threshold']} now below the threshold, still pending for a person "
            f"to decide); {counts['posts_scored']} post scores written"
        )
    lines.extend(result.notes)
    return "\n".join(lines)


__all__ = [
    "HISTORY",
    "ModelInfo",
    "PromotionResult",
    "format_models",
    "format_promotion",
    "list_models",
    "load_version",
    "promote",
    "promotion_stack",
    "read_history",
    "record_trained",
    "rescore_pending",
    "rollback",
    "rollback_target",
    "show_model",
]
