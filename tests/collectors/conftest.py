"""Helpers for collector tests: saved payloads, a fake clock and a routing MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collectors.base import HttpPolicy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WALL_START = 1_704_800_000.0  # 2024-01-09T11:33:20Z

Responder = Callable[[httpx.Request], httpx.Response] | httpx.Response


def fixture_text(platform: str, name: str) -> str:
    """A saved payload as text."""
    return (FIXTURES / platform / name).read_text(encoding="utf-8")


def fixture_json(platform: str, name: str) -> Any:
    """A saved JSON payload."""
    return json.loads(fixture_text(platform, name))


class FakeClock:
    """Monotonic and wall clocks that only move when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_START + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Router:
    """Routes requests on (method, path) to queued responses; records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Responder]] = {}
        self.requests: list[httpx.Request] = []

    def add(self, path: str, *responses: Responder, method: str = "GET") -> Router:
        """Queue responses for a path; the last one repeats."""
        self.routes.setdefault((method, path), []).extend(responses)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json={"error": "no route", "path": request.url.path})
        responder = queue.pop(0) if len(queue) > 1 else queue[0]
        return responder(request) if callable(responder) else responder

    def paths(self) -> list[str]:
        """Request paths in order."""
        return [request.url.path for request in self.requests]


def make_policy(
    handler: Callable[[httpx.Request], httpx.Response],
    clock: FakeClock | None = None,
    **settings: Any,
) -> HttpPolicy:
    """An HttpPolicy over a MockTransport that never really sleeps."""
    clock = clock or FakeClock()
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return HttpPolicy(
        client,
        sleep=clock.sleep,
        clock=clock.clock,
        wall_clock=clock.wall,
        jitter=lambda: 0.5,
        **settings,
    )


@pytest.fixture
def fake_clock() -> FakeClock:
    """A fresh fake clock."""
    return FakeClock()


@pytest.fixture
def router() -> Iterator[Router]:
    """A fresh router."""
    yield Router()
