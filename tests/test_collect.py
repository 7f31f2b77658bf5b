"""The collect step: sources into the store, failures isolated, crash-safe resume, CLI, e2e."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from collectors.base import HttpPolicy
from pipeline import schema
from pipeline.cli import main
from pipeline.collect import build_policy, collect_adhoc, collect_sources
from pipeline.config import Config, HttpConfig, PathsConfig, SourceConfig
from pipeline.errors import UsageError
from pipeline.store import Store
from tests.collectors.conftest import FakeClock, Router, fixture_json, make_policy

MASTODON = "https://mastodon.example"


def _status(number: int) -> dict[str, object]:
    """An invented Mastodon status; higher numbers are newer."""
    return {
        "id": str(110_000 + number),
        "created_at": f"2024-01-{1 + number // 24:02d}T{number % 24:02d}:00:00.000Z",
        "in_reply_to_id": None,
        "content": f"<p>kabar nomor {number}</p>",
        "url": f"{MASTODON}/@warga/{110_000 + number}",
        "language": "id",
        "reblog": None,
        "account": {
            "id": "7",
            "username": "warga",
            "acct": "warga",
            "display_name": "Warga",
            "note": "",
        },
    }


class Timeline:
    """A hashtag timeline of `count` statuses served newest-first, `size` per page."""

    def __init__(self, count: int, size: int = 5) -> None:
        self.statuses = [_status(number) for number in range(count, 0, -1)]
        self.size = size
        self.fail_on_max_id: str | None = None

    def page(self, max_id: str | None) -> tuple[list[dict[str, object]], str | None]:
        items = [s for s in self.statuses if max_id is None or int(str(s["id"])) < int(max_id)]
        chunk = items[: self.size]
        more = len(items) > self.size
        return chunk, str(chunk[-1]["id"]) if chunk and more else None

    def handler(self, request: httpx.Request) -> httpx.Response:
        max_id = request.url.params.get("max_id")
        if self.fail_on_max_id is not None and max_id == self.fail_on_max_id:
            raise KeyboardInterrupt  # the operator kills the process mid-walk
        chunk, next_id = self.page(max_id)
        headers = (
            {"Link": f'<{MASTODON}{request.url.path}?max_id={next_id}>; rel="next"'}
            if next_id
            else {}
        )
        return httpx.Response(200, json=chunk, headers=headers)


def _config(tmp_path: Path, *sources: SourceConfig, concurrency: int = 4) -> Config:
    return Config(
        http=HttpConfig(concurrency=concurrency, max_retries=1),
        paths=dataclasses.replace(PathsConfig(), debug_dir=tmp_path / "debug"),
        sources=sources,
    )


def _policy(handler: Router | Timeline, clock: FakeClock | None = None) -> HttpPolicy:
    target = handler.handler if isinstance(handler, Timeline) else handler
    return make_policy(target, clock or FakeClock(), max_retries=1)


def _stored_ids(store: Store) -> list[str]:
    return sorted(post.post.post_id for post in store.iter_posts())


def test_sources_are_collected_and_failures_stay_contained(
    tmp_path: Path, sqlite_store: Store
) -> None:
    timeline = Timeline(12)
    router = Router().add("/api/v1/timelines/tag/pemilu2024", timeline.handler)
    router.add("/api/v1/timelines/tag/rusak", httpx.Response(200, text="<html>error</html>"))
    router.add("/youtube/v3/commentThreads", httpx.Response(500))
    config = _config(
        tmp_path,
        SourceConfig(
            name="masto",
            platform="mastodon",
            base_url=MASTODON,
            targets=("tag:pemilu2024", "tag:rusak"),
        ),
        SourceConfig(name="yt", platform="youtube", targets=("video:abc",)),
        SourceConfig(name="typo", platform="mastodon", targets=("video:abc",)),
        SourceConfig(name="off", platform="mastodon", targets=("tag:x",), enabled=False),
    )
    report = collect_sources(
        config, sqlite_store, httpx.Client(), environ={}, policy=_policy(router)
    )
    by_name = {item.name: item for item in report.sources}
    assert set(by_name) == {"masto", "yt", "typo"}
    assert by_name["masto"].status == "partial" and by_name["masto"].inserted == 12
    assert "did not return JSON" in by_name["masto"].errors[0]
    assert by_name["yt"].status == "failed" and "NETRA_YOUTUBE_API_KEY" in by_name["yt"].errors[0]
    assert by_name["typo"].status == "failed" and "valid kinds" in by_name["typo"].errors[0]
    assert len(report.new_keys) == 12 and report.counters()["inserted"] == 12
    assert report.counters()["sources_failed"] == 2
    assert sqlite_store.get_cursor("masto|tag:pemilu2024") is not None
    assert any(line.startswith("yt: environment variable") for line in report.error_lines())


def test_the_next_run_stores_only_what_is_new(tmp_path: Path, sqlite_store: Store) -> None:
    timeline = Timeline(8)
    config = _config(
        tmp_path, SourceConfig(name="m", platform="mastodon", base_url=MASTODON, targets=("tag:t",))
    )
    collect_sources(config, sqlite_store, httpx.Client(), policy=_policy(timeline))
    timeline.statuses[:0] = [_status(10), _status(9)]
    report = collect_sources(config, sqlite_store, httpx.Client(), policy=_policy(timeline))
    assert report.sources[0].inserted == 2 and report.sources[0].pages == 1
    assert len(_stored_ids(sqlite_store)) == 10


def test_killing_the_run_mid_walk_loses_and_duplicates_nothing(
    tmp_path: Path, sqlite_store: Store
) -> None:
    timeline = Timeline(23, size=5)
    config = _config(
        tmp_path, SourceConfig(name="m", platform="mastodon", base_url=MASTODON, targets=("tag:t",))
    )
    timeline.fail_on_max_id = str(timeline.statuses[14]["id"])  # dies asking for page 4
    with pytest.raises(KeyboardInterrupt):
        collect_sources(config, sqlite_store, httpx.Client(), policy=_policy(timeline))
    assert len(_stored_ids(sqlite_store)) == 15  # three committed pages
    timeline.fail_on_max_id = None
    timeline.statuses[:0] = [_status(24)]  # something new meanwhile
    resumed = collect_sources(config, sqlite_store, httpx.Client(), policy=_policy(timeline))
    assert resumed.sources[0].status == "ok"
    assert _stored_ids(sqlite_store) == sorted(
        f"mastodon.example/{110_000 + n}" for n in range(1, 24)
    )
    final = collect_sources(config, sqlite_store, httpx.Client(), policy=_policy(timeline))
    assert final.sources[0].inserted == 1  # the status that arrived during the crash
    assert len(_stored_ids(sqlite_store)) == 24
    assert sqlite_store.counts()["posts"] == 24


def test_a_stop_request_ends_sources_after_their_current_page(
    tmp_path: Path, sqlite_store: Store
) -> None:
    timeline = Timeline(20, size=5)
    stop = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("max_id"):
            stop.set()  # SIGTERM arrives while page 2 is being fetched
        return timeline.handler(request)

    config = _config(
        tmp_path,
        SourceConfig(name="m", platform="mastodon", base_url=MASTODON, targets=("tag:t",)),
        SourceConfig(name="later", platform="mastodon", base_url=MASTODON, targets=("tag:u",)),
        concurrency=1,
    )
    report = collect_sources(
        config, sqlite_store, httpx.Client(), policy=make_policy(handler), stop=stop
    )
    first, later = report.sources
    assert (first.status, first.pages, first.inserted) == ("ok", 2, 10)
    assert later.status == "skipped" and later.pages == 0
    resumed = collect_sources(config, sqlite_store, httpx.Client(), policy=_policy(timeline))
    assert resumed.sources[0].inserted == 10 and len(_stored_ids(sqlite_store)) == 20


def test_skipped_items_are_counted_and_sampled(tmp_path: Path, sqlite_store: Store) -> None:
    router = Router().add(
        "/api/v1/timelines/tag/t",
        httpx.Response(200, json=fixture_json("mastodon", "tag_page1.json")),
    )
    config = _config(
        tmp_path, SourceConfig(name="m", platform="mastodon", base_url=MASTODON, targets=("tag:t",))
    )
    report = collect_sources(config, sqlite_store, httpx.Client(), policy=_policy(router))
    (result,) = report.sources
    assert result.skipped == 1 and result.status == "ok"
    (sample,) = (tmp_path / "debug").iterdir()
    saved = json.loads(sample.read_text(encoding="utf-8"))
    assert saved["payload"]["id"] == "111700000000000047" and "KeyError" in saved["reason"]


def test_build_policy_takes_the_strictest_configured_rate_per_host() -> None:
    sources = (
        SourceConfig(name="a", platform="mastodon", base_url=MASTODON, rate_limit_per_second=2.0),
        SourceConfig(name="b", platform="mastodon", base_url=MASTODON, rate_limit_per_second=0.5),
        SourceConfig(name="c", platform="telegram", rate_limit_per_second=3.0),
    )
    policy = build_policy(HttpConfig(), httpx.Client(), sources)
    assert policy.rate_limit("mastodon.example") == 0.5
    assert policy.rate_limit("t.me") == 3.0


def test_ad_hoc_targets_are_checked_before_any_request() -> None:
    router = Router()
    with pytest.raises(UsageError, match="valid kinds: tag, account, followers, thread"):
        collect_adhoc(
            "mastodon", ["tag:ok", "video:nope"], client=httpx.Client(), policy=_policy(router)
        )
    assert router.requests == []


# -- end to end on a real socket


class _Handler(BaseHTTPRequestHandler):
    timeline = Timeline(7, size=3)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/api/v1/timelines/tag/pemilu2024":
            max_id = parse_qs(parts.query).get("max_id", [None])[0]
            chunk, next_id = self.timeline.page(max_id)
            body = json.dumps(chunk).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if next_id:
                host = self.headers["Host"]
                self.send_header(
                    "Link", f'<http://{host}{parts.path}?max_id={next_id}>; rel="next"'
                )
        else:
            body = b'{"error": "Record not found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_end_to_end_over_a_real_socket(tmp_path: Path, server: str) -> None:
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    Store(url).upgrade()
    config = tmp_path / "netra.toml"
    config.write_text(
        f"""
[database]
url = "{url}"

[paths]
debug_dir = "{tmp_path / "debug"}"

[[sources]]
name = "lokal"
platform = "mastodon"
base_url = "{server}"
targets = ["tag:pemilu2024", "account:hilang@127.0.0.1"]
rate_limit_per_second = 500
""",
        encoding="utf-8",
    )
    with Store(url) as store, httpx.Client() as client:
        from pipeline.config import load_config

        report = collect_sources(load_config(config), store, client, environ={})
        (result,) = report.sources
        assert result.status == "partial" and result.inserted == 7 and result.pages == 3
        assert "HTTP 404" in result.errors[0]
        assert store.get_cursor("lokal|tag:pemilu2024") is not None

    output = tmp_path / "out.jsonl"
    code = main(
        [
            "collect",
            "mastodon",
            "tag:pemilu2024",
            "--base-url",
            server,
            "--limit",
            "4",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["post_id"].startswith("127.0.0.1:")


def test_cli_collect_rejects_unknown_platforms_and_kinds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["collect", "friendster", "tag:x"]) == 2
    assert (
        "valid platforms: bluesky, file, mastodon, rss, telegram, x, youtube"
        in capsys.readouterr().err
    )
    assert main(["collect", "telegram", "tag:x"]) == 2
    assert "valid kinds: channel" in capsys.readouterr().err


def test_cli_tip_add_keeps_the_reporter_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'tips.db'}"
    Store(url).upgrade()
    shot = tmp_path / "layar.png"
    shot.write_bytes(b"\x89PNG invented screenshot")
    code = main(
        [
            "tip",
            "add",
            "https://www.facebook.com/guru.contoh/posts/42",
            "--text",
            "Ayo coblos nomor 2, salam dari kantor dinas",
            "--author",
            "guru.contoh",
            "--screenshot",
            str(shot),
            "--reporter",
            "Pelapor Rahasia",
            "--database",
            url,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "facebook:tip-" in out and "Pelapor" not in out
    with Store(url) as store:
        (stored,) = list(store.iter_posts())
        assert stored.post.author_handle == "guru.contoh"
        assert "Pelapor" not in json.dumps(stored.post.to_dict())
        with store.connect() as conn:
            reporters = conn.execute(select(schema.tip_reporters.c.reporter)).scalars().all()
            tips = conn.execute(select(schema.tips.c.screenshot_sha256)).scalars().all()
        assert reporters == ["Pelapor Rahasia"] and len(tips[0]) == 64
    assert (
        main(
            [
                "tip",
                "add",
                "https://x.example/a",
                "--text",
                "t",
                "--screenshot",
                "nope.png",
                "--database",
                url,
            ]
        )
        == 2
    )


def test_a_daily_quota_holds_across_runs(tmp_path: Path, sqlite_store: Store) -> None:
    # search.list costs 100 units: with a budget of 150 a day, the second run of the day is
    # refused, not given a fresh budget because it is a new process or a new run
    router = Router().add("/youtube/v3/search", httpx.Response(200, json={"items": []}))
    config = _config(
        tmp_path,
        SourceConfig(
            name="yt",
            platform="youtube",
            base_url="https://yt.example",
            targets=("search:pilkada",),
            options={"daily_quota": 150},
        ),
    )
    environ = {"NETRA_YOUTUBE_API_KEY": "AIzaContohKunci"}
    first = collect_sources(
        config, sqlite_store, httpx.Client(), environ=environ, policy=_policy(router)
    )
    assert first.sources[0].status == "ok"
    second = collect_sources(
        config, sqlite_store, httpx.Client(), environ=environ, policy=_policy(router)
    )
    assert second.sources[0].status == "failed"
    assert "quota budget of 150 units" in second.sources[0].errors[0]
    assert len(router.requests) == 1
    saved = sqlite_store.get_cursor("netra|quota-units") or ""
    assert "AIzaContohKunci" not in saved and ": 100" in saved  # the key is only a hash
