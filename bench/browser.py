"""Browser rendering: page loads per second, and the memory of Chromium with 2 pages open.

    python bench/browser.py [--pages 40] [--max-pages 2] [--settle 0.5]

Serves the JavaScript test site (tests/sites/jssite.py: each statement page
fetch()es its body from a JSON endpoint) on loopback, and loads `--pages`
statement pages through `monitor.fetch.browser.BrowserFetcher` (the service's
own path: address guard on every request, settle time, one context per page),
`--max-pages` at once. Prints loads per second and the memory of the browser's
processes (Chromium is a dozen processes: RSS counts shared pages once per
process, so PSS from /proc/PID/smaps_rollup is the honest sum), sampled every
100 ms: after launch with no page, and the peak while `--max-pages` pages are
open. Needs Debian's `chromium` and Playwright. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from latency import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)
from procs import descendants  # noqa: E402

from monitor.fetch.browser import BrowserFetcher  # noqa: E402
from monitor.fetch.guard import AddressGuard  # noqa: E402
from monitor.fetch.hosts import HostLimits, HostSlots  # noqa: E402
from tests.sites.jssite import JsSite  # noqa: E402


def _memory_mb(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) summed over `pids`, MB."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def _browser_pids() -> list[int]:
    """Chromium's processes: the descendants of this process but Playwright's driver."""
    pids = []
    for pid in descendants(os.getpid()):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if "chrom" in name.lower():
            pids.append(pid)
    return pids


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--max-pages", type=int, default=2)
    parser.add_argument("--settle", type=float, default=0.5)
    args = parser.parse_args()
    async with JsSite() as site:
        browser = BrowserFetcher(
            guard=AddressGuard([site.url("/")]),
            hosts=HostSlots(HostLimits(connections=args.max_pages)),
            user_agent="statement-monitor-bench",
            max_pages=args.max_pages,
            settle=args.settle,
            restart_after=10_000,
        )
        peak = (0.0, 0.0)
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                now = _memory_mb(_browser_pids())
                peak = max(peak, now, key=lambda m: m[1])
                await asyncio.sleep(0.1)

        try:
            warm = await browser.fetch(site.url("/news/0.html"), source_id="b", max_bytes=10**7)
            assert warm.error is None, warm.error
            idle = _memory_mb(_browser_pids())
            sampler = asyncio.create_task(sample())
            started = time.monotonic()
            results = await asyncio.gather(
                *(
                    browser.fetch(site.url(f"/news/{n}.html"), source_id="b", max_bytes=10**7)
                    for n in range(1, args.pages + 1)
                )
            )
            elapsed = time.monotonic() - started
            sampling = False
            await sampler
        finally:
            await browser.close()
    failed = sum(r.error is not None for r in results)
    print(f"cpu: {cpu_model()}; {args.pages} pages, {args.max_pages} at once, "
          f"settle {args.settle:g} s")
    print(f"page loads: {args.pages / elapsed:.2f}/s ({elapsed:.1f} s, {failed} failed); "
          f"settle time included, so the ceiling is {args.max_pages / args.settle:.1f}/s")
    print(f"browser memory after launch, no page open: RSS {idle[0]:.0f} MB, PSS {idle[1]:.0f} MB")
    print(f"browser memory, peak with {args.max_pages} pages open: "
          f"RSS {peak[0]:.0f} MB, PSS {peak[1]:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
