"""News feeds: RSS 0.91/0.92/2.0, RSS 1.0 (RDF) and Atom 1.0.

News sites often report violations before anyone else. A feed is one document, fetched with a
conditional GET (ETag / Last-Modified kept in the cursor) so an unchanged feed costs a 304.
Old RSS 0.91 items carry no date: they take the channel's date, else the response's `Date`
header, and are marked `date_estimated` in the raw payload.
"""

from __future__ import annotations

import copy
import email.utils
import hashlib
import html
import json
import logging
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from collectors.base import (
    Collector,
    Page,
    ParsedItems,
    Quota,
    Target,
    html_to_text,
    parse_items,
    parse_time,
    register,
)
from pipeline.errors import ParseError, UsageError
from pipeline.records import Post

logger = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
RSS1 = "{http://purl.org/rss/1.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
XHTML = "{http://www.w3.org/1999/xhtml}"
# RFC 3986 scheme: an id starting like this is an absolute URI (http:, tag:, urn:), unique as is.
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S")


def _child_text(element: ElementTree.Element, *names: str) -> str | None:
    """The stripped text of the first named child that has any; Atom xhtml gives its markup."""
    for name in names:
        child = element.find(name)
        if child is None:
            continue
        # An xhtml construct is markup like type="html" (callers turn both into text), but
        # inline: its `text` is only the whitespace before the wrapping div.
        value = _xhtml_markup(child) if child.get("type") == "xhtml" else (child.text or "")
        if value.strip():
            return value.strip()
    return None


def _xhtml_markup(node: ElementTree.Element) -> str:
    """The HTML inside an Atom type="xhtml" construct (RFC 4287 §3.1.1.3: in a child div)."""
    wrapper = node.find(f"{XHTML}div")
    # Without the required div, take the construct's own children rather than lose the text.
    content = copy.deepcopy(wrapper if wrapper is not None else node)
    for element in content.iter():
        # ElementTree writes namespaced tags as `ns0:p`, which the HTML parser does not know.
        if isinstance(element.tag, str):
            element.tag = element.tag.rpartition("}")[2]
        element.attrib = {name.rpartition("}")[2]: value for name, value in element.attrib.items()}
    parts = [html.escape(content.text or "", quote=False)]
    parts.extend(
        ElementTree.tostring(child, encoding="unicode", method="html") for child in content
    )
    return "".join(parts)


def _item_id(item_id: str | None, link: str | None, feed_host: str | None) -> str | None:
    """A guid / Atom id that is not a URI ("12345") prefixed with its site's host.

    Such ids are only unique within one site, so two news sites would share `rss:12345`.
    URI ids are kept as they are, so ids already stored stay stable.
    """
    if not item_id or _URI_SCHEME.match(item_id):
        return item_id
    host = (urlsplit(link).netloc if link else "") or feed_host
    return f"{host.lower()}/{item_id}" if host else item_id


def _stable_id(*parts: str | None) -> str:
    joined = "\x1f".join(part or "" for part in parts)
    return "sha256:" + hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def _text(title: str | None, body: str | None, *, title_is_html: bool = False) -> str:
    # RSS titles and Atom type="text" titles are plain text: "<" there is a character.
    if title_is_html:
        title_text = html_to_text(title) if title else ""
    else:
        title_text = html.unescape(title or "").strip()
    body_text = html_to_text(body, keep_links=True) if body else ""
    if body_text.startswith(title_text):
        return body_text or title_text
    return f"{title_text}\n\n{body_text}".strip()


def _item_to_dict(element: ElementTree.Element) -> dict[str, Any]:
    """A JSON-able raw payload of an XML item (tag -> text, attributes kept for links)."""
    raw: dict[str, Any] = {}
    for child in element:
        tag = child.tag.split("}")[-1]
        value: Any = (
            _xhtml_markup(child) if child.get("type") == "xhtml" else child.text or ""
        ).strip()
        if child.attrib:
            value = {"text": value, **child.attrib} if value else dict(child.attrib)
        raw.setdefault(tag, []).append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in raw.items()}


def parse_feed(
    document: bytes | str, *, feed_url: str, fallback_date: datetime | None = None
) -> ParsedItems:
    """Posts from an RSS or Atom document; a document that is not XML raises ParseError."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as exc:
        raise ParseError(f"rss {feed_url}: not an XML feed ({exc})") from None
    host = urlsplit(feed_url).netloc or None
    context = f"rss {feed_url}"
    if root.tag == f"{ATOM}feed":
        feed_title = _child_text(root, f"{ATOM}title")
        title_node = root.find(f"{ATOM}title")
        if feed_title and title_node is not None and title_node.get("type") in ("html", "xhtml"):
            # The feed's title names the author of its entries: text, not markup.
            feed_title = html_to_text(feed_title) or None
        feed_date = _child_text(root, f"{ATOM}updated")
        return parse_items(
            root.findall(f"{ATOM}entry"),
            lambda entry: _atom_entry(entry, host, feed_title, feed_date),
            context=context,
        )
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise ParseError(f"{context}: <rss> without <channel>")
        items = channel.findall("item")
    elif root.tag == f"{RDF}RDF":
        channel = root.find(f"{RSS1}channel")
        items = root.findall(f"{RSS1}item")
    else:
        raise ParseError(f"{context}: root element <{root.tag}> is neither RSS nor Atom")
    feed_title = _child_text(channel, "title", f"{RSS1}title") if channel is not None else None
    channel_date = (
        _child_text(channel, "pubDate", "lastBuildDate", f"{DC}date")
        if channel is not None
        else None
    )
    fallback = channel_date or (fallback_date.isoformat() if fallback_date else None)
    return parse_items(
        items, lambda item: _rss_item(item, host, feed_title, fallback), context=context
    )


def _rss_item(
    item: ElementTree.Element, host: str | None, feed_title: str | None, fallback: str | None
) -> Post:
    title = _child_text(item, "title", f"{RSS1}title")
    link = _child_text(item, "link", f"{RSS1}link")
    guid = _child_text(item, "guid") or item.get(f"{RDF}about")
    body = _child_text(item, f"{CONTENT}encoded", "description", f"{RSS1}description")
    date = _child_text(item, "pubDate", f"{DC}date")
    raw = _item_to_dict(item)
    if not date:
        if not fallback:
            raise ValueError("item has no date and the feed gives none")
        date, raw["date_estimated"] = fallback, True
    if not (title or body):
        raise ValueError("item has neither title nor description")
    author = _child_text(item, f"{DC}creator", "author")
    return Post(
        platform="rss",
        post_id=_item_id(guid, link, host) or link or _stable_id(title, body, date),
        url=link,
        author_id=host,
        author_handle=host,
        author_name=author or feed_title,
        text=_text(title, body),
        created_at=parse_time(date),
        kind="post",
        raw=raw,
    )


def _atom_entry(
    entry: ElementTree.Element, host: str | None, feed_title: str | None, feed_date: str | None
) -> Post:
    title = _child_text(entry, f"{ATOM}title")
    title_node = entry.find(f"{ATOM}title")
    title_is_html = title_node is not None and title_node.get("type") in ("html", "xhtml")
    link = None
    for candidate in entry.findall(f"{ATOM}link"):
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            link = candidate.get("href")
            break
    body = _child_text(entry, f"{ATOM}content", f"{ATOM}summary")
    date = _child_text(entry, f"{ATOM}published", f"{ATOM}updated") or feed_date
    if not date:
        raise ValueError("entry has no date")
    author_node = entry.find(f"{ATOM}author")
    author = _child_text(author_node, f"{ATOM}name") if author_node is not None else None
    entry_id = _child_text(entry, f"{ATOM}id")
    return Post(
        platform="rss",
        post_id=_item_id(entry_id, link, host) or link or _stable_id(title, body, date),
        url=link,
        author_id=host,
        author_handle=host,
        author_name=author or feed_title,
        text=_text(title, body, title_is_html=title_is_html),
        created_at=parse_time(date),
        kind="post",
        raw=_item_to_dict(entry),
    )


@register
class RssCollector(Collector):
    """RSS/Atom news feeds: `feed:URL` (robots.txt honoured, conditional GET)."""

    name: ClassVar[str] = "rss"
    target_kinds: ClassVar[tuple[str, ...]] = ("feed",)
    default_base_url: ClassVar[str | None] = None
    credential_vars: ClassVar[dict[str, str]] = {}
    # News sites publish no limit; one request per second per host is the polite norm.
    default_rate_per_second: ClassVar[float | None] = 1.0

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Fetch the feed once; 304 Not Modified yields an empty page."""
        parts = urlsplit(target.value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"rss: feed target needs an http(s) URL, got {target.value!r}")
        url = target.value
        if self.base_url_overridden:
            url = self.url(parts.path + (f"?{parts.query}" if parts.query else ""))
        state = _load(cursor)
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9"}
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("last_modified"):
            headers["If-Modified-Since"] = state["last_modified"]
        response = self.request("GET", url, headers=headers, robots=True)
        if response.status_code == 304:
            yield Page([], cursor)
            return
        fallback = _response_date(response.headers.get("date"))
        parsed = parse_feed(response.content, feed_url=target.value, fallback_date=fallback)
        new_state = {
            "v": 1,
            "etag": response.headers.get("etag"),
            "last_modified": response.headers.get("last-modified"),
        }
        yield Page(
            parsed.posts, json.dumps(new_state, sort_keys=True), parsed.skipped, parsed.rejects
        )


def _response_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _load(cursor: str | None) -> Mapping[str, Any]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return state if isinstance(state, Mapping) else {}
