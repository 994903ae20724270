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
6. any other string in the event longer than 1 KiB (a pathological URL or
   guid), cut to 1 KiB, named `other`.

Every cut field is named in `data.truncated_fields`, in this order. A cut
falls at the last boundary of the best kind that keeps at least half of what
would fit, so one short first paragraph does not cost the rest of the text.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["MIN_EVENT_BYTES", "encoded_size", "fit_document"]

# Below this, the fixed fields of an event (ids, times, source names) may not fit.
MIN_EVENT_BYTES = 16_384
_LONG_STRING = 1024
_LIST_FIELDS = ("quotes", "figures", "speakers", "matches", "authors", "tags")
# Where a cut may fall, best first: paragraph, line, sentence end, any whitespace.
_TEXT_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"[.!?]\s"),
                    re.compile(r"\s"))
_LINE_BOUNDARIES = (re.compile(r"\n"),)
_WORD_BOUNDARIES = (re.compile(r"\s"),)


def encoded_size(value: Any) -> int:
    """Bytes of `value` as the record carries it (compact JSON, UTF-8, no ASCII escaping)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def fit_document(document: dict[str, Any], budget: int) -> dict[str, Any]:
    """`document` itself if it fits `budget` bytes, else a cut copy that does (see above)."""
    if encoded_size(document) <= budget:
        return document
    document = copy.deepcopy(document)
    data = document.get("data")
    if not isinstance(data, dict):
        return document
    for name, cut in _STEPS:
        if encoded_size(document) <= budget:
            return document
        if _has_content(data, name):
            _mark(data, name)
            cut(data, encoded_size(document) - budget)
    if encoded_size(document) > budget:
        _mark(data, "other")
        _shorten_all(document)
    return document


def _has_content(data: dict[str, Any], name: str) -> bool:
    if name == "changes.text_diff":
        changes = data.get("changes")
        return isinstance(changes, dict) and bool(changes.get("text_diff"))
    return bool(data.get(name))


def _mark(data: dict[str, Any], name: str) -> None:
    """Name the cut before cutting, so the cut also pays for its own marker."""
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

    The cut falls at the last boundary of the first kind found in the part that
    fits; the string is emptied when even that is not enough.
    """
    target = encoded_size(text) - overflow
    if target <= 2:  # two bytes are the quotes of an empty JSON string
        return ""
    keep = _longest_prefix(text, target)
    prefix = text[:keep]
    if keep == len(text):
        return prefix
    for boundary in boundaries:
        ends = [m.start() for m in boundary.finditer(prefix)]
        if ends and ends[-1] >= keep // 2:
            return prefix[: ends[-1]].rstrip()
    return prefix


def _longest_prefix(text: str, target: int) -> int:
    """The most characters of `text` whose encoded size is at most `target` (binary search)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if encoded_size(text[:middle]) <= target:
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
