"""Push latency: from a hub's POST to the broker's ack of the statement event.

The whole service runs in this process with a 300 s poll interval against an
embedded broker; a loopback hub (the one of tests/test_websub.py) pushes a
signed feed with one new statement at a time, and the clock stops when the
relay counts the event as acknowledged. Prints p50, p99 and max.

    python bench/websub_latency.py [--pushes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import metrics
from monitor.sinks.embedded import EmbeddedBroker
from tests.conftest import counter, free_port, running, wait_until
from tests.sites.feeds import Item
from tests.sites.loopback import LoopbackSite
from tests.test_websub import RSS, LoopbackHub, hub_feed, statement_page, websub_config


async def scenario(pushes: int, workdir: Path, bootstrap: str) -> list[float]:
    latencies = []
    async with LoopbackSite() as site, LoopbackHub() as hub:
        feed_url = site.url("/feed.xml")
        items = [Item("Pushed statement 0", statement_page(site, 0), guid="p-0")]
        site.put("/feed.xml", hub_feed(items, hub=hub.url, self_url=feed_url), content_type=RSS)
        config, port = websub_config(
            workdir, bootstrap=bootstrap, topic="statements.bench-websub", site=site, hub=hub
        )
        callback = f"http://127.0.0.1:{port}/websub/pushy"
        async with running(config) as service:
            await wait_until(lambda: callback in hub.active and service.store.has_seen("pushy"))
            for n in range(1, pushes + 1):
                items.insert(
                    0, Item(f"Pushed statement {n}", statement_page(site, n), guid=f"p-{n}")
                )
                body = hub_feed(items[:20], hub=hub.url, self_url=feed_url).encode()
                before = counter(metrics.EVENTS_PUBLISHED, source_id="pushy")
                started = time.monotonic()
                await hub.publish(callback, body)

                def acked(before: float = before) -> bool:
                    return counter(metrics.EVENTS_PUBLISHED, source_id="pushy") > before

                await wait_until(acked, timeout=10)
                latencies.append(time.monotonic() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=50)
    args = parser.parse_args()
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            latencies = asyncio.run(scenario(args.pushes, Path(tmp), broker.bootstrap_servers))
    finally:
        broker.stop()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"pushes={len(ordered)} p50={statistics.median(ordered):.3f}s "
        f"p99={p99:.3f}s max={ordered[-1]:.3f}s (poll interval 300 s; wait_until polls every 50 ms)"
    )


if __name__ == "__main__":
    main()
