"""Reading a PDF with pypdf, within bounds: pages as positioned lines, and metadata.

This module owns the reading step of `monitor.extract.pdf`: opening the
document (an empty user password tried), the CPU-time limit on a task
(`cpu_limit`, a virtual-time timer), each page's lines with their height and
font size (`read_pages`), the document information (`read_metadata`), what
pypdf logs while it recovers (`ReadErrors`), and the bounded `ExtractionError`
reasons of PDF extraction (`PDF_REASONS`), which `monitor.extract.pdf`
re-exports.
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
from collections.abc import Iterator
from typing import Any, Final

from monitor.errors import ExtractionError
from monitor.extract.pdflayout import Line
from monitor.extract.text import normalize_whitespace

__all__ = [
    "PDF_CORRUPT",
    "PDF_ENCRYPTED",
    "PDF_NO_TEXT",
    "PDF_REASONS",
    "PDF_TIMEOUT",
    "PDF_TOO_LARGE",
    "ReadErrors",
    "cpu_limit",
    "open_pdf",
    "read_metadata",
    "read_pages",
]

# ExtractionError reasons (metric labels: bounded).
PDF_ENCRYPTED: Final = "pdf_encrypted"  # needs a password
PDF_CORRUPT: Final = "pdf_corrupt"  # unreadable: truncated, broken xref, cyclic or nested too deep
PDF_NO_TEXT: Final = "pdf_no_text"  # readable, but no text layer (a scan)
PDF_TOO_LARGE: Final = "pdf_too_large"  # a limit reached: decompression bomb, huge arrays
PDF_TIMEOUT: Final = "pdf_timeout"  # more CPU than `max_cpu_seconds`
PDF_REASONS: Final = frozenset(
    {PDF_ENCRYPTED, PDF_CORRUPT, PDF_NO_TEXT, PDF_TOO_LARGE, PDF_TIMEOUT}
)

# pypdf reports what it recovers from on its logger: noise in the service's log for
# every page of every broken PDF. It goes to `ReadErrors` only, which keeps the first
# report to explain a document that gave no text.
_PYPDF_LOG = logging.getLogger("pypdf")
_PYPDF_LOG.setLevel(logging.WARNING)
_PYPDF_LOG.propagate = False
_PYPDF_LOG.addHandler(logging.NullHandler())


class _CpuLimitReached(BaseException):
    """A BaseException: pypdf's `except Exception` recoveries must not swallow it."""


@contextlib.contextmanager
def cpu_limit(seconds: float | None) -> Iterator[None]:
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


def open_pdf(data: bytes) -> Any:
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


def read_pages(reader: Any, max_pages: int, errors: ReadErrors) -> list[list[Line]]:
    """Each page's lines, top to bottom as the content stream draws them."""
    pages: list[list[Line]] = []
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


class ReadErrors(logging.Handler):
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


def _page_lines(page: Any) -> list[Line]:
    """The page's text lines with their heights, from pypdf's text and its positions.

    pypdf's visitor sees the text in the same pieces that make its output, line
    breaks included, so the output's lines are rebuilt here with the position
    and size of each line's first piece.
    """
    lines: list[Line] = []
    parts: list[str] = []
    where: list[tuple[float, float]] = []

    def close() -> None:
        text = normalize_whitespace("".join(parts))
        if text:
            y, size = where[0] if where else (0.0, 0.0)
            lines.append(Line(text, y, size))
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


def read_metadata(reader: Any) -> dict[str, Any]:
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
