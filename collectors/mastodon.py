"""Mastodon: hashtag timelines, an account's statuses and a status's replies (public API v1).

Paths: `/api/v1/timelines/tag/:hashtag`, `/api/v1/accounts/lookup`, `/api/v1/accounts/:id/statuses`,
`/api/v1/statuses/:id` and `/api/v1/statuses/:id/context`. Pages are walked with the `Link`
header's `rel="next"` URL (its `max_id`), as the API asks: the page boundary can lie outside the
returned items when the server filtered some. Status ids are local to an instance, so post ids
are `<instance host>/<status id>`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from collectors.base import (
    Collector,
    FetchedPage,
    Page,
    ParsedItems,
    Quota,
    Target,
    html_to_text,
    int_metrics,
    number_position,
    parse_items,
    parse_positioned,
    parse_time,
    register,
    walk_newest_first,
)
from pipeline.errors import ParseError, SourceUnavailable, UsageError
from pipeline.records import Post

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 40  # the API's maximum `limit` for statuses


def account_handle(account: Mapping[str, Any], host: str) -> str:
    """`user@instance`: `acct` is bare for accounts local to the instance we asked."""
    acct = str(account.get("acct") or account["username"])
    return acct if "@" in acct else f"{acct}@{host}"


def parse_status(status: Mapping[str, Any], host: str) -> list[Post]:
    """Posts from one status; a boost gives a `repost` record plus the boosted original."""
    reblog = status.get("reblog")
    if reblog:
        original = _status_post(reblog, host)
        booster = status["account"]
        repost = Post(
            platform="mastodon",
            post_id=f"{host}/{status['id']}",
            url=status.get("uri") or original.url,
            author_id=f"{host}/{booster['id']}",
            author_handle=account_handle(booster, host),
            author_name=booster.get("display_name") or None,
            author_bio=html_to_text(booster.get("note")) or None,
            text=original.text,
            created_at=parse_time(status["created_at"]),
            parent_id=original.post_id,
            kind="repost",
            lang=original.lang,
            raw=dict(status),
        )
        return [repost, original]
    return [_status_post(status, host)]


def _status_post(status: Mapping[str, Any], host: str) -> Post:
    account = status["account"]
    text = html_to_text(status.get("content"))
    spoiler = (status.get("spoiler_text") or "").strip()
    if spoiler:
        # A content warning is part of what the author wrote; keep it ahead of the body.
        text = f"{spoiler}\n\n{text}" if text else spoiler
    reply_to = status.get("in_reply_to_id")
    return Post(
        platform="mastodon",
        post_id=f"{host}/{status['id']}",
        url=status.get("url") or status.get("uri"),
        author_id=f"{host}/{account['id']}",
        author_handle=account_handle(account, host),
        author_name=account.get("display_name") or None,
        author_bio=html_to_text(account.get("note")) or None,
        text=text,
        created_at=parse_time(status["created_at"]),
        parent_id=f"{host}/{reply_to}" if reply_to else None,
        kind="comment" if reply_to else "post",
        lang=status.get("language") or None,
        metrics=int_metrics(
            status,
            {"likes": "favourites_count", "replies": "replies_count", "shares": "reblogs_count"},
        ),
        raw=dict(status),
    )


def parse_statuses(payload: Any, host: str, *, context: str) -> tuple[ParsedItems, list[str]]:
    """Posts and walk positions from a list of statuses (a timeline page)."""
    if not isinstance(payload, list):
        raise ParseError(f"{context}: expected a JSON array of statuses")
    return parse_positioned(
        payload,
        lambda status: parse_status(status, host),
        lambda status: number_position(status["id"]),
        context=context,
    )


def parse_context(
    root: Mapping[str, Any], context_payload: Any, host: str, *, context: str
) -> ParsedItems:
    """The root status, its ancestors and its descendants (replies become comments)."""
    if not isinstance(context_payload, Mapping):
        raise ParseError(f"{context}: expected a context object")
    statuses = [
        root,
        *context_payload.get("ancestors", []),
        *context_payload.get("descendants", []),
    ]
    return parse_items(statuses, lambda item: parse_status(item, host), context=context)


def next_max_id(response: httpx.Response) -> str | None:
    """The `max_id` of the Link header's next page, if there is one."""
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    return httpx.URL(link["url"]).params.get("max_id")


@register
class MastodonCollector(Collector):
    """Public Mastodon timelines: `tag:NAME`, `account:user@instance`, `thread:ID|URL`."""

    name: ClassVar[str] = "mastodon"
    target_kinds: ClassVar[tuple[str, ...]] = ("tag", "account", "thread")
    default_base_url: ClassVar[str | None] = "https://mastodon.social"
    credential_vars: ClassVar[dict[str, str]] = {}
    # Documented default: 300 requests per 5 minutes per IP address.
    default_rate_per_second: ClassVar[float | None] = 1.0

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Walk a timeline newest-first, or fetch one thread."""
        if target.kind == "thread":
            yield self._thread(target)
            return
        if target.kind == "tag":
            root = self._root()
            path = f"/api/v1/timelines/tag/{target.value.lstrip('#')}"
        else:
            root, path = self._account_path(target)
        host = urlsplit(root).netloc

        def fetch(max_id: str | None, _floor: str | None) -> FetchedPage:
            response = self.request(
                "GET",
                root + path,
                params={"limit": quota.page_size(MAX_PAGE_SIZE), "max_id": max_id},
            )
            payload = self.http.decode_json(response)
            parsed, positions = parse_statuses(payload, host, context=self.context(target))
            return FetchedPage(
                parsed.posts, positions, next_max_id(response), parsed.skipped, parsed.rejects
            )

        yield from walk_newest_first(cursor, fetch)

    def _root(self, instance: str | None = None) -> str:
        # An explicit --base-url wins (proxies, tests); otherwise the account's own instance.
        if instance and not self.base_url_overridden:
            return f"https://{instance}"
        return self.url("")

    def _account_path(self, target: Target) -> tuple[str, str]:
        user, _, instance = target.value.lstrip("@").partition("@")
        if not user:
            raise UsageError(f"mastodon: account target {target} needs user@instance")
        root = self._root(instance or None)
        host = urlsplit(root).netloc
        acct = user if not instance or instance == host else f"{user}@{instance}"
        account = self.get_json(root + "/api/v1/accounts/lookup", params={"acct": acct})
        if not isinstance(account, Mapping) or "id" not in account:
            raise ParseError(f"mastodon: account lookup for {acct} returned no account")
        return root, f"/api/v1/accounts/{account['id']}/statuses"

    def _thread(self, target: Target) -> Page:
        value = target.value
        if value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            status_id = parts.path.rstrip("/").rsplit("/", 1)[-1]
            root = self._root(parts.netloc)
        else:
            status_id, _, instance = value.partition("@")
            root = self._root(instance or None)
        if not status_id.isdigit():
            raise UsageError(f"mastodon: thread target {target} needs a numeric status id or URL")
        host = urlsplit(root).netloc
        response = self.request("GET", f"{root}/api/v1/statuses/{status_id}", ok_statuses=(404,))
        if response.status_code == 404:
            raise SourceUnavailable(f"mastodon: status {status_id} not found on {host}")
        status = self.http.decode_json(response)
        context_payload = self.get_json(f"{root}/api/v1/statuses/{status_id}/context")
        parsed = parse_context(status, context_payload, host, context=self.context(target))
        # A thread is fetched whole each time; the store dedups, so no cursor is needed.
        return Page(parsed.posts, None, parsed.skipped, parsed.rejects)
