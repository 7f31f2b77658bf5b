"""The ASN registry: NIP and handle validation, atomic and idempotent import, CSV and XLSX."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from pipeline import schema
from pipeline.errors import InputFileError
from pipeline.registry import (
    REGISTRY_COLUMNS,
    current_revision,
    find_accounts,
    handle_from_permalink,
    import_registry,
    load_accounts,
    normalise_handle,
    parse_profile_url,
    read_registry_file,
    validate_nip,
)
from pipeline.store import Store

TODAY = date(2024, 6, 1)
HEADER = ",".join(REGISTRY_COLUMNS)
# Invented people, NIPs and accounts.
BUDI_X = (
    '198503122010011003,"Budi Santoso, S.Pd.",Dinas Pendidikan Kab. Contoh,SD Negeri 2 Suka Damai,'
    'Guru Ahli Muda,"Kec. Suka Damai, Kab. Contoh",x,@Budi_S,1111,'
)
BUDI_IG = (
    '198503122010011003,"Budi Santoso, S.Pd.",Dinas Pendidikan Kab. Contoh,SD Negeri 2 Suka Damai,'
    'Guru Ahli Muda,"Kec. Suka Damai, Kab. Contoh",instagram,,,'
    "https://www.instagram.com/budi.santoso.guru/"
)
SITI_FB = (
    "199001012015042001,Siti Lestari,Dinas Kesehatan Kab. Contoh,Puskesmas Mawar,Bidan Terampil,"
    "Kab. Contoh,facebook,,,https://www.facebook.com/profile.php?id=100001234"
)
AGUS_TT = (
    '197712242005011002,Agus Wijaya,Kecamatan Suka Damai,Seksi Umum,Pengelola Umum,"Kec. Suka '
    'Damai, Kab. Contoh",tiktok,agus.wijaya77,,'
)
DEFAULT_ROWS = (BUDI_X, BUDI_IG, SITI_FB, AGUS_TT)


def write_registry(path: Path, rows: tuple[str, ...] = DEFAULT_ROWS, header: str = HEADER) -> Path:
    """A registry CSV with the given data rows."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def registry_count(store: Store) -> int:
    with store.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(schema.registry_accounts)).scalar() or 0
        )


# -- NIP -------------------------------------------------------------------------------------------


def test_a_valid_nip_is_accepted_with_separators_removed() -> None:
    assert validate_nip("19850312 201001 1 003", TODAY) == "198503122010011003"
    assert validate_nip("199001012015042001", TODAY) == "199001012015042001"


@pytest.mark.parametrize(
    ("nip", "problem"),
    [
        ("19850312201001100", "18 digits"),  # 17 digits
        ("1985031220100110034", "18 digits"),
        ("19851332201001 1003", "not a valid date"),  # month 13 of birth
        ("198502302010011003", "not a valid date"),  # 30 February
        ("198503122010131003", "no month 13"),  # appointment month 13
        ("198503122010013003", "gender digit"),  # gender 3
        ("198503122000011003", "before the age of 17"),  # appointed at 14
        ("198503122031011003", "in the future"),
        ("1.98503E+17", "scientific notation"),
        ("19850312201001100A", "18 digits"),
    ],
)
def test_invalid_nips_say_what_is_wrong(nip: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_nip(nip, TODAY)


# -- handles and profile URLs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "value", "expected"),
    [
        ("x", "@Budi_S", "budi_s"),
        ("x", "https://twitter.com/Budi_S", "budi_s"),
        ("x", "x.com/budi_s?lang=id", "budi_s"),
        ("x", "https://mobile.twitter.com/BUDI_S/status/123", "budi_s"),
        ("instagram", "https://www.instagram.com/Budi.Santoso.Guru/", "budi.santoso.guru"),
        ("tiktok", "https://www.tiktok.com/@Agus.Wijaya77", "agus.wijaya77"),
        ("facebook", "Budi.Santoso", "budisantoso"),  # Facebook ignores dots
        ("youtube", "https://www.youtube.com/@KanalBudi", "kanalbudi"),
        ("telegram", "t.me/KabarContoh", "kabarcontoh"),
        ("mastodon", "@Budi@Mastodon.Example", "budi@mastodon.example"),
        ("mastodon", "https://mastodon.example/@budi", "budi@mastodon.example"),
        ("bluesky", "@Budi.bsky.social", "budi.bsky.social"),
    ],
)
def test_handles_are_normalised_per_platform(platform: str, value: str, expected: str) -> None:
    assert normalise_handle(platform, value) == expected


@pytest.mark.parametrize(
    ("platform", "url", "handle", "user_id"),
    [
        ("facebook", "https://www.facebook.com/profile.php?id=100001234", None, "100001234"),
        ("facebook", "https://m.facebook.com/people/Budi-Santoso/100009999/", None, "100009999"),
        ("youtube", "https://youtube.com/channel/UCabcDEF123", None, "UCabcDEF123"),
        ("bluesky", "https://bsky.app/profile/did:plc:abc123", None, "did:plc:abc123"),
        ("x", "https://x.com/i/user/4242", None, "4242"),
        ("instagram", "instagram.com/siti.lestari", "siti.lestari", None),
    ],
)
def test_profile_urls_name_a_handle_or_an_id(
    platform: str, url: str, handle: str | None, user_id: str | None
) -> None:
    ref = parse_profile_url(platform, url)
    assert (ref.handle, ref.user_id) == (handle, user_id)


@pytest.mark.parametrize(
    ("platform", "url"),
    [
        ("instagram", "https://www.instagram.com/p/ABCdef/"),  # a post, not a profile
        ("instagram", "https://www.tiktok.com/@budi"),  # another platform's host
        ("x", "javascript:alert(1)"),
        ("tiktok", "https://www.tiktok.com/budi"),  # tiktok profiles are /@handle
        ("x", "https://x.com/"),
    ],
)
def test_urls_that_name_no_account_are_refused(platform: str, url: str) -> None:
    with pytest.raises(ValueError):
        parse_profile_url(platform, url)


def test_invalid_handles_are_refused() -> None:
    with pytest.raises(ValueError):
        normalise_handle("x", "budi santoso")
    with pytest.raises(ValueError):
        normalise_handle("instagram", "budi!")


def test_handle_from_a_post_permalink() -> None:
    assert handle_from_permalink("x", "https://x.com/Budi_S/status/99") == "budi_s"
    assert handle_from_permalink("tiktok", "https://www.tiktok.com/@agus.wijaya77/video/1") == (
        "agus.wijaya77"
    )
    assert handle_from_permalink("instagram", "https://www.instagram.com/p/XYZ/") is None
    assert handle_from_permalink("rss", "https://news.example/a") is None


# -- reading files -------------------------------------------------------------------------------


def test_a_good_file_reads_into_entries(tmp_path: Path) -> None:
    entries = read_registry_file(write_registry(tmp_path / "r.csv"), today=TODAY)
    assert len(entries) == 4
    budi_x = entries[0]
    assert (budi_x.nip, budi_x.platform, budi_x.handle, budi_x.user_id) == (
        "198503122010011003",
        "x",
        "budi_s",
        "1111",
    )
    siti = entries[2]
    assert siti.url_user_id == "100001234" and siti.account_key == "id:100001234"
    assert entries[1].url_handle == "budi.santoso.guru"


def test_bad_rows_are_all_reported_with_line_and_column(tmp_path: Path) -> None:
    rows = (
        BUDI_X,
        BUDI_X.replace("198503122010011003", "19850312201001100"),  # line 3: 17 digits
        AGUS_TT.replace(",tiktok,", ",myspace,"),  # line 4: unknown platform
        BUDI_X.replace("@Budi_S,1111", "https://x.com/BUDI_S,"),  # line 5: duplicate of line 2
        AGUS_TT.replace("Agus Wijaya", ""),  # line 6: no nama
        SITI_FB.replace("https://www.facebook.com/profile.php?id=100001234", ""),  # line 7
    )
    with pytest.raises(InputFileError) as caught:
        read_registry_file(write_registry(tmp_path / "bad.csv", rows), today=TODAY)
    message = str(caught.value)
    assert "5 error(s), nothing imported" in message
    assert "line 3, column nip" in message
    assert "line 4, column platform: unknown platform 'myspace'" in message
    assert "line 5, column handle: duplicate x account (same account as line 2)" in message
    assert "line 6, column nama: is required" in message
    assert "line 7, column handle: one of handle, user_id or profile_url is required" in message


def test_a_handle_contradicting_the_profile_url_is_an_error(tmp_path: Path) -> None:
    row = AGUS_TT.replace("agus.wijaya77,,", "agus.wijaya77,,https://www.tiktok.com/@agus_lain")
    with pytest.raises(InputFileError, match=r"line 2, column profile_url: names @agus_lain"):
        read_registry_file(write_registry(tmp_path / "r.csv", (row,)), today=TODAY)


def test_a_header_without_required_columns_is_refused(tmp_path: Path) -> None:
    path = write_registry(tmp_path / "r.csv", ("1,2",), header="nip,jabatan")
    with pytest.raises(InputFileError, match="header lacks column"):
        read_registry_file(path)


def test_semicolon_csv_with_bom_and_extra_columns_reads(tmp_path: Path) -> None:
    # Excel in the Indonesian locale: ';' separators, a BOM, and a "no" column.
    header = "No;NIP;Nama;Instansi;Unit Kerja;Jabatan;Wilayah;Platform;Handle;User ID;Profile URL"
    row = "1;198503122010011003;Budi Santoso;Dinas Pendidikan Kab. Contoh;;Guru;;X;@Budi_S;1111;"
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + header + "\r\n" + row + "\r\n").encode("utf-8"))
    (entry,) = read_registry_file(path, today=TODAY)
    assert (entry.nama, entry.platform, entry.handle, entry.user_id) == (
        "Budi Santoso",
        "x",
        "budi_s",
        "1111",
    )


def test_xlsx_registry_reads_and_refuses_numeric_nips(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(REGISTRY_COLUMNS))
    sheet.append(
        ["198503122010011003", "Budi", "Dinas X", None, None, None, "x", "budi_s", 1111, None]
    )
    good = tmp_path / "good.xlsx"
    workbook.save(good)
    (entry,) = read_registry_file(good, today=TODAY)
    assert entry.user_id == "1111" and entry.nip == "198503122010011003"
    # Excel turned the NIP into a number: its last digits are already gone.
    sheet.append([198503122010011003, "Siti", "Dinas Y", None, None, None, "x", "siti", None, None])
    bad = tmp_path / "bad.xlsx"
    workbook.save(bad)
    with pytest.raises(InputFileError, match=r"line 3, column nip: stored as a number"):
        read_registry_file(bad, today=TODAY)


# -- import into the store -------------------------------------------------------------------------


def test_import_is_idempotent(store: Store, tmp_path: Path) -> None:
    path = write_registry(tmp_path / "r.csv")
    first = import_registry(store, path, today=TODAY)
    assert (first.inserted, first.updated, first.deactivated, first.revision) == (4, 0, 0, 1)
    again = import_registry(store, path, today=TODAY)
    assert (again.inserted, again.updated, again.unchanged, again.revision) == (0, 0, 4, 1)
    assert registry_count(store) == 4
    assert current_revision(store) == 1


def test_reimport_updates_and_deactivates_but_never_deletes(store: Store, tmp_path: Path) -> None:
    import_registry(store, write_registry(tmp_path / "r1.csv"), today=TODAY)
    (budi_before,) = [a for a in load_accounts(store) if a.platform == "x"]
    moved = BUDI_X.replace("Guru Ahli Muda", "Kepala Sekolah").replace("@Budi_S", "budi_baru")
    report = import_registry(
        store, write_registry(tmp_path / "r2.csv", (moved, BUDI_IG, SITI_FB)), today=TODAY
    )
    assert (report.inserted, report.updated, report.deactivated, report.revision) == (0, 1, 1, 2)
    assert registry_count(store) == 4
    active = {a.platform: a for a in load_accounts(store)}
    assert set(active) == {"x", "instagram", "facebook"}
    # Same user id, new handle and job: the same row, updated in place.
    assert active["x"].id == budi_before.id
    assert (active["x"].handle, active["x"].jabatan) == ("budi_baru", "Kepala Sekolah")
    (agus,) = [a for a in load_accounts(store, include_inactive=True) if not a.active]
    assert agus.platform == "tiktok"
    # Back in the file: reactivated, same row.
    import_registry(store, write_registry(tmp_path / "r3.csv"), today=TODAY)
    assert {a.id for a in load_accounts(store)} >= {agus.id}


def test_an_account_passed_to_another_person_gets_a_new_row(store: Store, tmp_path: Path) -> None:
    budi = BUDI_X.replace("@Budi_S,1111", "@Budi_S,")  # known by handle only
    import_registry(store, write_registry(tmp_path / "r1.csv", (budi,)), today=TODAY)
    (before,) = load_accounts(store)
    # The next file gives the handle to someone else (another NIP): Budi's row must keep
    # naming Budi, or every case already linked to it would name the newcomer.
    other = (
        '199001012015042001,"Bambang Wijaya",Dinas Kesehatan Kab. Lain,Puskesmas,Perawat,'
        "Kab. Lain,x,@budi_s,,"
    )
    report = import_registry(store, write_registry(tmp_path / "r2.csv", (other,)), today=TODAY)
    assert (report.inserted, report.updated, report.deactivated) == (1, 0, 1)
    (now,) = load_accounts(store)
    assert now.id != before.id and now.nama == "Bambang Wijaya" and now.handle == "budi_s"
    (old,) = [a for a in load_accounts(store, include_inactive=True) if not a.active]
    assert (old.id, old.nama, old.nip) == (before.id, before.nama, before.nip)
    # A new title on the same person is an update, not a new person.
    titled = other.replace('"Bambang Wijaya"', '"Bambang Wijaya, S.Kep."')
    again = import_registry(store, write_registry(tmp_path / "r3.csv", (titled,)), today=TODAY)
    assert (again.inserted, again.updated) == (0, 1)
    # ...and the handle passing back to Budi gives Budi a live row again, not Bambang's.
    back = import_registry(store, write_registry(tmp_path / "r4.csv", (budi,)), today=TODAY)
    assert back.inserted + back.updated == 1
    (live,) = load_accounts(store)
    assert live.nama.startswith("Budi Santoso") and live.handle == "budi_s"


def test_a_bad_file_imports_nothing(store: Store, tmp_path: Path) -> None:
    import_registry(store, write_registry(tmp_path / "good.csv"), today=TODAY)
    bad_rows = (BUDI_X.replace("@Budi_S", "@Budi_S_2"), AGUS_TT.replace("tiktok", "myspace"))
    with pytest.raises(InputFileError):
        import_registry(store, write_registry(tmp_path / "bad.csv", bad_rows), today=TODAY)
    assert registry_count(store) == 4
    assert all(a.active for a in load_accounts(store, include_inactive=True))
    assert current_revision(store) == 1


def test_find_accounts_by_nip_or_id(store: Store, tmp_path: Path) -> None:
    import_registry(store, write_registry(tmp_path / "r.csv"), today=TODAY)
    budi = find_accounts(store, "19850312 201001 1 003")
    assert {a.platform for a in budi} == {"x", "instagram"}
    by_id = find_accounts(store, str(budi[1].id))
    assert [a.id for a in by_id] == [a.id for a in budi]  # the whole person
    assert find_accounts(store, "999999") == []
    assert find_accounts(store, "199912312020121001") == []  # a NIP nobody has
    assert find_accounts(store, "not-a-number") == []


def test_find_accounts_by_id_without_nip_is_that_account(store: Store, tmp_path: Path) -> None:
    no_nip = AGUS_TT.replace("197712242005011002", "")
    import_registry(store, write_registry(tmp_path / "r.csv", (BUDI_X, no_nip)), today=TODAY)
    (agus,) = [a for a in load_accounts(store) if a.nip is None]
    assert find_accounts(store, str(agus.id)) == [agus]


def test_demo_registry_files(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "config" / "demo"
    if not (root / "asn_registry.csv").exists():
        pytest.skip("demo data not present")
    assert len(read_registry_file(root / "asn_registry.csv")) > 0
    with pytest.raises(InputFileError) as caught:
        read_registry_file(root / "registry_bad.csv")
    message = str(caught.value)
    for expected in ("column nip", "column platform", "duplicate", "column nama"):
        assert expected in message
