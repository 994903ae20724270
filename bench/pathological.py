"""Pathological pages beside a healthy feed (issue 13, §3).

`monitor run` (a real subprocess, 2 workers) follows two feeds on a loopback
site: a healthy one that gets a new statement every second, and a hostile one
that gets four pathological statement pages at once (10^6 attributes, 200,000
links, 100,000 nested elements, 15 MB of text). Printed: the healthy
statements' latency (added to the feed -> acknowledged by the broker, from the
state store's `acked_at`) p50/p99/max against the bound interval + 2 s, the
hostile statements' outcome (text or `extraction_error`, as a consumer reads
them from the topic), whether every statement is in the topic, and the peak
RSS of the service's processes. `--without-hostile` runs the healthy feed
alone: the baseline on the same machine.

    python bench/pathological.py [--seconds 40] [--interval 2] [--timeout 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from procs import descendants  # bench/ is on sys.path when run as a script

from monitor.sinks.embedded import EmbeddedBroker
from tests.conftest import EventReader, free_port, make_config
from tests.sites.feeds import Item, rss
from tests.sites.loopback import LoopbackSite
from tests.sites.pathological import PAGES
from tests.sites.stream import RSS, ServiceProcess, StatementStream


class Receiver:
    """Records when each statement (by guid) first reaches the topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.received: dict[str, float] = {}
        self.data: dict[str, dict[str, Any]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        # Assigned once the service has created the topic: partitions assigned before
        # it exists are read from their end, and the first events are missed.
        partitions = await EventReader(self.bootstrap, self.topic)._partitions(timeout=60)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(self.topic, p) for p in partitions])
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=50)
                now = time.time()
                for records in batch.values():
                    for record in records:
                        data = json.loads(record.value)["data"]
                        self.received.setdefault(data["guid"], now)
                        self.data.setdefault(data["guid"], data)
        finally:
            await consumer.stop()


def tree_rss_mb(root: int) -> dict[int, float]:
    """RSS (MB) of every descendant process of `root`, by pid."""
    found: dict[int, float] = {}
    for pid in descendants(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[pid] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return found


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def scenario(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    topic = "statements.bench-pathological"
    async with LoopbackSite() as site:
        healthy = StatementStream(site, path="/healthy.xml")
        site.put("/hostile.xml", rss([]), content_type=RSS)
        # Made now: building 35 MB of pages would stall this process's loop (the site
        # and the consumer) in the middle of the measurement.
        items = []
        for name, make in PAGES.items():
            url = site.put(f"/hostile/{name}.html", make())
            items.append(Item(f"Hostile {name}", url, guid=f"hostile-{name}",
                              description=f"Feed text of the {name} page."))
        hostile_feed = rss(items)
        config = make_config(
            workdir, bootstrap=broker.bootstrap_servers, topic=topic,
            sources=[
                {"id": "healthy", "url": site.url("/healthy.xml")},
                {"id": "hostile", "url": site.url("/hostile.xml")},
            ],
            extract={"workers": 2, "timeout": args.timeout},
            defaults={"interval": args.interval, "timeout": 20},
            log={"level": "warning"},
            # One loopback host stands for the two sites: give it the connections two
            # would have, or the healthy feed's polls queue behind 35 MB of downloads.
            fetch={"hosts": {"127.0.0.1": {"connections": 8}}},
        )
        path = workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        service = ServiceProcess(path, workdir / "service.log")
        service.start()
        assert service.process is not None
        await asyncio.sleep(3 * args.interval)  # first polls: the feeds as they are now
        receiver = Receiver(broker.bootstrap_servers, topic)
        stop = asyncio.Event()
        receiving = asyncio.create_task(receiver.run(stop))
        await asyncio.sleep(2.0)  # the consumer's start
        added: dict[str, float] = {}
        hostile: list[str] = []
        peak: dict[int, float] = {}
        started = time.monotonic()
        next_healthy = started
        while time.monotonic() - started < args.seconds:
            now = time.monotonic()
            if now >= next_healthy:
                added[healthy.add()] = time.time()
                next_healthy += 1.0
            if not hostile and not args.without_hostile and now - started >= args.hostile_at:
                site.put("/hostile.xml", hostile_feed, content_type=RSS)
                hostile = [item.guid for item in items if item.guid]
                added.update((guid, time.time()) for guid in hostile)
            for pid, rss_mb in tree_rss_mb(service.process.pid).items():
                peak[pid] = max(peak.get(pid, 0.0), rss_mb)
            await asyncio.sleep(0.1)
        # Wait for the stragglers: the hostile pages may need `page_attempts` polls.
        deadline = time.monotonic() + args.drain
        while set(added) - set(receiver.received) and time.monotonic() < deadline:
            for pid, rss_mb in tree_rss_mb(service.process.pid).items():
                peak[pid] = max(peak.get(pid, 0.0), rss_mb)
            await asyncio.sleep(0.2)
        stop.set()
        await receiving
        in_topic = {
            e["data"]["guid"]
            for e in await EventReader(broker.bootstrap_servers, topic).read(
                len(added), timeout=10, settle=1.0
            )
        }
        exit_code = await service.terminate(timeout=30)
    broker.stop()
    with sqlite3.connect(workdir / "state" / "monitor.db") as db:
        acked = {
            key: at for key, at in db.execute("SELECT entry_key, acked_at FROM statements")
            if at is not None
        }
    latencies = sorted(
        acked[g] - t for g, t in added.items() if g.startswith("stmt-") and g in acked
    )
    healthy_sent = [g for g in added if g.startswith("stmt-")]
    (workdir / "latencies.json").write_text(json.dumps({
        g: [round(t - added[healthy_sent[0]], 2), round(acked.get(g, 0) - t, 2)]
        for g, t in added.items()
    }))
    return {
        "benchmark": "pathological",
        "interval_s": args.interval,
        "deadline_s": args.timeout,
        "healthy_sent": len(healthy_sent),
        "healthy_received": len(latencies),
        "latency_p50_s": round(quantile(latencies, 0.5), 2) if latencies else None,
        "latency_p99_s": round(quantile(latencies, 0.99), 2) if latencies else None,
        "latency_max_s": round(latencies[-1], 2) if latencies else None,
        "bound_s": args.interval + 2,
        "hostile": {
            g: {
                "received_after_s": round(receiver.received[g] - added[g], 1),
                "extraction_error": receiver.data[g].get("extraction_error"),
                "text_chars": len(receiver.data[g].get("text") or ""),
            } if g in receiver.received else "MISSING"
            for g in hostile
        },
        "all_published": not (set(added) - in_topic),
        "missing_from_topic": sorted(set(added) - in_topic),
        "peak_rss_mb_by_process": sorted(round(v) for v in peak.values()),
        "clean_exit": exit_code == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=40.0, help="healthy stream length")
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval, seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="extract.timeout, seconds")
    parser.add_argument("--hostile-at", type=float, default=5.0, help="when the pages appear")
    parser.add_argument("--without-hostile", action="store_true",
                        help="the baseline: the healthy feed alone, same machine, same run")
    parser.add_argument("--drain", type=float, default=120.0, help="wait for stragglers, s")
    parser.add_argument("--keep", type=Path, help="keep the config, state and service log here")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(scenario(args, args.keep))
    else:
        with tempfile.TemporaryDirectory() as workdir:
            result = asyncio.run(scenario(args, Path(workdir)))
    print(json.dumps(result, indent=1))
    ok = (
        result["all_published"]
        and result["latency_p99_s"] is not None
        and result["latency_p99_s"] <= result["bound_s"]
    )
    print(
        f"healthy latency p50 {result['latency_p50_s']} s, p99 {result['latency_p99_s']} s, "
        f"max {result['latency_max_s']} s (bound interval + 2 = {result['bound_s']} s); "
        f"{result['healthy_received']}/{result['healthy_sent']} healthy and "
        f"{sum(v != 'MISSING' for v in result['hostile'].values())}/{len(result['hostile'])} "
        f"hostile statements published: {'OK' if ok else 'FAILED'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
