"""YouTube Data API v3: comments and replies, uploads, search, quota units and API errors."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import httpx
import pytest

from collectors.base import Target
from collectors.youtube import YoutubeCollector, parse_comment_thread, parse_playlist_item
from pipeline.errors import CredentialMissing, SourceUnavailable
from tests.collectors.conftest import FakeClock, Router, fixture_json, make_policy

BASE = "https://yt.example"
KEY = "AIzaContohKunciRahasia123"
ENV = {"NETRA_YOUTUBE_API_KEY": KEY}


def _json(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=fixture_json("youtube", name))


def test_a_comment_thread_gives_the_comment_and_its_replies() -> None:
    thread = fixture_json("youtube", "comment_threads_page1.json")["items"][0]
    top, reply = parse_comment_thread(thread).posts
    assert top.text == "Saya PNS dan saya dukung nomor 1, jangan bilang2 ya 'hehe'"
    assert top.parent_id == "vidContoh01" and top.kind == "comment"
    assert top.author_handle == "pns_anonim_contoh" and top.author_name == "@pns_anonim_contoh"
    assert top.metrics == {"likes": 4, "replies": 3}
    assert reply.parent_id == "UgxThread001"
    assert top.url == "https://www.youtube.com/watch?v=vidContoh01&lc=UgxThread001"


def test_a_deleted_upload_is_skipped_not_counted() -> None:
    items = fixture_json("youtube", "playlist_items_page1.json")["items"]
    assert parse_playlist_item(items[0]).post_id == "vidContoh02"  # type: ignore[union-attr]
    assert parse_playlist_item(items[1]) is None


def _video_router() -> Router:
    router = Router()
    router.add("/youtube/v3/videos", _json("video.json"))

    def threads(request: httpx.Request) -> httpx.Response:
        page = (
            "comment_threads_page2.json"
            if request.url.params.get("pageToken")
            else "comment_threads_page1.json"
        )
        return _json(page)

    router.add("/youtube/v3/commentThreads", threads)
    router.add("/youtube/v3/comments", _json("comments_replies.json"))
    return router


def test_video_comments_walk_pages_fetch_missing_replies_and_count_quota(
    fake_clock: FakeClock,
) -> None:
    router = _video_router()
    policy = make_policy(router, fake_clock)
    collector = YoutubeCollector(policy, base_url=BASE, environ=ENV)
    pages = list(collector.collect(Target.parse("video:vidContoh01")))
    posts = [post for page in pages for post in page.posts]
    ids = [post.post_id for post in posts]
    assert ids[0] == "vidContoh01"  # the video itself, so comments have their parent
    assert ids.count("UgxThread001.r1") == 1 and "UgxThread001.r3" in ids
    assert "UgxThread000" in ids  # second page
    assert pages[0].skipped == 1  # the thread without a top-level comment
    video = posts[0]
    assert (
        video.text
        == "Debat Pilkada Kab. Contoh & tanya jawab\n\nSiaran ulang debat kandidat.\nSimak sampai habis."
    )
    assert video.metrics == {"likes": 320, "replies": 4, "views": 15230}
    assert router.paths() == [
        "/youtube/v3/videos",
        "/youtube/v3/commentThreads",
        "/youtube/v3/comments",
        "/youtube/v3/commentThreads",
    ]
    bucket = next(iter(policy.units._spent))
    assert policy.units._spent[bucket] == 4  # 1 unit per call
    assert KEY not in bucket[0]
    assert all(request.url.params["key"] == KEY for request in router.requests)
    assert KEY not in json.dumps([post.to_dict() for post in posts])


def test_a_second_run_stops_at_the_newest_comment_it_has(fake_clock: FakeClock) -> None:
    router = _video_router()
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    first = list(collector.collect(Target.parse("video:vidContoh01")))
    before = len(router.requests)
    again = list(collector.collect(Target.parse("video:vidContoh01"), first[-1].cursor))
    assert len(again) == 1
    assert router.paths()[before:] == [
        "/youtube/v3/videos",
        "/youtube/v3/commentThreads",
        "/youtube/v3/comments",
    ]


def test_the_daily_quota_budget_stops_the_source(fake_clock: FakeClock) -> None:
    router = Router().add("/youtube/v3/search", _json("search.json"))
    collector = YoutubeCollector(
        make_policy(router, fake_clock), base_url=BASE, environ=ENV, options={"daily_quota": 150}
    )
    (page,) = collector.collect(Target.parse('search:"debat pilkada 2024"'))
    assert [post.post_id for post in page.posts] == ["vidCari001"]  # the channel result is ignored
    with pytest.raises(SourceUnavailable, match="quota budget of 150 units"):
        list(collector.collect(Target.parse("search:lagi")))
    assert len(router.requests) == 1  # the refused call was never sent


def test_disabled_comments_are_an_empty_video(fake_clock: FakeClock) -> None:
    router = Router().add("/youtube/v3/videos", _json("video.json"))
    router.add("/youtube/v3/commentThreads", _json("error_comments_disabled.json", 403))
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    (page,) = collector.collect(Target.parse("video:vidContoh01"))
    assert [post.post_id for post in page.posts] == ["vidContoh01"]


def test_an_exhausted_api_quota_fails_the_source_without_the_key(fake_clock: FakeClock) -> None:
    router = Router().add("/youtube/v3/search", _json("error_quota.json", 403))
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    with pytest.raises(SourceUnavailable, match="quotaExceeded") as caught:
        list(collector.collect(Target.parse("search:x")))
    assert KEY not in str(caught.value)


def test_channel_uploads_come_from_the_uploads_playlist(fake_clock: FakeClock) -> None:
    router = Router().add("/youtube/v3/channels", _json("channels.json"))

    def items(request: httpx.Request) -> httpx.Response:
        assert request.url.params["playlistId"] == "UUcontohKanalBerita000"
        page = (
            "playlist_items_page2.json"
            if request.url.params.get("pageToken")
            else "playlist_items_page1.json"
        )
        return _json(page)

    router.add("/youtube/v3/playlistItems", items)
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    pages = list(collector.collect(Target.parse("channel:@beritacontoh")))
    assert [post.post_id for page in pages for post in page.posts] == ["vidContoh02", "vidContoh01"]
    assert router.requests[0].url.params["forHandle"] == "@beritacontoh"


def test_a_missing_api_key_names_the_variable(fake_clock: FakeClock) -> None:
    collector = YoutubeCollector(make_policy(Router(), fake_clock), base_url=BASE, environ={})
    with pytest.raises(CredentialMissing, match="NETRA_YOUTUBE_API_KEY"):
        list(collector.collect(Target.parse("video:abc")))


def test_a_limit_the_video_overflows_still_moves_on_to_older_comments(
    fake_clock: FakeClock,
) -> None:
    # The video comes first on the first page, so that page always holds more posts than a
    # small limit; cutting it and keeping the old cursor refetched the same page every run.
    router = _video_router()
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    target = Target.parse("video:vidContoh01")
    first = list(collector.collect(target, limit=2))
    assert [post.post_id for post in first[0].posts][:2] == ["vidContoh01", "UgxThread001"]
    assert len(first) == 1 and len(first[0].posts) > 2
    second = list(collector.collect(target, first[-1].cursor, limit=2))
    assert router.requests[-1].url.params["pageToken"] == "QURTSl9pMlRva2VuMg=="
    assert [post.post_id for page in second for post in page.posts] == ["UgxThread000"]


def _comment(comment_id: str, published: str, parent: str | None = None) -> dict[str, Any]:
    """A `youtube#comment` in the fixture's shape, with its own id, time and parent."""
    comment = copy.deepcopy(fixture_json("youtube", "comments_replies.json")["items"][0])
    comment["id"] = comment["etag"] = comment_id
    snippet = comment["snippet"]
    snippet["publishedAt"] = snippet["updatedAt"] = published
    snippet.pop("parentId", None)
    if parent:
        snippet["parentId"] = parent
    return dict(comment)


def _thread(
    thread_id: str, published: str, replies: list[dict[str, Any]], total: int | None = None
) -> dict[str, Any]:
    """A `youtube#commentThread` in the fixture's shape around a new top-level comment."""
    thread = copy.deepcopy(fixture_json("youtube", "comment_threads_page1.json")["items"][0])
    thread["id"] = thread_id
    thread["snippet"]["topLevelComment"] = _comment(thread_id, published)
    thread["snippet"]["totalReplyCount"] = len(replies) if total is None else total
    thread["replies"] = {"comments": replies}
    if not replies:
        del thread["replies"]
    return dict(thread)


def _threads_router(*pages: dict[str, Any]) -> Router:
    router = Router().add("/youtube/v3/videos", _json("video.json"))
    router.add("/youtube/v3/commentThreads", *(httpx.Response(200, json=page) for page in pages))
    return router


def test_a_new_reply_to_a_thread_older_than_the_floor_is_kept(fake_clock: FakeClock) -> None:
    older = _thread("UgxLama", "2024-01-10T04:00:00Z", [])
    newer = _thread("UgxBaru", "2024-01-10T05:00:00Z", [])
    reply = _comment("UgxLama.r1", "2024-01-11T07:00:00Z", parent="UgxLama")
    answered = _thread("UgxLama", "2024-01-10T04:00:00Z", [reply])
    router = _threads_router({"items": [newer, older]}, {"items": [newer, answered]})
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    target = Target.parse("video:vidContoh01")
    first = list(collector.collect(target))
    assert [post.post_id for post in first[0].posts] == ["vidContoh01", "UgxBaru", "UgxLama"]
    again = list(collector.collect(target, first[-1].cursor))
    # The old top-level comment stays below the floor; its new reply is above it.
    assert [post.post_id for page in again for post in page.posts] == [
        "vidContoh01",
        "UgxBaru",
        "UgxLama.r1",
    ]
    assert "2024-01-11T07:00:00" in (again[-1].cursor or "")


def test_a_malformed_embedded_reply_skips_only_that_reply(fake_clock: FakeClock) -> None:
    bad = _comment("UgxT.r1", "2024-01-10T06:00:00Z", parent="UgxT")
    del bad["snippet"]["publishedAt"]
    good = _comment("UgxT.r2", "2024-01-10T06:05:00Z", parent="UgxT")
    router = _threads_router({"items": [_thread("UgxT", "2024-01-10T05:00:00Z", [bad, good])]})
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    (page,) = collector.collect(Target.parse("video:vidContoh01"))
    assert [post.post_id for post in page.posts] == ["vidContoh01", "UgxT", "UgxT.r2"]
    assert page.skipped == 1 and [reject.payload for reject in page.rejects] == [bad]
    # The bad reply was sent embedded; comments.list would only send it again.
    assert "/youtube/v3/comments" not in router.paths()


def test_a_malformed_reply_from_comments_list_is_counted(fake_clock: FakeClock) -> None:
    bad = _comment("UgxT.r1", "2024-01-10T06:00:00Z", parent="UgxT")
    del bad["snippet"]["publishedAt"]
    good = _comment("UgxT.r2", "2024-01-10T06:05:00Z", parent="UgxT")
    router = _threads_router({"items": [_thread("UgxT", "2024-01-10T05:00:00Z", [], total=2)]})
    router.add("/youtube/v3/comments", httpx.Response(200, json={"items": [bad, good]}))
    collector = YoutubeCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    (page,) = collector.collect(Target.parse("video:vidContoh01"))
    assert [post.post_id for post in page.posts] == ["vidContoh01", "UgxT", "UgxT.r2"]
    assert page.skipped == 1 and [reject.payload for reject in page.rejects] == [bad]


def test_a_repeated_replies_page_token_stops_instead_of_spending_the_quota(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    reply = _comment("UgxT.r2", "2024-01-10T06:05:00Z", parent="UgxT")
    router = _threads_router({"items": [_thread("UgxT", "2024-01-10T05:00:00Z", [], total=2)]})
    router.add(
        "/youtube/v3/comments",
        httpx.Response(200, json={"items": [reply], "nextPageToken": "U0FNRQ=="}),
    )
    collector = YoutubeCollector(
        make_policy(router, fake_clock), base_url=BASE, environ=ENV, options={"daily_quota": 50}
    )
    with caplog.at_level(logging.WARNING, logger="collectors.youtube"):
        (page,) = collector.collect(Target.parse("video:vidContoh01"))
    assert [post.post_id for post in page.posts] == ["vidContoh01", "UgxT", "UgxT.r2"]
    assert router.paths().count("/youtube/v3/comments") == 2
    assert "again" in caplog.text
