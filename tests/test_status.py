"""Source health at a glance: `GET /status`, `monitor status`, the page at `/`, the
`sources: ...` log line and the `statement_monitor_sources` gauge."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from monitor import metrics
from monitor.cli import main
from monitor.cli_status import format_status
from monitor.models import Source
from monitor.state import OutboxRecord
from monitor.status import StatusBoard, summary_line
from monitor.status_page import render_status_page
from tests.conftest import EventReader, free_port, make_config, running, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

RSS = "application/rss+xml; charset=utf-8"
WHEN = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)
HOSTILE = '<script>window.__pwned = 1</script>"><img src=x onerror="window.__pwned = 2">'


def _source(source_id: str, kind: str = "feed") -> Source:
    return Source(id=source_id, name=source_id.title(), url=f"http://{source_id}.example/f",
                  interval=60.0, timeout=5.0, backfill=False, topic="t", kind=kind)  # type: ignore[arg-type]


def _record(seq: int, source_id: str, title: str, quotes: int = 0) -> OutboxRecord:
    import json

    value = json.dumps({"type": "org.statement-monitor.statement.published", "data": {
        "title": title, "url": f"http://x/{seq}", "quotes": [{"text": "q"}] * quotes}})
    return OutboxRecord(seq=seq, event_id=f"e{seq}", statement_id=f"s{seq}", source_id=source_id,
                        topic="t", key=b"k", value=value.encode(), headers=(), created_at=0.0)


def board_with_every_state(clock: list[float]) -> StatusBoard:
    board = StatusBoard([_source("bank"), _source("army"), _source("un-news", "listing")],
                        clock=lambda: clock[0])
    board.polled("bank", outcome="200", ok=True, errors=0, next_in=60)
    board.polled("army", outcome="200", ok=True, errors=0, next_in=60)
    clock[0] += 60
    board.polled("army", outcome="dns", ok=False, errors=1, next_in=120)
    board.polled("un-news", outcome="http_5xx", ok=False, errors=3, next_in=480)
    return board


def test_states_totals_gauge_and_the_log_line() -> None:
    clock = [1_700_000_000.0]
    board = board_with_every_state(clock)
    assert board.totals() == {"healthy": 1, "failing": 1, "never_reached": 1}
    assert board.summary() == (
        "sources: 1 healthy, 1 failing (army: dns), 1 never reached (un-news: http_5xx)")
    for state, count in {"healthy": 1, "failing": 1, "never_reached": 1}.items():
        assert metrics.SOURCES.labels(state=state)._value.get() == count
    board.polled("un-news", outcome="200", ok=True, errors=0, next_in=60)
    assert board.summary() == "sources: 2 healthy, 1 failing (army: dns)"
    assert metrics.SOURCES.labels(state="never_reached")._value.get() == 0


def test_the_log_line_names_at_most_ten_and_counts_the_rest() -> None:
    board = StatusBoard([_source(f"s{n:02}") for n in range(13)])
    line = summary_line(board._sources.values())
    assert line.startswith("sources: 0 healthy, 0 failing, 13 never reached (s00: not polled yet")
    assert line.endswith("s09: not polled yet, 3 more)")


def test_snapshot_sorts_failing_first_and_keeps_the_last_statements() -> None:
    clock = [1_700_000_000.0]
    board = board_with_every_state(clock)
    board.acked([_record(n, "bank", f"Statement {n}", quotes=n % 3) for n in range(25)])
    board.acked([_record(24, "bank", "Statement 24")])  # the watchlist topic's copy
    snapshot = board.snapshot()
    assert [s["id"] for s in snapshot["sources"]] == ["army", "un-news", "bank"]
    army, unnews, bank = snapshot["sources"]
    assert army == {
        "id": "army", "name": "Army", "kind": "feed", "state": "failing", "interval_seconds": 60.0,
        "last_poll": "2023-11-14T22:14:20Z", "last_outcome": "dns",
        "last_success": "2023-11-14T22:13:20Z", "consecutive_errors": 1,
        "next_poll": "2023-11-14T22:16:20Z", "statements_total": 0, "last_statement": None,
    }
    assert unnews["state"] == "never_reached" and unnews["last_success"] is None
    assert bank["last_statement"]["title"] == "Statement 24"
    recent = snapshot["recent_statements"]
    assert len(recent) == 20 and recent[0]["title"] == "Statement 24"
    assert recent[-1]["title"] == "Statement 5" and recent[0]["quotes"] == 0
    assert snapshot["totals"] == {"healthy": 1, "failing": 1, "never_reached": 1, "sources": 3}


def test_the_cli_table_puts_failing_first() -> None:
    board = board_with_every_state([1_700_000_000.0])
    snapshot = board.snapshot()
    snapshot["sources"].reverse()  # the table sorts whatever order it is given
    lines = format_status(snapshot).splitlines()
    assert lines[0].startswith("3 sources: 1 healthy, 1 failing, 1 never reached")
    assert lines[2].split()[:3] == ["SOURCE", "KIND", "STATE"]
    assert [line.split()[0] for line in lines[3:]] == ["army", "un-news", "bank"]
    assert "never reached" in lines[4] and "http_5xx" in lines[4]


def test_the_page_escapes_every_value() -> None:
    board = StatusBoard([_source("bank")])
    board.acked([_record(1, "bank", HOSTILE)])
    page_html = render_status_page(board.snapshot())
    assert "<script>" not in page_html and "<img" not in page_html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&quot;&gt;&lt;img" in page_html


@pytest.mark.integration
async def test_status_json_cli_log_line_and_readyz_of_a_running_service(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    url = site.put("/news/1.html", page("Rates unchanged", [
        "The board decided to keep rates unchanged today after a long meeting.",
        "“We will act when needed,” said Governor Maria Jensen at the press conference."]))
    site.put("/bank.xml", rss([Item("Rates unchanged", url, guid="g1", published=WHEN)]),
             content_type=RSS)
    site.put("/army.xml", rss([]), content_type=RSS)
    sources = [
        {"id": "bank", "url": site.url("/bank.xml"), "backfill": True},
        {"id": "army", "url": site.url("/army.xml")},
        {"id": "gone", "url": f"http://127.0.0.1:{free_port()}/feed.xml"},  # nothing listens
    ]
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=sources,
                         log={"status_interval": "1s"})
    with capture_logs() as logs:
        async with running(config) as service:
            assert service.server is not None
            base = f"http://127.0.0.1:{service.server.port}"
            await events.read(1)
            await wait_until(lambda: service.status.totals()["healthy"] == 2)
            site.put("/army.xml", "unavailable", status=503)
            await wait_until(lambda: service.status.totals()["failing"] == 1)
            await wait_until(lambda: any(e["event"].startswith("sources: 1 healthy, 1 failing")
                                         for e in logs))
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/status") as response:
                    assert response.status == 200
                    document: dict[str, Any] = await response.json()
                async with http.get(f"{base}/readyz") as response:
                    assert response.status == 200  # the service can work: its meaning is kept
            result = await _cli(["status", "--url", f"{base}/status"])
    assert document["totals"] == {"healthy": 1, "failing": 1, "never_reached": 1, "sources": 3}
    army, gone, bank = document["sources"]
    assert (army["id"], army["state"], army["last_outcome"]) == ("army", "failing", "http_503")
    assert army["consecutive_errors"] >= 1 and army["last_success"] is not None
    assert (gone["id"], gone["state"], gone["last_success"]) == ("gone", "never_reached", None)
    assert gone["last_outcome"] not in (None, "200", "304")
    assert (bank["id"], bank["state"], bank["statements_total"]) == ("bank", "healthy", 1)
    assert bank["last_statement"]["title"] == "Rates unchanged"
    assert bank["kind"] == "auto" and bank["next_poll"] is not None
    (recent,) = document["recent_statements"]
    assert (recent["title"], recent["source_id"], recent["quotes"]) == ("Rates unchanged", "bank", 1)
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()[3:]
    assert [row.split()[0] for row in rows] == ["army", "gone", "bank"]
    line = next(e for e in logs if e["event"].startswith("sources: 1 healthy, 1 failing"))
    assert re.fullmatch(
        r"sources: 1 healthy, 1 failing \(army: http_503\), 1 never reached \(gone: \w+\)",
        line["event"]), line


async def _cli(args: list[str]) -> Any:
    import asyncio

    return await asyncio.to_thread(CliRunner().invoke, main, args)


def test_monitor_status_says_when_no_service_answers(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/status"
    result = CliRunner().invoke(main, ["status", "--url", url])
    assert result.exit_code == 1
    assert f"no status at {url} (is `monitor run` running?)" in result.output
