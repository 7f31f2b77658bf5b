"""Exports for the people a case is handed to: CSV/XLSX/JSONL tables and an HTML evidence sheet.

Headers are Indonesian (what Bawaslu and BKN staff read). Exports carry only what a case needs:
the registered ASN, the item, its evidence, the decision — never reporter (tipster) identities,
never people who are not linked. Text is data: cells that a spreadsheet would run as a formula
(`= + - @`, tab, CR, and their full-width forms) are neutralised in CSV and XLSX; the HTML sheet
escapes everything and isolates right-to-left runs.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError
from pipeline.queue import (
    CATEGORIES,
    DISMISS_REASONS,
    KIND_CATEGORY,
    STATUSES,
    QueueItem,
    canonical_json,
    evidence_content,
    get_item,
    item_ids,
    load_items,
    verify_evidence,
)
from pipeline.records import format_datetime, takes_parent_content
from pipeline.store import Store, utcnow

FORMATS: tuple[str, ...] = ("csv", "xlsx", "jsonl")
EXPORT_STATUSES: tuple[str, ...] = (*STATUSES, "all")
STATUS_LABELS: dict[str, str] = {
    "pending": "menunggu tinjauan",
    "in_review": "sedang ditinjau",
    "confirmed": "terkonfirmasi",
    "dismissed": "ditolak",
    "escalated": "dieskalasi",
}
LEVEL_LABELS: dict[str, str] = {
    "user_id": "ID akun sama",
    "handle": "nama akun (handle) sama",
    "profile_url": "tautan profil sama",
    "name_agency": "nama & instansi mirip (kemungkinan)",
    "self_declared": "mengaku ASN di bio (belum terdaftar)",
}
# (CSV/XLSX header, JSONL key)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("nama", "nama"),
    ("NIP", "nip"),
    ("instansi", "instansi"),
    ("jabatan", "jabatan"),
    ("platform", "platform"),
    ("tautan", "tautan"),
    ("waktu unggah", "waktu_unggah"),
    ("isi", "isi"),
    ("skor", "skor"),
    ("alasan", "alasan"),
    ("kategori pelanggaran", "kategori_pelanggaran"),
    ("status", "status"),
    ("peninjau", "peninjau"),
    ("catatan", "catatan"),
    ("hash bukti", "hash_bukti"),
    ("kecocokan akun", "kecocokan_akun"),
    ("jumlah kemunculan", "jumlah_kemunculan"),
)
HEADERS: tuple[str, ...] = tuple(header for header, _key in COLUMNS)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Invisible characters a formula can hide behind at the start of a cell.
_INVISIBLE_LEAD = (
    " \u00a0\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2066\u2067\u2068\u2069\ufeff"
)
# Characters XML 1.0 (and so XLSX) cannot hold.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def neutralise(value: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets a `'` in front."""
    if value.startswith(_FORMULA_START) or value.lstrip(_INVISIBLE_LEAD).startswith(_FORMULA_START):
        return "'" + value
    return value


# Excel's documented limit for one cell; a longer text makes it report the file as damaged.
XLSX_CELL_LIMIT = 32767
XLSX_CUT_NOTE = " … [dipotong: teks lengkap di ekspor JSONL atau lembar kasus]"


def _xlsx_safe(value: str) -> str:
    value = _XML_ILLEGAL.sub("\ufffd", neutralise(value))
    if len(value) > XLSX_CELL_LIMIT:
        value = value[: XLSX_CELL_LIMIT - len(XLSX_CUT_NOTE)] + XLSX_CUT_NOTE
    return value


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file renamed into place: a failure leaves no partial file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write(temporary)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _explanation(evidence: dict[str, Any]) -> str:
    parts: list[str] = []
    terms = [
        f"{entry[0]} ({float(entry[1]):.2f})"
        for entry in (evidence.get("explanation") or [])[:6]
        if isinstance(entry, list | tuple) and len(entry) == 2
    ]
    if terms:
        parts.append("kata kunci: " + ", ".join(terms))
    if evidence.get("contestants"):
        parts.append("paslon/calon: " + ", ".join(evidence["contestants"]))
    context = evidence.get("context") or {}
    if context.get("parent_score") is not None:
        action = {"comment": "komentar", "like": "menyukai", "follow": "mengikuti"}.get(
            evidence["kind"], "berbagi"
        )
        what = "akun" if evidence["kind"] == "follow" else "unggahan"
        parts.append(
            f"konteks: {action} pada {what} dengan skor {float(context['parent_score']):.2f}"
        )
    if evidence.get("model_version"):
        parts.append(f"model {evidence['model_version']}")
    return "; ".join(parts)


def _shown_text(evidence: dict[str, Any]) -> str:
    text = evidence["text"]
    context = evidence.get("context") or {}
    parent = context.get("parent_text")
    if parent and takes_parent_content(evidence["kind"], text, parent):
        action = {"like": "menyukai", "follow": "mengikuti akun"}.get(
            evidence["kind"], "membagikan"
        )
        return f"[{action}] {parent}"
    return text


def item_row(item: QueueItem) -> dict[str, Any]:
    """One export row (JSONL keys) for an item: only what the case needs."""
    first = item.first
    account = item.account
    decision = item.verdict_decision or item.last_decision
    if account:
        nama, nip, instansi, jabatan = (
            account["nama"],
            account["nip"],
            account["instansi"],
            account["jabatan"],
        )
    else:
        # Suspected, unregistered (self-declared in the bio): the captured name is all there is.
        author = first.get("author") or {}
        nama = f"{author.get('name') or author.get('handle') or '?'} (diduga, belum terdaftar)"
        nip = instansi = jabatan = None
    category = (decision or {}).get("category") or item.category
    status = STATUS_LABELS.get(item.status, item.status)
    if item.status == "dismissed" and decision and decision.get("reason"):
        status += f": {DISMISS_REASONS.get(decision['reason'], decision['reason'])}"
    links = list(dict.fromkeys(e["permalink"] for e in item.evidence if e["permalink"]))
    return {
        "id": item.id,
        "nama": nama,
        "nip": nip,
        "instansi": instansi,
        "jabatan": jabatan,
        "platform": item.platform,
        "tautan": links,
        "waktu_unggah": format_datetime(first["created_at"]),
        "isi": _shown_text(first),
        "skor": round(float(item.score), 3),
        "alasan": _explanation(first),
        "kategori_pelanggaran": CATEGORIES.get(category, category),
        "status": status,
        "peninjau": decision["reviewer"] if decision else None,
        "catatan": decision["note"] if decision else None,
        "hash_bukti": first["content_sha256"],
        "kecocokan_akun": f"{LEVEL_LABELS.get(item.link_level, item.link_level)} "
        f"({float(item.link_confidence):.2f})",
        "jumlah_kemunculan": len(item.evidence),
    }


def format_nip(nip: str) -> str:
    """The NIP as officially written ("19850312 201001 1 003"); spreadsheets keep it as text."""
    if len(nip) == 18 and nip.isdigit():
        return f"{nip[:8]} {nip[8:14]} {nip[14]} {nip[15:]}"
    return nip


def _cell_text(key: str, value: Any) -> Any:
    if value is None:
        return ""
    if key == "tautan":
        return "\n".join(value)
    if key == "nip":
        # 18 bare digits would become a rounded number in Excel (1.98503E+17).
        return format_nip(value)
    return value


def export_items(
    store: Store,
    output: str | Path,
    *,
    status: str = "pending",
    file_format: str | None = None,
    since: datetime | None = None,
    instansi: str | None = None,
) -> int:
    """Write the queue (by priority) to CSV, XLSX or JSONL; returns the number of items."""
    path = Path(output)
    fmt = (file_format or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if status not in EXPORT_STATUSES:
        raise UsageError(
            f"unknown status {status!r} (expected one of {', '.join(EXPORT_STATUSES)})"
        )
    ids = item_ids(
        store,
        statuses=None if status == "all" else [status],
        since=since,
        instansi=instansi,
    )
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        rows.extend(item_row(item) for item in load_items(store, ids[start : start + 500]))
    writer = {"csv": _write_csv, "xlsx": _write_xlsx}.get(fmt, _write_jsonl)
    _write_atomically(path, lambda target: writer(target, rows))
    return len(rows)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    # UTF-8 with BOM: Excel otherwise reads it as the legacy code page and garbles the text.
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for row in rows:
            cells = []
            for _header, key in COLUMNS:
                value = _cell_text(key, row[key])
                cells.append(neutralise(value) if isinstance(value, str) else value)
            writer.writerow(cells)


def _write_xlsx(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "antrian tinjauan"
    sheet.append(list(HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        values: list[Any] = []
        for _header, key in COLUMNS:
            value = _cell_text(key, row[key])
            values.append(_xlsx_safe(value) if isinstance(value, str) else value)
        sheet.append(values)
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            if cell.data_type == "f":  # never: every string was neutralised; belt and braces
                cell.data_type = "s"
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    widths = {"isi": 60, "alasan": 40, "tautan": 40, "catatan": 30, "hash bukti": 20}
    for index, header in enumerate(HEADERS, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = widths.get(header, 16)
    sheet.freeze_panes = "A2"
    workbook.save(path)


# Line separators that `str.splitlines()` and some JSON Lines readers split on.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False, sort_keys=False).translate(_LINE_BREAKS)
            handle.write(line + "\n")


# -- HTML evidence sheet --------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _text_block(value: str | None) -> str:
    # <bdi> keeps right-to-left overrides inside the block from reordering the page around it.
    return f'<pre class="text" dir="auto"><bdi>{_e(value)}</bdi></pre>'


def _safe_link(url: str | None) -> str:
    if not url:
        return "-"
    if re.match(r"^https?://", url, re.IGNORECASE):
        return f'<a href="{_e(url)}" rel="noreferrer noopener">{_e(url)}</a>'
    return _e(url)  # not http(s): shown as text, never as a link (javascript:, data:)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111;max-width:60em}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;border-bottom:1px solid #999;margin-top:1.6em}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;
text-align:left;vertical-align:top}th{width:14em;background:#f2f2f2}
pre.text{white-space:pre-wrap;word-break:break-word;background:#fafafa;border:1px solid #ddd;
padding:.6em;unicode-bidi:isolate}code{word-break:break-all}
.meta{color:#555}.warn{color:#a00;font-weight:bold}
@media print{body{margin:0}a{color:#000;text-decoration:none}h2{page-break-after:avoid}
section{page-break-inside:avoid}}
"""


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f"<table>{body}</table>"


def case_sheet_html(item: QueueItem, generated_at: datetime) -> str:
    """A self-contained, printable HTML evidence sheet for one item (everything escaped)."""
    account = item.account or {}
    row = item_row(item)
    decision = item.verdict_decision
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="id"><head><meta charset="utf-8">',
        # No scripts, no remote loads: the sheet must stay inert wherever it is opened.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src 'none'\">",
        f"<title>Lembar bukti kasus #{item.id}</title><style>{_CSS}</style></head><body>",
        f"<h1>Lembar Bukti Dugaan Pelanggaran Netralitas ASN — kasus #{item.id}</h1>",
        f'<p class="meta">Dibuat {_e(format_datetime(generated_at))} oleh Netra. '
        "Keputusan akhir tetap pada pejabat yang berwenang.</p>",
        "<section><h2>ASN</h2>",
        _rows(
            [
                ("nama", _e(row["nama"])),
                ("NIP", _e(account.get("nip") or "-")),
                ("instansi", _e(account.get("instansi") or "-")),
                ("unit kerja", _e(account.get("unit_kerja") or "-")),
                ("jabatan", _e(account.get("jabatan") or "-")),
                ("wilayah", _e(account.get("wilayah") or "-")),
                ("akun terdaftar", _e(_registered_account(account))),
                ("kecocokan akun", _e(row["kecocokan_akun"])),
            ]
        ),
        "</section>",
        "<section><h2>Keputusan</h2>",
        _rows(
            [
                ("status", _e(row["status"])),
                ("kategori pelanggaran", _e(row["kategori_pelanggaran"])),
                ("peninjau", _e(decision["reviewer"] if decision else "-")),
                (
                    "waktu keputusan",
                    _e(format_datetime(decision["decided_at"]) if decision else "-"),
                ),
                ("catatan", _e((decision or {}).get("note") or "-")),
                ("skor model", _e(f"{float(item.score):.3f}")),
                ("alasan", _e(row["alasan"] or "-")),
            ]
        ),
        "</section>",
    ]
    for number, evidence in enumerate(item.evidence, start=1):
        author = evidence.get("author") or {}
        match = evidence.get("match") or {}
        context = evidence.get("context") or {}
        verified = verify_evidence(evidence)
        pairs = [
            ("jenis", _e(CATEGORIES.get(_kind_category(evidence["kind"]), evidence["kind"]))),
            ("tautan", _safe_link(evidence["permalink"])),
            ("kunci unggahan", f"<code>{_e(evidence['post_key'])}</code>"),
            ("versi", _e(evidence["post_version"])),
            ("waktu unggah", _e(format_datetime(evidence["created_at"]))),
            ("waktu tangkap", _e(format_datetime(evidence["captured_at"]))),
            (
                "profil saat ditangkap",
                _e(f"{author.get('name') or '-'} @{author.get('handle') or '-'}")
                + (_text_block(author.get("bio")) if author.get("bio") else ""),
            ),
            ("isi", _text_block(evidence["text"])),
            (
                "model",
                _e(
                    f"{evidence['model_version']}: skor {float(evidence['score']):.3f} "
                    f"(ambang {float(evidence['threshold']):.3f})"
                    if evidence.get("score") is not None
                    else "-"
                ),
            ),
            ("alasan model", _e(_explanation(evidence) or "-")),
            (
                "bukti kecocokan akun",
                f"<code>{_e(json.dumps(match.get('evidence') or {}, ensure_ascii=False, sort_keys=True))}</code>",
            ),
        ]
        if context:
            pairs.append(
                (
                    "konteks (unggahan induk)",
                    _safe_link(context.get("parent_permalink"))
                    + (
                        _e(f" — skor {float(context['parent_score']):.3f}")
                        if context.get("parent_score") is not None
                        else ""
                    )
                    + (
                        _text_block(context.get("parent_text"))
                        if context.get("parent_text")
                        else ""
                    ),
                )
            )
        pairs.append(
            (
                "hash bukti (SHA-256)",
                f"<code>{_e(evidence['content_sha256'])}</code> "
                + ("(cocok)" if verified else '<span class="warn">(TIDAK COCOK)</span>'),
            )
        )
        pairs.append(
            (
                "isi yang di-hash",
                "<details><summary>JSON kanonik (UTF-8)</summary>"
                + _text_block(canonical_json(evidence_content(evidence)))
                + "</details>",
            )
        )
        parts += [f"<section><h2>Bukti {number}</h2>", _rows(pairs), "</section>"]
    parts.append("<section><h2>Riwayat tinjauan</h2><table>")
    parts.append("<tr><th>waktu</th><th>peninjau</th><th>dari → ke</th><th>catatan</th></tr>")
    for entry in item.decisions:
        reason = DISMISS_REASONS.get(entry["reason"] or "", "")
        parts.append(
            f"<tr><td>{_e(format_datetime(entry['decided_at']))}</td><td>{_e(entry['reviewer'])}</td>"
            f"<td>{_e(entry['from_status'])} → {_e(entry['to_status'])}</td>"
            f"<td>{_e(' — '.join(x for x in (reason, entry['note'] or '') if x))}</td></tr>"
        )
    parts.append("</table></section>")
    parts.append(
        '<p class="meta">Verifikasi: SHA-256 dari "JSON kanonik" di atas (byte UTF-8, tanpa '
        "spasi, kunci terurut) harus sama dengan hash bukti.</p></body></html>"
    )
    return "\n".join(parts)


def _kind_category(kind: str) -> str:
    return KIND_CATEGORY.get(kind, kind)


def _registered_account(account: dict[str, Any]) -> str:
    if not account:
        return "-"
    handle = account.get("handle") or account.get("url_handle")
    user_id = account.get("user_id") or account.get("url_user_id")
    text = f"{account.get('platform')}"
    if handle:
        text += f" @{handle}"
    if user_id:
        text += f" (id {user_id})"
    if account.get("profile_url"):
        text += f" {account['profile_url']}"
    return text


def export_case(
    store: Store, item_id: int, output: str | Path, *, now: datetime | None = None
) -> Path:
    """Write the HTML evidence sheet of a confirmed case."""
    item = get_item(store, item_id)
    if item is None:
        raise UsageError(f"no queue item {item_id}")
    if item.status != "confirmed":
        raise UsageError(
            f"item {item_id} is {item.status}: a case sheet is written only for confirmed items"
        )
    path = Path(output)
    sheet = case_sheet_html(item, now or utcnow())
    _write_atomically(path, lambda target: target.write_text(sheet, encoding="utf-8"))
    return path


# -- summaries (demo, reports) --------------------------------------------------------------------


def write_review_outputs(
    store: Store, output_dir: str | Path, *, top: int = 5, status: str = "pending"
) -> dict[str, Any]:
    """Stage counts, the top items, and `review_queue.csv`/`.xlsx` in `output_dir`."""
    from pipeline.queue import stage_counts

    directory = Path(output_dir)
    files = {}
    for suffix in ("csv", "xlsx"):
        path = directory / f"review_queue.{suffix}"
        files[str(path)] = export_items(store, path, status=status)
    top_items = load_items(store, item_ids(store, statuses=[status], limit=top))
    return {
        "stages": stage_counts(store),
        "top": [item_row(item) for item in top_items],
        "files": files,
    }


def format_review_outputs(summary: dict[str, Any]) -> str:
    """Plain-text stage counts, top items and written files."""
    from pipeline.review import terminal_safe

    lines = ["stages:"]
    lines.extend(f"  {name:<10} {count}" for name, count in summary["stages"].items())
    lines.append("top items:")
    if not summary["top"]:
        lines.append("  (none)")
    for row in summary["top"]:
        text = re.sub(r"\s+", " ", terminal_safe(row["isi"]))
        lines.append(
            f"  #{row['id']:<4} skor {row['skor']:.2f}  {terminal_safe(row['nama'])}"
            f" ({terminal_safe(row['instansi']) or '-'})"
            f"  {row['platform']}  {row['kecocokan_akun']}"
        )
        lines.append(f"         {text[:100]}{'…' if len(text) > 100 else ''}")
    for path, count in summary["files"].items():
        lines.append(f"wrote {path} ({count} items)")
    return "\n".join(lines)
