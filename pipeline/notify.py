"""Webhook notifications: new high-priority queue items and sources that keep failing.

Each call is a JSON POST signed with HMAC-SHA256 over `<timestamp>.<body>` using the secret from
the environment variable `webhook.secret_env`; the receiver recomputes it to check that the call
came from this Netra and is fresh:

    X-Netra-Event:      queue.high_priority | source.failing | source.recovered
    X-Netra-Delivery:   a unique id per call (receivers can drop duplicates)
    X-Netra-Timestamp:  Unix seconds
    X-Netra-Signature:  sha256=<hex of HMAC-SHA256(secret, f"{timestamp}.{body}")>

Payloads carry ids and numbers only — no names, NIPs or post text (UU PDP: minimise); the
reviewer opens the item in Netra. The secret and the signature are never logged.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

from pipeline import schema
from pipeline.config import WebhookConfig
from pipeline.errors import ConfigError
from pipeline.records import format_datetime
from pipeline.store import Store

log = logging.getLogger(__name__)

QUEUE_CHECKPOINT = "notify:queue_items"
MAX_ITEMS_PER_CALL = 50


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Netra-Signature` value of a body sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Check a signature in constant time (what a receiver does)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def safe_url(url: str) -> str:
    """A webhook URL fit for logs: scheme and host, and a short hash to tell URLs apart.

    The rest is left out: Slack, Discord and Teams put the secret in the path, others in the
    query.
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number
        port = ""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]
    return f"{parts.scheme}://{host}{port}/… (#{digest})"


# A receiver asking for more than this is not waited for within one delivery attempt.
MAX_RETRY_AFTER_SECONDS = 300.0


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass
class Webhook:
    """Sends signed events to one URL; failures are logged and reported, never raised."""

    url: str
    secret: str
    client: httpx.Client
    attempts: int = 3
    backoff_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def __repr__(self) -> str:  # keeps the secret out of reprs in tracebacks and logs
        return f"Webhook({safe_url(self.url)!r})"

    def send(self, event: str, payload: Mapping[str, Any]) -> bool:
        """POST one event; True when the receiver answered 2xx."""
        body = json.dumps(
            {"event": event, **payload}, ensure_ascii=False, sort_keys=True, default=str
        ).encode("utf-8")
        delivery = uuid.uuid4().hex
        for attempt in range(1, self.attempts + 1):
            timestamp = str(int(self.clock()))
            headers = {
                "Content-Type": "application/json",
                "X-Netra-Event": event,
                "X-Netra-Delivery": delivery,
                "X-Netra-Timestamp": timestamp,
                "X-Netra-Signature": sign(self.secret, timestamp, body),
            }
            try:
                response = self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.is_success:
                    log.info("webhook %s: %s delivered", safe_url(self.url), event)
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver rejects this call; repeating it will not help
                wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
                if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                    break  # not within this delivery: the next tick tries again
                if wait is not None and attempt < self.attempts:
                    self.sleep(wait)  # as the receiver asked
                    continue
            if attempt < self.attempts:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        log.warning("webhook %s: %s not delivered (%s)", safe_url(self.url), event, problem)
        return False


def webhook_from_config(
    settings: WebhookConfig, environ: Mapping[str, str], client: httpx.Client
) -> Webhook | None:
    """The configured webhook, or None when `webhook.url` is unset; the secret is required."""
    if not settings.url:
        return None
    scheme = urlsplit(settings.url).scheme
    if scheme not in ("http", "https"):
        raise ConfigError(f"key 'webhook.url': expected an http(s) URL, got scheme {scheme!r}")
    secret = environ.get(settings.secret_env, "")
    if not secret:
        raise ConfigError(
            f"key 'webhook.secret_env': environment variable {settings.secret_env} is not set "
            "(it holds the secret that signs webhook calls)"
        )
    return Webhook(settings.url, secret, client)


# -- events -----------------------------------------------------------------------------------


def start_queue_watch(store: Store) -> None:
    """Mark the queue's current end so that only items queued from now on are announced."""
    if store.get_cursor(QUEUE_CHECKPOINT) is None:
        with store.connect() as conn:
            newest = conn.execute(select(func.max(schema.queue_items.c.id))).scalar()
        store.save_cursor(QUEUE_CHECKPOINT, str(newest or 0))


def notify_new_queue_items(store: Store, webhook: Webhook, min_priority: float) -> int:
    """Announce items queued since the last call with priority >= `min_priority`.

    The checkpoint moves only after a delivered call, so an undelivered batch is sent again
    next time. Returns the number of items announced.
    """
    q = schema.queue_items
    start_queue_watch(store)
    last = int(store.get_cursor(QUEUE_CHECKPOINT) or 0)
    announced = 0
    while True:
        with store.connect() as conn:
            newest = conn.execute(select(func.max(q.c.id)).where(q.c.id > last)).scalar()
            rows = conn.execute(
                select(q)
                .where(q.c.id > last, q.c.priority >= min_priority)
                .order_by(q.c.id)
                .limit(MAX_ITEMS_PER_CALL)
            ).all()
        if newest is None:
            return announced
        if not rows:
            store.save_cursor(QUEUE_CHECKPOINT, str(newest))
            return announced
        items = [
            {
                "id": row.id,
                "priority": round(float(row.priority), 4),
                "score": round(float(row.score), 4),
                "category": row.category,
                "status": row.status,
                "platform": row.platform,
                "link_level": row.link_level,
                "link_confidence": round(float(row.link_confidence), 4),
                "created_at": format_datetime(row.created_at),
            }
            for row in rows
        ]
        if not webhook.send(
            "queue.high_priority",
            {"count": len(items), "min_priority": min_priority, "items": items},
        ):
            return announced
        announced += len(items)
        # A full page may have more behind it; otherwise everything up to `newest` is seen.
        last = rows[-1].id if len(rows) == MAX_ITEMS_PER_CALL else newest
        store.save_cursor(QUEUE_CHECKPOINT, str(last))


def notify_source_failing(
    webhook: Webhook,
    source: str,
    failures: int,
    last_error: str | None,
    next_attempt: datetime | None,
) -> bool:
    """Announce that a source has failed `failures` times in a row."""
    return webhook.send(
        "source.failing",
        {
            "source": source,
            "consecutive_failures": failures,
            "last_error": (last_error or "")[:500],
            "next_attempt": format_datetime(next_attempt.astimezone(UTC)) if next_attempt else None,
        },
    )


def notify_source_recovered(webhook: Webhook, source: str, failures: int) -> bool:
    """Announce that a source that had been reported failing works again."""
    return webhook.send("source.recovered", {"source": source, "failures_before": failures})
