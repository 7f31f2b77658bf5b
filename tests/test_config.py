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


def test_bundled_configs_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent / "config"
    for path in root.glob("*.toml"):
        load_config(path, environ={})
