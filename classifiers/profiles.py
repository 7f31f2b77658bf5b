"""Election profiles and contestant masking.

A profile (`config/elections/<id>.toml`) lists one contest's contestants (tickets with their
members, aliases, ballot numbers, hashtags, slogans, parties, campaign teams) and its phases.
`ContestantMasker` turns every mention of any loaded contestant into a generic placeholder
(`__cand__`, `__pair__`, `__slogan__`, `__party__`, `__team__`, `__camptag__`), so the model
learns "praise of a contestant", not "praise of Prabowo", and transfers to a new contest once
its profile is added. Each mention remembers which contestant(s) it named.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

PLACEHOLDERS: tuple[str, ...] = (
    "__cand__",
    "__pair__",
    "__ballot__",
    "__slogan__",
    "__party__",
    "__team__",
    "__camptag__",
)
PROFILE_KINDS: tuple[str, ...] = ("pilpres", "pileg", "pilkada")
# A profile counts as "in season" from this long before its first phase until after voting;
# used only to resolve ambiguous mentions (a ballot number) by a post's date.
SEASON_BEFORE = timedelta(days=365)
SEASON_AFTER = timedelta(days=90)
# Words that may join two member names of one ticket ("Prabowo dan Gibran", "Anies x Imin").
PAIR_CONNECTORS = frozenset({"dan", "x", "n", "and", "bersama", "sama", "ama", "feat"})
MAX_PHRASE_TOKENS = 8
# A text of at least this many words, all in capitals, is shouted: its case says nothing.
SHOUTING_WORDS = 3
# Short all-caps party acronyms that are also everyday abbreviations next to these words:
# "bayar PKB" is the motor-vehicle tax (Pajak Kendaraan Bermotor), not the party.
NOT_A_PARTY_NEAR = frozenset(
    {
        "pajak", "bayar", "membayar", "samsat", "bbnkb", "kendaraan", "motor", "mobil", "stnk",
        "tunggakan", "denda", "pemutihan", "bapenda", "pkb", "swdkllj",
    }
)  # fmt: skip
# Words that say which kind of contest a text is about, for resolving a bare ballot number.
CONTEST_KIND_WORDS: dict[str, str] = {
    # not "presiden": Pilkada posts mention the president too
    **dict.fromkeys(("pilpres", "capres", "cawapres"), "pilpres"),
    **dict.fromkeys(
        (
            "pilkada", "pilgub", "pilbup", "pilwalkot", "cagub", "cawagub", "cabup", "cawabup",
            "cawalkot", "gubernur", "bupati", "walikota",
        ),
        "pilkada",
    ),
    **dict.fromkeys(("pileg", "caleg", "dprd", "dpr", "dpd"), "pileg"),
}  # fmt: skip
_REGION_PREFIX = re.compile(r"^(?:kabupaten|kab|kota|provinsi|prov)\b\.?\s*", re.IGNORECASE)

_PHRASE_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def phrase_tokens(phrase: str) -> tuple[str, ...]:
    """Split an alias or slogan the way the normaliser splits text (letters/digits runs)."""
    return tuple(_PHRASE_TOKEN.findall(phrase.replace("’", "'")))


@dataclass(frozen=True, slots=True)
class Phase:
    """One dated phase of a contest (campaign, quiet_period, voting, ...)."""

    name: str
    start: date
    end: date

    def contains(self, day: date) -> bool:
        """Whether `day` falls inside the phase (inclusive)."""
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Member:
    """One person on a ticket."""

    name: str
    role: str
    aliases: tuple[str, ...]
    case_sensitive: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Contestant:
    """One ticket (paslon) of a contest."""

    id: str
    name: str
    number: int | None
    members: tuple[Member, ...]
    aliases: tuple[str, ...] = ()
    case_sensitive: frozenset[str] = frozenset()
    hashtags: tuple[str, ...] = ()
    slogans: tuple[str, ...] = ()
    parties: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()

    @property
    def people(self) -> tuple[str, ...]:
        """The members' names."""
        return tuple(member.name for member in self.members)


@dataclass(frozen=True, slots=True)
class ElectionProfile:
    """One contest: its contestants and dated phases."""

    id: str
    name: str
    kind: str
    region: str
    phases: tuple[Phase, ...]
    contestants: tuple[Contestant, ...]
    invented: bool = False
    source: Path | None = None
    region_aliases: tuple[str, ...] = ()  # other ways texts name the region ("Jateng")

    @property
    def region_names(self) -> tuple[str, ...]:
        """How a text may name this contest's region ("Jawa Tengah", "Jateng"); none for Pilpres."""
        if self.kind == "pilpres":
            return ()  # "Indonesia" says nothing about which presidential election
        region = re.sub(r"\s*\(.*?\)", "", self.region).strip()
        names = [region, _REGION_PREFIX.sub("", region), *self.region_aliases]
        return tuple(dict.fromkeys(name for name in names if name))

    def phase_on(self, day: date) -> str | None:
        """The phase a day falls in, if any."""
        for phase in self.phases:
            if phase.contains(day):
                return phase.name
        return None

    @property
    def voting_day(self) -> date:
        """The (last) voting day."""
        votes = [phase.end for phase in self.phases if phase.name.startswith("voting")]
        return max(votes) if votes else max(phase.end for phase in self.phases)

    def in_season(self, day: date) -> bool:
        """Whether a post of this day plausibly talks about this contest."""
        start = min(phase.start for phase in self.phases) - SEASON_BEFORE
        return start <= day <= self.voting_day + SEASON_AFTER

    def contestant_by_number(self, number: int) -> Contestant | None:
        """The ticket with this ballot number."""
        for contestant in self.contestants:
            if contestant.number == number:
                return contestant
        return None


# -- loading --------------------------------------------------------------------------------


class _Reader:
    """Typed access to one TOML table that names file and key on error."""

    def __init__(self, data: Mapping[str, Any], path: Path, prefix: str) -> None:
        self.data, self.path, self.prefix = data, path, prefix

    def fail(self, key: str, expected: str) -> ConfigError:
        got = self.data.get(key, "<missing>")
        return ConfigError(f"{self.path}: key {self.prefix}{key}: expected {expected}, got {got!r}")

    def string(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string")
        return value.strip()

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, "a list of non-empty strings")
        return tuple(v.strip() for v in value)

    def day(self, key: str) -> date:
        value = self.data.get(key)
        if not isinstance(value, date) or hasattr(value, "hour"):
            raise self.fail(key, "a date (YYYY-MM-DD)")
        return value

    def tables(self, key: str) -> list[Mapping[str, Any]]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "an array of tables")
        return value

    def check_keys(self, allowed: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise ConfigError(f"{self.path}: unknown key {self.prefix}{unknown[0]}")


def _case_sensitive(reader: _Reader, aliases: Sequence[str]) -> frozenset[str]:
    listed = reader.strings("case_sensitive")
    missing = [alias for alias in listed if alias not in aliases]
    if missing:
        raise reader.fail("case_sensitive", f"only entries of aliases ({missing[0]!r} is not one)")
    return frozenset(listed)


def _member(data: Mapping[str, Any], path: Path, prefix: str) -> Member:
    reader = _Reader(data, path, prefix)
    reader.check_keys(("name", "role", "aliases", "case_sensitive"))
    name = reader.string("name")
    aliases = reader.strings("aliases") or (name,)
    return Member(
        name, reader.string("role", "candidate"), aliases, _case_sensitive(reader, aliases)
    )


def _contestant(data: Mapping[str, Any], path: Path, prefix: str) -> Contestant:
    reader = _Reader(data, path, prefix)
    reader.check_keys(
        (
            "id",
            "name",
            "number",
            "members",
            "aliases",
            "case_sensitive",
            "hashtags",
            "slogans",
            "parties",
            "teams",
        )
    )
    number = data.get("number")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        raise reader.fail("number", "an integer ballot number")
    member_tables = reader.tables("members")
    if not member_tables:
        raise reader.fail("members", "at least one [[contestants.members]] table")
    members = tuple(
        _member(table, path, f"{prefix}members[{i}].") for i, table in enumerate(member_tables)
    )
    aliases = reader.strings("aliases")
    hashtags = tuple(tag.lstrip("#") for tag in reader.strings("hashtags"))
    return Contestant(
        id=reader.string("id"),
        name=reader.string("name"),
        number=number,
        members=members,
        aliases=aliases,
        case_sensitive=_case_sensitive(reader, aliases),
        hashtags=hashtags,
        slogans=reader.strings("slogans"),
        parties=reader.strings("parties"),
        teams=reader.strings("teams"),
    )


def load_profile(path: Path) -> ElectionProfile:
    """Read and validate one election profile file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read election profile: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    reader = _Reader(data, path, "")
    reader.check_keys(
        ("id", "name", "kind", "region", "region_aliases", "invented", "phases", "contestants")
    )
    kind = reader.string("kind")
    if kind not in PROFILE_KINDS:
        raise reader.fail("kind", f"one of {', '.join(PROFILE_KINDS)}")
    phases = []
    for i, table in enumerate(reader.tables("phases")):
        phase_reader = _Reader(table, path, f"phases[{i}].")
        phase_reader.check_keys(("name", "start", "end"))
        phase = Phase(
            phase_reader.string("name"), phase_reader.day("start"), phase_reader.day("end")
        )
        if phase.end < phase.start:
            raise phase_reader.fail("end", f"a date on or after start {phase.start}")
        phases.append(phase)
    if not phases:
        raise reader.fail("phases", "at least one [[phases]] table")
    contestants = tuple(
        _contestant(table, path, f"contestants[{i}].")
        for i, table in enumerate(reader.tables("contestants"))
    )
    if not contestants:
        raise reader.fail("contestants", "at least one [[contestants]] table")
    ids = [c.id for c in contestants]
    numbers = [c.number for c in contestants if c.number is not None]
    if len(set(ids)) != len(ids) or len(set(numbers)) != len(numbers):
        raise ConfigError(f"{path}: contestant ids and ballot numbers must be unique")
    invented = data.get("invented", False)
    if not isinstance(invented, bool):
        raise reader.fail("invented", "true or false")
    return ElectionProfile(
        id=reader.string("id"),
        name=reader.string("name"),
        kind=kind,
        region=reader.string("region"),
        phases=tuple(phases),
        contestants=contestants,
        invented=invented,
        source=path,
        region_aliases=reader.strings("region_aliases"),
    )


def load_profiles(elections_dir: Path, names: Sequence[str] | None = None) -> list[ElectionProfile]:
    """Load every profile in a folder, or only those named (by id or file stem), sorted by id."""
    if not elections_dir.is_dir():
        raise ConfigError(f"{elections_dir}: election profile folder does not exist")
    profiles: dict[str, ElectionProfile] = {}
    stems: dict[str, str] = {}
    for path in sorted(elections_dir.glob("*.toml")):
        profile = load_profile(path)
        if profile.id in profiles:
            raise ConfigError(f"{path}: duplicate election id {profile.id!r}")
        profiles[profile.id] = profile
        stems[path.stem] = profile.id
    if names is None or not names:
        return [profiles[key] for key in sorted(profiles)]
    chosen: list[ElectionProfile] = []
    for name in names:
        key = name if name in profiles else stems.get(name)
        if key is None:
            available = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"unknown election {name!r} in {elections_dir} (available: {available})"
            )
        if profiles[key] not in chosen:
            chosen.append(profiles[key])
    return sorted(chosen, key=lambda profile: profile.id)


# -- masking --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """Who a mention names: a ticket in a profile, and the people (or party) concerned."""

    profile_id: str
    contestant_id: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContestHints:
    """What a text says about which contest it means: regions named, contest kinds, years."""

    regions: frozenset[str] = frozenset()  # ids of profiles whose region the text names
    kinds: frozenset[str] = frozenset()  # "pilpres", "pilkada", "pileg"
    years: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class _Entry:
    placeholder: str
    refs: frozenset[Ref]
    exact: tuple[str, ...] | None = None  # original-case tokens required, if case-sensitive
    person: str | None = None  # for __cand__: which person, to join pairs


@dataclass(slots=True)
class MaskResult:
    """Masked tokens (placeholders replace mentions), their kinds and surfaces, what was found."""

    tokens: list[str]
    kinds: list[str]
    surfaces: list[str]
    refs: list[Ref] = field(default_factory=list)
    lowered: list[str] = field(default_factory=list)  # tokens lower-cased (placeholders as is)


class ContestantMasker:
    """Replace contestant mentions in a token list with generic placeholders."""

    def __init__(self, profiles: Sequence[ElectionProfile]) -> None:
        self.profiles: tuple[ElectionProfile, ...] = tuple(profiles)
        self._phrases: dict[tuple[str, ...], list[_Entry]] = {}
        self._first: dict[str, int] = {}  # first token -> longest phrase length starting with it
        self._hashtags: dict[str, set[Ref]] = {}  # by lower-cased tag
        self._exact_hashtags: dict[str, set[Ref]] = {}  # tags that count only as written
        for profile in self.profiles:
            for contestant in profile.contestants:
                self._add_contestant(profile, contestant)
        self.vocabulary: frozenset[str] = frozenset(
            token for phrase in self._phrases for token in phrase
        )
        self.first_words: frozenset[str] = frozenset(self._first)  # words a mention starts with
        # Region names are hints for ballot numbers only, never masked (kept out of `_phrases`).
        self._regions: dict[tuple[str, ...], set[str]] = {}
        for profile in self.profiles:
            for name in profile.region_names:
                key = tuple(token.lower() for token in phrase_tokens(name))
                if key:
                    self._regions.setdefault(key, set()).add(profile.id)
        self._region_longest = max(map(len, self._regions), default=0)

    def contest_hints(self, lowered: Sequence[str]) -> ContestHints:
        """Regions, contest kinds and years a text's lower-cased tokens mention."""
        regions: set[str] = set()
        kinds: set[str] = set()
        years: set[int] = set()
        for index, token in enumerate(lowered):
            kind = CONTEST_KIND_WORDS.get(token)
            if kind is not None:
                kinds.add(kind)
            elif len(token) == 4 and token.isdigit() and token.startswith("20"):
                years.add(int(token))
            for length in range(1, self._region_longest + 1):
                ids = self._regions.get(tuple(lowered[index : index + length]))
                if ids:
                    regions |= ids
        return ContestHints(frozenset(regions), frozenset(kinds), frozenset(years))

    def _add(
        self, phrase: str, placeholder: str, ref: Ref, case_sensitive: bool, person: str | None
    ) -> None:
        tokens = phrase_tokens(phrase)
        if not tokens or len(tokens) > MAX_PHRASE_TOKENS:
            return
        key = tuple(token.lower() for token in tokens)
        exact = tokens if case_sensitive else None
        entries = self._phrases.setdefault(key, [])
        for index, entry in enumerate(entries):
            if entry.placeholder == placeholder and entry.exact == exact and entry.person == person:
                entries[index] = _Entry(placeholder, entry.refs | {ref}, exact, person)
                break
        else:
            entries.append(_Entry(placeholder, frozenset({ref}), exact, person))
        self._first[key[0]] = max(self._first.get(key[0], 0), len(key))

    def _add_contestant(self, profile: ElectionProfile, contestant: Contestant) -> None:
        ticket = Ref(profile.id, contestant.id, contestant.people)
        for member in contestant.members:
            ref = Ref(profile.id, contestant.id, (member.name,))
            for alias in {member.name, *member.aliases}:
                self._add(alias, "__cand__", ref, alias in member.case_sensitive, member.name)
        for alias in contestant.aliases:
            self._add(alias, "__pair__", ticket, alias in contestant.case_sensitive, None)
        for slogan in contestant.slogans:
            self._add(slogan, "__slogan__", ticket, False, None)
        for team in contestant.teams:
            self._add(team, "__team__", ticket, False, None)
        for party in contestant.parties:
            party_ref = Ref(profile.id, contestant.id, (party,))
            # Short all-caps party acronyms (PAN, PKB) are matched as written: "pan" is a word.
            case_sensitive = party.isupper() and len(party) <= 3
            self._add(party, "__party__", party_ref, case_sensitive, None)
        exact_aliases = set(contestant.case_sensitive).union(
            *(member.case_sensitive for member in contestant.members)
        )
        for tag in contestant.hashtags:
            if tag in exact_aliases:
                # "#AMIN" names the pair; "#amin" is a prayer: the tag counts only as written.
                self._exact_hashtags.setdefault(tag, set()).add(ticket)
            else:
                self._hashtags.setdefault(tag.lower(), set()).add(ticket)

    def hashtag(self, tag: str) -> frozenset[Ref] | None:
        """The contestants a listed campaign hashtag (without '#') belongs to, if listed."""
        refs = self._hashtags.get(tag.lower()) or self._exact_hashtags.get(tag)
        return frozenset(refs) if refs else None

    def _lookup(
        self, tokens: Sequence[str], lowered: Sequence[str], start: int, shouting: bool
    ) -> tuple[int, _Entry] | None:
        longest = self._first.get(lowered[start], 0)
        for length in range(min(longest, len(tokens) - start), 0, -1):
            entries = self._phrases.get(tuple(lowered[start : start + length]))
            if not entries:
                continue
            for entry in entries:
                if entry.exact is None:
                    return length, entry
                if tuple(tokens[start : start + length]) != entry.exact:
                    continue
                if shouting and all(token.isupper() for token in entry.exact):
                    continue  # in a text written all in capitals "AMIN" is also "amen"
                if entry.placeholder == "__party__" and self._near(
                    lowered, start, length, NOT_A_PARTY_NEAR
                ):
                    continue
                return length, entry
        return None

    @staticmethod
    def _near(lowered: Sequence[str], start: int, length: int, words: frozenset[str]) -> bool:
        """Whether the token before or after `lowered[start : start + length]` is in `words`."""
        before = lowered[start - 1] if start > 0 else ""
        after = lowered[start + length] if start + length < len(lowered) else ""
        return before in words or after in words

    def mask(
        self, tokens: Sequence[str], kinds: Sequence[str], lowered: Sequence[str] | None = None
    ) -> MaskResult:
        """Mask mentions among `word` tokens; other kinds (emoji, numbers...) pass through.

        `lowered` (the tokens lower-cased) may be passed when the caller already has it.
        """
        if lowered is None:
            lowered = [token.lower() for token in tokens]
        first = self._first
        hits = [i for i, low in enumerate(lowered) if low in first]
        if not hits:
            return MaskResult(list(tokens), list(kinds), list(tokens), lowered=list(lowered))
        words = [token for token, kind in zip(tokens, kinds, strict=True) if kind == "word"]
        shouting = len(words) >= SHOUTING_WORDS and all(word.isupper() for word in words)
        out = MaskResult([], [], [])
        # (index in out.tokens, entry) of the last person mention, to merge "A dan B" into a pair
        last_person: tuple[int, _Entry] | None = None
        done = 0  # tokens before this index are in `out`
        for i in hits:
            if i < done or kinds[i] != "word":
                continue
            found = self._lookup(tokens, lowered, i, shouting)
            if found is None:
                continue
            if last_person is not None and not all(
                kinds[j] == "word" and lowered[j] in PAIR_CONNECTORS for j in range(done, i)
            ):
                last_person = None
            out.tokens += tokens[done:i]
            out.kinds += kinds[done:i]
            out.surfaces += tokens[done:i]
            out.lowered += lowered[done:i]
            length, entry = found
            surface = " ".join(tokens[i : i + length])
            done = i + length
            if entry.placeholder == "__cand__" and last_person is not None:
                position, previous = last_person
                tickets = {(r.profile_id, r.contestant_id) for r in previous.refs} & {
                    (r.profile_id, r.contestant_id) for r in entry.refs
                }
                if tickets and previous.person != entry.person:
                    pair_surface = " ".join([*out.surfaces[position:], surface])
                    del out.tokens[position:], out.kinds[position:], out.surfaces[position:]
                    del out.lowered[position:]
                    out.tokens.append("__pair__")
                    out.kinds.append("placeholder")
                    out.surfaces.append(pair_surface)
                    out.lowered.append("__pair__")
                    out.refs.extend(
                        Ref(profile_id, contestant_id, ())
                        for profile_id, contestant_id in sorted(tickets)
                    )
                    out.refs.extend(
                        r for r in entry.refs if (r.profile_id, r.contestant_id) in tickets
                    )
                    last_person = None
                    continue
            out.tokens.append(entry.placeholder)
            out.kinds.append("placeholder")
            out.surfaces.append(surface)
            out.lowered.append(entry.placeholder)
            out.refs.extend(sorted(entry.refs, key=lambda r: (r.profile_id, r.contestant_id)))
            last_person = (len(out.tokens) - 1, entry) if entry.placeholder == "__cand__" else None
        out.tokens += tokens[done:]
        out.kinds += kinds[done:]
        out.surfaces += tokens[done:]
        out.lowered += lowered[done:]
        return out


def resolve_ballot(
    number: int,
    masker: ContestantMasker,
    found: Sequence[Ref],
    day: date | None,
    hints: ContestHints | None = None,
) -> list[Ref]:
    """The ticket a ballot number names, when the contest is unambiguous; else nothing.

    The contest is narrowed by the post's date, then by the contestants the text names, then by
    what else it says (`hints`: the region, the kind of contest, the year), and finally to the
    contests that have this number at all. Each step applies only if something is left.
    """
    profiles = list(masker.profiles)
    if len(profiles) > 1 and day is not None:
        profiles = [p for p in profiles if p.in_season(day)] or profiles
    if len(profiles) > 1 and found:
        # The contest named most often wins: "Prabowo" fits three contests, "Gibran" only one.
        votes = Counter(
            ref.profile_id for ref in found if ref.profile_id in {p.id for p in profiles}
        )
        if votes:
            ranked = votes.most_common()
            if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
                profiles = [p for p in profiles if p.id == ranked[0][0]]
    if len(profiles) > 1 and hints is not None:
        # Names beat these hints: "Ganjar nomor 3 ... Jawa Tengah" is still Pilpres 2024.
        for keep in (
            lambda p: p.id in hints.regions,
            lambda p: p.kind in hints.kinds,
            lambda p: p.voting_day.year in hints.years,
        ):
            profiles = [p for p in profiles if keep(p)] or profiles
    if len(profiles) > 1:
        profiles = [p for p in profiles if p.contestant_by_number(number)] or profiles
    if len(profiles) != 1:
        return []
    contestant = profiles[0].contestant_by_number(number)
    if contestant is None:
        return []
    return [Ref(profiles[0].id, contestant.id, contestant.people)]
