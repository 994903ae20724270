"""PDF statements: `monitor.extract.pdf` on generated documents, and in the worker pool.

Every PDF is made here (tests/sites/pdfs.py, fpdf2 or byte by byte): the
two-page statement with a running header and page numbers, a statement with
quotes, a scan with no text layer, an encrypted one, a truncated one, and the
hostile ones (a decompression bomb, nesting 200,000 deep, an xref loop, a page
tree of 50,000 pages).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import ExtractionError
from monitor.extract.pdf import PDF_REASONS, extract_pdf, is_pdf
from monitor.extract.stage import extract_and_enrich, extract_page
from monitor.pool import WorkerPool
from tests.sites import pdfs

pytest.importorskip("fpdf", reason="fpdf2 (the test extra) writes the PDFs these tests read")


@pytest.fixture(scope="module")
def two_pages() -> bytes:
    return pdfs.statement_pdf(pages=2)


def test_a_two_page_statement_reads_as_paragraphs_without_header_or_page_numbers(
    two_pages: bytes,
) -> None:
    article = extract_pdf(two_pages, url="https://cb.example/mps.pdf")
    paragraphs = article.text.split("\n\n")
    assert "Examplia - Monetary Policy Statement" not in article.text  # the running header
    assert not any(p.startswith("Page ") for p in paragraphs)  # the page numbers
    assert "Page 1" not in article.text and "Page 2" not in article.text
    assert paragraphs[0] == "The committee discussed the macroeconomic outlook in detail."
    assert paragraphs[1] == pdfs.PARAGRAPHS[0]  # its three lines are one paragraph
    assert pdfs.PARAGRAPHS[-1] in paragraphs
    assert all(p.strip() == p and p for p in paragraphs)
    assert article.title == "Monetary Policy Statement"  # metadata, and not repeated in text
    assert "4 November 2026" not in paragraphs  # the dateline became published_at
    assert article.published_at == dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
    assert article.language == "en"
    assert article.media_type == "application/pdf"
    assert article.canonical_url == "https://cb.example/mps.pdf"


def test_a_paragraph_cut_by_the_page_break_is_one_paragraph() -> None:
    long = " ".join(f"Sentence {n} of the long paragraph goes on for a while." for n in range(90))
    article = extract_pdf(pdfs.statement_pdf([long], pages=2))
    assert long in article.text.split("\n\n")


def test_a_file_name_as_metadata_title_gives_way_to_the_first_heading() -> None:
    data = pdfs.statement_pdf(
        pdfs.QUOTE_PARAGRAPHS,
        meta_title="Microsoft Word - doc1.docx",
        heading="Governor speaks on rates",
        pages=1,
    )
    article = extract_pdf(data, feed_title="Feed title")
    assert article.title == "Governor speaks on rates"
    assert "Governor speaks on rates" not in article.text


def test_without_title_or_date_the_feed_stands_in() -> None:
    data = pdfs.statement_pdf(meta_title=None, heading=None, date_line=None, pages=1)
    feed_time = dt.datetime(2026, 11, 4, 14, 5, tzinfo=dt.UTC)
    article = extract_pdf(data, feed_title="From the feed", feed_published_at=feed_time)
    assert article.title == "From the feed"
    # no date in the text: the document's creation date (2026-11-04 09:30 UTC)
    assert article.published_at == dt.datetime(2026, 11, 4, 9, 30, tzinfo=dt.UTC)


def test_quotes_and_speakers_come_from_the_same_enrichment_as_html() -> None:
    data = pdfs.statement_pdf(pdfs.QUOTE_PARAGRAPHS, pages=1)
    article, enriched = extract_and_enrich(
        data,
        url="https://cb.example/q.pdf",
        feed_title=None,
        feed_published_at=None,
        rules=None,
        watchlists=(),
    )
    assert article.media_type == "application/pdf"
    assert enriched.found is not None
    quotes = {q.text: q.speaker for q in enriched.found.quotes}
    assert quotes["We see the risks as broadly balanced"] == "Tomas Berg"
    assert any(q.startswith("Inflation is falling") for q in quotes)
    assert {s.name for s in enriched.found.speakers} >= {"Maria Lindqvist", "Tomas Berg"}


def test_max_pages_bounds_what_is_read() -> None:
    paragraphs = [f"Paragraph {n} of the statement is here, with enough words." for n in range(120)]
    data = pdfs.statement_pdf(paragraphs, pages=3, hyphenate=None)
    whole = extract_pdf(data)
    first = extract_pdf(data, max_pages=1)
    assert "Paragraph 119 " in whole.text
    assert "Paragraph 119 " not in first.text and "Paragraph 1 " in first.text


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (pdfs.scanned_pdf, "pdf_no_text"),
        (pdfs.encrypted_pdf, "pdf_encrypted"),
        (lambda: pdfs.statement_pdf()[:1500], "pdf_corrupt"),  # truncated
        (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 8, "pdf_corrupt"),
    ],
    ids=["scanned", "encrypted", "truncated", "garbage"],
)
def test_unreadable_pdfs_raise_a_named_reason(make: object, reason: str) -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(make())  # type: ignore[operator]
    assert caught.value.reason == reason
    assert not caught.value.retriable


@pytest.mark.parametrize(
    ("make", "reasons"),
    [
        (pdfs.bomb_pdf, {"pdf_too_large"}),
        (pdfs.nested_pdf, {"pdf_corrupt"}),
        (pdfs.xref_loop_pdf, {"pdf_corrupt"}),
        # one page object named 50,000 times: read up to max_pages, all of it repeats
        (lambda: pdfs.many_pages_pdf(50_000), {"pdf_no_text"}),
    ],
    ids=["decompression-bomb", "nested", "xref-loop", "huge-page-count"],
)
def test_hostile_pdfs_end_in_a_clear_error_within_bounds(make: object, reasons: set[str]) -> None:
    data = make()  # type: ignore[operator]
    started = time.process_time()
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(data, max_pages=200, max_cpu_seconds=30)
    assert caught.value.reason in reasons, caught.value
    assert time.process_time() - started < 20


# The timer's signal may land in a finalizer, where Python reports it as "ignored" (the
# next one, 50 ms on, ends the task): that report is expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_cpu_time_is_capped_with_a_clean_error() -> None:
    data = pdfs.many_pages_pdf(50_000)  # seconds of pure-Python page-tree work
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(data, max_pages=50_000, max_cpu_seconds=0.2)
    assert caught.value.reason == "pdf_timeout"


def test_pdf_detection_by_signature_or_content_type() -> None:
    pdf = pdfs.statement_pdf(pages=1)
    assert is_pdf(pdf, "text/html; charset=utf-8")  # the signature wins over the header
    assert is_pdf(b"\r\n" + pdf, None)  # anywhere in the first KiB
    assert is_pdf(b"\x00\x01 binary", "application/pdf")
    assert not is_pdf(b"<!DOCTYPE html><p>Not found</p>", "application/pdf")  # an error page
    assert not is_pdf(b"<html><p>%PDF- is a string here</p></html>" + b" " * 2000, "text/html")
    assert extract_page(pdf, content_type="text/html").media_type == "application/pdf"


def test_html_is_still_html() -> None:
    page = (
        b"<html><head><title>Ministry statement</title></head><body><article>"
        + b"<p>The ministry announced a new measure today after a long meeting.</p>" * 3
        + b"</article></body></html>"
    )
    assert extract_page(page, content_type="text/html").media_type == "text/html"


async def test_hostile_pdfs_in_the_pool_leave_the_workers_serving() -> None:
    pool = WorkerPool(2)
    pool.start()
    try:
        hostile = [
            pdfs.bomb_pdf(),
            pdfs.nested_pdf(),
            pdfs.xref_loop_pdf(),
            pdfs.many_pages_pdf(50_000),
            pdfs.encrypted_pdf(),
            pdfs.statement_pdf()[:1500],
        ]
        outcomes = await asyncio.gather(
            *(pool.run(60, extract_page, data, max_cpu_seconds=30) for data in hostile),
            return_exceptions=True,
        )
        reasons = [getattr(o, "reason", repr(o)) for o in outcomes]
        assert reasons == [
            "pdf_too_large",
            "pdf_corrupt",
            "pdf_corrupt",
            "pdf_no_text",
            "pdf_encrypted",
            "pdf_corrupt",
        ]
        article = await pool.run(60, extract_page, pdfs.statement_pdf(), url="https://x.example/")
        assert article.title == "Monetary Policy Statement"
        assert pool._spawned == 2  # no worker died or was replaced
    finally:
        pool.close()


def test_monitor_extract_reads_a_pdf_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    path = tmp_path / "statement.pdf"
    path.write_bytes(pdfs.statement_pdf(pdfs.QUOTE_PARAGRAPHS, pages=1))
    with pytest.raises(SystemExit) as exited:
        main(["extract", str(path)])
    assert exited.value.code in (0, None)
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert line["media_type"] == "application/pdf"
    assert line["title"] == "Monetary Policy Statement"
    assert "Maria Lindqvist" in {s["name"] for s in line["speakers"]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_pdfs_give_an_article_or_a_named_reason(data: st.DataObject) -> None:
    """Whatever bytes a damaged PDF holds, extraction ends in an Article or a PDF reason."""
    original = _QUOTES_PDF
    cut = data.draw(st.integers(min_value=8, max_value=len(original)))
    damaged = bytearray(original[:cut])
    for _ in range(data.draw(st.integers(min_value=0, max_value=8))):
        at = data.draw(st.integers(min_value=0, max_value=len(damaged) - 1))
        damaged[at] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        article = extract_pdf(bytes(damaged), max_cpu_seconds=10)
    except ExtractionError as exc:
        assert exc.reason in PDF_REASONS
    else:
        assert article.text and article.media_type == "application/pdf"


_QUOTES_PDF = pdfs.statement_pdf(pdfs.QUOTE_PARAGRAPHS, pages=1)
