"""The normaliser: hashtags, slang, elongation, emoji, numbers and ballot numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.normalize import (
    Normalizer,
    cues,
    load_cues,
    load_slang,
    normalize_word,
    segment,
    slang,
    stem,
    stopwords,
)
from pipeline.errors import ConfigError

PLAIN = Normalizer()  # no election profiles: names stay words


def tokens(text: str, normalizer: Normalizer = PLAIN) -> tuple[str, ...]:
    return normalizer.normalize(text).tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#PrabowoGibran2024", ("prabowo", "gibran", "__year__")),
        ("#2019gantipresiden", ("__year__", "ganti", "presiden")),
        ("#AkhirnyaMilihJokowi", ("akhirnya", "memilih", "jokowi")),
        ("#tolakpolitikuang", ("tolak", "politik", "uang")),
        ("#Pemilu_Damai", ("pemilu", "damai")),
    ],
)
def test_hashtags_are_split(text: str, expected: tuple[str, ...]) -> None:
    assert tokens(text) == expected


def test_run_together_names_split_with_profile_vocabulary(normalizer: Normalizer) -> None:
    result = normalizer.normalize("#ganjarmahfud")
    assert result.tokens == ("__camptag__",)
    assert result.contestants == ("Ganjar Pranowo", "Mahfud MD")
    assert segment("ganjarmahfud", normalizer.hashtags.vocabulary) == ["ganjar", "mahfud"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("gak", "tidak"),
        ("nggak", "tidak"),
        ("ga", "tidak"),
        ("yg", "yang"),
        ("dgn", "dengan"),
        ("bgt", "banget"),
        ("bangeeeet", "banget"),
        ("mantappp", "mantap"),
        ("wkwkwkwk", "haha"),
        ("gue", "saya"),
    ],
)
def test_slang_and_elongation(word: str, expected: str) -> None:
    assert normalize_word(word)[0][0] == expected


def test_negation_survives_stopword_removal() -> None:
    result = PLAIN.normalize("yg penting gak pilih dia")
    assert "yang" in result.tokens  # the character stream keeps every word
    assert "yang" not in result.stems  # the word stream drops stopwords ...
    assert "tidak" in result.stems  # ... but never negation
    assert not {"tidak", "bukan", "jangan", "belum"} & stopwords()


def test_slang_dictionary_is_large_and_valid() -> None:
    mapping = slang()
    assert len(mapping) >= 500
    assert all(key.isascii() and key == key.lower() for key in mapping)


def test_slang_loader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "slang.tsv"
    path.write_text("# comment\ngak\ttidak\nrusak baris\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"slang.tsv:3"):
        load_slang(path)
    path.write_text("gak\ttidak\ngak\tbukan\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"slang.tsv:2.*already mapped"):
        load_slang(path)


def test_stemming_goes_through_a_word_cache() -> None:
    stem.cache_clear()
    assert stem("memilih") == "pilih"
    assert stem("memilih") == "pilih"
    info = stem.cache_info()
    assert info.hits == 1 and info.misses == 1
    assert PLAIN.normalize("kemenangan rakyat").stems == ("menang", "rakyat")


def test_emoji_are_tokens_without_modifiers() -> None:
    assert tokens("✌️ ✌🏻 👌 🔥") == ("✌", "✌", "👌", "🔥")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coblos no 2", ("coblos", "no", "__ballot__")),
        ("nomor urut tiga", ("nomor", "urut", "__ballot__")),
        ("pendukung 01 ribut", ("pendukung", "__ballot__", "ribut")),
        ("salam dua jari", ("salam", "__ballot__", "jari")),
        ("paslon2 menang", ("paslon", "__ballot__", "menang")),
        ("jokowi 2 periode", ("jokowi", "2", "periode")),
        (
            "pemilu 2024 pada 14/02/2024 jam 07:00",
            ("pemilu", "__year__", "pada", "__date__", "jam", "__time__"),
        ),
        ("beli 3 kg harga 15.000", ("beli", "3", "kg", "harga", "__num__")),
        ("1️⃣ 2️⃣", ("1", "2")),
    ],
)
def test_numbers_and_ballot_numbers(text: str, expected: tuple[str, ...]) -> None:
    assert tokens(text) == expected


def test_urls_mentions_and_reduplication() -> None:
    assert tokens("cek https://t.co/abc @user_01 anak2") == (
        "cek",
        "__url__",
        "__mention__",
        "anak",
        "anak",
    )


@pytest.mark.parametrize(
    ("value", "flag"),
    [("", "empty_text"), ("  \n ", "empty_text"), (None, "non_text"), (42, "non_text")],
)
def test_empty_and_non_text_are_flagged(value: object, flag: str) -> None:
    result = PLAIN.normalize(value)
    assert result.tokens == ()
    assert flag in result.flags


def test_fancy_unicode_is_folded() -> None:
    assert tokens("𝐏𝐢𝐥𝐢𝐡 𝐝𝐢𝐚") == ("pilih", "dia")


def test_urls_and_mentions_are_shown_but_are_not_features() -> None:
    result = PLAIN.normalize("cek https://t.co/abc @user_01 sekarang")
    assert result.stems == ("cek", "", "", "sekarang")
    assert result.word_text == "cek sekarang" and result.char_text == "cek sekarang"
    assert result.surfaces[1:3] == ("url", "@user")


@pytest.mark.parametrize(
    "text",
    ["USER USER dukung", "[USERNAME] dukung [URL]", "<USER> dukung <URL>", "@USER dukung URL"],
)
def test_anonymised_stand_ins_are_links_and_mentions(text: str) -> None:
    result = PLAIN.normalize(text)
    assert {t for t in result.tokens if t != "dukung"} <= {"__url__", "__mention__"}
    assert result.word_text == "dukung"


def test_lowercase_user_and_url_stay_words() -> None:
    assert tokens("user baru, url nya mana") == ("user", "baru", "url", "nya", "mana")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#TolakAhok", ("__camptag__",)),  # a tag built on a contestant: a side's tag
        ("#Ganjar2024", ("__camptag__",)),
        ("#AniesImin", ("__camptag__",)),  # a pair, unlisted
        ("#AhokDjarot", ("__camptag__",)),  # listed in the profile
        ("#Jokowi", ("__cand__",)),  # a bare name stays a name mention
        ("#AniesBaswedan", ("__cand__",)),
        ("#Pilpres2024", ("pilpres", "__year__")),
    ],
)
def test_campaign_style_hashtags_differ_from_name_mentions(
    normalizer: Normalizer, text: str, expected: tuple[str, ...]
) -> None:
    result = normalizer.normalize(text)
    assert result.tokens == expected
    if "__camptag__" in expected or "__cand__" in expected:
        assert result.contestants


def test_stance_cues_follow_the_normalised_word() -> None:
    result = PLAIN.normalize("Ayo dukung dan menangkan, jangan percaya pencitraan relawannya")
    cues = dict(zip(result.tokens, result.cues, strict=True))
    assert cues["dukung"] == cues["menangkan"] == "__support__"
    assert cues["pencitraan"] == "__attack__"
    assert cues["jangan"] == "" and cues["percaya"] == ""
    assert result.cue_text == "__support__ __support__ __attack__"
    assert len(result.columns) == 3


def test_cue_lexicon_loader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "cues.tsv"
    path.write_text("# c\ndukung\tsupport\nboneka\tmaybe\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cues.tsv:3"):
        load_cues(path)
    path.write_text("dukung\tsupport\ndukung\tattack\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cues.tsv:2.*already"):
        load_cues(path)
    assert len(cues()) >= 40


TRICKY = [
    "anak2 paslon2 ,2 no2 kita2an",
    "mail a.b+c@x-y.co.id @user:halo #Tag_2024!",
    "https://t.co/x?y=1,2 www.contoh.id/a-b (http://z.co)",
    ":) :-( ;D =) ^_^ ✌️✌🏻👍🏽 1️⃣",
    "Prabowo-Gibran,Ganjar-Mahfud&Anies... 01/02/2024 07:00 15.000",
    "tab\tbaris\nbaru\u00a0nbsp\u2028pisah",
]


@pytest.mark.parametrize("text", TRICKY)
def test_chunk_cache_lexes_like_one_pass_over_the_text(normalizer: Normalizer, text: str) -> None:
    fresh = Normalizer(normalizer.masker)
    # No token pattern spans whitespace, so one regex pass over the whole text (what
    # `_lex_chunk` does with any string) must agree with the cached chunk-by-chunk lexing.
    tokens, kinds, lowered, tag_refs = fresh._lex_chunk(text)
    assert fresh._lex(text) == (list(tokens), list(kinds), list(lowered), list(tag_refs))
    assert fresh._lex(text) == fresh._lex(text)  # served from the cache the second time
    assert fresh.normalize(text) == Normalizer(normalizer.masker).normalize(text)


@pytest.mark.parametrize(
    ("text", "contestants"),
    [
        ("rt USER: 2019gantipresiden harga mati", ("Prabowo Subianto", "Sandiaga Uno")),
        ("dukung prabowosandi!", ("Prabowo Subianto", "Sandiaga Uno")),
        ("ganjarmahfud menang debat", ("Ganjar Pranowo", "Mahfud MD")),
    ],
)
def test_hashtags_without_their_hash_are_still_campaign_tags(
    normalizer: Normalizer, text: str, contestants: tuple[str, ...]
) -> None:
    result = normalizer.normalize(text)
    assert "__camptag__" in result.tokens
    assert result.contestants == contestants


def test_bare_words_are_not_read_as_tags_without_a_contestant(normalizer: Normalizer) -> None:
    # "amin" is a prayer unless written "#AMIN"; a plain derived word is not split into a tag
    assert normalizer.normalize("amin ya allah").tokens == ("amin", "ya", "allah")
    assert "__camptag__" not in normalizer.normalize("kampanyenya rame bgt").tokens
    assert normalizer.normalize("mengganjar prestasi").contestants == ()
    # a run-together full name is a name mention, not a campaign tag
    masked = normalizer.normalize("aniesbaswedan hadir di acara")
    assert masked.tokens[0] == "__cand__"
    assert masked.contestants == ("Anies Baswedan",)


@pytest.mark.parametrize("word", ["penyuluh", "sepuluh", "kapilih", "nothing", "pasangan"])
def test_ordinary_words_are_not_cut_at_profile_words(normalizer: Normalizer, word: str) -> None:
    # profile vocabulary holds "pak", "pas", "h"...: a split must mask to a contestant to count
    tokens = normalizer.normalize(f"ada {word} di sini").tokens
    assert len(tokens) == 4 and "__camptag__" not in tokens


@pytest.mark.parametrize(
    "text",
    [
        "Dokumennya sudah dikirimin ke email kantor ya",  # di-kir-imin: "Imin"
        "pengamanan pemilu berjalan lancar",  # pen-GaMa-nan
        "warga beragama hidup rukun",  # ber-a-GaMa
        "kharisma kepala sekolah kami",  # k-haRISMA
        "#pengamanan #PengamananTPS",
    ],
)
def test_affixed_words_are_never_split_into_campaign_tags(
    normalizer: Normalizer, text: str
) -> None:
    result = normalizer.normalize(text)
    assert "__camptag__" not in result.tokens and result.contestants == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("calon2 pemimpin harus jujur", ("calon", "calon", "pemimpin", "harus", "jujur")),
        ("pendukung2 ribut", ("pendukung", "pendukung", "ribut")),
        ("no2 ya", ("no", "__ballot__", "ya")),
        ("rapat tanggal 01 Maret", ("rapat", "tanggal", "1", "maret")),
        ("01 maret libur", ("1", "maret", "libur")),
        ("apel jam 08 pagi", ("apel", "jam", "8", "pagi")),
        ("posyandu di RT 03 RW 05", ("posyandu", "di", "rt", "3", "rw", "5")),
        ("coblos 02 ya", ("coblos", "__ballot__", "ya")),
        ("salam 03", ("salam", "__ballot__")),
    ],
)
def test_plurals_dates_and_addresses_are_not_ballot_numbers(
    text: str, expected: tuple[str, ...]
) -> None:
    assert tokens(text) == expected


def test_elongated_names_and_curly_apostrophes_are_still_masked(normalizer: Normalizer) -> None:
    result = normalizer.normalize("Hidup Jokowiii! pilih Prabowooo")
    assert result.tokens == ("hidup", "__cand__", "pilih", "__cand__")
    assert result.contestants == ("Joko Widodo", "Prabowo Subianto")
    assert normalizer.normalize("Aniesss presidenkuuu").contestants == ("Anies Baswedan",)
    for text in ("Kiai Ma’ruf Amin hadir", "Kiai Ma`ruf Amin hadir", "Kiai Ma'ruf Amin hadir"):
        curly = normalizer.normalize(text)
        assert curly.tokens == ("__cand__", "hadir") and curly.contestants == ("Ma'ruf Amin",)
