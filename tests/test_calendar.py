"""Election calendar: phases, per-phase rules, validation that names the key, the trigger."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.calendar import (
    ElectionCalendar,
    Phase,
    Rule,
    build_trigger,
    canonical_phase,
    load_calendar,
    source_plan,
    validate_schedule,
)
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WIB = ZoneInfo("Asia/Jakarta")

PHASES = """
[[schedule.phases]]
name = "kampanye"
start = 2024-01-01
end = 2024-02-10
[[schedule.phases]]
name = "masa_tenang"
start = 2024-02-11
end = 2024-02-13
[[schedule.phases]]
name = "voting"
start = 2024-02-14
end = 2024-02-14
"""


def write_config(tmp_path: Path, text: str, name: str = "netra.toml") -> Config:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def wib(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=WIB)  # type: ignore[misc]


def fire_times(trigger: object, start: datetime, until: datetime) -> list[datetime]:
    """Successive fire times the way APScheduler asks for them."""
    times: list[datetime] = []
    current = trigger.get_next_fire_time(None, start)  # type: ignore[attr-defined]
    while current is not None and current < until:
        times.append(current)
        current = trigger.get_next_fire_time(current, current)  # type: ignore[attr-defined]
    return times


def test_indonesian_phase_names_are_aliases() -> None:
    assert canonical_phase("masa_tenang", "k", "f") == "quiet_period"
    assert canonical_phase("Masa Tenang", "k", "f") == "quiet_period"
    assert canonical_phase("kampanye", "k", "f") == "campaign"
    assert canonical_phase("campaign_round2", "k", "f") == "campaign"
    assert canonical_phase("masa_tenang_putaran_2", "k", "f") == "quiet_period"
    assert canonical_phase("pre-campaign", "k", "f") == "pre_campaign"
    with pytest.raises(ConfigError, match="'k': unknown phase 'masa_tenag'"):
        canonical_phase("masa_tenag", "k", "f")


def test_phase_at_uses_local_days_in_wib(tmp_path: Path) -> None:
    calendar = load_calendar(write_config(tmp_path, PHASES))
    assert [p.name for p in calendar.phases] == ["campaign", "quiet_period", "voting"]
    # 2024-02-10 23:59 WIB is still the campaign although it is 16:59 UTC.
    assert calendar.phase_at(wib(2024, 2, 10, 23, 59)) == "campaign"
    assert calendar.phase_at(datetime(2024, 2, 10, 17, 0, tzinfo=UTC)) == "quiet_period"
    assert calendar.phase_at(wib(2024, 2, 14, 12)) == "voting"
    assert calendar.phase_at(wib(2024, 2, 15)) is None
    assert calendar.phase_at(wib(2023, 12, 31, 23)) is None


def test_rule_precedence(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        PHASES
        + """
[schedule]
default_interval_minutes = 1440
phase_intervals = { campaign = 60, quiet_period = 15 }

[[sources]]
name = "plain"
platform = "file"

[[sources]]
name = "own"
platform = "file"
schedule = { interval_minutes = 30 }

[[sources]]
name = "phased"
platform = "file"
schedule = { cron = "0 */6 * * *", phases = { masa_tenang = 5, pencoblosan = "*/10 * * * *" } }
""",
    )
    plain, own, phased = (source_plan(config, s) for s in config.sources)
    assert plain.rule(None) == Rule(interval_minutes=1440)
    assert plain.rule("campaign") == Rule(interval_minutes=60)
    assert plain.rule("quiet_period") == Rule(interval_minutes=15)
    assert plain.rule("counting") == Rule(interval_minutes=1440)
    # The source's own setting beats the shared phase table.
    assert own.rule("campaign") == own.rule("quiet_period") == Rule(interval_minutes=30)
    assert phased.rule("quiet_period") == Rule(interval_minutes=5)
    assert phased.rule("voting") == Rule(cron="*/10 * * * *")
    assert phased.rule("campaign") == phased.rule(None) == Rule(cron="0 */6 * * *")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            '[[sources]]\nname = "a"\nplatform = "file"\nschedule = { cron = "61 * * * *" }\n',
            "sources[0].schedule.cron",
        ),
        (
            '[[sources]]\nname = "a"\nplatform = "file"\n'
            '[[sources]]\nname = "b"\nplatform = "file"\n'
            "schedule = { phases = { masa_tenag = 15 } }\n",
            "sources[1].schedule.phases.masa_tenag",
        ),
        (
            '[[sources]]\nname = "a"\nplatform = "file"\n'
            'schedule = { phases = { kampanye = "every hour" } }\n',
            "sources[0].schedule.phases.kampanye",
        ),
        (
            '[[sources]]\nname = "a"\nplatform = "file"\nschedule = { interval_minutes = 0 }\n',
            "sources[0].schedule.interval_minutes",
        ),
        (
            '[[sources]]\nname = "a"\nplatform = "file"\n'
            'schedule = { interval_minutes = 5, cron = "* * * * *" }\n',
            "sources[0].schedule.cron",
        ),
        (
            '[[sources]]\nname = "a"\nplatform = "file"\nschedule = { every = 5 }\n',
            "sources[0].schedule.every",
        ),
        ('[schedule]\nexport_cron = "0 25 * * *"\n', "schedule.export_cron"),
        ('[schedule]\npurge_cron = "bukan cron"\n', "schedule.purge_cron"),
        (
            "[schedule]\nphase_intervals = { kampanye = 60, hitung = 5 }\n",
            "schedule.phase_intervals.hitung",
        ),
        ('[schedule]\ntimezone = "Asia/Bandung"\n', "schedule.timezone"),
        ('[schedule]\nelection = "pilkada-atlantis-2099"\n', "schedule.election"),
        (
            '[schedule]\nelection = "pilpres-2024"\n' + PHASES,
            "schedule.phases",
        ),
        (
            PHASES.replace("end = 2024-02-13", "end = 2024-02-14"),
            "schedule.phases[2].start",
        ),
        (
            PHASES.replace("end = 2024-02-10", "end = 2023-12-01"),
            "schedule.phases[0].end",
        ),
        (
            PHASES.replace('name = "voting"', 'name = "perayaan"'),
            "schedule.phases[2].name",
        ),
        ('[[schedule.phases]]\nname = "campaign"\nstart = 2024-01-01\n', "schedule.phases[0].end"),
    ],
)
def test_invalid_schedule_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")) as info:
        validate_schedule(config)
    assert "netra.toml" in str(info.value)


def test_overlap_in_a_profile_names_the_profile_file(tmp_path: Path) -> None:
    elections = tmp_path / "elections"
    elections.mkdir()
    (elections / "pilkada-contoh.toml").write_text(
        'id = "pilkada-contoh"\n'
        '[[phases]]\nname = "campaign"\nstart = 2024-09-25\nend = 2024-11-24\n'
        '[[phases]]\nname = "quiet_period"\nstart = 2024-11-24\nend = 2024-11-26\n',
        encoding="utf-8",
    )
    config = write_config(
        tmp_path,
        f'[paths]\nelections_dir = "{elections}"\n[schedule]\nelection = "pilkada-contoh"\n',
    )
    with pytest.raises(ConfigError) as info:
        validate_schedule(config)
    message = str(info.value)
    assert "pilkada-contoh.toml" in message
    assert "'phases[1].start'" in message
    assert "overlaps phase 'campaign'" in message


def test_profile_found_by_id_when_the_file_is_named_otherwise(tmp_path: Path) -> None:
    elections = tmp_path / "elections"
    elections.mkdir()
    (elections / "contoh.toml").write_text(
        'id = "pilkada-contoh-2024"\n'
        '[[phases]]\nname = "masa_tenang"\nstart = 2024-11-24\nend = 2024-11-26\n',
        encoding="utf-8",
    )
    config = write_config(
        tmp_path,
        f'[paths]\nelections_dir = "{elections}"\n[schedule]\nelection = "pilkada-contoh-2024"\n',
    )
    calendar = load_calendar(config)
    assert calendar.phases == (Phase("quiet_period", date(2024, 11, 24), date(2024, 11, 26)),)
    assert calendar.origin.endswith("contoh.toml")


@pytest.mark.parametrize(
    "profile", sorted(p.stem for p in (PROJECT_ROOT / "config" / "elections").glob("*.toml"))
)
def test_bundled_profiles_give_valid_calendars(tmp_path: Path, profile: str) -> None:
    config = write_config(
        tmp_path,
        f'[paths]\nelections_dir = "{PROJECT_ROOT / "config" / "elections"}"\n'
        f'[schedule]\nelection = "{profile}"\n',
    )
    calendar, _plans = validate_schedule(config)
    assert calendar.phases, profile
    starts = [phase.start for phase in calendar.phases]
    assert starts == sorted(starts)


def test_single_classifier_election_is_the_calendar(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[paths]\nelections_dir = "{PROJECT_ROOT / "config" / "elections"}"\n'
        '[classifier]\nelections = ["pilpres-2024"]\n',
    )
    calendar = load_calendar(config)
    assert calendar.phase_at(wib(2024, 2, 12, 9)) == "quiet_period"
    assert calendar.phase_at(wib(2024, 2, 14, 9)) == "voting"


def test_no_calendar_means_one_rule_everywhere(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[[sources]]\nname = "a"\nplatform = "file"\n')
    calendar, plans = validate_schedule(config)
    assert calendar.phases == ()
    trigger = build_trigger(calendar, plans["a"])
    start = wib(2024, 2, 1)
    assert fire_times(trigger, start, start + timedelta(days=3)) == [
        start,
        start + timedelta(days=1),
        start + timedelta(days=2),
    ]


def _trigger(tmp_path: Path, schedule: str, extra: str = "") -> object:
    config = write_config(
        tmp_path,
        PHASES
        + "[schedule]\ndefault_interval_minutes = 1440\n"
        + "phase_intervals = { campaign = 60, quiet_period = 15, voting = 30 }\n"
        + extra
        + f'[[sources]]\nname = "a"\nplatform = "file"\nschedule = {schedule}\n',
    )
    calendar, plans = validate_schedule(config)
    return build_trigger(calendar, plans["a"])


def test_trigger_switches_interval_at_the_phase_boundary(tmp_path: Path) -> None:
    trigger = _trigger(tmp_path, "{}")
    times = fire_times(trigger, wib(2024, 2, 10, 21, 30), wib(2024, 2, 11, 0, 50))
    assert times == [
        wib(2024, 2, 10, 21, 30),
        wib(2024, 2, 10, 22, 30),
        wib(2024, 2, 10, 23, 30),
        # masa tenang starts at midnight WIB: first run then, every 15 minutes after.
        wib(2024, 2, 11, 0, 0),
        wib(2024, 2, 11, 0, 15),
        wib(2024, 2, 11, 0, 30),
        wib(2024, 2, 11, 0, 45),
    ]
    # After voting day nothing is dated: daily from the boundary.
    after = fire_times(trigger, wib(2024, 2, 14, 23, 0), wib(2024, 2, 17, 1))
    assert after == [
        wib(2024, 2, 14, 23, 0),
        wib(2024, 2, 14, 23, 30),
        wib(2024, 2, 15, 0, 0),
        wib(2024, 2, 16, 0, 0),
        wib(2024, 2, 17, 0, 0),
    ]


def test_trigger_with_cron_in_one_phase(tmp_path: Path) -> None:
    trigger = _trigger(tmp_path, '{ phases = { masa_tenang = "5,35 * * * *" } }')
    times = fire_times(trigger, wib(2024, 2, 10, 23, 10), wib(2024, 2, 11, 1, 10))
    assert times == [
        wib(2024, 2, 10, 23, 10),
        wib(2024, 2, 11, 0, 5),
        wib(2024, 2, 11, 0, 35),
        wib(2024, 2, 11, 1, 5),
    ]


def test_no_extra_run_where_the_rule_does_not_change(tmp_path: Path) -> None:
    trigger = _trigger(tmp_path, "{ interval_minutes = 45 }")
    times = fire_times(trigger, wib(2024, 2, 10, 23, 0), wib(2024, 2, 11, 1, 0))
    assert times == [wib(2024, 2, 10, 23, 0), wib(2024, 2, 10, 23, 45), wib(2024, 2, 11, 0, 30)]


def test_trigger_survives_pickling_and_compares_by_value(tmp_path: Path) -> None:
    trigger = _trigger(tmp_path, "{}")
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy == trigger
    moment = wib(2024, 2, 10, 23, 30)
    assert copy.get_next_fire_time(moment, moment) == wib(2024, 2, 11)
    assert _trigger(tmp_path, "{ interval_minutes = 20 }") != trigger


def test_calendar_spans_cover_gaps() -> None:
    calendar = ElectionCalendar(
        (
            Phase("campaign", date(2024, 1, 1), date(2024, 1, 2)),
            Phase("voting", date(2024, 1, 5), date(2024, 1, 5)),
        )
    )
    spans = calendar.spans()
    assert [phase for _, _, phase in spans] == [None, "campaign", None, "voting", None]
    assert spans[2][0] == wib(2024, 1, 3) and spans[2][1] == wib(2024, 1, 5)


def test_example_schedule_config_is_valid() -> None:
    config = load_config(PROJECT_ROOT / "config" / "schedule.example.toml", environ={})
    calendar, plans = validate_schedule(config)
    assert calendar.phase_at(wib(2024, 11, 25, 9)) == "quiet_period"
    assert plans["mastodon-pilkada"].rule("quiet_period") == Rule(interval_minutes=15)
    assert plans["berita"].rule("quiet_period") == Rule(interval_minutes=30)
    assert plans["youtube-debat"].rule("voting") == Rule(cron="*/30 * * * *")
    assert plans["youtube-debat"].rule("campaign") == Rule(cron="0 7,19 * * *")
