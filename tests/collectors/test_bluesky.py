"""Bluesky: post views, byte-offset facets, reposts, threads and the search login."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from collectors.base import Target
from collectors.bluesky import (
    BlueskyCollector,
    expand_links,
    parse_feed,
    parse_followers,
    parse_likes,
    parse_profile,
    parse_thread,
    thread_uri,
)
from pipeline.errors import CredentialMissing, ParseError, UsageError
from tests.collectors.conftest import FakeClock, Router, fixture_json, make_policy

BASE = "https://appview.example"
ENV = {
    "NETRA_BLUESKY_HANDLE": "petugas.example",
    "NETRA_BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop",
}


def test_link_facets_are_expanded_using_utf8_byte_offsets() -> None:
    payload = fixture_json("bluesky", "author_feed_page1.json")
    record = payload["feed"][0]["post"]["record"]
    text = expand_links(record["text"], record["facets"])
    # The emoji before the link is several bytes long: character offsets would cut wrongly.
    assert (
        text
        == "🗳️ Coblos nomor 2! Baca visi misi di https://kpu.example/visi-misi/paslon-2 #Pemilu2024"
    )


def test_a_facet_off_character_boundaries_is_ignored() -> None:
    text = "é link"
    bad = [
        {
            "index": {"byteStart": 1, "byteEnd": 3},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x.example"}],
        }
    ]
    assert expand_links(text, bad) == text


def test_an_author_feed_gives_posts_reposts_and_replies() -> None:
    parsed, positions = parse_feed(
        fixture_json("bluesky", "author_feed_page1.json"), key="feed", context="t"
    )
    kinds = [(post.kind, post.author_handle) for post in parsed.posts]
    assert kinds == [
        ("post", "warga-kopi.example"),
        ("repost", "warga-kopi.example"),
        ("post", "guru-desa.example"),
        ("comment", "warga-kopi.example"),
    ]
    repost, original = parsed.posts[1], parsed.posts[2]
    assert repost.parent_id == original.post_id
    assert repost.created_at.isoformat() == "2024-01-06T01:00:00+00:00"  # when it was reposted
    reply = parsed.posts[3]
    assert reply.parent_id == "at://did:plc:contohguru000000000002/app.bsky.feed.post/3kcontoh0000"
    assert reply.url == "https://bsky.app/profile/warga-kopi.example/post/3kcontoh0002"
    assert parsed.skipped == 1 and len(positions) == 4
    assert parsed.posts[0].metrics == {"likes": 3, "replies": 1, "shares": 2}


def test_a_thread_skips_blocked_and_deleted_replies() -> None:
    parsed = parse_thread(fixture_json("bluesky", "thread.json"), context="t")
    assert [post.post_id.rsplit("/", 1)[1] for post in parsed.posts] == [
        "3kthread0001",
        "3kthread0002",
        "3kthread0003",
    ]
    assert [post.kind for post in parsed.posts] == ["post", "comment", "comment"]
    assert parsed.skipped == 0


def test_thread_links_become_at_uris() -> None:
    assert thread_uri("https://bsky.app/profile/guru-desa.example/post/3kthread0001") == (
        "at://guru-desa.example/app.bsky.feed.post/3kthread0001"
    )


def test_the_author_feed_is_walked_by_cursor(fake_clock: FakeClock) -> None:
    def feed(request: httpx.Request) -> httpx.Response:
        name = (
            "author_feed_page2.json"
            if request.url.params.get("cursor")
            else "author_feed_page1.json"
        )
        return httpx.Response(200, json=fixture_json("bluesky", name))

    router = Router().add("/xrpc/app.bsky.feed.getAuthorFeed", feed)
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE, environ={})
    pages = list(collector.collect(Target.parse("author:@warga-kopi.example")))
    assert [len(page.posts) for page in pages] == [4, 1]
    assert router.requests[1].url.params["cursor"] == "2024-01-05T22:00:00.000Z"
    assert router.requests[0].url.params["actor"] == "warga-kopi.example"
    assert "authorization" not in router.requests[0].headers  # feeds need no login


def test_search_logs_in_and_never_leaks_the_tokens(fake_clock: FakeClock) -> None:
    router = Router()
    router.add(
        "/xrpc/com.atproto.server.createSession",
        httpx.Response(200, json=fixture_json("bluesky", "session.json")),
        method="POST",
    )
    router.add(
        "/xrpc/app.bsky.feed.searchPosts",
        httpx.Response(200, json=fixture_json("bluesky", "search.json")),
    )
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    pages = list(collector.collect(Target.parse('search:"ASN netral"')))
    login, search = router.requests
    assert json.loads(login.content) == {
        "identifier": "petugas.example",
        "password": ENV["NETRA_BLUESKY_APP_PASSWORD"],
    }
    token = fixture_json("bluesky", "session.json")["accessJwt"]
    assert search.headers["authorization"] == f"Bearer {token}"
    assert search.url.params["q"] == "ASN netral" and search.url.params["sort"] == "latest"
    dumped = json.dumps([post.to_dict() for page in pages for post in page.posts])
    assert token not in dumped and ENV["NETRA_BLUESKY_APP_PASSWORD"] not in dumped
    assert len(pages[0].posts) == 1


def test_search_without_credentials_names_the_variable(fake_clock: FakeClock) -> None:
    collector = BlueskyCollector(make_policy(Router(), fake_clock), base_url=BASE, environ={})
    with pytest.raises(CredentialMissing, match="NETRA_BLUESKY_HANDLE"):
        list(collector.collect(Target.parse("search:pemilu")))


def test_a_configured_credential_variable_is_used(fake_clock: FakeClock) -> None:
    collector = BlueskyCollector(
        make_policy(Router(), fake_clock),
        base_url=BASE,
        credentials={"handle": "KANTOR_BSKY_HANDLE"},
        environ={},
    )
    with pytest.raises(CredentialMissing, match="KANTOR_BSKY_HANDLE"):
        list(collector.collect(Target.parse("search:pemilu")))


def test_a_thread_that_no_longer_exists_is_empty(fake_clock: FakeClock) -> None:
    router = Router().add(
        "/xrpc/app.bsky.feed.getPostThread",
        httpx.Response(400, json={"error": "NotFound", "message": "Post not found: at://x"}),
    )
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE)
    (page,) = collector.collect(Target.parse("thread:at://did:plc:x/app.bsky.feed.post/3k"))
    assert page.posts == []


LIKED = "at://did:plc:contohtimses0000000003/app.bsky.feed.post/3kliked00001"


def _likes_router() -> Router:
    def likes(request: httpx.Request) -> httpx.Response:
        name = "likes_page2.json" if request.url.params.get("cursor") else "likes_page1.json"
        return httpx.Response(200, json=fixture_json("bluesky", name))

    router = Router()
    router.add(
        "/xrpc/app.bsky.feed.getPostThread",
        httpx.Response(200, json=fixture_json("bluesky", "liked_post.json")),
    )
    return router.add("/xrpc/app.bsky.feed.getLikes", likes)


def test_likes_become_like_records_of_the_liker(fake_clock: FakeClock) -> None:
    router = _likes_router()
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE, environ={})
    target = Target.parse("likes:https://bsky.app/profile/relawan-be.example/post/3kliked00001")
    first, second = collector.collect(target)
    thread, likes_1, likes_2 = router.requests
    # the link's handle is resolved through the thread call; likes are asked by the DID URI
    assert thread.url.params["uri"] == "at://relawan-be.example/app.bsky.feed.post/3kliked00001"
    assert thread.url.params["depth"] == "0"
    assert likes_1.url.params["uri"] == LIKED and "cursor" not in likes_1.url.params
    assert likes_2.url.params["cursor"] == "1731300000000::bafyreicontohlikecursor01"
    subject, *likes = first.posts
    assert subject.post_id == LIKED and subject.kind == "post" and "#BersamaBE" in subject.text
    assert [like.author_handle for like in likes] == [
        "staf-kecamatan.example",
        "warga-kopi.example",
    ]
    staff = likes[0]
    assert staff.kind == "like" and staff.text == "" and staff.parent_id == LIKED
    assert staff.post_id == f"{LIKED}#like-by-did:plc:contohasn00000000000004"
    assert staff.author_id == "did:plc:contohasn00000000000004"
    assert staff.author_bio == "Pelayanan publik Kec. Sukamaju. Akun pribadi."
    assert staff.url == subject.url and staff.url.endswith("/post/3kliked00001")
    assert staff.created_at.isoformat() == "2024-11-11T04:29:58+00:00"
    # the second page: one like, and one item without an actor DID skipped, not fatal
    assert [like.author_handle for like in second.posts] == ["guru-desa.example"]
    assert second.skipped == 1


def test_likes_resume_from_the_newest_like_of_the_last_walk(fake_clock: FakeClock) -> None:
    router = _likes_router()
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE, environ={})
    target = Target.parse(f"likes:{LIKED}")
    *_, last = collector.collect(target)
    before = len(router.requests)
    again = list(collector.collect(target, cursor=last.cursor))
    # one thread call and one likes page: the first page already reaches the last walk's top
    assert len(router.requests) - before == 2
    assert [post.kind for page in again for post in page.posts] == ["post", "like"]


def test_likes_page_without_a_list_is_a_parse_error() -> None:
    subject = parse_thread(fixture_json("bluesky", "liked_post.json"), context="t").posts[0]
    with pytest.raises(ParseError, match="'likes' list"):
        parse_likes({"uri": LIKED}, subject=subject, context="t")


def test_likes_of_a_deleted_post_keep_the_checkpoint(fake_clock: FakeClock) -> None:
    router = Router().add(
        "/xrpc/app.bsky.feed.getPostThread",
        httpx.Response(400, json={"error": "NotFound", "message": "Post not found"}),
    )
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE)
    (page,) = collector.collect(Target.parse(f"likes:{LIKED}"), cursor='{"top": "x", "v": 1}')
    assert page.posts == [] and page.cursor == '{"top": "x", "v": 1}'


def test_followers_become_follow_records_of_the_followed_profile(fake_clock: FakeClock) -> None:
    def followers(request: httpx.Request) -> httpx.Response:
        name = (
            "followers_page2.json" if request.url.params.get("cursor") else "followers_page1.json"
        )
        return httpx.Response(200, json=fixture_json("bluesky", name))

    subject = fixture_json("bluesky", "followers_page1.json")["subject"]
    router = Router().add("/xrpc/app.bsky.actor.getProfile", httpx.Response(200, json=subject))
    router.add("/xrpc/app.bsky.graph.getFollowers", followers)
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE, environ={})
    first, second = collector.collect(
        Target.parse("followers:https://bsky.app/profile/relawan-be.example")
    )
    profile_request, request_1, request_2 = router.requests
    assert profile_request.url.params["actor"] == "relawan-be.example"
    # the profile call resolves the handle; followers are asked by DID
    assert request_1.url.params["actor"] == "did:plc:contohtimses0000000003"
    assert "cursor" not in request_1.url.params
    assert request_2.url.params["cursor"] == "3kfollowcursor0001"
    profile, *follows = first.posts
    profile_uri = "at://did:plc:contohtimses0000000003/app.bsky.actor.profile/self"
    assert profile.kind == "profile" and profile.post_id == profile_uri
    assert profile.text == (
        "Relawan Bambang-Endang\nAkun resmi relawan pemenangan Bambang-Endang. "
        "27 November coblos nomor 1! #BersamaBE"
    )
    assert profile.url == "https://bsky.app/profile/relawan-be.example"
    staff = follows[0]
    assert staff.kind == "follow" and staff.text == "" and staff.parent_id == profile_uri
    assert staff.post_id == f"{profile_uri}#followed-by-did:plc:contohasn00000000000004"
    assert staff.author_handle == "staf-kecamatan.example"
    assert staff.author_bio == "Pelayanan publik Kec. Sukamaju. Akun pribadi."
    assert staff.url == "https://bsky.app/profile/staf-kecamatan.example/follows"
    # no follow time is published: the record carries when it was seen, and says so
    assert staff.created_at.timestamp() == pytest.approx(fake_clock.wall())
    assert staff.raw["netra_observed"] is True
    # the second page: one follower, one item without a DID skipped; the profile comes once
    assert [(post.kind, post.author_handle) for post in second.posts] == [
        ("follow", "guru-desa.example")
    ]
    assert second.skipped == 1


def _follower_listing(accounts: list[str]) -> Router:
    """getFollowers over `accounts` (newest first), two per page, cursor = offset."""

    def followers(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("cursor") or 0)
        page = accounts[start : start + 2]
        body: dict[str, object] = {
            "subject": {"did": "did:plc:timses", "handle": "timses.example"},
            "followers": [{"did": f"did:plc:{name}", "handle": f"{name}.example"} for name in page],
        }
        if start + 2 < len(accounts):
            body["cursor"] = str(start + 2)
        return httpx.Response(200, json=body)

    router = Router().add(
        "/xrpc/app.bsky.actor.getProfile",
        httpx.Response(200, json={"did": "did:plc:timses", "handle": "timses.example"}),
    )
    return router.add("/xrpc/app.bsky.graph.getFollowers", followers)


def test_followers_walk_stops_at_the_followers_it_already_knows(fake_clock: FakeClock) -> None:
    accounts = [f"f{i}" for i in range(1, 8)]
    router = _follower_listing(accounts)
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE, environ={})
    target = Target.parse("followers:@timses.example")
    *_, last = collector.collect(target)
    assert len(router.requests) == 5  # the profile and four pages
    # two new followers at the top; one old follower unfollowed and followed again
    accounts[:] = ["new2", "f5", "new1", *[name for name in accounts if name != "f5"]]
    before = len(router.requests)
    again = list(collector.collect(target, cursor=last.cursor))
    handles = [post.author_handle for page in again for post in page.posts if post.kind == "follow"]
    # "f5" alone does not stop the walk; meeting three known followers does
    assert handles == [
        "new2.example",
        "f5.example",
        "new1.example",
        "f1.example",
        "f2.example",
        "f3.example",
    ]
    assert len(router.requests) - before == 4  # the profile and three pages


def test_followers_walk_resumes_mid_walk_after_a_crash(fake_clock: FakeClock) -> None:
    router = _follower_listing([f"f{i}" for i in range(1, 6)])
    collector = BlueskyCollector(make_policy(router, fake_clock), base_url=BASE, environ={})
    target = Target.parse("followers:did:plc:timses")
    first = next(iter(collector.collect(target)))  # the process dies after the first page
    rest = list(collector.collect(target, cursor=first.cursor))
    pages = [r for r in router.requests if r.url.path.endswith("getFollowers")]
    assert pages[1].url.params["cursor"] == "2"
    handles = [post.author_handle for page in rest for post in page.posts]
    assert handles == ["timses.example", "f3.example", "f4.example", "f5.example"]


def test_followers_target_needs_an_account() -> None:
    collector = BlueskyCollector(make_policy(Router()), base_url=BASE, environ={})
    with pytest.raises(UsageError, match=r"handle, a DID or a bsky\.app profile link"):
        list(collector.collect(Target.parse("followers:https://bsky.app/search?q=x")))


def test_followers_page_without_a_list_is_a_parse_error() -> None:
    subject = parse_profile({"did": "did:plc:timses"}, datetime.now(UTC))
    with pytest.raises(ParseError, match="'followers' list"):
        parse_followers({"cursor": "x"}, subject, observed=datetime.now(UTC), context="t")
