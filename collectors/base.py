"""What every collector shares: targets, pages, the HTTP policy, the registry and timeline walks.

A platform module only builds requests, paginates and parses; everything about *how* Netra talks
to the network lives here once (snscrape's `_request`): the injected `httpx.Client`, timeouts,
retries with exponential backoff and jitter on connection errors / 429 / 5xx honouring
`Retry-After`, per-host rate limits, the User-Agent, robots.txt for HTML pages, and secret
redaction so credentials never reach logs, errors or stored payloads.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
import urllib.robotparser
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from pipeline.errors import (
    CollectorError,
    CredentialMissing,
    ParseError,
    SourceUnavailable,
    UsageError,
)
from pipeline.records import Post, RecordError

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "Netra/0.1 (election-neutrality monitoring; public posts only)"
# Query parameters that carry credentials on some APIs (YouTube `key`, OAuth tokens, ...).
SECRET_PARAMS = frozenset(
    {"key", "api_key", "apikey", "access_token", "token", "password", "client_secret", "sig"}
)
REDACTED = "REDACTED"
# Errors a parser may raise on an item it does not understand; anything else is a bug.
ITEM_ERRORS: tuple[type[Exception], ...] = (
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    RecordError,
)
MAX_REJECT_SAMPLES = 5

_TARGET_KIND = re.compile(r"^[a-z][a-z_]*$")


# --------------------------------------------------------------------------- targets and pages


@dataclass(frozen=True)
class Target:
    """What to collect, written `kind:value` (`tag:pemilu2024`, `account:name@instance`, ...)."""

    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse `kind:value`; surrounding quotes on the value are dropped (`search:"a b"`)."""
        kind, sep, value = text.partition(":")
        kind = kind.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].strip()
        if not sep or not _TARGET_KIND.match(kind) or not value:
            raise UsageError(
                f"target {text!r} is not of the form kind:value "
                '(e.g. tag:pemilu2024, account:name@instance, search:"query")'
            )
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass
class Reject:
    """A skipped item: why, and a (secret-free) sample of its payload for debugging."""

    reason: str
    payload: Any


@dataclass
class Page:
    """One batch of posts and the checkpoint to save after they are committed."""

    posts: list[Post]
    cursor: str | None
    skipped: int = 0
    rejects: list[Reject] = field(default_factory=list)


# --------------------------------------------------------------------------- secrets


def redact_url(url: str | httpx.URL, secrets: Iterable[str] = ()) -> str:
    """The URL with credential query parameters (and any known secret value) replaced."""
    parts = urlsplit(str(url))
    query = [
        (name, REDACTED if name.lower() in SECRET_PARAMS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc
    if "@" in netloc:  # user:password@host
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    text = urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe=":/@,"), ""))
    return redact_text(text, secrets)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a secret value in a text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def scrub_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON-like value with every secret string occurrence replaced."""
    secret_list = [secret for secret in secrets if secret and len(secret) >= 4]
    if not secret_list:
        return value

    def scrub(item: Any) -> Any:
        if isinstance(item, str):
            return redact_text(item, secret_list)
        if isinstance(item, Mapping):
            return {key: scrub(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [scrub(inner) for inner in item]
        return item

    return scrub(value)


# --------------------------------------------------------------------------- HTTP policy


class _HostLimiter:
    """Spaces requests to one host at least `1 / per_second` apart (slot reservation)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """Reserve the next free slot and return how long to wait for it."""
        with self.lock:
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
            return slot - now


class UnitLedger:
    """Units spent per bucket and day (e.g. YouTube quota per API key), shared across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[tuple[str, str], int] = {}

    def spend(self, bucket: str, day: str, units: int, budget: int | None) -> int:
        """Record `units`; raise SourceUnavailable (spending nothing) if over `budget`."""
        with self._lock:
            spent = self._spent.get((bucket, day), 0)
            if budget is not None and spent + units > budget:
                raise SourceUnavailable(
                    f"daily quota budget of {budget} units used up ({spent} spent today); "
                    "raise the source's daily_quota option or wait for the reset"
                )
            self._spent[(bucket, day)] = spent + units
            return spent + units

    def spent(self, bucket: str, day: str) -> int:
        """Units spent so far."""
        with self._lock:
            return self._spent.get((bucket, day), 0)

    def snapshot(self) -> dict[str, int]:
        """Units spent, keyed `bucket|day`, to carry the count over to the next run."""
        with self._lock:
            return {f"{bucket}|{day}": units for (bucket, day), units in self._spent.items()}

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Take over what earlier runs spent (the larger count wins; bad entries are ignored)."""
        with self._lock:
            for key, units in saved.items():
                bucket, sep, day = str(key).rpartition("|")
                if sep and isinstance(units, int) and not isinstance(units, bool) and units > 0:
                    self._spent[(bucket, day)] = max(self._spent.get((bucket, day), 0), units)


class HttpPolicy:
    """How Netra talks HTTP: one policy per run, shared (thread-safely) by every collector."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout_seconds: float = 30.0,
        max_retries: int = 4,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        max_retry_after_seconds: float = 900.0,
        rate_limits: Mapping[str, float] | None = None,
        obey_robots: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.user_agent = user_agent
        self.timeout = httpx.Timeout(timeout_seconds)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.obey_robots = obey_robots
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock
        self.jitter = jitter
        self._lock = threading.Lock()
        self._limiters: dict[str, _HostLimiter] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._secrets: set[str] = set()
        self.requests_by_host: dict[str, int] = {}
        self.units = UnitLedger()
        for host, per_second in (rate_limits or {}).items():
            self.set_rate_limit(host, per_second)

    # -- configuration

    def set_rate_limit(self, host: str, per_second: float | None, *, replace: bool = True) -> None:
        """Limit requests to `host` (None or <= 0: unlimited); `replace=False` keeps a set one."""
        host = host.lower()
        with self._lock:
            if not replace and host in self._limiters:
                return
            if per_second is None or per_second <= 0:
                self._limiters.pop(host, None)
            else:
                self._limiters[host] = _HostLimiter(per_second)

    def rate_limit(self, host: str) -> float | None:
        """The configured requests per second for a host, if any."""
        limiter = self._limiters.get(host.lower())
        return 1.0 / limiter.interval if limiter else None

    def add_secret(self, value: str) -> None:
        """Register a credential value so it is redacted from every error and log line."""
        if value:
            with self._lock:
                self._secrets.add(value)

    @property
    def secrets(self) -> frozenset[str]:
        """The registered credential values."""
        with self._lock:
            return frozenset(self._secrets)

    def redact(self, text: str) -> str:
        """A text with every registered secret replaced."""
        return redact_text(text, self.secrets)

    # -- requests

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        ok_statuses: Iterable[int] = (),
        robots: bool = False,
        default_rate: float | None = None,
    ) -> httpx.Response:
        """Send a request with rate limiting and retries; raise SourceUnavailable on failure.

        Statuses in `ok_statuses` (e.g. 404 for a deleted thread) are returned to the caller
        instead of raising. `default_rate` sets the host's limit if none is configured yet.
        """
        request_url = httpx.URL(url)
        extra = {k: v for k, v in (params or {}).items() if v is not None}
        if extra:
            # Merge, so a query already in the URL (a feed's ?cat=...) is kept.
            request_url = request_url.copy_merge_params(extra)
        host = (request_url.host or "").lower()
        if default_rate:
            self.set_rate_limit(host, default_rate, replace=False)
        if robots and self.obey_robots and not self._robots_allowed(request_url):
            raise SourceUnavailable(f"robots.txt of {host} disallows {self._safe(request_url)}")
        allowed = set(ok_statuses)
        all_headers = {"User-Agent": self.user_agent, **(headers or {})}
        attempt = 0
        while True:
            self._wait_for_slot(host)
            try:
                response = self.client.request(
                    method, request_url, headers=all_headers, json=json_body, timeout=self.timeout
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {self.redact(str(exc))}"
                delay = None
            else:
                status = response.status_code
                if status < 400 or status in allowed:
                    return response
                if status != 429 and status < 500:
                    raise SourceUnavailable(
                        f"{method} {self._safe(request_url)} refused: HTTP {status}"
                        f"{self._body_hint(response)}"
                    )
                problem = f"HTTP {status}"
                delay = self._server_delay(response)
                if delay is not None and delay > self.max_retry_after_seconds:
                    raise SourceUnavailable(
                        f"{method} {self._safe(request_url)}: {problem}, "
                        f"retry only after {delay:.0f} s"
                    )
            if attempt >= self.max_retries:
                raise SourceUnavailable(
                    f"{method} {self._safe(request_url)} failed after {attempt + 1} attempts: "
                    f"{problem}"
                )
            if delay is None:
                delay = self._backoff(attempt)
            logger.info(
                "retrying %s %s in %.1f s (%s)", method, self._safe(request_url), delay, problem
            )
            self.sleep(delay)
            attempt += 1

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET a JSON document; a body that is not JSON raises ParseError."""
        response = self.request("GET", url, **kwargs)
        return self.decode_json(response)

    def decode_json(self, response: httpx.Response) -> Any:
        """Decode a response body as JSON or raise ParseError naming the (redacted) URL."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ParseError(
                f"{self._safe(response.request.url)} did not return JSON "
                f"(content-type {response.headers.get('content-type', '?')!r})"
            ) from exc

    def get_text(self, url: str, *, robots: bool = True, **kwargs: Any) -> httpx.Response:
        """GET an HTML/XML page, honouring robots.txt by default."""
        return self.request("GET", url, robots=robots, **kwargs)

    # -- internals

    def _safe(self, url: str | httpx.URL) -> str:
        return redact_url(url, self.secrets)

    def _body_hint(self, response: httpx.Response) -> str:
        try:
            text = response.text.strip()
        except (UnicodeDecodeError, httpx.ResponseNotRead):
            return ""
        return f": {self.redact(text[:200])}" if text else ""

    def _wait_for_slot(self, host: str) -> None:
        with self._lock:
            limiter = self._limiters.get(host)
            self.requests_by_host[host] = self.requests_by_host.get(host, 0) + 1
        if limiter is not None:
            wait = limiter.reserve(self.clock())
            if wait > 0:
                self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * (2**attempt))
        # Equal jitter: never retry instantly, yet spread simultaneous clients apart.
        return ceiling / 2 + self.jitter() * ceiling / 2

    def _server_delay(self, response: httpx.Response) -> float | None:
        """Seconds the server asked us to wait (Retry-After, or a rate-limit reset header)."""
        retry_after = response.headers.get("retry-after")
        if retry_after:
            value = retry_after.strip()
            if value.isdigit():
                return float(value)
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - self.wall_clock())
        if response.status_code != 429:
            return None
        # X sends x-rate-limit-reset (epoch s), Bluesky ratelimit-reset (epoch s),
        # Mastodon x-ratelimit-reset (ISO 8601 time).
        for name in ("x-rate-limit-reset", "ratelimit-reset", "x-ratelimit-reset"):
            value = response.headers.get(name)
            if not value:
                continue
            value = value.strip()
            try:
                number = float(value)
            except ValueError:
                try:
                    when_dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    continue
                if when_dt.tzinfo is None:
                    when_dt = when_dt.replace(tzinfo=UTC)
                return max(0.0, when_dt.timestamp() - self.wall_clock())
            if number > 1_000_000_000:
                return max(0.0, number - self.wall_clock())
            return max(0.0, number)
        return None

    def _robots_allowed(self, url: httpx.URL) -> bool:
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            if origin not in self._robots:
                self._robots[origin] = self._fetch_robots(origin)
            parser = self._robots[origin]
        if parser is None:
            return True
        return parser.can_fetch(self.user_agent, str(url))

    def _fetch_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        """Fetch robots.txt; per RFC 9309 a 4xx allows everything, 5xx/unreachable nothing."""
        deny_all = urllib.robotparser.RobotFileParser()
        deny_all.parse(["User-agent: *", "Disallow: /"])
        try:
            response = self.request("GET", f"{origin}/robots.txt", ok_statuses=range(400, 500))
        except SourceUnavailable:
            logger.warning("robots.txt of %s unreachable; treating the site as disallowed", origin)
            return deny_all
        if response.status_code >= 400:
            return None
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(response.text.splitlines())
        return parser


# --------------------------------------------------------------------------- collectors


@dataclass
class Quota:
    """How many posts a target may still yield this run (None: no limit)."""

    remaining: int | None = None

    def page_size(self, maximum: int) -> int:
        """The page size to ask the platform for."""
        if self.remaining is None:
            return maximum
        return max(1, min(maximum, self.remaining))


@dataclass
class ParsedItems:
    """Posts parsed from a list of payload items, with what had to be skipped."""

    posts: list[Post] = field(default_factory=list)
    skipped: int = 0
    rejects: list[Reject] = field(default_factory=list)

    def extend(self, other: ParsedItems) -> None:
        """Append another batch."""
        self.posts.extend(other.posts)
        self.skipped += other.skipped
        room = MAX_REJECT_SAMPLES - len(self.rejects)
        self.rejects.extend(other.rejects[: max(0, room)])


ItemT = TypeVar("ItemT")


def parse_items(
    items: Iterable[ItemT],
    parse_one: Callable[[ItemT], Iterable[Post] | Post | None],
    *,
    context: str,
) -> ParsedItems:
    """Apply a pure parser to each item; a bad item is skipped, counted, logged and sampled."""
    result = ParsedItems()
    for item in items:
        try:
            posts = _as_posts(parse_one(item))
        except ITEM_ERRORS as exc:
            _reject(result, item, exc, context)
            continue
        result.posts.extend(posts)
    return result


def parse_positioned(
    items: Iterable[ItemT],
    parse_one: Callable[[ItemT], Iterable[Post] | Post | None],
    position_of: Callable[[ItemT], str],
    *,
    context: str,
) -> tuple[ParsedItems, list[str]]:
    """Parse items one by one; every post gets the walk position of the item it came from."""
    result = ParsedItems()
    positions: list[str] = []
    for item in items:
        try:
            posts = _as_posts(parse_one(item))
            # Inside the guard: an item that parses but has no valid position (a like without
            # `indexedAt`, a non-numeric id) is skipped like any bad item instead of losing
            # the whole page.
            position = position_of(item) if posts else ""
        except ITEM_ERRORS as exc:
            _reject(result, item, exc, context)
            continue
        result.posts.extend(posts)
        positions.extend([position] * len(posts))
    return result, positions


def _as_posts(parsed: Iterable[Post] | Post | None) -> list[Post]:
    if parsed is None:
        return []
    if isinstance(parsed, Post):
        return [parsed]
    # A list here also runs a generator parser to the end inside the caller's error guard.
    return list(parsed)


def _reject(result: ParsedItems, item: object, exc: Exception, context: str) -> None:
    result.skipped += 1
    reason = f"{type(exc).__name__}: {exc}"
    logger.warning("%s: skipped an item the parser does not understand (%s)", context, reason)
    if len(result.rejects) < MAX_REJECT_SAMPLES:
        result.rejects.append(Reject(reason, item))


def profile_record(
    platform: str,
    post_id: str,
    *,
    url: str | None,
    author_id: str,
    handle: str | None,
    name: str | None,
    bio: str | None,
    created: str | None,
    observed: datetime,
    raw: Mapping[str, Any],
) -> Post:
    """A `profile` record: an account's display name and bio, one per line, as its text.

    It is what a follow of the account is judged on; `created` (the platform's time for the
    profile, if any) else `observed` is its time.
    """
    name, bio = (name or "").strip(), (bio or "").strip()
    return Post(
        platform=platform,
        post_id=post_id,
        url=url,
        author_id=author_id,
        author_handle=handle or None,
        author_name=name or None,
        author_bio=bio or None,
        text="\n".join(part for part in (name, bio) if part),
        created_at=parse_time(created) if created else observed,
        kind="profile",
        raw=dict(raw),
    )


def follow_record(
    subject: Post,
    follower_id: str,
    *,
    handle: str | None,
    name: str | None,
    bio: str | None,
    url: str | None,
    observed: datetime,
    raw: Mapping[str, Any],
) -> Post:
    """A `follow` record: account `follower_id` follows `subject`'s account (a `profile`).

    No platform says when an account followed another, so `created_at` is when Netra saw it
    (`raw["netra_observed"]` says so). The text is empty: a follow's content is the profile.
    """
    return Post(
        platform=subject.platform,
        post_id=f"{subject.post_id}#followed-by-{follower_id}",
        url=url or subject.url,
        author_id=follower_id,
        author_handle=handle or None,
        author_name=name or None,
        author_bio=bio or None,
        text="",
        created_at=observed,
        parent_id=subject.post_id,
        kind="follow",
        raw={**raw, "netra_observed": True},
    )


def int_metrics(source: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, int]:
    """Metrics by name from `source[field]`, keeping only the counts the platform sent as ints."""
    return {
        name: int(source[key]) for name, key in fields.items() if isinstance(source.get(key), int)
    }


COLLECTORS: dict[str, type[Collector]] = {}

CollectorT = TypeVar("CollectorT", bound="type[Collector]")


def register(cls: CollectorT) -> CollectorT:
    """Class decorator adding a collector to `COLLECTORS`; a duplicate name is an error."""
    name = cls.name
    if name in COLLECTORS and COLLECTORS[name] is not cls:
        raise ValueError(
            f"collector name {name!r} is already registered by {COLLECTORS[name].__qualname__}"
        )
    COLLECTORS[name] = cls
    return cls


def get_collector(name: str) -> type[Collector]:
    """The collector class registered under `name`, or UsageError listing the valid names."""
    try:
        return COLLECTORS[name.lower()]
    except KeyError:
        valid = ", ".join(sorted(COLLECTORS))
        raise UsageError(f"unknown platform {name!r}; valid platforms: {valid}") from None


class Collector(ABC):
    """Base of every collector: targets, credentials, limits and secret scrubbing.

    Subclasses implement `fetch_pages`; callers use `collect`, which checks the target kind,
    applies the (soft) post limit and the page budget and strips credentials from raw payloads.
    """

    name: ClassVar[str]
    target_kinds: ClassVar[tuple[str, ...]]
    default_base_url: ClassVar[str | None] = None
    credential_vars: ClassVar[dict[str, str]] = {}
    # Requests per second per host when the configuration sets none (documented platform limits).
    default_rate_per_second: ClassVar[float | None] = None

    def __init__(
        self,
        http: HttpPolicy,
        *,
        base_url: str | None = None,
        credentials: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        page_budget: int | None = None,
    ) -> None:
        self.http = http
        self.base_url = api_root(base_url) if base_url else self.default_base_url
        self.base_url_overridden = base_url is not None
        unknown = set(credentials or {}) - set(self.credential_vars)
        if unknown:
            raise UsageError(
                f"{self.name}: unknown credential name(s) {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(sorted(self.credential_vars)) or 'none'}"
            )
        self.credential_env = {**self.credential_vars, **(credentials or {})}
        self.environ = os.environ if environ is None else environ
        self.options = dict(options or {})
        self.page_budget = page_budget
        self.pages_fetched = 0
        self._used_secrets: set[str] = set()

    # -- for callers

    @classmethod
    def check_target(cls, target: Target) -> None:
        """Raise UsageError when this collector cannot handle the target's kind."""
        if target.kind not in cls.target_kinds:
            raise UsageError(
                f"{cls.name} cannot collect {target.kind!r} targets; "
                f"valid kinds: {', '.join(cls.target_kinds)}"
            )

    def collect(
        self, target: Target, cursor: str | None = None, limit: int | None = None
    ) -> Iterator[Page]:
        """Yield pages of posts for one target, resuming from `cursor` (None: from scratch).

        `limit` is a soft cap on posts per call: no page is fetched once it is reached, but the
        page that reaches it is yielded whole, so one page may take the total past `limit`.
        """
        self.check_target(target)
        quota = Quota(limit)
        seen: set[str] = set()
        pages = self.fetch_pages(target, cursor, quota)
        try:
            while quota.remaining is None or quota.remaining > 0:
                if self.page_budget is not None and self.pages_fetched >= self.page_budget:
                    logger.info("%s: page budget of %d reached", self.name, self.page_budget)
                    return
                try:
                    page = next(pages)
                except StopIteration:
                    return
                self.pages_fetched += 1
                page = self._clean(page)
                # The same original can come back in one run (boosted twice, thread overlap).
                fresh = [post for post in page.posts if post.key not in seen]
                seen.update(post.key for post in fresh)
                if len(fresh) != len(page.posts):
                    page = Page(fresh, page.cursor, page.skipped, page.rejects)
                if quota.remaining is not None:
                    # A soft cap: a page that overflows the quota is kept whole with its own
                    # cursor, then the loop stops. Trimming it and keeping the old cursor
                    # would refetch the same page every run whenever a collector yields more
                    # posts than it asked for (boosts, replies, the video before its
                    # comments, X's minimum page size), so the checkpoint would never move.
                    quota.remaining = max(0, quota.remaining - len(page.posts))
                yield page
        finally:
            pages.close()

    @abstractmethod
    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Yield pages for a target; each page's cursor resumes right after it."""

    # -- for subclasses

    def credential(self, name: str, purpose: str = "") -> str:
        """The value of a credential from the environment, or CredentialMissing naming it."""
        variable = self.credential_env[name]
        value = self.environ.get(variable, "")
        if not value:
            raise CredentialMissing(variable, purpose or f"{self.name} {name}")
        self.http.add_secret(value)
        self._used_secrets.add(value)
        return value

    def url(self, path: str) -> str:
        """Absolute URL of a documented API path under the (possibly overridden) root."""
        if not self.base_url:
            raise UsageError(f"{self.name}: no base URL; pass --base-url")
        return self.base_url.rstrip("/") + path

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET JSON through the policy with this platform's default rate."""
        kwargs.setdefault("default_rate", self.rate_per_second)
        return self.http.get_json(url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request through the policy with this platform's default rate."""
        kwargs.setdefault("default_rate", self.rate_per_second)
        return self.http.request(method, url, **kwargs)

    @property
    def rate_per_second(self) -> float | None:
        """Default per-host rate (option `rate_limit_per_second` overrides the class default)."""
        value = self.options.get("rate_limit_per_second", self.default_rate_per_second)
        return float(value) if value else None

    def context(self, target: Target) -> str:
        """A label for log lines about a target."""
        return f"{self.name} {target}"

    def _clean(self, page: Page) -> Page:
        secrets = self._used_secrets
        if not secrets:
            return page
        posts = [_replace_raw(post, scrub_secrets(post.raw, secrets)) for post in page.posts]
        rejects = [Reject(r.reason, scrub_secrets(r.payload, secrets)) for r in page.rejects]
        return Page(posts, page.cursor, page.skipped, rejects)


def _replace_raw(post: Post, raw: Any) -> Post:
    if raw is post.raw:
        return post
    data = post.to_dict()
    data["raw"] = raw
    return Post.from_dict(data)


def api_root(base_url: str) -> str:
    """Only scheme and host (and port) of a base URL: documented API paths stay the same."""
    parts = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    if not parts.scheme or not parts.netloc:
        raise UsageError(f"base URL {base_url!r} is not an http(s) URL")
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"base URL {base_url!r} must use http or https")
    return f"{parts.scheme}://{parts.netloc}"


# --------------------------------------------------------------------------- timeline walks


@dataclass
class FetchedPage:
    """One page of a newest-first listing: posts with their positions and the next pointer."""

    posts: list[Post]
    positions: list[str]
    next: str | None
    skipped: int = 0
    rejects: list[Reject] = field(default_factory=list)


def number_position(value: str | int) -> str:
    """A sortable position for a numeric id (zero-padded so strings compare like numbers)."""
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"not a numeric id: {value!r}")
    return text.rjust(24, "0")


def time_position(value: datetime) -> str:
    """A sortable position for a time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def walk_newest_first(
    cursor: str | None,
    fetch: Callable[[str | None, str | None], FetchedPage],
) -> Iterator[Page]:
    """Walk a newest-first listing incrementally and crash-safely.

    A walk starts at the top and goes back page by page until it meets the newest item of the
    previous completed walk (the floor) or the end. The cursor after each page records the
    walk in progress: the next page pointer (backfill position), the floor, and the top of this
    walk. A crash mid-walk resumes at the pointer; a finished walk becomes the next floor.
    `fetch(pointer, floor)` gets the floor so platforms with `since_id` can use it.
    """
    state = _load_walk(cursor)
    if state.get("next"):
        pointer: str | None = state["next"]
        floor: str | None = state.get("floor")
        walk_top: str | None = state.get("walk_top")
    else:
        pointer, floor, walk_top = None, state.get("top"), None
    while True:
        page = fetch(pointer, floor)
        pairs = list(zip(page.posts, page.positions, strict=True))
        # Items equal to the floor are kept: the store dedups them, and ties in time-based
        # positions would otherwise drop a new item with the same timestamp.
        kept = [post for post, position in pairs if floor is None or position >= floor]
        if page.positions:
            newest = max(page.positions)
            walk_top = newest if walk_top is None or newest > walk_top else walk_top
        reached_floor = floor is not None and any(p <= floor for p in page.positions)
        if page.next is not None and page.next == pointer:
            # A server that hands back the same page pointer would keep us here forever.
            logger.warning("listing returned the same next-page pointer again; stopping")
        done = (
            reached_floor
            or not page.next
            or page.next == pointer
            or (not page.posts and not page.skipped)
        )
        if done:
            top = walk_top if walk_top is not None else floor
            new_state: dict[str, Any] = {"v": 1, "top": top}
        else:
            new_state = {
                "v": 1,
                "top": floor,
                "floor": floor,
                "walk_top": walk_top,
                "next": page.next,
            }
        yield Page(kept, json.dumps(new_state, sort_keys=True), page.skipped, page.rejects)
        if done:
            return
        pointer = page.next


def parent_first(parent: Post, pages: Iterator[Page]) -> Iterator[Page]:
    """`pages` with `parent` added to the first one, so every child is stored with its parent."""
    first = next(pages, None)
    if first is None:
        return
    yield Page([parent, *first.posts], first.cursor, first.skipped, first.rejects)
    yield from pages


KNOWN_ANCHORS = 20  # ids kept from the top of a finished walk of an undated listing
ANCHORS_TO_STOP = 3  # ...and how many of them a new walk must meet to stop


def walk_until_known(
    cursor: str | None,
    fetch: Callable[[str | None], FetchedPage],
) -> Iterator[Page]:
    """Walk a newest-first listing whose items carry no time (followers) incrementally.

    `fetch(pointer)` returns a page whose `positions` are the items' stable ids. A finished
    walk remembers the ids at its top; the next walk stops once it has met a few of them (one
    alone could be an old item that moved up, e.g. an unfollow and follow again). The cursor
    after each page records a walk in progress, so a crash resumes at the page pointer.
    """
    state = _load_walk(cursor)
    known: set[str] = set(state.get("known") or [])
    pointer: str | None = state.get("next") or None
    walk_top: list[str] = list(state.get("walk_top") or []) if pointer else []
    met = 0
    needed = min(len(known), ANCHORS_TO_STOP)
    while True:
        page = fetch(pointer)
        for item_id in page.positions:
            if len(walk_top) < KNOWN_ANCHORS and item_id not in walk_top:
                walk_top.append(item_id)
            met += item_id in known
        if page.next is not None and page.next == pointer:
            logger.warning("listing returned the same next-page pointer again; stopping")
        done = (
            (needed > 0 and met >= needed)
            or not page.next
            or page.next == pointer
            or (not page.posts and not page.skipped)
        )
        if done:
            new_state: dict[str, Any] = {"v": 1, "known": walk_top or sorted(known)}
        else:
            new_state = {"v": 1, "known": sorted(known), "walk_top": walk_top, "next": page.next}
        yield Page(page.posts, json.dumps(new_state, sort_keys=True), page.skipped, page.rejects)
        if done:
            return
        pointer = page.next


def _load_walk(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except json.JSONDecodeError:
        raise CollectorError(f"saved cursor is not valid JSON: {cursor[:80]!r}") from None
    if not isinstance(state, dict):
        raise CollectorError(f"saved cursor is not an object: {cursor[:80]!r}")
    return state


# Indonesian feeds write their zones by name; RFC 2822 parsers only know the US ones.
_ZONE_NAMES = {"WIB": "+0700", "WITA": "+0800", "WIT": "+0900"}


def _parse_rfc2822(text: str, field_name: str) -> datetime:
    head, _, zone = text.rpartition(" ")
    if zone.upper() in _ZONE_NAMES:
        text = f"{head} {_ZONE_NAMES[zone.upper()]}"
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"{field_name}: unrecognised time {text!r}") from None
    if parsed.tzinfo is None and text.rstrip().endswith("-0000"):
        # RFC 2822: "-0000" means UTC with no claim about the local zone.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_time(value: str | int | float | None, field_name: str = "created_at") -> datetime:
    """Parse ISO 8601, RFC 2822 or a Unix timestamp into an aware UTC datetime."""
    if value is None or value == "":
        raise ValueError(f"{field_name}: missing time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        parsed = _parse_rfc2822(text, field_name)
    if parsed.tzinfo is None:
        raise ValueError(f"{field_name}: time without a zone {value!r}")
    return parsed.astimezone(UTC)


# --------------------------------------------------------------------------- text


_BLOCK_TAGS = frozenset({"p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr"})
_SKIP_TAGS = frozenset({"script", "style", "template"})


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment (stdlib parser: no tree, fast on short posts)."""

    def __init__(self, keep_links: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.keep_links = keep_links
        self.parts: list[str] = []
        self.links: list[tuple[str, int]] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a" and self.keep_links:
            self.links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.parts[start:]).strip()
            # Keep where a link points when its text does not already show it.
            if (
                href.startswith(("http://", "https://"))
                and label
                and (label.rstrip("…").rstrip(".") not in href)
            ):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(markup: str | None, *, keep_links: bool = False) -> str:
    """Plain text from an HTML fragment: tags stripped, entities decoded, line breaks kept.

    `<br>` becomes a newline and block elements (`<p>`, `<div>`, ...) a blank-line break.
    With `keep_links`, a link whose text differs from its target is written `text (href)`.
    """
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return markup.strip()
    extractor = _TextExtractor(keep_links)
    extractor.feed(markup)
    extractor.close()
    text = "".join(extractor.parts).replace("\r\n", "\n").replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
