"""The election calendar: dated phases, how often each source runs in each phase, and a trigger.

Phases come from the election profile named by `schedule.election` (its `[[phases]]` tables),
or from inline `[[schedule.phases]]` in the config; dates are inclusive days in
`schedule.timezone` (WIB by default). How often a source runs, most specific first:

1. the source's own per-phase setting: `schedule = {phases = {masa_tenang = 15}}`
   (minutes, or a cron expression string);
2. the source's own `schedule = {interval_minutes = 60}` or `{cron = "*/15 * * * *"}`;
3. `schedule.phase_intervals` for the current phase (minutes);
4. `schedule.default_interval_minutes`.

`PhasedTrigger` is an APScheduler trigger over that whole timeline, so a phase switch needs no
rescheduling: the first run of a new phase is at its start (or its first cron time).
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from pipeline.config import Config, SourceConfig
from pipeline.errors import ConfigError

# Chronological order of an Indonesian election's stages.
PHASES: tuple[str, ...] = (
    "pre_campaign",
    "nomination",
    "campaign",
    "quiet_period",
    "voting",
    "counting",
)
# What supervisors call the stages, accepted wherever a phase is named.
PHASE_ALIASES: dict[str, str] = {
    "pra_kampanye": "pre_campaign",
    "pencalonan": "nomination",
    "pendaftaran": "nomination",
    "kampanye": "campaign",
    "masa_tenang": "quiet_period",
    "pemungutan_suara": "voting",
    "pencoblosan": "voting",
    "penghitungan": "counting",
    "rekapitulasi": "counting",
}
_ROUND_SUFFIX = re.compile(r"_(?:round|putaran)_?\d+$")
SOURCE_SCHEDULE_KEYS: tuple[str, ...] = ("interval_minutes", "cron", "phases")


def canonical_phase(name: object, key: str, origin: str) -> str:
    """The canonical phase for a name or alias; ConfigError naming `key` when unknown."""
    if not isinstance(name, str):
        raise ConfigError(f"{origin}: key {key!r}: expected a phase name, got {name!r}")
    normal = name.strip().lower().replace("-", "_").replace(" ", "_")
    # A second round (`campaign_round2`, `masa_tenang_putaran_2`) runs like the first one.
    normal = _ROUND_SUFFIX.sub("", normal)
    normal = PHASE_ALIASES.get(normal, normal)
    if normal not in PHASES:
        known = ", ".join([*PHASES, *PHASE_ALIASES])
        raise ConfigError(
            f"{origin}: key {key!r}: unknown phase {name!r} (expected one of: {known})"
        )
    return normal


def parse_timezone(name: str, origin: str) -> ZoneInfo:
    """The zone `schedule.timezone` names."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"{origin}: key 'schedule.timezone': unknown time zone {name!r} "
            "(expected an IANA name such as Asia/Jakarta)"
        ) from exc


# -- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """How often to run: every `interval_minutes`, or at the times of a cron expression."""

    interval_minutes: int | None = None
    cron: str | None = None

    def describe(self) -> str:
        """`every 60 min` or `cron '*/15 * * * *'`."""
        return f"cron {self.cron!r}" if self.cron else f"every {self.interval_minutes} min"

    def cron_trigger(self, zone: ZoneInfo) -> CronTrigger:
        """The APScheduler cron trigger of a cron rule."""
        assert self.cron is not None
        return CronTrigger.from_crontab(self.cron, timezone=zone)

    def next_after(self, previous: datetime, zone: ZoneInfo) -> datetime:
        """The run after one at `previous`."""
        if self.cron:
            return _cron_next(self.cron_trigger(zone), previous, previous)
        assert self.interval_minutes is not None
        return previous + timedelta(minutes=self.interval_minutes)

    def first_from(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first run at or after `moment` when nothing ran before in this rule."""
        if self.cron:
            return _cron_next(self.cron_trigger(zone), None, moment)
        return moment


def _cron_next(trigger: CronTrigger, previous: datetime | None, now: datetime) -> datetime:
    found = trigger.get_next_fire_time(previous, now)
    if found is None:  # a crontab has no end date, so this cannot happen; fail loudly if it does
        raise ConfigError(f"cron expression {trigger} has no next run time")
    return found


def parse_rule(value: object, key: str, origin: str, zone: ZoneInfo) -> Rule:
    """A rule from minutes (integer) or a cron expression (string); ConfigError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(
            f"{origin}: key {key!r}: expected minutes (an integer) or a cron expression "
            f"(a string), got {value!r}"
        )
    if isinstance(value, int):
        return Rule(interval_minutes=check_minutes(value, key, origin))
    return Rule(cron=check_cron(value, key, origin, zone))


def check_minutes(value: object, key: str, origin: str) -> int:
    """An interval in whole minutes, at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{origin}: key {key!r}: expected whole minutes >= 1, got {value!r}")
    return value


def check_cron(value: object, key: str, origin: str, zone: ZoneInfo) -> str:
    """A valid five-field crontab expression."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{origin}: key {key!r}: expected a cron expression, got {value!r}")
    try:
        CronTrigger.from_crontab(value.strip(), timezone=zone)
    except ValueError as exc:
        raise ConfigError(
            f"{origin}: key {key!r}: invalid cron expression {value!r} "
            f"(minute hour day month weekday): {exc}"
        ) from exc
    return value.strip()


# -- phases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One dated phase; `start` and `end` are inclusive local days."""

    name: str
    start: date
    end: date


@dataclass(frozen=True)
class ElectionCalendar:
    """The phases in force, in a time zone; `origin` says where they were read from."""

    phases: tuple[Phase, ...] = ()
    timezone: str = "Asia/Jakarta"
    origin: str = "no election calendar"

    @cached_property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return ZoneInfo(self.timezone)

    def local_midnight(self, day: date) -> datetime:
        """The aware instant a local day starts."""
        return datetime.combine(day, time(0), tzinfo=self.zone)

    def phase_at(self, moment: datetime) -> str | None:
        """The phase in force at an instant, or None outside every phase."""
        day = moment.astimezone(self.zone).date()
        for phase in self.phases:
            if phase.start <= day <= phase.end:
                return phase.name
        return None

    def spans(self) -> list[tuple[datetime | None, datetime | None, str | None]]:
        """The whole timeline as contiguous (start, end, phase) spans; None ends are open."""
        spans: list[tuple[datetime | None, datetime | None, str | None]] = []
        cursor: datetime | None = None
        for phase in self.phases:
            start = self.local_midnight(phase.start)
            end = self.local_midnight(phase.end + timedelta(days=1))
            if cursor is None or start > cursor:
                spans.append((cursor, start, None))
            spans.append((start, end, phase.name))
            cursor = end
        spans.append((cursor, None, None))
        return spans


def _day(value: object, key: str, origin: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{origin}: key {key!r}: expected a date (YYYY-MM-DD), got {value!r}")


def parse_phases(raw: Sequence[Any], origin: str, prefix: str) -> tuple[Phase, ...]:
    """Validated phases from `[[phases]]` tables: known names, start <= end, no overlap."""
    phases: list[tuple[Phase, int]] = []
    for index, table in enumerate(raw):
        key = f"{prefix}[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{origin}: key {key!r}: expected a table with name, start, end")
        unknown = sorted(set(table) - {"name", "start", "end"})
        if unknown:
            raise ConfigError(f"{origin}: unknown key {f'{key}.{unknown[0]}'!r}")
        for needed in ("name", "start", "end"):
            if needed not in table:
                raise ConfigError(f"{origin}: missing required key {f'{key}.{needed}'!r}")
        name = canonical_phase(table["name"], f"{key}.name", origin)
        start = _day(table["start"], f"{key}.start", origin)
        end = _day(table["end"], f"{key}.end", origin)
        if end < start:
            raise ConfigError(
                f"{origin}: key {f'{key}.end'!r}: {end} is before the phase's start {start}"
            )
        phases.append((Phase(name, start, end), index))
    phases.sort(key=lambda item: item[0].start)
    for (before, _), (after, index) in itertools.pairwise(phases):
        if after.start <= before.end:
            raise ConfigError(
                f"{origin}: key {f'{prefix}[{index}].start'!r}: phase {after.name!r} "
                f"({after.start} – {after.end}) overlaps phase {before.name!r} "
                f"({before.start} – {before.end})"
            )
    return tuple(phase for phase, _ in phases)


def find_profile(elections_dir: Path, name: str) -> Path | None:
    """The profile file for an election id or file stem (or a path to a .toml file)."""
    direct = Path(name)
    if direct.suffix == ".toml" and direct.is_file():
        return direct
    by_stem = elections_dir / f"{name}.toml"
    if by_stem.is_file():
        return by_stem
    if not elections_dir.is_dir():
        return None
    for path in sorted(elections_dir.glob("*.toml")):
        try:
            with open(path, "rb") as handle:
                if tomllib.load(handle).get("id") == name:
                    return path
        except (OSError, tomllib.TOMLDecodeError):
            continue  # the classifier's profile loader reports broken profiles
    return None


def read_profile_phases(path: Path) -> list[Any]:
    """The raw `[[phases]]` tables of an election profile."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read election profile: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    phases = data.get("phases", [])
    if not isinstance(phases, list):
        raise ConfigError(f"{path}: key 'phases': expected an array of tables [[phases]]")
    return phases


def _origin(config: Config) -> str:
    return str(config.source_file) if config.source_file else "<config>"


def load_calendar(config: Config) -> ElectionCalendar:
    """The election calendar the config selects (empty when it selects none)."""
    origin = _origin(config)
    settings = config.schedule
    parse_timezone(settings.timezone, origin)
    if settings.phases and settings.election:
        raise ConfigError(
            f"{origin}: key 'schedule.phases': set either schedule.election (a profile's "
            "phases) or inline [[schedule.phases]], not both"
        )
    if settings.phases:
        phases = parse_phases(settings.phases, origin, "schedule.phases")
        return ElectionCalendar(phases, settings.timezone, f"{origin} [schedule.phases]")
    name, key = settings.election, "schedule.election"
    if name is None and len(config.classifier.elections) == 1:
        name, key = config.classifier.elections[0], "classifier.elections[0]"
    if name is None:
        return ElectionCalendar((), settings.timezone)
    path = find_profile(config.paths.elections_dir, name)
    if path is None:
        raise ConfigError(
            f"{origin}: key {key!r}: no election profile {name!r} in {config.paths.elections_dir}"
        )
    phases = parse_phases(read_profile_phases(path), str(path), "phases")
    return ElectionCalendar(phases, settings.timezone, str(path))


# -- per-source plans -------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcePlan:
    """A source's rule in every phase (None = outside all phases)."""

    source: str
    rules: dict[str | None, Rule] = field(default_factory=dict)

    def rule(self, phase: str | None) -> Rule:
        """The rule in force during `phase`."""
        return self.rules[phase]


def _phase_table(value: object, key: str, origin: str, zone: ZoneInfo) -> dict[str, Rule]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{origin}: key {key!r}: expected a table of phase = minutes or cron")
    table: dict[str, Rule] = {}
    for name, setting in value.items():
        phase = canonical_phase(name, f"{key}.{name}", origin)
        if phase in table:
            raise ConfigError(f"{origin}: key {f'{key}.{name}'!r}: phase {phase!r} set twice")
        table[phase] = parse_rule(setting, f"{key}.{name}", origin, zone)
    return table


def global_phase_rules(config: Config) -> dict[str, Rule]:
    """`schedule.phase_intervals`, validated."""
    origin = _origin(config)
    rules: dict[str, Rule] = {}
    for name, minutes in config.schedule.phase_intervals.items():
        key = f"schedule.phase_intervals.{name}"
        phase = canonical_phase(name, key, origin)
        if phase in rules:
            raise ConfigError(f"{origin}: key {key!r}: phase {phase!r} set twice")
        rules[phase] = Rule(interval_minutes=check_minutes(minutes, key, origin))
    return rules


def source_plan(config: Config, source: SourceConfig, index: int | None = None) -> SourcePlan:
    """Resolve a source's rule for every phase; ConfigError names the bad schedule key."""
    origin = _origin(config)
    zone = parse_timezone(config.schedule.timezone, origin)
    if index is None:
        index = next(i for i, item in enumerate(config.sources) if item.name == source.name)
    prefix = f"sources[{index}].schedule"
    settings = source.schedule
    unknown = sorted(set(settings) - set(SOURCE_SCHEDULE_KEYS))
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key {f'{prefix}.{unknown[0]}'!r} "
            f"(expected one of: {', '.join(SOURCE_SCHEDULE_KEYS)})"
        )
    if "interval_minutes" in settings and "cron" in settings:
        raise ConfigError(
            f"{origin}: key {f'{prefix}.cron'!r}: set interval_minutes or cron, not both"
        )
    own: Rule | None = None
    if "interval_minutes" in settings:
        key = f"{prefix}.interval_minutes"
        own = Rule(interval_minutes=check_minutes(settings["interval_minutes"], key, origin))
    elif "cron" in settings:
        own = Rule(cron=check_cron(settings["cron"], f"{prefix}.cron", origin, zone))
    own_phases = _phase_table(settings.get("phases", {}), f"{prefix}.phases", origin, zone)
    shared = global_phase_rules(config)
    default = Rule(
        interval_minutes=check_minutes(
            config.schedule.default_interval_minutes, "schedule.default_interval_minutes", origin
        )
    )
    rules: dict[str | None, Rule] = {None: own or default}
    for phase in PHASES:
        rules[phase] = own_phases.get(phase) or own or shared.get(phase) or default
    return SourcePlan(source.name, rules)


def validate_schedule(config: Config) -> tuple[ElectionCalendar, dict[str, SourcePlan]]:
    """Check every scheduling setting; returns the calendar and a plan per enabled source."""
    origin = _origin(config)
    zone = parse_timezone(config.schedule.timezone, origin)
    calendar = load_calendar(config)
    global_phase_rules(config)
    for key in ("misfire_grace_seconds", "lease_seconds", "retry_base_seconds"):
        if getattr(config.schedule, key) < 1:
            raise ConfigError(f"{origin}: key 'schedule.{key}': expected an integer >= 1")
    if config.schedule.retry_max_seconds < config.schedule.retry_base_seconds:
        raise ConfigError(
            f"{origin}: key 'schedule.retry_max_seconds': expected at least "
            f"schedule.retry_base_seconds ({config.schedule.retry_base_seconds})"
        )
    for key in ("export_cron", "purge_cron"):
        value = getattr(config.schedule, key)
        if value:  # an empty string turns the maintenance job off
            check_cron(value, f"schedule.{key}", origin, zone)
    plans = {
        source.name: source_plan(config, source, index)
        for index, source in enumerate(config.sources)
    }
    return calendar, {name: plan for name, plan in plans.items() if config.source(name).enabled}


# -- the trigger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stretch of time with one rule; None ends are open."""

    start: datetime | None
    end: datetime | None
    rule: Rule
    phase: str | None


def segments_for(calendar: ElectionCalendar, plan: SourcePlan) -> tuple[Segment, ...]:
    """The calendar's spans with the plan's rules, neighbours with the same rule merged."""
    merged: list[Segment] = []
    for start, end, phase in calendar.spans():
        rule = plan.rule(phase)
        if merged and merged[-1].rule == rule:
            # Same rule on both sides: no boundary, so the interval runs on undisturbed.
            merged[-1] = Segment(merged[-1].start, end, rule, merged[-1].phase)
        else:
            merged.append(Segment(start, end, rule, phase))
    return tuple(merged)


class PhasedTrigger(BaseTrigger):
    """APScheduler trigger whose rule follows the election phases (picklable, comparable)."""

    def __init__(self, segments: Sequence[Segment], timezone: str) -> None:
        self.segments = tuple(segments)
        self.timezone = timezone

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PhasedTrigger)
            and self.segments == other.segments
            and self.timezone == other.timezone
        )

    def __hash__(self) -> int:
        return hash((self.segments, self.timezone))

    def __getstate__(self) -> dict[str, Any]:
        return {"segments": self.segments, "timezone": self.timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.segments = state["segments"]
        self.timezone = state["timezone"]

    def __str__(self) -> str:
        return "phased[" + "; ".join(self._describe(item) for item in self.segments) + "]"

    def __repr__(self) -> str:
        return f"<PhasedTrigger {self}>"

    @staticmethod
    def _describe(segment: Segment) -> str:
        start = segment.start.date().isoformat() if segment.start else "…"
        end = segment.end.date().isoformat() if segment.end else "…"
        return f"{start}–{end}: {segment.rule.describe()}"

    def segment_at(self, moment: datetime) -> int:
        """Index of the segment containing an instant."""
        for index, segment in enumerate(self.segments):
            if segment.end is None or moment < segment.end:
                return index
        return len(self.segments) - 1

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """Next run: the current rule, or the next segment's first run if that comes first."""
        zone = ZoneInfo(self.timezone)
        if previous_fire_time is None:
            index = self.segment_at(now)
            candidate = self.segments[index].rule.first_from(now, zone)
        else:
            index = self.segment_at(previous_fire_time)
            candidate = self.segments[index].rule.next_after(previous_fire_time, zone)
        while True:
            end = self.segments[index].end
            if end is None or candidate < end:
                return candidate.astimezone(zone)
            index += 1
            candidate = self.segments[index].rule.first_from(end, zone)


def build_trigger(calendar: ElectionCalendar, plan: SourcePlan) -> PhasedTrigger:
    """The trigger of one source's job."""
    return PhasedTrigger(segments_for(calendar, plan), calendar.timezone)
