"""Delivery guarantees under faults: the service as a subprocess, the real broker stopped and started.

Each test keeps the books with `delivery_report`: every statement sent must be
delivered, repeats are allowed only under the same CloudEvents id, and a
repeat under a new id fails the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from monitor.sinks.embedded import EmbeddedBroker
from tests.conftest import EventReader, free_port, make_config
from tests.durable_broker import DurableBroker
from tests.sites.loopback import LoopbackSite
from tests.sites.stream import ServiceProcess, StatementStream, delivery_report

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("MONITOR_TEST_BOOTSTRAP_SERVERS")),
        reason="these tests stop and start their own broker",
    ),
]


def write_config(tmp_path: Path, bootstrap: str, topic: str, site: LoopbackSite,
                 metrics_port: int = 0) -> Path:
    config = make_config(
        tmp_path, bootstrap=bootstrap, topic=topic,
        sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": True, "interval": 0.3}],
        metrics={"port": metrics_port},
        # An empty store waits this long for a broker that is down at start, to learn
        # back what was published (monitor/recovery.py); then starts as a first start.
        state={"recover_timeout": "1s"},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def scrape(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            ready = response.status
    values = {line.split(" ")[0]: float(line.split(" ")[1])
              for line in text.splitlines() if line.startswith("statement_monitor_")}
    return {"metrics": values, "readyz": ready}


@pytest.fixture
def own_broker() -> Any:
    broker = EmbeddedBroker(port=free_port())
    yield broker
    broker.stop()


async def test_a_broker_outage_during_a_stream_loses_and_doubles_nothing(
        tmp_path: Path, site: LoopbackSite, topic: str, own_broker: EmbeddedBroker) -> None:
    """The broker stops answering mid-stream (paused: SIGSTOP), then comes back (SIGCONT).

    Pausing keeps the broker's memory. Restarting the memory-storage test broker
    instead would lose records acknowledged into a topic it auto-creates on a
    retried produce: an artefact of the test broker, not of Kafka.
    """
    own_broker.start()
    bootstrap = own_broker.bootstrap_servers
    port = free_port()
    stream = StatementStream(site)
    service = ServiceProcess(write_config(tmp_path, bootstrap, topic, site, port), tmp_path / "log")
    service.start()
    try:
        await stream.run(8, every=0.15)
        before = await EventReader(bootstrap, topic).read(8, timeout=30)

        assert own_broker.pid is not None
        os.kill(own_broker.pid, signal.SIGSTOP)
        await stream.run(8, every=0.15)
        await asyncio.sleep(3.5)  # past STALLED_AFTER: the publish in flight has waited too long
        during = await scrape(port)
        assert during["readyz"] == 503
        assert during["metrics"]["statement_monitor_broker_up"] == 0
        assert during["metrics"]["statement_monitor_outbox_pending"] >= 8  # polling went on

        os.kill(own_broker.pid, signal.SIGCONT)
        await stream.run(4, every=0.15)
        events = await EventReader(bootstrap, topic).read(20, timeout=60, settle=1.0)
        assert await service.terminate() == 0
    finally:
        service.kill_if_running()
    assert len(before) >= 8
    report = delivery_report(stream.guids, events)
    print(report.line())
    assert report.missing == ()
    assert report.duplicates_new_id == 0
    assert report.sent == 20


# How long the broker stays dead after its kill -9 in the crash test: longer than
# the producer's request timeout and its metadata refresh, so the service's
# relay meets a broker that is gone, not one that blinked.
BROKER_CRASH_OUTAGE = 20.0


@pytest.mark.slow
async def test_a_broker_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
        tmp_path: Path, site: LoopbackSite, topic: str, durable_broker: DurableBroker) -> None:
    """kill -9 of the broker in the middle of a stream, back after `BROKER_CRASH_OUTAGE` s.

    The durable broker keeps its log, so what it acknowledged before the crash is
    still there: every statement ends up in the topic, none under a second id,
    and the service process is the same one throughout (never restarted).
    """
    bootstrap = durable_broker.bootstrap_servers
    port = free_port()
    stream = StatementStream(site)
    service = ServiceProcess(write_config(tmp_path, bootstrap, topic, site, port), tmp_path / "log")
    service.start()
    assert service.process is not None
    pid = service.process.pid
    try:
        await stream.run(6, every=0.15)
        before = await EventReader(bootstrap, topic).read(6, timeout=30)
        producing = asyncio.create_task(stream.run(6, every=0.15))
        await asyncio.sleep(0.4)  # statements are on their way to the broker
        durable_broker.kill9()
        await producing
        await stream.run(6, every=0.3)  # the broker is dead: polling goes on
        loop = asyncio.get_running_loop()
        down_since = loop.time()
        await asyncio.sleep(3.5)
        during = await scrape(port)
        assert during["readyz"] == 503
        assert during["metrics"]["statement_monitor_broker_up"] == 0
        await asyncio.sleep(max(0.0, BROKER_CRASH_OUTAGE - (loop.time() - down_since)))
        durable_broker.restart()
        await stream.run(4, every=0.15)
        events = await EventReader(bootstrap, topic).read(22, timeout=90, settle=2.0)
        after = await scrape(port)
        assert service.process.poll() is None and service.process.pid == pid  # never restarted
        assert await service.terminate() == 0
    finally:
        service.kill_if_running()
    assert len(before) >= 6
    report = delivery_report(stream.guids, events)
    print(report.line())
    assert report.sent == 22
    assert report.missing == ()
    assert report.duplicates_new_id == 0
    assert after["readyz"] == 200
    assert after["metrics"]["statement_monitor_broker_up"] == 1


async def test_repeated_kill_9_during_a_stream_loses_and_doubles_nothing(
        tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str) -> None:
    stream = StatementStream(site)
    service = ServiceProcess(write_config(tmp_path, kafka_bootstrap, topic, site), tmp_path / "log")
    service.start()
    producing = asyncio.create_task(stream.run(30, every=0.12))
    kills = 0
    try:
        while not producing.done():
            await asyncio.sleep(0.9)
            service.kill9()
            kills += 1
            service.start()
        events = await EventReader(kafka_bootstrap, topic).read(30, timeout=60, settle=2.0)
        assert await service.terminate() == 0
    finally:
        service.kill_if_running()
    report = delivery_report(stream.guids, events)
    print(f"kills={kills}", report.line())
    assert kills >= 3
    assert report.missing == ()
    assert report.duplicates_new_id == 0


@pytest.mark.parametrize("stop", ["sigterm", "kill9"])
async def test_a_304_after_a_failed_publish_hides_nothing(
        tmp_path: Path, site: LoopbackSite, topic: str, own_broker: EmbeddedBroker, stop: str) -> None:
    """The broker is down while new items arrive; the feed then answers 304; all items arrive."""
    stream = StatementStream(site)
    for _ in range(5):
        stream.add()
    service = ServiceProcess(write_config(tmp_path, own_broker.bootstrap_servers, topic, site),
                             tmp_path / "log")
    service.start()  # the broker is not running
    try:
        for _ in range(300):
            if sum(hit.status == 304 for hit in site.hits("/feed.xml")) >= 3:
                break
            await asyncio.sleep(0.05)
        assert sum(hit.status == 304 for hit in site.hits("/feed.xml")) >= 3
        if stop == "sigterm":
            assert await service.terminate() == 0  # within 10 s, with the outbox still full
        else:
            service.kill9()
        fetched_in_full = sum(hit.status == 200 for hit in site.hits("/feed.xml"))

        own_broker.start()
        service.start()
        events = await EventReader(own_broker.bootstrap_servers, topic).read(5, timeout=40, settle=1.0)
        assert await service.terminate() == 0
    finally:
        service.kill_if_running()
    report = delivery_report(stream.guids, events)
    assert report.missing == ()
    assert report.duplicates_new_id == 0
    # Delivered from the outbox: the feed was never downloaded in full again.
    assert sum(hit.status == 200 for hit in site.hits("/feed.xml")) == fetched_in_full == 1
