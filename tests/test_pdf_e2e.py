"""End to end: a feed whose statements are PDFs, through the whole service to the broker.

A good statement PDF (served as application/pdf, and once as text/html: the
signature decides), an encrypted one, a scan and a truncated file. Every entry
is published exactly once; the unreadable ones with the feed's text and the
reason, counted in `statement_monitor_extraction_failures_total`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from monitor import metrics
from tests.conftest import EventReader, counter, make_config, running
from tests.sites import pdfs
from tests.sites.feeds import Item, rss
from tests.sites.loopback import LoopbackSite

pytestmark = pytest.mark.integration
pytest.importorskip("fpdf", reason="fpdf2 (the test extra) writes the PDFs these tests read")


async def test_pdf_statements_are_extracted_or_fall_back_with_a_reason(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    documents = {
        "good": (pdfs.statement_pdf(pdfs.QUOTE_PARAGRAPHS, pages=2), "application/pdf"),
        "mislabelled": (pdfs.statement_pdf(pages=2), "text/html; charset=utf-8"),
        "encrypted": (pdfs.encrypted_pdf(), "application/pdf"),
        "scanned": (pdfs.scanned_pdf(), "application/pdf"),
        "truncated": (pdfs.statement_pdf()[:1500], "application/octet-stream"),
    }
    when = dt.datetime(2026, 11, 4, 12, 0, tzinfo=dt.UTC)
    items = []
    for name, (body, content_type) in documents.items():
        url = site.put(f"/docs/{name}.pdf", body, content_type=content_type)
        items.append(
            Item(f"Feed title {name}", url, guid=name, published=when, description=f"Feed {name}.")
        )
    feed = site.put("/feed.xml", rss(items), content_type="application/rss+xml")
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "cb-pdf", "url": feed, "backfill": True}],
    )
    before = {
        r: counter(metrics.EXTRACTION_FAILURES, source_id="cb-pdf", reason=r, kind="page")
        for r in ("pdf_encrypted", "pdf_no_text", "pdf_corrupt")
    }
    async with running(config):
        received = await events.read(len(documents), settle=1.0)  # validated against the schema
    by_guid = {e["data"]["guid"]: e["data"] for e in received}
    assert sorted(by_guid) == sorted(documents)  # each once, none lost

    good = by_guid["good"]
    assert good["media_type"] == "application/pdf" and good["extraction_error"] is None
    assert good["title"] == "Monetary Policy Statement"
    assert "Page 1" not in good["text"] and "Examplia - Monetary" not in good["text"]
    assert good["language"] == "en"
    assert good["published_at"].startswith("2026-11-04")
    assert {s["name"] for s in good["speakers"]} >= {"Maria Lindqvist", "Tomas Berg"}
    assert any(q["speaker"] == "Tomas Berg" for q in good["quotes"])

    assert by_guid["mislabelled"]["media_type"] == "application/pdf"
    assert pdfs.PARAGRAPHS[0] in by_guid["mislabelled"]["text"].split("\n\n")

    for name, reason in (
        ("encrypted", "pdf_encrypted"),
        ("scanned", "pdf_no_text"),
        ("truncated", "pdf_corrupt"),
    ):
        data = by_guid[name]
        assert data["extraction_error"].startswith(f"{reason}: "), data["extraction_error"]
        assert data["text"] == f"Feed {name}."
        assert data["title"] == f"Feed title {name}"
        assert data["media_type"] == "application/pdf"
        after = counter(metrics.EXTRACTION_FAILURES, source_id="cb-pdf", reason=reason, kind="page")
        assert after - before[reason] == 1
