"""Public Telegram channels, read from their web preview `https://t.me/s/<channel>`.

Bytes in, candidates out, like the other adapters: `parse_telegram` reads one
page of the preview (no login, no API key). The page lists a channel's latest
posts, oldest first, each as

    <div class="tgme_widget_message ..." data-post="<channel>/<id>">
      <div class="tgme_widget_message_forwarded_from">Forwarded from <a ...>Name</a></div>
      <a class="tgme_widget_message_photo_wrap" ...></a>           (media, if any)
      <div class="tgme_widget_message_text js-message_text">text<br/>more</div>
      <span class="tgme_widget_message_meta">edited <a class="tgme_widget_message_date">
        <time datetime="2025-03-14T09:30:00+00:00">09:30</time></a></span>
    </div>

and older posts are had with `?before=<id>` (`page_url`). Each post is one
candidate:

- its URL is `https://t.me/<channel>/<id>` (from `data-post`), whatever base
  URL the preview was read from;
- `published_at` is the post's `<time datetime>`;
- its text is the message text block, line breaks kept, links kept as their
  text; the text of a post it replies to is left out;
- its title is the first line, cut at the end of a sentence or 120 characters;
- `extra` carries the channel, the post id, "forwarded from" when present, the
  media kind (photo, video, document, ...) and the "edited" mark.

Service messages (pinned, joined, photo updated) are not statements. A
media-only post is one, with empty text and its media kind. Pure, never raises.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import lxml.html

from monitor.models import Candidate, ParsedFeed
from monitor.sources.base import (
    dedupe,
    failure,
    html_root,
    page_title,
    plain_text,
    text_to_html,
)

if TYPE_CHECKING:
    from monitor.sources.base import DocumentParser

__all__ = [
    "POST_BASE",
    "channel_of",
    "page_url",
    "parse_telegram",
    "post_id",
    "post_title",
    "preview_url",
]

POST_BASE = "https://t.me"
TITLE_CHARS = 120
_CHANNEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,63}$")
_PREVIEW_PATH = re.compile(r"/s/(?P<channel>[A-Za-z][A-Za-z0-9_]{3,63})/?$")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")
# Media blocks of the preview, by class, and the kind they stand for (first match wins).
_MEDIA = (
    ("tgme_widget_message_video_player", "video"),
    ("tgme_widget_message_roundvideo_player", "video"),
    ("tgme_widget_message_photo_wrap", "photo"),
    ("tgme_widget_message_grouped_wrap", "album"),
    ("tgme_widget_message_document_wrap", "document"),
    ("tgme_widget_message_voice_player", "voice"),
    ("tgme_widget_message_poll", "poll"),
    ("tgme_widget_message_sticker_wrap", "sticker"),
    ("tgme_widget_message_location_wrap", "location"),
    ("message_media_not_supported", "unsupported"),
)


def channel_of(url: str) -> str | None:
    """The channel a preview URL names: `https://t.me/s/<channel>` (any host) gives `<channel>`."""
    match = _PREVIEW_PATH.search(urlsplit(url).path)
    return match.group("channel") if match else None


def preview_url(channel: str) -> str:
    """The public web preview of a channel."""
    return f"{POST_BASE}/s/{channel}"


def valid_channel(name: str) -> bool:
    """Telegram's rule for public channel names: 5 to 32 characters in practice, [A-Za-z0-9_]."""
    return bool(_CHANNEL.match(name))


def page_url(url: str, before: int | None = None) -> str:
    """The preview page at `url` (its query dropped), or the posts before `before` on it."""
    parts = urlsplit(url)
    query = f"before={before}" if before is not None else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def post_id(candidate: Candidate) -> int | None:
    """The post id of a candidate made here, from its URL."""
    tail = (candidate.url or "").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def post_title(text: str) -> str | None:
    """The first line, cut after its first sentence, then at `TITLE_CHARS` on a word."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not line:
        return None
    sentence = _SENTENCE_END.split(line, maxsplit=1)[0]
    if len(sentence) <= TITLE_CHARS:
        return sentence
    cut = sentence[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:-–— ")
    return (cut or sentence[:TITLE_CHARS]) + "…"


def parse_telegram(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
) -> ParsedFeed:
    """The posts of one page of a channel's web preview, as candidates. Never raises."""
    try:
        root = html_root(body, content_type)
        if root is None:
            return failure("not a readable HTML page")
        messages = root.xpath(
            "//div[contains(concat(' ', normalize-space(@class), ' '), ' tgme_widget_message ')]"
            "[@data-post]"
        )
        if not messages and not _has_history(root):
            return failure(
                "not a Telegram channel preview (no tgme_widget_message posts): is the "
                "channel public, and does https://t.me/s/<channel> show its posts?"
            )
        candidates = (_candidate(m, source_id=source_id, feed_url=feed_url) for m in messages)
        return ParsedFeed(format="telegram", title=_channel_title(root), entries=dedupe(candidates))
    except Exception as exc:  # the pool must get a result, whatever the page did
        return failure(f"internal error while reading a Telegram page: {type(exc).__name__}: {exc}")


def _has_history(root: lxml.html.HtmlElement) -> bool:
    """An empty channel still has its history section (or a "no posts" notice)."""
    return bool(root.xpath("//*[contains(@class, 'tgme_channel_history')]"))


def _channel_title(root: lxml.html.HtmlElement) -> str | None:
    for element in _by_class(root, "tgme_channel_info_header_title"):
        return plain_text(element.text_content(), html_markup=False, single_line=True)
    return page_title(root)


def _candidate(
    message: lxml.html.HtmlElement, *, source_id: str, feed_url: str
) -> Candidate | None:
    channel, _, number = (message.get("data-post") or "").strip().partition("/")
    if not number.isdigit() or not channel or "service_message" in (message.get("class") or ""):
        return None  # service messages (pinned, joined, photo updated) are not statements
    text = _message_text(message)
    extra: list[tuple[str, str]] = [("channel", channel), ("id", number)]
    forwarded = _forwarded_from(message)
    if forwarded:
        extra.append(("forwarded_from", forwarded))
    media = _media_kind(message)
    if media:
        extra.append(("media", media))
    if _edited(message):
        extra.append(("edited", "true"))
    return Candidate(
        source_id=source_id,
        feed_url=feed_url,
        url=f"{POST_BASE}/{channel}/{number}",
        guid=None,
        title=post_title(text),
        content_html=text_to_html(text) if text else None,
        published_at=_published(message),
        extra=tuple(extra),
    )


def _by_class(element: lxml.html.HtmlElement, name: str) -> list[lxml.html.HtmlElement]:
    found: list[lxml.html.HtmlElement] = element.xpath(
        f".//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]"
    )
    return found


def _message_text(message: lxml.html.HtmlElement) -> str:
    """The post's own text block (not that of a post it replies to), line breaks kept."""
    for block in _by_class(message, "tgme_widget_message_text"):
        ancestors = block.iterancestors()
        if any("tgme_widget_message_reply" in (a.get("class") or "") for a in ancestors):
            continue
        return _text_with_breaks(block)
    return ""


def _text_with_breaks(block: lxml.html.HtmlElement) -> str:
    """Text of a block: `<br>` as a line break, links and emoji as their text."""
    parts: list[str] = []

    def walk(element: lxml.html.HtmlElement) -> None:
        if element.text:
            parts.append(element.text)
        for child in element:
            if isinstance(child.tag, str):
                if child.tag == "br":
                    parts.append("\n")
                elif child.tag not in ("script", "style"):
                    walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(block)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(lines).strip()


def _published(message: lxml.html.HtmlElement) -> dt.datetime | None:
    for time in message.iter("time"):
        stamp = (time.get("datetime") or "").strip()
        if not stamp:
            continue
        try:
            parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _forwarded_from(message: lxml.html.HtmlElement) -> str | None:
    for block in _by_class(message, "tgme_widget_message_forwarded_from"):
        names = _by_class(block, "tgme_widget_message_forwarded_from_name")
        source = names[0] if names else block
        name = plain_text(source.text_content(), html_markup=False, single_line=True)
        if name and not names:
            name = re.sub(r"^forwarded from\s*", "", name, flags=re.IGNORECASE) or None
        return name
    return None


def _media_kind(message: lxml.html.HtmlElement) -> str | None:
    classes = " ".join(e.get("class") or "" for e in message.iter() if isinstance(e.tag, str))
    for name, kind in _MEDIA:
        if name in classes:
            return kind
    return None


def _edited(message: lxml.html.HtmlElement) -> bool:
    """The "edited" mark in the post's meta line."""
    for meta in _by_class(message, "tgme_widget_message_meta"):
        if _by_class(meta, "tgme_widget_message_edited") or "edited" in meta.text_content():
            return True
    return False


if TYPE_CHECKING:  # mypy proves that the function meets the adapter protocol
    _conforms: DocumentParser = parse_telegram
