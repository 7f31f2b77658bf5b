"""Link and enqueue: what enters the queue, occurrences, context, evidence and its immutability."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from pipeline import schema
from pipeline.config import Config, LinkingConfig
from pipeline.queue import (
    evidence_hash,
    get_item,
    link_and_enqueue,
    list_items,
    priority_of,
    reach_of,
    stage_counts,
    status_counts,
    verify_evidence,
)
from pipeline.records import Post, Score
from pipeline.registry import import_registry
from pipeline.review import decide
from pipeline.store import Store
from tests.test_registry import TODAY, write_registry

MODEL = "test-1"
THRESHOLD = 0.5


def asn_post(number: int, **changes: object) -> Post:
    """An invented post by Budi's registered X account (id 1111) unless changed."""
    values: dict[str, object] = {
        "platform": "x",
        "post_id": str(5000 + number),
        "url": f"https://x.com/budi_s/status/{5000 + number}",
        "author_id": "1111",
        "author_handle": "budi_s",
        "author_name": "Budi Santoso",
        "author_bio": "guru, pecinta kopi",
        "text": f"Ayo coblos nomor 2 di TPS masing-masing! ({number})",
        "created_at": datetime(2024, 1, 20, 8, 0, tzinfo=UTC),
        "metrics": {"likes": 10, "shares": 2},
        "raw": {"id": str(5000 + number), "lang": "in"},
    }
    values.update(changes)
    return Post(**values)  # type: ignore[arg-type]


def score_posts(store: Store, scores: Mapping[str, float], model: str = MODEL) -> None:
    """Write classifier scores by post key (no real model needed)."""
    rows = []
    for key, value in scores.items():
        stored = store.get_post(key)
        assert stored is not None, key
        rows.append(
            (
                stored.pk,
                Score(
                    post_key=key,
                    model_version=model,
                    score=value,
                    label="partisan" if value >= THRESHOLD else "not_partisan",
                    threshold=THRESHOLD,
                    explanation=(("coblos", 0.42), ("nomor 2", 0.31)),
                    contestants=("paslon-02",),
                ),
            )
        )
    store.write_scores(rows)


def setup_registry(store: Store, tmp_path: Path) -> None:
    import_registry(store, write_registry(tmp_path / "registry.csv"), today=TODAY)


def count(store: Store, table: str) -> int:
    with store.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(schema.metadata.tables[table])).scalar()
            or 0
        )


def test_a_partisan_post_by_a_registered_account_is_queued(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    stranger = asn_post(2, author_id="9", author_handle="warga", author_name="Warga", author_bio="")
    calm = asn_post(3, text="Hari ini upacara di sekolah, anak-anak semangat.")
    store.write_batch([asn_post(1), stranger, calm])
    score_posts(store, {"x:5001": 0.93, "x:5002": 0.97, "x:5003": 0.08})
    counters = link_and_enqueue(Config(), store)
    assert counters["link_checked"] == 3 and counters["linked"] == 2
    assert counters["queued"] == 1
    (item,) = list_items(store)
    assert item.status == "pending" and item.category == "post"
    assert item.link_level == "user_id" and item.account is not None
    assert item.account["nip"] == "198503122010011003"
    assert item.first["post_key"] == "x:5001"
    assert item.first["model_version"] == MODEL and item.first["score"] == pytest.approx(0.93)
    assert item.first["explanation"] == [["coblos", 0.42], ["nomor 2", 0.31]]
    assert item.first["match"]["level"] == "user_id"
    # Running again finds nothing new: linking and queueing are idempotent.
    again = link_and_enqueue(Config(), store)
    assert (again["link_checked"], again["queued"], again["occurrences"]) == (0, 0, 0)


def test_queue_levels_decide_what_may_enter(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    suspect = asn_post(
        1, author_id="77", author_handle="pak_guru", author_name="Pak Guru", author_bio="Guru PNS"
    )
    store.write_batch([suspect])
    score_posts(store, {"x:5001": 0.9})
    assert link_and_enqueue(Config(), store)["queued"] == 0
    wide = Config(linking=LinkingConfig(queue_levels=("user_id", "self_declared")))
    assert link_and_enqueue(wide, store)["queued"] == 1
    (item,) = list_items(store)
    assert item.link_level == "self_declared" and item.account is None


def test_an_unscored_post_waits_for_its_score(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1)])
    assert link_and_enqueue(Config(), store)["queued"] == 0
    score_posts(store, {"x:5001": 0.8})
    assert link_and_enqueue(Config(), store)["queued"] == 1


def test_a_comment_is_judged_on_its_own_text_with_the_parent_as_context(
    store: Store, tmp_path: Path
) -> None:
    setup_registry(store, tmp_path)
    campaign = asn_post(
        1,
        author_id="424242",
        author_handle="tim_pemenangan",
        author_name="Tim Pemenangan 02",
        author_bio="akun resmi",
        text="Paslon 02 siap menang satu putaran! Coblos 02!",
    )
    cheer = asn_post(
        2, text="mantap pak, lanjutkan!", kind="comment", parent_id="5001", metrics={"likes": 3}
    )
    plain = asn_post(3, text="izin nyimak", kind="comment", parent_id="5001")
    store.write_batch([campaign, cheer, plain])
    score_posts(store, {"x:5001": 0.97, "x:5002": 0.71, "x:5003": 0.2})
    assert link_and_enqueue(Config(), store)["queued"] == 1
    (item,) = list_items(store)
    assert item.category == "comment" and item.first["post_key"] == "x:5002"
    context = item.first["context"]
    assert context["parent_key"] == "x:5001" and context["parent_captured"] is True
    assert context["parent_text"].startswith("Paslon 02")
    assert context["parent_score"] == pytest.approx(0.97)


def test_a_repost_without_text_is_judged_on_what_it_shares(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    original = asn_post(
        1, author_id="424242", author_handle="tim_pemenangan", text="Coblos 02 tanggal 14!"
    )
    share = asn_post(2, text="", kind="repost", parent_id="5001")
    store.write_batch([original, share])
    score_posts(store, {"x:5001": 0.95, "x:5002": 0.01})
    assert link_and_enqueue(Config(), store)["queued"] == 1
    (item,) = list_items(store)
    assert item.category == "share" and item.score == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("kind", "parent_kind", "category"),
    [("like", "post", "like"), ("follow", "profile", "follow")],
)
def test_a_like_or_follow_is_judged_on_its_parent(
    store: Store, tmp_path: Path, kind: str, parent_kind: str, category: str
) -> None:
    setup_registry(store, tmp_path)
    # a campaign post or the winning team's profile, and something harmless of the same kind
    campaign = asn_post(
        1,
        author_id="424242",
        author_handle="tim_pemenangan",
        text="Tim 02: coblos 02 tanggal 14!",
        kind=parent_kind,
    )
    neutral = asn_post(
        3, author_id="777", author_handle="kedai_kopi", text="Kedai Kopi buka", kind=parent_kind
    )
    on_campaign = asn_post(2, text="", kind=kind, parent_id="5001", metrics={})
    on_neutral = asn_post(4, text="", kind=kind, parent_id="5003", metrics={})
    store.write_batch([campaign, neutral, on_campaign, on_neutral])
    score_posts(store, {"x:5001": 0.95, "x:5002": 0.0, "x:5003": 0.05, "x:5004": 0.0})
    # Budi's like/follow of the campaign is queued, of the coffee shop not; the parents belong
    # to unregistered accounts and are not queued either
    assert link_and_enqueue(Config(), store)["queued"] == 1
    (item,) = list_items(store)
    assert item.category == category and item.score == pytest.approx(0.95)
    assert item.first["context"]["parent_text"] == "Tim 02: coblos 02 tanggal 14!"


def test_the_same_text_by_the_same_account_is_one_item_with_occurrences(
    store: Store, tmp_path: Path
) -> None:
    setup_registry(store, tmp_path)
    words = "Ayo coblos nomor 2, demi masa depan!"
    first = asn_post(1, text=words, metrics={"likes": 10})
    second = asn_post(2, text="  ayo COBLOS nomor 2, demi masa depan! ", metrics={"likes": 90})
    other_account = asn_post(
        3,
        author_id="9",
        author_handle="warga9",
        author_name="Warga Sembilan",
        text=words,
        author_bio="ASN Dinas Contoh",
    )
    store.write_batch([first, second, other_account])
    score_posts(store, {"x:5001": 0.9, "x:5002": 0.9, "x:5003": 0.9})
    counters = link_and_enqueue(Config(), store)
    assert (counters["queued"], counters["occurrences"]) == (1, 1)
    (item,) = list_items(store)
    assert [e["post_key"] for e in item.evidence] == ["x:5001", "x:5002"]
    assert item.reach == reach_of({"likes": 10}) + reach_of({"likes": 90}) == 100
    assert item.priority == pytest.approx(priority_of(0.9, 0.99, item.reach))
    # A third posting in a later run joins the same item.
    store.write_batch([asn_post(4, text=words)])
    score_posts(store, {"x:5004": 0.9})
    assert link_and_enqueue(Config(), store)["occurrences"] == 1
    assert len(list_items(store)[0].evidence) == 3


def test_priority_orders_the_queue(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1), asn_post(2), asn_post(3)])
    score_posts(store, {"x:5001": 0.6, "x:5002": 0.99, "x:5003": 0.8})
    link_and_enqueue(Config(), store)
    assert [item.first["post_key"] for item in list_items(store)] == ["x:5002", "x:5003", "x:5001"]
    assert priority_of(0.9, 0.99, 10_000) > priority_of(0.9, 0.99, 0) > priority_of(0.9, 0.5, 0)


def test_evidence_hash_is_stable_and_verifiable(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1, text="Coblos 02 <script>alert(1)</script> \u202e\x00!")])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    evidence = list_items(store)[0].first
    assert verify_evidence(evidence)
    assert evidence_hash(evidence) == evidence["content_sha256"]
    assert len(evidence["content_sha256"]) == 64
    assert evidence["text"].endswith("\u202e\ufffd!")  # NUL stored as U+FFFD, RTL kept as data
    tampered = {**evidence, "text": evidence["text"] + " "}
    assert not verify_evidence(tampered)
    assert not verify_evidence({**evidence, "raw": {"id": "other"}})
    # Reloading gives the same hash: nothing about storage changes the canonical content.
    reloaded = get_item(store, list_items(store)[0].id)
    assert reloaded is not None and evidence_hash(reloaded.first) == evidence["content_sha256"]


def test_evidence_is_immutable_in_the_database(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1)])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    evidence = schema.evidence
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(update(evidence).values(text="diubah"))
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("DELETE FROM evidence"))
    assert verify_evidence(list_items(store)[0].first)


def test_an_edit_becomes_a_new_version_beside_the_first(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1)])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    first = list_items(store)[0].first
    edited = dataclasses.replace(asn_post(1), text="Selamat hari guru untuk semua.")
    store.write_batch([edited])
    counters = link_and_enqueue(Config(), store)
    assert counters["evidence_versions"] == 1 and counters["queued"] == 0
    (item,) = list_items(store)
    assert [(e["post_version"], e["text"]) for e in item.evidence] == [
        (1, first["text"]),
        (2, "Selamat hari guru untuk semua."),
    ]
    assert item.first == first and all(verify_evidence(e) for e in item.evidence)


def test_a_decided_item_takes_no_new_occurrences(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    early = asn_post(1, text="Coblos 02!", created_at=datetime(2023, 10, 1, tzinfo=UTC))
    store.write_batch([early])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    (dismissed,) = list_items(store)
    decide(store, dismissed.id, "dismissed", "Rina", reason="outside_period")
    # the same text again, now in the campaign: a new item for a reviewer, not a silent extra
    # occurrence of the dismissed one (whose verdict covered only what Rina saw)
    later = asn_post(2, text="Coblos 02!", created_at=datetime(2024, 2, 5, tzinfo=UTC))
    store.write_batch([later])
    score_posts(store, {"x:5002": 0.9})
    counters = link_and_enqueue(Config(), store)
    assert counters["queued"] == 1 and counters["occurrences"] == 0
    old, new = sorted(list_items(store), key=lambda item: item.id)
    assert old.status == "dismissed" and [e["post_key"] for e in old.evidence] == ["x:5001"]
    assert new.status == "pending" and [e["post_key"] for e in new.evidence] == ["x:5002"]
    # ...and a third copy joins the new, still open item
    store.write_batch([asn_post(3, text="coblos 02!")])
    score_posts(store, {"x:5003": 0.9})
    assert link_and_enqueue(Config(), store)["occurrences"] == 1
    assert len(list_items(store)) == 2


def test_an_edit_of_a_confirmed_post_is_judged_afresh(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    store.write_batch([asn_post(1)])
    score_posts(store, {"x:5001": 0.9})
    link_and_enqueue(Config(), store)
    (confirmed,) = list_items(store)
    decide(store, confirmed.id, "confirmed", "Rina")
    edited = dataclasses.replace(asn_post(1), text="Pokoknya 02, jangan salah pilih!")
    store.write_batch([edited])
    score_posts(store, {"x:5001": 0.95})
    counters = link_and_enqueue(Config(), store)
    assert counters["queued"] == 1 and counters["evidence_versions"] == 0
    old, new = sorted(list_items(store), key=lambda item: item.id)
    assert old.status == "confirmed" and [e["post_version"] for e in old.evidence] == [1]
    assert new.status == "pending" and [e["post_version"] for e in new.evidence] == [2]


def test_a_registry_change_relinks_earlier_posts(store: Store, tmp_path: Path) -> None:
    newcomer = asn_post(1, author_id="31337", author_handle="guru_baru")
    store.write_batch([newcomer])
    score_posts(store, {"x:5001": 0.9})
    assert link_and_enqueue(Config(), store)["queued"] == 0  # no registry yet
    row = (
        "199203032016011001,Guru Baru,Dinas Pendidikan Kab. Contoh,,Guru,Kab. Contoh,x,"
        "guru_baru,31337,"
    )
    import_registry(store, write_registry(tmp_path / "r.csv", (row,)), today=TODAY)
    counters = link_and_enqueue(Config(), store)
    assert counters["linked"] == 1 and counters["queued"] == 1


def test_stage_counts_follow_the_pipeline(store: Store, tmp_path: Path) -> None:
    setup_registry(store, tmp_path)
    stranger = asn_post(2, author_id="9", author_handle="warga", author_bio="")
    store.write_batch([asn_post(1), stranger, asn_post(3)])
    score_posts(store, {"x:5001": 0.9, "x:5002": 0.9})
    link_and_enqueue(Config(), store)
    assert stage_counts(store) == {
        "collected": 3,
        "scored": 2,
        "partisan": 2,
        "linked": 2,
        "suspected": 0,
        "queued": 1,
    }
    assert status_counts(store)["pending"] == 1


# -- retention (`netra purge`) ---------------------------------------------------------------------


def test_purge_keeps_linked_queued_context_and_tips(store: Store, tmp_path: Path) -> None:
    from datetime import timedelta

    from pipeline.retention import purge

    setup_registry(store, tmp_path)
    now = datetime(2024, 3, 1, tzinfo=UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=3)

    def stranger(number: int, **changes: object) -> Post:
        values: dict[str, object] = {
            "author_id": f"s{number}",
            "author_handle": f"warga{number}",
            "author_name": f"Warga {number}",
            "author_bio": "",
        }
        values.update(changes)
        return asn_post(number, **values)

    campaign_parent = stranger(1, text="Coblos 02!")
    linked_reply = asn_post(2, text="siap pak", kind="comment", parent_id="5001")
    queued = asn_post(3)
    unlinked_old = stranger(4, text="macet lagi")
    suspected_old = stranger(5, author_bio="PNS Dinkes")
    store.write_batch([campaign_parent, linked_reply, queued, unlinked_old, suspected_old], now=old)
    store.write_batch([stranger(6, text="baru saja")], now=recent)
    store.add_tip(stranger(7, text="laporan warga"), reporter="Anonim")
    with store.transaction() as conn:  # the tip arrived long ago too
        conn.execute(
            update(schema.posts).where(schema.posts.c.post_id == "5007").values(last_seen=old)
        )
    score_posts(store, {"x:5003": 0.9, "x:5004": 0.9})
    link_and_enqueue(Config(), store, now=old)
    before = count(store, "posts")
    dry = purge(Config(), store, dry_run=True, now=now)
    assert (dry["posts"], dry["scores"], dry["authors"]) == (2, 1, 2)
    assert count(store, "posts") == before  # a dry run deletes nothing
    report = purge(Config(), store, now=now)
    assert {k: report[k] for k in ("posts", "scores", "matches", "authors")} == {
        "posts": 2,
        "scores": 1,
        "matches": 2,
        "authors": 2,
    }
    remaining = {stored.key for stored in store.iter_posts()}
    assert remaining == {"x:5001", "x:5002", "x:5003", "x:5006", "x:5007"}
    assert purge(Config(), store, now=now)["posts"] == 0
    assert any(run["kind"] == "purge" for run in store.last_runs())


def test_purge_keeps_what_a_like_was_judged_on_after_its_author_leaves_the_registry(
    store: Store, tmp_path: Path
) -> None:
    from datetime import timedelta

    from pipeline.retention import purge

    setup_registry(store, tmp_path)
    now = datetime(2024, 6, 1, tzinfo=UTC)
    campaign = asn_post(
        1, author_id="424242", author_handle="tim_pemenangan", text="Coblos 02 tanggal 14!"
    )
    like = asn_post(2, text="", kind="like", parent_id="5001", metrics={})
    store.write_batch([campaign, like], now=now - timedelta(days=90))
    score_posts(store, {"x:5001": 0.95, "x:5002": 0.0})
    link_and_enqueue(Config(), store)
    (item,) = list_items(store)
    decide(store, item.id, "confirmed", "Rina")
    # Budi's account leaves the registry (moved agency): his like is no longer "linked", and
    # the campaign post never was; the confirmed case still rests on the liked post
    import_registry(store, write_registry(tmp_path / "later.csv", rows=()), today=TODAY)
    link_and_enqueue(Config(), store)
    assert purge(Config(), store, now=now)["posts"] == 0
    assert store.get_post("x:5001") is not None
