"""Posts from local files: Post JSON Lines, 4CAT/Zeeschuimer NDJSON exports and CSV.

Used both as the `file` collector (a file or folder, read incrementally: the cursor keeps a byte
offset per file, so a re-run reads only appended lines) and by `netra import` through
`read_posts_file` ("-" reads standard input).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors.base import MAX_REJECT_SAMPLES, Collector, Page, Quota, Reject, Target, register
from pipeline.errors import CollectorError, InputFileError, UsageError
from pipeline.records import (
    METRIC_NAMES,
    POST_FIELDS,
    Post,
    RecordError,
    check_encodable,
    parse_datetime,
)

logger = logging.getLogger(__name__)

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv")
PAGE_SIZE = 500
HEAD_BYTES = 4096

SkipHandler = Callable[[int, str, Any], None]


def read_posts_file(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    platform: str | None = None,
    skip_invalid: bool = False,
    file_format: str | None = None,
    timezone: str | None = None,
    delimiter: str | None = None,
    on_skip: SkipHandler | None = None,
) -> Iterator[tuple[int, Post]]:
    """Yield (line number, Post) from a JSONL/NDJSON or CSV file; "-" reads standard input.

    A bad line raises InputFileError naming the file and line, or with `skip_invalid` is
    skipped and reported to `on_skip(line, reason, payload)`.
    """
    reader = _RecordReader(
        str(path),
        columns=columns,
        platform=platform,
        file_format=file_format,
        timezone=timezone,
        delimiter=delimiter,
    )
    if str(path) == "-":
        stream: IO[bytes] = sys.stdin.buffer
        records = reader.records(stream, 0, 0, complete_lines_only=False)
        yield from _checked(records, str(path), skip_invalid, on_skip)
        return
    try:
        with open(path, "rb") as stream_file:
            records = reader.records(stream_file, 0, 0, complete_lines_only=False)
            yield from _checked(records, str(path), skip_invalid, on_skip)
    except FileNotFoundError:
        raise InputFileError(str(path), None, "no such file") from None
    except IsADirectoryError:
        raise InputFileError(str(path), None, "is a directory, expected a file") from None


def _checked(
    records: Iterator[_Record], path: str, skip_invalid: bool, on_skip: SkipHandler | None
) -> Iterator[tuple[int, Post]]:
    for record in records:
        if record.post is not None:
            yield record.line, record.post
        elif skip_invalid:
            logger.warning("%s:%d: skipped (%s)", path, record.line, record.error)
            if on_skip is not None:
                on_skip(record.line, record.error or "invalid", record.payload)
        else:
            raise InputFileError(path, record.line, record.error or "invalid record")


@dataclass
class _Record:
    line: int
    end_offset: int
    post: Post | None
    error: str | None = None
    payload: Any = None


class _RecordReader:
    """Turns the bytes of one file into records, tracking line numbers and byte offsets."""

    def __init__(
        self,
        path: str,
        *,
        columns: Mapping[str, str] | None,
        platform: str | None,
        file_format: str | None,
        timezone: str | None,
        delimiter: str | None,
    ) -> None:
        self.path = path
        self.platform = platform
        self.columns = dict(columns or {})
        unknown = set(self.columns) - set(POST_FIELDS) - set(METRIC_NAMES) - {"raw"}
        if unknown:
            raise UsageError(
                f"columns: unknown field(s) {', '.join(sorted(unknown))}; valid: "
                f"{', '.join(f for f in POST_FIELDS if f != 'raw')}, {', '.join(METRIC_NAMES)}"
            )
        self.format = (file_format or _guess_format(path)).lower()
        if self.format not in ("jsonl", "csv"):
            raise UsageError(f"file format {self.format!r} is not one of jsonl, csv")
        self.delimiter = delimiter or ("\t" if path.lower().endswith(".tsv") else ",")
        try:
            self.zone = ZoneInfo(timezone) if timezone else None
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {timezone!r} (e.g. Asia/Jakarta)") from None

    def records(
        self, stream: IO[bytes], offset: int, line: int, *, complete_lines_only: bool
    ) -> Iterator[_Record]:
        """Records from `offset` (which starts line `line + 1`) to the end of the stream."""
        if self.format == "csv":
            yield from self._csv_records(stream, offset, line, complete_lines_only)
        else:
            yield from self._json_records(stream, offset, line, complete_lines_only)

    def _json_records(
        self, stream: IO[bytes], offset: int, line: int, complete_lines_only: bool
    ) -> Iterator[_Record]:
        if offset:
            stream.seek(offset)
        for raw_line in _lines(stream):
            if complete_lines_only and not raw_line.endswith(b"\n"):
                return  # a writer is still appending this line; take it next run
            line += 1
            offset += len(raw_line)
            text = self._decode(raw_line, line).strip()
            if not text:
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield _Record(
                    line,
                    offset,
                    None,
                    f"invalid JSON: {exc.msg} at column {exc.colno}",
                    text[:2000],
                )
                continue
            except ValueError as exc:  # e.g. an integer longer than Python will convert
                yield _Record(line, offset, None, f"invalid JSON: {exc}", text[:2000])
                continue
            try:
                post = self._post_from_object(data)
            except (RecordError, ValueError, KeyError, TypeError) as exc:
                yield _Record(line, offset, None, _describe(exc), data)
                continue
            yield _Record(line, offset, post)

    def _post_from_object(self, data: Any) -> Post:
        if not isinstance(data, dict):
            raise RecordError("<record>", "expected a JSON object")
        mapper = _external_mapper(data)
        if mapper is not None:
            check_encodable(data)  # Post.from_dict checks its own input; mappers do not
            return mapper(data)
        if self.platform and not data.get("platform"):
            data = {**data, "platform": self.platform}
        return Post.from_dict(data)

    def _csv_records(
        self, stream: IO[bytes], offset: int, line: int, complete_lines_only: bool
    ) -> Iterator[_Record]:
        header_line = stream.readline()
        if not header_line:
            return
        header = next(csv.reader([self._decode(header_line, 1)], delimiter=self.delimiter), [])
        header = [name.strip() for name in header]
        self._check_header(header)
        if offset < len(header_line):
            offset, line = len(header_line), 1
        else:
            stream.seek(offset)
        feeder = _LineFeeder(stream, complete_lines_only, self._decode, line)
        reader = csv.reader(feeder, delimiter=self.delimiter)
        while True:
            start_line = line + feeder.lines_read + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield _Record(start_line, offset + feeder.bytes_read, None, f"CSV: {exc}")
                continue
            if feeder.incomplete:
                return  # the last record has no line end yet: a writer is still appending
            end = offset + feeder.bytes_read
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield _Record(
                    start_line, end, None, f"expected {len(header)} columns, found {len(row)}", row
                )
                continue
            values = dict(zip(header, row, strict=True))
            try:
                post = self._post_from_row(values)
            except (RecordError, ValueError) as exc:
                yield _Record(start_line, end, None, _describe(exc), values)
                continue
            yield _Record(start_line, end, post)

    def _decode(self, raw_line: bytes, line: int) -> str:
        """A line as text; a byte that is not UTF-8 stops the file, naming its line."""
        try:
            # Excel and many Windows tools write a byte-order mark at the start of UTF-8 files.
            return raw_line.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            # A whole file in another encoding (Windows-1252 from Excel) would otherwise be
            # stored with replacement characters: evidence altered, so refuse the file.
            advice = "save it as 'CSV UTF-8'" if self.format == "csv" else "save it as UTF-8"
            raise InputFileError(
                self.path,
                line,
                f"not UTF-8 text ({exc.reason}, byte {exc.start + 1} of the line); {advice}",
            ) from None

    def _check_header(self, header: list[str]) -> None:
        mapping = self._column_map(header)
        missing = [name for name in ("post_id", "text", "created_at") if name not in mapping]
        if not self.platform and "platform" not in mapping:
            missing.insert(0, "platform")
        if missing:
            raise InputFileError(
                self.path,
                1,
                f"CSV header has no column for {', '.join(missing)} "
                '(name them in the header or map them with columns = {field = "column"})',
            )

    def _column_map(self, header: list[str]) -> dict[str, str]:
        mapping = {name: name for name in header if name in POST_FIELDS or name in METRIC_NAMES}
        for field_name, column in self.columns.items():
            if column not in header:
                raise InputFileError(
                    self.path, 1, f"column {column!r} (mapped to {field_name}) is not in the header"
                )
            mapping[field_name] = column
        return mapping

    def _post_from_row(self, row: dict[str, str]) -> Post:
        mapping = self._column_map(list(row))
        data: dict[str, Any] = {}
        metrics: dict[str, int] = {}
        for field_name, column in mapping.items():
            value = row[column].strip() if field_name != "text" else row[column]
            if field_name in METRIC_NAMES:
                if value:
                    metrics[field_name] = _parse_count(value, field_name)
            elif field_name != "raw" and value != "":
                data[field_name] = value
        data.setdefault("platform", self.platform)
        data.setdefault("text", "")
        if "created_at" in data:
            data["created_at"] = self._parse_time(data["created_at"])
        if metrics:
            data["metrics"] = metrics
        data["raw"] = row
        return Post.from_dict(data)

    def _parse_time(self, value: str) -> datetime:
        try:
            return parse_datetime(value)
        except RecordError:
            if self.zone is None:
                raise
        try:
            naive = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RecordError("created_at", f"not an ISO 8601 datetime: {value!r}") from None
        return parse_datetime(naive.replace(tzinfo=self.zone) if naive.tzinfo is None else naive)


class _LineFeeder:
    """Feeds decoded lines to csv.reader while counting the bytes it has consumed."""

    def __init__(
        self,
        stream: IO[bytes],
        complete_lines_only: bool,
        decode: Callable[[bytes, int], str],
        line: int,
    ) -> None:
        self.lines = _lines(stream)
        self.decode = decode
        self.first_line = line + 1
        self.complete_lines_only = complete_lines_only
        self.bytes_read = 0
        self.lines_read = 0
        self.incomplete = False

    def __iter__(self) -> _LineFeeder:
        return self

    def __next__(self) -> str:
        raw_line = next(self.lines)
        if not raw_line.endswith(b"\n") and self.complete_lines_only:
            self.incomplete = True
        self.bytes_read += len(raw_line)
        self.lines_read += 1
        if self.incomplete:
            # A writer may have stopped inside a multi-byte character; the record is dropped
            # and read again whole next run, so it must not fail the file.
            return raw_line.decode("utf-8", errors="replace")
        return self.decode(raw_line, self.first_line + self.lines_read - 1)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        raw_line = stream.readline()
        if not raw_line:
            return
        yield raw_line


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RecordError) else f"{type(exc).__name__}: {exc}"


def _parse_count(value: str, field_name: str) -> int:
    cleaned = value.replace(",", "").replace(".", "").replace(" ", "")
    if not cleaned.isdigit():
        raise RecordError(field_name, f"expected a whole number, got {value!r}")
    return int(cleaned)


def _guess_format(path: str) -> str:
    return "csv" if path.lower().endswith(CSV_SUFFIXES) else "jsonl"


def _external_mapper(data: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Post] | None:
    """A mapper for exports from other tools (4CAT/Zeeschuimer), or None for Post JSON."""
    from collectors import zeeschuimer

    return zeeschuimer.mapper_for(data)


# --------------------------------------------------------------------------- the collector


@register
class FileCollector(Collector):
    """Reads a file or a folder of JSONL/NDJSON/CSV files, only what was appended since last run."""

    name: ClassVar[str] = "file"
    target_kinds: ClassVar[tuple[str, ...]] = ("path",)
    default_base_url: ClassVar[str | None] = None
    credential_vars: ClassVar[dict[str, str]] = {}

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Yield pages of up to 500 posts; each cursor records every file's read position."""
        root = Path(target.value).expanduser()
        if not root.exists():
            raise CollectorError(f"file: {root} does not exist")
        files = _files_under(root)
        state = _load_state(cursor)
        positions: dict[str, dict[str, Any]] = dict(state.get("files", {}))
        options = self.options
        for path in files:
            key = str(path.resolve())
            stat = path.stat()
            saved = positions.get(key)
            if (
                saved
                and saved.get("size") == stat.st_size
                and saved.get("mtime") == stat.st_mtime_ns
            ):
                continue
            offset, line = _resume_point(path, saved, stat.st_size)
            reader = _RecordReader(
                str(path),
                columns=options.get("columns"),
                platform=options.get("platform"),
                file_format=options.get("format"),
                timezone=options.get("timezone"),
                delimiter=options.get("delimiter"),
            )
            skip_invalid = bool(options.get("skip_invalid", False))
            posts: list[Post] = []
            skipped = 0
            rejects: list[Reject] = []
            with open(path, "rb") as stream:
                for record in reader.records(stream, offset, line, complete_lines_only=True):
                    if record.post is None:
                        if not skip_invalid:
                            raise InputFileError(str(path), record.line, record.error or "invalid")
                        logger.warning("%s:%d: skipped (%s)", path, record.line, record.error)
                        skipped += 1
                        if len(rejects) < MAX_REJECT_SAMPLES:
                            rejects.append(
                                Reject(f"{path}:{record.line}: {record.error}", record.payload)
                            )
                    else:
                        posts.append(record.post)
                    offset, line = record.end_offset, record.line
                    if len(posts) >= quota.page_size(PAGE_SIZE):
                        positions[key] = _position(path, offset, line, stat, final=False)
                        yield Page(posts, _dump_state(positions), skipped, rejects)
                        posts, skipped, rejects = [], 0, []
            positions[key] = _position(path, offset, line, stat, final=True)
            yield Page(posts, _dump_state(positions), skipped, rejects)


def _files_under(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() in JSON_SUFFIXES + CSV_SUFFIXES
    )


def _head_hash(path: Path, length: int) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read(min(length, HEAD_BYTES))).hexdigest()


def _resume_point(path: Path, saved: Mapping[str, Any] | None, size: int) -> tuple[int, int]:
    """Where to continue reading; from the start when the file was truncated or rewritten."""
    if not saved:
        return 0, 0
    offset = int(saved.get("offset", 0))
    if offset > size or _head_hash(path, offset) != saved.get("head"):
        logger.info("%s was rewritten since the last run; reading it again from the start", path)
        return 0, 0
    return offset, int(saved.get("line", 0))


def _position(
    path: Path, offset: int, line: int, stat: os.stat_result, *, final: bool
) -> dict[str, Any]:
    # size/mtime only mark the file as fully read once we reached its end.
    return {
        "offset": offset,
        "line": line,
        "head": _head_hash(path, offset),
        "size": stat.st_size if final and offset == stat.st_size else None,
        "mtime": stat.st_mtime_ns if final and offset == stat.st_size else None,
    }


def _load_state(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except json.JSONDecodeError:
        raise CollectorError("file: saved cursor is not valid JSON") from None
    return state if isinstance(state, dict) else {}


def _dump_state(positions: Mapping[str, Any]) -> str:
    return json.dumps({"v": 1, "files": positions}, sort_keys=True)


def read_posts_text(text: str, **kwargs: Any) -> list[Post]:
    """Parse posts from an in-memory JSONL/CSV text (used by tests and small imports)."""
    stream = io.BytesIO(text.encode("utf-8"))
    reader = _RecordReader(
        "<text>",
        columns=kwargs.get("columns"),
        platform=kwargs.get("platform"),
        file_format=kwargs.get("file_format", "jsonl"),
        timezone=kwargs.get("timezone"),
        delimiter=kwargs.get("delimiter"),
    )
    records = reader.records(stream, 0, 0, complete_lines_only=False)
    return [post for _, post in _checked(records, "<text>", False, None)]
