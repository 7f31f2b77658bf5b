"""Exports: Indonesian headers, formula neutralisation, inert HTML, filters and privacy."""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from pipeline.cli import main
from pipeline.config import Config, LinkingConfig
from pipeline.errors import UsageError
from pipeline.export import HEADERS, export_case, export_items, format_nip, neutralise
from pipeline.queue import link_and_enqueue, list_items
from pipeline.records import Post
from pipeline.review import decide
from pipeline.store import Store
from tests.test_queue import asn_post, score_posts, setup_registry

HOSTILE_TEXTS = (
    '=HYPERLINK("http://evil.example","klik")',
    "+62 812 coblos 02",
    "-1+1 coblos",
    "@SUM(A1:A9) coblos",
    "\tcoblos tab",
    "\rcoblos cr",
    "\u202e=1+1 coblos di balik RTL",
    "\uff1dSUM(1) coblos",
    "<script>alert('x')</script> coblos <b>02</b>",
    "nul\x00byte coblos",
    "baris\u2028pemisah\x85coblos",
)


def hostile_queue(store: Store, tmp_path: Path) -> list[Post]:
    """A queue whose texts try spreadsheet formulas, HTML, RTL overrides and NUL bytes."""
    setup_registry(store, tmp_path)
    posts = [asn_post(n, text=words) for n, words in enumerate(HOSTILE_TEXTS, start=1)]
    store.write_batch(posts)
    score_posts(store, {post.key: 0.9 for post in posts})
    link_and_enqueue(Config(), store)
    return posts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\u202e=1", "'\u202e=1"),
        ("  =1", "'  =1"),
        ("\uff1d1", "'\uff1d1"),
        ("biasa saja", "biasa saja"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise(value: str, expected: str) -> None:
    assert neutralise(value) == expected


def test_csv_export_is_excel_ready_and_inert(store: Store, tmp_path: Path) -> None:
    hostile_queue(store, tmp_path)
    path = tmp_path / "out" / "queue.csv"
    assert export_items(store, path) == len(HOSTILE_TEXTS)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == HEADERS
    for header in ("nama", "NIP", "tautan", "waktu unggah", "isi", "hash bukti", "peninjau"):
        assert header in rows[0]
    column = {name: index for index, name in enumerate(rows[0])}
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\uff1d"))
            assert not cell.lstrip("\u202e ").startswith(("=", "+", "-", "@"))
        assert row[column["NIP"]] == "19850312 201001 1 003"
        assert row[column["nama"]] == "Budi Santoso, S.Pd."
    texts = {row[column["isi"]] for row in rows[1:]}
    assert '\'=HYPERLINK("http://evil.example","klik")' in texts
    assert "<script>alert('x')</script> coblos <b>02</b>" in texts  # data, shown as text
    assert "nul\ufffdbyte coblos" in texts


def test_xlsx_export_has_no_formulas(store: Store, tmp_path: Path) -> None:
    hostile_queue(store, tmp_path)
    path = tmp_path / "queue.xlsx"
    export_items(store, path)
    with zipfile.ZipFile(path) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    workbook = load_workbook(path)
    sheet = workbook.active
    assert tuple(cell.value for cell in sheet[1]) == HEADERS
    values = []
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f"
            if isinstance(cell.value, str):
                assert not cell.value.startswith(("=", "+", "-", "@"))
                values.append(cell.value)
    assert '\'=HYPERLINK("http://evil.example","klik")' in values
    workbook.close()


def test_jsonl_keeps_the_text_exact(store: Store, tmp_path: Path) -> None:
    hostile_queue(store, tmp_path)
    path = tmp_path / "queue.jsonl"
    export_items(store, path, status="all")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {row["isi"] for row in rows} >= {'=HYPERLINK("http://evil.example","klik")'}
    first = rows[0]
    assert first["nip"] == "198503122010011003" and first["status"] == "menunggu tinjauan"
    assert first["tautan"][0].startswith("https://x.com/budi_s/status/")
    assert len(first["hash_bukti"]) == 64


def test_filters_by_status_date_and_agency(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    agus = asn_post(
        3,
        platform="tiktok",
        author_id="tt-1",
        author_handle="agus.wijaya77",
        url="https://www.tiktok.com/@agus.wijaya77/video/3",
    )
    posts = [asn_post(1), asn_post(2, created_at=datetime(2024, 2, 5, tzinfo=UTC)), agus]
    store.write_batch(posts)
    score_posts(store, {"x:5001": 0.9, "x:5002": 0.8, "tiktok:5003": 0.7})
    link_and_enqueue(Config(), store)
    items = {item.first["post_key"]: item.id for item in list_items(store)}
    decide(store, items["x:5001"], "confirmed", "Rina", note="catatan kasus")
    out = tmp_path / "f.jsonl"

    def exported(**kwargs: object) -> list[str]:
        export_items(store, out, **kwargs)  # type: ignore[arg-type]
        return [json.loads(line)["tautan"][0] for line in out.read_text().splitlines()]

    assert len(exported(status="all")) == 3
    assert len(exported()) == 2  # pending only by default
    (confirmed,) = exported(status="confirmed")
    assert confirmed.endswith("/5001")
    assert exported(status="all", since=datetime(2024, 2, 1, tzinfo=UTC))[0].endswith("/5002")
    (tiktok,) = exported(status="all", instansi="kecamatan suka")
    assert "tiktok.com" in tiktok
    export_items(store, out, status="confirmed")
    row = json.loads(out.read_text())
    assert (row["peninjau"], row["catatan"], row["status"]) == (
        "Rina",
        "catatan kasus",
        "terkonfirmasi",
    )
    with pytest.raises(UsageError, match="format"):
        export_items(store, tmp_path / "x.pdf")


def test_case_sheet_is_self_contained_escaped_and_printable(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    post = asn_post(
        1,
        text="<script>alert('x')</script><img src=x onerror=alert(1)> coblos \u202e20 solbo",
        url="javascript:alert(document.cookie)",
    )
    store.write_batch([post])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    (item,) = list_items(store)
    with pytest.raises(UsageError, match="only for confirmed"):
        export_case(store, item.id, tmp_path / "case.html")
    decide(store, item.id, "confirmed", "Rina <b>Bawaslu</b>", note="</td><script>x</script>")
    path = export_case(store, item.id, tmp_path / "case.html")
    html_text = path.read_text(encoding="utf-8")
    assert "<script" not in html_text.lower().replace("&lt;script", "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html_text
    assert "<img" not in html_text
    assert 'href="javascript' not in html_text
    assert "Content-Security-Policy" in html_text and "@media print" in html_text
    assert "<bdi>" in html_text and "Rina &lt;b&gt;Bawaslu&lt;/b&gt;" in html_text
    assert item.first["content_sha256"] in html_text and "(cocok)" in html_text
    assert "19850312" in html_text and "http://" not in html_text.split("</style>")[0]
    with pytest.raises(UsageError, match="no queue item"):
        export_case(store, 999, tmp_path / "none.html")


def test_exports_leave_out_reporters_and_unlinked_people(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    tip = asn_post(1, text="Coblos 02! (dilaporkan warga)")
    store.add_tip(tip, reporter="Pelapor Rahasia 0812-0000-0000")
    stranger = asn_post(
        2, author_id="55", author_handle="warga_lain", author_name="Orang Tak Terkait"
    )
    store.write_batch([stranger])
    score_posts(store, {"x:5001": 0.9, "x:5002": 0.95})
    link_and_enqueue(Config(), store)
    (item,) = list_items(store)
    decide(store, item.id, "confirmed", "Rina")
    blobs = []
    for name in ("a.csv", "a.jsonl"):
        export_items(store, tmp_path / name, status="all")
        blobs.append((tmp_path / name).read_text(encoding="utf-8-sig"))
    export_case(store, item.id, tmp_path / "case.html")
    blobs.append((tmp_path / "case.html").read_text(encoding="utf-8"))
    for blob in blobs:
        assert "Coblos 02! (dilaporkan warga)" in blob  # the tipped-off item itself is there
        assert "Pelapor Rahasia" not in blob and "0812-0000-0000" not in blob
        assert "Orang Tak Terkait" not in blob and "warga_lain" not in blob


def test_self_declared_rows_are_marked_as_suspected(store: Store, tmp_path: Path) -> None:
    suspect = asn_post(
        1, author_id="77", author_handle="pak_guru", author_name="Pak Guru", author_bio="PNS"
    )
    store.write_batch([suspect])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(linking=LinkingConfig(queue_levels=("self_declared",))), store)
    export_items(store, tmp_path / "s.jsonl")
    row = json.loads((tmp_path / "s.jsonl").read_text())
    assert row["nama"] == "Pak Guru (diduga, belum terdaftar)" and row["nip"] is None


def test_format_nip() -> None:
    assert format_nip("198503122010011003") == "19850312 201001 1 003"
    assert format_nip("123") == "123"


def test_cli_export_and_case(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1)])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    (item,) = list_items(store)
    out = tmp_path / "q.xlsx"
    assert main(["export", "--output", str(out), "--database", store.url]) == 0
    assert "1 items written" in capsys.readouterr().out and out.exists()
    case = tmp_path / "case.html"
    args = ["export", "case", str(item.id), "--output", str(case), "--database", store.url]
    assert main(args) == 2  # still pending
    decide(store, item.id, "confirmed", "Rina")
    assert main(args) == 0 and case.exists()
    assert main(["export", "--database", store.url]) == 2  # no --output
    since = ["export", "--output", str(out), "--since", "kemarin", "--database", store.url]
    assert main(since) == 2


@pytest.mark.parametrize(
    ("kind", "parent_kind", "shown", "category", "context"),
    [
        ("like", "post", "[menyukai]", "menyukai", "menyukai pada unggahan"),
        (
            "follow",
            "profile",
            "[mengikuti akun]",
            "mengikuti/bergabung akun atau grup pemenangan",
            "mengikuti pada akun",
        ),
    ],
)
def test_a_like_or_follow_is_exported_with_its_parents_text(
    store: Store,
    tmp_path: Path,
    kind: str,
    parent_kind: str,
    shown: str,
    category: str,
    context: str,
) -> None:
    setup_registry(store, tmp_path)
    campaign = asn_post(
        1,
        author_id="424242",
        author_handle="tim_pemenangan",
        text="Coblos 02 tanggal 14!",
        kind=parent_kind,
    )
    child = asn_post(2, text="", kind=kind, parent_id="5001", metrics={})
    store.write_batch([campaign, child])
    score_posts(store, {"x:5001": 0.95, "x:5002": 0.0})
    link_and_enqueue(Config(), store)
    path = tmp_path / "queue.jsonl"
    export_items(store, path, status="all")
    (row,) = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert row["isi"] == f"{shown} Coblos 02 tanggal 14!"
    assert row["kategori_pelanggaran"] == category
    assert f"konteks: {context} dengan skor 0.95" in row["alasan"]


def test_an_unwritable_export_is_a_clear_error_and_leaves_the_old_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1)])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    out = tmp_path / "out"
    out.mkdir()
    path = out / "queue.csv"
    path.write_text("the previous export\n", encoding="utf-8")
    blocker = out / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match=r"cannot write .*not-a-folder"):
        export_items(store, blocker / "queue.csv", status="all")
    assert main(["export", "--output", str(blocker / "q.csv"), "--database", store.url]) == 2

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pipeline.export._write_csv", broken)
    with pytest.raises(UsageError, match="No space left on device"):
        export_items(store, path, status="all")
    # a failed export never replaces (or truncates) the last good one, nor leaves a temp file
    assert path.read_text(encoding="utf-8") == "the previous export\n"
    assert sorted(p.name for p in out.iterdir()) == ["not-a-folder", "queue.csv"]


def test_xlsx_cells_stay_within_excels_limit(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1, text="Coblos 02! " + "ayo " * 10000)])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    path = tmp_path / "queue.xlsx"
    export_items(store, path, status="all")
    sheet = load_workbook(path).active
    column = list(HEADERS).index("isi") + 1
    text = sheet.cell(row=2, column=column).value
    assert len(text) == 32767 and text.startswith("Coblos 02!") and text.endswith("lembar kasus]")


def test_since_is_a_day_in_the_configured_time_zone(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    # 03:00 WIB on 1 January is still 31 December in UTC
    new_year = asn_post(1, created_at=datetime(2023, 12, 31, 20, 0, tzinfo=UTC))
    store.write_batch([new_year])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    out = tmp_path / "q.jsonl"
    args = ["export", "--status", "all", "--output", str(out), "--database", store.url]
    assert main([*args, "--since", "2024-01-01"]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    assert main([*args, "--since", "2024-01-01T04:00+07:00"]) == 0  # an explicit zone wins
    assert out.read_text(encoding="utf-8") == ""
