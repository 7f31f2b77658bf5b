"""X (Twitter) API v2: recent search, user timelines and conversations (replies).

Responses put tweets in `data`, expanded objects in `includes.users` / `includes.tweets`, paging
in `meta.next_token`, and per-item problems (a deleted referenced tweet, a suspended author) in
an `errors` array *beside* `data`: those are logged, not failures. A retweet's `text` is cut to
"RT @user: …"; the full text comes from the referenced tweet in `includes.tweets` (and a long
post's full text from `note_tweet`). `text` is HTML-escaped (`&amp;`), so it is unescaped here.
Reads are paid per post, so a new walk asks only for tweets after the last one seen (`since_id`).

`followers:handle` collects who follows an account (`/2/users/:id/followers`, newest first,
`pagination_token`): following a winning team's account is a breach for a civil servant. The
account becomes a `profile` record (`user:<id>`: its name and bio, the text the queue judges)
and each follower a `follow` record with that profile as parent. X does not say when an account
followed, so a follow's time is when Netra first saw it; the walk stops at known followers.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator, Mapping
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

TWEET_FIELDS = (
    "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,"
    "public_metrics,lang,entities,note_tweet"
)
USER_FIELDS = "id,name,username,description"
PROFILE_FIELDS = USER_FIELDS + ",created_at"
MAX_FOLLOWERS_PAGE = 1000  # the followers endpoint's maximum `max_results`
EXPANSIONS = "author_id,referenced_tweets.id,referenced_tweets.id.author_id"


def _full_text(tweet: Mapping[str, Any]) -> str:
    note = tweet.get("note_tweet") or {}
    return html.unescape(str(note.get("text") or tweet.get("text") or ""))


def _author(tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    return users.get(str(tweet.get("author_id")), {})


def _metrics(tweet: Mapping[str, Any]) -> dict[str, int]:
    return int_metrics(
        tweet.get("public_metrics") or {},
        {
            "likes": "like_count",
            "replies": "reply_count",
            "shares": "retweet_count",
            "views": "impression_count",
        },
    )


def _post(
    tweet: Mapping[str, Any],
    users: Mapping[str, Mapping[str, Any]],
    *,
    text: str,
    parent_id: str | None,
    kind: str,
    raw: Any,
) -> Post:
    author = _author(tweet, users)
    username = author.get("username")
    return Post(
        platform="x",
        post_id=str(tweet["id"]),
        url=f"https://x.com/{username or 'i/web'}/status/{tweet['id']}",
        author_id=str(tweet["author_id"]) if tweet.get("author_id") else None,
        author_handle=username or None,
        author_name=author.get("name") or None,
        author_bio=author.get("description") or None,
        text=text,
        created_at=parse_time(tweet["created_at"]),
        parent_id=parent_id,
        kind=kind,  # type: ignore[arg-type]
        lang=tweet.get("lang") if tweet.get("lang") not in (None, "und", "zxx") else None,
        metrics=_metrics(tweet),
        raw=raw,
    )


def _references(tweet: Mapping[str, Any]) -> dict[str, str]:
    return {ref["type"]: str(ref["id"]) for ref in tweet.get("referenced_tweets") or []}


def _raw(tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {"tweet": dict(tweet), "author": dict(_author(tweet, users)) or None}


def _own_post(tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]]) -> Post:
    """A tweet that is not a retweet: a reply (`replied_to`) is a comment, anything else a post."""
    reply_to = _references(tweet).get("replied_to")
    return _post(
        tweet,
        users,
        text=_full_text(tweet),
        parent_id=reply_to,
        kind="comment" if reply_to else "post",
        raw=_raw(tweet, users),
    )


def parse_tweet(
    tweet: Mapping[str, Any],
    users: Mapping[str, Mapping[str, Any]],
    tweets: Mapping[str, Mapping[str, Any]],
) -> list[Post]:
    """Posts from one tweet of `data`, joined with `includes` (a retweet also yields its original)."""
    retweeted = _references(tweet).get("retweeted")
    if not retweeted:
        return [_own_post(tweet, users)]
    original = tweets.get(retweeted)
    posts: list[Post] = []
    if original is not None and original.get("created_at"):
        # The original may itself be a reply: it is judged like any other tweet of its kind.
        posts.append(_own_post(original, users))
        text = _full_text(original)
    else:
        # The original was deleted or withheld: keep what the retweet itself shows.
        text = _full_text(tweet)
    posts.insert(
        0,
        _post(tweet, users, text=text, parent_id=retweeted, kind="repost", raw=_raw(tweet, users)),
    )
    return posts


def parse_tweets_page(payload: Any, *, context: str) -> tuple[ParsedItems, list[str]]:
    """Posts and positions from a v2 tweets response; its `errors` array is only logged."""
    if not isinstance(payload, Mapping):
        raise ParseError(f"{context}: expected a JSON object")
    data = payload.get("data", [])
    if not isinstance(data, list):
        raise ParseError(f"{context}: 'data' is not a list")
    for problem in payload.get("errors") or []:
        if isinstance(problem, Mapping):
            logger.info(
                "%s: partial error on %s %s: %s",
                context,
                problem.get("resource_type", "item"),
                problem.get("resource_id") or problem.get("value", ""),
                problem.get("title") or problem.get("detail"),
            )
    includes = payload.get("includes") or {}
    users = {str(user["id"]): user for user in includes.get("users", []) if "id" in user}
    tweets = {str(tweet["id"]): tweet for tweet in includes.get("tweets", []) if "id" in tweet}
    return parse_positioned(
        data,
        lambda tweet: parse_tweet(tweet, users, tweets),
        lambda tweet: number_position(tweet["id"]),
        context=context,
    )


def parse_profile(user: Mapping[str, Any], observed: datetime) -> Post:
    """A `profile` record from a v2 User object: the account's name and bio."""
    username = user.get("username") or None
    return profile_record(
        "x",
        f"user:{user['id']}",
        url=f"https://x.com/{username}" if username else None,
        author_id=str(user["id"]),
        handle=username,
        name=user.get("name"),
        bio=html.unescape(str(user.get("description") or "")),
        created=user.get("created_at"),
        observed=observed,
        raw=user,
    )


def parse_follow(user: Mapping[str, Any], subject: Post, observed: datetime) -> Post:
    """A `follow` record: `user` follows `subject`'s account; `observed` is when it was seen."""
    username = user.get("username") or None
    return follow_record(
        subject,
        str(user["id"]),
        handle=username,
        name=user.get("name"),
        bio=html.unescape(str(user.get("description") or "")),
        # where a reviewer sees it: the follower's list of accounts it follows
        url=f"https://x.com/{username}/following" if username else None,
        observed=observed,
        raw=user,
    )


def parse_followers_page(
    payload: Any, subject: Post, *, observed: datetime, context: str
) -> tuple[ParsedItems, list[str]]:
    """Follow records and follower ids from a followers response (no `data` = no followers)."""
    if not isinstance(payload, Mapping):
        raise ParseError(f"{context}: expected a JSON object")
    data = payload.get("data", [])
    if not isinstance(data, list):
        raise ParseError(f"{context}: 'data' is not a list")
    parsed = parse_items(data, lambda user: parse_follow(user, subject, observed), context=context)
    return parsed, [post.author_id or "" for post in parsed.posts]


@register
class XCollector(Collector):
    """X API v2: `search:"query"`, `author:handle`, `thread:ID` replies, `followers:handle`."""

    name: ClassVar[str] = "x"
    target_kinds: ClassVar[tuple[str, ...]] = ("search", "author", "thread", "followers")
    default_base_url: ClassVar[str | None] = "https://api.x.com"
    credential_vars: ClassVar[dict[str, str]] = {"bearer_token": "NETRA_X_BEARER_TOKEN"}
    # Recent search allows 450 requests per 15 minutes per app (0.5 per second).
    default_rate_per_second: ClassVar[float | None] = 0.5

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Walk search results or a timeline newest-first."""
        token = self.credential("bearer_token", "X API bearer token")
        headers = {"Authorization": f"Bearer {token}"}
        if target.kind == "followers":
            yield from self._followers(target, cursor, quota, headers)
            return
        context = self.context(target)
        common = {
            "tweet.fields": TWEET_FIELDS,
            "user.fields": USER_FIELDS,
            "expansions": EXPANSIONS,
        }
        if target.kind == "author":
            user_id = str(self._user(target.value.lstrip("@"), headers)["id"])
            path, token_param, minimum = f"/2/users/{user_id}/tweets", "pagination_token", 5
            params: dict[str, Any] = dict(common)
        else:
            query = target.value
            if target.kind == "thread":
                if not query.isdigit():
                    raise UsageError(f"x: thread target needs a numeric post id, got {query!r}")
                query = f"conversation_id:{query}"
            path, token_param, minimum = "/2/tweets/search/recent", "next_token", 10
            params = {**common, "query": query}

        def fetch(next_token: str | None, floor: str | None) -> FetchedPage:
            page_params = {**params, "max_results": max(minimum, quota.page_size(100))}
            if next_token:
                page_params[token_param] = next_token
            elif floor:
                page_params["since_id"] = floor.lstrip("0") or "0"
            payload = self.get_json(self.url(path), params=page_params, headers=headers)
            parsed, positions = parse_tweets_page(payload, context=context)
            meta = payload.get("meta") or {}
            return FetchedPage(
                parsed.posts,
                positions,
                meta.get("next_token") or None,
                parsed.skipped,
                parsed.rejects,
            )

        yield from walk_newest_first(cursor, fetch)

    def _user(self, username: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        """The v2 User object of a username (SourceUnavailable when X has none)."""
        payload = self.get_json(
            self.url(f"/2/users/by/username/{username}"),
            params={"user.fields": PROFILE_FIELDS},
            headers=headers,
        )
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, Mapping) or "id" not in data:
            problems = payload.get("errors") if isinstance(payload, Mapping) else None
            detail = problems[0].get("detail") if problems else "no data"
            raise SourceUnavailable(f"x: user @{username} not available: {detail}")
        return data

    def _followers(
        self, target: Target, cursor: str | None, quota: Quota, headers: Mapping[str, str]
    ) -> Iterator[Page]:
        """The account's profile and its followers, newest first, until known ones."""
        context = self.context(target)
        observed = datetime.fromtimestamp(self.http.wall_clock(), UTC)
        user = self._user(target.value.lstrip("@"), headers)
        try:
            subject = parse_profile(user, observed)
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(f"{context}: the followed account is unreadable: {exc}") from None
        url = self.url(f"/2/users/{user['id']}/followers")

        def fetch(token: str | None) -> FetchedPage:
            params: dict[str, Any] = {
                "max_results": quota.page_size(MAX_FOLLOWERS_PAGE),
                "user.fields": USER_FIELDS,
            }
            if token:
                params["pagination_token"] = token
            payload = self.get_json(url, params=params, headers=headers)
            parsed, ids = parse_followers_page(payload, subject, observed=observed, context=context)
            next_token = (payload.get("meta") or {}).get("next_token") or None
            return FetchedPage(parsed.posts, ids, next_token, parsed.skipped, parsed.rejects)

        yield from parent_first(subject, walk_until_known(cursor, fetch))
