"""Normalise Indonesian social-media text into the tokens the model sees.

Order matters: URLs, mentions and hashtags are handled first, because Sastrawi's `stem()`
strips `#`, `@` and emoji. Then contestant mentions become placeholders (see `profiles.py`),
ballot numbers in context become `__ballot__`, and only then are single words lower-cased,
de-elongated, mapped through the slang dictionary and stemmed. Stemming goes through a
word-level cache around one module-level Sastrawi stemmer; the stemmer and its dictionary are
never part of a saved model.

URLs and mentions (including the USER / URL / [USERNAME] stand-ins of anonymised exports) stay
tokens for the reviewer but are not model features: that a post links or tags someone says
nothing about which side it takes, and in the seed corpus it only echoed the writers' habits.
Words of the stance cue lexicon (`data/cues.tsv`) also yield a cue class (`__support__`,
`__attack__`), the model's third feature stream.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from classifiers.features import char_token
from classifiers.profiles import ContestantMasker, MaskResult, Ref, resolve_ballot
from pipeline.errors import ConfigError

NORMALIZER_VERSION = 5
DATA_DIR = Path(__file__).resolve().parent / "data"
MAX_CHARS = 5000
WORD_CACHE_SIZE = 1 << 18

# -- data files -----------------------------------------------------------------------------

_KEY = re.compile(r"^[a-z0-9]+$")
_VALUE = re.compile(r"^[a-z0-9]+(?: [a-z0-9]+)*$")


def load_slang(path: Path) -> dict[str, tuple[str, ...]]:
    """Read a `slang<TAB>standard` file; a malformed or conflicting line raises ConfigError."""
    mapping: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("\t")
        if not sep or not _KEY.match(key) or not _VALUE.match(value):
            raise ConfigError(f"{path}:{number}: expected 'slang<TAB>standard words' in lowercase")
        words = tuple(value.split(" "))
        if key in mapping and mapping[key] != words:
            raise ConfigError(f"{path}:{number}: {key!r} is already mapped to {mapping[key]!r}")
        mapping[key] = words
    return mapping


def load_wordlist(path: Path) -> frozenset[str]:
    """One lowercase word per line; `#` starts a comment line."""
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.add(word.lower())
    return frozenset(words)


@functools.cache
def slang() -> dict[str, tuple[str, ...]]:
    """The bundled slang/alay dictionary."""
    return load_slang(DATA_DIR / "slang.tsv")


@functools.cache
def stopwords() -> frozenset[str]:
    """The bundled stopword list (negation is deliberately absent from it)."""
    return load_wordlist(DATA_DIR / "stopwords.txt")


@functools.cache
def root_words() -> frozenset[str]:
    """Sastrawi's root-word dictionary."""
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return frozenset(w.strip() for w in StemmerFactory().get_words_from_file() if w.strip())


@functools.cache
def known_words() -> frozenset[str]:
    """Every word the normaliser recognises as Indonesian (roots, slang, extras, stopwords)."""
    standard = {word for words in slang().values() for word in words}
    extra = load_wordlist(DATA_DIR / "words.txt")
    return frozenset(root_words() | set(slang()) | standard | extra | stopwords())


CUE_CLASSES: tuple[str, ...] = ("support", "attack")
_CUE_WORD = re.compile(r"^[a-z]+$")


def load_cues(path: Path) -> dict[str, str]:
    """Read a `word<TAB>class` stance lexicon; a malformed or conflicting line raises ConfigError."""
    mapping: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        word, sep, cls = line.partition("\t")
        if not sep or not _CUE_WORD.match(word) or cls not in CUE_CLASSES:
            raise ConfigError(
                f"{path}:{number}: expected 'word<TAB>class' with class in {', '.join(CUE_CLASSES)}"
            )
        if mapping.get(word, cls) != cls:
            raise ConfigError(f"{path}:{number}: {word!r} is already in class {mapping[word]!r}")
        mapping[word] = cls
    return mapping


@functools.cache
def cues() -> dict[str, str]:
    """The bundled stance cue lexicon, keyed by the normalised (unstemmed) word -> cue token."""
    mapping: dict[str, str] = {}
    for word, cls in load_cues(DATA_DIR / "cues.tsv").items():
        # Key by the form the normaliser produces ("nyoblos" is listed, "mencoblos" arrives).
        for token, _ in normalize_word(word, False, False):
            mapping[token] = f"__{cls}__"
    return mapping


def data_fingerprint() -> str:
    """SHA-256 over the bundled data files, recorded in every model card."""
    digest = hashlib.sha256()
    for name in ("slang.tsv", "stopwords.txt", "words.txt", "cues.tsv"):
        digest.update(name.encode())
        digest.update((DATA_DIR / name).read_bytes())
    return digest.hexdigest()


# -- stemming -------------------------------------------------------------------------------


@functools.cache
def _stemmer() -> object:
    # One stemmer per process; building it reads ~30k dictionary words.
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    # The word stemmer behind Sastrawi's CachedStemmer: `stem` below has its own cache and
    # only passes single lowercase ASCII words, which Sastrawi's text clean-up leaves as they are.
    return StemmerFactory().create_stemmer().delegatedStemmer


# Sastrawi only strips these; a word with none of them comes back unchanged, and skipping it
# avoids Sastrawi's slow rule search on the long tail of typos and names.
_AFFIXED = re.compile(r"^(?:me|di|ke|te|be|pe|se)|(?:kan|an|i|nya|lah|kah|tah|pun|ku|mu)$")


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def stem(word: str) -> str:
    """Sastrawi stem of one lowercase word, cached."""
    if len(word) <= 3 or not word.isalpha() or not word.isascii() or not _AFFIXED.search(word):
        return word
    return _stemmer().stem_word(word)  # type: ignore[attr-defined,no-any-return]


# -- word level -----------------------------------------------------------------------------

_LAUGH = re.compile(
    r"^(?:a?w?k+w+k+[wk]*|(?:wk)+w?|(?:ha){2,}h?|(?:he){2,}h?|(?:hi){2,}h?|(?:xi){2,}|awok(?:awok)+)$"
)
_TRIPLE = re.compile(r"(.)\1{2,}")
_DOUBLE = re.compile(r"(.)\1+")
# Colloquial Jakarta/Javanese verb forms: ng-/nge-/ny- prefixes and the -in suffix.
_PREFIX_GUESSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nge", ("",)),
    ("ng", ("k", "")),
    ("ny", ("s", "c")),
)


def _squeeze(word: str, known: frozenset[str]) -> str:
    if word in known:
        return word
    two = _TRIPLE.sub(r"\1\1", word)
    if two in known:
        return two
    one = _DOUBLE.sub(r"\1", two)
    if one in known or two != word:
        return one
    return word


def _colloquial(word: str, roots: frozenset[str]) -> str:
    if word in roots:
        return word
    base = word
    if base.endswith("in") and len(base) > 5 and base[:-2] in roots:
        return base[:-2]
    for prefix, replacements in _PREFIX_GUESSES:
        if base.startswith(prefix) and len(base) > len(prefix) + 3:
            for replacement in replacements:
                candidate = replacement + base[len(prefix) :]
                if candidate.endswith("in") and candidate[:-2] in roots:
                    return candidate[:-2]
                if candidate in roots:
                    return candidate
    return word


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def is_derived_word(word: str) -> bool:
    """Whether a lowercase word is a root or an affixed/colloquial form of one ("pengamanan").

    Such a word is never split into run-together pieces: "pengamanan" holds "GaMa" and
    "dikirimin" holds "imin", but they are Indonesian words, not campaign tags.
    """
    roots = root_words()
    if word in roots or _colloquial(word, roots) != word:
        return True
    stemmed = stem(word)
    if stemmed != word and stemmed in roots:
        return True
    # "-in" is the colloquial "-kan"/"-i": "dikirimin" is "dikirim" + "in"
    return word.endswith("in") and len(word) > 5 and stem(word[:-2]) in roots


@functools.lru_cache(maxsize=WORD_CACHE_SIZE)
def normalize_word(
    word: str, do_stem: bool = True, drop_stopwords: bool = True
) -> tuple[tuple[str, str], ...]:
    """One lowercase word -> (token, stem) pairs: laughter, elongation, slang, then stemming.

    The token feeds the character n-grams; the stem feeds the word n-grams and is "" for a
    stopword (dropped from the word stream only).
    """
    if _LAUGH.match(word):
        return (("haha", "haha"),)
    word = _squeeze(word, known_words())
    mapped = slang().get(word)
    words = mapped if mapped is not None else (_colloquial(word, root_words()),)
    stop = stopwords()
    return tuple(
        (item, "" if drop_stopwords and item in stop else (stem(item) if do_stem else item))
        for item in words
    )


# -- hashtags -------------------------------------------------------------------------------

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
MAX_SEGMENT = 20
# Bare run-together words shorter than this are never read as hashtags ("amin" is a prayer).
MIN_RUN_TOGETHER = 7


def segment(run: str, vocabulary: frozenset[str]) -> list[str]:
    """Split a run-together lowercase string into known words (fewest words, fewest unknowns)."""
    n = len(run)
    # best[i] = (unknown characters, pieces) for run[:i]
    best: list[tuple[int, int]] = [(0, 0)] + [(n + 1, n + 1)] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(max(0, end - MAX_SEGMENT), end):
            piece = run[start:end]
            known = len(piece) > 1 and piece in vocabulary
            if not known and end - start > 1:
                continue
            unknown, pieces = best[start]
            cost = (unknown + (0 if known else 1), pieces + 1)
            if cost < best[end]:
                best[end] = cost
                back[end] = start
    pieces: list[str] = []
    end = n
    while end > 0:
        start = back[end]
        pieces.append(run[start:end])
        end = start
    pieces.reverse()
    # Glue unknown single letters back together: "xyz" stays one token, not "x y z".
    glued: list[str] = []
    for piece in pieces:
        if (
            glued
            and len(piece) == 1
            and piece not in vocabulary
            and (len(glued[-1]) == 1 or glued[-1] not in vocabulary)
        ):
            glued[-1] += piece
        else:
            glued.append(piece)
    return glued


class HashtagSplitter:
    """CamelCase first (`#PrabowoGibran2024`), dictionary segmentation for run-together tags."""

    def __init__(self, extra_vocabulary: frozenset[str] = frozenset()) -> None:
        self.vocabulary = known_words() | extra_vocabulary
        self._cache: dict[str, tuple[str, ...]] = {}

    def split(self, tag: str) -> tuple[str, ...]:
        """Words of a hashtag (without `#`); case is kept where the tag had CamelCase."""
        cached = self._cache.get(tag)
        if cached is not None:
            return cached
        words: list[str] = []
        for chunk in tag.replace("_", " ").split():
            parts = _CAMEL.findall(chunk)
            alpha = [part for part in parts if not part.isdigit()]
            for part in parts:
                lower = part.lower()
                # CamelCase already marks word boundaries; only a single run of one case
                # ("gantipresiden", "RIPJUSTICE") needs the dictionary.
                if (
                    part.isdigit()
                    or (len(alpha) > 1 and not part.isupper())
                    or lower in self.vocabulary
                    or is_derived_word(lower)
                ):
                    words.append(part)
                    continue
                pieces = segment(lower, self.vocabulary)
                if all(piece in self.vocabulary for piece in pieces):
                    words.extend(pieces)
                else:
                    words.append(part)  # a name or a word we do not know: keep it whole
        result = tuple(words)
        if len(self._cache) > WORD_CACHE_SIZE:
            self._cache.clear()
        self._cache[tag] = result
        return result


# -- text level -----------------------------------------------------------------------------

_EMOJI_RANGES = (
    "\U0001f000-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf\u2300-\u23ff\u2b00-\u2bff"
    "\u3030\u303d\u3297\u3299"
)
_MODIFIERS = re.compile("[\ufe0e\ufe0f\u200d\u20e3\U0001f3fb-\U0001f3ff]")
_TOKEN_PARTS = (
    # Stand-ins that anonymised exports and research data sets put where a link or handle was.
    r"(?P<anon_url>\[URL\]|<URL>|\bHTTPURL\b|(?<![\w@])URL\b)",
    r"(?P<anon_mention>\[USERNAME\]|\[USER\]|<USER>|@USER\b|(?<![\w@])USER\b)",
    r"(?P<url>(?:https?://|www\.)\S+)",
    r"(?P<email>[\w.+-]+@[\w-]+\.[\w.-]+)",
    r"(?P<mention>@\w+)",
    r"(?P<hashtag>#\w+)",
    r"(?P<word>[^\W\d_]+(?:['’`][^\W\d_]+)*)",
    r"(?P<number>\d+(?:[.,:/]\d+)*)",
    r"(?P<smile>[:;=][-']?[)D]|\^_*\^)",
    r"(?P<frown>[:;=][-']?\()",
    rf"(?P<emoji>[{_EMOJI_RANGES}])",
)
_CHUNK_PUNCTUATION = ".,!?;:\"'()[]"
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_TOKEN = re.compile("|".join(_TOKEN_PARTS))
# The e-mail alternative backtracks over every word; texts without "@" skip it.
_TOKEN_NO_EMAIL = re.compile("|".join(part for part in _TOKEN_PARTS if "email" not in part))
NUMBER_WORDS: dict[str, int] = {
    "satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7,
    "siji": 1, "loro": 2, "telu": 3, "papat": 4, "hiji": 1, "tilu": 3, "opat": 4,
}  # fmt: skip
# Words after which a number is a ballot number ("no 2", "paslon 02", "coblos nomor tiga").
BALLOT_CONTEXT = frozenset(
    {
        "no", "nomor", "nomer", "nmr", "nr", "urut", "paslon", "pasangan", "capres", "cawapres",
        "cagub", "cawagub", "cabup", "cawabup", "cawalkot", "calon", "kandidat", "coblos",
        "nyoblos", "mencoblos", "pilih", "milih", "memilih", "salam", "angka", "kubu", "pendukung",
        "paslonnya", "nomernya", "nomornya", "jagoan",
    }
)  # fmt: skip
# ...and words before which a number is one ("2 jari", "salam tiga jari").
BALLOT_AFTER = frozenset({"jari"})
# Words after which a "2" written on ("paslon2", "no2") is a ballot number; after any other
# word it is reduplication, the plural: "calon2" is "calon-calon", "pendukung2" supporters.
BALLOT_GLUED = frozenset(
    {"no", "nomor", "nomer", "nmr", "nr", "urut", "paslon", "coblos", "nyoblos", "mencoblos",
     "pilih", "milih", "memilih", "salam", "angka"}
)  # fmt: skip
# Words around a zero-led two-digit number that make it a date, time or address, not a ballot
# number: "tanggal 01", "jam 08", "RT 03 RW 05", "01 Maret".
NOT_BALLOT_BEFORE = frozenset(
    {"tanggal", "tgl", "tg", "jam", "pukul", "pkl", "rt", "rw", "lantai", "lt", "kamar", "ruang",
     "blok", "gang", "gg", "kelas", "bulan", "bln", "tahun", "thn", "angkatan", "kode", "kav"}
)  # fmt: skip
MONTH_WORDS = frozenset(
    {"januari", "februari", "pebruari", "maret", "april", "mei", "juni", "juli", "agustus",
     "september", "oktober", "november", "nopember", "desember", "jan", "feb", "peb", "mar",
     "apr", "jun", "jul", "agu", "agt", "ags", "agus", "sep", "sept", "okt", "nov", "nop", "des"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Normalized:
    """What the model sees of one text, and what the reviewer is told about it."""

    tokens: tuple[str, ...]  # normalised, unstemmed: the character n-gram stream
    stems: tuple[str, ...]  # per token: its stem, or "" for a stopword: the word n-gram stream
    surfaces: tuple[str, ...]  # per token: the text span it came from (lower-cased)
    contestants: tuple[str, ...]
    flags: tuple[str, ...]
    cues: tuple[str, ...] = ()  # per token: its stance cue class token, or "" (empty: none)

    @property
    def word_text(self) -> str:
        """Stems joined by spaces: input of the word vectorizer."""
        return " ".join(stem for stem in self.stems if stem)

    @property
    def char_text(self) -> str:
        """Word tokens joined by spaces: input of the character vectorizer."""
        return " ".join(token for token in self.tokens if char_token(token))

    @property
    def cue_text(self) -> str:
        """Cue class tokens joined by spaces: input of the cue vectorizer."""
        return " ".join(cue for cue in self.cues if cue)

    @property
    def columns(self) -> tuple[str, str, str]:
        """The three columns the scikit-learn pipeline takes (word, character, cue)."""
        return (self.word_text, self.char_text, self.cue_text)


def _number_token(surface: str) -> str:
    if "/" in surface:
        return "__date__"
    if ":" in surface:
        return "__time__"
    if "." in surface or "," in surface or len(surface) > 4:
        return "__num__"
    if len(surface) == 4:
        return "__year__" if surface[:2] in ("19", "20") else "__num__"
    if len(surface) == 3:
        return "__num__"
    return surface.lstrip("0") or "0"


# A lexed chunk: tokens, kinds, lower-cased tokens, refs of its campaign hashtags.
_Lexed = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[frozenset[Ref], ...]]
# A normalised word: per token it yields, (token, stem, cue class, surface).
_Word = tuple[tuple[str, str, str, str], ...]


def _part_kinds(parts: Sequence[str]) -> list[str]:
    """Lexer kinds of a tag's pieces: digits are numbers, the rest words."""
    return ["number" if part.isdigit() else "word" for part in parts]


def _append_tag(
    surface: str,
    parts: Sequence[str],
    refs: frozenset[Ref] | None,
    tokens: list[str],
    kinds: list[str],
    tag_refs: list[frozenset[Ref]],
) -> None:
    """A campaign tag becomes one `camptag` token (refs kept); any other tag, its pieces."""
    if refs is not None:
        tokens.append(surface)
        kinds.append("camptag")
        tag_refs.append(refs)
    else:
        tokens.extend(parts)
        kinds.extend(_part_kinds(parts))


class Normalizer:
    """Text -> model tokens, with contestant masking from the given election profiles."""

    def __init__(
        self,
        masker: ContestantMasker | None = None,
        *,
        do_stem: bool = True,
        drop_stopwords: bool = True,
    ) -> None:
        self.masker = masker or ContestantMasker(())
        self.do_stem = do_stem
        self.drop_stopwords = drop_stopwords
        self.hashtags = HashtagSplitter(self.masker.vocabulary)
        # Splitting a bare word costs a dictionary segmentation; only a word that contains a
        # contestant word can split into a campaign tag, and one regex search tells which do.
        pieces = sorted((w for w in self.masker.vocabulary if len(w) > 1), key=len, reverse=True)
        self._contestant_piece = re.compile("|".join(map(re.escape, pieces))) if pieces else None
        self._words: dict[str, _Word] = {}
        self._chunks: dict[str, _Lexed] = {}

    def _word(self, low: str) -> _Word:
        pairs = normalize_word(low, self.do_stem, self.drop_stopwords)
        lexicon = cues()
        result = tuple((token, stem_, lexicon.get(token, ""), low) for token, stem_ in pairs)
        if len(self._words) > WORD_CACHE_SIZE:
            self._words.clear()  # bounded memory on endless streams
        self._words[low] = result
        return result

    def _lex_chunk(self, chunk: str) -> _Lexed:
        """Tokens, kinds, lower-cased tokens and campaign-tag refs of one whitespace-free chunk."""
        tokens: list[str] = []
        kinds: list[str] = []
        tag_refs: list[frozenset[Ref]] = []
        word_end = -1
        bare = chunk.strip(_CHUNK_PUNCTUATION)
        if (
            len(bare) >= MIN_RUN_TOGETHER
            and bare.isalnum()
            and not bare.isdigit()
            and bare.lower() not in known_words()
        ):
            refs = self.masker.hashtag(bare)  # "2019gantipresiden": a tag without its "#"
            if refs is not None:
                return (bare,), ("camptag",), (bare.lower(),), (refs,)
        pattern = _TOKEN if "@" in chunk else _TOKEN_NO_EMAIL
        for match in pattern.finditer(chunk):
            kind = match.lastgroup or ""
            surface = match.group()
            if kind == "word":
                word_end = match.end()
                # Research exports strip "#": "prabowosandi", "2019gantipresiden" arrive as
                # bare words. A run-together word that is a listed campaign tag, or splits into
                # pieces one of which names a contestant, is read as the hashtag it was.
                lower = surface.lower()
                if (
                    len(lower) >= MIN_RUN_TOGETHER
                    and lower not in known_words()
                    and not is_derived_word(lower)
                ):
                    refs = self.masker.hashtag(lower)
                    parts: tuple[str, ...] = ()
                    piece = self._contestant_piece
                    if refs is None and piece is not None and piece.search(lower):
                        parts = self.hashtags.split(lower)
                        # one piece is the word itself; it is masked later like any word
                        masked = self._mask_parts(parts) if len(parts) > 1 else None
                        parts = parts if masked is not None else ()
                        refs = self._contestant_tag(masked)
                    if refs is not None or parts:
                        _append_tag(surface, parts, refs, tokens, kinds, tag_refs)
                        continue
                tokens.append(surface)
                kinds.append("word")
            elif kind == "number":
                # "anak2" is written reduplication (anak-anak), "paslon2" a ballot number
                if (
                    surface == "2"
                    and match.start() == word_end
                    and len(tokens[-1]) > 1
                    and tokens[-1].lower() not in BALLOT_GLUED
                ):
                    tokens.append(tokens[-1])
                    kinds.append("word")
                    continue
                tokens.append(surface)
                kinds.append("number")
            elif kind == "hashtag":
                tag = surface[1:]
                tokens.append(surface)
                kinds.append("tag")
                parts = self.hashtags.split(tag)
                refs = self.masker.hashtag(tag) or self._contestant_tag(self._mask_parts(parts))
                _append_tag(surface, parts, refs, tokens, kinds, tag_refs)
            elif kind in ("url", "email", "mention"):
                tokens.append(surface)
                kinds.append(kind)
            elif kind in ("anon_url", "anon_mention"):
                tokens.append(surface)
                kinds.append(kind[5:])
            elif kind == "emoji":
                tokens.append(surface)
                kinds.append("emoji")
            elif kind == "smile":
                tokens.append("🙂")
                kinds.append("emoji")
            elif kind == "frown":
                tokens.append("🙁")
                kinds.append("emoji")
        lowered = tuple(
            self._mask_form(token.lower()) if kind == "word" else token.lower()
            for token, kind in zip(tokens, kinds, strict=True)
        )
        return tuple(tokens), tuple(kinds), lowered, tuple(tag_refs)

    def _mask_form(self, low: str) -> str:
        """A word as masking looks it up: an elongated name ("jokowiii") without its echo."""
        first = self.masker.first_words
        if low in first or not _TRIPLE.search(low):
            return low
        for candidate in (_TRIPLE.sub(r"\1", low), _TRIPLE.sub(r"\1\1", low)):
            if candidate in first:
                return candidate
        return low

    def _lex(self, text: str) -> tuple[list[str], list[str], list[str], list[frozenset[Ref]]]:
        """Raw tokens, kinds and lower-cased tokens; campaign hashtags come with their refs.

        No token pattern spans whitespace, so the text is lexed chunk by chunk through a cache:
        most chunks ("coblos", "Prabowo,") recur across posts and cost one dictionary lookup.
        """
        tokens: list[str] = []
        kinds: list[str] = []
        lowered: list[str] = []
        tag_refs: list[frozenset[Ref]] = []
        chunks = self._chunks
        for chunk in text.split():
            lexed = chunks.get(chunk)
            if lexed is None:
                lexed = self._lex_chunk(chunk)
                if len(chunks) > WORD_CACHE_SIZE:
                    chunks.clear()  # bounded memory on endless streams
                chunks[chunk] = lexed
            tokens += lexed[0]
            kinds += lexed[1]
            lowered += lexed[2]
            if lexed[3]:
                tag_refs += lexed[3]
        return tokens, kinds, lowered, tag_refs

    def _mask_parts(self, parts: Sequence[str]) -> MaskResult | None:
        """The pieces of a tag or run-together word, masked, if they name a contestant.

        Profile vocabulary also holds common words ("pak", "tim", "pas") and initials ("h"), so
        a piece found in it is not enough: the pieces must mask to a contestant placeholder.
        """
        if not parts or self.masker.vocabulary.isdisjoint(part.lower() for part in parts):
            return None
        masked = self.masker.mask(parts, _part_kinds(parts))
        return masked if "placeholder" in masked.kinds else None

    @staticmethod
    def _contestant_tag(masked: MaskResult | None) -> frozenset[Ref] | None:
        """Refs of an unlisted tag that is more than one person's name, else None.

        "#TolakAhok", "#Ganjar2024", "#BadjaUntukJakarta": a tag built on a contestant is a
        campaign (or anti-campaign) tag, used to take a side like the listed ones. A tag that is
        only a person's name ("#Jokowi", "#AniesBaswedan") stays a name mention: news accounts
        tag names too. `masked` comes from `_mask_parts`.
        """
        if masked is None:
            return None
        if len(masked.tokens) == 1 and masked.tokens[0] in ("__cand__", "__party__"):
            return None
        return frozenset(masked.refs)

    def normalize(self, text: object, day: date | None = None) -> Normalized:
        """Normalise one text; `day` (the post's date) helps resolve ballot numbers."""
        if not isinstance(text, str):
            return Normalized((), (), (), (), ("non_text",))
        flags: list[str] = []
        if len(text) > MAX_CHARS:
            text = text[:MAX_CHARS]
            flags.append("truncated")
        if not text.isascii():
            text = _MODIFIERS.sub("", unicodedata.normalize("NFKC", text))
            # phone keyboards write "Ma’ruf"; profiles and the lexicon spell it "Ma'ruf"
            text = text.translate(_APOSTROPHES)
        if "`" in text:
            text = text.replace("`", "'")
        raw, kinds, raw_lowered, tag_refs = self._lex(text)
        if not raw:
            flags.append("empty_text")
            return Normalized((), (), (), (), tuple(flags))
        masked = self.masker.mask(raw, kinds, raw_lowered)
        refs = list(masked.refs)
        for tag in tag_refs:
            refs.extend(sorted(tag, key=lambda r: (r.profile_id, r.contestant_id)))
        out: list[tuple[str, str, str, str]] = []  # per token: (token, stem, cue, surface)
        ballots: list[int] = []
        words = self._words
        lowered = masked.lowered
        number_words = NUMBER_WORDS
        for index, kind in enumerate(masked.kinds):
            low = lowered[index]
            if kind == "word":
                if low not in number_words or not self._ballot_context(lowered, index, low):
                    cached = words.get(low)
                    out += cached if cached is not None else self._word(low)
                    continue
                out.append(("__ballot__", "__ballot__", "", low))
                ballots.append(number_words[low])
            elif kind == "placeholder":
                placeholder = masked.tokens[index]
                out.append((placeholder, placeholder, "", masked.surfaces[index].lower()))
            elif kind == "number":
                value = int(low) if low.isdigit() and len(low) <= 2 else None
                if (
                    value is not None
                    and 1 <= value <= 9
                    and self._ballot_context(lowered, index, low)
                ):
                    out.append(("__ballot__", "__ballot__", "", low))
                    ballots.append(value)
                else:
                    number = _number_token(low)
                    out.append((number, number, "", low))
            elif kind == "tag":
                # A generic "has a hashtag" marker taught the model the seed writers' habits;
                # the tag's words (and campaign tags) carry the meaning.
                continue
            elif kind == "camptag":
                out.append(("__camptag__", "__camptag__", "", low))
            elif kind in ("url", "email", "mention"):
                # shown to the reviewer, not a feature (see module docstring): no stem
                out.append((f"__{kind}__", "", "", "@user" if kind == "mention" else kind))
            else:  # emoji stand for themselves
                emoji = masked.tokens[index]
                out.append((emoji, emoji, "", emoji))
        if ballots:
            hints = self.masker.contest_hints(lowered)
            for number in ballots:
                refs.extend(resolve_ballot(number, self.masker, refs, day, hints))
        names: list[str] = []
        for ref in refs:
            for name in ref.names:
                if name not in names:
                    names.append(name)
        if not out:
            flags.append("empty_text")
            return Normalized((), (), (), tuple(names), tuple(flags))
        tokens, stems, cue_list, surfaces = zip(*out, strict=True)
        return Normalized(tokens, stems, surfaces, tuple(names), tuple(flags), cue_list)

    @staticmethod
    def _ballot_context(lowered: Sequence[str], index: int, low: str) -> bool:
        before = lowered[index - 1] if index > 0 else ""
        after = lowered[index + 1] if index + 1 < len(lowered) else ""
        if low.isdigit() and len(low) == 2 and low.startswith("0"):
            # "01", "02": how every campaign writes its number, unless a date, time or address
            return before not in NOT_BALLOT_BEFORE and after not in MONTH_WORDS
        return before in BALLOT_CONTEXT or after in BALLOT_AFTER
