"""The typed records that flow through Netra (standard library only).

A `Post` is what a collector captured and never changes. What happens to it later lives in
separate records keyed by `Post.key`: a `Score` (classifier), a `Match` (registry linker) and a
`Decision` (human reviewer).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

PostKind = Literal["post", "comment", "repost", "like", "follow", "profile"]
POST_KINDS: tuple[str, ...] = ("post", "comment", "repost", "like", "follow", "profile")
# Kinds whose content is their parent's: a repost without words of its own, a like (an
# account's like of a post, captured with the post it likes as parent; its text is empty) and a
# follow (an account following another, captured with the followed account's `profile` record,
# its name and bio, as parent; its text is empty too).
PARENT_CONTENT_KINDS: frozenset[str] = frozenset({"repost", "like", "follow"})
METRIC_NAMES: tuple[str, ...] = ("likes", "replies", "shares", "views")

POST_FIELDS: tuple[str, ...] = (
    "platform",
    "post_id",
    "url",
    "author_id",
    "author_handle",
    "author_name",
    "author_bio",
    "text",
    "created_at",
    "parent_id",
    "kind",
    "lang",
    "metrics",
    "raw",
)
REQUIRED_FIELDS: tuple[str, ...] = ("platform", "post_id", "text", "created_at")
# The largest count a metric may hold: a signed 64-bit integer, what a database BIGINT and most
# JSON readers keep exactly; anything larger is a broken export, not an audience.
MAX_METRIC = 2**63 - 1


def takes_parent_content(kind: str, text: str, parent_text: str | None) -> bool:
    """Whether a post's content is its parent's: a like, a follow, or a bare repost."""
    return kind in PARENT_CONTENT_KINDS and (not text.strip() or text == parent_text)


def judged_text(kind: str, text: str, parent_text: str | None) -> str:
    """The text a post is judged on: its parent's when `takes_parent_content`, else its own."""
    if parent_text and takes_parent_content(kind, text, parent_text):
        return parent_text
    return text


class RecordError(ValueError):
    """A record field is missing or has the wrong type; `field` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"field {field_name!r}: {message}")
        self.field = field_name


def parse_datetime(value: str | datetime, field_name: str = "created_at") -> datetime:
    """Parse an ISO 8601 string (or datetime) into an aware UTC datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise RecordError(field_name, f"not an ISO 8601 datetime: {value!r}") from exc
    else:
        raise RecordError(field_name, f"expected an ISO 8601 datetime, got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise RecordError(field_name, f"datetime has no time zone: {value!r}")
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix, the form Netra writes everywhere."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def content_hash(text: str) -> str:
    """SHA-256 (hex) of a text as UTF-8; the evidence hash of captured content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _unencodable(value: Any) -> str | None:
    """The first character of `value` (a JSON value) that UTF-8 cannot encode, or None."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return value[exc.start]
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _unencodable(key) or _unencodable(item)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            found = _unencodable(item)
            if found:
                return found
    return None


def check_encodable(data: Mapping[str, Any]) -> None:
    """Raise RecordError naming the first field holding text that UTF-8 cannot encode."""
    # JSON may spell a lone UTF-16 surrogate ("\\ud800"); Python decodes it into a str that
    # neither the evidence hash nor the database can store, so the record is refused here.
    try:  # the common case, at C speed; the walk below only runs to name the field
        json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
        return
    except UnicodeEncodeError:
        pass
    for name, value in data.items():
        found = _unencodable(name) or _unencodable(value)
        if found:
            raise RecordError(
                str(name), f"contains {found!r}, a lone surrogate that UTF-8 cannot encode"
            )


def _metric_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError("metrics", f"{name!r} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError("metrics", f"{name!r} must be a finite number, got {value!r}")
    count = int(value)
    if abs(count) > MAX_METRIC:
        raise RecordError("metrics", f"{name!r} is too large (more than {MAX_METRIC})")
    return count


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(name, f"expected a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Post:
    """One captured post, comment or repost; immutable once collected."""

    platform: str
    post_id: str
    text: str
    created_at: datetime
    url: str | None = None
    author_id: str | None = None
    author_handle: str | None = None
    author_name: str | None = None
    author_bio: str | None = None
    parent_id: str | None = None
    kind: PostKind = "post"
    lang: str | None = None
    metrics: Mapping[str, int] = field(default_factory=dict)
    raw: Any = None

    def __post_init__(self) -> None:
        if not self.platform:
            raise RecordError("platform", "must not be empty")
        if not self.post_id:
            raise RecordError("post_id", "must not be empty")
        if not isinstance(self.text, str):
            raise RecordError("text", "must be a string")
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise RecordError("created_at", "must be timezone-aware")
        if self.created_at.utcoffset() != UTC.utcoffset(None):
            object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        if self.kind not in POST_KINDS:
            raise RecordError("kind", f"must be one of {', '.join(POST_KINDS)}, got {self.kind!r}")

    @property
    def key(self) -> str:
        """Stable identity `platform:post_id`, used for dedup and joins."""
        return f"{self.platform}:{self.post_id}"

    @property
    def parent_key(self) -> str | None:
        """Key of the post this one answers or reposts, if any."""
        return f"{self.platform}:{self.parent_id}" if self.parent_id else None

    @property
    def text_hash(self) -> str:
        """SHA-256 of the captured text."""
        return content_hash(self.text)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: exactly `POST_FIELDS`, datetimes as ISO 8601."""
        return {
            "platform": self.platform,
            "post_id": self.post_id,
            "url": self.url,
            "author_id": self.author_id,
            "author_handle": self.author_handle,
            "author_name": self.author_name,
            "author_bio": self.author_bio,
            "text": self.text,
            "created_at": format_datetime(self.created_at),
            "parent_id": self.parent_id,
            "kind": self.kind,
            "lang": self.lang,
            "metrics": dict(self.metrics),
            "raw": self.raw,
        }

    def to_json(self) -> str:
        """One JSON Lines line (no trailing newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Post:
        """Build a Post from its JSON form, validating every field."""
        if not isinstance(data, Mapping):
            raise RecordError("<record>", "expected a JSON object")
        unknown = set(data) - set(POST_FIELDS)
        if unknown:
            raise RecordError(sorted(unknown)[0], "unknown field")
        check_encodable(data)
        for name in REQUIRED_FIELDS:
            if data.get(name) in (None, ""):
                if name == "text" and data.get(name) == "":
                    continue
                raise RecordError(name, "is required")
        text = data["text"]
        if not isinstance(text, str):
            raise RecordError("text", "expected a string")
        kind = data.get("kind") or "post"
        if kind not in POST_KINDS:
            raise RecordError("kind", f"must be one of {', '.join(POST_KINDS)}, got {kind!r}")
        metrics_in = data.get("metrics") or {}
        if not isinstance(metrics_in, Mapping):
            raise RecordError("metrics", "expected an object")
        metrics: dict[str, int] = {}
        for name, value in metrics_in.items():
            if value is not None:
                metrics[str(name)] = _metric_count(str(name), value)
        return cls(
            platform=str(_optional_str(data, "platform")),
            post_id=str(_optional_str(data, "post_id")),
            url=_optional_str(data, "url"),
            author_id=_optional_str(data, "author_id"),
            author_handle=_optional_str(data, "author_handle"),
            author_name=_optional_str(data, "author_name"),
            author_bio=_optional_str(data, "author_bio"),
            text=text,
            created_at=parse_datetime(data["created_at"]),
            parent_id=_optional_str(data, "parent_id"),
            kind=kind,
            lang=_optional_str(data, "lang"),
            metrics=metrics,
            raw=data.get("raw"),
        )

    @classmethod
    def from_json(cls, line: str) -> Post:
        """Parse one JSON Lines line."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError("<json>", f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
        return cls.from_dict(data)


def write_jsonl(posts: Iterable[Post], stream: TextIO) -> int:
    """Write posts as JSON Lines; returns how many were written."""
    count = 0
    for post in posts:
        stream.write(post.to_json())
        stream.write("\n")
        count += 1
    return count


def read_jsonl(stream: TextIO) -> Iterator[tuple[int, Post]]:
    """Yield (line number, Post) from JSON Lines, skipping blank lines; raises RecordError."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, Post.from_json(line)
        except RecordError as exc:
            exc.line = number  # type: ignore[attr-defined]
            raise


@dataclass(frozen=True, slots=True)
class Score:
    """A classifier's verdict on one post's text."""

    post_key: str
    model_version: str
    score: float
    label: Literal["partisan", "not_partisan"]
    threshold: float
    explanation: tuple[tuple[str, float], ...] = ()
    contestants: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    # SHA-256 of the text that was scored (`StoredPost.text_hash` as read). A post can be
    # edited while it is being scored; the hash keeps a verdict from being filed under a text
    # it never saw. None means "the post's current text", for callers that cannot race.
    text_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A link between a post's author and a registered (or suspected) ASN account."""

    post_key: str
    level: Literal["user_id", "handle", "profile_url", "name_agency", "self_declared"]
    confidence: float
    account_id: int | None
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """A reviewer's decision on a queue item."""

    item_id: int
    reviewer: str
    from_status: str
    to_status: str
    decided_at: datetime
    category: str | None = None
    reason: str | None = None
    note: str | None = None
    content_label: Literal["partisan", "not_partisan"] | None = None
