"""The registry of known ASN accounts: validation, normalisation and atomic, idempotent import.

A registry file (CSV or XLSX) has one row per account with the columns `REGISTRY_COLUMNS`; a
person (one NIP) may have several accounts. Import is all or nothing: every bad row is reported
with its line and column and nothing is written. Re-importing updates rows in place; accounts
missing from the new file turn inactive and are never deleted (decisions and evidence refer to
them).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipeline import schema
from pipeline.errors import InputFileError, StoreError
from pipeline.store import Store, utcnow

log = logging.getLogger(__name__)

REGISTRY_COLUMNS: tuple[str, ...] = (
    "nip",
    "nama",
    "instansi",
    "unit_kerja",
    "jabatan",
    "wilayah",
    "platform",
    "handle",
    "user_id",
    "profile_url",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("nama", "instansi", "platform")
IDENTITY_COLUMNS: tuple[str, ...] = ("handle", "user_id", "profile_url")
PLATFORMS: tuple[str, ...] = (
    "x",
    "facebook",
    "instagram",
    "tiktok",
    "youtube",
    "telegram",
    "threads",
    "bluesky",
    "mastodon",
)
PLATFORM_ALIASES: dict[str, str] = {
    "twitter": "x",
    "x.com": "x",
    "fb": "facebook",
    "ig": "instagram",
    "yt": "youtube",
    "tg": "telegram",
    "bsky": "bluesky",
}
MAX_REPORTED_ERRORS = 50

_HOSTS: dict[str, tuple[str, ...]] = {
    "x": ("x.com", "twitter.com", "mobile.twitter.com", "mobile.x.com"),
    "facebook": (
        "facebook.com",
        "m.facebook.com",
        "web.facebook.com",
        "mbasic.facebook.com",
        "fb.com",
    ),
    "instagram": ("instagram.com",),
    "tiktok": ("tiktok.com", "m.tiktok.com"),
    "youtube": ("youtube.com", "m.youtube.com"),
    "telegram": ("t.me", "telegram.me"),
    "threads": ("threads.net", "threads.com"),
    "bluesky": ("bsky.app",),
}
# First path segments that are site pages, not accounts.
_RESERVED: dict[str, frozenset[str]] = {
    "x": frozenset({"i", "intent", "home", "search", "hashtag", "explore", "settings", "share"}),
    "facebook": frozenset(
        {"groups", "events", "pages", "watch", "photo", "photo.php", "story.php", "sharer"}
    ),
    "instagram": frozenset({"p", "reel", "reels", "explore", "stories", "tv", "accounts"}),
    "tiktok": frozenset({"video", "tag", "music", "discover", "t"}),
    "youtube": frozenset({"watch", "shorts", "results", "playlist", "feed"}),
    "telegram": frozenset({"s", "joinchat", "share", "addstickers"}),
    "threads": frozenset({"search", "t"}),
    "bluesky": frozenset(),
}
_HANDLE_PATTERN: dict[str, re.Pattern[str]] = {
    "x": re.compile(r"^[a-z0-9_]{1,50}$"),
    "instagram": re.compile(r"^[a-z0-9._]{1,30}$"),
    "tiktok": re.compile(r"^[a-z0-9._]{1,40}$"),
    "facebook": re.compile(r"^[a-z0-9]{1,80}$"),
    "youtube": re.compile(r"^[a-z0-9._-]{1,100}$"),
    "telegram": re.compile(r"^[a-z0-9_]{1,64}$"),
    "threads": re.compile(r"^[a-z0-9._]{1,30}$"),
    "bluesky": re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$"),
    "mastodon": re.compile(r"^[a-z0-9_]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$"),
}


# -- normalisation ------------------------------------------------------------------------------


def normalise_platform(value: str | None) -> str | None:
    """The canonical platform name for `value` (aliases accepted), or None if unknown."""
    if not value:
        return None
    name = value.strip().lower()
    name = PLATFORM_ALIASES.get(name, name)
    return name if name in PLATFORMS else None


@dataclass(frozen=True, slots=True)
class ProfileRef:
    """An account as named by a profile or post URL: a handle, a platform user id, or both."""

    handle: str | None = None
    user_id: str | None = None


def _canonical_handle(platform: str, value: str) -> str:
    handle = value.strip().lstrip("@").lower()
    if platform == "facebook":
        # Facebook ignores dots in usernames: "budi.santoso" and "budisantoso" are one account.
        handle = handle.replace(".", "")
    return handle


def normalise_handle(platform: str, value: str | None) -> str | None:
    """The canonical form of a handle (case, leading @, profile-URL forms); ValueError if bad."""
    if value is None or not value.strip():
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if "/" in text or text.lower().startswith(("http:", "https:", "www.")):
        ref = parse_profile_url(platform, text)
        if ref.handle is None:
            raise ValueError(f"{value!r} names an account by id, not by handle")
        return ref.handle
    handle = _canonical_handle(platform, text)
    pattern = _HANDLE_PATTERN.get(platform)
    if pattern is not None and not pattern.match(handle):
        raise ValueError(f"{value!r} is not a valid {platform} handle")
    return handle


def _host(netloc: str) -> str:
    host = netloc.lower().rsplit("@", 1)[-1].split(":", 1)[0]
    return host[4:] if host.startswith("www.") else host


def parse_profile_url(platform: str, url: str) -> ProfileRef:
    """The account a profile URL (or a post permalink) names on `platform`; ValueError if none."""
    text = url.strip()
    if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL")
    host = _host(parts.netloc)
    segments = [segment for segment in parts.path.split("/") if segment]
    query = parse_qs(parts.query)
    if platform == "mastodon":
        if segments and segments[0].startswith("@") and len(segments[0]) > 1:
            user = segments[0][1:].lower()
            handle = user if "@" in user else f"{user}@{host}"
            return ProfileRef(handle=normalise_handle("mastodon", handle))
        raise ValueError(f"{url!r} is not a Mastodon profile URL (https://instance/@user)")
    hosts = _HOSTS.get(platform)
    if hosts is None:
        raise ValueError(f"profile URLs are not supported for platform {platform!r}")
    if host not in hosts:
        raise ValueError(f"{url!r} is not a {platform} URL (expected {hosts[0]})")
    if not segments:
        raise ValueError(f"{url!r} names no account")
    first = segments[0]
    if platform == "facebook":
        if first == "profile.php" and query.get("id"):
            return ProfileRef(user_id=query["id"][0].strip())
        if first == "people" and len(segments) >= 3 and segments[2].isdigit():
            return ProfileRef(user_id=segments[2])
    if platform == "x":
        if first == "i" and len(segments) >= 3 and segments[1] == "user":
            return ProfileRef(user_id=segments[2])
        if first == "intent" and query.get("user_id"):
            return ProfileRef(user_id=query["user_id"][0].strip())
    if platform == "youtube":
        if first == "channel" and len(segments) >= 2:
            return ProfileRef(user_id=segments[1])
        if first in ("c", "user") and len(segments) >= 2:
            first = segments[1]
        elif not first.startswith("@"):
            raise ValueError(f"{url!r} is not a YouTube channel URL (/@handle or /channel/ID)")
    if platform == "bluesky":
        if first != "profile" or len(segments) < 2:
            raise ValueError(f"{url!r} is not a Bluesky profile URL (bsky.app/profile/...)")
        actor = segments[1]
        if actor.startswith("did:"):
            return ProfileRef(user_id=actor)
        first = actor
    if platform in ("tiktok", "threads") and not first.startswith("@"):
        raise ValueError(f"{url!r} is not a {platform} profile URL (/@handle)")
    if first.lower() in _RESERVED.get(platform, frozenset()):
        raise ValueError(f"{url!r} is a {platform} page, not an account")
    return ProfileRef(handle=normalise_handle(platform, first))


def handle_from_permalink(platform: str, url: str | None) -> str | None:
    """The author handle embedded in a post's permalink (x, tiktok, facebook, ...), if any."""
    if not url:
        return None
    platform = normalise_platform(platform) or ""
    if platform not in _HOSTS and platform != "mastodon":
        return None
    try:
        return parse_profile_url(platform, url).handle
    except ValueError:
        return None


def validate_nip(value: str, today: date | None = None) -> str:
    """An 18-digit NIP with a valid birth date, appointment month and gender digit; ValueError."""
    digits = re.sub(r"[\s.\-]", "", value)
    if re.fullmatch(r"\d+(\.\d+)?[eE]\+?\d+", value.strip()):
        raise ValueError(f"{value!r} looks like a number in scientific notation; store NIP as text")
    if not digits.isdigit() or len(digits) != 18:
        raise ValueError(f"{value!r} is not 18 digits")
    current = today or datetime.now(UTC).date()
    try:
        birth = date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise ValueError(f"{digits}: birth date {digits[0:8]} is not a valid date") from None
    if not 1930 <= birth.year <= current.year - 17:
        raise ValueError(f"{digits}: birth year {birth.year} is not plausible")
    year, month = int(digits[8:12]), int(digits[12:14])
    if not 1 <= month <= 12:
        raise ValueError(f"{digits}: appointment month {digits[8:14]} has no month {month:02d}")
    appointed = year * 12 + month - 1
    if appointed - (birth.year * 12 + birth.month - 1) < 17 * 12:
        raise ValueError(f"{digits}: appointed {digits[8:14]} before the age of 17")
    if appointed > current.year * 12 + current.month - 1 + 12:
        raise ValueError(f"{digits}: appointment month {digits[8:14]} is in the future")
    if digits[14] not in "12":
        raise ValueError(f"{digits}: gender digit {digits[14]} must be 1 or 2")
    return digits


# -- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One validated registry row (an account of a person)."""

    line: int
    nama: str
    instansi: str
    platform: str
    nip: str | None = None
    unit_kerja: str | None = None
    jabatan: str | None = None
    wilayah: str | None = None
    handle: str | None = None
    user_id: str | None = None
    profile_url: str | None = None
    url_handle: str | None = None
    url_user_id: str | None = None

    @property
    def effective_user_id(self) -> str | None:
        """The platform user id, given or read from the profile URL."""
        return self.user_id or self.url_user_id

    @property
    def effective_handle(self) -> str | None:
        """The handle, given or read from the profile URL."""
        return self.handle or self.url_handle

    @property
    def account_key(self) -> str:
        """Stable identity within a platform: the user id when known, else the handle."""
        if self.effective_user_id:
            return f"id:{self.effective_user_id}"
        return f"@{self.effective_handle}"

    def values(self) -> dict[str, Any]:
        """Column values for `registry_accounts`."""
        return {
            "nip": self.nip,
            "nama": self.nama,
            "instansi": self.instansi,
            "unit_kerja": self.unit_kerja,
            "jabatan": self.jabatan,
            "wilayah": self.wilayah,
            "platform": self.platform,
            "handle": self.handle,
            "user_id": self.user_id,
            "profile_url": self.profile_url,
            "url_handle": self.url_handle,
            "url_user_id": self.url_user_id,
            "account_key": self.account_key,
        }


def _clean_cell(value: Any) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).replace("\x00", "").strip()
    return text or None


def _cell_from_xlsx(column: str, value: Any) -> str | None:
    """Spreadsheet cells: numbers that Excel rounded (long ids, NIPs) are refused, not guessed."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if column in ("nip", "user_id"):
            raise ValueError(
                f"stored as a number ({value!r}), digits may be lost; format the column as text"
            )
        return _clean_cell(int(value) if value.is_integer() else value)
    if isinstance(value, int):
        if column in ("nip", "user_id") and abs(value) >= 2**53:
            raise ValueError(
                f"stored as a number ({value}), digits may be lost; format the column as text"
            )
        return str(value)
    if isinstance(value, datetime | date):
        raise ValueError(f"is a date ({value}), expected text")
    return _clean_cell(value)


def _header_name(value: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(value or "").strip().lower())


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, {column: raw value}) for every non-blank data row of a CSV or XLSX file."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        yield from _read_csv(path)
    else:
        raise InputFileError(str(path), None, "expected a .csv or .xlsx file")


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(str(path), None, "no such file") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(
            str(path), None, f"not UTF-8 text ({exc.reason}); save it as 'CSV UTF-8'"
        ) from None
    header_line = text.split("\n", 1)[0]
    # Excel in the Indonesian locale saves CSV with ';' (',' is the decimal comma there).
    delimiter = max((",", ";", "\t"), key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    try:
        for row in reader:
            if header is None:
                header = [_header_name(cell) for cell in row]
                yield 1, {"__header__": header}
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise InputFileError(
                    str(path), reader.line_num, f"{len(row)} cells, header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, row, strict=False))
    except csv.Error as exc:
        raise InputFileError(str(path), reader.line_num, f"malformed CSV: {exc}") from None


def _read_xlsx(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise InputFileError(str(path), None, "no such file") from None
    except Exception as exc:  # openpyxl raises several unrelated types for a broken file
        raise InputFileError(str(path), None, f"not a readable .xlsx workbook: {exc}") from None
    try:
        sheet = workbook.worksheets[0]
        header: list[str] | None = None
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if not any(cell is not None and str(cell).strip() for cell in row):
                continue
            if header is None:
                header = [_header_name(cell) for cell in row]
                yield number, {"__header__": header}
                continue
            yield number, dict(zip(header, row, strict=False))
    finally:
        workbook.close()


def _entry_from_row(
    line: int, row: Mapping[str, Any], is_xlsx: bool, today: date | None
) -> tuple[RegistryEntry | None, list[tuple[str, str]]]:
    """Validate one row; returns (entry, [(column, message), ...])."""
    errors: list[tuple[str, str]] = []
    cells: dict[str, str | None] = {}
    for column in REGISTRY_COLUMNS:
        try:
            raw = row.get(column)
            cells[column] = _cell_from_xlsx(column, raw) if is_xlsx else _clean_cell(raw)
        except ValueError as exc:
            errors.append((column, str(exc)))
            cells[column] = None
    for column in ("nama", "instansi"):
        if not cells[column] and column not in {c for c, _ in errors}:
            errors.append((column, "is required"))
    platform = normalise_platform(cells["platform"])
    if platform is None:
        errors.append(
            (
                "platform",
                f"unknown platform {cells['platform']!r} (expected one of {', '.join(PLATFORMS)})"
                if cells["platform"]
                else "is required",
            )
        )
    nip = None
    if cells["nip"]:
        try:
            nip = validate_nip(cells["nip"], today)
        except ValueError as exc:
            errors.append(("nip", str(exc)))
    handle = url_handle = url_user_id = None
    user_id = cells["user_id"]
    if user_id is not None and re.search(r"\s", user_id):
        errors.append(("user_id", f"{user_id!r} contains spaces"))
    if platform is not None:
        if cells["handle"]:
            try:
                handle = normalise_handle(platform, cells["handle"])
            except ValueError as exc:
                errors.append(("handle", str(exc)))
        if cells["profile_url"]:
            try:
                ref = parse_profile_url(platform, cells["profile_url"])
                url_handle, url_user_id = ref.handle, ref.user_id
            except ValueError as exc:
                errors.append(("profile_url", str(exc)))
        if handle and url_handle and handle != url_handle:
            errors.append(
                ("profile_url", f"names @{url_handle} but the handle column says @{handle}")
            )
        if user_id and url_user_id and user_id != url_user_id:
            errors.append(
                ("profile_url", f"names user id {url_user_id} but user_id says {user_id}")
            )
    if not any(cells[column] for column in IDENTITY_COLUMNS):
        errors.append(("handle", "one of handle, user_id or profile_url is required"))
    if errors or platform is None:
        return None, errors
    entry = RegistryEntry(
        line=line,
        nama=str(cells["nama"]),
        instansi=str(cells["instansi"]),
        platform=platform,
        nip=nip,
        unit_kerja=cells["unit_kerja"],
        jabatan=cells["jabatan"],
        wilayah=cells["wilayah"],
        handle=handle,
        user_id=user_id,
        profile_url=cells["profile_url"],
        url_handle=url_handle if url_handle != handle else None,
        url_user_id=url_user_id if url_user_id != user_id else None,
    )
    return entry, []


def read_registry_file(path: str | Path, today: date | None = None) -> list[RegistryEntry]:
    """Read and validate a whole registry file; InputFileError lists every bad line and column."""
    file_path = Path(path)
    is_xlsx = file_path.suffix.lower() in (".xlsx", ".xlsm")
    entries: list[RegistryEntry] = []
    errors: list[str] = []
    seen_ids: dict[tuple[str, str], int] = {}
    seen_handles: dict[tuple[str, str], int] = {}
    header: list[str] = []
    for line, row in _read_rows(file_path):
        if "__header__" in row:
            header = row["__header__"]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if not any(c in header for c in IDENTITY_COLUMNS):
                missing.append("handle|user_id|profile_url")
            if missing:
                raise InputFileError(
                    str(path), line, f"header lacks column(s): {', '.join(missing)}"
                )
            duplicated = sorted({c for c in header if c and header.count(c) > 1})
            if duplicated:
                raise InputFileError(
                    str(path), line, f"header repeats column(s): {', '.join(duplicated)}"
                )
            unknown = [c for c in header if c and c not in REGISTRY_COLUMNS]
            if unknown:
                log.warning("%s: ignoring unknown column(s): %s", path, ", ".join(unknown))
            continue
        entry, row_errors = _entry_from_row(line, row, is_xlsx, today)
        errors.extend(f"line {line}, column {column}: {message}" for column, message in row_errors)
        if entry is not None:
            duplicate = None
            if entry.effective_user_id:
                identity = (entry.platform, entry.effective_user_id)
                duplicate = seen_ids.get(identity)
                seen_ids.setdefault(identity, line)
            if duplicate is None and entry.effective_handle:
                identity = (entry.platform, entry.effective_handle)
                duplicate = seen_handles.get(identity)
                seen_handles.setdefault(identity, line)
            if duplicate is not None:
                errors.append(
                    f"line {line}, column handle: duplicate {entry.platform} account "
                    f"(same account as line {duplicate})"
                )
            else:
                entries.append(entry)
        if len(errors) >= MAX_REPORTED_ERRORS:
            errors.append("... (stopped after this many errors)")
            break
    if not header:
        raise InputFileError(str(path), None, "empty file: no header row")
    if errors:
        listing = "\n  ".join(errors)
        raise InputFileError(
            str(path),
            None,
            f"{len(errors)} error(s), nothing imported:\n  {listing}",
        )
    return entries


# -- import -------------------------------------------------------------------------------------


@dataclass
class RegistryImportReport:
    """What one registry import did."""

    path: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    revision: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything in the registry changed (links must then be refreshed)."""
        return bool(self.inserted or self.updated or self.deactivated)


def _latest_revision(conn: Connection) -> int:
    value = conn.execute(select(func.max(schema.registry_imports.c.revision))).scalar()
    return int(value or 0)


def current_revision(store: Store) -> int:
    """The registry revision: bumped by every import that changed something (0 = none yet)."""
    with store.connect() as conn:
        return _latest_revision(conn)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_registry(
    store: Store, path: str | Path, *, now: datetime | None = None, today: date | None = None
) -> RegistryImportReport:
    """Import a registry file in one transaction: updates in place, deactivates missing rows."""
    file_path = Path(path)
    entries = read_registry_file(file_path, today=today)
    moment = now or utcnow()
    report = RegistryImportReport(path=str(path), rows=len(entries))
    try:
        _apply_import(store, file_path, str(path), entries, moment, report)
    except IntegrityError as exc:
        raise StoreError(
            f"registry import of {path} conflicts with stored accounts: {exc.orig}"
        ) from exc
    log.info(
        "registry %s: %d rows, %d new, %d updated, %d deactivated (revision %d)",
        path,
        report.rows,
        report.inserted,
        report.updated,
        report.deactivated,
        report.revision,
    )
    return report


def _apply_import(
    store: Store,
    file_path: Path,
    name: str,
    entries: Sequence[RegistryEntry],
    moment: datetime,
    report: RegistryImportReport,
) -> None:
    accounts = schema.registry_accounts
    with store.transaction() as conn:
        existing = [dict(row._mapping) for row in conn.execute(select(accounts))]
        by_user_id: dict[tuple[str, str], dict[str, Any]] = {}
        by_handle: dict[tuple[str, str], dict[str, Any]] = {}
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        # Active rows win the lookups, so a re-used handle attaches to the live account.
        for row in sorted(existing, key=lambda r: (r["active"], r["id"])):
            by_key[(row["platform"], row["account_key"])] = row
            for value in (row["user_id"], row["url_user_id"]):
                if value:
                    by_user_id[(row["platform"], value)] = row
            for value in (row["handle"], row["url_handle"]):
                if value:
                    by_handle[(row["platform"], value)] = row
        claimed: set[int] = set()
        superseded: set[int] = set()
        updates: list[tuple[int, dict[str, Any]]] = []
        inserts: list[dict[str, Any]] = []
        for entry in entries:
            row = None
            candidates = [
                by_user_id.get((entry.platform, entry.effective_user_id or "")),
                by_handle.get((entry.platform, entry.effective_handle or "")),
                by_key.get((entry.platform, entry.account_key)),
            ]
            for candidate in candidates:
                if candidate is None or candidate["id"] in claimed:
                    continue
                known_id = candidate["user_id"] or candidate["url_user_id"]
                if known_id and entry.effective_user_id and known_id != entry.effective_user_id:
                    continue  # same handle, different user id: another account took the name
                if not _same_person(candidate, entry):
                    # The account now belongs to someone else. Updating the row in place would
                    # put the new person's name and NIP on every case already linked to it.
                    superseded.add(candidate["id"])
                    continue
                row = candidate
                break
            values = entry.values()
            if row is None:
                inserts.append(
                    {
                        **values,
                        "active": True,
                        "source_line": entry.line,
                        "first_imported_at": moment,
                        "updated_at": moment,
                    }
                )
                continue
            claimed.add(row["id"])
            if row["active"] and all(row[name] == value for name, value in values.items()):
                report.unchanged += 1
                continue
            updates.append((row["id"], {**values, "active": True, "source_line": entry.line}))
        deactivate = [row["id"] for row in existing if row["active"] and row["id"] not in claimed]
        report.inserted, report.updated, report.deactivated = (
            len(inserts),
            len(updates),
            len(deactivate),
        )
        report.revision = _latest_revision(conn) + (1 if report.changed else 0)
        import_id = conn.execute(
            insert(schema.registry_imports).values(
                source_file=name,
                file_sha256=_file_sha256(file_path),
                imported_at=moment,
                rows=report.rows,
                inserted=report.inserted,
                updated=report.updated,
                unchanged=report.unchanged,
                deactivated=report.deactivated,
                revision=report.revision,
            )
        ).inserted_primary_key[0]
        for start in range(0, len(deactivate), 500):
            conn.execute(
                update(accounts)
                .where(accounts.c.id.in_(deactivate[start : start + 500]))
                .values(active=False, updated_at=moment, last_import_id=import_id)
            )
        # A row whose account passed to another person keeps its person (and the cases linked
        # to it) but frees its account key, so the new person's row can take it.
        for account_id in sorted(superseded - claimed):
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(account_key=f"retired:{account_id}:" + accounts.c.account_key)
            )
        # Keys move before new rows arrive, so an account that gained a user id frees its
        # old handle key for a new row in the same import.
        for account_id, values in updates:
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(**values, updated_at=moment, last_import_id=import_id)
            )
        if inserts:
            conn.execute(
                insert(accounts), [{**row, "last_import_id": import_id} for row in inserts]
            )


def _same_person(row: Mapping[str, Any], entry: RegistryEntry) -> bool:
    """Whether a stored account row and a new registry entry name the same person.

    NIPs decide when both have one; otherwise the identifying words of the names must agree
    (degrees and titles aside: "Budi Santoso" and "Budi Santoso, S.Pd." are one person).
    """
    from pipeline.linker import name_tokens  # the linker imports this module

    if row["nip"] and entry.nip:
        return bool(row["nip"] == entry.nip)
    return set(name_tokens(row["nama"])) == set(name_tokens(entry.nama))


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryAccount:
    """A registry account as the linker and the queue see it."""

    id: int
    nama: str
    instansi: str
    platform: str
    nip: str | None = None
    unit_kerja: str | None = None
    jabatan: str | None = None
    wilayah: str | None = None
    handle: str | None = None
    user_id: str | None = None
    profile_url: str | None = None
    url_handle: str | None = None
    url_user_id: str | None = None
    active: bool = True

    @property
    def person_key(self) -> str:
        """One person across accounts: the NIP, else name and agency."""
        return self.nip or f"{self.nama.lower()}|{self.instansi.lower()}"


_ACCOUNT_FIELDS = tuple(f.name for f in dataclasses.fields(RegistryAccount))


def account_from_row(row: Mapping[str, Any]) -> RegistryAccount:
    """Build a RegistryAccount from a `registry_accounts` row mapping."""
    return RegistryAccount(**{name: row[name] for name in _ACCOUNT_FIELDS})


def load_accounts(store: Store, *, include_inactive: bool = False) -> list[RegistryAccount]:
    """Registry accounts (active only by default), by id."""
    table = schema.registry_accounts
    query = select(table).order_by(table.c.id)
    if not include_inactive:
        query = query.where(table.c.active.is_(True))
    with store.connect() as conn:
        return [account_from_row(row._mapping) for row in conn.execute(query)]


def find_accounts(store: Store, ident: str) -> list[RegistryAccount]:
    """All accounts of the person named by an 18-digit NIP, or by a registry account id."""
    table = schema.registry_accounts
    text = re.sub(r"[\s.\-]", "", ident)
    if not text.isdigit():
        return []
    with store.connect() as conn:
        nip = text
        if len(text) != 18:
            row = conn.execute(select(table).where(table.c.id == int(text))).first()
            if row is None:
                return []
            account = account_from_row(row._mapping)
            if account.nip is None:
                return [account]
            nip = account.nip
        rows = conn.execute(select(table).where(table.c.nip == nip).order_by(table.c.id))
        return [account_from_row(row._mapping) for row in rows]


def account_link_counts(store: Store, account_ids: Sequence[int]) -> dict[int, int]:
    """How many posts are linked to each account."""
    if not account_ids:
        return {}
    m = schema.matches
    with store.connect() as conn:
        rows = conn.execute(
            select(m.c.account_id, func.count())
            .where(m.c.account_id.in_(list(account_ids)))
            .group_by(m.c.account_id)
        )
        return {int(account_id): int(count) for account_id, count in rows}
