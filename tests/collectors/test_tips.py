"""Tips: manual intake of reported posts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collectors.tips import make_tip_post, platform_of
from pipeline.errors import UsageError


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://www.facebook.com/groups/x/posts/1", "facebook"),
        ("https://m.facebook.com/story.php?id=1", "facebook"),
        ("https://wa.me/6281200000000", "whatsapp"),
        ("https://vt.tiktok.com/ZSabc/", "tiktok"),
        ("https://twitter.com/a/status/1", "x"),
        ("https://youtu.be/abc", "youtube"),
        ("https://berita.example/a", "web"),
        ("https://notfacebook.com/a", "web"),
    ],
)
def test_the_platform_is_guessed_from_the_link(url: str, platform: str) -> None:
    assert platform_of(url) == platform


def test_a_tip_becomes_a_post_that_dedups_on_its_link() -> None:
    when = datetime(2024, 1, 10, 1, tzinfo=UTC)
    first = make_tip_post(
        "https://www.facebook.com/guru/posts/1",
        " Ayo pilih no 2 ",
        author="@guru",
        received_at=when,
    )
    again = make_tip_post(
        "https://www.facebook.com/guru/posts/1", "Ayo pilih no 2", received_at=when
    )
    assert first.key == again.key and first.key.startswith("facebook:tip-")
    assert first.text == "Ayo pilih no 2" and first.author_handle == "guru"
    assert first.created_at == when and first.raw["posted_at_known"] is False
    assert "reporter" not in str(first.to_dict())


@pytest.mark.parametrize(
    ("url", "text"), [("ftp://x.example/a", "teks"), ("https://x.example/a", " ")]
)
def test_a_bad_tip_is_a_usage_error(url: str, text: str) -> None:
    with pytest.raises(UsageError):
        make_tip_post(url, text)


def test_share_tracking_parameters_are_dropped_from_a_tip_link() -> None:
    # share buttons tag a link with who shared it (often the tipster): never stored or exported
    shared = make_tip_post(
        "https://www.tiktok.com/@guru_contoh/video/7300000000000000001"
        "?_r=1&_t=8abc&u_code=pelapor123&sec_user_id=MS4wLjABAAAApelapor&utm_source=copy#komentar",
        "video ajakan memilih",
    )
    assert shared.url == "https://www.tiktok.com/@guru_contoh/video/7300000000000000001"
    plain = make_tip_post(
        "https://www.tiktok.com/@guru_contoh/video/7300000000000000001", "video ajakan memilih"
    )
    assert shared.post_id == plain.post_id  # the same post reported twice dedups
    instagram = make_tip_post("https://www.instagram.com/p/Cx1/?igsh=MTc4eDQ5", "foto kampanye")
    assert instagram.url == "https://www.instagram.com/p/Cx1/"
    # parameters that name the post itself are kept
    facebook = make_tip_post(
        "https://www.facebook.com/permalink.php?story_fbid=123&id=456&mibextid=abc", "unggahan"
    )
    assert facebook.url == "https://www.facebook.com/permalink.php?story_fbid=123&id=456"
    youtube = make_tip_post("https://www.youtube.com/watch?v=abc123&si=XyZshare", "video")
    assert youtube.url == "https://www.youtube.com/watch?v=abc123"
    # a link with nothing to drop keeps its query as written (its tip id is a hash of it), and
    # a news site's own "s"/"t"/"ref" parameters are not share tracking
    news = "https://berita.example/cari?q=a%20b&s=2&flag"
    assert make_tip_post(news, "berita").url == news
