"""A bug in extraction never costs more than what failed.

* `monitor extract` answers every input, each in isolation: an exception on one
  page prints `"error": {"kind", "message"}` for it and the command goes on.
* In the service (`ExtractionStage`, real worker pool), an enrichment step that
  raises is dropped alone, counted as
  `statement_monitor_extraction_failures_total{kind="internal"}` and logged once
  with its traceback and URL; a bug in `extract_article` itself becomes an
  `ExtractionError` of reason `internal` (the page falls back to the feed).

The failing step is injected for real: in this process by replacing an entry of
`enrich.STEPS`, in pool workers by a worker initializer that does the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor import metrics
from monitor.cli_extract import extract_inputs
from monitor.errors import ExtractionError
from monitor.extract import enrich as enrich_module
from monitor.extract.enrich import enrich
from monitor.extract.stage import ExtractionStage
from monitor.models import Source, Statement
from monitor.pool import WorkerPool
from tests.conftest import counter

PAGE = """<!doctype html><html lang="en"><head><title>Ministry statement - Ministry of Defence</title>
<meta property="og:title" content="Ministry statement">
<meta property="article:published_time" content="2015-10-16T10:00:00+03:00"></head>
<body><article><h1>Ministry statement</h1>
<p>In the course of the last week, the aviation group has destroyed 46 command centres,
said Colonel General Andrei Kartapolov at the briefing for foreign military attaches.</p>
<p>“Last week the situation changed significantly. This was caused by the effectiveness of the
strikes against the facilities,” said Andrei Kartapolov.</p>
<p>He explained that in total the aircraft had performed 394 combat sorties and engaged
22 different depots and 272 concentration areas of the militants over the week.</p>
</article></body></html>"""


def _broken_quotes(text: str) -> Any:
    raise IndexError("list index out of range (injected)")


def break_quotes_in_worker() -> None:
    """A pool worker's initializer: quote attribution raises, as the `_span_text` bug did."""
    enrich_module.STEPS["quotes"] = _broken_quotes


def break_extraction_in_worker() -> None:
    """A pool worker's initializer: `extract_article` itself raises."""
    import monitor.extract.article as article

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("injected")

    article.extract_article = broken  # type: ignore[assignment]


# --- enrich: each step isolated ------------------------------------------------------


def test_a_failing_step_is_dropped_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(enrich_module.STEPS, "quotes", _broken_quotes)
    found = enrich("t", "“We destroyed it,” said Andrei Kartapolov. It hit 46 command centres.")
    assert found.quotes == () and found.speakers == ()
    assert [f.text for f in found.figures] == ["46 command centres"]
    assert [f.step for f in found.failures] == ["quotes"]
    assert "IndexError" in found.failures[0].error
    assert "_broken_quotes" in found.failures[0].traceback


# --- monitor extract: every input answered ---------------------------------------------


def run_extract(inputs: list[str]) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    failures = asyncio.run(extract_inputs(tuple(inputs), url=None, timeout=10, out=out))
    return failures, [json.loads(line) for line in out.getvalue().splitlines()]


def test_extract_answers_every_input_when_one_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import monitor.cli_extract as cli_extract

    real = cli_extract.extract_page
    paths = []
    for name in ("a", "poison", "b"):
        path = tmp_path / f"{name}.html"
        path.write_text(PAGE)
        paths.append(str(path))

    def extract(body: bytes, **options: Any) -> Any:
        if b"poison" in body:
            raise IndexError("list index out of range")
        return real(body, **options)

    (tmp_path / "poison.html").write_text(PAGE.replace("<article>", "<article><!--poison-->"))
    monkeypatch.setattr(cli_extract, "extract_page", extract)
    failures, lines = run_extract(paths)
    assert [line["input"] for line in lines] == paths
    assert failures == 1
    assert lines[1]["error"]["kind"] == "internal"
    assert "IndexError" in lines[1]["error"]["message"]
    assert "error" not in lines[0] and "error" not in lines[2]
    assert lines[2]["title"] == "Ministry statement"


def test_extract_line_keeps_the_article_when_a_step_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(enrich_module.STEPS, "quotes", _broken_quotes)
    path = tmp_path / "page.html"
    path.write_text(PAGE)
    failures, [line] = run_extract([str(path)])
    assert failures == 1
    assert line["error"]["kind"] == "internal" and line["error"]["step"] == "quotes"
    assert line["title"] == "Ministry statement"
    assert line["published_at"].startswith("2015-10-16")
    assert "46 command centres" in line["text"]
    assert line["quotes"] == []
    assert {"value": 46, "unit": "command centres", "text": "46 command centres"} in line["figures"]


# --- the service: the stage with a real worker pool ---------------------------------------

SOURCE = Source(
    id="isolation", name="Ministry", url="https://mil.example/feed", interval=60, timeout=10,
    backfill=False, topic="statements",
)


@pytest.fixture
async def broken_quotes_stage() -> AsyncIterator[ExtractionStage]:
    pool = WorkerPool(1, initializer=break_quotes_in_worker)
    pool.start()
    try:
        yield ExtractionStage(pool, timeout=30)
    finally:
        pool.close()


def statement_of(article: Any) -> Statement:
    return Statement(
        statement_id="s1", source_id=SOURCE.id, source_name=SOURCE.name, feed_url=SOURCE.url,
        url="https://mil.example/s/1", guid=None, title=article.title, text=article.text,
        summary=None, language=article.language, published_at=article.published_at,
        detected_at=dt.datetime.now(dt.UTC), authors=(), tags=(), content_hash="sha256:x",
        version=1, backfill=False,
    )


async def test_a_crash_in_quotes_keeps_text_title_date_and_figures(
    broken_quotes_stage: ExtractionStage,
) -> None:
    url = "https://mil.example/s/1"
    before = counter(metrics.EXTRACTION_FAILURES, source_id=SOURCE.id, reason="quotes",
                     kind="internal")
    article, enriched = await broken_quotes_stage.article_enriched(SOURCE, PAGE.encode(), url=url)
    statement = statement_of(article)
    with capture_logs() as logs:
        statement = await broken_quotes_stage.enrich(SOURCE, statement, enriched)
    assert statement.title == "Ministry statement"
    assert statement.published_at is not None and statement.published_at.date() == dt.date(2015, 10, 16)
    assert "46 command centres" in statement.text
    assert statement.quotes == ()
    assert "46 command centres" in [f.text for f in statement.figures]
    after = counter(metrics.EXTRACTION_FAILURES, source_id=SOURCE.id, reason="quotes",
                    kind="internal")
    assert after == before + 1
    errors = [e for e in logs if e["event"] == "extraction_internal_error"]
    assert len(errors) == 1
    assert errors[0]["url"] == url and errors[0]["step"] == "quotes"
    assert "Traceback" in errors[0]["traceback"] and "IndexError" in errors[0]["traceback"]


async def test_a_crash_in_extraction_is_an_internal_extraction_error() -> None:
    pool = WorkerPool(1, initializer=break_extraction_in_worker)
    pool.start()
    stage = ExtractionStage(pool, timeout=30)
    try:
        with capture_logs() as logs, pytest.raises(ExtractionError) as raised:
            await stage.article_enriched(SOURCE, PAGE.encode(), url="https://mil.example/s/2")
    finally:
        pool.close()
    assert raised.value.reason == "internal" and raised.value.kind == "internal"
    assert not raised.value.retriable  # the page falls back to the feed's content at once
    errors = [e for e in logs if e["event"] == "extraction_internal_error"]
    assert len(errors) == 1 and errors[0]["url"] == "https://mil.example/s/2"
    assert "KeyError" in errors[0]["traceback"]


# --- the whole service: a loopback site, the real broker ------------------------------


def break_quotes_then_prepare() -> None:
    """The service's worker initializer, with quote attribution broken first."""
    from monitor.extract.stage import prepare_worker

    break_quotes_in_worker()
    prepare_worker()


def break_extraction_then_prepare() -> None:
    from monitor.extract.stage import prepare_worker

    prepare_worker()
    break_extraction_in_worker()


async def _one_event(
    tmp_path: Path, site: Any, topic: str, kafka_bootstrap: str, events: Any, source_id: str
) -> dict[str, Any]:
    from tests.conftest import make_config, running
    from tests.sites.feeds import Item, rss

    url = site.put("/s/1.html", PAGE)
    site.put(
        "/feed.xml",
        rss([Item("Ministry statement", url, guid="g1", description="The feed's summary.")]),
        content_type="application/rss+xml; charset=utf-8",
    )
    config = make_config(
        tmp_path, bootstrap=kafka_bootstrap, topic=topic,
        sources=[{"id": source_id, "url": site.url("/feed.xml"), "backfill": True}],
    )
    async with running(config):
        received = await events.read(1)
    data: dict[str, Any] = received[0]["data"]
    return data


@pytest.mark.integration
async def test_service_a_crash_in_quotes_costs_only_the_quotes(
    tmp_path: Path, site: Any, topic: str, kafka_bootstrap: str, events: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import monitor.app

    monkeypatch.setattr(monitor.app, "prepare_worker", break_quotes_then_prepare)
    with capture_logs() as logs:
        data = await _one_event(tmp_path, site, topic, kafka_bootstrap, events, "crashq")
    assert data["extraction_error"] is None
    assert data["title"] == "Ministry statement"
    assert data["published_at"].startswith("2015-10-16")
    assert "46 command centres" in data["text"]
    assert data["quotes"] == []
    assert {"value": 46, "unit": "command centres", "text": "46 command centres"} in data["figures"]
    assert counter(metrics.EXTRACTION_FAILURES, source_id="crashq", reason="quotes",
                   kind="internal") == 1
    errors = [e for e in logs if e["event"] == "extraction_internal_error"]
    assert len(errors) == 1 and errors[0]["url"].endswith("/s/1.html")
    assert "IndexError" in errors[0]["traceback"]


@pytest.mark.integration
async def test_service_a_crash_in_extraction_falls_back_to_the_feed(
    tmp_path: Path, site: Any, topic: str, kafka_bootstrap: str, events: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import monitor.app

    monkeypatch.setattr(monitor.app, "prepare_worker", break_extraction_then_prepare)
    with capture_logs() as logs:
        data = await _one_event(tmp_path, site, topic, kafka_bootstrap, events, "crashx")
    assert data["text"] == "The feed's summary."
    assert data["extraction_error"].startswith("internal")
    assert counter(metrics.EXTRACTION_FAILURES, source_id="crashx", reason="internal",
                   kind="internal") == 1
    errors = [e for e in logs if e["event"] == "extraction_internal_error"]
    assert len(errors) == 1 and "KeyError" in errors[0]["traceback"]
