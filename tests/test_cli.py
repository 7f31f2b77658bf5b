"""The real `netra` entry point, run as a subprocess: exit codes, messages, atomic imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_post, netra


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert netra("init", "--database", url, cwd=tmp_path).returncode == 0
    return url


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = netra("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("init", "status", "import", "run"):
        assert command in result.stdout


def test_init_is_idempotent(tmp_path: Path, database: str) -> None:
    result = netra("init", "--database", database, cwd=tmp_path)
    assert result.returncode == 0
    assert "up to date" in result.stdout


def test_import_jsonl_then_status(tmp_path: Path, database: str) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(make_post(n).to_json() + "\n" for n in range(5)), encoding="utf-8")
    first = netra("import", str(path), "--database", database, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "5 new" in first.stdout
    again = netra("import", str(path), "--database", database, cwd=tmp_path)
    assert "0 new" in again.stdout and "5 unchanged" in again.stdout
    status = netra("status", "--database", database, cwd=tmp_path)
    assert status.returncode == 0
    assert "posts            5" in status.stdout
    assert "(verified), threshold" in status.stdout and "stored with the model" in status.stdout
    strict = netra(
        "status", "--database", database, cwd=tmp_path, env={"NETRA_CLASSIFIER_THRESHOLD": "0.93"}
    )
    assert "threshold 0.93 (from classifier.threshold" in strict.stdout


def test_status_reports_a_model_that_does_not_verify(tmp_path: Path, database: str) -> None:
    from pipeline.config import ClassifierConfig, Config, PathsConfig
    from pipeline.status import model_status

    models = tmp_path / "models"
    models.mkdir()
    (models / "CURRENT").write_text("partisan-v1-missing\n")
    config = Config(paths=PathsConfig(models_dir=models), classifier=ClassifierConfig())
    report = model_status(config)
    assert not report["ok"] and "partisan-v1-missing" in report["problem"]


def test_import_from_stdin(tmp_path: Path, database: str) -> None:
    data = make_post(1).to_json() + "\n"
    result = netra("import", "-", "--database", database, cwd=tmp_path, stdin=data)
    assert result.returncode == 0, result.stderr
    assert "1 new" in result.stdout


def test_a_bad_line_names_file_and_line_and_stores_nothing(tmp_path: Path, database: str) -> None:
    good = [make_post(n).to_json() for n in range(3)]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*good[:2], '{"platform": "x"}', good[2]]) + "\n", encoding="utf-8")
    result = netra("import", str(path), "--database", database, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}:3" in result.stderr
    status = netra("status", "--database", database, cwd=tmp_path)
    assert "posts            0" in status.stdout
    skipped = netra("import", str(path), "--skip-invalid", "--database", database, cwd=tmp_path)
    assert skipped.returncode == 0
    assert "3 new" in skipped.stdout and "1 invalid lines skipped" in skipped.stdout


def test_import_csv_with_a_column_map(tmp_path: Path, database: str) -> None:
    path = tmp_path / "tips.csv"
    path.write_text(
        "id,isi,waktu,akun\n"
        'a1,"Ayo dukung paslon 2, mantap!",2024-11-01T08:00:00+07:00,guru_desa\n',
        encoding="utf-8",
    )
    result = netra(
        "import",
        str(path),
        "--platform",
        "facebook",
        "--column",
        "post_id=id",
        "--column",
        "text=isi",
        "--column",
        "created_at=waktu",
        "--column",
        "author_handle=akun",
        "--database",
        database,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "1 new" in result.stdout


def test_invalid_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[http]\nconcurrency = 'lots'\n", encoding="utf-8")
    result = netra("status", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert str(config) in result.stderr and "http.concurrency" in result.stderr


def test_commands_refuse_an_uninitialised_database(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(make_post(1).to_json() + "\n", encoding="utf-8")
    result = netra(
        "import", str(path), "--database", f"sqlite:///{tmp_path / 'new.db'}", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "netra init" in result.stderr


def test_database_url_from_environment(tmp_path: Path, database: str) -> None:
    result = netra("status", cwd=tmp_path, env={"NETRA_DATABASE_URL": database})
    assert result.returncode == 0
    assert "cli.db" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": {"likes": float("inf")}}, "field 'metrics': 'likes' must be a finite number"),
        ({"author_name": "Budi \udfff"}, "field 'author_name': contains '\\udfff'"),
        ({"text": "bad \ud800"}, "field 'text': contains '\\ud800'"),
    ],
)
def test_values_the_store_cannot_keep_exit_2_or_are_skipped(
    tmp_path: Path, database: str, change: dict[str, object], message: str
) -> None:
    # written as an export spells them: 1e400 and the escape \ud800
    bad = json.dumps({**make_post(2).to_dict(), **change}).replace("Infinity", "1e400")
    path = tmp_path / "bad.jsonl"
    path.write_text(make_post(1).to_json() + "\n" + bad + "\n", encoding="utf-8")
    result = netra("import", str(path), "--database", database, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{path}:2: {message}" in result.stderr and "Traceback" not in result.stderr
    assert "posts            0" in netra("status", "--database", database, cwd=tmp_path).stdout
    skipped = netra("import", str(path), "--skip-invalid", "--database", database, cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert "1 new" in skipped.stdout and "1 invalid lines skipped" in skipped.stdout


def test_a_windows_1252_csv_exits_2_and_stores_nothing(tmp_path: Path, database: str) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"platform,post_id,text,created_at\n"
        b"x,1,ayo,2024-01-01T00:00:00Z\n"
        b"x,2,Caf\xe9 \x93coblos 02\x94,2024-01-01T00:00:00Z\n"
    )
    result = netra("import", str(path), "--database", database, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{path}:3: not UTF-8 text" in result.stderr
    assert "posts            0" in netra("status", "--database", database, cwd=tmp_path).stdout
