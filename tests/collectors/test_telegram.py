"""Telegram: the t.me/s/ widget markup, ?before= paging, robots.txt and odd pages."""

from __future__ import annotations

import httpx
import pytest

from collectors.base import Target, number_position
from collectors.telegram import TelegramCollector, parse_channel_page, parse_count
from pipeline.errors import ParseError, SourceUnavailable, UsageError
from tests.collectors.conftest import FakeClock, Router, fixture_text, make_policy

BASE = "https://tme.example"
HTML = {"content-type": "text/html; charset=utf-8"}


@pytest.mark.parametrize(
    ("text", "value"), [("845", 845), ("1.2K", 1200), ("3.4M", 3_400_000), ("2K", 2000)]
)
def test_view_counts_are_expanded(text: str, value: int) -> None:
    assert parse_count(text) == value


def test_a_channel_page_keeps_lines_links_views_and_forwards() -> None:
    parsed, positions, before = parse_channel_page(
        fixture_text("telegram", "channel_page1.html"), context="t"
    )
    assert [post.post_id for post in parsed.posts] == [
        "kanal_contoh/102",
        "kanal_contoh/103",
        "kanal_contoh/105",
    ]
    first, forwarded, last = parsed.posts
    assert first.text == (
        "Ayo hadir di kampanye akbar & bawa atribut!\nLokasi: lapangan kota\n"
        "lihat peta (https://peta.example/lokasi?id=7) 🎉"
    )
    assert first.created_at.isoformat() == "2024-01-03T02:15:00+00:00"
    assert first.url == "https://t.me/kanal_contoh/102"
    assert first.author_name == "Kanal Kampanye Contoh"
    assert first.author_bio == "Info relawan & jadwal kampanye\nKab. Contoh"
    assert first.metrics == {"views": 1200} and last.metrics == {"views": 3_400_000}
    assert forwarded.kind == "repost" and forwarded.parent_id == "relawan_contoh/55"
    assert forwarded.raw["forwarded_from"] == "Relawan Contoh"
    # The service message is dropped silently; the message without a time is counted.
    assert parsed.skipped == 1 and "kanal_contoh/104" in parsed.rejects[0].payload
    assert before == "101" and len(positions) == 3


def test_a_reply_keeps_its_own_text_and_points_at_the_message_it_answers() -> None:
    parsed, positions, _ = parse_channel_page(
        fixture_text("telegram", "channel_page2.html"), context="t"
    )
    older, reply, newest = parsed.posts
    # The quote of message 98 comes first in the markup and has the same text class.
    assert reply.text == "Bapak ibu ASN yang hadir mohon pakai kaos paslon ya"
    assert reply.kind == "comment" and reply.parent_id == older.post_id == "kanal_contoh/98"
    assert reply.raw["reply_to_url"] == "https://t.me/kanal_contoh/98"
    assert older.kind == newest.kind == "post" and older.parent_id is None
    assert positions[1] == number_position(99)


def test_the_channel_is_walked_back_with_before(fake_clock: FakeClock) -> None:
    def channel(request: httpx.Request) -> httpx.Response:
        name = (
            "channel_page2.html"
            if request.url.params.get("before") == "101"
            else "channel_page1.html"
        )
        return httpx.Response(200, text=fixture_text("telegram", name), headers=HTML)

    router = Router().add("/s/kanal_contoh", channel)
    collector = TelegramCollector(make_policy(router, fake_clock), base_url=BASE)
    pages = list(collector.collect(Target.parse("channel:@kanal_contoh")))
    assert [len(page.posts) for page in pages] == [3, 3]
    assert router.paths() == ["/robots.txt", "/s/kanal_contoh", "/s/kanal_contoh"]
    again = list(collector.collect(Target.parse("channel:kanal_contoh"), pages[-1].cursor))
    assert len(again) == 1  # the newest message is the floor: nothing older is fetched
    assert len(router.requests) == 4


def test_robots_txt_can_forbid_the_preview(fake_clock: FakeClock) -> None:
    router = Router().add("/robots.txt", httpx.Response(200, text="User-agent: *\nDisallow: /s/\n"))
    collector = TelegramCollector(make_policy(router, fake_clock), base_url=BASE)
    with pytest.raises(SourceUnavailable, match=r"robots\.txt"):
        list(collector.collect(Target.parse("channel:kanal_contoh")))


def test_a_channel_without_preview_fails_cleanly(fake_clock: FakeClock) -> None:
    page = '<html><body><div class="tgme_page"><div class="tgme_page_title">Kanal</div></div></body></html>'
    router = Router().add("/s/kanal_privat", httpx.Response(200, text=page, headers=HTML))
    collector = TelegramCollector(make_policy(router, fake_clock), base_url=BASE)
    with pytest.raises(SourceUnavailable, match="no public preview"):
        list(collector.collect(Target.parse("channel:kanal_privat")))


def test_a_page_that_is_not_html_is_a_parse_error(fake_clock: FakeClock) -> None:
    router = Router().add("/s/kanal_contoh", httpx.Response(200, json={"ok": False}))
    collector = TelegramCollector(make_policy(router, fake_clock), base_url=BASE)
    with pytest.raises(ParseError, match="expected an HTML page"):
        list(collector.collect(Target.parse("channel:kanal_contoh")))


def test_a_bad_channel_name_is_a_usage_error(fake_clock: FakeClock) -> None:
    collector = TelegramCollector(make_policy(Router(), fake_clock), base_url=BASE)
    with pytest.raises(UsageError):
        list(collector.collect(Target.parse("channel:../etc")))
