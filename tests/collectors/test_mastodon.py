"""Mastodon: status parsing (boosts, replies, HTML) and Link-header pagination."""

from __future__ import annotations

import httpx
import pytest

from collectors.base import Target
from collectors.mastodon import MastodonCollector, parse_context, parse_status, parse_statuses
from pipeline.errors import ParseError, SourceUnavailable
from tests.collectors.conftest import FakeClock, Router, fixture_json, make_policy

HOST = "mastodon.example"
BASE = f"https://{HOST}"


def test_a_status_becomes_a_post_with_plain_text() -> None:
    (post,) = parse_status(fixture_json("mastodon", "tag_page1.json")[0], HOST)
    assert post.key == "mastodon:mastodon.example/111700000000000050"
    assert post.text == (
        "Ayo dukung paslon 02 & coblos tanggal 14!\nJangan golput ya #pemilu2024\n\n"
        "Info: https://berita.example/artikel/123456"
    )
    assert post.author_handle == "ana_guru@mastodon.example"
    assert post.author_bio == "Guru honorer & pecinta kopi"
    assert post.metrics == {"likes": 5, "replies": 1, "shares": 2}
    assert post.kind == "post" and post.lang == "id"
    assert post.created_at.tzinfo is not None and post.raw["id"] == "111700000000000050"


def test_a_boost_is_a_repost_record_plus_the_original() -> None:
    repost, original = parse_status(fixture_json("mastodon", "tag_page1.json")[1], HOST)
    assert repost.kind == "repost" and repost.author_handle == "sari@mastodon.example"
    assert repost.parent_id == original.post_id == "mastodon.example/111699999999999000"
    assert repost.text == original.text == "Debat capres malam ini seru 🔥"
    assert original.author_handle == "rudi_warga@kota.example"


def test_a_reply_keeps_its_parent_and_content_warning() -> None:
    (reply,) = parse_status(fixture_json("mastodon", "tag_page1.json")[2], HOST)
    assert reply.kind == "comment"
    assert reply.parent_id == "mastodon.example/111700000000000040"
    assert reply.text == "politik\n\n@ana_guru setuju bu, nomor 2 pasti menang"
    assert reply.created_at.isoformat() == "2024-01-05T01:00:00+00:00"


def test_a_malformed_status_is_skipped_and_sampled() -> None:
    parsed, positions = parse_statuses(
        fixture_json("mastodon", "tag_page1.json"), HOST, context="t"
    )
    assert len(parsed.posts) == 4 and len(positions) == 4
    assert parsed.skipped == 1 and parsed.rejects[0].payload["id"] == "111700000000000047"


def test_a_thread_gives_the_root_and_its_replies() -> None:
    parsed = parse_context(
        fixture_json("mastodon", "status.json"),
        fixture_json("mastodon", "context.json"),
        HOST,
        context="t",
    )
    assert [post.kind for post in parsed.posts] == ["post", "comment", "comment"]
    assert parsed.posts[2].parent_id == parsed.posts[1].post_id
    assert parsed.posts[2].text == "Pegawai kelurahan jangan ikut kampanye ya <3"


def _tag_router() -> Router:
    router = Router()
    next_link = f'<{BASE}/api/v1/timelines/tag/pemilu2024?max_id=111700000000000047>; rel="next", <{BASE}/api/v1/timelines/tag/pemilu2024?min_id=111700000000000050>; rel="prev"'

    def timeline(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("max_id") == "111700000000000047":
            return httpx.Response(200, json=fixture_json("mastodon", "tag_page2.json"))
        return httpx.Response(
            200, json=fixture_json("mastodon", "tag_page1.json"), headers={"Link": next_link}
        )

    return router.add("/api/v1/timelines/tag/pemilu2024", timeline)


def test_the_tag_timeline_follows_the_link_header(fake_clock: FakeClock) -> None:
    router = _tag_router()
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    pages = list(collector.collect(Target.parse("tag:#pemilu2024")))
    assert [len(page.posts) for page in pages] == [4, 2]
    assert pages[0].skipped == 1
    assert router.requests[0].url.params["limit"] == "40"
    assert router.requests[1].url.params["max_id"] == "111700000000000047"
    # Default documented limit: one request per second per instance.
    assert fake_clock.sleeps == [1.0]


def test_the_next_run_asks_only_until_what_it_has(fake_clock: FakeClock) -> None:
    router = _tag_router()
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    first = list(collector.collect(Target.parse("tag:pemilu2024")))
    again = list(collector.collect(Target.parse("tag:pemilu2024"), first[-1].cursor))
    # The newest status is already the floor: one page, nothing older requested.
    assert len(again) == 1 and len(router.requests) == 3
    assert {post.post_id for post in again[0].posts} == {"mastodon.example/111700000000000050"}


def test_an_account_is_looked_up_then_walked(fake_clock: FakeClock) -> None:
    router = Router()
    router.add(
        "/api/v1/accounts/lookup",
        httpx.Response(200, json=fixture_json("mastodon", "account_lookup.json")),
    )
    router.add(
        "/api/v1/accounts/109000000000000001/statuses",
        httpx.Response(200, json=fixture_json("mastodon", "tag_page2.json")),
    )
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    (page,) = collector.collect(Target.parse("account:ana_guru@mastodon.example"))
    assert len(page.posts) == 2
    assert router.requests[0].url.params["acct"] == "ana_guru"


def test_a_thread_target_fetches_status_and_context(fake_clock: FakeClock) -> None:
    router = Router()
    router.add(
        "/api/v1/statuses/111800000000000001",
        httpx.Response(200, json=fixture_json("mastodon", "status.json")),
    )
    router.add(
        "/api/v1/statuses/111800000000000001/context",
        httpx.Response(200, json=fixture_json("mastodon", "context.json")),
    )
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    (page,) = collector.collect(Target.parse(f"thread:{BASE}/@ana_guru/111800000000000001"))
    assert len(page.posts) == 3 and page.cursor is None


def test_a_deleted_thread_fails_the_target_cleanly(fake_clock: FakeClock) -> None:
    collector = MastodonCollector(make_policy(Router(), fake_clock), base_url=BASE)
    with pytest.raises(SourceUnavailable, match="not found"):
        list(collector.collect(Target.parse("thread:123")))


def test_a_page_that_is_not_json_is_a_parse_error(fake_clock: FakeClock) -> None:
    router = Router().add(
        "/api/v1/timelines/tag/x", httpx.Response(200, text="<html>Bad gateway</html>")
    )
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    with pytest.raises(ParseError):
        list(collector.collect(Target.parse("tag:x")))


def test_a_limit_smaller_than_a_page_still_moves_the_checkpoint(fake_clock: FakeClock) -> None:
    # The first page gives four posts for a limit of three (the fixture server sends its whole
    # page, and a boost is two posts). Cutting the page and keeping the old cursor made every
    # run fetch that same page again.
    router = _tag_router()
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    target = Target.parse("tag:pemilu2024")
    first = list(collector.collect(target, limit=3))
    assert [len(page.posts) for page in first] == [4]
    assert router.requests[0].url.params["limit"] == "3"
    second = list(collector.collect(target, first[-1].cursor, limit=3))
    assert router.requests[-1].url.params["max_id"] == "111700000000000047"
    assert [post.post_id for page in second for post in page.posts] == [
        "mastodon.example/111600000000000020",
        "mastodon.example/111600000000000010",
    ]
