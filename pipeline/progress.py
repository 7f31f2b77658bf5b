"""Progress reporting: a bar on a terminal, plain log lines otherwise.

Pipeline steps receive a `Progress` and call `advance`; only the CLI decides which kind.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


class Progress:
    """Silent progress (the default for library callers and tests)."""

    def start(self, label: str, total: int | None = None) -> None:
        """Begin a stage."""

    def advance(self, count: int = 1) -> None:
        """Record `count` more items done."""

    def finish(self) -> None:
        """End the stage."""


class BarProgress(Progress):
    """A one-line bar redrawn in place on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.label = ""
        self.total: int | None = None
        self.done = 0
        self._last_draw = 0.0

    def start(self, label: str, total: int | None = None) -> None:
        self.label, self.total, self.done = label, total, 0
        self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def finish(self) -> None:
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        if self.total:
            width = 30
            filled = min(width, int(width * self.done / self.total))
            bar = "#" * filled + "-" * (width - filled)
            text = f"\r{self.label:<12} [{bar}] {self.done}/{self.total}"
        else:
            text = f"\r{self.label:<12} {self.done}"
        self.stream.write(text)
        self.stream.flush()


class LogProgress(Progress):
    """Plain log lines every `every` items (for pipes, cron and CI logs)."""

    def __init__(self, every: int = 10000) -> None:
        self.every = every
        self.label = ""
        self.done = 0
        self._next = every

    def start(self, label: str, total: int | None = None) -> None:
        self.label, self.done, self._next = label, 0, self.every
        log.info("%s: started%s", label, f" ({total} items)" if total else "")

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.done >= self._next:
            log.info("%s: %d done", self.label, self.done)
            self._next += self.every

    def finish(self) -> None:
        log.info("%s: finished, %d items", self.label, self.done)


def for_stream(stream: TextIO) -> Progress:
    """A bar when `stream` is a terminal, log lines otherwise."""
    return BarProgress(stream) if stream.isatty() else LogProgress()
