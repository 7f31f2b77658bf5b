"""X `followers:` target: the followed profile, follow records, the incremental walk."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from collectors.base import Target
from collectors.x import XCollector, parse_followers_page, parse_profile
from pipeline.errors import ParseError
from tests.collectors.conftest import FakeClock, Router, fixture_json, make_policy

BASE = "https://xapi.example"
ENV = {"NETRA_X_BEARER_TOKEN": "AAAAcontohtokenfollowers"}
USER_ID = "1600000000000000009"
FOLLOWERS = f"/2/users/{USER_ID}/followers"


def _router(followers: httpx.Response | object) -> Router:
    router = Router().add(
        "/2/users/by/username/relawan_be",
        httpx.Response(200, json=fixture_json("x", "followed_user.json")),
    )
    return router.add(FOLLOWERS, followers)  # type: ignore[arg-type]


def test_followers_become_follow_records_of_the_followed_profile(fake_clock: FakeClock) -> None:
    def followers(request: httpx.Request) -> httpx.Response:
        second = request.url.params.get("pagination_token") == "FOLLOWERSPAGE2TOKEN"
        name = "followers_page2.json" if second else "followers_page1.json"
        return httpx.Response(200, json=fixture_json("x", name))

    router = _router(followers)
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    first, second = collector.collect(Target.parse("followers:@relawan_be"))
    lookup, page_1, page_2 = router.requests
    assert "created_at" in lookup.url.params["user.fields"]
    assert (
        page_1.url.params["max_results"] == "1000" and "pagination_token" not in page_1.url.params
    )
    assert page_2.url.params["pagination_token"] == "FOLLOWERSPAGE2TOKEN"
    assert all(
        r.headers["Authorization"] == f"Bearer {ENV['NETRA_X_BEARER_TOKEN']}"
        for r in router.requests
    )
    profile, *follows = first.posts
    assert profile.kind == "profile" and profile.post_id == f"user:{USER_ID}"
    assert profile.text == (
        "Relawan Bambang-Endang\nAkun resmi relawan pemenangan Bambang & Endang. "
        "27 November coblos nomor 1! #BersamaBE"
    )
    assert profile.created_at == datetime(2023, 9, 1, tzinfo=UTC)
    staff = follows[0]
    assert staff.kind == "follow" and staff.text == "" and staff.parent_id == f"user:{USER_ID}"
    assert staff.post_id == f"user:{USER_ID}#followed-by-1500000000000000001"
    assert (staff.author_id, staff.author_handle) == ("1500000000000000001", "pakdinas_contoh")
    assert staff.url == "https://x.com/pakdinas_contoh/following"
    assert staff.created_at.timestamp() == pytest.approx(fake_clock.wall())
    assert staff.raw["netra_observed"] is True
    # the second page: one follower, one user object without an id skipped, not fatal
    assert [post.author_handle for post in second.posts] == ["guru_desa"]
    assert second.skipped == 1


def test_followers_resume_from_the_followers_of_the_last_walk(fake_clock: FakeClock) -> None:
    names = [f"f{i}" for i in range(1, 9)]

    def followers(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("pagination_token") or 0)
        users = [{"id": str(7000 + int(n[1:])), "username": n} for n in names[start : start + 2]]
        meta: dict[str, object] = {"result_count": len(users)}
        if start + 2 < len(names):
            meta["next_token"] = str(start + 2)
        return httpx.Response(200, json={"data": users, "meta": meta})

    router = _router(followers)
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    target = Target.parse("followers:relawan_be")
    *_, last = collector.collect(target)
    names[:0] = ["f10", "f9"]  # two new followers
    before = len(router.requests)
    again = list(collector.collect(target, cursor=last.cursor))
    handles = [post.author_handle for page in again for post in page.posts if post.kind == "follow"]
    # the lookup and three pages: the third known follower (f3) ends the walk
    assert len(router.requests) - before == 4
    assert handles == ["f10", "f9", "f1", "f2", "f3", "f4"]


def test_an_account_without_followers_gives_its_profile_only(fake_clock: FakeClock) -> None:
    # X leaves `data` out when a list is empty
    router = _router(httpx.Response(200, json={"meta": {"result_count": 0}}))
    collector = XCollector(make_policy(router, fake_clock), base_url=BASE, environ=ENV)
    (page,) = collector.collect(Target.parse("followers:relawan_be"))
    assert [post.kind for post in page.posts] == ["profile"]


def test_a_followers_page_with_bad_data_is_a_parse_error() -> None:
    user = fixture_json("x", "followed_user.json")["data"]
    subject = parse_profile(user, datetime(2024, 11, 1, tzinfo=UTC))
    with pytest.raises(ParseError, match="'data' is not a list"):
        parse_followers_page({"data": {}}, subject, observed=subject.created_at, context="t")
