"""X API v2: includes joined, retweets with full text, replies, errors beside data, paging."""

from __future__ import annotations

import httpx
import pytest

from collectors.base import Target, number_position
from collectors.x import XCollector, parse_tweets_page
from pipeline.errors import CredentialMissing, SourceUnavailable
from tests.collectors.conftest import FakeClock, Router, fixture_json, make_policy

BASE = "https://xapi.example"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAContohBearerToken"
ENV = {"NETRA_X_BEARER_TOKEN": TOKEN}


def test_a_page_joins_authors_and_expands_retweets() -> None:
    parsed, positions = parse_tweets_page(fixture_json("x", "search_page1.json"), context="t")
    by_id = {post.post_id: post for post in parsed.posts}
    retweet = by_id["1744000000000000300"]
    assert retweet.kind == "repost" and retweet.parent_id == "1744000000000000100"
    assert retweet.text.endswith("salam dua jari ✌️")  # the note_tweet full text, not "RT …"
    assert (
        retweet.author_handle == "pakdinas_contoh"
        and retweet.author_bio == "ASN | pendapat pribadi"
    )
    original = by_id["1744000000000000100"]
    assert original.author_handle == "relawan02_contoh" and original.kind == "post"
    assert original.metrics == {"likes": 120, "replies": 3, "shares": 40, "views": 5000}
    reply = by_id["1744000000000000250"]
    assert reply.kind == "comment" and reply.parent_id == "1744000000000000100"
    assert reply.text == "@relawan02_contoh Siap hadir & bawa teman kantor 💪"
    assert reply.url == "https://x.com/pakdinas_contoh/status/1744000000000000250"
    # The retweet whose original is gone (listed in `errors`) keeps its own text.
    assert by_id["1744000000000000200"].text == "RT @akun_dihapus: teks terpotong…"
    assert parsed.skipped == 1  # the tweet without text or time
    assert len(positions) == len(parsed.posts) == 4


def test_the_original_of_a_retweet_that_is_a_reply_is_a_comment() -> None:
    payload = fixture_json("x", "search_retweet_of_reply.json")
    parsed, positions = parse_tweets_page(payload, context="t")
    retweet, original = parsed.posts
    assert retweet.kind == "repost" and retweet.parent_id == "1745000000000000200"
    assert original.post_id == "1745000000000000200"
    assert original.kind == "comment" and original.parent_id == "1745000000000000100"
    assert original.author_handle == "warga03_contoh"
    assert original.text == "@relawan02_contoh Setuju, coblos nomor 2 & ajak rekan kantor"
    assert positions == [number_position("1745000000000000300")] * 2


def test_a_tweet_without_a_numeric_id_is_skipped_not_the_whole_page() -> None:
    payload = fixture_json("x", "search_page1.json")
    payload["data"][1]["id"] = "tidak-numerik"  # parses, but has no walk position
    parsed, positions = parse_tweets_page(payload, context="t")
    assert "tidak-numerik" not in {post.post_id for post in parsed.posts}
    assert parsed.skipped == 2 and parsed.rejects[0].payload["id"] == "tidak-numerik"
    assert len(positions) == len(parsed.posts) == 3


def test_an_empty_result_has_no_data_key() -> None:
    parsed, positions = parse_tweets_page(fixture_json("x", "search_empty.json"), context="t")
    assert parsed.posts == [] and positions == []


def _search_router() -> Router:
    def search(request: httpx.Request) -> httpx.Response:
        page = "search_page2.json" if request.url.params.get("next_token") else "search_page1.json"
        return httpx.Response(200, json=fixture_json("x", page))

    return Router().add("/2/tweets/search/recent", search)


def test_search_pages_with_next_token_and_since_id_next_time(fake_clock: FakeClock) -> None:
    router = _search_router()
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    pages = list(collector.collect(Target.parse('search:"netralitas ASN"')))
    assert [len(page.posts) for page in pages] == [4, 1]
    first, second = router.requests
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.url.params["query"] == "netralitas ASN"
    assert "author_id" in first.url.params["expansions"]
    assert second.url.params["next_token"] == "b26v89c19zqg8o3fpds4l8gbd7ufk5xr9x7ztn5kxj9a5"
    assert fake_clock.sleeps == [2.0]  # 450 requests / 15 min
    list(collector.collect(Target.parse('search:"netralitas ASN"'), pages[-1].cursor))
    assert router.requests[2].url.params["since_id"] == "1744000000000000300"


def test_a_thread_searches_its_conversation(fake_clock: FakeClock) -> None:
    router = _search_router()
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    list(collector.collect(Target.parse("thread:1744000000000000100"), limit=3))
    assert router.requests[0].url.params["query"] == "conversation_id:1744000000000000100"
    assert router.requests[0].url.params["max_results"] == "10"  # the API's minimum


def test_an_author_timeline_looks_up_the_user(fake_clock: FakeClock) -> None:
    router = Router().add(
        "/2/users/by/username/pakdinas_contoh",
        httpx.Response(200, json=fixture_json("x", "user.json")),
    )
    router.add(
        "/2/users/1500000000000000001/tweets",
        httpx.Response(200, json=fixture_json("x", "search_page2.json")),
    )
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    (page,) = collector.collect(Target.parse("author:@pakdinas_contoh"))
    assert len(page.posts) == 1


def test_an_unknown_user_is_reported(fake_clock: FakeClock) -> None:
    problem = {
        "errors": [
            {
                "detail": "Could not find user with username: [tidak_ada].",
                "title": "Not Found Error",
            }
        ]
    }
    router = Router().add("/2/users/by/username/tidak_ada", httpx.Response(200, json=problem))
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    with pytest.raises(SourceUnavailable, match="Could not find user"):
        list(collector.collect(Target.parse("author:tidak_ada")))


def test_401_is_not_retried_and_hides_the_token(fake_clock: FakeClock) -> None:
    router = Router().add(
        "/2/tweets/search/recent", httpx.Response(401, json={"title": "Unauthorized"})
    )
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    with pytest.raises(SourceUnavailable, match="HTTP 401") as caught:
        list(collector.collect(Target.parse("search:x")))
    assert TOKEN not in str(caught.value) and len(router.requests) == 1


def test_a_missing_bearer_token_names_the_variable(fake_clock: FakeClock) -> None:
    collector = XCollector(make_policy(Router(), fake_clock), base_url=BASE, environ={})
    with pytest.raises(CredentialMissing, match="NETRA_X_BEARER_TOKEN"):
        list(collector.collect(Target.parse("search:x")))
