"""The file collector: Post JSONL, 4CAT/Zeeschuimer NDJSON, mapped CSV, appended-only re-reads."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from collectors.base import HttpPolicy, Target
from collectors.file import FileCollector, read_posts_file
from pipeline.errors import InputFileError, UsageError
from pipeline.records import Post
from tests.collectors.conftest import FIXTURES, Router
from tests.conftest import make_post

CSV_COLUMNS = {
    "post_id": "id",
    "text": "isi",
    "created_at": "tanggal",
    "author_handle": "akun",
    "likes": "suka",
    "url": "tautan",
}


def _collector(**options: object) -> FileCollector:
    return FileCollector(
        HttpPolicy(httpx.Client(transport=httpx.MockTransport(Router()))), options=options
    )


def _write_jsonl(path: Path, posts: list[Post], mode: str = "w") -> None:
    with open(path, mode, encoding="utf-8") as stream:
        for post in posts:
            stream.write(post.to_json() + "\n")


def test_post_jsonl_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    _write_jsonl(path, [make_post(1), make_post(2)])
    assert [post for _, post in read_posts_file(path)] == [make_post(1), make_post(2)]


def test_a_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(make_post(1).to_json() + "\n{not json\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"posts.jsonl:2: invalid JSON"):
        list(read_posts_file(path))
    skipped: list[int] = []
    posts = list(
        read_posts_file(path, skip_invalid=True, on_skip=lambda line, *_: skipped.append(line))
    )
    assert len(posts) == 1 and skipped == [2]


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    data = make_post(1).to_dict()
    del data["created_at"]
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r":1: field 'created_at': is required"):
        list(read_posts_file(path))


def test_generic_csv_with_a_column_map_and_a_time_zone() -> None:
    path = FIXTURES / "file" / "generic.csv"
    skipped: list[str] = []
    rows = list(
        read_posts_file(
            path,
            columns=CSV_COLUMNS,
            platform="facebook",
            timezone="Asia/Jakarta",
            delimiter=";",
            skip_invalid=True,
            on_skip=lambda line, reason, _payload: skipped.append(f"{line}: {reason}"),
        )
    )
    (line1, first), (line2, second) = rows
    assert (line1, line2) == (2, 4)  # the first record spans two lines
    assert first.text == "Ayo coblos nomor 1!\nSalam dari dinas"
    assert first.created_at.isoformat() == "2024-01-08T03:00:00+00:00"  # 10:00 WIB
    assert first.metrics == {"likes": 1234} and first.platform == "facebook"
    assert second.created_at.isoformat() == "2024-01-08T03:00:00+00:00"  # +08:00 kept
    assert skipped == ["5: field 'created_at': not an ISO 8601 datetime: 'besok'"]


def test_a_csv_missing_a_required_column_fails_on_the_header(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,isi\n1,halo\n", encoding="utf-8")
    with pytest.raises(
        InputFileError, match=r"x.csv:1: CSV header has no column for platform, created_at"
    ):
        list(read_posts_file(path, columns={"post_id": "id", "text": "isi"}))
    with pytest.raises(UsageError, match="unknown field"):
        list(read_posts_file(path, columns={"nomor": "id"}))


def test_zeeschuimer_tiktok_videos_and_comments() -> None:
    posts = [post for _, post in read_posts_file(FIXTURES / "file" / "zeeschuimer_tiktok.ndjson")]
    video, embedded, comment = posts
    assert video.key == "tiktok:7321000000000000001"
    assert (
        video.author_handle == "guru_contoh_tt"
        and video.author_bio == "Guru SD negeri | akun pribadi"
    )
    assert video.url == "https://www.tiktok.com/@guru_contoh_tt/video/7321000000000000001"
    assert video.metrics == {"likes": 340, "replies": 25, "shares": 12, "views": 9800}
    assert "user_agent" not in video.raw["zeeschuimer"]  # the capturing browser is not kept
    # The embedded-JSON variant carries the author id beside the handle, as `authorId`.
    assert embedded.author_handle == "guru_contoh_tt"
    assert embedded.author_id == "6900000000000000001"
    assert comment.kind == "comment" and comment.parent_id == video.post_id


def test_zeeschuimer_instagram_both_formats_and_ads_skipped() -> None:
    skipped: list[str] = []
    posts = [
        post
        for _, post in read_posts_file(
            FIXTURES / "file" / "zeeschuimer_instagram.ndjson",
            skip_invalid=True,
            on_skip=lambda _line, reason, _payload: skipped.append(reason),
        )
    ]
    listed, graph = posts
    assert listed.post_id == "C1contohIG1" and listed.author_handle == "bidan_contoh"
    assert listed.text == "Foto bareng calon bupati ✌️ #relawan"
    assert listed.metrics == {"likes": 77, "replies": 5}
    assert graph.post_id == "C1contohIG2" and graph.author_handle == "pegawai_contoh"
    assert skipped == ["ValueError: an Instagram ad, not a post"]


def test_zeeschuimer_facebook_envelope_and_4cat_item() -> None:
    skipped: list[str] = []
    posts = [
        post
        for _, post in read_posts_file(
            FIXTURES / "file" / "zeeschuimer_facebook.ndjson",
            skip_invalid=True,
            on_skip=lambda _line, reason, _payload: skipped.append(reason),
        )
    ]
    assert [post.post_id for post in posts] == [
        "100000000000001",
        "100000000000002",
        "100000000000003",
    ]
    assert posts[0].author_handle == "guru.contoh.fb" and posts[0].author_name == "Guru Contoh FB"
    # An account without a username links as profile.php?id=…: no handle, the id is the author.
    assert posts[2].author_handle is None and posts[2].author_id == "100050000000002"
    assert posts[0].created_at.isoformat() == "2024-01-09T03:13:20+00:00"
    assert "linkedin.com" in skipped[0]


def test_the_collector_reads_only_appended_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    _write_jsonl(path, [make_post(1), make_post(2)])
    collector = _collector()
    first = list(collector.collect(Target.parse(f"path:{tmp_path}")))
    assert [post.post_id for page in first for post in page.posts] == ["1001", "1002"]
    unchanged = list(collector.collect(Target.parse(f"path:{tmp_path}"), first[-1].cursor))
    assert [post for page in unchanged for post in page.posts] == []
    _write_jsonl(path, [make_post(3)], mode="a")
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(make_post(4).to_json()[:20])  # a writer is half-way through a line
    second = list(collector.collect(Target.parse(f"path:{tmp_path}"), first[-1].cursor))
    assert [post.post_id for page in second for post in page.posts] == ["1003"]
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(make_post(4).to_json()[20:] + "\n")
    third = list(collector.collect(Target.parse(f"path:{tmp_path}"), second[-1].cursor))
    assert [post.post_id for page in third for post in page.posts] == ["1004"]


def test_a_rewritten_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    _write_jsonl(path, [make_post(1), make_post(2)])
    collector = _collector()
    cursor = list(collector.collect(Target.parse(f"path:{path}")))[-1].cursor
    _write_jsonl(path, [make_post(7), make_post(8), make_post(9)])  # replaced, now longer
    again = list(collector.collect(Target.parse(f"path:{path}"), cursor))
    assert [post.post_id for page in again for post in page.posts] == ["1007", "1008", "1009"]


def test_the_collector_pages_and_skips_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    lines = [make_post(number).to_json() for number in range(1, 1201)]
    lines.insert(600, "{broken")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"big\.jsonl:601"):
        list(_collector().collect(Target.parse(f"path:{path}")))
    pages = list(_collector(skip_invalid=True).collect(Target.parse(f"path:{path}")))
    assert [len(page.posts) for page in pages] == [500, 500, 200]
    assert sum(page.skipped for page in pages) == 1 and pages[1].rejects
    # Each page's cursor resumes right after it: restarting from page 1 yields the rest.
    rest = list(
        _collector(skip_invalid=True).collect(Target.parse(f"path:{path}"), pages[0].cursor)
    )
    assert sum(len(page.posts) for page in rest) == 700


def test_a_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path: Path) -> None:
    header = b"platform,post_id,text,created_at\n"
    windows = tmp_path / "excel.csv"  # Windows-1252, as Excel saves "CSV" on Windows
    windows.write_bytes(header + b"x,1,Caf\xe9 \x93coblos 02\x94 \x96 ayo,2024-01-01T00:00:00Z\n")
    for skip_invalid in (False, True):  # a whole file in another encoding is not one bad line
        with pytest.raises(InputFileError, match=r"excel\.csv:2: not UTF-8 text .*'CSV UTF-8'"):
            list(read_posts_file(windows, skip_invalid=skip_invalid))
    latin = tmp_path / "posts.jsonl"
    latin.write_bytes(make_post(1).to_json().encode() + b"\n" + b'{"text": "Caf\xe9"}\n')
    with pytest.raises(InputFileError, match=r"posts\.jsonl:2: not UTF-8 text"):
        list(read_posts_file(latin))


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"\xef\xbb\xbfplatform,post_id,text,created_at\n"
        + "x,1,Café “coblos 02” – ayo,2024-01-01T00:00:00Z\n".encode()
    )
    [(line, post)] = list(read_posts_file(path))
    assert line == 2 and post.text == "Café “coblos 02” – ayo"
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + make_post(1).to_json().encode() + b"\n")
    assert [post for _, post in read_posts_file(jsonl)] == [make_post(1)]


def test_a_half_written_multibyte_character_waits_for_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    header = "platform,post_id,text,created_at\n"
    whole = "x,2,Café,2024-01-01T00:00:00Z\n".encode()
    path.write_bytes(header.encode() + b"x,1,a,2024-01-01T00:00:00Z\n" + whole[:8])
    first = list(_collector().collect(Target.parse(f"path:{path}")))
    assert [post.post_id for page in first for post in page.posts] == ["1"]
    path.write_bytes(header.encode() + b"x,1,a,2024-01-01T00:00:00Z\n" + whole)
    second = list(_collector().collect(Target.parse(f"path:{path}"), first[-1].cursor))
    assert [post.text for page in second for post in page.posts] == ["Café"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"likes": 1e400}', r"field 'metrics': 'likes' must be a finite number"),
        ('{"likes": 1e30}', r"field 'metrics': 'likes' is too large"),
        ('{"likes": 1' + "0" * 5000 + "}", r"invalid JSON"),
    ],
)
def test_metric_numbers_the_store_cannot_keep_are_named(
    tmp_path: Path, value: str, message: str
) -> None:
    data = make_post(2).to_json().replace('"metrics":{"likes":2}', f'"metrics":{value}')
    path = tmp_path / "posts.jsonl"
    path.write_text(make_post(1).to_json() + "\n" + data + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=rf"posts\.jsonl:2: {message}"):
        list(read_posts_file(path))
    assert [post for _, post in read_posts_file(path, skip_invalid=True)] == [make_post(1)]


def test_text_with_a_lone_surrogate_is_named(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    escaped = make_post(2).to_json().replace('"author_name":"Warga 2"', '"author_name":"W\\ud800"')
    path.write_text(make_post(1).to_json() + "\n" + escaped + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"posts\.jsonl:2: field 'author_name': .*surrogate"):
        list(read_posts_file(path))
    assert [post for _, post in read_posts_file(path, skip_invalid=True)] == [make_post(1)]
    export = FIXTURES / "file" / "zeeschuimer_tiktok.ndjson"  # mapped exports are checked too
    first = export.read_text(encoding="utf-8").splitlines()[0]
    mapped = tmp_path / "tiktok.ndjson"
    mapped.write_text(first.replace("guru_contoh_tt", "guru\\udc00", 1) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"tiktok\.ndjson:1: field .*surrogate"):
        list(read_posts_file(mapped))
