"""The linker: every match level, and the false matches it must refuse."""

from __future__ import annotations

import dataclasses
import time

import pytest

from pipeline.linker import Linker, LinkResult, is_organisation, name_similarity, name_tokens
from pipeline.registry import RegistryAccount
from tests.conftest import make_post

# Invented registry: Budi on X (id + handle), Siti on Facebook (profile URL with an id only),
# Agus on TikTok (handle only), Rina on Instagram (profile URL with a handle only).
ACCOUNTS = (
    RegistryAccount(
        id=1,
        nip="198503122010011003",
        nama="Drs. Budi Santoso, M.Si.",
        instansi="Dinas Pendidikan Kab. Contoh",
        unit_kerja="SD Negeri 2 Suka Damai",
        wilayah="Kec. Suka Damai, Kab. Contoh",
        platform="x",
        handle="budi_s",
        user_id="1111",
    ),
    RegistryAccount(
        id=2,
        nip="199001012015042001",
        nama="Siti Lestari",
        instansi="Dinas Kesehatan Kab. Contoh",
        wilayah="Kab. Contoh",
        platform="facebook",
        profile_url="https://www.facebook.com/profile.php?id=100001234",
        url_user_id="100001234",
    ),
    RegistryAccount(
        id=3,
        nip="197712242005011002",
        nama="Agus Wijaya",
        instansi="Kecamatan Suka Damai",
        wilayah="Kab. Contoh",
        platform="tiktok",
        handle="agus.wijaya77",
    ),
    RegistryAccount(
        id=4,
        nama="Rina Kartika",
        instansi="BPS Kota Sampel",
        wilayah="Kota Sampel",
        platform="instagram",
        profile_url="https://instagram.com/rina.kartika/",
        url_handle="rina.kartika",
    ),
    RegistryAccount(
        id=5,
        nama="Joko Purnomo",
        instansi="Dinas Perhubungan Kab. Contoh",
        platform="x",
        handle="joko_p",
        active=False,
    ),
)


@pytest.fixture
def linker() -> Linker:
    return Linker(ACCOUNTS, name_similarity=0.88)


def link(
    linker: Linker,
    platform: str,
    author_id: str | None = None,
    handle: str | None = None,
    name: str | None = None,
    bio: str | None = None,
    url: str | None = None,
) -> LinkResult:
    return linker.match(platform, author_id, handle, name, bio, url)


def test_user_id_links_even_after_a_rename(linker: Linker) -> None:
    result = link(linker, "x", "1111", "budi_baru_2024", "Pak Budi", None)
    assert (result.level, result.account_id) == ("user_id", 1)
    assert result.confidence == pytest.approx(0.99)
    assert result.evidence["renamed"] is True
    assert result.evidence["handle_registered"] == "budi_s"


@pytest.mark.parametrize("handle", ["budi_s", "@Budi_S", "BUDI_S", "https://x.com/Budi_S"])
def test_handle_case_and_url_variants_link(linker: Linker, handle: str) -> None:
    result = link(linker, "x", None, handle)
    assert (result.level, result.account_id) == ("handle", 1)
    # Budi's registered id cannot be compared with a post that carries none: the match is no
    # surer than any other handle match, and the evidence says why
    assert result.confidence == pytest.approx(0.9)
    assert result.evidence["registered_id_not_compared"] is True


def test_a_handle_now_held_by_another_account_does_not_link(linker: Linker) -> None:
    # Budi renamed away from "budi_s" and someone else (id 9999) took the name.
    result = link(linker, "x", "9999", "budi_s", "Budi Santoso", None)
    assert result.level is None and result.account_id is None
    assert result.evidence["rejected"] == "handle_taken_by_other_account"


def test_a_permalink_handle_now_held_by_another_account_does_not_link(linker: Linker) -> None:
    result = link(linker, "x", "9999", None, url="https://x.com/budi_s/status/42")
    assert result.level is None and result.account_id is None
    assert result.evidence["rejected"] == "handle_taken_by_other_account"
    assert result.evidence["handle"] == "budi_s"


def test_profile_url_levels(linker: Linker) -> None:
    by_id = link(linker, "facebook", "100001234", "siti.lestari.77")
    assert (by_id.level, by_id.account_id) == ("profile_url", 2)
    by_handle = link(linker, "instagram", "555", "Rina.Kartika")
    assert (by_handle.level, by_handle.account_id) == ("profile_url", 4)
    from_permalink = link(
        linker, "tiktok", None, None, url="https://www.tiktok.com/@Agus.Wijaya77/video/42"
    )
    assert (from_permalink.level, from_permalink.account_id) == ("profile_url", 3)
    assert from_permalink.evidence["handle_from_permalink"] == "agus.wijaya77"


def test_the_same_handle_on_another_platform_does_not_link(linker: Linker) -> None:
    assert link(linker, "instagram", None, "budi_s").level is None
    assert link(linker, "tiktok", "1111").level is None


def test_name_close_and_bio_naming_the_agency_is_a_possible_match(linker: Linker) -> None:
    result = link(
        linker,
        "facebook",
        "777",
        "budisantoso.official",
        "Budi Santoso S.Pd",
        "Guru di Disdik Kab. Contoh 📚",
    )
    assert (result.level, result.account_id) == ("name_agency", 1)
    assert 0.5 <= float(result.confidence or 0) <= 0.7
    assert "dinas pendidikan kabupaten contoh" in result.evidence["bio_mentions"]
    assert result.evidence["name_similarity"] >= 0.88


def test_a_split_surname_still_counts_as_the_same_name(linker: Linker) -> None:
    result = link(linker, "tiktok", "888", "x", "Agus Wi Jaya", "Staf Kec. Suka Damai")
    assert (result.level, result.account_id) == ("name_agency", 3)


def test_same_display_name_different_person_does_not_link(linker: Linker) -> None:
    unrelated = link(linker, "facebook", "778", "budi.hp", "Budi Santoso", "Jual HP second, Medan")
    assert unrelated.level is None
    no_bio = link(linker, "facebook", "779", "budi.s2", "Budi Santoso", None)
    assert no_bio.level is None


def test_bio_naming_the_agency_without_the_name_is_not_a_registry_link(linker: Linker) -> None:
    result = link(linker, "x", "780", "dedi", "Dedi Kurnia", "Staf Dinas Pendidikan Kab. Contoh")
    assert result.level == "self_declared" and result.account_id is None


@pytest.mark.parametrize(
    ("bio", "level"),
    [
        ("ASN Pemprov Jawa Tengah | abdi negara", "self_declared"),
        ("Guru PNS SD", "self_declared"),
        ("Pegawai Kemenag Kab. Contoh", "self_declared"),
        ("pensiunan PNS, sekarang berkebun", None),
        ("bukan PNS, cuma warga biasa", None),
        ("lagi dinas luar kota terus", None),
        ("pecinta kopi", None),
    ],
)
def test_self_declared_reads_the_bio(linker: Linker, bio: str, level: str | None) -> None:
    assert link(linker, "x", "42", "someone", "Someone", bio).level == level


def test_organisation_accounts_are_not_self_declared(linker: Linker) -> None:
    assert is_organisation("Kabar ASN Hari Ini", "Info CPNS dan PPPK")
    assert is_organisation("Pemkab Contoh", "Akun resmi Pemerintah Kabupaten Contoh")
    assert not is_organisation("Mas Tono", "PNS Dinkes | bukan akun resmi")
    assert link(linker, "x", "43", "kabar", "Kabar ASN Hari Ini", "Info CPNS").level is None


def test_inactive_accounts_do_not_link(linker: Linker) -> None:
    assert link(linker, "x", None, "joko_p").level is None


def test_link_post_returns_a_match_record(linker: Linker) -> None:
    post = make_post(1, platform="x", author_id="1111", author_handle="budi_s")
    match = linker.link_post(post)
    assert match is not None
    assert (match.post_key, match.level, match.account_id) == ("x:1001", "user_id", 1)
    assert linker.link_post(make_post(2, author_id="nobody", author_handle="nobody")) is None


def test_name_helpers() -> None:
    assert name_tokens("Dr. Hj. Siti Aminah, S.Pd., M.Si.") == ("siti", "aminah")
    assert name_tokens("Sugeng Riyanto S.Pd 📚") == ("sugeng", "riyanto")
    assert name_similarity(("endah", "purwa", "ningsih"), ("endah", "purwaningsih")) > 0.95
    assert name_similarity(("budi", "santoso"), ("bambang", "sutrisno")) < 0.6


def test_results_are_cached_per_author(linker: Linker) -> None:
    first = link(linker, "x", "1111", "budi_s")
    assert link(linker, "x", "1111", "budi_s") is first


def test_fuzzy_work_is_bounded_to_candidates() -> None:
    # 20,000 people who all share the first name "Budi" and one region: a bio naming another
    # region must not trigger 20,000 fuzzy comparisons.
    many = [
        dataclasses.replace(
            ACCOUNTS[0],
            id=100 + n,
            nip=None,
            nama=f"Budi Nomor{n}",
            handle=f"budi{n}",
            user_id=str(10**6 + n),
            wilayah="Kab. Contoh",
            instansi=f"Sekolah {n}",
            unit_kerja=None,
        )
        for n in range(20_000)
    ]
    big = Linker(many)
    started = time.perf_counter()
    for n in range(2000):
        big.match("x", f"a{n}", f"h{n}", f"Budi Orang{n}", "warga Kota Lain, suka kopi")
    assert time.perf_counter() - started < 2.0


def test_the_closest_of_several_candidates_wins() -> None:
    region = {"instansi": "Dinas Pendidikan Kab. Contoh", "wilayah": "Kab. Contoh"}
    people = [
        RegistryAccount(id=1, nama="Budi Santoso", platform="x", handle="a1", **region),
        RegistryAccount(id=2, nama="Budi Hartono", platform="x", handle="a2", **region),
        RegistryAccount(id=3, nama="Budi Santosa Wijaya", platform="x", handle="a3", **region),
    ]
    for order in (people, people[::-1]):
        result = Linker(order).match("facebook", "9", "b", "Budi Santoso", "guru Kab. Contoh")
        assert (result.level, result.account_id) == ("name_agency", 1)
        assert result.evidence["name_similarity"] == 1.0
