"""Benchmark 4: memory and start-up with 10,000 sources, an hour of polling compressed.

A loopback site (its own process, the one of bench/latency.py) serves
`--sources` RSS feeds with ETags (304 when unchanged), a robots.txt and small
statement pages. `monitor run` (a real subprocess, against the real broker
binary) polls them at `--interval` seconds: an hour at a realistic 5-minute
interval is 12 polls a source, `--polls` (120,000 for 10,000 sources) in all,
here in a few minutes. Once every source has been polled once (first sight:
its items are recorded silently) and one interval more has passed, a trickle
of new statements (`--rate` a second) appears on random feeds.

Prints:
- start-up: seconds from the service process's start (`Popen`) to the first
  request the site saw (robots.txt), to the first feed request, and to every
  source polled once (target: first poll within 2 s);
- memory: resident set size (VmRSS from /proc) of the main process and of its
  child processes (the extraction pool's workers, the forkserver, the resource
  tracker), sampled every second: peak and final, each and in total
  (target: ≤ 250 MB);
- the state store: database + WAL size, rows in `statements` and polls, at the
  start of steady state and at the end, so that its growth can be set against
  the statements recorded, not the polls made.

    python bench/memory.py [--sources 10000] [--interval 8] [--polls 120000] [--rate 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# bench/ is not a package: the site and the service helpers are bench/latency.py's.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import (
    cpu_model,
    free_port,
    rss_mb,
    run_in_workdir,
    service_config,
    start_rig,
    start_service,
    stop_service,
    wait_for,
)
from procs import children

START_TARGET = 2.0  # s, process start → first poll
RSS_TARGET = 250.0  # MB, the service's resident memory


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages split between the processes that map them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Samples:
    """RSS over time, MB: the main process, the pool workers, helper processes."""

    times: list[float] = field(default_factory=list)
    main: list[float] = field(default_factory=list)
    workers: list[float] = field(default_factory=list)
    helpers: list[float] = field(default_factory=list)
    pss: list[float] = field(default_factory=list)  # all processes, shared pages split
    worker_count: int = 0

    def take(self, pid: int, since: float) -> None:
        helpers = workers = 0.0
        count = 0
        pss = pss_mb(pid)
        for child in children(pid):
            grandchildren = children(child)
            pss += pss_mb(child) + sum(pss_mb(g) for g in grandchildren)
            if grandchildren:  # the forkserver: its children are the pool's workers
                helpers += rss_mb(child)
                workers += sum(rss_mb(g) for g in grandchildren)
                count += len(grandchildren)
            else:  # the resource tracker (or a worker forked directly)
                helpers += rss_mb(child)
        self.times.append(time.monotonic() - since)
        self.main.append(rss_mb(pid))
        self.workers.append(workers)
        self.helpers.append(helpers)
        self.pss.append(pss)
        self.worker_count = max(self.worker_count, count)

    @property
    def total(self) -> list[float]:
        return [a + b + c for a, b, c in zip(self.main, self.workers, self.helpers, strict=True)]


def store_figures(db: Path) -> dict[str, Any]:
    """Database and WAL size (bytes), and rows, read without disturbing the writer."""
    wal = db.with_name(db.name + "-wal")
    sizes = {
        "db_bytes": db.stat().st_size if db.exists() else 0,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
    }
    rows: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        for table in ("statements", "outbox", "sources"):
            rows[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return {**sizes, **rows}


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    count = int(args.max_seconds * args.rate)
    schedule = sorted(
        (rng.uniform(0, args.max_seconds), rng.randrange(args.sources)) for _ in range(count)
    )
    rig = start_rig(args.sources, 2, schedule)
    await asyncio.sleep(1.0)  # the site is listening
    config = service_config(
        workdir,
        site_port=rig.site_port,
        feeds=args.sources,
        interval=args.interval,
        bootstrap=rig.broker.bootstrap_servers,
        metrics_port=free_port(),
        topic="statements.bench-memory",
    )
    db = workdir / "state" / "monitor.db"
    samples = Samples()
    started_wall, started = time.time(), time.monotonic()
    process = start_service(config, workdir / "service.log")
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            samples.take(process.pid, started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_sampling.wait(), 1.0)

    sampler = asyncio.create_task(sample())
    try:
        if not await wait_for(lambda: rig.counters.feeds_polled.value >= args.sources, 180, 0.05):
            raise RuntimeError(f"{rig.counters.feeds_polled.value} sources polled in 180 s")
        startup = {
            "first_request_s": round(rig.counters.first_request_at.value - started_wall, 3),
            "first_feed_poll_s": round(rig.counters.first_feed_at.value - started_wall, 3),
            "all_polled_once_s": round(rig.counters.all_polled_at.value - started_wall, 3),
        }
        await asyncio.sleep(args.interval)  # first sights recorded; the 304 path from here
        steady_at = time.monotonic() - started
        steady = {"polls": rig.counters.feed_requests.value, **store_figures(db)}
        rss_steady = samples.main[-1] if samples.main else 0.0
        rig.go.set()
        target = steady["polls"] + args.polls
        await wait_for(
            lambda: rig.counters.feed_requests.value >= target,
            args.max_seconds,
            0.5,
        )
        end_at = time.monotonic() - started
        samples.take(process.pid, started)
        end = {"polls": rig.counters.feed_requests.value, **store_figures(db)}
        stop_sampling.set()
        await sampler
        exit_code = stop_service(process)
    finally:
        stop_sampling.set()
        if process.poll() is None:
            stop_service(process)
        rig.stop()
    polls = end["polls"] - steady["polls"]
    window = end_at - steady_at
    total = samples.total
    return {
        "benchmark": "memory",
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "sources": args.sources,
        "interval_s": args.interval,
        **startup,
        "start_pass": startup["first_feed_poll_s"] <= START_TARGET,
        "window_s": round(window, 1),
        "polls_in_window": polls,
        "polls_per_source": round(polls / args.sources, 1),
        "polls_per_s": round(polls / window, 1),
        "new_statements_in_window": end["statements"] - steady["statements"],
        "store_steady": steady,
        "store_end": end,
        "rss_main_at_steady_mb": round(rss_steady, 1),
        "rss_main_peak_mb": round(max(samples.main), 1),
        "rss_main_final_mb": round(samples.main[-1], 1),
        "pool_workers": samples.worker_count,
        "rss_workers_peak_mb": round(max(samples.workers), 1),
        "rss_workers_final_mb": round(samples.workers[-1], 1),
        "rss_helpers_final_mb": round(samples.helpers[-1], 1),
        "rss_total_peak_mb": round(max(total), 1),
        "rss_total_final_mb": round(total[-1], 1),
        "pss_total_peak_mb": round(max(samples.pss), 1),
        "pss_total_final_mb": round(samples.pss[-1], 1),
        "rss_target_mb": RSS_TARGET,
        "rss_pass": max(samples.main) <= RSS_TARGET,
        "rss_total_pass": max(total) <= RSS_TARGET,
        "timeline": [
            (round(samples.times[i]), round(samples.main[i]), round(total[i]))
            for i in range(0, len(samples.times), max(1, len(samples.times) // 12))
        ],
        "service_exit": exit_code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=8.0, help="poll interval, seconds")
    parser.add_argument(
        "--polls", type=int, default=None, help="polls after warm-up (default: 12 a source)"
    )
    parser.add_argument("--rate", type=float, default=1.0, help="new statements per second")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="cap on the window")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if args.polls is None:
        args.polls = 12 * args.sources
    result = run_in_workdir(run, args)
    print(json.dumps(result))
    print(
        f"start-up, {result['sources']} sources: first request {result['first_request_s']:.2f} s, "
        f"first feed poll {result['first_feed_poll_s']:.2f} s "
        f"(target ≤ {START_TARGET:.0f} s: {'PASS' if result['start_pass'] else 'FAIL'}), "
        f"every source polled once {result['all_polled_once_s']:.2f} s"
    )
    print(
        f"polling: {result['polls_in_window']} polls ({result['polls_per_source']} a source) "
        f"in {result['window_s']} s = {result['polls_per_s']} polls/s"
    )
    print(
        f"RSS main process: at steady state {result['rss_main_at_steady_mb']:.0f} MB, "
        f"peak {result['rss_main_peak_mb']:.0f} MB, final {result['rss_main_final_mb']:.0f} MB "
        f"(target ≤ {RSS_TARGET:.0f} MB: {'PASS' if result['rss_pass'] else 'FAIL'})"
    )
    print(
        f"RSS pool workers ({result['pool_workers']}): peak {result['rss_workers_peak_mb']:.0f} MB,"
        f" final {result['rss_workers_final_mb']:.0f} MB; helpers (forkserver, resource tracker) "
        f"{result['rss_helpers_final_mb']:.0f} MB; total peak {result['rss_total_peak_mb']:.0f} MB,"
        f" final {result['rss_total_final_mb']:.0f} MB "
        f"({'within' if result['rss_total_pass'] else 'over'} {RSS_TARGET:.0f} MB; RSS counts "
        f"the pages forked processes share once each); PSS of all processes: peak "
        f"{result['pss_total_peak_mb']:.0f} MB, final {result['pss_total_final_mb']:.0f} MB"
    )
    s, e = result["store_steady"], result["store_end"]
    print(
        f"state store at steady state: {s['db_bytes'] / 1e6:.2f} MB + WAL "
        f"{s['wal_bytes'] / 1e6:.2f} MB, {s['statements']} statements, {s['polls']} polls"
    )
    print(
        f"state store at the end:      {e['db_bytes'] / 1e6:.2f} MB + WAL "
        f"{e['wal_bytes'] / 1e6:.2f} MB, {e['statements']} statements, {e['polls']} polls "
        f"(+{e['statements'] - s['statements']} statements, +{e['polls'] - s['polls']} polls)"
    )


if __name__ == "__main__":
    main()
