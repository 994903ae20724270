"""Benchmark 1: unchanged feeds. Conditional checks per second, service vs a bare client.

A loopback server (its own process) serves N feeds that answer 304 to a
matching If-None-Match. In the same run we measure:

- baseline: a bare aiohttp client doing the same conditional GETs with 100
  requests in flight;
- service: `monitor run` as a real subprocess with N sources on a schedule it
  cannot keep up with (interval 0.1 s: 3,000 feeds ask for 30,000 checks a
  second), per-host connections and `fetch.max_concurrent_polls` raised to 100
  like the baseline's 100 in flight, against the real broker binary.

The interval must leave the schedule out of reach: at 1 s, 3,000 feeds ask for
only 3,000 checks a second, which caps the service at ~0.28x of a baseline of
~10,800/s whatever it costs (measured 2026-11-25: 3,005/s at 67 % of a core).

The server counts the 304s it sends; rates are 304s per second over a window
after warm-up. Prints both and their ratio (target: service ≥ 0.6× baseline).

    python bench/unchanged_feeds.py [--feeds 3000] [--seconds 20] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `monitor` (the embedded broker) without installing it
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/'s shared helpers

from latency import cpu_model  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def feed_body(n: int) -> bytes:
    items = "".join(
        f"<item><title>Statement {n}-{i}</title><link>http://127.0.0.1/s/{n}/{i}</link>"
        f"<guid>{n}-{i}</guid></item>"
        for i in range(5)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
        f"<link>http://127.0.0.1/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def serve(port: int, feeds: int, not_modified: multiprocessing.Value) -> None:  # type: ignore[type-arg]
    """The loopback site, in its own process."""
    bodies = {f"/feed/{n}.xml": feed_body(n) for n in range(feeds)}
    tags = {path: '"' + hashlib.sha1(body).hexdigest()[:16] + '"' for path, body in bodies.items()}

    async def handle(request: web.Request) -> web.Response:
        body = bodies.get(request.path)
        if body is None:
            return web.Response(status=404)
        tag = tags[request.path]
        if request.headers.get("If-None-Match") == tag:
            with not_modified.get_lock():
                not_modified.value += 1
            return web.Response(status=304, headers={"ETag": tag})
        return web.Response(body=body, headers={"ETag": tag, "Content-Type": "application/rss+xml"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def measure(counter: multiprocessing.Value, seconds: float) -> float:  # type: ignore[type-arg]
    start_count, start = counter.value, time.monotonic()
    await asyncio.sleep(seconds)
    return (counter.value - start_count) / (time.monotonic() - start)


async def baseline(port: int, feeds: int, seconds: float, counter: multiprocessing.Value) -> float:  # type: ignore[type-arg]
    """A bare aiohttp client: 100 conditional GETs in flight, round-robin over the feeds."""
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=100)
    tags: dict[int, str] = {}
    stop = False

    async def worker(first: int, session: aiohttp.ClientSession) -> None:
        n = first
        while not stop:
            headers = {"If-None-Match": tags[n]} if n in tags else {}
            async with session.get(f"http://127.0.0.1:{port}/feed/{n}.xml", headers=headers) as r:
                await r.read()
                if r.headers.get("ETag"):
                    tags[n] = r.headers["ETag"]
            n = (n + 100) % feeds

    async with aiohttp.ClientSession(connector=connector) as session:
        workers = [asyncio.create_task(worker(i, session)) for i in range(100)]
        await asyncio.sleep(3)  # warm-up: every feed seen once, tags learnt
        rate = await measure(counter, seconds)
        stop = True
        await asyncio.gather(*workers, return_exceptions=True)
    return rate


async def service(
    port: int,
    feeds: int,
    seconds: float,
    counter: multiprocessing.Value,  # type: ignore[type-arg]
    workdir: Path,
    interval: float = 0.1,
) -> tuple[float, float]:
    """`monitor run` as a subprocess. Returns (304s per second, peak RSS MB)."""
    from monitor.sinks.embedded import EmbeddedBroker

    broker = EmbeddedBroker(port=free_port())
    broker.start()
    config = {
        "kafka": {"bootstrap_servers": broker.bootstrap_servers, "enable_idempotence": False},
        "state": {"path": str(workdir / "state.db")},
        "metrics": {"host": "127.0.0.1", "port": free_port()},
        "log": {"level": "warning", "format": "json"},
        # 100 in flight, as the baseline: no poll waits in the host slot behind another.
        "fetch": {"hosts": {"127.0.0.1": {"connections": 100}}, "max_concurrent_polls": 100},
        "defaults": {"interval": interval, "timeout": 10, "backfill": False,
                     "allow_fast_polling": True},
        "sources": [
            {"id": f"feed-{n}", "url": f"http://127.0.0.1:{port}/feed/{n}.xml"}
            for n in range(feeds)
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Warm-up: the first poll of every feed is a 200 that is parsed and recorded.
        deadline = time.monotonic() + 120
        while counter.value < feeds and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)
        rate = await measure(counter, seconds)
        rss = _rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        broker.stop()
    return rate, rss


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--interval", type=float, default=0.1, help="poll interval of every feed, in seconds"
    )
    args = parser.parse_args()

    port = free_port()
    counter = multiprocessing.Value("q", 0)
    server = multiprocessing.Process(target=serve, args=(port, args.feeds, counter), daemon=True)
    server.start()
    time.sleep(1.0)
    try:
        base = asyncio.run(baseline(port, args.feeds, args.seconds, counter))
        with tempfile.TemporaryDirectory() as workdir:
            svc, rss = asyncio.run(
                service(port, args.feeds, args.seconds, counter, Path(workdir), args.interval)
            )
    finally:
        server.terminate()
    result = {
        "benchmark": "unchanged_feeds",
        "feeds": args.feeds,
        "window_seconds": args.seconds,
        "interval": args.interval,
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "baseline_304_per_s": round(base, 1),
        "service_304_per_s": round(svc, 1),
        "ratio": round(svc / base, 3) if base else None,
        "service_rss_mb": round(rss, 1),
    }
    print(json.dumps(result))
    print(f"baseline (bare aiohttp, 100 in flight): {base:8.1f} 304/s")
    print(
        f"service  (monitor run, {args.feeds} feeds):  {svc:8.1f} 304/s   "
        f"ratio {svc / base:.2f}x   RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
