"""Mastodon: hashtag timelines, an account's statuses and a status's replies (public API v1).

Paths: `/api/v1/timelines/tag/:hashtag`, `/api/v1/accounts/lookup`, `/api/v1/accounts/:id/statuses`,
`/api/v1/statuses/:id` and `/api/v1/statuses/:id/context`. Pages are walked with the `Link`
header's `rel="next"` URL (its `max_id`), as the API asks: the page boundary can lie outside the
returned items when the server filtered some. Status ids are local to an instance, so post ids
are `<instance host>/<status id>`.

`followers:user@instance` collects who follows an account (`/api/v1/accounts/:id/followers`,
newest follow first, `Link` pagination): following a winning team's account is a breach for a
civil servant. The account becomes a `profile` record (`<host>/accounts/<id>`: its name and bio,
the text the queue judges) and each follower a `follow` record with that profile as parent.
Mastodon does not say when an account followed, so a follow's time is when Netra first saw it;
the walk stops at the followers it already knows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
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
    follow_record,
    html_to_text,
    int_metrics,
    number_position,
    parent_first,
    parse_items,
    parse_positioned,
    parse_time,
    profile_record,
    register,
    walk_newest_first,
    walk_until_known,
)
from pipeline.errors import ParseError, SourceUnavailable, UsageError
from pipeline.records import Post

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 40  # the API's maximum `limit` for statuses
MAX_ACCOUNTS_PAGE_SIZE = 80  # ...and for lists of accounts (followers)


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


def parse_profile(account: Mapping[str, Any], host: str, observed: datetime) -> Post:
    """A `profile` record from an Account entity: the account's display name and bio."""
    return profile_record(
        "mastodon",
        f"{host}/accounts/{account['id']}",
        url=account.get("url") or None,
        author_id=f"{host}/{account['id']}",
        handle=account_handle(account, host),
        name=account.get("display_name"),
        bio=html_to_text(account.get("note")),
        created=account.get("created_at"),
        observed=observed,
        raw=account,
    )


def parse_follow(account: Mapping[str, Any], subject: Post, host: str, observed: datetime) -> Post:
    """A `follow` record: `account` follows `subject`'s account; `observed` is when seen."""
    url = account.get("url") or None
    return follow_record(
        subject,
        f"{host}/{account['id']}",
        handle=account_handle(account, host),
        name=account.get("display_name"),
        bio=html_to_text(account.get("note")),
        # where a reviewer sees it: the follower's list of accounts it follows
        url=f"{url.rstrip('/')}/following" if url else None,
        observed=observed,
        raw=account,
    )


def parse_followers(
    payload: Any, subject: Post, host: str, *, observed: datetime, context: str
) -> tuple[ParsedItems, list[str]]:
    """Follow records and the followers' ids from one page of an account's followers."""
    if not isinstance(payload, list):
        raise ParseError(f"{context}: expected a JSON array of accounts")
    parsed = parse_items(
        payload, lambda account: parse_follow(account, subject, host, observed), context=context
    )
    return parsed, [post.author_id or "" for post in parsed.posts]


def next_max_id(response: httpx.Response) -> str | None:
    """The `max_id` of the Link header's next page, if there is one."""
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    return httpx.URL(link["url"]).params.get("max_id")


@register
class MastodonCollector(Collector):
    """Public Mastodon: `tag:NAME`, `account:` and `followers:user@instance`, `thread:ID|URL`."""

    name: ClassVar[str] = "mastodon"
    target_kinds: ClassVar[tuple[str, ...]] = ("tag", "account", "followers", "thread")
    default_base_url: ClassVar[str | None] = "https://mastodon.social"
    credential_vars: ClassVar[dict[str, str]] = {}
    # Documented default: 300 requests per 5 minutes per IP address.
    default_rate_per_second: ClassVar[float | None] = 1.0

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Walk a timeline newest-first, or fetch one thread."""
        if target.kind == "thread":
            yield self._thread(target)
            return
        if target.kind == "followers":
            yield from self._followers(target, cursor, quota)
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

    def _lookup(self, target: Target) -> tuple[str, Mapping[str, Any]]:
        """The API root and the Account entity a `user@instance` target names."""
        user, _, instance = target.value.lstrip("@").partition("@")
        if not user:
            raise UsageError(f"mastodon: {target.kind} target {target} needs user@instance")
        root = self._root(instance or None)
        host = urlsplit(root).netloc
        acct = user if not instance or instance == host else f"{user}@{instance}"
        account = self.get_json(root + "/api/v1/accounts/lookup", params={"acct": acct})
        if not isinstance(account, Mapping) or "id" not in account:
            raise ParseError(f"mastodon: account lookup for {acct} returned no account")
        return root, account

    def _account_path(self, target: Target) -> tuple[str, str]:
        root, account = self._lookup(target)
        return root, f"/api/v1/accounts/{account['id']}/statuses"

    def _followers(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """The account's profile and its followers, newest first, until known ones."""
        context = self.context(target)
        observed = datetime.fromtimestamp(self.http.wall_clock(), UTC)
        root, account = self._lookup(target)
        host = urlsplit(root).netloc
        try:
            subject = parse_profile(account, host, observed)
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(f"{context}: the followed account is unreadable: {exc}") from None
        url = f"{root}/api/v1/accounts/{account['id']}/followers"

        def fetch(max_id: str | None) -> FetchedPage:
            response = self.request(
                "GET",
                url,
                params={"limit": quota.page_size(MAX_ACCOUNTS_PAGE_SIZE), "max_id": max_id},
            )
            payload = self.http.decode_json(response)
            parsed, ids = parse_followers(
                payload, subject, host, observed=observed, context=context
            )
            return FetchedPage(
                parsed.posts, ids, next_max_id(response), parsed.skipped, parsed.rejects
            )

        yield from parent_first(subject, walk_until_known(cursor, fetch))

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
