"""Fitting an event document into the broker's size limit (`kafka.max_event_bytes`).

A broker refuses a record over its `message.max.bytes` (1 MB by default) and no
retry changes that, so an event is cut to size before it enters the outbox.
Everything derived from the text (`content_hash`, quotes, speakers, watchlist
matches) was computed from the full text before this runs; only what is
carried is cut. The fields are cut in this order, each only as far as needed,
and the event stops being cut as soon as it fits:

1. `data.changes.text_diff` (an update's diff), at a line boundary;
2. `data.text`, at a paragraph boundary (a line, sentence or word boundary when
   one paragraph alone is too long); `data.text_truncated` is set to true;
3. `data.summary`, at a word boundary;
4. `data.quotes`, `data.figures`, `data.speakers`, `data.matches`,
   `data.authors`, `data.tags`: items dropped from the end;
5. `data.title`, at a word boundary;
6. any other string in the event longer than 256 characters (a
   pathological URL or guid), cut to 256, named `other`.

Every cut field is named in `data.truncated_fields`, in this order. The
config keeps `kafka.max_event_bytes` at 16 KiB or more, where the fixed fields
(ids, times, names) always fit once the steps above are done. A cut
falls at the last boundary of the best kind that keeps at least half of what
would fit, so one short first paragraph does not cost the rest of the text.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["encode_fitting", "encoded_size"]

_LONG_STRING = 256  # characters: even escaped as \u00XX, 8 of them fit in 16 KiB
# Room for the markers a cut adds (`"text_truncated":true`, a name in truncated_fields).
_MARK_ROOM = 64
_CHUNK = 4096  # characters measured at a time when looking for where to cut
_LIST_FIELDS = ("quotes", "figures", "speakers", "matches", "authors", "tags")
# Where a cut may fall, best first: paragraph, line, sentence end, any whitespace.
_TEXT_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"[.!?]\s"),
                    re.compile(r"\s"))
_LINE_BOUNDARIES = (re.compile(r"\n"),)
_WORD_BOUNDARIES = (re.compile(r"\s"),)


def encoded_size(value: Any) -> int:
    """Bytes of `value` as the record carries it (compact JSON, UTF-8, no ASCII escaping)."""
    return len(_encode(value))


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_fitting(document: dict[str, Any], budget: int) -> bytes:
    """`document` as the record's value, cut as above when it would exceed `budget` bytes.

    An event that fits is encoded once, as it is. One that does not is cut
    field by field, each cut sized from the bytes still over, and encoded again
    after each: a few encodings of the whole event, never one per character.
    """
    value = _encode(document)
    if len(value) <= budget:
        return value
    document = copy.deepcopy(document)
    data = document.get("data")
    if not isinstance(data, dict):
        return value
    for name, cut in _STEPS:
        if _has_content(data, name):
            _mark(data, name)
            cut(data, len(value) - budget + _MARK_ROOM)
            value = _encode(document)
            if len(value) <= budget:
                return value
    _mark(data, "other")
    _shorten_all(document)
    return _encode(document)


def _has_content(data: dict[str, Any], name: str) -> bool:
    if name == "changes.text_diff":
        changes = data.get("changes")
        return isinstance(changes, dict) and bool(changes.get("text_diff"))
    return bool(data.get(name))


def _mark(data: dict[str, Any], name: str) -> None:
    """Name the cut; `_MARK_ROOM` makes the cut pay for its own marker."""
    if name == "text":
        data["text_truncated"] = True
    fields = data.setdefault("truncated_fields", [])
    if name not in fields:
        fields.append(name)


def _cut_diff(data: dict[str, Any], overflow: int) -> None:
    changes = data["changes"]
    changes["text_diff"] = _shorter(changes["text_diff"], overflow, _LINE_BOUNDARIES)


def _cut_string(name: str, boundaries: tuple[re.Pattern[str], ...]) -> Callable[..., None]:
    def cut(data: dict[str, Any], overflow: int) -> None:
        data[name] = _shorter(data[name], overflow, boundaries)

    return cut


def _cut_list(name: str) -> Callable[..., None]:
    def cut(data: dict[str, Any], overflow: int) -> None:
        items = list(data[name])
        target = encoded_size(items) - overflow
        while items and encoded_size(items) > target:
            items.pop()
        data[name] = items

    return cut


def _shorten_all(value: Any) -> Any:
    """Last resort: every long string left, wherever it is, cut to `_LONG_STRING`."""
    if isinstance(value, str) and len(value) > _LONG_STRING:
        return value[:_LONG_STRING]
    if isinstance(value, dict):
        for key in value:
            value[key] = _shorten_all(value[key])
    elif isinstance(value, list):
        value[:] = [_shorten_all(item) for item in value]
    return value


def _shorter(text: str, overflow: int, boundaries: tuple[re.Pattern[str], ...]) -> str:
    """`text` cut so that its encoded size shrinks by at least `overflow` bytes.

    The cut falls at the last boundary of the first kind that keeps at least
    half of what fits; the string is emptied when even that is not enough.
    """
    target = encoded_size(text) - overflow
    if target <= 2:  # two bytes are the quotes of an empty JSON string
        return ""
    keep = _longest_prefix(text, target - 2)
    prefix = text[:keep]
    if keep == len(text):
        return prefix
    for boundary in boundaries:
        last = None
        for last in boundary.finditer(prefix, keep // 2):  # noqa: B007 - the last one
            pass
        if last is not None and last.start() > 0:
            return prefix[: last.start()].rstrip()
    return prefix


def _longest_prefix(text: str, budget: int) -> int:
    """The most characters of `text` whose JSON escaping takes at most `budget` bytes.

    JSON escapes character by character, so sizes add up over chunks: whole
    chunks first, in one pass, then a binary search inside the chunk that
    crosses the budget (an event's text can be megabytes: this stays linear).
    """
    start, used = 0, 0
    while start < len(text):
        size = encoded_size(text[start : start + _CHUNK]) - 2
        if used + size > budget:
            break
        used += size
        start += _CHUNK
    else:
        return len(text)
    low, high = start, min(start + _CHUNK, len(text))
    while low < high:
        middle = (low + high + 1) // 2
        if used + encoded_size(text[start:middle]) - 2 <= budget:
            low = middle
        else:
            high = middle - 1
    return low


_STEPS: tuple[tuple[str, Callable[[dict[str, Any], int], None]], ...] = (
    ("changes.text_diff", _cut_diff),
    ("text", _cut_string("text", _TEXT_BOUNDARIES)),
    ("summary", _cut_string("summary", _WORD_BOUNDARIES)),
    *((name, _cut_list(name)) for name in _LIST_FIELDS),
    ("title", _cut_string("title", _WORD_BOUNDARIES)),
)
