"""Mappings from 4CAT/Zeeschuimer NDJSON items (TikTok, Instagram, Facebook) to Posts.

Facebook, Instagram and TikTok have no open API; researchers capture what their browser shows
with the Zeeschuimer extension and export NDJSON. Each line is an envelope
`{"nav_index", "item_id", "timestamp_collected", "source_platform", "source_platform_url",
"source_url", "user_agent", "data": {...the platform's own item...}}`. After a round trip through
4CAT the envelope fields sit inside the item under `__import_meta` instead. The field names
below follow 4CAT's own `map_item` functions for these data sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipeline.records import Post

# Instagram's media_type magic numbers (item-list format).
MEDIA_TYPE_CAROUSEL = 8


def mapper_for(data: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Post] | None:
    """The mapper for a Zeeschuimer/4CAT item, or None when the object is not one."""
    platform = _source_platform(data)
    if platform is None:
        return None
    for prefix, mapper in _MAPPERS:
        if platform.startswith(prefix):
            return mapper
    return _unsupported


def _source_platform(data: Mapping[str, Any]) -> str | None:
    if isinstance(data.get("data"), Mapping) and isinstance(data.get("source_platform"), str):
        return data["source_platform"].lower()
    meta = data.get("__import_meta")
    if isinstance(meta, Mapping) and isinstance(meta.get("source_platform"), str):
        return meta["source_platform"].lower()
    return None


def _unwrap(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(platform item, capture metadata) from an envelope or a 4CAT item."""
    if isinstance(data.get("data"), Mapping) and "source_platform" in data:
        meta = {key: value for key, value in data.items() if key != "data"}
        item = dict(data["data"])
    else:
        item = dict(data)
        meta = dict(item.pop("__import_meta", {}))
    # The capturing browser's user agent identifies the researcher's machine; not needed.
    meta.pop("user_agent", None)
    return item, meta


def _raw(item: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    return {"zeeschuimer": dict(meta), "item": dict(item)}


def _epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _metrics(**values: Any) -> dict[str, int]:
    counted = {name: _count(value) for name, value in values.items()}
    return {name: value for name, value in counted.items() if value is not None}


def map_tiktok(data: Mapping[str, Any]) -> Post:
    """A TikTok video item (intercepted API response or the page's embedded JSON)."""
    item, meta = _unwrap(data)
    author = item["author"]
    if isinstance(author, Mapping):
        handle, name, author_id = author["uniqueId"], author.get("nickname"), author.get("id")
        bio = author.get("signature") or None
    else:  # embedded-JSON variant: author is the handle, nickname and authorId sit beside it
        handle, name, author_id, bio = author, item.get("nickname"), item.get("authorId"), None
    stats = item.get("stats") or {}
    return Post(
        platform="tiktok",
        post_id=str(item["id"]),
        url=f"https://www.tiktok.com/@{handle}/video/{item['id']}",
        author_id=str(author_id) if author_id else None,
        author_handle=handle,
        author_name=name or None,
        author_bio=bio,
        text=item.get("desc") or "",
        created_at=_epoch(item["createTime"]),
        kind="post",
        metrics=_metrics(
            likes=stats.get("diggCount"),
            replies=stats.get("commentCount"),
            shares=stats.get("shareCount"),
            views=stats.get("playCount"),
        ),
        raw=_raw(item, meta),
    )


def map_tiktok_comment(data: Mapping[str, Any]) -> Post:
    """A TikTok comment item (Zeeschuimer's tiktok-comments module)."""
    item, meta = _unwrap(data)
    user = item.get("user") or {}
    reply_to = str(item.get("reply_id") or "0")
    video_id = str(item["aweme_id"])
    return Post(
        platform="tiktok",
        post_id=str(item["cid"]),
        url=None,
        author_id=str(user["uid"]) if user.get("uid") else None,
        author_handle=user.get("unique_id") or None,
        author_name=user.get("nickname") or None,
        text=item.get("text") or "",
        created_at=_epoch(item["create_time"]),
        # reply_id is "0" for a comment on the video itself.
        parent_id=reply_to if reply_to != "0" else video_id,
        kind="comment",
        metrics=_metrics(likes=item.get("digg_count"), replies=item.get("reply_comment_total")),
        raw=_raw(item, meta),
    )


def map_instagram(data: Mapping[str, Any]) -> Post:
    """An Instagram post, in the GraphQL 'edge' format or the API v1 'item list' format."""
    item, meta = _unwrap(data)
    if item.get("product_type") == "ad" or str(item.get("link", "")).startswith(
        "https://www.facebook.com/ads/ig_redirect"
    ):
        raise ValueError("an Instagram ad, not a post")
    user = item.get("user") or item.get("owner") or {}
    if "__typename" in item and item["__typename"] != "XDTMediaDict":
        edges = item.get("edge_media_to_caption", {}).get("edges", [])
        caption = edges[0]["node"]["text"] if edges else ""
        shortcode = item["shortcode"]
        created = _epoch(item["taken_at_timestamp"])
        metrics = _metrics(
            likes=item.get("edge_media_preview_like", {}).get("count"),
            replies=item.get("edge_media_preview_comment", {}).get("count"),
            views=item.get("video_view_count"),
        )
    else:
        caption = (item.get("caption") or {}).get("text", "")
        shortcode = item["code"]
        created = _epoch(item["taken_at"])
        metrics = _metrics(
            likes=item.get("like_count"),
            replies=item.get("comment_count"),
            views=item.get("play_count") or item.get("view_count"),
        )
    author_id = user.get("pk") or user.get("id")
    return Post(
        platform="instagram",
        post_id=str(shortcode),
        url=f"https://www.instagram.com/p/{shortcode}/",
        author_id=str(author_id) if author_id else None,
        author_handle=user.get("username") or None,
        author_name=user.get("full_name") or None,
        text=caption or "",
        created_at=created,
        kind="post",
        metrics=metrics,
        raw=_raw(item, meta),
    )


def map_facebook(data: Mapping[str, Any]) -> Post:
    """A Facebook feed story (GraphQL `comet_sections` as the web client receives it)."""
    item, meta = _unwrap(data)
    story = item["comet_sections"]["content"]["story"]
    timestamps = item["comet_sections"]["context_layout"]["story"]["comet_sections"]["metadata"]
    metadata = next(
        (
            entry["story"]
            for entry in timestamps
            if entry.get("__typename") == "CometFeedStoryMinimizedTimestampStrategy"
        ),
        None,
    )
    if metadata is None:
        raise ValueError("Facebook story has no timestamp metadata")
    author = story["actors"][0]
    handle, url_id = _facebook_profile(author.get("url") or "")
    author_id = author.get("id") or url_id
    return Post(
        platform="facebook",
        post_id=str(story["post_id"]),
        url=story.get("wwwURL") or metadata.get("url"),
        author_id=str(author_id) if author_id else None,
        author_handle=handle,
        author_name=author.get("name") or None,
        text=(story.get("message") or {}).get("text", ""),
        created_at=_epoch(metadata["creation_time"]),
        kind="post",
        raw=_raw(item, meta),
    )


def _facebook_profile(url: str) -> tuple[str | None, str | None]:
    """(handle, numeric id) from an actor's profile URL."""
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    # Accounts without a username are linked as profile.php?id=<number>; group posts link the
    # actor as /groups/<group>/user/<number>/. Neither carries a handle.
    if segments == ["profile.php"]:
        number = parse_qs(parts.query).get("id", [""])[0]
        return None, number if number.isdigit() else None
    if len(segments) != 1:
        last = segments[-1] if segments else ""
        return None, last if last.isdigit() else None
    if segments[0].isdigit():
        return None, segments[0]
    return segments[0], None


def _unsupported(data: Mapping[str, Any]) -> Post:
    raise ValueError(
        f"Zeeschuimer items from {_source_platform(data)!r} are not supported "
        "(supported: tiktok.com, tiktok-comments, instagram.com, facebook.com)"
    )


_MAPPERS: tuple[tuple[str, Callable[[Mapping[str, Any]], Post]], ...] = (
    ("tiktok-comments", map_tiktok_comment),
    ("tiktok", map_tiktok),
    ("instagram", map_instagram),
    ("facebook", map_facebook),
)
