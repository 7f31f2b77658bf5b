"""Tips: posts a person reports by hand, for what no API reaches (Facebook, WhatsApp, ...).

A tip becomes an ordinary `Post` (platform guessed from the link) so it flows through scoring,
linking and review like any collected post. Who reported it is NOT part of the post: the caller
stores the reporter apart (UU PDP: keep tipster identities separate) and exports leave it out.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipeline.errors import UsageError
from pipeline.records import Post

# Host suffix -> platform name used by the collectors and the registry of ASN accounts.
PLATFORM_HOSTS: tuple[tuple[str, str], ...] = (
    ("facebook.com", "facebook"),
    ("fb.com", "facebook"),
    ("fb.watch", "facebook"),
    ("instagram.com", "instagram"),
    ("tiktok.com", "tiktok"),
    ("x.com", "x"),
    ("twitter.com", "x"),
    ("youtube.com", "youtube"),
    ("youtu.be", "youtube"),
    ("t.me", "telegram"),
    ("whatsapp.com", "whatsapp"),
    ("wa.me", "whatsapp"),
    ("bsky.app", "bluesky"),
    ("threads.net", "threads"),
)


# Query parameters that share buttons add to a link. They identify who shared it (often the
# tipster: TikTok's sec_user_id, Instagram's igsh) or the share itself, never the post, so they
# are dropped before the link is stored or exported, and a repeat tip of the same post dedups.
SHARE_TRACKING_PARAMETERS = frozenset(
    {
        "igsh", "igshid", "_r", "_t", "u_code", "sec_user_id", "share_app_id", "share_item_id",
        "share_link_id", "sender_device", "sender_web_id", "web_id", "is_from_webapp", "tt_from",
        "checksum", "timestamp", "user_id", "mibextid", "rdid", "fbclid", "sfnsn", "s", "t", "si",
        "feature", "pp", "ref", "ref_src", "ref_url", "gclid", "__tn__", "__cft__[0]", "share_url",
    }
)  # fmt: skip


def clean_tip_url(url: str) -> str:
    """A reported link without its fragment and share-tracking query parameters.

    A link with nothing to drop keeps its query exactly as written (its tip id is a hash of
    it); the tracking names are only dropped from links of the platforms that add them.
    """
    parts = urlsplit(url.strip())
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    tracked = platform_of(url) != "web"
    kept = [
        (key, value)
        for key, value in pairs
        if not key.lower().startswith("utm_")
        and not (tracked and key.lower() in SHARE_TRACKING_PARAMETERS)
    ]
    query = parts.query if len(kept) == len(pairs) else urlencode(kept)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def platform_of(url: str) -> str:
    """The platform a link belongs to ('web' when unknown)."""
    host = (urlsplit(url).hostname or "").lower()
    for suffix, platform in PLATFORM_HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return platform
    return "web"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (the evidence hash of a screenshot)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def make_tip_post(
    url: str,
    text: str,
    *,
    author: str | None = None,
    platform: str | None = None,
    posted_at: datetime | None = None,
    received_at: datetime | None = None,
    screenshot_sha256: str | None = None,
) -> Post:
    """A Post for a reported link; its id is derived from the link so a repeat tip dedups."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"tip URL must be an http(s) link, got {url!r}")
    if not text.strip():
        raise UsageError("a tip needs --text: what the post says (or describes the screenshot)")
    received = (received_at or datetime.now(UTC)).astimezone(UTC)
    normalised = clean_tip_url(url)
    raw: dict[str, Any] = {
        "source": "tip",
        "received_at": received.isoformat().replace("+00:00", "Z"),
        "posted_at_known": posted_at is not None,
    }
    if screenshot_sha256:
        raw["screenshot_sha256"] = screenshot_sha256
    handle = author.strip().lstrip("@") if author and author.strip() else None
    return Post(
        platform=(platform or platform_of(normalised)).lower(),
        post_id="tip-" + hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:24],
        url=normalised,
        author_handle=handle,
        text=text.strip(),
        # When the reporter cannot say when it was posted, the time it was reported is the
        # best bound we have; raw.posted_at_known records which it is.
        created_at=(posted_at or received).astimezone(UTC),
        kind="post",
        raw=raw,
    )
