"""Configuration: precedence, validation errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "netra.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None, environ={})
    assert config.database.url.startswith("sqlite:///")
    assert config.sources == ()


def test_precedence_defaults_file_environment_cli(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[http]\nconcurrency = 3\ntimeout_seconds = 5\n[database]\nurl = "sqlite:///a.db"\n',
    )
    config = load_config(path, environ={})
    assert (config.http.concurrency, config.http.timeout_seconds) == (3, 5.0)
    env = {"NETRA_HTTP_CONCURRENCY": "6", "NETRA_DATABASE_URL": "sqlite:///b.db"}
    config = load_config(path, environ=env)
    assert config.http.concurrency == 6
    assert config.http.timeout_seconds == 5.0
    assert config.database.url == "sqlite:///b.db"
    config = config.with_overrides(database={"url": "sqlite:///c.db"})
    assert config.database.url == "sqlite:///c.db"


def test_sources_are_typed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[sources]]
name = "yt"
platform = "youtube"
targets = ["video:abc"]
credentials = { api_key = "MY_KEY_VAR" }
schedule = { interval_minutes = 60 }
""",
    )
    (source,) = load_config(path, environ={}).sources
    assert source.targets == ("video:abc",)
    assert source.credentials == {"api_key": "MY_KEY_VAR"}
    assert source.enabled is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[http]\nconcurrency = 'many'\n", "key 'http.concurrency': expected an integer"),
        ("[http]\nconcurency = 3\n", "unknown key 'http.concurency'"),
        ("[htp]\nx = 1\n", "unknown section 'htp'"),
        ("[[sources]]\nplatform = 'x'\n", "missing required key 'sources[0].name'"),
        ("[[sources]]\nname = 'a'\nplatform = 'x'\ntargets = 'tag:a'\n", "'sources[0].targets'"),
        ("[linking]\nqueue_levels = ['gossip']\n", "unknown level 'gossip'"),
        ("[classifier]\nthreshold = 1.5\n", "key 'classifier.threshold': expected 0 < t < 1"),
        ("[http\n", "invalid TOML"),
        # Zero or negative numbers that would not fail later but quietly skip the work.
        ("[classifier]\nbatch_size = 0\n", "key 'classifier.batch_size': expected an integer >= 1"),
        ("[http]\nconcurrency = 0\n", "key 'http.concurrency': expected an integer >= 1"),
        ("[http]\ntimeout_seconds = 0\n", "key 'http.timeout_seconds': expected a number > 0"),
        ("[http]\ntimeout_seconds = nan\n", "key 'http.timeout_seconds'"),
        ("[http]\nmax_retries = -1\n", "key 'http.max_retries': expected an integer >= 0"),
        ("[retention]\ndays = 0\n", "key 'retention.days': expected an integer >= 1"),
        ("[linking]\nname_similarity = 1.5\n", "key 'linking.name_similarity'"),
        ("[retrain]\nmin_eval_rows = 0\n", "key 'retrain.min_eval_rows'"),
        ("[retrain]\ntolerance = -0.1\n", "key 'retrain.tolerance'"),
        ("[retrain]\nseed = -1\n", "key 'retrain.seed'"),
        ("[webhook]\nfailure_threshold = 0\n", "key 'webhook.failure_threshold'"),
        ("[webhook]\nmin_priority = 2\n", "key 'webhook.min_priority'"),
        ("[schedule]\ndefault_interval_minutes = 0\n", "'schedule.default_interval_minutes'"),
        ("[schedule]\nlease_seconds = 0\n", "key 'schedule.lease_seconds'"),
        ("[schedule]\nretry_max_seconds = 10\n", "key 'schedule.retry_max_seconds'"),
        ("[schedule]\nphase_intervals = { kampanye = 0 }\n", "'schedule.phase_intervals.kampanye'"),
        ("[[sources]]\nname = 'a'\nplatform = 'x'\nlimit = 0\n", "key 'sources[0].limit'"),
        ("[[sources]]\nname = 'a'\nplatform = 'x'\npage_budget = 0\n", "'sources[0].page_budget'"),
        (
            "[[sources]]\nname = 'a'\nplatform = 'x'\nrate_limit_per_second = -1\n",
            "key 'sources[0].rate_limit_per_second'",
        ),
        ("[database]\nurl = 'user:pw@host/db'\n", "key 'database.url': not a valid database URL"),
        (
            "[[sources]]\nname='a'\nplatform='x'\n[[sources]]\nname='a'\nplatform='x'\n",
            "duplicate source name",
        ),
    ],
)
def test_invalid_files_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(path) in str(info.value)
    assert expected in str(info.value)
    assert info.value.exit_code == 2


def test_bad_environment_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"http\.max_retries"):
        load_config(None, environ={"NETRA_HTTP_MAX_RETRIES": "lots"})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NETRA_HTTP_CONCURRENCY", "abc", "key 'http.concurrency': expected an integer"),
        (
            "NETRA_CLASSIFIER_BATCH_SIZE",
            "0",
            "key 'classifier.batch_size': expected an integer >= 1",
        ),
        ("NETRA_SCHEDULE_LEASE_SECONDS", "-5", "key 'schedule.lease_seconds'"),
        ("NETRA_LINKING_QUEUE_LEVELS", "handle,gossip", "unknown level 'gossip'"),
        ("NETRA_SCHEDULE_PHASE_INTERVALS", "kampanye=60", "cannot be set from the environment"),
    ],
)
@pytest.mark.parametrize("with_file", [True, False])
def test_environment_errors_name_the_variable_not_the_file(
    tmp_path: Path, variable: str, value: str, expected: str, with_file: bool
) -> None:
    path = write(tmp_path, "[http]\nconcurrency = 3\n") if with_file else None
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={variable: value})
    message = str(info.value)
    assert message.startswith(f"environment variable {variable}: ")
    assert expected in message
    assert str(tmp_path) not in message and "<defaults>" not in message
    assert info.value.exit_code == 2


def test_list_settings_take_comma_separated_environment_values() -> None:
    env = {
        "NETRA_CLASSIFIER_ELECTIONS": "pilpres-2024, pilkada-2024-jawa-tengah",
        "NETRA_LINKING_QUEUE_LEVELS": "user_id,handle",
    }
    config = load_config(None, environ=env)
    assert config.classifier.elections == ("pilpres-2024", "pilkada-2024-jawa-tengah")
    assert config.linking.queue_levels == ("user_id", "handle")
    assert load_config(None, environ={"NETRA_CLASSIFIER_ELECTIONS": ""}).classifier.elections == ()


@pytest.mark.parametrize(
    "url",
    ["user:s3cret@host/db", "postgresql+psycopg://u:s3cret@host:notaport/db"],
)
def test_a_bad_database_url_never_shows_its_password(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={"NETRA_DATABASE_URL": url})
    assert str(info.value).startswith("environment variable NETRA_DATABASE_URL: ")
    assert "s3cret" not in str(info.value)
    path = write(tmp_path, f"[database]\nurl = '{url}'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(f"{path}: ") and "s3cret" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={}).with_overrides(database={"url": url})
    assert "database.url" in str(info.value) and "s3cret" not in str(info.value)


def test_bundled_configs_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent / "config"
    for path in root.glob("*.toml"):
        load_config(path, environ={})
