"""End to end: a loopback site, the real broker, the whole service in this process."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from monitor import metrics
from tests.conftest import EventReader, counter, make_config, running, wait_until
from tests.sites import seed_page
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

pytestmark = pytest.mark.integration

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "monitor/schema/statement-v1.json").read_text()
)
RSS = "application/rss+xml; charset=utf-8"
WHEN = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)


def statement_page(site: LoopbackSite, n: int) -> str:
    return site.put(
        f"/news/{n}.html",
        page(
            f"Statement number {n}",
            [
                f"The ministry announced measure number {n} today after a meeting of the board.",
                "The measure takes effect on the first day of next month and applies nationwide.",
            ],
        ),
    )


async def test_a_new_item_becomes_exactly_one_event(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    feed = [Item("Statement number 1", statement_page(site, 1), guid="g-1", published=WHEN)]
    site.put("/feed.xml", rss(feed), content_type=RSS)
    source = {
        "id": "ministry",
        "name": "Ministry of Examples",
        "url": site.url("/feed.xml"),
        "backfill": False,
        "tags": ["example"],
    }
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=[source])
    async with running(config) as service:
        await wait_until(
            lambda: service.store.has_seen("ministry")
        )  # first sight: recorded silently
        feed.insert(
            0, Item("Statement number 2", statement_page(site, 2), guid="g-2", published=WHEN)
        )
        site.put("/feed.xml", rss(feed), content_type=RSS)
        received = await events.read(1, settle=1.5)
    assert len(received) == 1, [e["data"]["title"] for e in received]
    event = received[0]
    jsonschema.validate(event, SCHEMA)
    data = event["data"]
    assert event["type"] == "org.statement-monitor.statement.published"
    assert event["source"] == "urn:statement-monitor:source:ministry"
    assert event["subject"] == site.url("/news/2.html")
    assert (data["source_id"], data["source_name"], data["guid"]) == (
        "ministry",
        "Ministry of Examples",
        "g-2",
    )
    assert data["feed_url"] == site.url("/feed.xml")
    assert data["title"] == "Statement number 2"
    assert data["text"].startswith("The ministry announced measure number 2")
    assert (
        "\n\n" in data["text"]
        and "Related news" not in data["text"]
        and "Privacy" not in data["text"]
    )
    assert data["language"] == "en"
    assert data["published_at"].startswith("2025-03-14")
    assert (data["version"], data["backfill"]) == (1, False)
    assert "example" in data["tags"]
    record = events.records[0]
    assert dict(record.headers)["content-type"] == b"application/cloudevents+json"
    assert record.key.decode() == data["statement_id"]


async def test_the_seed_statement_comes_out_clean(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    url = site.put(seed_page.SEED_PATH, seed_page.seed_page_html())
    site.put("/feed.xml", rss([Item("Briefing", url, guid="seed")]), content_type=RSS)
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "mod-ru-en", "url": site.url("/feed.xml"), "backfill": True}],
    )
    async with running(config):
        received = await events.read(1)
    data = received[0]["data"]
    assert data["title"] == seed_page.SEED_TITLE
    assert data["published_at"].startswith(seed_page.SEED_DATE.isoformat())
    assert data["backfill"] is True
    text = data["text"]
    assert seed_page.SEED_FIRST_SENTENCE in text and seed_page.SEED_LAST_SENTENCE in text
    for noise in ("Site Map", "VKontakte", "ServerCode", "isCompatibilityMode"):
        assert noise not in text
    # Who said what, on the extracted text: seven quotations, one speaker with his role.
    assert len(data["quotes"]) == 7, [q["text"][:40] for q in data["quotes"]]
    assert {q["speaker"] for q in data["quotes"]} == {"Andrei Kartapolov"}
    assert not any(q["text"] in ("hot line", "Syrian Free Army") for q in data["quotes"])
    (speaker,) = data["speakers"]
    assert speaker["name"] == "Andrei Kartapolov"
    assert "Chief of the Main Operational Directorate" in speaker["role"]
    assert data["sources"] == ["mod-ru-en"] and data["matches"] == []


async def test_a_restart_publishes_nothing_twice(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    items = [
        Item(f"Statement number {n}", statement_page(site, n), guid=f"g-{n}") for n in (1, 2, 3)
    ]
    # No ETag: every poll downloads the feed in full, so only the state store prevents repeats.
    site.put("/feed.xml", rss(items), content_type=RSS, etag=False)
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": True}],
    )
    async with running(config) as service:
        await events.read(3)
        await wait_until(lambda: service.relay is not None and service.relay.pending == 0)
    site.put(
        "/feed.xml",
        rss([Item("Statement number 4", statement_page(site, 4), guid="g-4"), *items]),
        content_type=RSS,
        etag=False,
    )
    async with running(config):
        received = await events.read(4, settle=2.0)
    titles = sorted(e["data"]["title"] for e in received)
    assert titles == [f"Statement number {n}" for n in (1, 2, 3, 4)]


async def test_an_unchanged_feed_is_answered_304_and_costs_no_parse(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    site.put(
        "/feed.xml",
        rss([Item("Statement number 1", statement_page(site, 1), guid="g-1")]),
        content_type=RSS,
    )
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "quiet", "url": site.url("/feed.xml"), "interval": 0.2}],
    )
    parses_before = counter(metrics.FEED_PARSES, source_id="quiet")
    async with running(config):
        await wait_until(lambda: sum(r.status == 304 for r in site.hits("/feed.xml")) >= 3)
    hits = site.hits("/feed.xml")
    assert hits[0].status == 200
    assert all(r.status == 304 for r in hits[1:])
    assert hits[1].headers.get("If-None-Match")
    assert counter(metrics.FEED_PARSES, source_id="quiet") - parses_before == 1
    assert counter(metrics.POLLS, source_id="quiet", outcome="304") >= 3


async def test_a_broken_page_falls_back_to_the_feed_text(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    site.put("/gone.html", "gone", status=404)
    site.put(
        "/feed.xml",
        rss(
            [
                Item(
                    "Withdrawn page",
                    site.url("/gone.html"),
                    guid="g-x",
                    description="The feed's own summary of the statement.",
                )
            ]
        ),
        content_type=RSS,
    )
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "broken", "url": site.url("/feed.xml"), "backfill": True}],
    )
    async with running(config):
        received = await events.read(1)
    data = received[0]["data"]
    assert data["text"] == "The feed's own summary of the statement."
    assert data["extraction_error"].startswith("fetch_http_4xx")
    assert counter(metrics.EXTRACTION_FAILURES, source_id="broken", reason="fetch_http_4xx", kind="page") >= 1


async def test_metrics_and_probes_are_served(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    import aiohttp

    site.put("/feed.xml", rss([]), content_type=RSS)
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "probe", "url": site.url("/feed.xml")}],
    )
    async with running(config) as service:
        assert service.server is not None
        base = f"http://127.0.0.1:{service.server.port}"
        await wait_until(lambda: service.relay is not None and service.relay.broker_ok)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                body = await response.json()
                assert response.status == 200, body
                assert body["checks"]["broker"]["ok"] is True
            async with http.get(f"{base}/metrics") as response:
                text = await response.text()
    for name in (
        "statement_monitor_polls_total",
        "statement_monitor_fetch_duration_seconds_bucket",
        "statement_monitor_poll_duration_seconds_bucket",
        "statement_monitor_source_last_success_timestamp_seconds",
        "statement_monitor_outbox_pending",
        "statement_monitor_inflight",
    ):
        assert name in text, name


async def test_readyz_reports_a_broker_that_is_down(
    tmp_path: Path, site: LoopbackSite, topic: str
) -> None:
    import aiohttp

    from tests.conftest import free_port

    site.put("/feed.xml", rss([]), content_type=RSS)
    config = make_config(
        tmp_path,
        bootstrap=f"127.0.0.1:{free_port()}",
        topic=topic,
        sources=[{"id": "probe", "url": site.url("/feed.xml")}],
        state={"recover_timeout": "1s"},  # an empty store first waits to learn from the topic
    )
    async with running(config) as service:
        assert service.server is not None
        await wait_until(lambda: service.relay is not None and service.relay.last_error is not None)
        url = f"http://127.0.0.1:{service.server.port}/readyz"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            body = await response.json()
        assert response.status == 503
        assert body["checks"]["broker"]["ok"] is False
        await wait_until(lambda: site.hits("/feed.xml") != [])  # polling goes on without the broker
