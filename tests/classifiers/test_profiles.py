"""Election profiles: loading, validation, masking and ballot-number resolution."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from classifiers.normalize import Normalizer
from classifiers.profiles import ContestantMasker, ElectionProfile, load_profile, load_profiles
from pipeline.errors import ConfigError
from tests.classifiers.conftest import ELECTIONS

REQUIRED = {
    "pilpres-2014",
    "pilpres-2019",
    "pilpres-2024",
    "pilkada-dki-2017",
    "pilkada-2024-jakarta",
    "pilkada-2024-jawa-tengah",
    "pilkada-2024-jawa-timur",
    "pilkada-2024-sumber-makmur",
}


def test_shipped_profiles_load_with_phases(profiles: list[ElectionProfile]) -> None:
    assert {profile.id for profile in profiles} >= REQUIRED
    for profile in profiles:
        names = {phase.name for phase in profile.phases}
        assert {"campaign", "quiet_period", "voting"} <= names, profile.id
        numbers = [c.number for c in profile.contestants]
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), profile.id


def test_invented_demo_contest_matches_its_brief() -> None:
    [demo] = load_profiles(ELECTIONS, ["pilkada-2024-sumber-makmur"])
    assert demo.invented
    assert demo.phase_on(date(2024, 9, 25)) == "campaign"
    assert demo.phase_on(date(2024, 11, 23)) == "campaign"
    assert demo.phase_on(date(2024, 11, 25)) == "quiet_period"
    assert demo.voting_day == date(2024, 11, 27)
    first, second = demo.contestants
    assert first.name == "H. Bambang Sutrisno – Dra. Endang Wulandari"
    assert {"SumberMakmurMaju", "BersamaBE"} <= set(first.hashtags)
    assert second.name == "Ir. Agus Salim Harahap – dr. Ratna Kusumawati"
    assert {"AgusRatna2024", "SumberMakmurBerkah"} <= set(second.hashtags)


def test_masking_names_pairs_parties_and_case(normalizer: Normalizer) -> None:
    result = normalizer.normalize("Prabowo dan Gibran pasti menang, PDI Perjuangan kalah")
    assert result.tokens[:1] == ("__pair__",)
    assert "__party__" in result.tokens
    assert result.contestants[:2] == ("Prabowo Subianto", "Gibran Rakabuming Raka")
    assert "prabowo" not in result.tokens
    # "amin" is a prayer word; only the capitalised pair acronym is a contestant
    prayer = normalizer.normalize("aamiin ya allah, amin")
    assert "__pair__" not in prayer.tokens and prayer.contestants == ()
    assert "__pair__" in normalizer.normalize("Ayo menangkan AMIN").tokens
    # "pan" is a word too; the party PAN only as written
    assert "__party__" not in normalizer.normalize("pan panas").tokens


def test_hashtags_slogans_and_teams_become_placeholders(normalizer: Normalizer) -> None:
    result = normalizer.normalize("#BersamaBE Sumber Makmur Berkah kata Tim Pemenangan BE")
    assert result.tokens == ("__camptag__", "__slogan__", "kata", "__team__")
    assert "H. Bambang Sutrisno" in result.contestants
    assert "Ir. Agus Salim Harahap" in result.contestants


def test_ballot_numbers_resolve_only_when_the_contest_is_clear(
    profiles: list[ElectionProfile],
) -> None:
    only_2024 = Normalizer(ContestantMasker([p for p in profiles if p.id == "pilpres-2024"]))
    assert only_2024.normalize("coblos no 3").contestants == ("Ganjar Pranowo", "Mahfud MD")
    everything = Normalizer(ContestantMasker(profiles))
    assert everything.normalize("coblos no 3").contestants == ()  # which contest's 3?
    # a post's date picks the contest in season: March 2019 is Pilpres 2019 only
    dated = everything.normalize("ayo coblos no 2", day=date(2019, 3, 1))
    assert dated.contestants == ("Prabowo Subianto", "Sandiaga Uno")
    # names narrow it too: Gibran ran only in 2024
    named = everything.normalize("Gibran nomor 2")
    assert named.contestants == ("Gibran Rakabuming Raka", "Prabowo Subianto")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the region named: the demo regency's number 2
        (
            "KPU menetapkan nomor urut 2 sebagai pemenang pilkada Sumber Makmur",
            ("Ir. Agus Salim Harahap", "dr. Ratna Kusumawati"),
        ),
        ("Ayo warga Jateng coblos nomor 1!", ("Andika Perkasa", "Hendrar Prihadi")),
        # Jakarta held two contests: the year tells them apart
        ("pilkada DKI 2017 ayo pilih nomor 2", ("Basuki Tjahaja Purnama", "Djarot Saiful Hidayat")),
        ("Pilkada Jakarta 2024 coblos nomor 3", ("Pramono Anung", "Rano Karno")),
        # the kind of contest and the year: three presidential elections, only one in 2019
        ("salam 2 jari capres 2019", ("Prabowo Subianto", "Sandiaga Uno")),
        # names beat the other hints: Ganjar ran for president in 2024
        ("Ganjar nomor 3 di Jawa Tengah", ("Ganjar Pranowo", "Mahfud MD")),
        # still unclear: a presidential number 3 exists only in 2024, but DKI 2017, Jakarta and
        # Jawa Timur 2024 have one too and nothing says which kind of contest this is
        ("pokoknya nomor 3", ()),
    ],
)
def test_ballot_numbers_resolve_by_region_kind_and_year(
    profiles: list[ElectionProfile], text: str, expected: tuple[str, ...]
) -> None:
    assert Normalizer(ContestantMasker(profiles)).normalize(text).contestants == expected


def test_region_names_are_hints_not_masked(profiles: list[ElectionProfile]) -> None:
    jateng = next(p for p in profiles if p.id == "pilkada-2024-jawa-tengah")
    assert jateng.region_names == ("Jawa Tengah", "Jateng")
    assert next(p for p in profiles if p.id == "pilpres-2024").region_names == ()
    result = Normalizer(ContestantMasker(profiles)).normalize("banjir di Jawa Tengah")
    assert result.tokens == ("banjir", "di", "jawa", "tengah") and result.contestants == ()


def test_ballot_number_resolves_by_date_in_a_single_season(profiles: list[ElectionProfile]) -> None:
    everything = Normalizer(ContestantMasker(profiles))
    day = date(2014, 6, 20)
    assert [p.id for p in profiles if p.in_season(day)] == ["pilpres-2014"]
    assert everything.normalize("salam dua jari", day=day).contestants == (
        "Joko Widodo",
        "Jusuf Kalla",
    )


def test_a_new_contest_transfers_by_adding_a_profile(tmp_path: Path) -> None:
    (tmp_path / "pilkada-2029-kota-contoh.toml").write_text(
        """
id = "pilkada-2029-kota-contoh"
name = "Pilkada Kota Contoh 2029 (invented)"
kind = "pilkada"
region = "Kota Contoh"
[[phases]]
name = "campaign"
start = 2029-09-01
end = 2029-11-20
[[contestants]]
id = "sari-joko"
number = 1
name = "Sari Widuri – Joko Prasetyo"
hashtags = ["SariJokoMenang"]
[[contestants.members]]
name = "Sari Widuri"
role = "cawalkot"
aliases = ["Bu Sari Widuri", "Sari Widuri"]
[[contestants.members]]
name = "Joko Prasetyo"
role = "wawalkot"
aliases = ["Joko Prasetyo"]
""",
        encoding="utf-8",
    )
    masker = ContestantMasker(load_profiles(tmp_path))
    result = Normalizer(masker).normalize("Dukung Bu Sari Widuri! #SariJokoMenang")
    assert result.tokens == ("dukung", "__cand__", "__camptag__")
    assert result.contestants == ("Sari Widuri", "Joko Prasetyo")


def test_invalid_profile_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "rusak.toml"
    path.write_text(
        'id = "x"\nname = "X"\nkind = "pilkada"\nregion = "R"\n'
        '[[phases]]\nname = "campaign"\nstart = "kemarin"\nend = 2024-01-01\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"rusak.toml: key phases\[0\]\.start: expected a date"):
        load_profile(path)


def test_unknown_election_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown election 'pilpres-2099'.*pilpres-2024"):
        load_profiles(ELECTIONS, ["pilpres-2099"])


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Semoga cepat sembuh ya bu #amin", ()),  # a prayer
        ("Semoga berkah #rido Allah", ()),
        ("Coblos #AMIN", ("Anies Baswedan", "Muhaimin Iskandar")),
        ("SEMOGA LEKAS SEMBUH, AMIN YA ALLAH", ()),  # shouted: its case says nothing
        ("HARGANYA PAS BANGET", ()),
        ("Ayo AMIN!", ("Anies Baswedan", "Muhaimin Iskandar")),
        ("Jangan lupa bayar PKB tepat waktu di Samsat", ()),  # the motor-vehicle tax
        ("PKB dukung Anies", ("PKB", "Anies Baswedan")),
        ("Anaknya gemoy banget, pipinya tembem", ()),
        ("Pakde saya pensiunan guru", ()),
        ("Mas Agus tolong kirim laporan", ()),
        ("Pak Bowo ketua RT kami", ()),
        ("alumni gama angkatan 2010", ()),
    ],
)
def test_everyday_words_are_not_contestants(
    normalizer: Normalizer, text: str, named: tuple[str, ...]
) -> None:
    assert normalizer.normalize(text).contestants == named
