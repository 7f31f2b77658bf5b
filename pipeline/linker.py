"""Links a post's author to the ASN registry, with a level, a confidence and the evidence.

Levels, strongest first:

- `user_id`: the platform's own account id equals a registered one (survives handle renames);
- `handle`: the normalised handle equals a registered one (and no user id contradicts it);
- `profile_url`: the account named by a registered profile URL, or the handle read from the
  post's permalink, equals the author's;
- `name_agency`: display name close to a registered name *and* a bio naming the same instansi
  or wilayah — a possible match for a human to check;
- `self_declared`: the bio says ASN/PNS/abdi negara or names an agency, but the account is not
  in the registry ("suspected, unregistered").

A name alone never links. Exact lookups come first (dictionaries); fuzzy name comparison runs
only on the few registry persons whose instansi or wilayah the bio names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from pipeline.records import Match, Post
from pipeline.registry import (
    RegistryAccount,
    handle_from_permalink,
    normalise_handle,
    normalise_platform,
)

REGISTRY_LEVELS: tuple[str, ...] = ("user_id", "handle", "profile_url", "name_agency")
ALL_LEVELS: tuple[str, ...] = (*REGISTRY_LEVELS, "self_declared")

CONFIDENCE: dict[str, float] = {
    "user_id": 0.99,
    "profile_url_id": 0.97,
    "handle_unverified": 0.9,  # a handle match: no account id could be compared
    "profile_url_handle": 0.88,
    "permalink_handle": 0.85,
    "name_agency_min": 0.5,
    "name_agency_max": 0.7,
    "self_declared_registered_agency": 0.3,
    "self_declared": 0.25,
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Academic degrees and honorifics that decorate Indonesian names ("Dr. Hj. Siti, S.Pd., M.Si.").
_NAME_NOISE = _words(
    "dr drs dra ir h hj haji hajjah prof kh ust ustadz ns apt bapak ibu pak bu mas mbak "
    "s spd pd mpd msi si ssi sh mh se mm skom kom mkom st mt sos ssos sip ip sag ag mag skm "
    "km skep kep sked ked sfarm farm shut hut sp msc bsc ma mba phd amd amk ak spdi pdi mhum "
    "hum sikom ikom ssn sn mkes kes sst mtr tr sgz gz stp tp sstp ipdn"
)
# Generic words that do not identify a place or agency on their own.
_PLACE_GENERIC = _words(
    "kabupaten kota provinsi kecamatan kelurahan desa administrasi daerah istimewa khusus "
    "pemerintah dinas badan kantor sekretariat unit pelaksana teknis dan"
)
_ABBREVIATIONS: dict[str, str] = {
    "kab": "kabupaten",
    "kec": "kecamatan",
    "kel": "kelurahan",
    "prov": "provinsi",
    "pemkab": "pemerintah kabupaten",
    "pemkot": "pemerintah kota",
    "pemprov": "pemerintah provinsi",
    "disdik": "dinas pendidikan",
    "disdikbud": "dinas pendidikan",
    "dinkes": "dinas kesehatan",
    "dishub": "dinas perhubungan",
    "kemenag": "kementerian agama",
    "setda": "sekretariat daerah",
    # State schools: "SDN 1" is "SD Negeri 1".
    "sdn": "sd negeri",
    "smpn": "smp negeri",
    "sman": "sma negeri",
    "smkn": "smk negeri",
    "mtsn": "mts negeri",
}


_SELF_DECLARED = re.compile(
    r"(?<![\w-])(?P<neg>(?:bukan|mantan|eks|pensiunan|purna(?:bakti)?)\s+)?"
    r"(?P<term>asn|pns|cpns|pppk|abdi\s+negara|aparatur\s+sipil\s+negara|"
    r"pegawai\s+negeri(?:\s+sipil)?|dinas\s+(?!luar\b)\w+|kementerian\s+\w+|"
    r"pemkab\s+\w+|pemkot\s+\w+|pemprov\s+\w+|pemerintah\s+(?:kabupaten|kota|provinsi)\s+\w+|"
    r"(?:staf|staff|pegawai)\s+(?:kecamatan|kelurahan|kantor|dinas|badan|sekretariat)|"
    r"bappeda|bpbd|bkpsdm|bkd|setda|satpol\s+pp|puskesmas|rsud|disdik\w*|dinkes|kemenag)(?![\w-])",
    re.IGNORECASE,
)


# Accounts of organisations (official, news, info channels) are not persons declaring a status.
_ORGANISATION_NAME = _words(
    "info kabar berita portal media tv official resmi humas kanal channel relawan sahabat tim"
)
_ORGANISATION_BIO = re.compile(
    r"(?<!bukan )\b(?:akun|kanal|channel) (?:resmi|official)\b|\bdikelola\b|\bofficial account\b",
    re.IGNORECASE,
)


def is_organisation(name: str | None, bio: str | None) -> bool:
    """Whether a profile presents itself as an organisation rather than a person."""
    if name and _ORGANISATION_NAME & set(_fold(name).split()):
        return True
    return bool(bio and _ORGANISATION_BIO.search(bio))


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


_NON_WORD = re.compile(r"[^a-z0-9]+")


def _fold(text: str) -> str:
    """Lowercase, accents removed, emoji and punctuation turned into spaces."""
    return _NON_WORD.sub(" ", _strip_accents(text)).strip()


def name_tokens(name: str) -> tuple[str, ...]:
    """The identifying words of a personal name (degrees, titles and initials removed)."""
    main = name.split(",", 1)[0]  # degrees follow the first comma: "Budi Santoso, S.Pd."
    tokens = _fold(main).split()
    return tuple(t for t in tokens if len(t) > 1 and t not in _NAME_NOISE and not t.isdigit())


def normalise_place_text(text: str) -> str:
    """A bio or agency name with common abbreviations expanded, padded for whole-word search."""
    words = _fold(text).split()
    return " " + " ".join(_ABBREVIATIONS.get(word, word) for word in words) + " "


def _distinctive(text: str) -> str | None:
    words = normalise_place_text(text).split()
    if not any(t not in _PLACE_GENERIC and not t.isdigit() for t in words):
        return None
    return " ".join(words)


def place_phrases(
    instansi: str | None, wilayah: str | None, unit_kerja: str | None = None
) -> dict[str, str]:
    """Phrases a bio may contain to name this person's agency, unit or region: {phrase: kind}."""
    phrases: dict[str, str] = {}
    # "Kec. Sukamaju, Kab. Sumber Makmur": each part names a region on its own.
    for part in re.split(r"[,;/]", wilayah or ""):
        core = [t for t in normalise_place_text(part).split() if t not in _PLACE_GENERIC]
        if core and len(" ".join(core)) >= 3:
            phrases[" ".join(core)] = "wilayah"
    if unit_kerja:
        unit = _distinctive(unit_kerja)
        if unit:
            phrases[unit] = "unit_kerja"
    if instansi:
        agency = _distinctive(instansi)
        if agency:
            phrases[agency] = "instansi"
    return phrases


def name_similarity(tokens: Sequence[str], other: Sequence[str]) -> float:
    """Similarity of two names in [0, 1]: word order ignored, split words ("Purwa Ningsih") too."""
    by_words = fuzz.ratio(" ".join(sorted(tokens)), " ".join(sorted(other)))
    joined = fuzz.ratio("".join(tokens), "".join(other))
    return max(by_words, joined) / 100


def _handle_taken(
    account: RegistryAccount, author_id: str | None, handle: str, rejected: dict[str, Any]
) -> bool:
    """Whether another account than the registered one now holds `handle` (noted in `rejected`)."""
    registered_id = account.user_id or account.url_user_id
    if not (registered_id and author_id and registered_id != author_id):
        return False
    rejected.update(
        rejected="handle_taken_by_other_account", handle=handle, candidate_account_id=account.id
    )
    return True


@dataclass(frozen=True, slots=True)
class LinkResult:
    """A linker verdict for one author; `level` None means no link (evidence may say why)."""

    level: str | None
    confidence: float | None
    account_id: int | None
    evidence: Mapping[str, Any] = field(default_factory=dict)


NO_LINK = LinkResult(None, None, None, {})


@dataclass(slots=True)
class _Person:
    accounts: list[RegistryAccount]
    tokens: tuple[str, ...]
    joined: str  # tokens sorted and space-joined (word order ignored)
    concat: str  # tokens in order without spaces ("purwa ningsih" = "purwaningsih")
    phrases: dict[str, str]


class Linker:
    """An in-memory index of the active registry; `match` is cached per distinct author."""

    def __init__(
        self,
        accounts: Iterable[RegistryAccount],
        *,
        name_similarity: float = 0.88,
        revision: int = 0,
        cache_size: int = 500_000,
    ) -> None:
        self.name_similarity = name_similarity
        self.revision = revision
        self.cache_size = cache_size
        self._by_user_id: dict[tuple[str, str], RegistryAccount] = {}
        self._by_handle: dict[tuple[str, str], RegistryAccount] = {}
        self._by_url_user_id: dict[tuple[str, str], RegistryAccount] = {}
        self._by_url_handle: dict[tuple[str, str], RegistryAccount] = {}
        self._cache: dict[tuple[Any, ...], LinkResult] = {}
        persons: dict[str, _Person] = {}
        for account in accounts:
            if not account.active:
                continue
            if account.user_id:
                self._by_user_id.setdefault((account.platform, account.user_id), account)
            if account.handle:
                self._by_handle.setdefault((account.platform, account.handle), account)
            if account.url_user_id:
                self._by_url_user_id.setdefault((account.platform, account.url_user_id), account)
            if account.url_handle:
                self._by_url_handle.setdefault((account.platform, account.url_handle), account)
            person = persons.get(account.person_key)
            if person is None:
                tokens = name_tokens(account.nama)
                persons[account.person_key] = _Person(
                    [account],
                    tokens,
                    " ".join(sorted(tokens)),
                    "".join(tokens),
                    place_phrases(account.instansi, account.wilayah, account.unit_kerja),
                )
            else:
                person.accounts.append(account)
                person.phrases.update(
                    place_phrases(account.instansi, account.wilayah, account.unit_kerja)
                )
        self._persons = list(persons.values())
        self._name_index: dict[str, set[int]] = {}
        self._phrase_persons: dict[str, set[int]] = {}
        self._phrases_by_first: dict[str, set[str]] = {}
        self._instansi_phrases: set[str] = set()
        for index, person in enumerate(self._persons):
            for token in person.tokens:
                self._name_index.setdefault(token, set()).add(index)
            for phrase in person.phrases:
                self._phrase_persons.setdefault(phrase, set()).add(index)
                self._phrases_by_first.setdefault(phrase.split()[0], set()).add(phrase)
                if person.phrases[phrase] == "instansi":
                    self._instansi_phrases.add(phrase)

    @property
    def account_count(self) -> int:
        """Active accounts indexed by exact identity."""
        ids = {
            a.id
            for table in (
                self._by_user_id,
                self._by_handle,
                self._by_url_user_id,
                self._by_url_handle,
            )
            for a in table.values()
        }
        return len(ids)

    # -- matching --------------------------------------------------------------------------

    def link_post(self, post: Post) -> Match | None:
        """The Match for a post's author, or None when nothing links."""
        result = self.match(
            post.platform,
            post.author_id,
            post.author_handle,
            post.author_name,
            post.author_bio,
            post.url,
        )
        if result.level is None:
            return None
        return Match(
            post_key=post.key,
            level=result.level,  # type: ignore[arg-type]
            confidence=float(result.confidence or 0.0),
            account_id=result.account_id,
            evidence=dict(result.evidence),
        )

    def match(
        self,
        platform: str,
        author_id: str | None,
        handle: str | None,
        name: str | None,
        bio: str | None,
        url: str | None = None,
    ) -> LinkResult:
        """Link one author (cached on the author's captured identity and profile)."""
        # The permalink matters only when there is no handle; keep it out of the cache key
        # otherwise, or every post of an author would miss the cache.
        key = (platform, author_id, handle, name, bio, None if handle else url)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._match(platform, author_id, handle, name, bio, url)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _match(
        self,
        platform_raw: str,
        author_id: str | None,
        handle_raw: str | None,
        name: str | None,
        bio: str | None,
        url: str | None,
    ) -> LinkResult:
        platform = normalise_platform(platform_raw)
        author_id = author_id.strip() if author_id and author_id.strip() else None
        rejected: dict[str, Any] = {}
        if platform is not None:
            handle = None
            if handle_raw:
                try:
                    handle = normalise_handle(platform, handle_raw)
                except ValueError:
                    handle = None
            exact = self._exact(platform, author_id, handle, handle_raw, url, rejected)
            if exact is not None:
                return exact
        named = self._named_phrases(bio) if bio else ()
        if name and named:
            possible = self._name_agency(name, named, platform)
            if possible is not None:
                if rejected:
                    possible = LinkResult(
                        possible.level,
                        possible.confidence,
                        possible.account_id,
                        {**possible.evidence, **rejected},
                    )
                return possible
        if bio and not is_organisation(name, bio):
            declared = self._self_declared(bio, named)
            if declared is not None:
                return declared
        return LinkResult(None, None, None, rejected) if rejected else NO_LINK

    def _exact(
        self,
        platform: str,
        author_id: str | None,
        handle: str | None,
        handle_raw: str | None,
        url: str | None,
        rejected: dict[str, Any],
    ) -> LinkResult | None:
        if author_id:
            account = self._by_user_id.get((platform, author_id))
            if account is not None:
                evidence: dict[str, Any] = {"user_id": author_id}
                registered = account.handle or account.url_handle
                if handle and registered and handle != registered:
                    # Same account id, new name: the account was renamed since registration.
                    evidence.update(handle_now=handle, handle_registered=registered, renamed=True)
                return LinkResult("user_id", CONFIDENCE["user_id"], account.id, evidence)
            account = self._by_url_user_id.get((platform, author_id))
            if account is not None:
                return LinkResult(
                    "profile_url",
                    CONFIDENCE["profile_url_id"],
                    account.id,
                    {"user_id": author_id, "profile_url": account.profile_url},
                )
        if handle:
            for table, level in ((self._by_handle, "handle"), (self._by_url_handle, "profile_url")):
                account = table.get((platform, handle))
                if account is None:
                    continue
                if _handle_taken(account, author_id, handle, rejected):
                    return None
                if level == "handle":
                    # Only an account id proves the account is the registered one. Reaching here
                    # means no id could be compared: either the post carries none (a registered
                    # id is then no proof: the handle may have passed to someone else) or the
                    # registry has none. Both are the same, unverified handle match.
                    registered_id = account.user_id or account.url_user_id
                    confidence = CONFIDENCE["handle_unverified"]
                    evidence = {"handle": handle, "handle_as_captured": handle_raw}
                    if registered_id and not author_id:
                        evidence["registered_id_not_compared"] = True
                else:
                    confidence = CONFIDENCE["profile_url_handle"]
                    evidence = {"handle": handle, "profile_url": account.profile_url}
                return LinkResult(level, confidence, account.id, evidence)
        if not handle and url:
            from_link = handle_from_permalink(platform, url)
            if from_link:
                account = self._by_handle.get((platform, from_link)) or self._by_url_handle.get(
                    (platform, from_link)
                )
                if account is not None:
                    if _handle_taken(account, author_id, from_link, rejected):
                        return None
                    return LinkResult(
                        "profile_url",
                        CONFIDENCE["permalink_handle"],
                        account.id,
                        {"handle_from_permalink": from_link, "permalink": url},
                    )
        return None

    def _named_phrases(self, bio: str) -> tuple[str, ...]:
        """Registered instansi, unit and region phrases the bio contains (whole words)."""
        bio_text = normalise_place_text(bio)
        named: list[str] = []
        for word in set(bio_text.split()):
            for phrase in self._phrases_by_first.get(word, ()):
                if f" {phrase} " in bio_text:
                    named.append(phrase)
        return tuple(sorted(named))

    def _name_agency(
        self, name: str, named: Sequence[str], platform: str | None
    ) -> LinkResult | None:
        tokens = name_tokens(name)
        if not tokens:
            return None
        near: set[int] = set()
        for phrase in named:
            near |= self._phrase_persons[phrase]
        candidates: set[int] = set()
        for token in tokens:
            posting = self._name_index.get(token)
            if posting:
                candidates |= near & posting
        if not candidates:
            return None
        by_words, joined = " ".join(sorted(tokens)), "".join(tokens)
        best_similarity, best_index = 0.0, -1
        for index in sorted(candidates):
            person = self._persons[index]
            # Same measure as `name_similarity`, on strings prepared once per side.
            similarity = max(fuzz.ratio(by_words, person.joined), fuzz.ratio(joined, person.concat))
            if similarity > best_similarity:
                best_similarity, best_index = similarity, index
        best_similarity /= 100
        if best_index < 0 or best_similarity < self.name_similarity:
            return None
        similarity = best_similarity * 100
        person = self._persons[best_index]
        mentioned = sorted(p for p in person.phrases if p in named)
        kinds = {person.phrases[p] for p in mentioned}
        span = max(1e-9, 1.0 - self.name_similarity)
        closeness = min(1.0, max(0.0, (similarity / 100 - self.name_similarity) / span))
        low, high = CONFIDENCE["name_agency_min"], CONFIDENCE["name_agency_max"]
        agency_named = bool(kinds & {"instansi", "unit_kerja"})
        confidence = low + (high - low) * closeness * (1.0 if agency_named else 0.75)
        same_platform = [a for a in person.accounts if a.platform == platform]
        account = (same_platform or person.accounts)[0]
        return LinkResult(
            "name_agency",
            round(confidence, 3),
            account.id,
            {
                "display_name": name,
                "registered_name": account.nama,
                "name_similarity": round(similarity / 100, 3),
                "bio_mentions": {p: person.phrases[p] for p in mentioned},
                "person_accounts": [a.id for a in person.accounts],
            },
        )

    def _self_declared(self, bio: str, named: Sequence[str]) -> LinkResult | None:
        for found in _SELF_DECLARED.finditer(bio):
            if found.group("neg"):
                continue  # "bukan PNS", "pensiunan PNS": says the opposite
            return LinkResult(
                "self_declared",
                CONFIDENCE["self_declared"],
                None,
                {"bio_says": found.group(0).strip()},
            )
        for phrase in named:
            if phrase in self._instansi_phrases:
                return LinkResult(
                    "self_declared",
                    CONFIDENCE["self_declared_registered_agency"],
                    None,
                    {"bio_names_registered_instansi": phrase},
                )
        return None
