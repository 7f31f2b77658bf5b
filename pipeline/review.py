"""Human review of queue items: decisions, the append-only audit log, and the interactive loop.

Every state change is one row in `review_decisions` (who, when, from → to, category, reason,
note, content label); the item's `status` is only a projection of that log, changed with a
compare-and-set so two reviewers cannot both decide the same item. A human always decides:
nothing here changes an item's state without a named reviewer (UU PDP Pasal 10).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import Connection, insert, select, update

from pipeline import schema
from pipeline.errors import TransitionError, UsageError
from pipeline.queue import (
    CATEGORIES,
    DISMISS_REASONS,
    STATUSES,
    TRANSITIONS,
    QueueItem,
    get_item,
    item_ids,
    verify_evidence,
)
from pipeline.records import Decision, format_datetime, judged_text
from pipeline.store import Store, utcnow

CONTENT_LABELS: tuple[str, ...] = ("partisan", "not_partisan")
VERDICTS: tuple[str, ...] = ("confirmed", "dismissed", "escalated")


def reviewer_name(reviewer: str | None) -> str:
    """The reviewer's name as the audit log stores it (stripped); an empty name is a UsageError."""
    # stripped once here, at every entry point, so "Rina " and "Rina" are one reviewer both in
    # the log and in every comparison with it (a claim by "Rina " must still be Rina's)
    name = (reviewer or "").strip()
    if not name:
        raise UsageError("a decision needs the reviewer's name (--reviewer)")
    return name


def _validate(
    verdict: str,
    category: str | None,
    reason: str | None,
    label: str | None,
    expected_status: str | None,
) -> None:
    if verdict not in STATUSES:
        raise UsageError(f"unknown verdict {verdict!r} (expected one of {', '.join(STATUSES)})")
    if expected_status is not None and expected_status not in STATUSES:
        raise UsageError(
            f"unknown status {expected_status!r} (expected one of {', '.join(STATUSES)})"
        )
    if category is not None and category not in CATEGORIES:
        raise UsageError(f"unknown category {category!r} (expected one of {', '.join(CATEGORIES)})")
    if reason is not None and reason not in DISMISS_REASONS:
        raise UsageError(
            f"unknown reason {reason!r} (expected one of {', '.join(DISMISS_REASONS)})"
        )
    if verdict == "dismissed" and reason is None:
        raise UsageError(f"dismissing needs --reason ({', '.join(DISMISS_REASONS)})")
    if reason is not None and verdict != "dismissed":
        raise UsageError("--reason applies only to --verdict dismissed")
    if label is not None and label not in CONTENT_LABELS:
        raise UsageError(f"unknown label {label!r} (expected partisan or not_partisan)")


def _transition(
    conn: Connection,
    item_id: int,
    from_status: str,
    to_status: str,
    reviewer: str,
    moment: datetime,
    *,
    category: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    label: str | None = None,
) -> Decision:
    if to_status not in TRANSITIONS[from_status]:
        allowed = ", ".join(sorted(TRANSITIONS[from_status])) or "none (final)"
        raise TransitionError(
            f"item {item_id}: cannot go from {from_status} to {to_status} (allowed: {allowed})"
        )
    items = schema.queue_items
    changed = conn.execute(
        update(items)
        .where(items.c.id == item_id, items.c.status == from_status)
        .values(status=to_status, updated_at=moment)
    ).rowcount
    if changed != 1:
        raise TransitionError(f"item {item_id} was changed by someone else meanwhile; reload it")
    decision = Decision(
        item_id=item_id,
        reviewer=reviewer,
        from_status=from_status,
        to_status=to_status,
        decided_at=moment,
        category=category,
        reason=reason,
        note=note,
        content_label=label,  # type: ignore[arg-type]
    )
    conn.execute(insert(schema.review_decisions).values(**dataclasses.asdict(decision)))
    return decision


def _claimant(conn: Connection, item_id: int) -> str | None:
    """Who made the latest claim on an item: the reviewer of its newest row into in_review."""
    d = schema.review_decisions
    return conn.execute(
        select(d.c.reviewer)
        .where(d.c.item_id == item_id, d.c.to_status == "in_review")
        .order_by(d.c.id.desc())
        .limit(1)
    ).scalar()


def decide(
    store: Store,
    item_id: int,
    verdict: str,
    reviewer: str,
    *,
    category: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    label: str | None = None,
    expected_status: str | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> list[Decision]:
    """Apply a verdict to an item, appending to the audit log; all or nothing.

    A verdict on a pending item claims it first (pending → in_review → verdict), so the log
    shows both steps. With `expected_status` (the status the reviewer was shown) the decision
    is refused if the item has moved on meanwhile. Leaving in_review (a verdict or a release to
    pending) is for the reviewer who made the latest claim; `force` overrides another
    reviewer's claim and says so in the note. Unknown items raise UsageError and refused
    transitions TransitionError (both exit code 2), leaving the store unchanged.
    """
    reviewer = reviewer_name(reviewer)
    _validate(verdict, category, reason, label, expected_status)
    moment = now or utcnow()
    items = schema.queue_items
    decisions: list[Decision] = []
    with store.transaction() as conn:
        query = select(items.c.status, items.c.category).where(items.c.id == item_id)
        if not store.is_sqlite:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise UsageError(f"no queue item {item_id}")
        current = row.status
        # a verdict stands for what the reviewer saw: if the item moved on meanwhile (another
        # reviewer escalated or decided it), applying it would decide something they never saw
        if expected_status is not None and current != expected_status:
            raise TransitionError(
                f"item {item_id} is now {current}, not {expected_status} as shown: someone "
                "else changed it meanwhile; reload it"
            )
        if current == "in_review" and verdict != "in_review":
            claimant = _claimant(conn, item_id)
            if claimant != reviewer:
                if not force:
                    raise TransitionError(
                        f"item {item_id} is claimed by {claimant or 'nobody on record'}; only "
                        "they can decide or release it (--force overrides, and is logged)"
                    )
                # a forced decision over someone's live claim must stay visible in the log
                forced = f"[forced over the claim of {claimant or 'nobody on record'}]"
                note = f"{forced} {note}" if note else forced
        if current == "pending" and verdict in VERDICTS:
            decisions.append(_transition(conn, item_id, current, "in_review", reviewer, moment))
            current = "in_review"
        if verdict == "confirmed" and category is None:
            category = row.category
        decisions.append(
            _transition(
                conn,
                item_id,
                current,
                verdict,
                reviewer,
                moment,
                category=category,
                reason=reason,
                note=note,
                label=label,
            )
        )
    return decisions


def audit_log(store: Store, item_id: int | None = None) -> list[dict[str, Any]]:
    """The audit log (oldest first), for one item or all."""
    d = schema.review_decisions
    query = select(d).order_by(d.c.id)
    if item_id is not None:
        query = query.where(d.c.item_id == item_id)
    with store.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def iter_reviewer_labels(store: Store) -> Iterator[tuple[str, int, datetime, str]]:
    """(text, 1 partisan / 0 not, decided_at, post_key): the latest content label per item.

    The text is what the reviewer judged: the captured text, or for a repost without text of
    its own, the shared parent text.
    """
    d, q, e = schema.review_decisions, schema.queue_items, schema.evidence
    query = (
        select(
            d.c.item_id,
            d.c.content_label,
            d.c.decided_at,
            e.c.text,
            e.c.post_key,
            e.c.kind,
            e.c.context,
        )
        .join(q, q.c.id == d.c.item_id)
        .join(e, e.c.id == q.c.first_evidence_id)
        .where(d.c.content_label.is_not(None))
        .order_by(d.c.item_id, d.c.id.desc())
    )
    latest: dict[int, Any] = {}
    with store.connect() as conn:
        for row in conn.execute(query):
            latest.setdefault(row.item_id, row)
    for row in sorted(latest.values(), key=lambda r: (r.decided_at, r.item_id)):
        text = judged_text(row.kind, row.text, (row.context or {}).get("parent_text"))
        yield text, 1 if row.content_label == "partisan" else 0, row.decided_at, row.post_key


# -- interactive review -------------------------------------------------------------------------


# C0/C1 controls (but tab and newline) and the bidi overrides that can reorder what is shown.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str | None) -> str:
    """Text that cannot drive the terminal: control and bidi characters shown as codes."""
    if text is None:
        return ""
    return _UNSAFE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def _explanation_text(explanation: Any) -> str:
    if not explanation:
        return "-"
    parts = []
    for entry in explanation[:8]:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            parts.append(f"{entry[0]} ({float(entry[1]):+.2f})")
        else:
            parts.append(str(entry))
    return ", ".join(parts)


def _field(label: str, value: str) -> str:
    """`label` then `value`, its continuation lines indented under the value's first line."""
    # outside text (a post, a bio, a parent post, a reviewer's note) may hold newlines; left at
    # the margin they could forge card lines ("   sha256 ... (ok)", "   log: ..."), so every
    # continuation line starts deeper than any line the card itself writes there
    return label + value.replace("\n", "\n" + " " * len(label))


# How an occurrence relates to its parent, for the item view.
_RELATION: dict[str, str] = {
    "comment": "reply to",
    "repost": "shares",
    "like": "likes",
    "follow": "follows the account",
}


def _one_line(text: str | None) -> str:
    """`terminal_safe` for a field shown inside a card line: its line breaks become spaces."""
    return " ".join(terminal_safe(text).splitlines())


def render_item(item: QueueItem) -> str:
    """A plain-text evidence card for the terminal (escaped, no control characters)."""
    # one-line fields (names, handles, links, agencies) may not break a card line; the fields
    # shown as blocks (`_field`) keep their line breaks, indented
    safe = _one_line
    lines = [
        f"== item {item.id} [{item.status}] priority {item.priority:.3f}, score {item.score:.3f},"
        f" category {item.category} ({CATEGORIES.get(item.category, '')})",
    ]
    account = item.account
    if account:
        lines.append(
            f"ASN: {safe(account['nama'])}  NIP {account['nip'] or '-'}  "
            f"{safe(account['instansi'])} / {safe(account['jabatan'] or '-')} / "
            f"{safe(account['wilayah'] or '-')}"
        )
        lines.append(
            f"registered account: {account['platform']} @{safe(account['handle'] or account['url_handle'] or '-')}"
            f" id {safe(account['user_id'] or account['url_user_id'] or '-')}"
            + ("" if account["active"] else "  (INACTIVE in registry)")
        )
    else:
        lines.append("ASN: not in the registry (suspected from the profile)")
    lines.append(f"link: {item.link_level}, confidence {item.link_confidence:.2f}")
    for number, evidence in enumerate(item.evidence, start=1):
        author = evidence["author"] or {}
        verified = "ok" if verify_evidence(evidence) else "MISMATCH"
        lines.append(
            f"-- occurrence {number}: {evidence['kind']} v{evidence['post_version']} "
            f"{safe(evidence['permalink'] or evidence['post_key'])}"
        )
        # a follow's time is when Netra first saw it: platforms do not publish when
        when = "first seen" if evidence["kind"] == "follow" else "posted"
        lines.append(
            f"   {when} {format_datetime(evidence['created_at'])}, captured "
            f"{format_datetime(evidence['captured_at'])}, by {safe(author.get('name'))} "
            f"@{safe(author.get('handle'))}"
        )
        if author.get("bio"):
            lines.append(_field("   bio: ", terminal_safe(author["bio"])))
        lines.append(_field("   text: ", terminal_safe(evidence["text"])))
        if evidence["score"] is not None:
            lines.append(
                f"   model {evidence['model_version']}: score {evidence['score']:.3f} "
                f"(threshold {evidence['threshold']:.3f}); why: "
                f"{safe(_explanation_text(evidence['explanation']))}"
            )
        if evidence["contestants"]:
            lines.append(f"   contestants: {safe(', '.join(evidence['contestants']))}")
        match = evidence["match"] or {}
        if match.get("evidence"):
            lines.append(
                "   match evidence: "
                + safe(json.dumps(match["evidence"], ensure_ascii=False, sort_keys=True))
            )
        context = evidence["context"]
        if context:
            if context.get("parent_captured"):
                score = context.get("parent_score")
                relation = _RELATION.get(evidence["kind"], "reply to")
                lines.append(
                    f"   context: {relation} "
                    f"{safe(context.get('parent_permalink') or context['parent_key'])}"
                    + (f", parent score {score:.3f}" if score is not None else "")
                )
                lines.append(_field("   parent text: ", terminal_safe(context.get("parent_text"))))
            else:
                lines.append(f"   context: parent {safe(context['parent_key'])} not captured")
        lines.append(f"   sha256 {evidence['content_sha256']} ({verified})")
    for decision in item.decisions:
        lines.append(
            _field(
                "   log: ",
                f"{format_datetime(decision['decided_at'])} {safe(decision['reviewer'])} "
                f"{decision['from_status']} -> {decision['to_status']}"
                + (f" [{decision['reason']}]" if decision["reason"] else "")
                + (f": {terminal_safe(decision['note'])}" if decision["note"] else ""),
            )
        )
    return "\n".join(lines)


@dataclass
class ReviewSummary:
    """What an interactive session did."""

    decided: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    shown: int = 0


def next_item(
    store: Store, reviewer: str, exclude: set[int] | frozenset[int] = frozenset()
) -> QueueItem | None:
    """This reviewer's unfinished claim first, else the pending item with the highest priority."""
    reviewer = reviewer_name(reviewer)
    q = schema.queue_items
    with store.connect() as conn:
        claimed = conn.execute(
            select(q.c.id).where(q.c.status == "in_review").order_by(q.c.priority.desc(), q.c.id)
        ).all()
        for (item_id,) in claimed:
            # an item in review holds the claim of its newest row into in_review
            if item_id not in exclude and _claimant(conn, item_id) == reviewer:
                return get_item(store, item_id)
    for item_id in item_ids(store, statuses=["pending"]):
        if item_id not in exclude:
            return get_item(store, item_id)
    return None


def _ask(prompt: str, stdin: TextIO, stdout: TextIO) -> str | None:
    stdout.write(prompt)
    stdout.flush()
    line = stdin.readline()
    if not line:
        return None
    return line.strip()


def _choose(
    prompt: str, options: dict[str, str], stdin: TextIO, stdout: TextIO, default: str | None
) -> str | None:
    """Ask until the answer is one of `options` (by key or number); None on end of input."""
    keys = list(options)
    listing = "  ".join(f"{n}) {k}" for n, k in enumerate(keys, start=1))
    while True:
        suffix = f" [{default}]" if default else ""
        answer = _ask(f"{prompt} ({listing}){suffix}: ", stdin, stdout)
        if answer is None:
            return None
        if not answer and default:
            return default
        if answer.isdigit() and 1 <= int(answer) <= len(keys):
            return keys[int(answer) - 1]
        if answer in options:
            return answer
        prefixed = [key for key in keys if key.startswith(answer.lower())]
        if answer and len(prefixed) == 1:
            return prefixed[0]
        stdout.write(f"  please answer with one of: {', '.join(keys)}\n")


def _release(store: Store, item_id: int, reviewer: str, stdout: TextIO) -> None:
    try:
        decide(
            store,
            item_id,
            "pending",
            reviewer,
            note="released without a decision",
            expected_status="in_review",
        )
    except TransitionError as error:
        # someone took the item over meanwhile (with --force): it is no longer ours to release
        stdout.write(f"  not released: {error}\n")


# Interactive answers and the verdict each stands for ("" = no verdict).
_ACTIONS: dict[str, str] = {
    "confirm": "confirmed",
    "dismiss": "dismissed",
    "escalate": "escalated",
    "skip": "",
    "quit": "",
}


def review_session(
    store: Store,
    reviewer: str,
    stdin: TextIO,
    stdout: TextIO,
    *,
    limit: int | None = None,
) -> ReviewSummary:
    """Review items one by one from `stdin` (a terminal or piped answers) until done or quit."""
    reviewer = reviewer_name(reviewer)
    summary = ReviewSummary()
    skipped: set[int] = set()
    while limit is None or summary.shown < limit:
        item = next_item(store, reviewer, skipped)
        if item is None:
            stdout.write("no more items to review\n")
            break
        if item.status == "pending":
            try:
                decide(store, item.id, "in_review", reviewer, expected_status="pending")
            except TransitionError:
                # another session claimed it between our look and our claim: not ours to show
                stdout.write(f"item {item.id} was just taken by another reviewer; next item\n")
                skipped.add(item.id)
                continue
            item = get_item(store, item.id) or item
        summary.shown += 1
        stdout.write(render_item(item) + "\n")
        action = _choose("decision", _ACTIONS, stdin, stdout, None)
        if action in (None, "quit", "skip"):
            _release(store, item.id, reviewer, stdout)
            if action == "skip":
                skipped.add(item.id)
                summary.skipped += 1
                continue
            break
        verdict = _ACTIONS[action]
        category = reason = None
        if verdict == "confirmed":
            category = _choose(
                "category", dict.fromkeys(CATEGORIES, ""), stdin, stdout, item.category
            )
            if category is None:
                _release(store, item.id, reviewer, stdout)
                break
        if verdict == "dismissed":
            reason = _choose("reason", DISMISS_REASONS, stdin, stdout, None)
            if reason is None:
                _release(store, item.id, reviewer, stdout)
                break
        suggested = "skip"
        if verdict == "confirmed" and item.category == "post":
            suggested = "partisan"
        elif reason == "not_partisan":
            suggested = "not_partisan"
        label = _choose(
            "is the text itself partisan? (your content label, used for retraining)",
            {"partisan": "", "not_partisan": "", "skip": ""},
            stdin,
            stdout,
            suggested,
        )
        if label is None:
            _release(store, item.id, reviewer, stdout)
            break
        note = _ask("note (optional): ", stdin, stdout)
        try:
            decide(
                store,
                item.id,
                verdict,
                reviewer,
                category=category,
                reason=reason,
                note=note or None,
                label=None if label == "skip" else label,
                expected_status=item.status,
            )
        except TransitionError as error:
            # the item changed while the reviewer read it: their verdict is about a state that
            # no longer holds, so it is refused and the session moves on
            stdout.write(f"item {item.id}: decision NOT recorded: {error}\n")
            skipped.add(item.id)
            continue
        summary.decided[verdict] = summary.decided.get(verdict, 0) + 1
        stdout.write(f"item {item.id}: {verdict}\n")
    return summary
