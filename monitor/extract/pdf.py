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

Failures raise `ExtractionError` with one of `PDF_REASONS`: the caller falls
back to the feed's text, and counts the reason. Hostile documents are bounded
by pypdf's own limits (decompressed stream size, array and page-tree sizes,
cyclic references; pypdf >= 6) and by a CPU-time limit on the task
(`max_cpu_seconds`, a virtual-time timer in the worker, so the worker lives
on); the pool's task deadline stays the last resort.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import logging
import re
import signal
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from monitor.errors import ExtractionError
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
# ExtractionError reasons (metric labels: bounded).
PDF_ENCRYPTED: Final = "pdf_encrypted"  # needs a password
PDF_CORRUPT: Final = "pdf_corrupt"  # unreadable: truncated, broken xref, cyclic or nested too deep
PDF_NO_TEXT: Final = "pdf_no_text"  # readable, but no text layer (a scan)
PDF_TOO_LARGE: Final = "pdf_too_large"  # a limit reached: decompression bomb, huge arrays
PDF_TIMEOUT: Final = "pdf_timeout"  # more CPU than `max_cpu_seconds`
PDF_REASONS: Final = frozenset(
    {PDF_ENCRYPTED, PDF_CORRUPT, PDF_NO_TEXT, PDF_TOO_LARGE, PDF_TIMEOUT}
)

_MAGIC: Final = b"%PDF-"
_MAGIC_WINDOW: Final = 1024  # readers accept the header anywhere in the first KiB
_PDF_TYPES: Final = frozenset({"application/pdf", "application/x-pdf", "application/acrobat"})
_EDGE_LINES: Final = 3  # lines at a page's top and bottom that may be running headers/footers
_REPEAT_SHARE: Final = 0.6  # "on most pages": an edge line this share of pages repeats
_PARAGRAPH_GAP: Final = 1.4  # a line gap this many times the usual pitch starts a paragraph
_SHORT_LINE: Final = 0.8  # a line ending a sentence this short of the longest ends a paragraph
_HEADING_SCALE: Final = 1.15  # a line this much larger than the body text is heading-like
_DATE_LINES: Final = 12  # the lines of the first page searched for the statement's date
_MASTHEAD: Final = 3  # the first paragraphs where the title and dateline are looked for
_MIN_TEXT_CHARS: Final = 20  # less than this from a whole document is no text layer

_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(
    r"^(?:page|p\.|seite|página|pagina)?\s*[-–—(]?\s*\d{1,4}\s*[-–—)]?"
    r"(?:\s*(?:/|of|de|von|sur)\s*\d{1,4})?$",
    re.IGNORECASE,
)
_ROMAN_PAGE = re.compile(r"^[ivxlc]{1,6}$", re.IGNORECASE)
_HYPHEN_END = re.compile(r"(?<=[^\W\d_])[-\u00ad\u2010]$")
_SENTENCE_END = re.compile(r"[.!?:;\"'”’»)]$")
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

# pypdf reports what it recovers from on its logger: noise in the service's log for
# every page of every broken PDF. It goes to `_ReadErrors` only, which keeps the first
# report to explain a document that gave no text.
_PYPDF_LOG = logging.getLogger("pypdf")
_PYPDF_LOG.setLevel(logging.WARNING)
_PYPDF_LOG.propagate = False
_PYPDF_LOG.addHandler(logging.NullHandler())


def is_pdf(body: bytes, content_type: str | None = None) -> bool:
    """Whether `body` is a PDF: its signature in the first KiB, whatever the header says,
    or a PDF Content-Type; never a body that starts as markup (a server's HTML error
    page served as application/pdf is HTML)."""
    head = body[:_MAGIC_WINDOW]
    if head.lstrip(b" \t\r\n\x00\xef\xbb\xbf").startswith(b"<"):
        return False  # markup (that may well mention "%PDF-")
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    return _MAGIC in head or declared in _PDF_TYPES


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    y: float  # the baseline's height on the page (PDF space: larger is higher)
    size: float  # the font size as set on the page


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
    errors = _ReadErrors()
    with _cpu_limit(max_cpu_seconds), errors.watching():
        reader = _open(data)
        pages = _read_pages(reader, max_pages, errors)
        metadata = _metadata(reader)
    pages = _without_running_lines(pages)
    paragraphs = _paragraphs(pages)
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


# --- reading ----------------------------------------------------------------------


class _CpuLimitReached(BaseException):
    """A BaseException: pypdf's `except Exception` recoveries must not swallow it."""


@contextlib.contextmanager
def _cpu_limit(seconds: float | None) -> Iterator[None]:
    """Raise `ExtractionError(PDF_TIMEOUT)` once the task has used `seconds` of CPU.

    A virtual-time timer (SIGVTALRM) interrupts pure-Python parsing between
    bytecodes, so a PDF built to make pypdf loop costs one task, not a worker.
    Only in a process's main thread (the pool's workers); elsewhere, no limit.
    """
    import threading

    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _CpuLimitReached

    previous = signal.signal(signal.SIGVTALRM, expire)
    # Then again every 50 ms: a signal that lands in a finalizer is lost (Python
    # prints it as "ignored"), the next one is not.
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds, 0.05)
    try:
        yield
    except _CpuLimitReached:
        raise ExtractionError(
            PDF_TIMEOUT, f"reading the PDF took more than {seconds:.0f} s of CPU"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def _open(data: bytes) -> Any:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many official PDFs are "encrypted" with an empty user password, only to
            # forbid printing or copying: they open without one.
            try:
                opened = reader.decrypt("")
            except (DependencyError, NotImplementedError) as exc:
                raise ExtractionError(PDF_ENCRYPTED, f"cannot decrypt: {exc}") from exc
            if not opened:
                raise ExtractionError(PDF_ENCRYPTED, "the PDF needs a password")
    except ExtractionError:
        raise
    except FileNotDecryptedError as exc:
        raise ExtractionError(PDF_ENCRYPTED, str(exc)) from exc
    except Exception as exc:  # RecursionError (nesting) included
        raise _failure(exc) from exc
    return reader


def _failure(exc: BaseException) -> ExtractionError:
    """The bounded reason for what pypdf raised."""
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    if isinstance(exc, FileNotDecryptedError):
        return ExtractionError(PDF_ENCRYPTED, str(exc))
    if isinstance(exc, LimitReachedError):
        return ExtractionError(PDF_TOO_LARGE, f"a limit of the PDF reader was reached: {exc}")
    if isinstance(exc, (RecursionError, MemoryError)):
        return ExtractionError(PDF_CORRUPT, f"the PDF is nested too deeply: {type(exc).__name__}")
    return ExtractionError(PDF_CORRUPT, f"unreadable PDF: {type(exc).__name__}: {exc}"[:300])


def _read_pages(reader: Any, max_pages: int, errors: _ReadErrors) -> list[list[_Line]]:
    """Each page's lines, top to bottom as the content stream draws them."""
    pages: list[list[_Line]] = []
    try:
        for number, page in enumerate(reader.pages):
            if number >= max_pages:
                break
            pages.append(_page_lines(page))
    except Exception as exc:
        if not any(pages):  # pages read before the failure are kept
            raise _failure(exc) from exc
    if not any(pages) and errors.first:
        raise ExtractionError(PDF_CORRUPT, f"unreadable PDF: {errors.first}"[:300])
    return pages


class _ReadErrors(logging.Handler):
    """The first problem pypdf logged (it logs, and goes on, where a document is broken)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None:
            self.first = record.getMessage()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        _PYPDF_LOG.addHandler(self)
        try:
            yield
        finally:
            _PYPDF_LOG.removeHandler(self)


def _page_lines(page: Any) -> list[_Line]:
    """The page's text lines with their heights, from pypdf's text and its positions.

    pypdf's visitor sees the text in the same pieces that make its output, line
    breaks included, so the output's lines are rebuilt here with the position
    and size of each line's first piece.
    """
    lines: list[_Line] = []
    parts: list[str] = []
    where: list[tuple[float, float]] = []

    def close() -> None:
        text = normalize_whitespace("".join(parts))
        if text:
            y, size = where[0] if where else (0.0, 0.0)
            lines.append(_Line(text, y, size))
        parts.clear()
        where.clear()

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        pieces = text.split("\n")
        for index, piece in enumerate(pieces):
            if index:
                close()
            if piece:
                if piece.strip() and not where:
                    y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                    scale = abs(tm[3] * cm[3]) or 1.0
                    where.append((float(y), float(size) * scale))
                parts.append(piece)

    page.extract_text(visitor_text=visit)
    close()
    return lines


def _metadata(reader: Any) -> dict[str, Any]:
    """Title, author and creation date from the document information, when readable."""
    found: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # a broken info dictionary costs only itself
        info = reader.metadata
        if info is not None:
            found["title"] = info.title
            found["author"] = normalize_whitespace(str(info.author or "")) or None
            with contextlib.suppress(Exception):
                found["created"] = info.creation_date
    return found


# --- text -------------------------------------------------------------------------


def _edge_key(line: _Line) -> tuple[str, int]:
    """A running line's identity: its text, digits aside, and its height on the page
    (a header is printed at the same place on every page; body text that happens to
    repeat is not)."""
    return _DIGITS.sub("#", line.text.casefold()), round(line.y / 4)


def _is_page_number(text: str) -> bool:
    return bool(_PAGE_NUMBER.match(text) or _ROMAN_PAGE.match(text))


def _without_running_lines(pages: list[list[_Line]]) -> list[list[_Line]]:
    """The pages without running headers, footers and page numbers.

    A line among a page's first or last `_EDGE_LINES` is dropped when the same
    text, digits aside ("Page 3" is "Page 4"), is at the same height at the
    edges of most pages;
    a lone page number ("3", "Page 3 of 9", "- 3 -") at an edge always goes.
    """
    counts: Counter[tuple[str, int]] = Counter()
    for lines in pages:
        counts.update({_edge_key(line) for line in _edges(lines)})
    needed = max(2, int(len(pages) * _REPEAT_SHARE + 0.5))
    running = {key for key, seen in counts.items() if seen >= needed and len(pages) > 1}
    cleaned = []
    for lines in pages:
        edges = {id(line) for line in _edges(lines)}
        cleaned.append(
            [
                line
                for line in lines
                if id(line) not in edges
                or not (_edge_key(line) in running or _is_page_number(line.text))
            ]
        )
    return cleaned


def _edges(lines: list[_Line]) -> list[_Line]:
    if len(lines) <= 2 * _EDGE_LINES:
        return lines
    return lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]


def _paragraphs(pages: list[list[_Line]]) -> list[str]:
    """Paragraphs in reading order, a paragraph cut by a page break joined again."""
    paragraphs: list[list[str]] = []
    for lines in pages:
        blocks = _blocks(lines)
        if blocks and paragraphs and _continues(paragraphs[-1], blocks[0]):
            paragraphs[-1].extend(blocks.pop(0))
        paragraphs.extend(blocks)
    return [text for block in paragraphs if (text := _join_lines(block))]


def _blocks(lines: list[_Line]) -> list[list[str]]:
    """A page's lines grouped into paragraphs.

    A paragraph starts after a gap well above the page's line pitch (the lower
    quartile of the gaps between lines of one size: most gaps are within
    paragraphs, or, on a page of short paragraphs, the lower ones are), at a
    change of font size, or after a line that ends a sentence well short of
    the page's full line length (the last line of a paragraph).
    """
    if not lines:
        return []
    gaps = sorted(
        a.y - b.y
        for a, b in itertools.pairwise(lines)
        if a.y - b.y > 0 and not _size_changed(a.size, b.size)
    )
    pitch = gaps[len(gaps) // 4] if gaps else 0.0
    full = max(len(line.text) for line in lines)
    blocks: list[list[str]] = [[lines[0].text]]
    for previous, line in itertools.pairwise(lines):
        gap = previous.y - line.y
        new_block = (
            gap <= 0  # a jump up: the next column, or a box placed apart
            or (pitch > 0 and gap > pitch * _PARAGRAPH_GAP)
            or _size_changed(previous.size, line.size)
            or (
                len(previous.text) < full * _SHORT_LINE
                and bool(_SENTENCE_END.search(previous.text))
            )
        )
        if new_block:
            blocks.append([line.text])
        else:
            blocks[-1].append(line.text)
    return blocks


def _size_changed(a: float, b: float) -> bool:
    return bool(a and b and max(a, b) / min(a, b) > _HEADING_SCALE)


def _continues(previous: list[str], following: list[str]) -> bool:
    """Whether a page's first block goes on with the last one of the page before."""
    last, first = previous[-1], following[0]
    if _SENTENCE_END.search(last):
        return False
    return first[:1].islower() or bool(_HYPHEN_END.search(last))


def _join_lines(lines: list[str]) -> str:
    """One paragraph from its lines, words hyphenated at a line's end made whole."""
    text = ""
    for line in lines:
        if not text:
            text = line
        elif _HYPHEN_END.search(text) and line[:1].islower():
            text = text[:-1] + line
        else:
            text = f"{text} {line}"
    return normalize_whitespace(text)


# --- title and date ---------------------------------------------------------------


def _meaningful_title(value: Any) -> str | None:
    """The metadata title, unless it names a file or a template."""
    if not isinstance(value, str):
        return None
    title = normalize_whitespace(value)
    if len(title) < 4 or _JUNK_TITLE.search(title) or not any(c.isalpha() for c in title):
        return None
    return title


def _heading(pages: list[list[_Line]]) -> str | None:
    """The first heading-like line(s) of the first page with text: set larger than its body."""
    lines = next((lines for lines in pages if lines), [])
    sizes = [line.size for line in lines if line.size]
    if not sizes:
        return None
    body = statistics.median(sizes)
    for index, line in enumerate(lines[:_DATE_LINES]):
        if line.size > body * _HEADING_SCALE and any(c.isalpha() for c in line.text):
            parts = [line.text]
            for following in lines[index + 1 : index + 3]:  # a heading set on two lines
                if abs(following.size - line.size) > 0.01 or following.y >= line.y:
                    break
                parts.append(following.text)
            return _join_lines(parts)
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
    pages: list[list[_Line]], created: Any, feed_published_at: dt.datetime | None
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
