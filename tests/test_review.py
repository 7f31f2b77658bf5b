"""Review decisions: transitions, the append-only audit log, labels, interactive and CLI use."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

import pipeline.review
from pipeline import schema
from pipeline.cli import main
from pipeline.config import Config
from pipeline.errors import TransitionError, UsageError
from pipeline.queue import get_item, link_and_enqueue, list_items
from pipeline.review import (
    audit_log,
    decide,
    iter_reviewer_labels,
    next_item,
    render_item,
    review_session,
    terminal_safe,
)
from pipeline.store import Store
from tests.test_queue import asn_post, score_posts, setup_registry


def queued_items(store: Store, tmp_path: Path, count: int = 2) -> list[int]:
    """`count` pending items by Budi, highest score first."""
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(n) for n in range(1, count + 1)])
    score_posts(store, {f"x:{5000 + n}": 0.99 - n / 100 for n in range(1, count + 1)})
    link_and_enqueue(Config(), store)
    return [item.id for item in list_items(store)]


def test_confirming_a_pending_item_claims_it_first(store: Store, tmp_path: Path) -> None:
    item_id, _ = queued_items(store, tmp_path)
    decisions = decide(store, item_id, "confirmed", "Rina (Bawaslu)", note="jelas kampanye")
    assert [(d.from_status, d.to_status) for d in decisions] == [
        ("pending", "in_review"),
        ("in_review", "confirmed"),
    ]
    item = get_item(store, item_id)
    assert item is not None and item.status == "confirmed"
    log = audit_log(store, item_id)
    assert [(row["reviewer"], row["to_status"]) for row in log] == [
        ("Rina (Bawaslu)", "in_review"),
        ("Rina (Bawaslu)", "confirmed"),
    ]
    assert log[-1]["category"] == "post" and log[-1]["note"] == "jelas kampanye"


def test_invalid_transitions_are_rejected_and_change_nothing(store: Store, tmp_path: Path) -> None:
    item_id, _ = queued_items(store, tmp_path)
    decide(store, item_id, "dismissed", "Rina", reason="not_this_asn")
    before = audit_log(store)
    for verdict in ("confirmed", "in_review", "pending", "escalated"):
        with pytest.raises(TransitionError, match="dismissed"):
            decide(store, item_id, verdict, "Rina")
    assert audit_log(store) == before
    assert get_item(store, item_id).status == "dismissed"  # type: ignore[union-attr]


def test_escalation_and_release_paths(store: Store, tmp_path: Path) -> None:
    first, second = queued_items(store, tmp_path)
    decide(store, first, "escalated", "Rina", note="perlu pendapat BKN")
    decide(store, first, "confirmed", "Sari (BKN)", category="comment")
    assert get_item(store, first).status == "confirmed"  # type: ignore[union-attr]
    decide(store, second, "in_review", "Rina")
    decide(store, second, "pending", "Rina")
    assert get_item(store, second).status == "pending"  # type: ignore[union-attr]
    with pytest.raises(TransitionError):
        decide(store, second, "pending", "Rina")


def test_bad_requests_are_usage_errors(store: Store, tmp_path: Path) -> None:
    item_id, _ = queued_items(store, tmp_path)
    with pytest.raises(UsageError, match="--reason"):
        decide(store, item_id, "dismissed", "Rina")
    with pytest.raises(UsageError, match="only to --verdict dismissed"):
        decide(store, item_id, "confirmed", "Rina", reason="duplicate")
    with pytest.raises(UsageError, match="reviewer"):
        decide(store, item_id, "confirmed", "  ")
    with pytest.raises(UsageError, match="unknown category"):
        decide(store, item_id, "confirmed", "Rina", category="gossip")
    with pytest.raises(UsageError, match="no queue item 999"):
        decide(store, 999, "confirmed", "Rina")
    assert audit_log(store) == []


def test_the_audit_log_is_append_only(store: Store, tmp_path: Path) -> None:
    item_id, _ = queued_items(store, tmp_path)
    decide(store, item_id, "confirmed", "Rina")
    decisions = schema.review_decisions
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(update(decisions).values(reviewer="someone else"))
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("DELETE FROM review_decisions"))
    assert [row["reviewer"] for row in audit_log(store)] == ["Rina", "Rina"]


def test_reviewer_labels_latest_per_item_wins(store: Store, tmp_path: Path) -> None:
    first, second = queued_items(store, tmp_path)
    decide(store, first, "escalated", "Rina", label="partisan")
    decide(store, first, "dismissed", "Sari", reason="not_partisan", label="not_partisan")
    decide(store, second, "confirmed", "Rina")  # no content label: not training data
    labels = list(iter_reviewer_labels(store))
    assert len(labels) == 1
    text_value, label, decided_at, post_key = labels[0]
    assert (label, post_key) == (0, get_item(store, first).first["post_key"])  # type: ignore[union-attr]
    assert text_value.startswith("Ayo coblos") and decided_at.tzinfo is not None


def test_interactive_review_from_piped_answers(store: Store, tmp_path: Path) -> None:
    first, second = queued_items(store, tmp_path)
    answers = io.StringIO(
        "confirm\n"  # decision for the top item
        "\n"  # category: keep the default (post)
        "\n"  # content label: keep the suggestion (partisan)
        "ajakan memilih\n"  # note
        "d\n"  # dismiss the second
        "1\n"  # reason 1: not_partisan
        "\n"  # label: suggestion not_partisan
        "\n"  # no note
    )
    out = io.StringIO()
    summary = review_session(store, "Rina", answers, out)
    assert summary.decided == {"confirmed": 1, "dismissed": 1} and summary.shown == 2
    confirmed, dismissed = get_item(store, first), get_item(store, second)
    assert confirmed is not None and dismissed is not None
    assert (confirmed.status, dismissed.status) == ("confirmed", "dismissed")
    assert confirmed.verdict_decision["content_label"] == "partisan"  # type: ignore[index]
    assert confirmed.verdict_decision["note"] == "ajakan memilih"  # type: ignore[index]
    assert dismissed.verdict_decision["reason"] == "not_partisan"  # type: ignore[index]
    assert "no more items to review" in out.getvalue()
    assert "sha256" in out.getvalue() and "(ok)" in out.getvalue()


def test_interactive_skip_quit_and_end_of_input_release_the_item(
    store: Store, tmp_path: Path
) -> None:
    first, second = queued_items(store, tmp_path)
    out = io.StringIO()
    summary = review_session(store, "Rina", io.StringIO("nonsense\nskip\nquit\n"), out)
    assert (summary.skipped, summary.shown, summary.decided) == (1, 2, {})
    assert "please answer with one of" in out.getvalue()
    assert [get_item(store, i).status for i in (first, second)] == ["pending", "pending"]  # type: ignore[union-attr]
    review_session(store, "Rina", io.StringIO("confirm\n"), io.StringIO())  # input ends early
    assert get_item(store, first).status == "pending"  # type: ignore[union-attr]
    transitions = [(r["from_status"], r["to_status"]) for r in audit_log(store, first)]
    assert transitions == [("pending", "in_review"), ("in_review", "pending")] * 2


def test_rendering_is_safe_for_a_terminal(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1, text="Coblos 02 \x1b[2J\x1b]0;pwned\x07 \u202eabc")])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    card = render_item(list_items(store)[0])
    assert "\x1b" not in card and "\x07" not in card and "\u202e" not in card
    assert "<U+001B>[2J" in card and "<U+202E>abc" in card
    assert terminal_safe(None) == ""
    assert terminal_safe("a\tb\nc\x9b\u2066") == "a\tb\nc<U+009B><U+2066>"


def test_a_verdict_on_an_item_changed_meanwhile_is_refused(store: Store, tmp_path: Path) -> None:
    item_id, _ = queued_items(store, tmp_path)
    decide(store, item_id, "in_review", "Rina")  # Rina is shown the item as in_review
    with pytest.raises(TransitionError, match="claimed by Rina"):
        decide(store, item_id, "escalated", "Budi")
    escalation = decide(store, item_id, "escalated", "Budi", note="perlu BKN", force=True)
    assert escalation[0].note == "[forced over the claim of Rina] perlu BKN"
    before = audit_log(store)
    with pytest.raises(TransitionError, match="now escalated, not in_review"):
        decide(store, item_id, "confirmed", "Rina", expected_status="in_review")
    assert audit_log(store) == before
    assert get_item(store, item_id).status == "escalated"  # type: ignore[union-attr]


def test_only_the_claimant_may_release_or_decide_a_claimed_item(
    store: Store, tmp_path: Path
) -> None:
    item_id, _ = queued_items(store, tmp_path)
    decide(store, item_id, "in_review", "Rina")
    for verdict in ("pending", "confirmed"):
        with pytest.raises(TransitionError, match="claimed by Rina"):
            decide(store, item_id, verdict, "Budi")
    with pytest.raises(TransitionError, match="in_review to in_review"):
        decide(store, item_id, "in_review", "Budi")
    assert [row["reviewer"] for row in audit_log(store)] == ["Rina"]
    decide(store, item_id, "pending", "Rina ")  # her own claim, whatever the spacing
    assert get_item(store, item_id).status == "pending"  # type: ignore[union-attr]


def test_a_session_refuses_a_verdict_when_the_item_changed_while_shown(
    store: Store, tmp_path: Path
) -> None:
    (item_id,) = queued_items(store, tmp_path, count=1)

    class Interrupted(io.StringIO):
        """Answers, with Budi forcing an escalation while Rina reads the card."""

        def readline(self, size: int = -1) -> str:
            if self.tell() == 0:
                decide(store, item_id, "escalated", "Budi", note="perlu BKN", force=True)
            return super().readline(size)

    out = io.StringIO()
    summary = review_session(store, "Rina", Interrupted("confirm\n\npartisan\n\n"), out)
    assert summary.decided == {} and "decision NOT recorded" in out.getvalue()
    assert get_item(store, item_id).status == "escalated"  # type: ignore[union-attr]
    assert [row["reviewer"] for row in audit_log(store, item_id)] == ["Rina", "Budi"]


def test_a_session_that_loses_a_claim_race_moves_on(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = queued_items(store, tmp_path)
    stale = get_item(store, first)  # what Rina's session saw just before Budi's claimed it
    decide(store, first, "in_review", "Budi")
    fresh = pipeline.review.next_item
    shown = iter([stale])
    monkeypatch.setattr(
        pipeline.review,
        "next_item",
        lambda s, r, ex=frozenset(): next(shown, None) or fresh(s, r, ex),
    )
    out = io.StringIO()
    summary = review_session(store, "Rina", io.StringIO("quit\n"), out)
    assert f"item {first} was just taken by another reviewer" in out.getvalue()
    assert summary.shown == 1 and f"== item {second} " in out.getvalue()
    assert [get_item(store, i).status for i in (first, second)] == ["in_review", "pending"]  # type: ignore[union-attr]
    assert [row["reviewer"] for row in audit_log(store, first)] == ["Budi"]


def test_newlines_in_outside_text_cannot_forge_card_lines(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    forged_log = "   log: 2024-01-21T00:00:00Z Rina in_review -> dismissed [not_this_asn]"
    parent = asn_post(
        1,
        author_id="9",
        author_handle="warga",
        text=f"Pilih 02!\n   sha256 0000 (ok)\n{forged_log}",
    )
    bio = "guru\nASN: not in the registry (suspected from the profile)"
    comment = asn_post(
        2,
        kind="comment",
        parent_id="5001",
        text="Setuju",
        author_bio=bio,
        author_name="Budi\n   sha256 2222 (ok)",  # a one-line field: its break becomes a space
    )
    store.write_batch([parent, comment])
    score_posts(store, {"x:5001": 0.9, "x:5002": 0.95})
    link_and_enqueue(Config(), store)
    item = next(i for i in list_items(store) if i.first["post_key"] == "x:5002")
    decide(store, item.id, "escalated", "Rina", note="cek\n   sha256 1111 (ok)")
    lines = render_item(get_item(store, item.id)).splitlines()  # type: ignore[arg-type]
    assert len([line for line in lines if line.startswith("ASN:")]) == 1  # the registry's
    assert [line for line in lines if line.startswith("   sha256")] == [
        f"   sha256 {item.first['content_sha256']} (ok)"
    ]
    logs = [line for line in lines if line.startswith("   log:")]
    assert len(logs) == 2 and not any("2024-01-21" in line for line in logs)
    assert "        ASN: not in the registry (suspected from the profile)" in lines
    assert "                   sha256 0000 (ok)" in lines
    assert "           sha256 1111 (ok)" in lines


def test_the_reviewer_name_is_stripped_at_every_entry_point(store: Store, tmp_path: Path) -> None:
    item_id, _ = queued_items(store, tmp_path)
    decide(store, item_id, "in_review", "Rina ")  # a session interrupted after its claim
    claimed = next_item(store, "Rina ")
    assert claimed is not None and claimed.id == item_id
    review_session(store, " Rina ", io.StringIO("confirm\n\n\n\n"), io.StringIO(), limit=1)
    assert get_item(store, item_id).status == "confirmed"  # type: ignore[union-attr]
    assert {row["reviewer"] for row in audit_log(store)} == {"Rina"}
    for blank in ("", "  "):
        with pytest.raises(UsageError, match="reviewer"):
            next_item(store, blank)
        with pytest.raises(UsageError, match="reviewer"):
            review_session(store, blank, io.StringIO(""), io.StringIO())


def _cli(store: Store, *args: str) -> int:
    return main([*args, "--database", store.url])


def test_cli_review_decide_and_exit_codes(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, _ = queued_items(store, tmp_path)
    code = _cli(
        store,
        "review",
        "decide",
        str(item_id),
        "--verdict",
        "confirmed",
        "--reviewer",
        "Rina",
        "--label",
        "partisan",
        "--note",
        "cek",
    )
    assert code == 0 and "in_review -> confirmed" in capsys.readouterr().out
    before = audit_log(store)
    assert _cli(store, "review", "decide", "404", "--verdict", "confirmed", "--reviewer", "R") == 2
    assert "no queue item 404" in capsys.readouterr().err
    args = ("review", "decide", str(item_id), "--verdict", "dismissed", "--reason", "duplicate")
    assert _cli(store, *args, "--reviewer", "R") == 2
    assert "cannot go from confirmed to dismissed" in capsys.readouterr().err
    assert audit_log(store) == before


def test_cli_interactive_review_reads_stdin(
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queued_items(store, tmp_path, count=1)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Rina\nescalate\n\nperlu cek NIP\n"))
    assert _cli(store, "review") == 0
    out = capsys.readouterr().out
    assert "decided (escalated: 1)" in out
    assert _cli(store, "queue", "list", "--status", "escalated") == 0
    assert "escalated" in capsys.readouterr().out


def test_cli_review_decide_checks_the_claim_and_the_shown_status(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, _ = queued_items(store, tmp_path)
    decide(store, item_id, "in_review", "Rina")
    args = ("review", "decide", str(item_id), "--reviewer", "Budi")
    assert _cli(store, *args, "--verdict", "pending") == 2
    assert "claimed by Rina" in capsys.readouterr().err
    assert _cli(store, *args, "--verdict", "escalated", "--expected-status", "pending") == 2
    assert "now in_review, not pending" in capsys.readouterr().err
    assert _cli(store, *args, "--verdict", "escalated", "--force") == 0
    assert audit_log(store, item_id)[-1]["note"] == "[forced over the claim of Rina]"
