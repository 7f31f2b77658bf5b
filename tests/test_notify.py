"""Webhook calls against a local server: signatures, retries, secrecy, queue announcements."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from pipeline import schema
from pipeline.config import WebhookConfig
from pipeline.errors import ConfigError
from pipeline.notify import (
    QUEUE_CHECKPOINT,
    Webhook,
    notify_new_queue_items,
    notify_source_failing,
    retry_after_seconds,
    safe_url,
    sign,
    start_queue_watch,
    verify,
    webhook_from_config,
)
from pipeline.store import Store
from tests.conftest import make_post

SECRET = "rahasia-webhook-uji-7f3a"


@dataclass
class Receiver:
    """A local webhook receiver: records calls and answers with queued statuses."""

    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(call["body"]) for call in self.calls]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status = state.statuses.pop(0) if state.statuses else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/netra?token=abc123"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as instance:
        yield instance


def make_webhook(receiver: Receiver, client: httpx.Client, sleeps: list[float]) -> Webhook:
    return Webhook(receiver.url, SECRET, client, sleep=sleeps.append, clock=lambda: 1707868800.0)


def test_signature_round_trip() -> None:
    body = b'{"event": "x"}'
    signature = sign(SECRET, "1707868800", body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(SECRET, "1707868800", body, signature)
    assert not verify(SECRET, "1707868801", body, signature)
    assert not verify("lain", "1707868800", body, signature)
    assert not verify(SECRET, "1707868800", body + b" ", signature)


def test_delivered_call_is_signed_and_verifiable(receiver: Receiver, client: httpx.Client) -> None:
    sleeps: list[float] = []
    webhook = make_webhook(receiver, client, sleeps)
    assert webhook.send("source.failing", {"source": "berita", "consecutive_failures": 3})
    (call,) = receiver.calls
    headers = call["headers"]
    assert call["path"] == "/hooks/netra?token=abc123"
    assert headers["X-Netra-Event"] == "source.failing"
    assert headers["X-Netra-Timestamp"] == "1707868800"
    assert len(headers["X-Netra-Delivery"]) == 32
    assert verify(SECRET, headers["X-Netra-Timestamp"], call["body"], headers["X-Netra-Signature"])
    assert json.loads(call["body"]) == {
        "event": "source.failing",
        "source": "berita",
        "consecutive_failures": 3,
    }
    assert sleeps == []


def test_server_errors_are_retried_with_growing_delay(
    receiver: Receiver, client: httpx.Client
) -> None:
    sleeps: list[float] = []
    receiver.statuses = [503, 500, 200]
    assert make_webhook(receiver, client, sleeps).send("source.recovered", {"source": "a"})
    assert len(receiver.calls) == 3
    assert sleeps == [2.0, 4.0]
    # One delivery id across the retries, so the receiver can drop duplicates.
    assert len({call["headers"]["X-Netra-Delivery"] for call in receiver.calls}) == 1


def test_a_receiver_asking_to_wait_is_waited_for() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "30"}),
        httpx.Response(503, headers={"Retry-After": "Wed, 14 Feb 2024 00:01:00 GMT"}),
        httpx.Response(200),
    ]
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answers.pop(0)))
    sleeps: list[float] = []
    hook = Webhook(
        "https://hooks.example/x", SECRET, client, sleep=sleeps.append, clock=lambda: 1707868800.0
    )
    assert hook.send("source.recovered", {"source": "a"})
    # 30 s as asked; then until the given time (one minute after the clock), not 2 s and 4 s
    assert sleeps == [30.0, 60.0]
    assert retry_after_seconds("bukan waktu", 0.0) is None
    # a receiver asking for hours is not waited for within one delivery (the run goes on)
    answers[:] = [httpx.Response(503, headers={"Retry-After": "99999"}), httpx.Response(200)]
    sleeps.clear()
    assert not hook.send("source.recovered", {"source": "a"})
    assert sleeps == [] and len(answers) == 1


def test_rejected_call_is_not_retried_and_secret_never_logged(
    receiver: Receiver, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    receiver.statuses = [401]
    with caplog.at_level(logging.DEBUG):
        webhook = make_webhook(receiver, client, sleeps)
        assert not webhook.send("source.failing", {"source": "a"})
        logging.getLogger("test").info("webhook object: %r", webhook)
    assert len(receiver.calls) == 1 and sleeps == []
    signature = receiver.calls[0]["headers"]["X-Netra-Signature"]
    assert "HTTP 401" in caplog.text
    for secret_text in (SECRET, signature):
        assert secret_text not in caplog.text
    # Our own lines drop the URL's query, where receivers often put an access token.
    ours = [r.getMessage() for r in caplog.records if r.name in ("pipeline.notify", "test")]
    assert ours and not any("abc123" in line for line in ours)


def test_unreachable_receiver_gives_up_quietly(client: httpx.Client) -> None:
    sleeps: list[float] = []
    webhook = Webhook("http://127.0.0.1:9/", SECRET, client, sleep=sleeps.append)
    assert not webhook.send("source.failing", {"source": "a"})
    assert sleeps == [2.0, 4.0]


def test_safe_url_drops_the_path_and_the_query() -> None:
    # Slack, Discord and Teams put the secret in the path; others in the query
    query = safe_url("https://hooks.example:8443/a/b?token=s3cret")
    assert query.startswith("https://hooks.example:8443/… (#") and "s3cret" not in query
    path = safe_url("https://hooks.slack.example/services/T0AAA/B0BBB/SeCrEtToKeN123")
    assert path.startswith("https://hooks.slack.example/… (#") and "SeCrEt" not in path
    # two webhooks on one host can still be told apart in the log
    assert safe_url("https://h.example/x/1") != safe_url("https://h.example/x/2")


def test_webhook_from_config(client: httpx.Client) -> None:
    assert webhook_from_config(WebhookConfig(), {}, client) is None
    settings = WebhookConfig(url="https://hooks.example/netra", secret_env="NETRA_HOOK_SECRET")
    with pytest.raises(ConfigError, match=r"'webhook\.secret_env'.*NETRA_HOOK_SECRET"):
        webhook_from_config(settings, {}, client)
    with pytest.raises(ConfigError, match=r"'webhook\.url'"):
        webhook_from_config(WebhookConfig(url="ftp://hooks.example"), {SECRET: "x"}, client)
    webhook = webhook_from_config(settings, {"NETRA_HOOK_SECRET": SECRET}, client)
    assert webhook is not None and webhook.secret == SECRET
    assert SECRET not in repr(webhook)


def test_source_failing_payload(receiver: Receiver, client: httpx.Client) -> None:
    webhook = make_webhook(receiver, client, [])
    when = datetime(2024, 2, 11, 1, 0, tzinfo=UTC)
    assert notify_source_failing(webhook, "berita", 3, "HTTP 503 " + "x" * 900, when)
    (body,) = receiver.bodies()
    assert body["next_attempt"] == "2024-02-11T01:00:00Z"
    assert len(body["last_error"]) == 500


# -- queue announcements ------------------------------------------------------------------------


def add_queue_item(store: Store, number: int, priority: float) -> int:
    """A queue item with its post and evidence, inserted directly (invented content)."""
    post = make_post(number, text=f"Ayo coblos nomor {number % 3 + 1}! rahasia-isi-{number}")
    store.write_batch([post])
    stored = store.get_post(post.key)
    assert stored is not None
    now = datetime(2024, 2, 1, tzinfo=UTC)
    with store.transaction() as conn:
        evidence_id = conn.execute(
            insert(schema.evidence).values(
                post_pk=stored.pk,
                post_key=post.key,
                post_version=1,
                platform=post.platform,
                post_id=post.post_id,
                kind=post.kind,
                permalink=post.url,
                text=post.text,
                created_at=post.created_at,
                captured_at=now,
                content_sha256="0" * 64,
                recorded_at=now,
            )
        ).inserted_primary_key[0]
        return int(
            conn.execute(
                insert(schema.queue_items).values(
                    group_key=f"x:{number}",
                    platform=post.platform,
                    author_key=post.author_id,
                    text_hash=stored.text_hash,
                    category="posting",
                    status="pending",
                    priority=priority,
                    score=0.9,
                    link_level="handle",
                    link_confidence=0.95,
                    reach=number,
                    first_post_pk=stored.pk,
                    first_evidence_id=evidence_id,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        )


def test_new_high_priority_items_are_announced_once(
    store: Store, receiver: Receiver, client: httpx.Client
) -> None:
    webhook = make_webhook(receiver, client, [])
    add_queue_item(store, 1, 0.99)  # queued before the watch started: not "new"
    start_queue_watch(store)
    high = [add_queue_item(store, 2, 0.91), add_queue_item(store, 4, 0.97)]
    add_queue_item(store, 3, 0.5)
    assert notify_new_queue_items(store, webhook, 0.8) == 2
    (body,) = receiver.bodies()
    assert body["event"] == "queue.high_priority"
    assert [item["id"] for item in body["items"]] == high
    assert body["items"][0]["priority"] == 0.91
    # Minimised payload: no post text, handles or names leave Netra.
    raw = receiver.calls[0]["body"].decode()
    assert "rahasia-isi" not in raw and "warga_" not in raw
    assert notify_new_queue_items(store, webhook, 0.8) == 0
    assert len(receiver.calls) == 1


def test_undelivered_items_are_sent_again(
    store: Store, receiver: Receiver, client: httpx.Client
) -> None:
    webhook = make_webhook(receiver, client, [])
    start_queue_watch(store)
    item = add_queue_item(store, 5, 0.95)
    receiver.statuses = [500, 500, 500]
    assert notify_new_queue_items(store, webhook, 0.8) == 0
    assert store.get_cursor(QUEUE_CHECKPOINT) == "0"
    assert notify_new_queue_items(store, webhook, 0.8) == 1
    assert [entry["id"] for entry in receiver.bodies()[-1]["items"]] == [item]


def test_low_priority_items_move_the_checkpoint_silently(
    store: Store, receiver: Receiver, client: httpx.Client
) -> None:
    webhook = make_webhook(receiver, client, [])
    start_queue_watch(store)
    last = add_queue_item(store, 6, 0.2)
    assert notify_new_queue_items(store, webhook, 0.8) == 0
    assert receiver.calls == []
    assert store.get_cursor(QUEUE_CHECKPOINT) == str(last)
