"""The shared base: targets, the HTTP policy (retries, limits, robots, secrets), walks, registry."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from collectors.base import (
    COLLECTORS,
    Collector,
    FetchedPage,
    HttpPolicy,
    _HostLimiter,
    get_collector,
    html_to_text,
    int_metrics,
    number_position,
    parse_positioned,
    parse_time,
    redact_url,
    register,
    scrub_secrets,
    walk_newest_first,
)
from collectors.base import Target as BaseTarget
from pipeline.errors import ParseError, SourceUnavailable, UsageError
from pipeline.records import Post
from tests.collectors.conftest import FakeClock, Router, make_policy
from tests.conftest import make_post

# -- targets


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("tag:pemilu2024", "tag", "pemilu2024"),
        ("account:ana@mastodon.example", "account", "ana@mastodon.example"),
        ('search:"debat pilkada 2024"', "search", "debat pilkada 2024"),
        ("feed:https://news.example/rss.xml", "feed", "https://news.example/rss.xml"),
        ("Channel: kanal_contoh ", "channel", "kanal_contoh"),
    ],
)
def test_targets_parse_kind_and_value(text: str, kind: str, value: str) -> None:
    target = BaseTarget.parse(text)
    assert (target.kind, target.value) == (kind, value)


@pytest.mark.parametrize("text", ["pemilu2024", "tag:", ":value", "9x:abc", 'search:""'])
def test_malformed_targets_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="kind:value"):
        BaseTarget.parse(text)


# -- retries and rate limits


def test_server_errors_are_retried_with_growing_backoff(fake_clock: FakeClock) -> None:
    router = Router().add(
        "/x", httpx.Response(503), httpx.Response(502), httpx.Response(200, json=[1])
    )
    policy = make_policy(router, fake_clock, backoff_seconds=1.0)
    assert policy.get_json("https://api.example/x") == [1]
    assert len(router.requests) == 3
    # Equal jitter with jitter()=0.5: 0.75 * 2**attempt.
    assert fake_clock.sleeps == [0.75, 1.5]


def test_429_honours_retry_after_seconds(fake_clock: FakeClock) -> None:
    router = Router().add(
        "/x", httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={})
    )
    make_policy(router, fake_clock).get_json("https://api.example/x")
    assert fake_clock.sleeps == [7.0]


def test_429_honours_retry_after_as_http_date(fake_clock: FakeClock) -> None:
    when = datetime.fromtimestamp(fake_clock.wall(), UTC) + timedelta(seconds=30)
    router = Router().add(
        "/x",
        httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}),
        httpx.Response(200, json={}),
    )
    make_policy(router, fake_clock).get_json("https://api.example/x")
    assert fake_clock.sleeps == [pytest.approx(30, abs=1)]


def test_429_without_retry_after_uses_the_rate_limit_reset_header(fake_clock: FakeClock) -> None:
    reset = int(fake_clock.wall()) + 12
    router = Router().add(
        "/2/tweets/search/recent",
        httpx.Response(429, headers={"x-rate-limit-reset": str(reset)}),
        httpx.Response(200, json={}),
    )
    make_policy(router, fake_clock).get_json("https://api.example/2/tweets/search/recent")
    assert fake_clock.sleeps == [pytest.approx(12, abs=1)]


def test_a_retry_after_beyond_the_maximum_fails_now(fake_clock: FakeClock) -> None:
    router = Router().add("/x", httpx.Response(429, headers={"Retry-After": "86400"}))
    with pytest.raises(SourceUnavailable, match="retry only after 86400"):
        make_policy(router, fake_clock, max_retry_after_seconds=900).get_json(
            "https://api.example/x"
        )
    assert fake_clock.sleeps == [] and len(router.requests) == 1


def test_timeouts_are_retried_then_reported(fake_clock: FakeClock) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(SourceUnavailable, match="failed after 3 attempts: ReadTimeout"):
        make_policy(handler, fake_clock, max_retries=2).get_json("https://api.example/x")
    assert len(calls) == 3 and len(fake_clock.sleeps) == 2


def test_a_connection_error_then_success(fake_clock: FakeClock) -> None:
    state = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        state["n"] += 1
        if state["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": True})

    assert make_policy(handler, fake_clock).get_json("https://api.example/x") == {"ok": True}


def test_client_errors_are_not_retried_unless_allowed(fake_clock: FakeClock) -> None:
    router = Router().add("/gone", httpx.Response(404, text="not here"))
    policy = make_policy(router, fake_clock)
    with pytest.raises(SourceUnavailable, match="HTTP 404: not here"):
        policy.request("GET", "https://api.example/gone")
    assert policy.request("GET", "https://api.example/gone", ok_statuses=(404,)).status_code == 404
    assert len(router.requests) == 2 and fake_clock.sleeps == []


def test_a_body_that_is_not_json_is_a_parse_error(fake_clock: FakeClock) -> None:
    router = Router().add("/x", httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ParseError, match="did not return JSON"):
        make_policy(router, fake_clock).get_json("https://api.example/x")


def test_requests_to_one_host_are_spaced_by_its_rate_limit(fake_clock: FakeClock) -> None:
    router = Router().add("/x", httpx.Response(200, json={}))
    policy = make_policy(router, fake_clock, rate_limits={"api.example": 2.0})
    for _ in range(3):
        policy.get_json("https://api.example/x")
    policy.get_json("https://other.example/x")  # another host is not held back
    assert fake_clock.sleeps == [0.5, 0.5]


def test_a_default_rate_applies_only_when_none_is_configured(fake_clock: FakeClock) -> None:
    router = Router().add("/x", httpx.Response(200, json={}))
    policy = make_policy(router, fake_clock, rate_limits={"api.example": 10.0})
    policy.get_json("https://api.example/x", default_rate=1.0)
    policy.get_json("https://new.example/x", default_rate=1.0)
    assert policy.rate_limit("api.example") == 10.0
    assert policy.rate_limit("new.example") == 1.0


def test_the_host_limiter_gives_every_thread_its_own_slot() -> None:
    limiter = _HostLimiter(per_second=100.0)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = limiter.reserve(now=50.0)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([index * 0.01 for index in range(40)])


def test_query_parameters_merge_with_a_query_already_in_the_url(fake_clock: FakeClock) -> None:
    router = Router().add("/feed", httpx.Response(200, json={}))
    policy = make_policy(router, fake_clock)
    policy.get_json("https://api.example/feed?cat=pemilu")
    policy.get_json("https://api.example/feed?cat=pemilu", params={"page": 2, "skip": None})
    assert [str(request.url.query, "ascii") for request in router.requests] == [
        "cat=pemilu",
        "cat=pemilu&page=2",
    ]


def test_the_user_agent_identifies_netra(fake_clock: FakeClock) -> None:
    router = Router().add("/x", httpx.Response(200, json={}))
    make_policy(router, fake_clock, user_agent="Netra/test (+ops@bawaslu.example)").get_json(
        "https://api.example/x"
    )
    assert router.requests[0].headers["user-agent"] == "Netra/test (+ops@bawaslu.example)"


# -- robots.txt


def test_robots_txt_is_honoured_for_html_pages(fake_clock: FakeClock) -> None:
    router = Router()
    router.add("/robots.txt", httpx.Response(200, text="User-agent: *\nDisallow: /private/\n"))
    router.add("/private/page", httpx.Response(200, text="secret"))
    router.add("/public/page", httpx.Response(200, text="ok"))
    policy = make_policy(router, fake_clock)
    assert policy.get_text("https://site.example/public/page").text == "ok"
    with pytest.raises(SourceUnavailable, match=r"robots\.txt"):
        policy.get_text("https://site.example/private/page")
    assert router.paths().count("/robots.txt") == 1  # fetched once per site
    assert "/private/page" not in router.paths()


def test_a_missing_robots_txt_allows_and_an_unreachable_one_forbids(fake_clock: FakeClock) -> None:
    router = Router().add("/page", httpx.Response(200, text="ok"))
    router.add("/robots.txt", httpx.Response(404))
    assert make_policy(router, fake_clock).get_text("https://open.example/page").text == "ok"
    failing = Router().add("/robots.txt", httpx.Response(503)).add("/page", httpx.Response(200))
    with pytest.raises(SourceUnavailable, match=r"robots\.txt"):
        make_policy(failing, fake_clock, max_retries=1).get_text("https://down.example/page")


# -- secrets


def test_credentials_are_redacted_from_urls_and_errors(fake_clock: FakeClock) -> None:
    assert "s3cr3t" not in redact_url(
        "https://www.googleapis.com/youtube/v3/videos?id=1&key=s3cr3t"
    )
    router = Router().add("/v", httpx.Response(403, text="bad key s3cr3tvalue"))
    policy = make_policy(router, fake_clock)
    policy.add_secret("s3cr3tvalue")
    with pytest.raises(SourceUnavailable) as caught:
        policy.get_json("https://api.example/v", params={"key": "s3cr3tvalue"})
    assert "s3cr3tvalue" not in str(caught.value)
    assert "REDACTED" in str(caught.value)


def test_scrub_secrets_walks_nested_payloads() -> None:
    payload = {"a": ["token abcd1234 here", {"b": "abcd1234"}], "n": 3}
    assert scrub_secrets(payload, ["abcd1234"]) == {
        "a": ["token REDACTED here", {"b": "REDACTED"}],
        "n": 3,
    }


# -- registry


def test_a_duplicate_collector_name_is_an_error() -> None:
    class Impostor(Collector):
        name = "mastodon"
        target_kinds = ("tag",)

        def fetch_pages(self, target, cursor, quota):  # type: ignore[no-untyped-def]
            yield from ()

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert COLLECTORS["mastodon"] is not Impostor


def test_an_unknown_platform_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="valid platforms: bluesky, file, mastodon"):
        get_collector("myspace")


# -- newest-first walks


def _listing(ids: list[int], page_size: int = 3):  # type: ignore[no-untyped-def]
    """A fake newest-first listing over `ids` (mutable: tests prepend new ones)."""

    def fetch(pointer: str | None, floor: str | None) -> FetchedPage:
        del floor
        ordered = sorted(ids, reverse=True)
        start = int(pointer) if pointer else 0
        chunk = ordered[start : start + page_size]
        posts = [
            Post(
                platform="t",
                post_id=str(item),
                text=f"post {item}",
                created_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=item),
            )
            for item in chunk
        ]
        more = start + page_size < len(ordered)
        return FetchedPage(
            posts, [number_position(i) for i in chunk], str(start + page_size) if more else None
        )

    return fetch


def _ids(pages) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(post.post_id) for page in pages for post in page.posts]


def test_a_walk_collects_everything_then_only_what_is_new() -> None:
    ids = list(range(1, 9))
    first = list(walk_newest_first(None, _listing(ids)))
    assert _ids(first) == [8, 7, 6, 5, 4, 3, 2, 1]
    assert json.loads(first[-1].cursor or "")["top"] == number_position(8)
    ids.extend([9, 10])
    second = list(walk_newest_first(first[-1].cursor, _listing(ids)))
    # 8 (the floor) is fetched again; the store dedups it.
    assert _ids(second) == [10, 9, 8]


def test_a_crash_mid_walk_resumes_at_the_backfill_position() -> None:
    ids = list(range(1, 11))
    walk = walk_newest_first(None, _listing(ids))
    committed = [next(walk), next(walk)]  # two pages committed, then the process dies
    walk.close()
    ids.extend([11, 12])  # new posts arrive before the restart
    resumed = list(walk_newest_first(committed[-1].cursor, _listing(ids)))
    # Positions shift by two because of the new posts; the walk resumes by pointer, and the
    # few items seen again are deduplicated by the store. Nothing older is lost.
    collected = set(_ids(committed)) | set(_ids(resumed))
    assert collected >= set(range(1, 11))
    state = json.loads(resumed[-1].cursor or "")
    assert state == {"v": 1, "top": number_position(10)}  # the top of the interrupted walk
    after = list(walk_newest_first(resumed[-1].cursor, _listing(ids)))
    assert _ids(after) == [12, 11, 10]  # the posts that arrived during the crash


def test_the_cursor_of_an_unfinished_walk_records_floor_and_pointer() -> None:
    ids = list(range(1, 8))
    done = list(walk_newest_first(None, _listing(ids)))[-1].cursor
    ids.extend(range(8, 16))
    page = next(walk_newest_first(done, _listing(ids)))
    state = json.loads(page.cursor or "")
    assert state["next"] == "3"
    assert state["floor"] == number_position(7)
    assert state["walk_top"] == number_position(15)


class _Listing(Collector):
    """A collector over a fake listing that ignores the page size it is asked for."""

    name = "listing-test"
    target_kinds = ("all",)

    def fetch_pages(self, target, cursor, quota):  # type: ignore[no-untyped-def]
        """Walk ids 9..1 in pages of four."""
        yield from walk_newest_first(cursor, _listing(list(range(1, 10)), page_size=4))


def _listing_collector(page_budget: int | None = None) -> _Listing:
    client = httpx.Client(transport=httpx.MockTransport(Router()))
    return _Listing(HttpPolicy(client), page_budget=page_budget)


def test_a_post_limit_keeps_the_page_that_reaches_it_whole_with_its_cursor() -> None:
    # This used to assert that the page crossing the limit was cut to [5, 4] and kept the
    # previous checkpoint. That pins the cursor forever whenever one page yields more posts
    # than the quota has left (a boost, a video before its comments, X's minimum page size):
    # every run refetched and cut the same page. The limit is a soft cap now.
    collector = _listing_collector()
    pages = list(collector.collect(BaseTarget("all", "x"), None, limit=6))
    assert _ids(pages) == [9, 8, 7, 6, 5, 4, 3, 2]
    assert json.loads(pages[1].cursor or "")["next"] == "8"
    rest = list(collector.collect(BaseTarget("all", "x"), pages[-1].cursor, limit=6))
    assert _ids(rest) == [1]
    assert _ids(_listing_collector(page_budget=1).collect(BaseTarget("all", "x"))) == [9, 8, 7, 6]


def test_a_limit_below_the_page_size_still_advances_the_checkpoint_every_run() -> None:
    collector = _listing_collector()
    cursor: str | None = None
    runs: list[list[int]] = []
    for _ in range(3):
        pages = list(collector.collect(BaseTarget("all", "x"), cursor, limit=2))
        runs.append(_ids(pages))
        cursor = pages[-1].cursor
    assert runs == [[9, 8, 7, 6], [5, 4, 3, 2], [1]]


def test_a_target_kind_the_collector_lacks_is_refused() -> None:
    with pytest.raises(UsageError, match="valid kinds: tag, account, followers, thread"):
        get_collector("mastodon").check_target(BaseTarget("video", "abc"))


def test_parse_positioned_repeats_an_items_position_for_each_of_its_posts() -> None:
    def parse_one(item: dict[str, Any]) -> list[Post]:
        return [make_post(number) for number in item["numbers"]]

    items = [
        {"id": 7, "numbers": [1, 2]},
        {"id": 6},
        {"id": 5, "numbers": []},
        {"id": 4, "numbers": [3]},
    ]
    parsed, positions = parse_positioned(
        items, parse_one, lambda item: number_position(item["id"]), context="t"
    )
    assert [post.post_id for post in parsed.posts] == ["1001", "1002", "1003"]
    assert positions == [number_position(7), number_position(7), number_position(4)]
    assert parsed.skipped == 1 and parsed.rejects[0].payload == {"id": 6}


def test_parse_positioned_skips_an_item_without_a_valid_position() -> None:
    # The item parses fine but its id is not numeric: it used to raise out of the whole page.
    items = [{"id": "7"}, {"id": "tujuh"}, {"id": "5"}]
    parsed, positions = parse_positioned(
        items,
        lambda item: make_post(int(item["id"]) if item["id"].isdigit() else 6),
        lambda item: number_position(item["id"]),
        context="t",
    )
    assert [post.post_id for post in parsed.posts] == ["1007", "1005"]
    assert positions == [number_position(7), number_position(5)]
    assert parsed.skipped == 1 and parsed.rejects[0].payload == {"id": "tujuh"}
    assert "not a numeric id" in parsed.rejects[0].reason


def test_int_metrics_keeps_only_integer_counts() -> None:
    source = {"likeCount": 3, "replyCount": "4", "repostCount": None}
    fields = {"likes": "likeCount", "replies": "replyCount", "shares": "repostCount", "views": "x"}
    assert int_metrics(source, fields) == {"likes": 3}


# -- text and time


def test_html_to_text_keeps_line_breaks_and_decodes_entities() -> None:
    html = "<p>Satu &amp; dua<br>tiga</p><p>empat&nbsp;lima</p>"
    assert html_to_text(html) == "Satu & dua\ntiga\n\nempat lima"
    assert html_to_text('lihat <a href="https://a.example/x">di sini</a>', keep_links=True) == (
        "lihat di sini (https://a.example/x)"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-05T10:00:00+07:00", datetime(2024, 1, 5, 3, tzinfo=UTC)),
        ("Fri, 05 Jan 2024 10:00:00 WITA", datetime(2024, 1, 5, 2, tzinfo=UTC)),
        ("Fri, 05 Jan 2024 10:00:00 +0545", datetime(2024, 1, 5, 4, 15, tzinfo=UTC)),
        (1704448800, datetime(2024, 1, 5, 10, tzinfo=UTC)),
    ],
)
def test_parse_time_handles_feed_and_api_forms(value: object, expected: datetime) -> None:
    assert parse_time(value) == expected  # type: ignore[arg-type]


def test_parse_time_refuses_a_time_without_a_zone() -> None:
    with pytest.raises(ValueError, match="zone"):
        parse_time("2024-01-05T10:00:00")
