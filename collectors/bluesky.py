"""Bluesky (AT Protocol): author feeds, post threads, likes and search through the XRPC API.

Feeds and threads are public on the AppView (`public.api.bsky.app`). `app.bsky.feed.searchPosts`
has needed an authenticated session since January 2025, so search first creates one with
`com.atproto.server.createSession` from an app password in the environment and then asks the
entryway (`bsky.social`), which proxies to the AppView. Post ids are AT URIs
(`at://<did>/app.bsky.feed.post/<rkey>`).

`likes:<post>` collects who liked a post (`app.bsky.feed.getLikes`, newest first): liking a
candidate's campaign post is itself a breach for a civil servant. Each like becomes a `like`
record by the liker, with the liked post (collected too) as its parent, so the queue judges the
like on the liked post's content.

`followers:<account>` collects who follows an account (`app.bsky.actor.getProfile`, then
`app.bsky.graph.getFollowers`, newest first): following a winning team's account is a breach
too. The followed account becomes a
`profile` record (its name and bio, the text the queue judges) and each follower a `follow`
record with that profile as parent. Bluesky does not say when an account followed, so a
follow's time is when Netra first saw it; the walk stops at the followers it already knows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from collectors.base import (
    Collector,
    FetchedPage,
    Page,
    ParsedItems,
    Quota,
    Target,
    follow_record,
    int_metrics,
    parent_first,
    parse_items,
    parse_positioned,
    parse_time,
    profile_record,
    register,
    time_position,
    walk_newest_first,
    walk_until_known,
)
from pipeline.errors import ParseError, SourceUnavailable, UsageError
from pipeline.records import Post

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
REASON_REPOST = "app.bsky.feed.defs#reasonRepost"
REASON_PIN = "app.bsky.feed.defs#reasonPin"
THREAD_VIEW = "app.bsky.feed.defs#threadViewPost"
LINK_FACET = "app.bsky.richtext.facet#link"
SESSION_ROOT = "https://bsky.social"


def expand_links(text: str, facets: Any) -> str:
    """The text with shortened link labels replaced by the full link from the facets.

    Facet ranges are UTF-8 byte offsets (not character offsets), so emoji and accented
    letters before a link shift them; a facet that does not fall on character boundaries is
    ignored rather than corrupting the text.
    """
    if not isinstance(facets, list) or not facets:
        return text
    data = text.encode("utf-8")
    replacements: list[tuple[int, int, bytes]] = []
    for facet in facets:
        if not isinstance(facet, Mapping):
            continue
        index = facet.get("index") or {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        if (
            not isinstance(start, int)
            or not isinstance(end, int)
            or not 0 <= start < end <= len(data)
        ):
            continue
        for feature in facet.get("features") or []:
            if isinstance(feature, Mapping) and feature.get("$type") == LINK_FACET:
                uri = str(feature.get("uri") or "")
                if uri:
                    replacements.append((start, end, uri.encode("utf-8")))
    previous_end = -1
    for start, end, _ in sorted(replacements):
        if start < previous_end:
            return text  # overlapping facets: the record is odd, keep the text as written
        previous_end = end
    for start, end, uri in sorted(replacements, reverse=True):
        try:
            data[start:end].decode("utf-8")
            data[:start].decode("utf-8")
        except UnicodeDecodeError:
            continue
        data = data[:start] + uri + data[end:]
    return data.decode("utf-8")


def permalink(uri: str, handle: str | None) -> str | None:
    """The bsky.app address of a post's AT URI."""
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or parts[1] != "app.bsky.feed.post":
        return None
    return f"https://bsky.app/profile/{handle or parts[0]}/post/{parts[2]}"


def parse_post_view(view: Mapping[str, Any]) -> Post:
    """A Post from an `app.bsky.feed.defs#postView`."""
    record = view["record"]
    author = view["author"]
    reply = record.get("reply") or {}
    parent = (reply.get("parent") or {}).get("uri")
    langs = record.get("langs") or []
    return Post(
        platform="bluesky",
        post_id=str(view["uri"]),
        url=permalink(str(view["uri"]), author.get("handle")),
        author_id=str(author["did"]),
        author_handle=author.get("handle") or None,
        author_name=author.get("displayName") or None,
        author_bio=author.get("description") or None,
        text=expand_links(str(record.get("text", "")), record.get("facets")),
        created_at=parse_time(record.get("createdAt") or view["indexedAt"]),
        parent_id=parent,
        kind="comment" if parent else "post",
        lang=langs[0] if langs else None,
        metrics=int_metrics(
            view, {"likes": "likeCount", "replies": "replyCount", "shares": "repostCount"}
        ),
        raw=dict(view),
    )


def parse_feed_item(item: Mapping[str, Any]) -> list[Post]:
    """Posts from a `feedViewPost`: a repost gives a `repost` record plus the original."""
    post = parse_post_view(item["post"])
    reason = item.get("reason") or {}
    if reason.get("$type") != REASON_REPOST:
        return [post]
    by = reason["by"]
    repost_id = reason.get("uri") or f"{post.post_id}#repost-by-{by['did']}"
    repost = Post(
        platform="bluesky",
        post_id=str(repost_id),
        url=post.url,
        author_id=str(by["did"]),
        author_handle=by.get("handle") or None,
        author_name=by.get("displayName") or None,
        text=post.text,
        created_at=parse_time(reason.get("indexedAt") or item["post"]["indexedAt"]),
        parent_id=post.post_id,
        kind="repost",
        lang=post.lang,
        raw=dict(item),
    )
    return [repost, post]


def feed_position(item: Mapping[str, Any]) -> str:
    """Where an item sorts in a feed: when it was reposted, else when it was indexed."""
    reason = item.get("reason") or {}
    when = reason.get("indexedAt") if reason.get("$type") == REASON_REPOST else None
    return time_position(parse_time(when or item["post"]["indexedAt"]))


def parse_feed(payload: Any, *, key: str, context: str) -> tuple[ParsedItems, list[str]]:
    """Posts and positions from a getAuthorFeed (`feed`) or searchPosts (`posts`) page."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get(key), list):
        raise ParseError(f"{context}: expected an object with a {key!r} list")
    items: list[Any] = []
    for item in payload[key]:
        if key == "posts":
            item = {"post": item}  # searchPosts returns bare postViews
        if isinstance(item, Mapping) and (item.get("reason") or {}).get("$type") == REASON_PIN:
            continue  # a pinned post sits out of time order at the top; it comes again later
        items.append(item)
    return parse_positioned(items, parse_feed_item, feed_position, context=context)


def parse_thread(payload: Any, *, context: str) -> ParsedItems:
    """The root post and every reachable reply (blocked / not-found branches skipped)."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("thread"), Mapping):
        raise ParseError(f"{context}: expected an object with a 'thread'")
    views: list[Mapping[str, Any]] = []
    stack: list[Any] = [payload["thread"]]
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        if node.get("$type", THREAD_VIEW) != THREAD_VIEW or "post" not in node:
            # notFoundPost (deleted) and blockedPost carry no content we may read.
            logger.debug("%s: skipped %s", context, node.get("$type"))
            continue
        views.append(node["post"])
        stack.extend(reversed(node.get("replies") or []))
    return parse_items(views, parse_post_view, context=context)


def parse_like(item: Mapping[str, Any], subject: Post) -> Post:
    """A `like` record from a getLikes `#like` item: the liker liked `subject`."""
    actor = item["actor"]
    return Post(
        platform="bluesky",
        post_id=f"{subject.post_id}#like-by-{actor['did']}",
        url=subject.url,
        author_id=str(actor["did"]),
        author_handle=actor.get("handle") or None,
        author_name=actor.get("displayName") or None,
        author_bio=actor.get("description") or None,
        text="",  # a like has no words of its own; its content is the liked post
        created_at=parse_time(item.get("createdAt") or item["indexedAt"]),
        parent_id=subject.post_id,
        kind="like",
        lang=subject.lang,
        raw=dict(item),
    )


def like_position(item: Mapping[str, Any]) -> str:
    """Where a like sorts in getLikes: when the AppView indexed it (newest first)."""
    return time_position(parse_time(item["indexedAt"]))


def parse_likes(payload: Any, *, subject: Post, context: str) -> tuple[ParsedItems, list[str]]:
    """Like records and positions from a getLikes page."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("likes"), list):
        raise ParseError(f"{context}: expected an object with a 'likes' list")
    return parse_positioned(
        payload["likes"], lambda item: parse_like(item, subject), like_position, context=context
    )


def profile_link(actor: str) -> str:
    """The bsky.app address of an account."""
    return f"https://bsky.app/profile/{actor}"


def parse_profile(view: Mapping[str, Any], observed: datetime) -> Post:
    """A `profile` record from an `app.bsky.actor.defs#profileView`: the account's name and bio."""
    did = str(view["did"])
    handle = view.get("handle") or None
    return profile_record(
        "bluesky",
        f"at://{did}/app.bsky.actor.profile/self",
        url=profile_link(handle or did),
        author_id=did,
        handle=handle,
        name=view.get("displayName"),
        bio=view.get("description"),
        created=view.get("indexedAt") or view.get("createdAt"),
        observed=observed,
        raw=view,
    )


def parse_follow(view: Mapping[str, Any], subject: Post, observed: datetime) -> Post:
    """A `follow` record: the account in `view` follows `subject`'s account, seen `observed`."""
    did = str(view["did"])
    handle = view.get("handle") or None
    return follow_record(
        subject,
        did,
        handle=handle,
        name=view.get("displayName"),
        bio=view.get("description"),
        # where a reviewer sees it: the follower's list of accounts it follows
        url=f"{profile_link(handle or did)}/follows",
        observed=observed,
        raw=view,
    )


def parse_followers(
    payload: Any, subject: Post, *, observed: datetime, context: str
) -> tuple[ParsedItems, list[str]]:
    """Follow records of `subject`'s account and the followers' DIDs from one getFollowers page."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("followers"), list):
        raise ParseError(f"{context}: expected an object with a 'followers' list")
    parsed = parse_items(
        payload["followers"], lambda view: parse_follow(view, subject, observed), context=context
    )
    return parsed, [post.author_id or "" for post in parsed.posts]


def profile_actor(value: str) -> str:
    """A handle or DID from `@handle`, `did:...` or a `https://bsky.app/profile/<actor>` link."""
    marker = "bsky.app/profile/"
    if marker in value:
        value = value.split(marker, 1)[1].split("/")[0].split("?")[0]
    actor = value.strip().lstrip("@")
    if not actor or "/" in actor or " " in actor:
        raise UsageError(
            f"bluesky: a followers target needs a handle, a DID or a bsky.app profile link, "
            f"got {value!r}"
        )
    return actor


def thread_uri(value: str) -> str:
    """An AT URI from `at://...` or a `https://bsky.app/profile/<actor>/post/<rkey>` link."""
    if value.startswith("at://"):
        return value
    marker = "bsky.app/profile/"
    if marker in value:
        actor, _, rest = value.split(marker, 1)[1].partition("/post/")
        rkey = rest.strip("/").split("/")[0].split("?")[0]
        if actor and rkey:
            return f"at://{actor}/app.bsky.feed.post/{rkey}"
    raise UsageError(
        f"bluesky: thread and likes targets need an at:// URI or a bsky.app post link, "
        f"got {value!r}"
    )


@register
class BlueskyCollector(Collector):
    """Bluesky: `author:`, `thread:`, `likes:`, `followers:` (public) and `search:` (login).

    Search needs a login; the others are public.
    """

    name: ClassVar[str] = "bluesky"
    target_kinds: ClassVar[tuple[str, ...]] = ("author", "thread", "likes", "followers", "search")
    default_base_url: ClassVar[str | None] = "https://public.api.bsky.app"
    credential_vars: ClassVar[dict[str, str]] = {
        "handle": "NETRA_BLUESKY_HANDLE",
        "app_password": "NETRA_BLUESKY_APP_PASSWORD",
    }
    # Documented AppView limit: 3000 requests per 5 minutes per IP address.
    default_rate_per_second: ClassVar[float | None] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._access_token: str | None = None

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Walk a feed or search newest-first, or fetch one thread."""
        context = self.context(target)
        if target.kind == "thread":
            yield self._thread(target)
            return
        if target.kind == "likes":
            yield from self._likes(target, cursor, quota)
            return
        if target.kind == "followers":
            yield from self._followers(target, cursor, quota)
            return
        if target.kind == "author":
            root, method, key = self.url(""), "app.bsky.feed.getAuthorFeed", "feed"
            params: dict[str, Any] = {
                "actor": target.value.lstrip("@"),
                "filter": self.options.get("filter", "posts_with_replies"),
            }
            headers: dict[str, str] = {}
        else:
            root = self._session_root()
            method, key = "app.bsky.feed.searchPosts", "posts"
            params = {"q": target.value, "sort": "latest"}
            headers = {"Authorization": f"Bearer {self._session(root)}"}

        def parse(payload: Any) -> tuple[ParsedItems, list[str]]:
            return parse_feed(payload, key=key, context=context)

        url = f"{root}/xrpc/{method}"
        yield from walk_newest_first(
            cursor, self._cursor_pages(url, params, quota, parse, headers=headers)
        )

    def _cursor_pages(
        self,
        url: str,
        params: Mapping[str, Any],
        quota: Quota,
        parse: Callable[[Any], tuple[ParsedItems, list[str]]],
        headers: Mapping[str, str] | None = None,
    ) -> Callable[[str | None, str | None], FetchedPage]:
        """A `walk_newest_first` fetcher for an XRPC listing paged by an opaque `cursor`."""

        def fetch(page_cursor: str | None, _floor: str | None) -> FetchedPage:
            payload = self.get_json(
                url,
                params={**params, "limit": quota.page_size(MAX_PAGE_SIZE), "cursor": page_cursor},
                headers=dict(headers or {}),
            )
            parsed, positions = parse(payload)
            # (a server handing back the same cursor is stopped by walk_newest_first)
            next_cursor = payload.get("cursor") or None
            return FetchedPage(parsed.posts, positions, next_cursor, parsed.skipped, parsed.rejects)

        return fetch

    def _get_thread(self, uri: str, depth: int) -> Any | None:
        """A getPostThread payload, or None when the post no longer exists."""
        response = self.request(
            "GET",
            self.url("/xrpc/app.bsky.feed.getPostThread"),
            params={"uri": uri, "depth": depth, "parentHeight": 0},
            ok_statuses=(400,),
        )
        payload = self.http.decode_json(response)
        if response.status_code == 400:
            if isinstance(payload, Mapping) and payload.get("error") == "NotFound":
                logger.info("bluesky: post %s not found (deleted?)", uri)
                return None
            raise SourceUnavailable(f"bluesky: getPostThread refused {uri}: {payload}")
        return payload

    def _thread(self, target: Target) -> Page:
        uri = thread_uri(target.value)
        payload = self._get_thread(uri, int(self.options.get("thread_depth", 1000)))
        if payload is None:
            return Page([], None)
        parsed = parse_thread(payload, context=self.context(target))
        return Page(parsed.posts, None, parsed.skipped, parsed.rejects)

    def _likes(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """The liked post, then its likes newest-first, resuming from the last walk."""
        context = self.context(target)
        # The thread call resolves a handle in the link to the DID-based URI that likes name.
        payload = self._get_thread(thread_uri(target.value), 0)
        if payload is None:
            yield Page([], cursor)  # nothing to like any more; keep the checkpoint
            return
        parsed = parse_thread(payload, context=context)
        if not parsed.posts:
            raise ParseError(f"{context}: getPostThread returned no post")
        subject = parsed.posts[0]

        def parse(payload: Any) -> tuple[ParsedItems, list[str]]:
            return parse_likes(payload, subject=subject, context=context)

        fetch = self._cursor_pages(
            self.url("/xrpc/app.bsky.feed.getLikes"), {"uri": subject.post_id}, quota, parse
        )
        yield from parent_first(subject, walk_newest_first(cursor, fetch))

    def _followers(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """The followed account's profile and its followers, newest first, until known ones."""
        context = self.context(target)
        actor = profile_actor(target.value)
        observed = datetime.fromtimestamp(self.http.wall_clock(), UTC)
        view = self.get_json(self.url("/xrpc/app.bsky.actor.getProfile"), params={"actor": actor})
        try:
            subject = parse_profile(view, observed)
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(f"{context}: the followed account is unreadable: {exc}") from None
        url = self.url("/xrpc/app.bsky.graph.getFollowers")

        def fetch(pointer: str | None) -> FetchedPage:
            payload = self.get_json(
                url,
                params={
                    "actor": subject.author_id,
                    "limit": quota.page_size(MAX_PAGE_SIZE),
                    "cursor": pointer,
                },
            )
            parsed, ids = parse_followers(payload, subject, observed=observed, context=context)
            next_page = payload.get("cursor") or None
            return FetchedPage(parsed.posts, ids, next_page, parsed.skipped, parsed.rejects)

        yield from parent_first(subject, walk_until_known(cursor, fetch))

    def _session_root(self) -> str:
        if self.base_url_overridden:
            return self.url("")
        return str(self.options.get("session_base_url", SESSION_ROOT)).rstrip("/")

    def _session(self, root: str) -> str:
        """An access token from createSession (cached for this collector's lifetime)."""
        if self._access_token:
            return self._access_token
        handle = self.credential("handle", "Bluesky search needs a login")
        password = self.credential("app_password", "Bluesky search needs an app password")
        response = self.request(
            "POST",
            f"{root}/xrpc/com.atproto.server.createSession",
            json_body={"identifier": handle, "password": password},
            ok_statuses=(401,),
        )
        if response.status_code == 401:
            raise SourceUnavailable(
                f"bluesky: login refused for the handle in {self.credential_env['handle']}"
            )
        session = self.http.decode_json(response)
        token = session.get("accessJwt") if isinstance(session, Mapping) else None
        if not token:
            raise ParseError("bluesky: createSession returned no access token")
        self.http.add_secret(str(token))
        self._used_secrets.add(str(token))
        self._access_token = str(token)
        return self._access_token
