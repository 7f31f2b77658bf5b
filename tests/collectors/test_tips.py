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
