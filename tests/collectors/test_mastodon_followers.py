"""Mastodon `followers:` target: the followed profile, follow records, the incremental walk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from collectors.base import Target
from collectors.mastodon import MastodonCollector, parse_followers, parse_profile
from pipeline.errors import ParseError
from tests.collectors.conftest import FakeClock, Router, fixture_json, make_policy

BASE = "https://mastodon.example"
ACCOUNT_ID = "109000000000000900"
FOLLOWERS = f"/api/v1/accounts/{ACCOUNT_ID}/followers"


def _with_followers(followers: Callable[[httpx.Request], httpx.Response]) -> Router:
    """The followed account's lookup, then `followers` answering its followers list."""
    router = Router().add(
        "/api/v1/accounts/lookup",
        httpx.Response(200, json=fixture_json("mastodon", "followed_account.json")),
    )
    return router.add(FOLLOWERS, followers)


def _router() -> Router:
    next_link = f'<{BASE}{FOLLOWERS}?max_id=2201>; rel="next", <{BASE}{FOLLOWERS}?since_id=2300>; rel="prev"'

    def followers(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("max_id") == "2201":
            return httpx.Response(200, json=fixture_json("mastodon", "followers_page2.json"))
        return httpx.Response(
            200, json=fixture_json("mastodon", "followers_page1.json"), headers={"Link": next_link}
        )

    return _with_followers(followers)


def test_followers_become_follow_records_of_the_followed_profile(fake_clock: FakeClock) -> None:
    router = _router()
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    first, second = collector.collect(Target.parse("followers:relawan_bersatu@mastodon.example"))
    lookup, page_1, page_2 = router.requests
    assert lookup.url.params["acct"] == "relawan_bersatu"
    assert page_1.url.params["limit"] == "80" and "max_id" not in page_1.url.params
    assert page_2.url.params["max_id"] == "2201"
    profile, *follows = first.posts
    assert (
        profile.kind == "profile" and profile.post_id == f"mastodon.example/accounts/{ACCOUNT_ID}"
    )
    assert profile.text == (
        "Relawan Bambang-Endang\nAkun resmi relawan pemenangan Bambang–Endang. "
        "27 November coblos nomor 1! #BersamaBE"
    )
    staff = follows[0]
    assert staff.kind == "follow" and staff.text == "" and staff.parent_id == profile.post_id
    # a remote follower: handle with its own instance, id local to the instance we asked
    assert staff.author_handle == "staf_kecamatan@sosial.example"
    assert staff.author_id == "mastodon.example/109000000000000011"
    assert staff.url == "https://sosial.example/@staf_kecamatan/following"
    assert staff.author_bio == "Pelayanan publik Kec. Sukamaju. Akun pribadi."
    assert staff.created_at.timestamp() == pytest.approx(fake_clock.wall())
    assert staff.raw["netra_observed"] is True
    # the second page: one follower, one account without an id skipped, not fatal
    assert [post.author_handle for post in second.posts] == ["guru_desa@mastodon.example"]
    assert second.skipped == 1


def _listing(names: list[str]) -> Router:
    """Followers `names` (newest first), two per page, `max_id` = offset in the list."""

    def followers(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("max_id") or 0)
        accounts = [
            {"id": str(3000 + int(name[1:])), "username": name, "acct": name}
            for name in names[start : start + 2]
        ]
        headers = {}
        if start + 2 < len(names):
            headers["Link"] = f'<{BASE}{FOLLOWERS}?max_id={start + 2}>; rel="next"'
        return httpx.Response(200, json=accounts, headers=headers)

    return _with_followers(followers)


def test_followers_resume_from_the_followers_of_the_last_walk(fake_clock: FakeClock) -> None:
    names = [f"f{i}" for i in range(1, 9)]
    router = _listing(names)
    collector = MastodonCollector(make_policy(router, fake_clock), base_url=BASE)
    target = Target.parse("followers:@relawan_bersatu")
    *_, last = collector.collect(target)
    assert len(router.requests) == 5  # the lookup and four pages
    names.insert(0, "f9")  # one new follower
    before = len(router.requests)
    again = list(collector.collect(target, cursor=last.cursor))
    handles = [post.author_handle for page in again for post in page.posts]
    # the lookup and two pages: the third known follower (f3) ends the walk, f4..f8 are not
    # asked for again
    assert len(router.requests) - before == 3
    assert handles == [
        "relawan_bersatu@mastodon.example",
        *(f"{name}@mastodon.example" for name in ("f9", "f1", "f2", "f3")),
    ]


def test_a_followers_page_that_is_not_a_list_is_a_parse_error() -> None:
    subject = parse_profile(fixture_json("mastodon", "followed_account.json"), "m.example", _now())
    with pytest.raises(ParseError, match="array of accounts"):
        parse_followers({"error": "x"}, subject, "m.example", observed=_now(), context="t")


def _now() -> datetime:
    return datetime(2024, 11, 1, tzinfo=UTC)
