"""YouTube Data API v3: a channel's uploads, a video's comment threads and replies, search.

Every call costs quota units (documented: `channels`, `playlistItems`, `videos`,
`commentThreads` and `comments` 1 unit, `search` 100) against a daily budget (10,000 units by
default) that resets at midnight Pacific time. Units are counted per API key before each call,
so a source stops cleanly instead of burning the key's quota for every other source.
The API key comes from the environment and is sent as the `key` query parameter, which the
HTTP policy redacts from every log line and error.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from collectors.base import (
    Collector,
    FetchedPage,
    Page,
    ParsedItems,
    Quota,
    Target,
    parse_items,
    parse_positioned,
    parse_time,
    register,
    time_position,
    walk_newest_first,
)
from pipeline.errors import ParseError, SourceUnavailable, UsageError
from pipeline.records import Post

logger = logging.getLogger(__name__)

QUOTA_COSTS: dict[str, int] = {
    "channels": 1,
    "playlistItems": 1,
    "videos": 1,
    "commentThreads": 1,
    "comments": 1,
    "search": 100,
}
DEFAULT_DAILY_QUOTA = 10_000
QUOTA_ZONE = ZoneInfo("America/Los_Angeles")
# Placeholders YouTube leaves in playlists for videos that were removed or made private.
UNAVAILABLE_TITLES = frozenset({"Deleted video", "Private video"})


def _plain(text: str | None) -> str:
    # textFormat=plainText still returns HTML entities (&#39;, &amp;) in textDisplay.
    return html.unescape(text or "").replace("\r\n", "\n").strip()


def parse_comment(comment: Mapping[str, Any], video_id: str, *, replies: int | None = None) -> Post:
    """A Post from a `youtube#comment` (top-level comments answer the video, replies the comment)."""
    snippet = comment["snippet"]
    parent = snippet.get("parentId")
    display = snippet.get("authorDisplayName") or ""
    channel_id = (snippet.get("authorChannelId") or {}).get("value")
    metrics = (
        {"likes": int(snippet["likeCount"])} if isinstance(snippet.get("likeCount"), int) else {}
    )
    if replies is not None:
        metrics["replies"] = replies
    return Post(
        platform="youtube",
        post_id=str(comment["id"]),
        url=f"https://www.youtube.com/watch?v={video_id}&lc={comment['id']}",
        author_id=channel_id,
        # Since 2023 the display name is the channel's @handle.
        author_handle=display[1:] if display.startswith("@") else None,
        author_name=display or None,
        text=_plain(snippet.get("textDisplay") or snippet.get("textOriginal")),
        created_at=parse_time(snippet["publishedAt"]),
        parent_id=str(parent) if parent else video_id,
        kind="comment",
        metrics=metrics,
        raw=dict(comment),
    )


def parse_comment_thread(thread: Any, *, context: str = "youtube") -> ParsedItems:
    """The top-level comment and embedded replies of a `youtube#commentThread`, each skipped alone."""
    # One guard per comment: a malformed reply must not take the top-level comment with it.
    parsed = parse_items([thread], _top_level_comment, context=context)
    video_id = _thread_field(thread, "videoId")
    if video_id is None:
        return parsed  # the top-level guard has already counted this thread once
    parsed.extend(
        parse_items(
            _embedded_replies(thread),
            lambda reply: parse_comment(reply, video_id),
            context=context,
        )
    )
    return parsed


def _top_level_comment(thread: Mapping[str, Any]) -> Post:
    snippet = thread["snippet"]
    return parse_comment(
        snippet["topLevelComment"],
        str(snippet["videoId"]),
        replies=int(snippet.get("totalReplyCount") or 0),
    )


def _embedded_replies(thread: Any) -> list[Any]:
    replies = thread.get("replies") if isinstance(thread, Mapping) else None
    comments = replies.get("comments") if isinstance(replies, Mapping) else None
    return comments if isinstance(comments, list) else []


def _thread_field(thread: Any, name: str) -> str | None:
    """A thread's snippet field as text, or None when the thread is too malformed to have it."""
    snippet = thread.get("snippet") if isinstance(thread, Mapping) else None
    value = snippet.get(name) if isinstance(snippet, Mapping) else None
    return str(value) if value not in (None, "") else None


def _video_post(
    video_id: str,
    snippet: Mapping[str, Any],
    published: str,
    raw: Mapping[str, Any],
    statistics: Mapping[str, Any] | None = None,
) -> Post:
    title = _plain(snippet.get("title"))
    description = _plain(snippet.get("description"))
    stats = statistics or {}
    metrics = {
        name: int(stats[field])
        for name, field in (
            ("likes", "likeCount"),
            ("replies", "commentCount"),
            ("views", "viewCount"),
        )
        if str(stats.get(field, "")).isdigit()  # the API sends these counts as strings
    }
    return Post(
        platform="youtube",
        post_id=video_id,
        url=f"https://www.youtube.com/watch?v={video_id}",
        author_id=snippet.get("videoOwnerChannelId") or snippet.get("channelId"),
        author_name=snippet.get("videoOwnerChannelTitle") or snippet.get("channelTitle") or None,
        text=f"{title}\n\n{description}".strip(),
        created_at=parse_time(published),
        kind="post",
        lang=snippet.get("defaultLanguage") or snippet.get("defaultAudioLanguage") or None,
        metrics=metrics,
        raw=dict(raw),
    )


def parse_playlist_item(item: Mapping[str, Any]) -> Post | None:
    """A video from an uploads `youtube#playlistItem`; None for deleted/private placeholders."""
    snippet = item["snippet"]
    details = item.get("contentDetails") or {}
    published = details.get("videoPublishedAt")
    if not published and snippet.get("title") in UNAVAILABLE_TITLES:
        logger.debug("youtube: skipped unavailable playlist item %s", item.get("id"))
        return None
    video_id = details.get("videoId") or snippet["resourceId"]["videoId"]
    return _video_post(str(video_id), snippet, published or snippet["publishedAt"], item)


def parse_search_result(item: Mapping[str, Any]) -> Post | None:
    """A video from a `youtube#searchResult` (channels and playlists are ignored)."""
    identity = item["id"]
    if identity.get("kind") != "youtube#video":
        return None
    snippet = item["snippet"]
    return _video_post(str(identity["videoId"]), snippet, snippet["publishedAt"], item)


def parse_video(item: Mapping[str, Any]) -> Post:
    """A video from a `youtube#video` resource (videos.list)."""
    return _video_post(
        str(item["id"]),
        item["snippet"],
        item["snippet"]["publishedAt"],
        item,
        item.get("statistics"),
    )


def _listing(payload: Any, context: str) -> list[Any]:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("items", []), list):
        raise ParseError(f"{context}: expected an object with an 'items' list")
    return list(payload.get("items", []))


@register
class YoutubeCollector(Collector):
    """YouTube: `channel:UC…|@handle` uploads, `video:ID` comments, `search:"query"` videos."""

    name: ClassVar[str] = "youtube"
    target_kinds: ClassVar[tuple[str, ...]] = ("channel", "video", "search")
    default_base_url: ClassVar[str | None] = "https://www.googleapis.com"
    credential_vars: ClassVar[dict[str, str]] = {"api_key": "NETRA_YOUTUBE_API_KEY"}
    # The binding limit is the daily quota, not a request rate; stay polite anyway.
    default_rate_per_second: ClassVar[float | None] = 10.0

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Walk uploads, comment threads or search results newest-first."""
        key = self.credential("api_key", "YouTube Data API key")
        context = self.context(target)
        if target.kind == "channel":
            playlist = self._uploads_playlist(key, target.value)
            yield from self._walk(
                cursor,
                "playlistItems",
                {"part": "snippet,contentDetails", "playlistId": playlist},
                50,
                quota,
                key,
                parse_playlist_item,
                lambda item: item["snippet"]["publishedAt"],
                context,
            )
        elif target.kind == "video":
            yield from self._video_comments(cursor, target.value, quota, key, context)
        else:
            yield from self._walk(
                cursor,
                "search",
                {"part": "snippet", "q": target.value, "type": "video", "order": "date"},
                50,
                quota,
                key,
                parse_search_result,
                lambda item: item["snippet"]["publishedAt"],
                context,
            )

    # -- API calls

    def _call(self, key: str, resource: str, params: Mapping[str, Any]) -> Any:
        """One API call: spend its quota units first, then GET; API errors become ours."""
        self._spend(key, resource)
        response = self.request(
            "GET",
            self.url(f"/youtube/v3/{resource}"),
            params={**params, "key": key},
            ok_statuses=(400, 403, 404),
        )
        payload = self.http.decode_json(response)
        if response.status_code >= 400:
            reason, message = _error_reason(payload)
            if reason == "commentsDisabled":
                return {"items": []}
            detail = self.http.redact(message or reason or f"HTTP {response.status_code}")
            raise SourceUnavailable(
                f"youtube {resource}: {detail} ({reason or response.status_code})"
            )
        return payload

    def _spend(self, key: str, resource: str) -> None:
        budget = self.options.get("daily_quota", DEFAULT_DAILY_QUOTA)
        day = datetime.fromtimestamp(self.http.wall_clock(), QUOTA_ZONE).date().isoformat()
        bucket = "youtube:" + hashlib.sha256(key.encode()).hexdigest()[:16]
        self.http.units.spend(bucket, day, QUOTA_COSTS[resource], int(budget) if budget else None)

    def _uploads_playlist(self, key: str, channel: str) -> str:
        params: dict[str, Any] = {"part": "contentDetails"}
        if channel.startswith("@"):
            params["forHandle"] = channel
        elif channel.startswith("UC"):
            params["id"] = channel
        else:
            raise UsageError(
                f"youtube: channel target needs a UC… id or an @handle, got {channel!r}"
            )
        items = _listing(self._call(key, "channels", params), f"youtube channel {channel}")
        if not items:
            raise SourceUnavailable(f"youtube: no channel {channel}")
        return str(items[0]["contentDetails"]["relatedPlaylists"]["uploads"])

    def _walk(
        self,
        cursor: str | None,
        resource: str,
        params: Mapping[str, Any],
        max_page: int,
        quota: Quota,
        key: str,
        parse_one: Any,
        when: Any,
        context: str,
    ) -> Iterator[Page]:
        def fetch(token: str | None, _floor: str | None) -> FetchedPage:
            payload = self._call(
                key,
                resource,
                {**params, "maxResults": quota.page_size(max_page), "pageToken": token},
            )
            parsed, positions = parse_positioned(
                _listing(payload, context),
                parse_one,
                lambda item: time_position(parse_time(when(item))),
                context=context,
            )
            return FetchedPage(
                parsed.posts,
                positions,
                payload.get("nextPageToken") or None,
                parsed.skipped,
                parsed.rejects,
            )

        yield from walk_newest_first(cursor, fetch)

    def _video_comments(
        self, cursor: str | None, video_id: str, quota: Quota, key: str, context: str
    ) -> Iterator[Page]:
        def fetch(token: str | None, _floor: str | None) -> FetchedPage:
            parsed = ParsedItems()
            positions: list[str] = []
            video = ParsedItems()
            if token is None:
                # The video itself, so comments have their parent in the store.
                videos = _listing(
                    self._call(key, "videos", {"part": "snippet,statistics", "id": video_id}),
                    context,
                )
                video = parse_items(videos, parse_video, context=context)
            payload = self._call(
                key,
                "commentThreads",
                {
                    "part": "snippet,replies",
                    "videoId": video_id,
                    "order": "time",
                    "textFormat": "plainText",
                    "maxResults": quota.page_size(100),
                    "pageToken": token,
                },
            )
            for thread in _listing(payload, context):
                batch = parse_comment_thread(thread, context=context)
                if batch.posts:
                    batch.extend(self._more_replies(key, thread, batch.posts, context))
                    # Threads come ordered by their top-level comment, but a reply sits at its
                    # own (later) time: a new reply to a thread older than the floor survives it.
                    positions.extend(time_position(post.created_at) for post in batch.posts)
                parsed.extend(batch)
            if video.posts or video.skipped:
                # The video sorts with the newest comment so an old upload date does not look
                # like the end of the new comments.
                newest = (
                    max(positions, default=time_position(video.posts[0].created_at))
                    if video.posts
                    else None
                )
                parsed.posts[:0] = video.posts
                positions[:0] = [newest] * len(video.posts) if newest else []
                parsed.skipped += video.skipped
                parsed.rejects.extend(video.rejects)
            return FetchedPage(
                parsed.posts,
                positions,
                payload.get("nextPageToken") or None,
                parsed.skipped,
                parsed.rejects,
            )

        yield from walk_newest_first(cursor, fetch)

    def _more_replies(
        self, key: str, thread: Mapping[str, Any], have: list[Post], context: str
    ) -> ParsedItems:
        """Replies beyond the few a commentThread embeds (comments.list by parentId)."""
        extra = ParsedItems()
        thread_id = thread.get("id")
        video_id = _thread_field(thread, "videoId")
        total = _thread_field(thread, "totalReplyCount") or "0"
        # Counted as sent, not as parsed: comments.list would only return a bad reply again.
        embedded = len(_embedded_replies(thread))
        if not thread_id or not video_id or not total.isdigit() or int(total) <= embedded:
            return extra
        seen = {post.post_id for post in have}
        tokens: set[str] = set()
        token: str | None = None
        while True:
            payload = self._call(
                key,
                "comments",
                {
                    "part": "snippet",
                    "parentId": thread_id,
                    "textFormat": "plainText",
                    "maxResults": 100,
                    "pageToken": token,
                },
            )
            batch = parse_items(
                _listing(payload, context),
                lambda item: parse_comment(item, video_id),
                context=context,
            )
            batch.posts = [post for post in batch.posts if post.post_id not in seen]
            seen.update(post.post_id for post in batch.posts)
            extra.extend(batch)
            token = payload.get("nextPageToken") or None
            if not token:
                return extra
            if token in tokens:
                # A token handed back again would loop until the whole daily quota is spent.
                logger.warning(
                    "%s: comments.list returned page token %r again; stopping", context, token
                )
                return extra
            tokens.add(token)


def _error_reason(payload: Any) -> tuple[str | None, str | None]:
    """(reason, message) from a Google API error body."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("error"), Mapping):
        return None, None
    error = payload["error"]
    errors = error.get("errors") or [{}]
    first = (
        errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    )
    return first.get("reason"), error.get("message")
