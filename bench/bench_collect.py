"""Benchmark: concurrent collection against a slow local server, versus sequential.

A server on 127.0.0.1 answers every page after 50 ms (a Mastodon hashtag timeline, 20 statuses
per page, 5 pages per tag). 200 sources, one tag each, are collected into a temporary SQLite
store with `http.concurrency` threads while a per-host rate limit still holds; a sequential run
over a subset gives the baseline. Prints pages/s, posts/s, the speed-up and the highest request
rate the server saw in any one-second window. Bounded: a watchdog ends it after 180 s.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from pipeline.collect import collect_sources
from pipeline.config import Config, HttpConfig, PathsConfig, SourceConfig
from pipeline.store import Store

PAGE_DELAY = 0.05
PAGES_PER_SOURCE = 5
POSTS_PER_PAGE = 20
WATCHDOG_SECONDS = 180


class SlowTimeline(BaseHTTPRequestHandler):
    """Answers `/api/v1/timelines/tag/<tag>` pages after a fixed delay."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
    # Headers and body go out in separate writes; without this, Nagle's algorithm meets the
    # client's delayed ACK and every response waits an extra ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/arrivals":
            self._send(json.dumps(ARRIVALS).encode())
            ARRIVALS.clear()
            return
        ARRIVALS.append(time.monotonic())
        tag = parts.path.rsplit("/", 1)[-1]
        number = int("".join(ch for ch in tag if ch.isdigit()) or 0)
        page = int(parse_qs(parts.query).get("max_id", ["0"])[0])
        time.sleep(PAGE_DELAY)
        statuses = [
            {
                # Unique per tag, newest first within a tag.
                "id": str(
                    number * 100_000 + (PAGES_PER_SOURCE - page) * 1000 + POSTS_PER_PAGE - index
                ),
                "created_at": "2024-01-05T10:00:00.000Z",
                "in_reply_to_id": None,
                "content": f"<p>{tag} halaman {page} nomor {index}</p>",
                "url": None,
                "language": "id",
                "reblog": None,
                "account": {
                    "id": tag,
                    "username": tag,
                    "acct": tag,
                    "display_name": tag,
                    "note": "",
                },
            }
            for index in range(POSTS_PER_PAGE)
        ]
        link = None
        if page + 1 < PAGES_PER_SOURCE:
            link = f'<http://{self.headers["Host"]}{parts.path}?max_id={page + 1}>; rel="next"'
        self._send(json.dumps(statuses).encode(), link)

    def _send(self, body: bytes, link: str | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


ARRIVALS: list[float] = []  # request arrival times (in the server process)


class Server(ThreadingHTTPServer):
    """A threading server with a backlog deep enough for the client's connections."""

    daemon_threads = True
    request_queue_size = 256


def serve(port_queue: multiprocessing.Queue[int]) -> None:
    """Run the slow server (in its own process, so it does not compete for our GIL)."""
    server = Server(("127.0.0.1", 0), SlowTimeline)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def max_rate(arrivals: list[float], window: float = 1.0) -> int:
    """The most requests that arrived within any window of `window` seconds."""
    ordered = sorted(arrivals)
    return max(
        (
            bisect.bisect_right(ordered, start + window - 1e-9) - index
            for index, start in enumerate(ordered)
        ),
        default=0,
    )


def run(
    root: str, sources: int, concurrency: int, rate: float, workdir: Path, label: str
) -> dict[str, float]:
    """Collect `sources` tags into a fresh store; returns timings and counts."""
    config = Config(
        http=HttpConfig(concurrency=concurrency, max_retries=2, backoff_seconds=0.1),
        paths=dataclasses.replace(PathsConfig(), debug_dir=workdir / "debug"),
        sources=tuple(
            SourceConfig(
                name=f"{label}-{number}",
                platform="mastodon",
                base_url=root,
                targets=(f"tag:{label}{number}",),
                rate_limit_per_second=rate,
            )
            for number in range(sources)
        ),
    )
    store = Store(f"sqlite:///{workdir / f'{label}.db'}")
    store.upgrade()
    with httpx.Client(limits=httpx.Limits(max_connections=concurrency * 2)) as client:
        client.get(f"{root}/arrivals")  # reset the server's record
        started = time.perf_counter()
        report = collect_sources(config, store, client, environ={})
        elapsed = time.perf_counter() - started
        arrivals = client.get(f"{root}/arrivals").json()
    store.close()
    counters = report.counters()
    failed = [item for item in report.sources if item.status != "ok"]
    if failed:
        raise SystemExit(f"{label}: {len(failed)} sources failed, e.g. {failed[0].errors}")
    return {
        "seconds": elapsed,
        "pages": counters["pages"],
        "posts": counters["inserted"],
        "max_rate": max_rate(arrivals),
    }


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=400.0, help="per-host requests/second")
    parser.add_argument("--baseline-sources", type=int, default=8)
    args = parser.parse_args()

    watchdog = threading.Timer(WATCHDOG_SECONDS, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    root = f"http://127.0.0.1:{ports.get(timeout=30)}"
    try:
        with tempfile.TemporaryDirectory(prefix="netra-bench-") as folder:
            workdir = Path(folder)
            sequential = run(root, args.baseline_sources, 1, args.rate, workdir, "seq")
            concurrent = run(root, args.sources, args.concurrency, args.rate, workdir, "par")
    finally:
        server.terminate()
        server.join(timeout=10)
        watchdog.cancel()

    seq_pages = sequential["pages"] / sequential["seconds"]
    par_pages = concurrent["pages"] / concurrent["seconds"]
    speedup = par_pages / seq_pages
    expected = args.sources * PAGES_PER_SOURCE
    print(
        f"server delay {PAGE_DELAY * 1000:.0f} ms/page, {args.sources} sources x {PAGES_PER_SOURCE} pages"
    )
    print(
        f"sequential  ({args.baseline_sources} sources): {seq_pages:8.1f} pages/s "
        f"{sequential['posts'] / sequential['seconds']:9.1f} posts/s"
    )
    print(
        f"concurrent  ({args.concurrency} threads):  {par_pages:8.1f} pages/s "
        f"{concurrent['posts'] / concurrent['seconds']:9.1f} posts/s "
        f"({concurrent['pages']:.0f} pages in {concurrent['seconds']:.2f} s)"
    )
    print(f"speed-up over sequential: {speedup:.1f}x (target >= 10x)")
    print(
        f"highest rate seen by the server: {concurrent['max_rate']} requests in 1 s (limit {args.rate:.0f}/s)"
    )
    ok = True
    if concurrent["pages"] != expected:
        print(f"FAIL: expected {expected} pages, collected {concurrent['pages']:.0f}")
        ok = False
    if concurrent["max_rate"] > args.rate + 1:
        print("FAIL: the per-host rate limit was exceeded")
        ok = False
    if speedup < 10:
        print("note: speed-up below the 10x target on this machine")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
