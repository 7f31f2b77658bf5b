"""One contract every registered collector keeps (in the spirit of parametrize_with_checks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import httpx
import pytest

from collectors import COLLECTORS
from collectors.base import Collector, Page, Target
from tests.collectors.conftest import (
    FIXTURES,
    FakeClock,
    Router,
    fixture_json,
    fixture_text,
    make_policy,
)
from tests.conftest import make_post

SECRETS = {
    "NETRA_YOUTUBE_API_KEY": "AIzaContractSecretKey0001",
    "NETRA_X_BEARER_TOKEN": "AAAAContractBearerSecret0002",
    "NETRA_BLUESKY_HANDLE": "petugas.example",
    "NETRA_BLUESKY_APP_PASSWORD": "cont-ract-pass-word",
}
HTML = {"content-type": "text/html; charset=utf-8"}


def _ok(platform: str, name: str) -> httpx.Response:
    return httpx.Response(200, json=fixture_json(platform, name))


def _mastodon(router: Router, tmp_path: Path) -> str:
    router.add("/api/v1/timelines/tag/pemilu2024", _ok("mastodon", "tag_page1.json"))
    return "tag:pemilu2024"


def _bluesky(router: Router, tmp_path: Path) -> str:
    router.add(
        "/xrpc/com.atproto.server.createSession", _ok("bluesky", "session.json"), method="POST"
    )
    router.add("/xrpc/app.bsky.feed.searchPosts", _ok("bluesky", "search.json"))
    return "search:pemilu"


def _telegram(router: Router, tmp_path: Path) -> str:
    router.add(
        "/s/kanal_contoh",
        httpx.Response(200, text=fixture_text("telegram", "channel_page2.html"), headers=HTML),
    )
    return "channel:kanal_contoh"


def _youtube(router: Router, tmp_path: Path) -> str:
    router.add("/youtube/v3/videos", _ok("youtube", "video.json"))
    router.add("/youtube/v3/commentThreads", _ok("youtube", "comment_threads_page2.json"))
    return "video:vidContoh01"


def _x(router: Router, tmp_path: Path) -> str:
    router.add(
        "/2/tweets/search/recent", _ok("x", "search_page1.json"), _ok("x", "search_page2.json")
    )
    return "search:netralitas"


def _rss(router: Router, tmp_path: Path) -> str:
    router.add(
        "/rss.xml", httpx.Response(200, content=(FIXTURES / "rss" / "rss2.xml").read_bytes())
    )
    return "feed:https://berita.example/rss.xml"


def _file(router: Router, tmp_path: Path) -> str:
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(make_post(n).to_json() + "\n" for n in range(3)), encoding="utf-8")
    return f"path:{path}"


SAMPLES: dict[str, Callable[[Router, Path], str]] = {
    "mastodon": _mastodon,
    "bluesky": _bluesky,
    "telegram": _telegram,
    "youtube": _youtube,
    "x": _x,
    "rss": _rss,
    "file": _file,
}


def test_every_registered_collector_has_a_contract_sample() -> None:
    assert set(SAMPLES) == set(COLLECTORS)


@pytest.mark.parametrize("name", sorted(COLLECTORS))
def test_collector_contract(name: str, tmp_path: Path, fake_clock: FakeClock) -> None:
    cls = COLLECTORS[name]
    assert issubclass(cls, Collector) and cls.name == name
    assert cls.target_kinds and all(kind.isidentifier() for kind in cls.target_kinds)
    assert all(variable.startswith("NETRA_") for variable in cls.credential_vars.values())
    assert cls.default_rate_per_second is None or cls.default_rate_per_second > 0
    assert cls.__doc__ and cls.fetch_pages.__doc__

    router = Router()
    target = Target.parse(SAMPLES[name](router, tmp_path))
    cls.check_target(target)
    collector = cls(
        make_policy(router, fake_clock), base_url="https://contract.example", environ=SECRETS
    )
    pages = list(collector.collect(target))

    assert pages and all(isinstance(page, Page) for page in pages)
    posts = [post for page in pages for post in page.posts]
    assert posts, "the sample payload must yield posts"
    keys = [post.key for post in posts]
    assert len(keys) == len(set(keys)), "keys are unique within a run"
    for post in posts:
        assert post.created_at.tzinfo is not None and post.created_at.utcoffset() == UTC.utcoffset(
            None
        )
        assert name == "file" or post.platform == name
        assert post.kind in ("post", "comment", "repost")
        assert post.raw is not None
        assert post.parent_id != post.post_id
    for page in pages:
        assert page.cursor is None or isinstance(page.cursor, str)
        if page.cursor:
            json.loads(page.cursor)
    dumped = json.dumps([post.to_dict() for post in posts]) + "".join(
        page.cursor or "" for page in pages
    )
    for secret in SECRETS.values():
        if len(secret) > 16:
            assert secret not in dumped

    # A limit is a soft cap, no longer honoured exactly: the run stops after the page that
    # reaches it, and that page is kept whole with its own cursor. Cutting it and keeping the
    # old cursor meant a page holding more posts than the quota left was refetched every run.
    again = cls(
        make_policy(router, FakeClock()), base_url="https://contract.example", environ=SECRETS
    )
    limited = list(again.collect(target, limit=1))
    assert limited and limited[-1].posts
    assert all(not page.posts for page in limited[:-1])
