"""Three instances, one group: the sources are split, a kill -9 loses nothing.

Real processes (`monitor run`), the real broker, loopback sites: 30 sources on
10 sites (a site is a shard key), polled every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, EventReader, make_config, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RSS = "application/rss+xml; charset=utf-8"
SITES = 10
FEEDS_PER_SITE = 3


class Instance:
    """`monitor run` in a subprocess, with its log."""

    def __init__(self, tmp_path: Path, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.dir = tmp_path / name
        self.dir.mkdir()
        config = json.loads(json.dumps(config))
        config["state"] = {"path": str(self.dir / "state" / "monitor.db")}
        self.config_path = self.dir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = self.dir / "service.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR__")}
        env["PYTHONPATH"] = str(REPO)
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "run", "--config", str(self.config_path),
                cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    def log_events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == name:
                    found.append(record)
        return found

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Sites:
    """Ten loopback sites with three feeds each; new items appear on demand."""

    def __init__(self, sites: list[LoopbackSite]) -> None:
        self.sites = sites
        self.items: dict[tuple[int, int], list[Item]] = defaultdict(list)
        self.count = 0
        for s in range(SITES):
            for f in range(FEEDS_PER_SITE):
                self.publish_feed(s, f)

    def source_id(self, s: int, f: int) -> str:
        return f"site{s}-feed{f}"

    def publish_feed(self, s: int, f: int) -> None:
        self.sites[s].put(f"/feed-{f}.xml", rss(self.items[(s, f)]), content_type=RSS)

    def new_statement(self, s: int, f: int) -> str:
        self.count += 1
        guid = f"statement-{self.count}"
        url = self.sites[s].put(
            f"/news/{guid}.html",
            page(
                f"Statement {self.count}",
                [
                    f"The ministry published statement number {self.count} on its website.",
                    "It will be followed by a briefing for journalists later in the week.",
                ],
            ),
        )
        self.items[(s, f)].insert(0, Item(f"Statement {self.count}", url, guid=guid))
        self.publish_feed(s, f)
        return guid

    def feed_hits(self) -> int:
        return sum(
            len(site.hits(f"/feed-{f}.xml")) for site in self.sites for f in range(FEEDS_PER_SITE)
        )


@contextlib.asynccontextmanager
async def loopback_sites() -> AsyncIterator[Sites]:
    async with contextlib.AsyncExitStack() as stack:
        sites = [await stack.enter_async_context(LoopbackSite()) for _ in range(SITES)]
        yield Sites(sites)


def group_config(
    tmp_path: Path, sites: Sites, bootstrap: str, topic: str, group: str
) -> dict[str, Any]:
    sources = [
        {"id": sites.source_id(s, f), "url": sites.sites[s].url(f"/feed-{f}.xml"), "interval": 1}
        for s in range(SITES)
        for f in range(FEEDS_PER_SITE)
    ]
    config = make_config(tmp_path, bootstrap=bootstrap, topic=topic, sources=sources)
    config["coordination"] = {
        "group_id": group,
        "shards": 12,
        "session_timeout": "6s",
        "heartbeat_interval": "1s",
    }
    config["websub"] = {"enabled": False}
    return config


async def test_three_instances_share_the_sources_and_survive_a_kill(
    tmp_path: Path, kafka_bootstrap: str, topic: str, events: EventReader
) -> None:
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    async with loopback_sites() as sites:
        config = group_config(tmp_path, sites, kafka_bootstrap, topic, group)
        instances = [Instance(tmp_path, f"i{n}", config) for n in range(3)]
        try:
            await asyncio.gather(*(i.start() for i in instances))
            # Every instance has been assigned its shards, and all sources are polled.
            await wait_until(
                lambda: all(i.log_events("shards_assigned") for i in instances), timeout=60
            )
            await wait_until(
                lambda: all(
                    site.hits(f"/feed-{f}.xml") for site in sites.sites
                    for f in range(FEEDS_PER_SITE)
                ),
                timeout=30,
            )
            await asyncio.sleep(8)  # let the last rebalance settle
            before, started = sites.feed_hits(), asyncio.get_running_loop().time()
            await asyncio.sleep(10)
            elapsed = asyncio.get_running_loop().time() - started
            rate = (sites.feed_hits() - before) / (SITES * FEEDS_PER_SITE * elapsed)
            # About one poll per source per interval (1 s, with jitter), not three.
            assert 0.5 < rate < 1.5, f"{rate:.2f} polls per source per second"

            # Statements appear; one instance dies with kill -9 halfway through.
            published: list[str] = []
            for n in range(30):
                published.append(sites.new_statement(n % SITES, (n // SITES) % FEEDS_PER_SITE))
                if n == 12:
                    instances[0].kill()
                await asyncio.sleep(0.4)
            received = await events.read(30, timeout=90, settle=3.0)
            by_guid: dict[str, set[str]] = defaultdict(set)
            for event in received:
                by_guid[event["data"]["guid"]].add(event["id"])
            missing = [guid for guid in published if guid not in by_guid]
            assert not missing, f"statements never published: {missing}"
            doubled = {guid: ids for guid, ids in by_guid.items() if len(ids) > 1}
            assert not doubled, f"published twice under different ids: {doubled}"
            ids_before = {event["id"] for event in received}

            # A new instance on an empty disk joins the group: it restores the state of
            # the shards it gets from the state topic, and republishes nothing.
            fresh = Instance(tmp_path, "fresh", config)
            instances.append(fresh)
            await fresh.start()
            await wait_until(
                lambda: any(r.get("sources") for r in fresh.log_events("shards_assigned")),
                timeout=60,
            )
            await wait_until(lambda: fresh.log_events("state_restored"), timeout=30)
            await asyncio.sleep(6)  # several polls of its sources
            again = await events.read(len(received), timeout=10, settle=2.0)
            assert {event["id"] for event in again} == ids_before
            assert fresh.log_events("source_first_sight") == []
        finally:
            await asyncio.gather(*(i.stop() for i in instances))
