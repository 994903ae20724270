"""Delivery under faults, the long version of tests/test_delivery.py.

A loopback site publishes a stream of statements; `monitor run` (a real
subprocess) follows it while the harness pauses the broker (SIGSTOP, for
`--outage` seconds) and kills the service with `kill -9` (`--kills` times).
At the end a consumer reads the topic and the books are kept: statements
sent, delivered, missing, duplicated under the same id (allowed, at least
once), and duplicated under a new id (must be 0).

    python bench/delivery.py [--statements 300] [--rate 20] [--kills 6] [--outage 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.sinks.embedded import EmbeddedBroker
from tests.conftest import EventReader, free_port, make_config
from tests.sites.loopback import LoopbackSite
from tests.sites.stream import ServiceProcess, StatementStream, delivery_report


async def scenario(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    assert broker.pid is not None
    topic = "statements.bench"
    async with LoopbackSite() as site:
        stream = StatementStream(site)
        config = make_config(
            workdir, bootstrap=broker.bootstrap_servers, topic=topic,
            sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": True,
                      "interval": 0.5}],
        )
        path = workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        service = ServiceProcess(path, workdir / "service.log")
        service.start()
        duration = args.statements / args.rate
        producing = asyncio.create_task(stream.run(args.statements, every=1 / args.rate))
        rng = random.Random(args.seed)
        kill_times = sorted(rng.uniform(0.1, 0.9) * duration for _ in range(args.kills))
        outage_at = rng.uniform(0.2, 0.6) * duration
        started = time.monotonic()
        outage_done = False
        for at in kill_times:
            while time.monotonic() - started < at:
                await asyncio.sleep(0.05)
                if not outage_done and time.monotonic() - started >= outage_at:
                    outage_done = True
                    os.kill(broker.pid, signal.SIGSTOP)
                    await asyncio.sleep(args.outage)
                    os.kill(broker.pid, signal.SIGCONT)
            service.kill9()
            service.start()
        await producing
        if not outage_done:
            os.kill(broker.pid, signal.SIGSTOP)
            await asyncio.sleep(args.outage)
            os.kill(broker.pid, signal.SIGCONT)
        events = await EventReader(broker.bootstrap_servers, topic).read(
            args.statements, timeout=120, settle=3.0
        )
        exit_code = await service.terminate()
    broker.stop()
    report = delivery_report(stream.guids, events)
    return {
        "benchmark": "delivery",
        "statements_sent": report.sent,
        "delivered": report.delivered,
        "missing": len(report.missing),
        "duplicated_same_id": report.duplicates_same_id,
        "duplicated_new_id": report.duplicates_new_id,
        "kills": args.kills,
        "broker_outage_seconds": args.outage,
        "clean_exit": exit_code == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--statements", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="new statements per second")
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--outage", type=float, default=10.0, help="broker pause, seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        result = asyncio.run(scenario(args, Path(workdir)))
    print(json.dumps(result))
    ok = result["missing"] == 0 and result["duplicated_new_id"] == 0
    print(f"sent {result['statements_sent']}, delivered {result['delivered']}, "
          f"duplicated (same id) {result['duplicated_same_id']}, "
          f"duplicated under new ids {result['duplicated_new_id']}: {'OK' if ok else 'FAILED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
