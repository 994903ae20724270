"""Text normalisation and language detection for extracted statements.

This module owns what a statement's `text` looks like and which language it is
said to be in:

* `paragraphs_from_xml` turns Trafilatura's XML body (`p`, `head`, `list`/`item`,
  `table`/`row`/`cell`, `quote`, `lb`, inline `hi`/`ref`) into paragraphs, one
  per block or line break, in one linear walk;
* `normalize_whitespace` collapses whitespace inside a paragraph, drops
  invisible characters and applies Unicode NFC; `normalize_quotes` mends the
  quotation marks: UTF-8 quotes read as cp1252 (`â€œ`) and stand-ins for them
  (`＂`, `〝…〞`, ``` ``…'' ```, `‘‘…’’`) become the marks they stand for. The
  marks of each language („…“, «…», “…”) are kept as they are: they are part of
  the text, and quotes.py attributes quotations by them;
* `join_paragraphs` separates paragraphs by exactly one blank line;
* `normalize_language_tag` / `detect_language` / `choose_language` produce an
  ISO 639-1 code from a declared tag (`<html lang>`) or from py3langid;
* `tokens` / `shingles` / `overlap` / `content_shingles` measure how much of a
  text also occurs elsewhere (the extraction stage compares it with the page's
  navigation and footer).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from lxml import etree

__all__ = [
    "SHINGLE_SIZE",
    "choose_language",
    "content_shingles",
    "detect_language",
    "is_server_footer",
    "join_paragraphs",
    "load_language_model",
    "normalize_language_tag",
    "normalize_quotes",
    "normalize_whitespace",
    "overlap",
    "paragraphs_from_xml",
    "shingles",
    "tokens",
    "trim_page_furniture",
]

PARAGRAPH_SEPARATOR = "\n\n"

# Zero-width space, word joiner, BOM and soft hyphen carry no text. ZWJ/ZWNJ
# (U+200C/U+200D) are deliberately kept: Persian and Indic scripts need them.
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")
_WHITESPACE = re.compile(r"\s+")

# Trafilatura's block-level tags (plus HTML ones, should raw HTML slip through).
# Everything else (hi, ref, del, span, ...) is inline and stays in its paragraph.
_BLOCK_TAGS = frozenset(
    {
        "article",
        "blockquote",
        "body",
        "div",
        "doc",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "item",
        "li",
        "list",
        "main",
        "ol",
        "p",
        "pre",
        "quote",
        "section",
        "table",
        "ul",
    }
)
_BREAK_TAGS = frozenset({"lb", "br"})
_ROW_TAGS = frozenset({"row", "tr"})
_CELL_TAGS = frozenset({"cell", "td", "th"})
_CELL_SEPARATOR = " | "

# A paragraph made only of `key=value` tokens is a server/debug footer, e.g.
# "ServerCode=node3 isCompatibilityMode=false". No statement reads like that.
_SERVER_FOOTER = re.compile(r"(?:[\w.:-]+=\S*)(?:\s+[\w.:-]+=\S*)*")

# Below this many letters the text says too little to name its language.
MIN_LETTERS_FOR_DETECTION = 20
# py3langid's normalised probability needed to name a language at all...
MIN_DETECTION_CONFIDENCE = 0.5
# ...and the stronger evidence needed to overrule a declared <html lang>.
MIN_LETTERS_TO_OVERRULE = 400
MIN_CONFIDENCE_TO_OVERRULE = 0.99
_DETECTION_SAMPLE = 5000  # characters; plenty for a confident guess, keeps it O(1)
# The opening looked at first when a page declares its language: it agrees with the
# declaration on nearly every page, and only a disagreement pays for the whole sample
# (py3langid walks the text byte by byte in Python: 1.4 ms for 5,000 characters).
_PROBE_SAMPLE = 800

# py3langid labels that are not ISO 639-1 but map onto one.
_LANGID_TO_ISO639_1 = {
    "ary": "ar",
    "arz": "ar",
    "gug": "gn",
    "kik": "ki",
    "uzs": "uz",
    "wuu": "zh",
    "yue": "zh",
}
_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2})(?:[-_][A-Za-z0-9]{1,8})*")


def normalize_whitespace(text: str) -> str:
    """NFC-normalise `text`, mend its quotation marks, drop invisible characters and
    collapse all whitespace."""
    text = _INVISIBLE.sub("", normalize_quotes(unicodedata.normalize("NFC", text)))
    return _WHITESPACE.sub(" ", text).strip()


# Quotation marks as they arrive broken: UTF-8 read as cp1252 (a page that lies about
# its charset), and stand-ins typed or converted in place of the real marks.
_QUOTE_MOJIBAKE = {
    "â€œ": "“",
    "â€\x9d": "”",
    "â€ž": "„",
    "â€˜": "‘",
    "â€™": "’",
    "Â«": "«",
    "Â»": "»",
}
_QUOTE_STAND_INS = str.maketrans({"＂": '"', "〝": "“", "〞": "”", "〟": "„"})
_DOUBLED_QUOTE = re.compile(r"(?:``|‘‘)(?=\S)(.{1,2000}?)(?<=\S)(?:''|’’)")
_MOJIBAKE = re.compile("|".join(re.escape(k) for k in _QUOTE_MOJIBAKE))


def normalize_quotes(text: str) -> str:
    """Quotation marks mended: mojibake and stand-ins made the marks they stand for."""
    if "â" in text or "Â" in text:
        text = _MOJIBAKE.sub(lambda m: _QUOTE_MOJIBAKE[m.group()], text)
    text = text.translate(_QUOTE_STAND_INS)
    if "``" in text or "‘‘" in text:
        text = _DOUBLED_QUOTE.sub(r"“\1”", text)
    return text


def join_paragraphs(paragraphs: Iterable[str]) -> str:
    """Join non-empty paragraphs with exactly one blank line between them."""
    return PARAGRAPH_SEPARATOR.join(p for p in paragraphs if p)


def is_server_footer(paragraph: str) -> bool:
    """True for a paragraph made only of `key=value` tokens (a server footer)."""
    return _SERVER_FOOTER.fullmatch(paragraph) is not None


# Edge furniture: a lone date line ("Updated: March 04, 2025 19:30", "Mis à jour
# le 15 novembre 2024", "12.03.2025 15:40") or a share bar ("Share Twitter
# Facebook Email", "Поделиться: ВКонтакте Telegram") that recall mode keeps
# before or after a statement. Words, case-folded; numbers are matched apart.
_FURNITURE_MAX_CHARS = 80


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_DATE_WORDS = _word_set(
    """
    updated published posted modified last date on at am pm gmt utc
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    monday tuesday wednesday thursday friday saturday sunday
    mis à jour le publié modifié janvier février mars avril mai juin juillet août septembre
    octobre novembre décembre aktualisiert veröffentlicht stand vom januar februar märz juni
    juli oktober dezember обновлено опубликовано дата публикации обновления января февраля
    марта апреля мая июня июля августа сентября октября ноября декабря г года
    actualizado publicado el de enero febrero marzo abril mayo junio julio agosto septiembre
    octubre noviembre diciembre
    """
)
_SHARE_WORDS = _word_set(
    """
    share this page article on via by print email e mail facebook twitter x linkedin whatsapp
    telegram reddit pinterest mastodon bluesky threads copy link tweet
    partager imprimer courriel teilen seite drucken compartir imprimir correo
    поделиться вконтакте одноклассники печать
    """
)
_SHARE_NAMES = frozenset(
    {"share", "facebook", "twitter", "linkedin", "whatsapp", "telegram", "partager", "teilen"}
    | {"compartir", "поделиться", "вконтакте"}
)


def _is_date_line(words: list[str]) -> bool:
    """Only date words and numbers, and a year among them."""
    has_year = any(len(word) == 4 and word.isdigit() for word in words)
    return has_year and all(word in _DATE_WORDS or word.isdigit() for word in words)


def _is_share_bar(words: list[str]) -> bool:
    """Only share words, and a network or the word "share" among them."""
    return not _SHARE_NAMES.isdisjoint(words) and all(word in _SHARE_WORDS for word in words)


def is_page_furniture(paragraph: str) -> bool:
    """True for a short paragraph that is a date line or a share bar, not statement text."""
    if len(paragraph) > _FURNITURE_MAX_CHARS:
        return False
    words = _TOKEN.findall(paragraph.casefold())
    return bool(words) and (_is_date_line(words) or _is_share_bar(words))


def trim_page_furniture(paragraphs: list[str]) -> list[str]:
    """`paragraphs` without date lines and share bars at either end.

    Only the ends: in the middle of a text a bare date is a heading (a
    chronology's "12 March 2025") and stays. One paragraph is always kept.
    """
    start, end = 0, len(paragraphs)
    while end - start > 1 and is_page_furniture(paragraphs[start]):
        start += 1
    while end - start > 1 and is_page_furniture(paragraphs[end - 1]):
        end -= 1
    return paragraphs[start:end]


def _tag(element: Any) -> str:
    """The element's tag, or "" for comments and processing instructions."""
    tag = element.tag
    return tag if isinstance(tag, str) else ""


def _flatten(element: Any) -> str:
    """All text under `element` on one line; blocks and line breaks become spaces."""
    pieces: list[str] = []
    for event, node in etree.iterwalk(element, events=("start", "end")):
        tag = _tag(node)
        if event == "start":
            if tag in _BLOCK_TAGS or tag in _BREAK_TAGS or tag in _CELL_TAGS:
                pieces.append(" ")
            if tag and node.text:
                pieces.append(node.text)
        elif node is not element and node.tail:
            pieces.append(node.tail)
    return normalize_whitespace("".join(pieces))


def _row_text(row: Any) -> str:
    """One table row as one paragraph: its non-empty cells joined by " | "."""
    cells = [_flatten(cell) for cell in row if _tag(cell) in _CELL_TAGS]
    if not cells:
        return _flatten(row)
    return _CELL_SEPARATOR.join(cell for cell in cells if cell)


def paragraphs_from_xml(body: Any) -> list[str]:
    """Paragraphs of a Trafilatura XML body, in document order, normalised.

    Every block element and every line break (`<lb/>`) starts a new paragraph;
    each table row is one paragraph. The walk visits each node once.
    """
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            paragraph = normalize_whitespace("".join(buffer))
            buffer.clear()
            if paragraph:
                paragraphs.append(paragraph)

    walker = etree.iterwalk(body, events=("start", "end"))
    for event, node in walker:
        tag = _tag(node)
        if event == "start":
            if tag in _ROW_TAGS:
                flush()
                row = _row_text(node)
                if row:
                    paragraphs.append(row)
                walker.skip_subtree()  # its "end" event still comes, for the tail
                continue
            if tag in _BLOCK_TAGS or tag in _BREAK_TAGS:
                flush()
            if tag and node.text:
                buffer.append(node.text)
            continue
        if tag in _BLOCK_TAGS or tag in _ROW_TAGS:
            flush()
        if node is not body and node.tail:
            buffer.append(node.tail)
    flush()
    return paragraphs


def normalize_language_tag(tag: str | None) -> str | None:
    """The ISO 639-1 primary subtag of a BCP 47 / POSIX tag ("en-GB", "ru_RU"), else None."""
    if not tag:
        return None
    match = _LANGUAGE_TAG.fullmatch(tag.strip())
    return match[1].lower() if match else None


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's model with normalised probabilities, once per process (memory-mapped)."""
    from monitor.extract.langmodel import load_identifier

    return load_identifier()


def load_language_model() -> None:
    """Load py3langid's model now (it loads on first use otherwise)."""
    _identifier()


def _letters(text: str) -> int:
    return sum(map(str.isalpha, text))  # 2x a generator's speed: 0.1 ms on 5,000 characters


def _classify(text: str) -> tuple[str | None, float]:
    """py3langid's best ISO 639-1 guess for `text` and its probability."""
    label, confidence = _identifier().classify(text[:_DETECTION_SAMPLE])
    label = _LANGID_TO_ISO639_1.get(label, label)
    if len(label) != 2:  # "zxx" (no language) and labels without an ISO 639-1 code
        return None, 0.0
    return label, float(confidence)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of `text` by py3langid; None when the text is too short or unclear."""
    sample = text[:_DETECTION_SAMPLE]
    if _letters(sample) < MIN_LETTERS_FOR_DETECTION:
        return None
    language, confidence = _classify(sample)
    return language if confidence >= MIN_DETECTION_CONFIDENCE else None


def choose_language(declared: str | None, text: str) -> str | None:
    """The statement's language: the declared tag when sane, else detection.

    A declared tag is sane when it has an ISO 639-1 primary subtag and a long
    text does not say, with near certainty, that it is another language (site
    templates often carry one `lang` for every language version). The whole
    sample is asked only when its opening does not clearly agree with the tag.
    """
    language = normalize_language_tag(declared)
    if language is None:
        return detect_language(text)
    probed, confidence = _classify(text[:_PROBE_SAMPLE])
    if probed == language and confidence >= MIN_DETECTION_CONFIDENCE:
        return language
    sample = text[:_DETECTION_SAMPLE]
    if _letters(sample) < MIN_LETTERS_TO_OVERRULE:
        return language
    detected, confidence = _classify(sample)
    if detected and detected != language and confidence >= MIN_CONFIDENCE_TO_OVERRULE:
        return detected
    return language


# --- word shingles -------------------------------------------------------------

SHINGLE_SIZE = 3  # words; short enough for menu entries, long enough to be specific
_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Case-folded word tokens of `text`."""
    return _TOKEN.findall(text.casefold())


def shingles(words: list[str], size: int = SHINGLE_SIZE) -> list[tuple[str, ...]]:
    """Overlapping word n-grams; a text shorter than `size` is its own single shingle."""
    if len(words) < size:
        return [tuple(words)] if words else []
    # zip of the list shifted by 0..size-1 (so of unequal lengths): the same tuples as
    # slicing one per position, 3x faster (chrome shingles of a bench/backfill.py page)
    return list(zip(*(words[i:] for i in range(size)), strict=False))


def _grams(words: list[str]) -> list[tuple[str, ...]]:
    """Shingles of a text; its single words when it is shorter than one shingle."""
    if len(words) < SHINGLE_SIZE:
        return [(word,) for word in words]
    return shingles(words)


def content_shingles(text: str, known: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The distinct shingles of `text` that are not in `known`."""
    return {gram for gram in _grams(tokens(text)) if gram not in known}


def overlap(text: str, known: set[tuple[str, ...]]) -> tuple[int, int]:
    """(shingles of `text`, how many of them are in `known`).

    `known` should hold the shingles of the reference texts and, for texts
    shorter than one shingle, their single words as 1-tuples.
    """
    grams = _grams(tokens(text))
    return len(grams), sum(1 for gram in grams if gram in known)
