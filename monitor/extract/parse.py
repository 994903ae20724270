"""From a page's bytes to its tree: decoding, refusing what is no HTML, parsing.

This module owns the first step of `extract_article`: decoding bytes (BOM,
then UTF-8, then the page's own `<meta charset>`, then Trafilatura's
detection), refusing input that is clearly not HTML (binary signatures, no
markup), and parsing as `trafilatura.load_html` does on a cheaper parser. It
also owns the bounded `ExtractionError` reasons of HTML extraction
(`REASONS`), which `monitor.extract.article` re-exports.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, Final

import lxml.html
import numpy as np
from lxml import etree
from trafilatura.utils import (
    DOCTYPE_TAG,
    FAULTY_HTML,
    decode_file,
    is_dubious_html,
    repair_faulty_html,
)

from monitor.errors import ExtractionError

__all__ = ["EMPTY", "NOT_HTML", "PARSE_ERROR", "REASONS", "parse_page"]

# ExtractionError reasons: short, bounded tokens (they are metric labels).
NOT_HTML: Final = "not_html"  # binary or markup-free input (a PDF, an image, plain text)
EMPTY: Final = "empty"  # HTML without any statement text
PARSE_ERROR: Final = "parse_error"  # the parser or Trafilatura failed on the input
REASONS: Final = frozenset({NOT_HTML, EMPTY, PARSE_ERROR})

# Magic numbers of formats that are served in place of pages now and then.
_BINARY_SIGNATURES: Final = (
    b"%PDF",
    b"%!PS",
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"PK\x03\x04",
    b"{\\rtf",
    b"\xd0\xcf\x11\xe0",
    b"RIFF",
    b"ID3",
    b"OggS",
    b"\x00\x00\x01\x00",
    b"II*\x00",
    b"MM\x00*",
)
_SNIFF_BYTES: Final = 4096  # where a <meta charset> must be, per the HTML spec (1024) with slack
_MARKUP_WINDOW: Final = 65536  # a page shows a tag within its first 64 KiB
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE
)

_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_.:-]{1,40})""")
_TAG = re.compile(r"<[A-Za-z!?/]")
# Trafilatura's parser settings (trafilatura.utils.HTML_PARSER), with one change: every
# element is an HtmlElement through a C-level lookup. lxml.html's own lookup is a Python
# method that runs each time an element reaches Python code (~1,800 times on a
# bench/backfill.py page: 0.9 of 14 ms) only to give <form>, <input>, <select>, <textarea>,
# <label> and <option> subclasses of their own, which nothing here uses.
_HTML_PARSER: Final = etree.HTMLParser(
    collect_ids=False,
    default_doctype=False,
    encoding="utf-8",
    remove_comments=True,
    remove_pis=True,
)
_HTML_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=lxml.html.HtmlElement,
        comment=lxml.html.HtmlComment,
        pi=lxml.html.HtmlProcessingInstruction,
        entity=lxml.html.HtmlEntity,
    )
)
# What browsers decode when a page declares these (WHATWG Encoding): supersets.
_ENCODING_SUPERSETS: Final = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    # a page that is readable ASCII cannot really be UTF-16/32, whatever it says
    "utf-16": "utf-8",
    "utf-16-le": "utf-8",
    "utf-16-be": "utf-8",
    "utf-32": "utf-8",
    "utf-32-le": "utf-8",
    "utf-32-be": "utf-8",
}
_BOMS: Final = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


# --- decoding and sniffing -------------------------------------------------


def parse_page(html: bytes | str) -> Any:
    """The page's tree: its text decoded, refused if it is no HTML, parsed."""
    markup, utf8 = _decode(html)
    _reject_non_html(markup)
    return _parse(markup, xml_clean=utf8 and isinstance(html, bytes) and _xml_clean_utf8(html))


def _decode(html: bytes | str) -> tuple[str, bool]:
    """Unicode text of the page (BOM, then UTF-8, then <meta charset>, then a guess),
    and whether it is the UTF-8 of `html` (what `_xml_clean_utf8` needs to know)."""
    if isinstance(html, str):
        return html, False
    _reject_binary(html)
    for bom, codec in _BOMS:
        if html.startswith(bom):
            return html.decode(codec, errors="replace"), False
    try:
        return html.decode("utf-8"), True
    except UnicodeDecodeError:
        pass
    declared = _declared_charset(html[:_SNIFF_BYTES])
    if declared:
        try:
            return html.decode(declared), False
        except UnicodeDecodeError:
            pass
    text: str = decode_file(html)  # charset_normalizer's guess, or UTF-8 with replacements
    return text, False


def _declared_charset(head: bytes) -> str | None:
    """The Python codec for the charset the page declares, if it names a known one."""
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if not match:
        return None
    label = match[1].decode("ascii").lower()
    if label.startswith("windows-"):
        label = "cp" + label.removeprefix("windows-")
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _ENCODING_SUPERSETS.get(name, name)


def _reject_binary(data: bytes) -> None:
    start = data[:64].lstrip()
    if start.startswith(_BINARY_SIGNATURES):
        raise ExtractionError(NOT_HTML, f"binary document (starts with {start[:8]!r})")


def _reject_non_html(markup: str) -> None:
    """Raise for text that is blank, binary or has no markup at all."""
    start = markup[:1024]
    if start.lstrip().startswith("%PDF"):
        raise ExtractionError(NOT_HTML, "a PDF document, not HTML")
    if not markup.strip():
        raise ExtractionError(EMPTY, "the document is blank")
    if "\x00" in start:
        raise ExtractionError(NOT_HTML, "binary document (NUL bytes)")
    if not _TAG.search(markup, 0, _MARKUP_WINDOW):
        raise ExtractionError(NOT_HTML, "no HTML markup in the document")


def _parse(markup: str, *, xml_clean: bool = False) -> Any:
    """The page's tree, built as `trafilatura.load_html(markup)` builds it, on `_HTML_PARSER`.

    The text first; then its UTF-8 bytes when the text will not parse (a str
    may not carry an XML encoding declaration) or parses to nothing.
    `xml_clean`: the text is known to hold no character XML forbids
    (`_xml_clean_utf8`), so the repairs skip looking for them.
    """
    beginning = markup[:50].lower()
    repair = _repair_clean if xml_clean else repair_faulty_html
    markup = repair(markup, beginning)
    tree = _parse_or_none(markup)
    if tree is None or len(tree) < 1:
        tree = _parse_or_none(markup.encode("utf8", "surrogatepass"))
    if tree is None or (is_dubious_html(beginning) and len(tree) < 2):
        raise ExtractionError(NOT_HTML, "the HTML parser found no document")
    return tree


def _xml_clean_utf8(html: bytes) -> bool:
    """True when UTF-8 `html` holds no character XML forbids.

    Trafilatura's `repair_faulty_html` deletes those (C0 controls but tab, LF
    and CR; U+FFFE, U+FFFF) with a regular expression over the whole text:
    0.3 ms of a page, for characters real pages almost never hold. In UTF-8
    a C0 control is its own byte and U+FFFE/U+FFFF are EF BF BE/BF, so the
    page's bytes answer in 0.04 ms, a vector comparison instead of a scan.
    """
    octets = np.frombuffer(html, np.uint8)
    controls = (octets < 0x20) & (octets != 0x09) & (octets != 0x0A) & (octets != 0x0D)
    if controls.any():
        return False
    noncharacters = (b"\xef\xbf\xbe", b"\xef\xbf\xbf")  # U+FFFE, U+FFFF
    return not (octets == 0xEF).any() or not any(n in html for n in noncharacters)


def _repair_clean(markup: str, beginning: str) -> str:
    """`repair_faulty_html(markup, beginning)` for a text with no character XML forbids:
    its other two repairs, in its order."""
    if "doctype" in beginning:  # libxml2 cannot take a self-closing doctype (lxml bug 1955915)
        firstline, _, rest = markup.partition("\n")
        markup = DOCTYPE_TAG.sub("", firstline, count=1) + "\n" + rest
    for line in markup[:4096].splitlines()[:4]:  # a self-closing <html/> in the first lines
        if "<html" in line and line.endswith("/>"):
            return FAULTY_HTML.sub(r"\1>", markup, count=1)
    return markup


def _parse_or_none(markup: str | bytes) -> Any:
    try:
        return lxml.html.fromstring(markup, parser=_HTML_PARSER)
    except (ValueError, TypeError, etree.LxmlError):
        return None
