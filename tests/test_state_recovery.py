"""A lost state store is learnt back from the output topic (monitor/recovery.py).

The service runs against the durable broker, publishes, stops; its SQLite
database (with -wal and -shm) is deleted, as when an operator loses the state
volume; one statement is added to the feed while it is down; it starts again.
The statements the topic holds are not published again, the new one is
published once, and entries that were never published (first sight with
`backfill: false`) stay unpublished.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.conftest import EventReader, free_port, make_config, running, wait_until
from tests.durable_broker import DurableBroker
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

pytestmark = pytest.mark.integration

RSS = "application/rss+xml; charset=utf-8"


class DatedFeed:
    """A feed whose items carry their publication date, as official feeds do."""

    def __init__(self, site: LoopbackSite) -> None:
        self.site = site
        self.items: list[Item] = []
        self._publish()

    def add(self, guid: str, published: dt.datetime) -> None:
        url = self.site.put(
            f"/statement/{guid}.html",
            page(f"Statement {guid}", [f"Statement {guid} of the ministry, announced in full, "
                                       "with the details that the press office released."]),
        )
        self.items.insert(0, Item(f"Statement {guid}", url, guid=guid, published=published))
        self._publish()

    def _publish(self) -> None:
        self.site.put("/feed.xml", rss(self.items), content_type=RSS)


def guids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["data"]["guid"] for e in events)


@pytest.mark.parametrize("backfill", [True, False])
async def test_a_lost_state_store_is_learnt_back_from_the_topic(
        tmp_path: Path, site: LoopbackSite, topic: str, durable_broker: DurableBroker,
        backfill: bool) -> None:
    now = dt.datetime.now(dt.UTC)
    feed = DatedFeed(site)
    feed.add("old-1", now - dt.timedelta(days=3))  # in the feed before the first start
    feed.add("old-2", now - dt.timedelta(days=2))
    bootstrap = durable_broker.bootstrap_servers
    config = make_config(
        tmp_path, bootstrap=bootstrap, topic=topic,
        sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": backfill,
                  "interval": 0.3}],
    )
    reader = EventReader(bootstrap, topic)
    first_run = ["new-1", "new-2", "new-3"]
    published_first = (["old-1", "old-2"] if backfill else []) + first_run

    async with running(config) as service:
        # Detected first: with backfill off, the old entries are recorded silently.
        for _ in range(200):
            if service.store.has_seen("ministry"):
                break
            await _sleep(0.05)
        for guid in first_run:
            feed.add(guid, dt.datetime.now(dt.UTC))
        before = await reader.read(len(published_first), timeout=40, settle=1.0)
        # Acknowledged: nothing of it waits in the outbox when the store is lost.
        for _ in range(200):
            if service.store.outbox_stats()[0] == 0:
                break
            await _sleep(0.05)
    assert guids(before) == sorted(published_first)

    database = Path(config["state"]["path"])
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)
    feed.add("while-down", dt.datetime.now(dt.UTC))

    with capture_logs() as logs:
        async with running(config):
            after = await reader.read(len(published_first) + 1, timeout=40, settle=4.0)
    # What the topic had, once; what it lacked, once; the never-published, never.
    assert guids(after) == sorted([*published_first, "while-down"])
    fresh = [e for e in after if e["data"]["guid"] == "while-down"]
    assert fresh[0]["data"]["backfill"] is False
    assert fresh[0]["data"]["version"] == 1

    recovered = [e for e in logs if e["event"] == "state_recovered_from_topic"]
    assert len(recovered) == 1, logs
    assert recovered[0]["events_read"] == len(published_first)
    assert recovered[0]["statements_learned"] == len(published_first)
    assert recovered[0]["seconds"] >= 0


async def test_an_empty_store_and_an_empty_topic_is_a_first_start(
        tmp_path: Path, site: LoopbackSite, topic: str, durable_broker: DurableBroker) -> None:
    feed = DatedFeed(site)
    feed.add("old-1", dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    config = make_config(
        tmp_path, bootstrap=durable_broker.bootstrap_servers, topic=topic,
        sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": False,
                  "interval": 0.3}],
    )
    with capture_logs() as logs:
        async with running(config) as service:
            for _ in range(200):
                if service.store.has_seen("ministry"):
                    break
                await _sleep(0.05)
            assert service.store.recovery_horizon("ministry") is None
    assert [e for e in logs if e["event"] == "state_first_start"]
    assert not [e for e in logs if e["event"] == "state_recovered_from_topic"]
    assert await EventReader(durable_broker.bootstrap_servers, topic).read(
        1, timeout=2, settle=0.5) == []


async def test_a_broker_down_at_start_bounds_the_wait_for_recovery(
        tmp_path: Path, site: LoopbackSite, topic: str) -> None:
    """An empty store and no broker: it waits `recover_timeout`, says so, then polls."""
    feed = DatedFeed(site)
    feed.add("old-1", dt.datetime.now(dt.UTC))
    config = make_config(
        tmp_path, bootstrap=f"127.0.0.1:{free_port()}", topic=topic,
        sources=[{"id": "ministry", "url": site.url("/feed.xml"), "interval": 0.3}],
        state={"recover_timeout": "1s"},
    )
    with capture_logs() as logs:
        async with running(config):
            await wait_until(lambda: site.hits("/feed.xml") != [], timeout=20)
    failed = [e for e in logs if e["event"] == "state_recovery_failed"]
    assert len(failed) == 1 and failed[0]["log_level"] == "error"
    started = [e["event"] for e in logs].index("service_started")
    assert [e["event"] for e in logs].index("state_recovery_failed") < started


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
