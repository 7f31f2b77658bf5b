"""Typed, validated configuration.

Precedence: built-in defaults < TOML file < environment (`NETRA_<SECTION>_<KEY>`, e.g.
`NETRA_DATABASE_URL`; a list setting takes comma-separated values) < CLI flags (applied by the
caller with `Config.with_overrides`). The file is parsed once at start-up into frozen
dataclasses; an invalid setting raises `ConfigError` naming where it came from (the file or the
environment variable), the key and what was expected. Secrets are never read from the file: a
source names the *environment variable* that holds its credential, and an error never repeats
the value of a variable that may hold one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "NETRA_"
# An environment variable whose name says it may hold a secret: its value is never repeated in
# an error (a database or webhook URL can carry a password or a token).
SECRET_MARKERS: tuple[str, ...] = ("TOKEN", "PASSWORD", "KEY", "SECRET", "URL")


def _project_path(relative: str) -> Path:
    """A bundled folder of the checkout when present (editable install), else relative to cwd."""
    candidate = PROJECT_ROOT / relative
    return candidate if candidate.exists() else Path(relative)


@dataclass(frozen=True)
class DatabaseConfig:
    """Where the store lives: SQLite path URL by default, PostgreSQL by URL."""

    url: str = "sqlite:///data/netra.db"
    echo: bool = False


@dataclass(frozen=True)
class PathsConfig:
    """Folders for models, election profiles and outputs."""

    models_dir: Path = field(default_factory=lambda: _project_path("models"))
    elections_dir: Path = field(default_factory=lambda: _project_path("config/elections"))
    output_dir: Path = Path("out")
    debug_dir: Path = Path("data/debug")


@dataclass(frozen=True)
class HttpConfig:
    """The shared HTTP policy every collector uses."""

    user_agent: str = "Netra/0.1 (ASN neutrality monitoring; contact: set http.user_agent)"
    timeout_seconds: float = 20.0
    max_retries: int = 4
    backoff_seconds: float = 1.0
    concurrency: int = 8
    respect_robots: bool = True


@dataclass(frozen=True)
class SourceConfig:
    """One configured source: a platform and the targets to watch on it."""

    name: str
    platform: str
    targets: tuple[str, ...] = ()
    base_url: str | None = None
    limit: int | None = None
    page_budget: int | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    rate_limit_per_second: float | None = None
    enabled: bool = True


@dataclass(frozen=True)
class ClassifierConfig:
    """Which model and election profiles score posts."""

    model_version: str | None = None
    elections: tuple[str, ...] = ()
    batch_size: int = 1000
    # An authority's own operating threshold (from `netra evaluate` on its labelled posts);
    # None = the threshold stored with the model. Stored with every score it labels.
    threshold: float | None = None


LINK_LEVELS: tuple[str, ...] = ("user_id", "handle", "profile_url", "name_agency", "self_declared")


@dataclass(frozen=True)
class LinkingConfig:
    """Which registry-link levels may put an item in the review queue."""

    queue_levels: tuple[str, ...] = ("user_id", "handle", "profile_url", "name_agency")
    name_similarity: float = 0.88


@dataclass(frozen=True)
class RetentionConfig:
    """How long unlinked, unqueued posts are kept (UU PDP: no longer than needed)."""

    days: int = 30


@dataclass(frozen=True)
class RetrainConfig:
    """Model retraining and promotion policy."""

    target_precision: float = 0.9
    tolerance: float = 0.01
    min_new_labels: int = 20
    seed: int = 20240214
    # Fewer evaluation rows unseen by both models than this: no automatic promotion.
    min_eval_rows: int = 30


@dataclass(frozen=True)
class WebhookConfig:
    """Optional notifications; the secret comes from an environment variable."""

    url: str | None = None
    secret_env: str = "NETRA_WEBHOOK_SECRET"
    min_priority: float = 0.8
    failure_threshold: int = 3


@dataclass(frozen=True)
class ScheduleConfig:
    """Scheduler settings; phases come from the election profile or this section.

    `phases` holds inline `[[schedule.phases]]` tables (name, start, end), checked by
    `pipeline.calendar`; cron expressions and phase dates are read in `timezone`.
    """

    election: str | None = None
    default_interval_minutes: int = 1440
    phase_intervals: dict[str, int] = field(default_factory=dict)
    phases: tuple[Any, ...] = ()
    timezone: str = "Asia/Jakarta"
    misfire_grace_seconds: int = 600
    lease_seconds: int = 900
    retry_base_seconds: int = 60
    retry_max_seconds: int = 3600
    export_cron: str = "0 6 * * *"
    purge_cron: str = "30 3 * * *"


@dataclass(frozen=True)
class Config:
    """The whole configuration, validated."""

    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    linking: LinkingConfig = field(default_factory=LinkingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    sources: tuple[SourceConfig, ...] = ()
    source_file: Path | None = None

    def with_overrides(self, **sections: Mapping[str, Any]) -> Config:
        """Apply CLI-flag overrides, e.g. `with_overrides(database={"url": ...})`."""
        replaced: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for name, values in sections.items():
            current = getattr(self, name)
            data = {k: v for k, v in values.items() if v is not None}
            if data:
                replaced[name] = _build(type(current), {**_as_dict(current), **data}, name, "<cli>")
                origins.update({f"{name}.{key}": "<cli>" for key in data})
        config = dataclasses.replace(self, **replaced)
        # Only the overridden keys can have become invalid; the rest passed at load time.
        _validate(config, origins, str(self.source_file) if self.source_file else "<defaults>")
        return config

    def source(self, name: str) -> SourceConfig:
        """The source called `name`; ConfigError when unknown."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"unknown source {name!r} (configured: {known})")


def _as_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, "a path" if tp is Path else getattr(tp, "__name__", str(tp))
    )


def _coerce(tp: Any, value: Any, key: str, origin_file: str, *, secret: bool = False) -> Any:
    """Check/convert one value against a field type; ConfigError on mismatch.

    `secret` keeps the value out of the error (it came from a variable that may hold a secret).
    """

    def fail() -> typing.NoReturn:
        got = "a value not shown here (it may hold a secret)" if secret else repr(value)
        raise ConfigError(f"{origin_file}: key {key!r}: expected {_type_name(tp)}, got {got}")

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, key, origin_file, secret=secret)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            fail()
        return _build(tp, value, key, origin_file)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(tp)
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            fail()
        return tuple(
            _coerce(item_type, item, f"{key}[{index}]", origin_file, secret=secret)
            for index, item in enumerate(value)
        )
    if origin is dict:
        if not isinstance(value, Mapping):
            fail()
        _key_type, value_type = typing.get_args(tp)
        return {
            str(k): _coerce(value_type, v, f"{key}.{k}", origin_file, secret=secret)
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        fail()
    if tp is int:
        if isinstance(value, bool):
            fail()
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                fail()
        fail()
    if tp is float:
        if isinstance(value, bool):
            fail()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                fail()
        fail()
    if tp is str:
        if not isinstance(value, str):
            fail()
        return value
    if tp is Path:
        if not isinstance(value, str | Path):
            fail()
        return Path(value)
    fail()


def _build(
    cls: Any,
    data: Mapping[str, Any],
    prefix: str,
    origin_file: str,
    variables: Mapping[str, str] | None = None,
) -> Any:
    """Build dataclass `cls` from a mapping; unknown or missing keys raise ConfigError.

    `variables` names the environment variable a field's value came from, for its errors.
    """
    variables = variables or {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_file"}
    unknown = [k for k in data if k not in fields]
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(
            f"{origin_file}: unknown key {where!r} (expected one of: {', '.join(sorted(fields))})"
        )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            variable = variables.get(name)
            where = _variable_origin(variable) if variable else origin_file
            secret = variable is not None and _may_hold_secret(variable)
            values[name] = _coerce(hints[name], data[name], key, where, secret=secret)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{origin_file}: missing required key {key!r}")
    return cls(**values)


def _section_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(Config)
        if dataclasses.is_dataclass(hints[f.name])
    }


def _variable_origin(variable: str) -> str:
    return f"environment variable {variable}"


def _may_hold_secret(variable: str) -> bool:
    return any(marker in variable.upper() for marker in SECRET_MARKERS)


def _environment_overrides(
    environ: Mapping[str, str],
) -> dict[str, dict[str, tuple[str, Any]]]:
    """`NETRA_<SECTION>_<KEY>` for known sections and keys, as (variable, value) per key.

    A list setting takes comma-separated values (`NETRA_CLASSIFIER_ELECTIONS=a,b`); tables
    and lists of tables have no text form and are refused. Other NETRA_* vars are ignored.
    """
    overrides: dict[str, dict[str, tuple[str, Any]]] = {}
    for section, section_type in _section_types().items():
        hints = typing.get_type_hints(section_type)
        for spec in dataclasses.fields(section_type):
            variable = f"{ENV_PREFIX}{section}_{spec.name}".upper()
            if variable not in environ:
                continue
            value: Any = environ[variable]
            field_type = hints[spec.name]
            origin = typing.get_origin(field_type)
            if origin is dict or (
                origin is tuple and typing.get_args(field_type)[0] not in (str, int, float)
            ):
                raise ConfigError(
                    f"{_variable_origin(variable)}: key '{section}.{spec.name}' cannot be set "
                    "from the environment; set it in the config file"
                )
            if origin is tuple:
                value = [part.strip() for part in value.split(",") if part.strip()]
            overrides.setdefault(section, {})[spec.name] = (variable, value)
    return overrides


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load defaults < file < environment into a validated `Config`."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    origin_file = "<defaults>"
    if path is not None:
        origin_file = str(path)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: config file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    sources_raw = data.pop("sources", [])
    if not isinstance(sources_raw, list):
        raise ConfigError(f"{origin_file}: key 'sources': expected an array of tables [[sources]]")
    sections = _section_types()
    merged: dict[str, Any] = {}
    for name in data:
        if name not in sections:
            raise ConfigError(
                f"{origin_file}: unknown section {name!r} "
                f"(expected one of: {', '.join(sorted([*sections, 'sources']))})"
            )
        if not isinstance(data[name], Mapping):
            raise ConfigError(f"{origin_file}: key {name!r}: expected a table")
        merged[name] = dict(data[name])
    # Which environment variable set each key: its errors name the variable, not the file.
    variables: dict[str, dict[str, str]] = {}
    origins: dict[str, str] = {}
    for name, values in _environment_overrides(env).items():
        for key, (variable, value) in values.items():
            merged.setdefault(name, {})[key] = value
            variables.setdefault(name, {})[key] = variable
            origins[f"{name}.{key}"] = _variable_origin(variable)
    built = {
        name: _build(sections[name], values, name, origin_file, variables.get(name))
        for name, values in merged.items()
    }
    sources: list[SourceConfig] = []
    seen: set[str] = set()
    for index, raw in enumerate(sources_raw):
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{origin_file}: key 'sources[{index}]': expected a table")
        source = _build(SourceConfig, raw, f"sources[{index}]", origin_file)
        if source.name in seen:
            raise ConfigError(
                f"{origin_file}: key 'sources[{index}].name': duplicate source name {source.name!r}"
            )
        seen.add(source.name)
        sources.append(source)
    config = Config(**built, sources=tuple(sources), source_file=Path(path) if path else None)
    _validate(config, origins, origin_file)
    return config


def _at_least(low: float) -> Callable[[float], bool]:
    return lambda value: value >= low


# Numeric settings and the range that makes sense for each: (key, check, what is expected).
# A zero batch size, interval or threshold would not fail loudly later: it would make runs
# skip their work (nothing scored, no alert ever sent) while still reporting success.
_NUMERIC_RULES: tuple[tuple[str, Callable[[float], bool], str], ...] = (
    ("http.timeout_seconds", lambda value: value > 0, "a number > 0"),
    ("http.max_retries", _at_least(0), "an integer >= 0"),
    ("http.backoff_seconds", _at_least(0), "a number >= 0"),
    ("http.concurrency", _at_least(1), "an integer >= 1"),
    ("classifier.batch_size", _at_least(1), "an integer >= 1"),
    ("classifier.threshold", lambda value: 0 < value < 1, "0 < t < 1"),
    ("linking.name_similarity", lambda value: 0 < value <= 1, "0 < s <= 1"),
    ("retention.days", _at_least(1), "an integer >= 1"),
    ("retrain.target_precision", lambda value: 0 < value <= 1, "0 < p <= 1"),
    ("retrain.tolerance", lambda value: 0 <= value < 1, "0 <= t < 1"),
    ("retrain.min_new_labels", _at_least(0), "an integer >= 0"),
    ("retrain.min_eval_rows", _at_least(1), "an integer >= 1"),
    # numpy's random state takes an unsigned 32-bit seed.
    ("retrain.seed", lambda value: 0 <= value < 2**32, "an integer from 0 to 4294967295"),
    ("webhook.min_priority", lambda value: 0 <= value <= 1, "0 <= p <= 1"),
    ("webhook.failure_threshold", _at_least(1), "an integer >= 1"),
    ("schedule.default_interval_minutes", _at_least(1), "whole minutes >= 1"),
    ("schedule.misfire_grace_seconds", _at_least(1), "an integer >= 1"),
    ("schedule.lease_seconds", _at_least(1), "an integer >= 1"),
    ("schedule.retry_base_seconds", _at_least(1), "an integer >= 1"),
    ("schedule.retry_max_seconds", _at_least(1), "an integer >= 1"),
)


def _check_database_url(url: str, where: str) -> None:
    """ConfigError unless `url` parses as a SQLAlchemy URL; the error never repeats the URL."""
    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        # Not even the parser's message: for a malformed URL it can quote part of the password.
        raise ConfigError(
            f"{where}: key 'database.url': not a valid database URL (expected "
            "dialect+driver://user:password@host:port/database or sqlite:///path)"
        ) from exc


def _validate(config: Config, origins: Mapping[str, str], origin_file: str) -> None:
    """Range and cross-field checks that types alone cannot express.

    `origins` names where a key set outside the file came from (an environment variable or
    the command line), so its error points there instead of at the file.
    """

    def where(key: str) -> str:
        return origins.get(key, origin_file)

    for level in config.linking.queue_levels:
        if level not in LINK_LEVELS:
            raise ConfigError(
                f"{where('linking.queue_levels')}: key 'linking.queue_levels': unknown level "
                f"{level!r} (expected some of: {', '.join(LINK_LEVELS)})"
            )
    for key, admits, expected in _NUMERIC_RULES:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value is None:  # an optional setting left unset
            continue
        if not math.isfinite(value) or not admits(value):
            raise ConfigError(f"{where(key)}: key {key!r}: expected {expected}, got {value!r}")
    schedule = config.schedule
    if schedule.retry_max_seconds < schedule.retry_base_seconds:
        raise ConfigError(
            f"{where('schedule.retry_max_seconds')}: key 'schedule.retry_max_seconds': expected "
            f"at least schedule.retry_base_seconds ({schedule.retry_base_seconds})"
        )
    for phase, minutes in schedule.phase_intervals.items():
        if minutes < 1:
            key = f"schedule.phase_intervals.{phase}"
            raise ConfigError(
                f"{where('schedule.phase_intervals')}: key {key!r}: expected whole minutes >= 1, "
                f"got {minutes!r}"
            )
    _check_database_url(config.database.url, where("database.url"))
    for index, source in enumerate(config.sources):
        prefix = f"sources[{index}]"
        if not source.name.strip():
            raise ConfigError(f"{origin_file}: key '{prefix}.name': must not be empty")
        for name in ("limit", "page_budget"):
            count = getattr(source, name)
            if count is not None and count < 1:
                raise ConfigError(
                    f"{origin_file}: key '{prefix}.{name}': expected an integer >= 1, got {count!r}"
                )
        rate = source.rate_limit_per_second
        # 0 is allowed: the HTTP policy reads it as "no limit of our own".
        if rate is not None and not (math.isfinite(rate) and rate >= 0):
            raise ConfigError(
                f"{origin_file}: key '{prefix}.rate_limit_per_second': expected a number >= 0 "
                f"(0 = no limit), got {rate!r}"
            )
