"""The pure extraction function: one statement page in, one `Article` out.

`extract_article` runs in the extraction process pool, so it is a top-level,
picklable function of plain data, with no I/O, no global state that changes
results, and nothing worse than linear in the input. It owns:

* decoding bytes (BOM, then UTF-8, then the page's own `<meta charset>`, then
  Trafilatura's detection) and refusing input that is clearly not HTML;
* reading what the page says about itself in `<head>` (language, canonical URL,
  site name, headline) and running Trafilatura for the main text and metadata;
* assembling the `Article`: paragraphs, cleaned title, tz-aware publication
  date, language, canonical URL, authors, description, site name and tags.

Failures raise `ExtractionError` with one of the bounded reasons in `REASONS`.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import lxml.html
import numpy as np
import trafilatura
from courlan import extract_domain
from htmldate import find_date
from lxml import etree
from lxml.etree import XPath
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import normalize_authors
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_author,
    extract_catstags,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document
from trafilatura.utils import (
    DOCTYPE_TAG,
    FAULTY_HTML,
    decode_file,
    is_dubious_html,
    line_processing,
    repair_faulty_html,
    trim,
)
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS

from monitor.errors import ExtractionError
from monitor.extract import dates, prefilter
from monitor.extract.chrome import (
    chrome_share,
    chrome_shingles,
    has_repeats,
    in_chrome,
    keeps_content,
)
from monitor.extract.headings import home_link_names, subheadings
from monitor.extract.rules import apply_rules
from monitor.extract.text import (
    choose_language,
    is_server_footer,
    join_paragraphs,
    normalize_whitespace,
    paragraphs_from_xml,
    trim_page_furniture,
)
from monitor.extract.titles import clean_title, names_site
from monitor.models import Article, ExtractionRules

__all__ = ["EMPTY", "NOT_HTML", "PARSE_ERROR", "REASONS", "extract_article"]

prefilter.install()  # Trafilatura's regex prunes, skipped where they cannot match (1.6 ms a page)

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

# Trafilatura asks htmldate for the full timestamp; "%z" is empty when unknown.
_DATE_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%z"
# Boilerplate guard: shares of the extraction's shingles found in the page chrome.
_RETRY_CHROME_SHARE: Final = 0.1  # above this, ask favor_precision for a second opinion
_BOILERPLATE_SHARE: Final = 0.9  # at or above this, the page has no statement
_MAX_HEADLINES = 3  # <h1>s read as headline hints
_MAX_TAGS = 64
_LIST_SPLIT = re.compile(r"\s*[,;]\s*")
_AUTHOR_SPLIT = re.compile(r"\s*;\s*")
_HTTP_SCHEMES = frozenset({"http", "https"})

# Trafilatura's in-body author search (`trafilatura.metadata.extract_author`, 2.3) looks
# for elements by attributes only (trafilatura.xpaths.AUTHOR_XPATHS) in a deep copy of the
# page pruned of AUTHOR_DISCARD_XPATHS: 11.4 ms of a 31 ms page, mostly libxml2 testing a
# dozen predicates on every element. `_byline` gives the same answer from the few elements
# with an attribute value that any of those predicates needs (`_AUTHOR_HINT`): 0.4-1 ms.
# The same values (every @id and @class among them) answer `prefilter`'s question too.
_AUTHOR_ATTRIBUTES: Final = XPath(
    "//@class|//@id|//@itemprop|//@rel|//@data-testid|//@data-component"
)
_AUTHOR_HINT: Final = re.compile(
    "[Aa]uthor|[Bb]yl|BBL|username|screenname|writer|zuozhe|bianji|xiaobian|channel-name"
    "|submitted-by|posted-by|journalist-name"
)
_AUTHOR_TAGS: Final = (  # the element names of AUTHOR_XPATHS' first and second expression
    frozenset({"a", "address", "div", "link", "p", "span", "strong"}),
    frozenset({"a", "div", "h3", "h4", "p", "span"}),
)
_AUTHOR_DISCARD_TAGS: Final = frozenset({"a", "div", "section", "span"})
_AUTHOR_DISCARD_ALWAYS: Final = frozenset({"time", "figure"})
_AUTHOR_MAX_CHARS: Final = 120
# `trafilatura.metadata.extract_catstags` keeps the links, under elements that its XPaths
# name, whose href has "/categor" ("/category/", "/categories/") or "/tag" in it: without
# such a link anywhere, its XPaths (2.6 ms on bench/backfill.py pages) cannot find any.
# One look at every link's href answers that for both kinds.
_LINK_TARGETS: Final = XPath("//a/@href", smart_strings=False)
_CATSTAGS_LINK_MARK: Final = {"category": "/categor", "tag": "/tag"}
_SECTION_METAS: Final = XPath(  # extract_catstags' fallback for categories
    './/head//meta[@property="article:section" or contains(@name, "subject")][@content]'
)


def extract_article(
    html: bytes | str,
    *,
    url: str | None = None,
    feed_title: str | None = None,
    feed_published_at: dt.datetime | None = None,
    rules: ExtractionRules | None = None,
) -> Article:
    """Extract the statement in `html`, the page served at `url`.

    `feed_title` and `feed_published_at` are what the feed said about the
    entry; they stand in when the page has no title or date of its own.
    `rules` are the source's extraction rules (`monitor.extract.rules`): each
    one that matches wins over generic extraction for its part, each one that
    does not is named in `Article.rule_misses`.

    Raises:
        ExtractionError: `reason` is one of `REASONS`; never retriable, since
            the same bytes give the same answer.
    """
    tree = _parse_page(html)
    ruled = apply_rules(tree, rules)  # first, so that nothing below sees what it removes
    attributes = _AUTHOR_ATTRIBUTES(tree)  # one scan, for the byline and Trafilatura's prunes
    head = _read_head(tree, url)
    page_dates = dates.read_page(tree)
    with prefilter.page_attributes(attributes):
        body = _run_trafilatura(tree, url, precise=False)
        if body is None and not ruled.paragraphs:  # a content rule's text needs no body
            raise ExtractionError(EMPTY, "no main text found in the page")
        document = _metadata_of(tree, url, attributes)
        document.body = None if body is None else body.body
        authors = _authors(document.author)
        site_names = (head.site_name, _clean(document.sitename), *head.home_names)
        hostname = urlsplit(head.canonical_url or url or "").hostname
        title = ruled.title or _title(document, head, feed_title, site_names, authors, hostname)
        paragraphs = list(ruled.paragraphs) or _statement_paragraphs(tree, url, document)
    text = join_paragraphs(_without_headline(paragraphs, (title, feed_title, *head.headlines)))
    return Article(
        title=title,
        text=text,
        language=choose_language(head.language, text),
        published_at=_published_at(
            ruled.date or page_dates.choose(document.date), feed_published_at
        ),
        canonical_url=head.canonical_url or url,
        authors=authors,
        description=_clean(document.description),
        sitename=_clean(document.sitename) or head.site_name,
        tags=_tags(document.tags, document.categories),
        rule_misses=ruled.misses,
    )


# --- decoding and sniffing -------------------------------------------------


def _parse_page(html: bytes | str) -> Any:
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


# --- what the page says about itself ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    language: str | None  # as declared (<html lang>, Content-Language, og:locale), raw
    canonical_url: str | None
    site_name: str | None
    titles: tuple[str, ...]  # og:title, twitter:title, <title>: raw, in that order
    headlines: tuple[str, ...]  # the first <h1>s that are not a logo in the header
    subheadings: tuple[str, ...] = ()  # the first <h2>s: headline hints (headings.py)
    home_names: tuple[str, ...] = ()  # the site's name in its logo or home link


def _read_head(tree: Any, url: str | None) -> _Head:
    metas = _metas(tree)
    return _Head(
        language=_declared_language(tree, metas),
        canonical_url=_canonical_url(tree, metas, url),
        site_name=_clean(metas.get("og:site_name") or metas.get("application-name")),
        titles=tuple(
            title
            for title in (
                _clean(metas.get("og:title")),
                _clean(metas.get("twitter:title")),
                _clean(_first_text(tree, ".//title")),
            )
            if title
        ),
        headlines=_headlines(tree),
        subheadings=subheadings(tree),
        home_names=home_link_names(tree),
    )


def _metas(tree: Any) -> dict[str, str]:
    """<meta> contents by lower-cased name / property / http-equiv; first one wins."""
    found: dict[str, str] = {}
    for meta in tree.iterfind(".//meta[@content]"):
        for attribute in ("name", "property", "http-equiv", "itemprop"):
            key = (meta.get(attribute) or "").strip().lower()
            if key and key not in found:
                found[key] = meta.get("content") or ""
    return found


def _declared_language(tree: Any, metas: dict[str, str]) -> str | None:
    root = tree.getroottree().getroot()
    for value in (
        root.get("lang"),
        root.get("xml:lang"),
        metas.get("content-language"),
        metas.get("og:locale"),
    ):
        if value and value.strip():
            return str(value).strip()
    return None


def _canonical_url(tree: Any, metas: dict[str, str], url: str | None) -> str | None:
    """<link rel=canonical>, else og:url, made absolute; None when neither is usable."""
    base = url or ""
    base_href = _first_attribute(tree, ".//base[@href]", "href")
    if base_href:
        base = urljoin(base, base_href)
    links = (
        link.get("href")
        for link in tree.iterfind(".//link[@rel][@href]")
        if "canonical" in (link.get("rel") or "").lower().split()
    )
    for href in (next(links, None), metas.get("og:url")):
        candidate = _absolute_http_url(base, href)
        if candidate and not _is_home_page_of_other(candidate, url):
            return candidate
    return None


def _absolute_http_url(base: str, href: str | None) -> str | None:
    if not href or not href.strip():
        return None
    absolute = urljoin(base, href.strip())
    parts = urlsplit(absolute)
    return absolute if parts.scheme in _HTTP_SCHEMES and parts.netloc else None


def _is_home_page_of_other(candidate: str, url: str | None) -> bool:
    """True for a canonical pointing at the home page from a deeper page (a CMS bug)."""
    if not url:
        return False
    return urlsplit(candidate).path in ("", "/") and urlsplit(url).path not in ("", "/")


def _headlines(tree: Any) -> tuple[str, ...]:
    found: list[str] = []
    for h1 in tree.iterfind(".//h1"):
        text = normalize_whitespace(h1.text_content())
        if text and not _is_logo(h1, text):
            found.append(text)
        if len(found) == _MAX_HEADLINES:
            break
    return tuple(found)


def _is_logo(h1: Any, text: str) -> bool:
    """True for an <h1> that is the site's logo: in the chrome, named so, or just a link."""
    if in_chrome(h1):
        return True
    parent = h1.getparent()
    for element in (h1, parent) if parent is not None else (h1,):
        names = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
        if "logo" in names or "brand" in names:
            return True
    links = h1.findall(".//a")
    return len(links) == 1 and normalize_whitespace(links[0].text_content()) == text


def _first_text(tree: Any, path: str) -> str | None:
    element = tree.find(path)
    return None if element is None else str(element.text_content())


def _first_attribute(tree: Any, path: str, attribute: str) -> str | None:
    element = tree.find(path)
    return None if element is None else element.get(attribute)


# --- Trafilatura ------------------------------------------------------------


def _run_trafilatura(tree: Any, url: str | None, *, precise: bool) -> Document | None:
    """Main text of the page, or None when Trafilatura finds no text.

    favor_recall by default: a missed paragraph (often the one holding the
    quotation) costs more than a stray line, and recall scored best on the
    readability corpus. favor_precision is the second opinion asked when the
    recall result looks suspect (see `_statement_paragraphs`).
    deduplicate=False: Trafilatura's cache is per process, so a repeated
    paragraph or a re-fetched page would vanish depending on what the worker
    saw before; extraction must depend on its input only.
    with_metadata=False: `_metadata` gives the same fields at a fifth of the cost.
    `url` only matters to Trafilatura's text for include_links (off here), so
    the body is the same as with its metadata pass, which passes on the page's
    canonical URL when `url` is None.
    output_format="txt": only the body tree is read here; the default ("python")
    also serializes that tree to text (`Document.text`, 0.2 ms a page) for nobody.
    """
    try:
        document = trafilatura.bare_extraction(
            tree,  # copied by Trafilatura, ours stays intact
            url=url,
            favor_recall=not precise,
            favor_precision=precise,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            include_formatting=False,
            deduplicate=False,
            with_metadata=False,
            output_format="txt",
        )
    except Exception as exc:  # third-party code on hostile input: one bounded reason
        raise ExtractionError(PARSE_ERROR, f"Trafilatura failed: {exc!r}") from exc
    if not isinstance(document, Document) or document.body is None:
        return None
    return document


def _metadata_of(tree: Any, url: str | None, attributes: list[Any]) -> Document:
    """`_metadata`, with Trafilatura's failures as one bounded reason."""
    try:
        return _metadata(tree, url, attributes)
    except Exception as exc:  # third-party code on hostile input: one bounded reason
        raise ExtractionError(PARSE_ERROR, f"Trafilatura failed: {exc!r}") from exc


def _metadata(tree: Any, url: str | None, attributes: list[Any] | None = None) -> Document:
    """What `trafilatura.extract_metadata(tree, url, date_config)` says, at a third of its cost.

    The same steps in the same order (meta tags, JSON-LD, title, author, URL,
    htmldate with Trafilatura's parameters, site name, categories, tags) with
    the same results: only the two expensive searches are done differently,
    the author in the page's body (`_byline`: 11.4 -> 0.5 ms per
    bench/backfill.py page) and categories/tags (`_catstags`: 2.6 -> 0.4 ms).
    The license, which nothing here reads, is not looked for (0.8 ms).
    tests/test_extract_metadata.py holds the result to Trafilatura's.
    """
    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:  # as Trafilatura: one word is no name
        metadata.author = None
    with contextlib.suppress(Exception):  # as Trafilatura: a JSON-LD bug costs the JSON-LD only
        metadata = extract_meta_json(tree, metadata)
    if not metadata.title:
        metadata.title = extract_title(tree)
    if not metadata.author:
        metadata.author = _byline(tree, attributes)
    if not metadata.url:
        metadata.url = extract_url(tree, url)
    if metadata.url:
        metadata.hostname = extract_domain(metadata.url, fast=True)
    metadata.date = find_date(  # Trafilatura's parameters, with the full timestamp
        tree,
        url=metadata.url,
        extensive_search=True,
        original_date=True,
        outputformat=_DATE_FORMAT,
    )
    if not metadata.sitename:
        metadata.sitename = extract_sitename(tree)
    if metadata.sitename:
        name = metadata.sitename.lstrip("@")  # a Twitter handle
        metadata.sitename = (
            name.title() if name and "." not in name and not name[0].isupper() else name
        )
    elif metadata.url and (match := META_URL.match(metadata.url)):
        metadata.sitename = match[1]
    if not metadata.categories or not metadata.tags:
        hrefs = _hrefs(tree)
        if not metadata.categories:
            metadata.categories = _catstags("category", tree, hrefs)
        if not metadata.tags:
            metadata.tags = _catstags("tag", tree, hrefs)
    metadata.clean_and_trim()
    return metadata


def _byline(tree: Any, attributes: list[Any] | None = None) -> str | None:
    """`trafilatura.metadata.extract_author(tree)`, without copying and pruning the page.

    Its three XPaths in turn, each over the candidates in document order; the
    first candidate outside discarded parts (comments, sidebars, dates,
    figures...) whose text, without discarded descendants, is 3 to 119
    characters long is the byline. A page with an <author> element, or a <rel>
    one (`rel='me'` in the first XPath), takes Trafilatura's own path.
    """
    if next(tree.iter("author", "rel"), None) is not None:
        found: str | None = extract_author(tree)
        return found
    if attributes is None:
        attributes = _AUTHOR_ATTRIBUTES(tree)
    candidates = dict.fromkeys(
        value.getparent() for value in attributes if _AUTHOR_HINT.search(value)
    )
    root = tree.getroottree().getroot()
    for matches in (_author_1, _author_2, _author_3):
        for element in candidates:
            if not matches(element) or _author_discarded(element, root):
                continue
            content = trim(" ".join(_without_discarded(element).itertext()))
            if content and 2 < len(content) < _AUTHOR_MAX_CHARS:
                author: str | None = normalize_authors(None, content)
                return author
    return None


def _hrefs(tree: Any) -> str:
    """The targets of the page's links, one a line: a mark (no newline in it) is in
    one of them if it is in this text, one test instead of one per link."""
    return "\n".join(_LINK_TARGETS(tree))


def _catstags(metatype: str, tree: Any, hrefs: str) -> list[str]:
    """`trafilatura.metadata.extract_catstags(metatype, tree)`, skipping its link XPaths
    when none of the page's links (`hrefs`, one a line) could match them."""
    if _CATSTAGS_LINK_MARK[metatype] in hrefs:
        found: list[str] = extract_catstags(metatype, tree)
        return found
    if metatype != "category":
        return []
    sections = (element.attrib["content"] for element in _SECTION_METAS(tree))
    return [r for r in dict.fromkeys(line_processing(x) for x in sections if x) if r]


def _author_1(element: Any) -> bool:
    """AUTHOR_XPATHS[0] without //author and `rel='me'` (a <rel> child; see `_byline`)."""
    if element.tag not in _AUTHOR_TAGS[0]:
        return False
    get = element.get
    class_ = get("class") or ""
    return (
        get("rel") == "author"
        or get("id") == "author"
        or class_ == "author"
        or get("itemprop") == "author name"
        or get("data-testid") in ("AuthorCard", "AuthorURL")
        or any(name in class_ for name in ("author-name", "authorname", "AuthorName", "authorName"))
    )


def _author_2(element: Any) -> bool:
    """AUTHOR_XPATHS[1]."""
    if element.tag not in _AUTHOR_TAGS[1]:
        return False
    get = element.get
    class_, id_ = get("class") or "", get("id") or ""
    return (
        class_ in ("byline", "username", "byl", "BBL")
        or "author" in (get("itemprop") or "")
        or any(name in id_ for name in ("author", "zuozhe", "bianji", "xiaobian"))
        or any(
            name in class_
            for name in (
                *("author", "channel-name", "zuozhe", "bianji", "xiaobian"),
                *("submitted-by", "posted-by", "journalist-name"),
            )
        )
    )


def _author_3(element: Any) -> bool:
    """AUTHOR_XPATHS[2]: any element."""
    get = element.get
    class_, id_ = get("class") or "", get("id") or ""
    return (
        "Byline" in (get("data-component") or "")
        or "author" in (get("itemprop") or "")
        or "Author" in id_
        or "author" in id_
        or any(
            name in class_
            for name in ("Author", "author", "screenname", "writer", "Byline", "byline")
        )
    )


def _discarded_here(element: Any, root: Any) -> bool:
    """Whether AUTHOR_DISCARD_XPATHS select `element` (the first one, .//*, not the root)."""
    tag = element.tag
    if tag in _AUTHOR_DISCARD_ALWAYS:
        return True
    if tag not in _AUTHOR_DISCARD_TAGS or element is root:
        return False
    get = element.get
    class_, id_ = get("class") or "", get("id") or ""
    return (
        id_ == "comments"
        or class_ in ("comments", "title", "date")
        or id_.startswith("comments")
        or any(name in id_ for name in ("commentlist", "comment-list", "ProductReviews"))
        or class_.startswith(("Comments", "comments"))
        or any(
            name in class_
            for name in (
                *("commentlist", "comments-list", "sidebar", "is-hidden", "quote"),
                *("embedly-instagram", "article-share", "article-support", "print"),
                *("category", "meta-date", "meta-reviewer"),
            )
        )
        or "Figure" in (get("data-component") or "")
    )


def _author_discarded(element: Any, root: Any) -> bool:
    """Whether pruning removes `element`: it or an ancestor is discarded."""
    return _discarded_here(element, root) or any(
        _discarded_here(ancestor, root) for ancestor in element.iterancestors()
    )


def _without_discarded(element: Any) -> Any:
    """`element`, or a pruned copy when it holds discarded elements (Trafilatura's
    pruning joins their tails to the text before them, so the copy's text is its text)."""
    if not any(_discarded_here(child, None) for child in element.iterdescendants()):
        return element
    return prune_unwanted_nodes(copy.deepcopy(element), AUTHOR_DISCARD_XPATHS)


def _paragraphs(document: Document | None) -> list[str]:
    """The body's paragraphs without server footers ("ServerCode=node3 ...") and
    without the date lines and share bars recall mode keeps at its ends."""
    if document is None:
        return []
    paragraphs = [p for p in paragraphs_from_xml(document.body) if not is_server_footer(p)]
    return trim_page_furniture(paragraphs)


def _statement_paragraphs(tree: Any, url: str | None, document: Document) -> list[str]:
    """The statement's paragraphs: recall's, or precision's when those lose no content.

    Recall sometimes over-delivers: navigation leaks in (Trafilatura's
    whole-page rescue of a short statement) or a block comes out twice. Either
    sign asks favor_precision for a second opinion, taken when it keeps nearly
    all of recall's non-chrome text. Chrome is the page's header, nav, footer,
    aside and breadcrumbs; an extraction that is (nearly) all chrome is a page
    without a statement.
    """
    chrome = chrome_shingles(tree)
    paragraphs = _paragraphs(document)
    share = chrome_share(paragraphs, chrome)
    if share > _RETRY_CHROME_SHARE or has_repeats(paragraphs):
        precise = _paragraphs(_run_trafilatura(tree, url, precise=True))
        if precise and keeps_content(precise, paragraphs, chrome):
            paragraphs = precise
            share = chrome_share(paragraphs, chrome)
    if not paragraphs or share >= _BOILERPLATE_SHARE:
        raise ExtractionError(EMPTY, "no statement text in the page, only navigation")
    return paragraphs


def _without_headline(paragraphs: list[str], headlines: tuple[str | None, ...]) -> list[str]:
    """`paragraphs` without a first one that repeats the headline."""
    if len(paragraphs) > 1 and _same_text(paragraphs[0], headlines):
        return paragraphs[1:]
    return paragraphs


def _same_text(paragraph: str, candidates: tuple[str | None, ...]) -> bool:
    key = paragraph.casefold()
    return any(c and normalize_whitespace(c).casefold() == key for c in candidates)


# --- metadata ---------------------------------------------------------------


def _title(
    document: Document,
    head: _Head,
    feed_title: str | None,
    site_names: tuple[str | None, ...],
    authors: tuple[str, ...],
    hostname: str | None,
) -> str | None:
    """The headline: the page's first title that is more than the site name, else the feed's.

    og:title, twitter:title and <title> come first, cleaned of the site name;
    then Trafilatura's title (JSON-LD headline or the lone <h1>, which on
    official sites is often a section name such as "Press releases").
    """
    hints = (*head.headlines, feed_title, *head.subheadings)
    strippable = (*site_names, *authors)  # "Headline | by Jane Doe"
    cleaned = [
        clean_title(raw, site_names=strippable, headlines=hints, hostname=hostname)
        for raw in (*head.titles, _clean(document.title))
        if raw
    ]
    for title in cleaned:
        if title and not names_site(title, site_names=site_names, hostname=hostname):
            return title
    fallback = _clean(feed_title)
    if fallback:
        return clean_title(fallback, site_names=site_names, hostname=hostname) or fallback
    return next((title for title in cleaned if title), None)


def _published_at(page_date: str | None, feed_date: dt.datetime | None) -> dt.datetime | None:
    """The page's date when it has one, else the feed's; always tz-aware.

    A date without a time of day is midnight UTC, unless the feed dates the
    entry on that same day: then the feed's timestamp is the more precise one.
    """
    feed = _aware(feed_date)
    parsed = _parse_date(page_date)
    if parsed is None:
        return feed
    page, date_only = parsed
    if date_only and feed is not None and feed.date() == page.date():
        return feed
    return page


def _parse_date(value: str | None) -> tuple[dt.datetime, bool] | None:
    """(tz-aware datetime, whether only the day was known) from htmldate's output."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except (ValueError, OverflowError):
        return None
    date_only = parsed.tzinfo is None and parsed.time() == dt.time()
    return _with_zone(parsed), date_only


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _with_zone(value)


def _with_zone(value: dt.datetime) -> dt.datetime:
    """`value` with UTC assumed when it carries no time zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _clean(value: str | None) -> str | None:
    """Whitespace-normalised `value`, or None when nothing is left."""
    if not value:
        return None
    return normalize_whitespace(value) or None


def _authors(value: str | None) -> tuple[str, ...]:
    return _unique(_AUTHOR_SPLIT.split(value or ""))


def _tags(*groups: list[str] | None) -> tuple[str, ...]:
    items = (item for group in groups for entry in group or () for item in _LIST_SPLIT.split(entry))
    return _unique(items)[:_MAX_TAGS]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    """Normalised, non-empty items in first-seen order, case-insensitively unique."""
    seen: dict[str, str] = {}
    for item in items:
        cleaned = _clean(item)
        if cleaned and cleaned.casefold() not in seen:
            seen[cleaned.casefold()] = cleaned
    return tuple(seen.values())
