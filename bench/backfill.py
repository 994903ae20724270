"""Benchmark 2: backfill. Statement pages per second, service vs a bare Trafilatura pool.

N new statements (default 5,000) on realistic statement pages (60–150 KB of
HTML: a header with a mega-menu, breadcrumbs, a sidebar of related links,
inline and external scripts, a JSON-LD block, a cookie banner, a footer, and a
statement body of several paragraphs with quotations), generated
deterministically from `--seed`. In the same run we measure:

- baseline: `trafilatura.extract(page_bytes)` over the same pages in a
  `ProcessPoolExecutor(max_workers=2)` (both cores), after the workers have
  imported Trafilatura;
- service: `monitor run` as a real subprocess against a loopback site (its own
  process) that serves the feeds (100 items each) and the pages, with every
  source `backfill: true` and the per-host limits raised through `fetch.hosts`,
  publishing to the real broker binary (tansu, memory storage). The clock runs
  from the start of the subprocess to the broker's acknowledgement of the N-th
  event (`statement_monitor_events_published_total` on /metrics, sampled every
  second, every 0.1 s before the first event and near the end); afterwards a
  consumer reads the topic to check that N events are there.

Prints both, their ratio (target: service ≥ 0.8× baseline) and the service's
peak RSS.

    python bench/backfill.py [--pages 5000] [--workers N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import json
import math
import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/'s shared helpers

from latency import cpu_model, rss_mb  # noqa: E402
from procs import all_stat_fields, descendants, stat_fields  # noqa: E402

ITEMS_PER_FEED = 100

# --- the pages ---------------------------------------------------------------

_WORDS = [
    "government",
    "minister",
    "ministry",
    "policy",
    "economic",
    "growth",
    "inflation",
    "rate",
    "decision",
    "council",
    "committee",
    "sanctions",
    "trade",
    "agreement",
    "budget",
    "fiscal",
    "reform",
    "public",
    "health",
    "security",
    "defence",
    "foreign",
    "affairs",
    "cooperation",
    "partners",
    "international",
    "stability",
    "energy",
    "climate",
    "transition",
    "investment",
    "infrastructure",
    "regional",
    "development",
    "employment",
    "labour",
    "market",
    "households",
    "prices",
    "monetary",
    "financial",
    "sector",
    "banking",
    "supervision",
    "measures",
    "package",
    "support",
    "programme",
    "consultation",
    "stakeholders",
    "citizens",
    "parliament",
    "legislation",
    "proposal",
    "amendment",
    "framework",
    "strategy",
    "implementation",
    "review",
    "assessment",
    "report",
    "annual",
    "quarterly",
    "outlook",
    "forecast",
    "data",
    "statistics",
    "agency",
    "office",
    "department",
    "secretary",
    "spokesperson",
    "delegation",
    "summit",
    "meeting",
    "talks",
    "negotiations",
    "bilateral",
    "multilateral",
    "relations",
    "commitment",
    "responsibility",
    "transparency",
]
_NAMES = (
    "Maria Keller",
    "Jonas Berg",
    "Amira Haddad",
    "Pierre Laurent",
    "Sofia Rossi",
    "Daniel Okafor",
    "Elena Petrova",
    "Tomás Ruiz",
    "Hannah Weiss",
    "Kenji Sato",
)
_ROLES = (
    "the Minister of Finance",
    "the Secretary of State",
    "the Governor",
    "the spokesperson",
    "the Minister for Foreign Affairs",
    "the Director-General",
    "the Deputy Prime Minister",
)
_SECTIONS = (
    "News",
    "Press releases",
    "Speeches",
    "Statements",
    "Publications",
    "Topics",
    "Ministry",
    "Policy",
    "Consultations",
    "Data",
    "Events",
    "Contact",
    "Jobs",
    "About us",
)


def _sentence(rng: random.Random, lo: int = 8, hi: int = 24) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, sentences: tuple[int, int] = (3, 7)) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(*sentences)))


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))


def _links(rng: random.Random, count: int, prefix: str) -> str:
    return "".join(
        f'<li><a href="/{prefix}/{rng.randrange(10**6)}">{_words(rng, 1, 4).title()}</a></li>'
        for _ in range(count)
    )


def _teasers(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(
        f'<article class="teaser"><h3><a href="/news/{rng.randrange(10**6)}">'
        f"{_sentence(rng, 5, 10).rstrip('.')}</a></h3><p>{_sentence(rng, 12, 22)}</p>"
        f"<time>2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}</time></article>"
        for _ in range(rng.randint(lo, hi))
    )


def page(index: int, seed: int, port: int = 80) -> bytes:
    """Statement page number `index`: 60–150 KB, the same bytes for the same seed."""
    rng = random.Random(f"{seed}-{index}")
    target = rng.randint(60_000, 150_000)
    speaker, role = rng.choice(_NAMES), rng.choice(_ROLES)
    title = _sentence(rng, 6, 12).rstrip(".")
    day = 1 + index % 28
    date = f"2026-{1 + index % 12:02d}-{day:02d}"
    body: list[str] = []
    for p in range(rng.randint(5, 12)):
        if p % 3 == 1:
            body.append(
                f"<p>“{_sentence(rng)} {_sentence(rng)}” said {speaker}, {role}. "
                f"{_paragraph(rng, (1, 3))}</p>"
            )
        elif p % 4 == 3:
            body.append(f"<h2>{_sentence(rng, 3, 7).rstrip('.')}</h2><p>{_paragraph(rng)}</p>")
        else:
            body.append(f"<p>{_paragraph(rng)}</p>")
    menu = "".join(
        f'<li class="menu-item"><a href="/{s.lower().replace(" ", "-")}">{s}</a>'
        f'<ul class="sub-menu">{_links(rng, rng.randint(6, 14), "section")}</ul></li>'
        for s in _SECTIONS
    )
    related = _teasers(rng, 8, 20)
    footer = "".join(
        f'<div class="footer-col"><h4>{rng.choice(_SECTIONS)}</h4>'
        f"<ul>{_links(rng, rng.randint(5, 12), 'f')}</ul></div>"
        for _ in range(rng.randint(4, 7))
    )
    json_ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": title,
            "datePublished": f"{date}T10:00:00+01:00",
            "author": {"@type": "Organization", "name": "Ministry of Examples"},
            "publisher": {"@type": "Organization", "name": "Ministry of Examples"},
        }
    )
    head = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title} | Ministry of Examples</title>"
        f'<meta name="description" content="{_sentence(rng, 12, 20)}">'
        f'<meta property="og:title" content="{title}">'
        f'<meta property="og:site_name" content="Ministry of Examples">'
        f'<meta property="article:published_time" content="{date}T10:00:00+01:00">'
        f'<link rel="canonical" href="http://127.0.0.1:{port}/s/{index}.html">'
        f'<link rel="stylesheet" href="/static/main.{index % 7}.css">'
        + "".join(f'<script src="/static/vendor.{i}.js" defer></script>' for i in range(6))
        + f'<script type="application/ld+json">{json_ld}</script>'
        f"<script>window.dataLayer=window.dataLayer||[];"
        f"function gtag(){{dataLayer.push(arguments)}}"
        f"gtag('js',new Date());gtag('config','G-{index:08d}');</script></head>"
    )
    top = (
        '<body class="page-statement"><div id="cookie-banner" class="cookie-consent"><p>'
        + _paragraph(rng, (3, 4))
        + "</p><button>Accept all</button><button>Reject</button>"
        '<a href="/cookies">Settings</a></div>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header class="site-header"><div class="logo"><a href="/">Ministry of Examples</a></div>'
        f'<nav class="main-nav" aria-label="Main"><ul>{menu}</ul></nav>'
        '<form class="search" action="/search"><input name="q"><button>Search</button></form>'
        "</header>"
        '<nav class="breadcrumb"><ol><li><a href="/">Home</a></li><li><a href="/news">News</a></li>'
        f"<li>{title}</li></ol></nav>"
    )
    main = (
        f'<main id="main"><article class="statement"><h1>{title}</h1>'
        f'<div class="meta"><time datetime="{date}">{date}</time> · '
        "<span>Press release</span></div>"
        + "".join(body)
        + '<div class="share"><a href="#">Share on X</a><a href="#">Share on LinkedIn</a>'
        '<a href="#">Email</a><a href="#">Print</a></div></article>'
        f'<aside class="related"><h2>Related</h2>{related}</aside></main>'
    )
    # More chrome (a "more news" grid and topic lists) until markup is 55-70 % of
    # the page, then scripts (bundled state, trackers) fill it up to its size.
    more: list[str] = []
    markup_share = rng.uniform(0.55, 0.7)
    size = len((head + top + main + footer).encode())
    while size < markup_share * target:
        block = (
            f'<section class="more-news"><h2>{rng.choice(_SECTIONS)}</h2>{_teasers(rng, 4, 10)}'
            f'</section><nav class="topics"><ul>{_links(rng, rng.randint(10, 30), "topic")}</ul>'
            "</nav>"
        )
        more.append(block)
        size += len(block.encode())
    bottom = (
        f'<div class="below">{"".join(more)}</div>'
        f'<footer class="site-footer">{footer}<p class="legal">{_paragraph(rng, (2, 3))}</p>'
        "<p>© 2026 Ministry of Examples</p></footer>"
    )
    page_so_far = head + top + main + bottom
    state: list[str] = []
    room = target - len(page_so_far.encode()) - 40
    while room > 0:
        chunk = json.dumps({f"k{rng.randrange(10**6)}": [_sentence(rng, 4, 10) for _ in range(8)]})
        state.append(chunk)
        room -= len(chunk) + 1
    script = "<script>window.__STATE__=[" + ",".join(state) + "];</script>" if state else ""
    return (page_so_far + script + "</body></html>").encode()


def feed(n: int, pages: int, port: int) -> bytes:
    first = n * ITEMS_PER_FEED
    items = "".join(
        f"<item><title>Statement {i}</title><link>http://127.0.0.1:{port}/s/{i}.html</link>"
        f"<guid>statement-{i}</guid><pubDate>Mon, 0{1 + i % 9} Jun 2026 10:00:00 GMT</pubDate>"
        f"<description>Summary of statement {i}.</description></item>"
        for i in range(first, min(first + ITEMS_PER_FEED, pages))
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>'
        f"<link>http://127.0.0.1/</link><description>d</description>{items}</channel></rss>"
    ).encode()


# --- the loopback site -----------------------------------------------------------


def serve(port: int, pages: list[bytes], feeds: int) -> None:
    """The loopback site, in its own process (forked: the pages are shared)."""
    bodies = {f"/feed/{n}.xml": feed(n, len(pages), port) for n in range(feeds)}
    tags = {path: '"' + hashlib.sha1(body).hexdigest()[:16] + '"' for path, body in bodies.items()}
    page_path = re.compile(r"/s/(\d+)\.html")

    async def handle(request: web.Request) -> web.Response:
        found = page_path.fullmatch(request.path)
        if found and int(found[1]) < len(pages):
            return web.Response(body=pages[int(found[1])], content_type="text/html")
        body = bodies.get(request.path)
        if body is None:
            return web.Response(status=404)
        tag = tags[request.path]
        if request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag})
        return web.Response(body=body, headers={"ETag": tag, "Content-Type": "application/rss+xml"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- baseline ------------------------------------------------------------------------


def _extract(body: bytes) -> int:
    import trafilatura

    return len(trafilatura.extract(body) or "")


def _service_extract(body: bytes) -> int:
    """What a service worker does with a page: `extract_article`, then `enrich`."""
    from monitor.extract import extract_article
    from monitor.extract.enrich import enrich

    article = extract_article(body, url="http://127.0.0.1/s/0.html")
    enrich(article.title, article.text)
    return len(article.text)


def baseline(pages: list[bytes], task: Any = _extract) -> tuple[float, int]:
    """(pages per second, pages with text) of `task` over the pages in a 2-process pool."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(task, pages[:8]))  # warm-up: imports and first-use caches in both workers
        started = time.monotonic()
        lengths = list(pool.map(task, pages, chunksize=4))
        elapsed = time.monotonic() - started
    return len(pages) / elapsed, sum(1 for n in lengths if n)


# --- service -------------------------------------------------------------------------


async def _published(session: aiohttp.ClientSession, port: int) -> int | None:
    try:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, OSError):
        return None
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("statement_monitor_events_published_total{")
        )
    )


async def _read_topic(bootstrap: str, topic: str, expected: int) -> tuple[int, int]:
    """(distinct event ids in the topic, how many of them fell back to the feed's text)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata, so that the topic's partitions are known
        partitions = consumer.partitions_for_topic(topic) or {0}
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        ids: set[str] = set()
        fallbacks = 0
        deadline = time.monotonic() + 60
        while len(ids) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value)
                    if event["id"] not in ids:
                        ids.add(event["id"])
                        fallbacks += event["data"].get("extraction_error") is not None
        return len(ids), fallbacks
    finally:
        await consumer.stop()


async def service(
    port: int, pages: int, feeds: int, workdir: Path, workers: int | None, site_pid: int
) -> dict[str, Any]:
    from monitor.sinks.embedded import EmbeddedBroker

    broker = EmbeddedBroker(port=free_port())
    broker.start()
    assert broker.pid is not None
    others_before = (_own_cpu_seconds(site_pid), _own_cpu_seconds(broker.pid))
    others = (0.0, 0.0)
    metrics_port = free_port()
    topic = "statements.backfill"
    config: dict[str, Any] = {
        "kafka": {
            "bootstrap_servers": broker.bootstrap_servers,
            "topic": topic,
            "enable_idempotence": False,  # tansu has no idempotent producers
        },
        "state": {"path": str(workdir / "state.db")},
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "log": {"level": "warning", "format": "json"},
        "fetch": {"hosts": {"127.0.0.1": {"connections": 32}}, "max_concurrent_polls": 200},
        "defaults": {"interval": 5, "timeout": 30, "backfill": True},
        "sources": [
            {"id": f"ministry-{n}", "url": f"http://127.0.0.1:{port}/feed/{n}.xml"}
            for n in range(feeds)
        ],
    }
    if workers is not None:
        config["extract"] = {"workers": workers}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR__")}
    log_path = workdir / "service.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(path)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    first_at: float | None = None
    cpu = (0.0, 0.0)
    done_at: float | None = None
    peak_rss = 0.0
    try:
        async with aiohttp.ClientSession() as session:
            deadline = started + 60 + pages / 5
            while time.monotonic() < deadline and process.poll() is None:
                count = await _published(session, metrics_port)
                now = time.monotonic()
                peak_rss = max(peak_rss, rss_mb(process.pid))
                if count and first_at is None:
                    first_at = now
                if count is not None and count >= pages:
                    done_at = now
                    cpu = _cpu_seconds(process.pid)
                    others = (
                        _own_cpu_seconds(site_pid) - others_before[0],
                        _own_cpu_seconds(broker.pid) - others_before[1],
                    )
                    break
                await asyncio.sleep(_next_sample(count, pages, now - (first_at or now)))
        in_topic, fallbacks = (
            await _read_topic(broker.bootstrap_servers, topic, pages) if done_at else (0, 0)
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        broker.stop()
    if done_at is None:
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        raise SystemExit("the service did not publish every event in time:\n" + "\n".join(tail))
    assert first_at is not None
    return {
        "seconds": done_at - started,
        "first_event_seconds": first_at - started,
        "pages_per_s": pages / (done_at - started),
        "pages_per_s_from_first_event": (pages - 1) / max(done_at - first_at, 1e-9),
        "events_in_topic": in_topic,
        "fallbacks": fallbacks,
        "cpu_ms_per_page": (1000 * cpu[0] / pages, 1000 * cpu[1] / pages),
        "site_broker_cpu_ms_per_page": (1000 * others[0] / pages, 1000 * others[1] / pages),
        "peak_rss_mb": peak_rss,
    }


def _next_sample(published: int | None, pages: int, since_first: float) -> float:
    """Seconds to the next look at /metrics: 0.1 s when the end is under 2 s away, else 1 s.

    Each scrape costs the service CPU (at 4 Hz, 5 % of its own process's during a
    backfill), so the clock is read often only where it matters, at the end.
    """
    if not published or since_first <= 0:
        return 0.1  # the first event's time is a figure too
    seconds_left = (pages - published) / (published / since_first)
    return 0.1 if seconds_left < 2.0 else 1.0


def _own_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of one process, without its children."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(CPU seconds of the process, of all its descendants alive now): user + system."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = all_stat_fields()
    cpu = {p: (int(fields[11]) + int(fields[12])) / tick for p, fields in stats.items()}
    return cpu.get(pid, 0.0), sum(cpu[d] for d in descendants(pid, stats))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--workers", type=int, default=None, help="extract.workers (default: the service's)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="service only (development)")
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also time the service's own extraction (extract_article + enrich) in a bare "
        "pool of 2: the most the service could reach",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON result only")
    args = parser.parse_args()

    port = free_port()
    pages = [page(i, args.seed, port) for i in range(args.pages)]
    sizes = [len(p) for p in pages]
    feeds = math.ceil(args.pages / ITEMS_PER_FEED)
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(port, pages, feeds), daemon=True
    )
    server.start()
    assert server.pid is not None
    try:
        if args.skip_baseline:
            base, with_text = float("nan"), -1
        else:
            base, with_text = baseline(pages)
        ceiling = baseline(pages, _service_extract)[0] if args.ceiling else None
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as workdir:
            svc = asyncio.run(
                service(port, args.pages, feeds, Path(workdir), args.workers, server.pid)
            )
    finally:
        server.terminate()
    result = {
        "benchmark": "backfill",
        "pages": args.pages,
        "feeds": feeds,
        "page_kb_min_mean_max": [
            round(min(sizes) / 1000),
            round(sum(sizes) / len(sizes) / 1000),
            round(max(sizes) / 1000),
        ],
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "extract_workers": args.workers,
        "baseline_pages_per_s": round(base, 1),
        "baseline_pages_with_text": with_text,
        "ceiling_pages_per_s": round(ceiling, 1) if ceiling else None,
        "service_pages_per_s": round(svc["pages_per_s"], 1),
        "service_seconds": round(svc["seconds"], 1),
        "service_first_event_seconds": round(svc["first_event_seconds"], 2),
        "service_pages_per_s_from_first_event": round(svc["pages_per_s_from_first_event"], 1),
        "events_in_topic": svc["events_in_topic"],
        "events_with_feed_text_only": svc["fallbacks"],
        "service_peak_rss_mb": round(svc["peak_rss_mb"], 1),
        "service_cpu_ms_per_page_main_workers": [round(x, 2) for x in svc["cpu_ms_per_page"]],
        "cpu_ms_per_page_site_broker": [round(x, 2) for x in svc["site_broker_cpu_ms_per_page"]],
        "ratio": round(svc["pages_per_s"] / base, 3) if base == base else None,
    }
    print(json.dumps(result))
    if args.json:
        return
    cpu = result["service_cpu_ms_per_page_main_workers"]
    others = result["cpu_ms_per_page_site_broker"]
    print(
        f"pages: {args.pages} in {feeds} feeds, {result['page_kb_min_mean_max']} KB "
        "(min/mean/max); "
        f"machine: {os.cpu_count()} cores, {result['cpu']}"
    )
    print(f"baseline (trafilatura.extract, pool of 2): {base:7.1f} pages/s")
    if ceiling:
        print(
            f"ceiling  (extract_article + enrich, pool of 2): {ceiling:7.1f} pages/s "
            f"({ceiling / base:.2f}x baseline; the service at "
            f"{svc['pages_per_s'] / ceiling:.2f}x of it)"
        )
    print(
        f"service  (monitor run, to the {args.pages}th ack): {svc['pages_per_s']:7.1f} pages/s "
        f"({svc['seconds']:.1f} s; {svc['pages_per_s_from_first_event']:.1f}/s from the first "
        f"event at {svc['first_event_seconds']:.1f} s)   ratio {svc['pages_per_s'] / base:.2f}x   "
        f"events in topic {svc['events_in_topic']} ({svc['fallbacks']} without page text)   "
        f"peak RSS {svc['peak_rss_mb']:.0f} MB   CPU ms/page: main {cpu[0]:.1f}, "
        f"workers {cpu[1]:.1f}; sharing the cores: loopback site {others[0]:.1f}, "
        f"broker {others[1]:.1f}"
    )


if __name__ == "__main__":
    main()
