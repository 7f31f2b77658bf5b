"""RSS 2.0 / 0.91 and Atom: entities, CDATA HTML, odd zones, missing dates, conditional GET."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from collectors.base import Target
from collectors.rss import RssCollector, parse_feed
from pipeline.errors import ParseError
from tests.collectors.conftest import FIXTURES, FakeClock, Router, make_policy


def _read(name: str) -> bytes:
    return (FIXTURES / "rss" / name).read_bytes()


def test_rss2_items_with_html_and_indonesian_zones() -> None:
    parsed = parse_feed(_read("rss2.xml"), feed_url="https://berita.example/rss")
    first, second = parsed.posts
    # A guid that is not a URL is only unique within its site: it is prefixed with the host.
    assert first.post_id == "berita.example/berita-contoh-123"
    assert first.text == (
        "Bawaslu temukan ASN ikut kampanye & unggah foto dua jari\n\n"
        "Seorang ASN di Kab. Contoh diduga ikut kampanye.\n\nBawaslu akan memanggil yang bersangkutan."
    )
    assert first.created_at == datetime(2024, 1, 9, 2, 30, tzinfo=UTC)  # 09:30 WIB
    assert first.author_name == "Redaksi Contoh" and first.author_handle == "berita.example"
    assert second.post_id == "https://berita.example/pemilu/debat-2"  # no guid: the link
    assert second.created_at == datetime(2024, 1, 8, 14, 30, tzinfo=UTC)  # +0545
    assert second.text.endswith("KPU mengumumkan jadwal debat kedua & lokasi.")
    assert parsed.skipped == 1  # "kemarin sore" is not a date


def test_atom_entries_use_published_then_updated() -> None:
    parsed = parse_feed(_read("atom.xml"), feed_url="https://pengawas.example/atom.xml")
    first, second, _ = parsed.posts
    assert (
        first.text
        == "Catatan patroli siber <minggu 2>\n\nKami menemukan 3 akun ASN\nyang membagikan konten kampanye."
    )
    assert first.created_at == datetime(2024, 1, 8, 22, 45, tzinfo=UTC)
    assert first.url == "https://pengawas.example/2024/01/patroli-2"
    assert first.author_name == "Tim Patroli"
    assert second.created_at == datetime(2024, 1, 8, 23, 59, 59, tzinfo=UTC)
    assert second.author_name == "Blog Pengawas Contoh"


def test_atom_xhtml_title_and_content_are_read_from_their_div() -> None:
    parsed = parse_feed(_read("atom.xml"), feed_url="https://pengawas.example/atom.xml")
    xhtml = parsed.posts[2]
    assert xhtml.text == (
        "Camat ajak warga & perangkat desa\n\n"
        "Seorang camat terekam mengajak warga memilih paslon nomor 2.\n\n"
        "Rekaman: tonton (https://video.example/v/42) <durasi 1 menit>"
    )
    assert "<p>Seorang camat" in xhtml.raw["content"]["text"]  # raw keeps the markup
    # Atom ids are URIs (tag:, urn:, http:): kept as they are.
    assert xhtml.post_id == "tag:pengawas.example,2024:camat"


def test_an_atom_feed_title_in_xhtml_names_the_author_as_text() -> None:
    document = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Berita <b>Contoh</b></div></title>
  <id>tag:berita.example,2024:feed</id>
  <updated>2024-01-02T00:00:00Z</updated>
  <entry>
    <id>tag:berita.example,2024:1</id>
    <title>Judul</title>
    <link href="https://berita.example/1"/>
    <updated>2024-01-02T00:00:00Z</updated>
  </entry>
</feed>"""
    (post,) = parse_feed(document, feed_url="https://berita.example/atom.xml").posts
    assert post.author_name == "Berita Contoh"


def _rss_with_guid(site: str, guid: str, link: str | None = None) -> bytes:
    link_element = f"<link>{link}</link>" if link else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{site}</title><link>https://{site}/</link>
  <item><title>Judul</title>{link_element}<guid isPermaLink="false">{guid}</guid>
  <pubDate>Tue, 02 Jan 2024 10:00:00 +0700</pubDate></item>
</channel></rss>""".encode()


def test_numeric_guids_of_two_sites_do_not_collide() -> None:
    (first,) = parse_feed(
        _rss_with_guid("kabar-a.example", "12345", "https://kabar-a.example/berita/12345"),
        feed_url="https://kabar-a.example/rss",
    ).posts
    (second,) = parse_feed(
        _rss_with_guid("warta-b.example", "12345"), feed_url="https://warta-b.example/rss"
    ).posts
    assert first.post_id == "kabar-a.example/12345"  # the host of the item's link
    assert second.post_id == "warta-b.example/12345"  # no link: the host of the feed
    assert first.key != second.key


@pytest.mark.parametrize(
    "guid",
    [
        "https://kabar-a.example/?p=12345",
        "tag:kabar-a.example,2024:12345",
        "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
    ],
)
def test_uri_guids_are_kept_as_they_are(guid: str) -> None:
    (post,) = parse_feed(
        _rss_with_guid("kabar-a.example", guid), feed_url="https://kabar-a.example/rss"
    ).posts
    assert post.post_id == guid


def test_rss091_items_without_dates_take_the_channel_date() -> None:
    (post,) = parse_feed(_read("rss091.xml"), feed_url="https://desa.example/rss").posts
    assert post.created_at == datetime(2024, 1, 7, 6, tzinfo=UTC)
    assert post.raw["date_estimated"] is True
    assert post.text.endswith("Warga diajak kerja bakti ét cetera.")  # ISO-8859-1 decoded


@pytest.mark.parametrize("body", [b"<html><body>Not a feed</body></html>", b'{"json": true}'])
def test_a_document_that_is_not_a_feed_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(body, feed_url="https://x.example/feed")


def test_the_feed_is_fetched_conditionally(fake_clock: FakeClock) -> None:
    def feed(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=_read("rss2.xml"), headers={"ETag": '"v1"'})

    router = Router().add("/pemilu.xml", feed)
    collector = RssCollector(make_policy(router, fake_clock), base_url="https://proxy.example")
    target = Target.parse("feed:https://berita.example/pemilu.xml")
    (first,) = collector.collect(target)
    assert len(first.posts) == 2 and first.skipped == 1
    (second,) = collector.collect(target, first.cursor)
    assert second.posts == [] and second.cursor == first.cursor
    assert router.requests[1].url.host == "proxy.example"  # --base-url replaced scheme and host
    assert router.paths() == ["/robots.txt", "/pemilu.xml", "/pemilu.xml"]
