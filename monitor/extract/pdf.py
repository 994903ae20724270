"""The PDF extractor: one statement PDF in, one `Article` out, in the worker pool.

`extract_pdf` is `extract_article`'s sibling for documents that are PDFs
(`is_pdf`: a `%PDF-` signature in the first KiB, or an `application/pdf`
Content-Type on a body that is not markup). It is pure and top-level, like
its sibling, so the pool sends it by name. It owns:

* reading the document with pypdf (chosen by measurement over pdfminer.six:
  bench/pdf.py, about 12× the pages per second on the same generated
  statements, with the same peak memory), at most `max_pages` pages;
* turning positioned lines into text: lines grouped into paragraphs by the
  vertical gap between them (a gap well above the page's usual line pitch, or
  a change of font size, starts a paragraph), words hyphenated at a line's
  end joined, running headers, footers and page numbers (the first and last
  lines of a page that repeat, digits aside, on most pages) removed, and a
  paragraph cut by a page break made whole again;
* the title: the document's metadata title when it is meaningful (not a file
  name such as "Microsoft Word - doc1.docx"), else the first heading-like
  line (set larger than the body text) on the first page;
* the date: a date written near the top of the first page, else the
  metadata's creation date.

Reading with pypdf (and the CPU limit) is `monitor.extract.pdfread`'s, turning
lines into paragraphs `monitor.extract.pdflayout`'s; this module keeps the
order of the steps, the title and the date.

Failures raise `ExtractionError` with one of `PDF_REASONS`: the caller falls
back to the feed's text, and counts the reason. Hostile documents are bounded
by pypdf's own limits (decompressed stream size, array and page-tree sizes,
cyclic references; pypdf >= 6) and by a CPU-time limit on the task
(`max_cpu_seconds`, a virtual-time timer in the worker, so the worker lives
on); the pool's task deadline stays the last resort.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from typing import Any, Final

from monitor.errors import ExtractionError
from monitor.extract.pdflayout import (
    HEADING_SCALE,
    Line,
    join_lines,
    layout_paragraphs,
    without_running_lines,
)
from monitor.extract.pdfread import (
    PDF_CORRUPT,
    PDF_ENCRYPTED,
    PDF_NO_TEXT,
    PDF_REASONS,
    PDF_TIMEOUT,
    PDF_TOO_LARGE,
    ReadErrors,
    cpu_limit,
    open_pdf,
    read_metadata,
    read_pages,
)
from monitor.extract.text import choose_language, join_paragraphs, normalize_whitespace
from monitor.models import Article

__all__ = [
    "PDF_CORRUPT",
    "PDF_ENCRYPTED",
    "PDF_NO_TEXT",
    "PDF_REASONS",
    "PDF_TIMEOUT",
    "PDF_TOO_LARGE",
    "extract_pdf",
    "is_pdf",
]

MEDIA_TYPE: Final = "application/pdf"

_MAGIC: Final = b"%PDF-"
_MAGIC_WINDOW: Final = 1024  # readers accept the header anywhere in the first KiB
_PDF_TYPES: Final = frozenset({"application/pdf", "application/x-pdf", "application/acrobat"})
_DATE_LINES: Final = 12  # the lines of the first page searched for the statement's date
_MASTHEAD: Final = 3  # the first paragraphs where the title and dateline are looked for
_MIN_TEXT_CHARS: Final = 20  # less than this from a whole document is no text layer

# Metadata titles that name a file or a template, not the statement.
_JUNK_TITLE = re.compile(
    r"^(?:microsoft\s+(?:word|powerpoint|excel)\s*-|untitled|document\d*$|doc\d*$|title$|"
    r"slide\s*\d*$|presentation\d*$|\s*$)|\.(?:docx?|pdf|rtf|odt|pptx?|indd|qxd|tex|txt)\s*$",
    re.IGNORECASE,
)
_MONTHS: Final = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS: Final = (
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\.?,?\s+(\d{{4}})\b", re.I), "dmy"),
    (re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I), "mdy"),
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "ymd"),
)


def is_pdf(body: bytes, content_type: str | None = None) -> bool:
    """Whether `body` is a PDF: its signature in the first KiB, whatever the header says,
    or a PDF Content-Type; never a body that starts as markup (a server's HTML error
    page served as application/pdf is HTML)."""
    head = body[:_MAGIC_WINDOW]
    if head.lstrip(b" \t\r\n\x00\xef\xbb\xbf").startswith(b"<"):
        return False  # markup (that may well mention "%PDF-")
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    return _MAGIC in head or declared in _PDF_TYPES


def extract_pdf(
    data: bytes,
    *,
    url: str | None = None,
    feed_title: str | None = None,
    feed_published_at: dt.datetime | None = None,
    max_pages: int = 200,
    max_cpu_seconds: float | None = None,
) -> Article:
    """Extract the statement in the PDF `data`, the document served at `url`.

    Reads at most `max_pages` pages. `feed_title` and `feed_published_at` stand
    in when the document has no title or date of its own.

    Raises:
        ExtractionError: `reason` is one of `PDF_REASONS`; never retriable.
    """
    errors = ReadErrors()
    with cpu_limit(max_cpu_seconds), errors.watching():
        reader = open_pdf(data)
        pages = read_pages(reader, max_pages, errors)
        metadata = read_metadata(reader)
    pages = without_running_lines(pages)
    paragraphs = layout_paragraphs(pages)
    if sum(len(p) for p in paragraphs) < _MIN_TEXT_CHARS:
        raise ExtractionError(PDF_NO_TEXT, "the PDF has no text layer (a scan?)")
    title = _meaningful_title(metadata.get("title")) or _heading(pages) or feed_title
    paragraphs = _without_masthead(paragraphs, title)
    text = join_paragraphs(paragraphs)
    return Article(
        title=title,
        text=text,
        language=choose_language(None, text),
        published_at=_published_at(pages, metadata.get("created"), feed_published_at),
        canonical_url=url,
        authors=tuple(a for a in (metadata.get("author"),) if isinstance(a, str) and a),
        media_type=MEDIA_TYPE,
    )


# --- title and date ---------------------------------------------------------------


def _meaningful_title(value: Any) -> str | None:
    """The metadata title, unless it names a file or a template."""
    if not isinstance(value, str):
        return None
    title = normalize_whitespace(value)
    if len(title) < 4 or _JUNK_TITLE.search(title) or not any(c.isalpha() for c in title):
        return None
    return title


def _heading(pages: list[list[Line]]) -> str | None:
    """The first heading-like line(s) of the first page with text: set larger than its body."""
    lines = next((lines for lines in pages if lines), [])
    sizes = [line.size for line in lines if line.size]
    if not sizes:
        return None
    body = statistics.median(sizes)
    for index, line in enumerate(lines[:_DATE_LINES]):
        if line.size > body * HEADING_SCALE and any(c.isalpha() for c in line.text):
            parts = [line.text]
            for following in lines[index + 1 : index + 3]:  # a heading set on two lines
                if abs(following.size - line.size) > 0.01 or following.y >= line.y:
                    break
                parts.append(following.text)
            return join_lines(parts)
    return None


def _without_masthead(paragraphs: list[str], title: str | None) -> list[str]:
    """The paragraphs without the title and the dateline among the first few: they are
    `title` and `published_at` already (as HTML extraction drops the headline)."""
    head, rest = paragraphs[:_MASTHEAD], paragraphs[_MASTHEAD:]
    kept = [p for p in head if not ((title and _same(p, title)) or _is_date_line(p))]
    return kept + rest if kept or rest else paragraphs


def _same(paragraph: str, title: str) -> bool:
    return paragraph.casefold() == normalize_whitespace(title).casefold()


def _published_at(
    pages: list[list[Line]], created: Any, feed_published_at: dt.datetime | None
) -> dt.datetime | None:
    """A date near the top of the first page, else the creation date, else the feed's.

    A date-only value is midnight UTC, unless the feed dates the entry on that
    same day: then the feed's timestamp is the more precise one (as for HTML).
    """
    feed = _aware(feed_published_at)
    lines = next((lines for lines in pages if lines), [])
    for line in lines[:_DATE_LINES]:
        day = _date_in(line.text)
        if day is not None:
            if feed is not None and feed.date() == day:
                return feed
            return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    if isinstance(created, dt.datetime):
        return _aware(created)
    return feed


def _is_date_line(text: str) -> bool:
    """A paragraph that is a date and little else ("Frankfurt, 4 November 2026")."""
    return len(text) <= 40 and _date_in(text) is not None


def _date_in(text: str) -> dt.date | None:
    for pattern, order in _DATE_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        a, b, c = match.groups()
        try:
            if order == "dmy":
                return dt.date(int(c), _MONTHS[b.lower()], int(a))
            if order == "mdy":
                return dt.date(int(c), _MONTHS[a.lower()], int(b))
            return dt.date(int(a), int(b), int(c))
        except (ValueError, KeyError):
            continue
    return None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
