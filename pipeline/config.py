"""Typed, validated configuration.

Precedence: built-in defaults < TOML file < environment (`NETRA_<SECTION>_<KEY>`, plus
`NETRA_DATABASE_URL`) < CLI flags (applied by the caller with `Config.with_overrides`).
The file is parsed once at start-up into frozen dataclasses; an invalid file raises
`ConfigError` naming the file, the key and what was expected. Secrets are never read from the
file: a source names the *environment variable* that holds its credential.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "NETRA_"


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
        for name, values in sections.items():
            current = getattr(self, name)
            data = {k: v for k, v in values.items() if v is not None}
            if data:
                replaced[name] = _build(type(current), {**_as_dict(current), **data}, name, "<cli>")
        return dataclasses.replace(self, **replaced)

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


def _coerce(tp: Any, value: Any, key: str, origin_file: str) -> Any:
    """Check/convert one value against a field type; ConfigError on mismatch."""

    def fail() -> typing.NoReturn:
        raise ConfigError(f"{origin_file}: key {key!r}: expected {_type_name(tp)}, got {value!r}")

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, key, origin_file)
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
            _coerce(item_type, item, f"{key}[{index}]", origin_file)
            for index, item in enumerate(value)
        )
    if origin is dict:
        if not isinstance(value, Mapping):
            fail()
        _key_type, value_type = typing.get_args(tp)
        return {str(k): _coerce(value_type, v, f"{key}.{k}", origin_file) for k, v in value.items()}
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


def _build(cls: Any, data: Mapping[str, Any], prefix: str, origin_file: str) -> Any:
    """Build dataclass `cls` from a mapping; unknown or missing keys raise ConfigError."""
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
            values[name] = _coerce(hints[name], data[name], key, origin_file)
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


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`NETRA_<SECTION>_<KEY>` for known sections and keys; other NETRA_* vars are ignored."""
    overrides: dict[str, dict[str, str]] = {}
    for section, section_type in _section_types().items():
        for spec in dataclasses.fields(section_type):
            variable = f"{ENV_PREFIX}{section}_{spec.name}".upper()
            if variable in environ:
                overrides.setdefault(section, {})[spec.name] = environ[variable]
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
    for name, values in _environment_overrides(env).items():
        merged.setdefault(name, {}).update(values)
    if "NETRA_DATABASE_URL" in env:
        merged.setdefault("database", {})["url"] = env["NETRA_DATABASE_URL"]
    built = {
        name: _build(sections[name], values, name, origin_file) for name, values in merged.items()
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
    _validate(config, origin_file)
    return config


def _validate(config: Config, origin_file: str) -> None:
    """Cross-field checks that types alone cannot express."""
    for level in config.linking.queue_levels:
        if level not in LINK_LEVELS:
            raise ConfigError(
                f"{origin_file}: key 'linking.queue_levels': unknown level {level!r} "
                f"(expected some of: {', '.join(LINK_LEVELS)})"
            )
    if config.http.concurrency < 1:
        raise ConfigError(f"{origin_file}: key 'http.concurrency': expected an integer >= 1")
    if config.retention.days < 1:
        raise ConfigError(f"{origin_file}: key 'retention.days': expected an integer >= 1")
    threshold = config.classifier.threshold
    if threshold is not None and not 0 < threshold < 1:
        raise ConfigError(f"{origin_file}: key 'classifier.threshold': expected 0 < t < 1")
    if not 0 < config.retrain.target_precision <= 1:
        raise ConfigError(f"{origin_file}: key 'retrain.target_precision': expected 0 < p <= 1")
    for index, source in enumerate(config.sources):
        if not source.name.strip():
            raise ConfigError(f"{origin_file}: key 'sources[{index}].name': must not be empty")
