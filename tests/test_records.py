"""The Post record: validation, JSON Lines round trip, aware datetimes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.records import POST_FIELDS, Post, RecordError, judged_text, read_jsonl, write_jsonl
from tests.conftest import make_post


def test_jsonl_round_trip_keeps_every_field() -> None:
    posts = [
        make_post(1),
        make_post(2, kind="comment", parent_id="1001", text="mantap 👍\nbaris 2"),
    ]
    buffer = io.StringIO()
    assert write_jsonl(posts, buffer) == 2
    buffer.seek(0)
    assert [post for _, post in read_jsonl(buffer)] == posts


def test_json_form_uses_exactly_the_documented_field_names() -> None:
    data = json.loads(make_post(3).to_json())
    assert tuple(data) == POST_FIELDS
    assert data["created_at"] == "2024-01-10T00:03:00Z"


def test_offsets_are_normalised_to_utc() -> None:
    wib = timezone(timedelta(hours=7))
    post = make_post(1, created_at=datetime(2024, 2, 14, 7, 0, tzinfo=wib))
    assert post.created_at == datetime(2024, 2, 14, 0, 0, tzinfo=UTC)
    assert post.created_at.utcoffset() == timedelta(0)
    parsed = Post.from_dict({**make_post(1).to_dict(), "created_at": "2024-02-14T07:00:00+07:00"})
    assert parsed.created_at == datetime(2024, 2, 14, 0, 0, tzinfo=UTC)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(RecordError, match="created_at"):
        Post.from_dict({**make_post(1).to_dict(), "created_at": "2024-02-14T07:00:00"})
    with pytest.raises(RecordError, match="created_at"):
        make_post(1, created_at=datetime(2024, 2, 14))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "subscribe"}, "kind"),
        ({"post_id": ""}, "post_id"),
        ({"text": 5}, "text"),
        ({"metrics": {"likes": "many"}}, "metrics"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(RecordError) as info:
        Post.from_dict({**make_post(1).to_dict(), **change})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"metrics": {"likes": float("inf")}}, "metrics", "'likes' must be a finite number"),
        ({"metrics": {"views": float("nan")}}, "metrics", "'views' must be a finite number"),
        ({"metrics": {"likes": 1e300}}, "metrics", "'likes' is too large"),
        ({"metrics": {"shares": 2**64}}, "metrics", "'shares' is too large"),
        ({"text": "bad \ud800"}, "text", "lone surrogate"),
        ({"author_name": "Budi \udfff"}, "author_name", "lone surrogate"),
        ({"metrics": {"\ud800": 1}}, "metrics", "lone surrogate"),
        ({"raw": {"items": [{"caption": "x\udc80"}]}}, "raw", "lone surrogate"),
    ],
)
def test_values_the_store_cannot_keep_are_named(
    change: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(RecordError, match=message) as info:
        Post.from_dict({**make_post(1).to_dict(), **change})
    assert info.value.field == field
    line = json.dumps(
        {**make_post(1).to_dict(), **change}
    )  # as an export spells them: 1e400, \ud800
    with pytest.raises(RecordError) as parsed:
        Post.from_json(line.replace("Infinity", "1e400"))
    assert parsed.value.field == field


def test_metrics_at_the_limit_and_escaped_emoji_are_kept() -> None:
    data = {**make_post(1).to_dict(), "text": "mantap 😀", "metrics": {"views": 2**63 - 1}}
    line = json.dumps(data)  # JSON escapes the emoji as the surrogate pair \ud83d\ude00
    assert "\\ud83d\\ude00" in line
    post = Post.from_json(line)
    assert post.text == "mantap 😀" and post.metrics == {"views": 2**63 - 1}


def test_key_and_hash_are_stable() -> None:
    post = make_post(5)
    assert post.key == "x:1005"
    assert post.text_hash == make_post(5).text_hash
    assert post.text_hash != make_post(6).text_hash
    assert make_post(2, parent_id="1001").parent_key == "x:1001"


def test_read_jsonl_reports_the_line_number() -> None:
    buffer = io.StringIO(make_post(1).to_json() + "\n\n{not json}\n")
    with pytest.raises(RecordError) as info:
        list(read_jsonl(buffer))
    assert info.value.line == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "text", "judged"),
    [
        ("like", "", "Coblos 02!"),  # a like says what it likes
        ("repost", "", "Coblos 02!"),  # a repost without words of its own shares its parent
        ("repost", "Coblos 02!", "Coblos 02!"),  # a repost that copies the parent's text
        ("repost", "jangan percaya ini", "jangan percaya ini"),  # a quote with its own words
        ("comment", "", ""),  # a comment is judged on its own text, even an empty one
    ],
)
def test_judged_text_follows_the_parent_only_for_likes_and_plain_reposts(
    kind: str, text: str, judged: str
) -> None:
    assert judged_text(kind, text, "Coblos 02!") == judged
    assert judged_text(kind, text, None) == text  # parent not captured: its own text
