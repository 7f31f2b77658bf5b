"""The normaliser: hashtags, slang, elongation, emoji, numbers and ballot numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.normalize import (
    Normalizer,
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
