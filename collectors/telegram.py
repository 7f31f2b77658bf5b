"""Telegram: public channel previews at `https://t.me/s/<channel>` (the web widget's HTML).

Each message is a `div.tgme_widget_message` with `data-post="<channel>/<number>"`; text sits in
`.tgme_widget_message_text`, the time in `.tgme_widget_message_date time[datetime]`, views in
`.tgme_widget_message_views` ("1.2K"), a forward in `.tgme_widget_message_forwarded_from`. A
reply starts with `a.tgme_widget_message_reply` (href: the message it answers), which quotes
that message in its own `.tgme_widget_message_text`, before the reply's text; it becomes a
comment on that message. Older messages are at `?before=<number>` (the `.tme_messages_more`
link's `data-before`). Service messages ("channel created", pinned, ...) are skipped. Readers'
comments are not here: they live in the channel's discussion group, which has no public preview.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from bs4 import BeautifulSoup, Tag

from collectors.base import (
    Collector,
    FetchedPage,
    Page,
    ParsedItems,
    Quota,
    Target,
    html_to_text,
    number_position,
    parse_positioned,
    parse_time,
    register,
    walk_newest_first,
)
from pipeline.errors import ParseError, SourceUnavailable, UsageError
from pipeline.records import Post, PostKind

logger = logging.getLogger(__name__)

_CHANNEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_SUFFIXES = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def parse_count(text: str) -> int:
    """'1.2K' -> 1200, '3M' -> 3000000, '845' -> 845."""
    value = text.strip().upper().replace(",", "")
    multiplier = _SUFFIXES.get(value[-1:], 1)
    number = value[:-1] if multiplier > 1 else value
    return round(float(number) * multiplier)


def _post_id_from_link(href: str) -> str | None:
    """`https://t.me/<channel>/<number>` -> `<channel>/<number>`, the form of `Post.post_id`."""
    if not href.startswith("https://t.me/"):
        return None
    path = href.removeprefix("https://t.me/").split("?")[0].strip("/")
    return path if re.fullmatch(r"[A-Za-z0-9_]+/\d+", path) else None


def _own_text_node(message: Tag) -> Tag | None:
    """The message's text element, never the quote of the message it replies to."""
    for node in message.select(".tgme_widget_message_text"):
        if node.find_parent(class_="tgme_widget_message_reply") is None:
            return node
    return None


def _text(node: Tag | None) -> str | None:
    if node is None:
        return None
    value = node.get_text(" ", strip=True)
    return value or None


def parse_message(message: Tag, channel_bio: str | None = None) -> Post | None:
    """A Post from one `tgme_widget_message` element; None for a service message."""
    classes = message.get("class") or []
    if "service_message" in classes or message.select_one(".service_message") is not None:
        return None
    data_post = str(message["data-post"])
    channel, _, number = data_post.partition("/")
    number_position(number)  # validates: a message number is numeric
    time_node = message.select_one(".tgme_widget_message_date time[datetime]")
    if time_node is None:
        raise ValueError(f"message {data_post} has no time")
    text_node = _own_text_node(message)
    text = html_to_text(text_node.decode_contents(), keep_links=True) if text_node else ""
    owner = message.select_one(".tgme_widget_message_owner_name")
    forwarded = message.select_one(".tgme_widget_message_forwarded_from_name")
    forwarded_href = str(forwarded.get("href") or "") if forwarded else ""
    reply = message.select_one("a.tgme_widget_message_reply")
    reply_href = str(reply.get("href") or "") if reply else ""
    reply_to = _post_id_from_link(reply_href)
    parent_id: str | None
    kind: PostKind
    if forwarded is not None:
        # A forward in a channel is the channel re-sharing someone else's message.
        parent_id, kind = _post_id_from_link(forwarded_href), "repost"
    elif reply_to is not None:
        # A reply is modelled like a reply on every other platform: a comment on its parent.
        parent_id, kind = reply_to, "comment"
    else:
        parent_id, kind = None, "post"
    views = message.select_one(".tgme_widget_message_views")
    metrics = {"views": parse_count(views.get_text())} if views and views.get_text().strip() else {}
    raw: dict[str, Any] = {
        "data_post": data_post,
        "author_signature": _text(message.select_one(".tgme_widget_message_from_author")),
        "forwarded_from": _text(forwarded),
        "forwarded_from_url": forwarded_href or None,
        "reply_to_url": reply_href or None,
        "has_photo": message.select_one(".tgme_widget_message_photo_wrap") is not None,
        "has_video": message.select_one(".tgme_widget_message_video_player") is not None,
        "html": str(message),
    }
    return Post(
        platform="telegram",
        post_id=data_post,
        url=f"https://t.me/{data_post}",
        author_id=channel,
        author_handle=channel,
        author_name=_text(owner),
        author_bio=channel_bio,
        text=text,
        created_at=parse_time(str(time_node["datetime"])),
        parent_id=parent_id,
        kind=kind,
        metrics=metrics,
        raw=raw,
    )


def parse_channel_page(html: str, *, context: str) -> tuple[ParsedItems, list[str], str | None]:
    """Posts, positions and the `before` value of the next (older) page from a /s/ page."""
    soup = BeautifulSoup(html, "html.parser")
    history = soup.select_one(".tgme_channel_history")
    if history is None:
        if soup.select_one(".tgme_page") is not None or soup.select_one("html") is not None:
            raise SourceUnavailable(
                f"{context}: the channel has no public preview (or does not exist)"
            )
        raise ParseError(f"{context}: not a Telegram channel preview page")
    bio_node = soup.select_one(".tgme_channel_info_description")
    bio = html_to_text(bio_node.decode_contents()) if bio_node else None
    parsed, positions = parse_positioned(
        history.select(".tgme_widget_message[data-post]"),
        lambda node: parse_message(node, bio),
        lambda node: number_position(str(node["data-post"]).partition("/")[2]),
        context=context,
    )
    for reject in parsed.rejects:
        # Keep the HTML of a message we could not read, not the bs4 object.
        reject.payload = str(reject.payload)
    more = soup.select_one(".tme_messages_more[data-before]")
    before = str(more["data-before"]) if more is not None else None
    return parsed, positions, before if before and before.isdigit() else None


@register
class TelegramCollector(Collector):
    """Public Telegram channels: `channel:name` (the t.me/s/ preview, no login)."""

    name: ClassVar[str] = "telegram"
    target_kinds: ClassVar[tuple[str, ...]] = ("channel",)
    default_base_url: ClassVar[str | None] = "https://t.me"
    credential_vars: ClassVar[dict[str, str]] = {}
    # t.me publishes no limit for previews; one page per second stays well clear of throttling.
    default_rate_per_second: ClassVar[float | None] = 1.0

    def fetch_pages(self, target: Target, cursor: str | None, quota: Quota) -> Iterator[Page]:
        """Walk a channel's preview pages newest-first with `?before=`."""
        channel = (
            target.value.removeprefix("https://t.me/").removeprefix("s/").lstrip("@").strip("/")
        )
        if not _CHANNEL.match(channel):
            raise UsageError(f"telegram: {target.value!r} is not a channel username")
        context = self.context(target)

        def fetch(before: str | None, _floor: str | None) -> FetchedPage:
            response = self.request(
                "GET", self.url(f"/s/{channel}"), params={"before": before}, robots=True
            )
            content_type = response.headers.get("content-type", "")
            if "html" not in content_type:
                raise ParseError(f"{context}: expected an HTML page, got {content_type!r}")
            parsed, positions, older = parse_channel_page(response.text, context=context)
            if older is not None and before is not None and int(older) >= int(before):
                older = None  # never walk forwards
            return FetchedPage(parsed.posts, positions, older, parsed.skipped, parsed.rejects)

        yield from walk_newest_first(cursor, fetch)
