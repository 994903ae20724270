"""Tests of monitor.fetch against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import functools
import gzip
import itertools
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import brotli  # type: ignore[import-untyped]  # ships no type hints
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy
from prometheus_client import REGISTRY

from monitor.fetch import (
    ACCEPT_ENCODING,
    ERROR_KINDS,
    FEED_ACCEPT,
    PAGE_ACCEPT,
    Fetcher,
    HostLimits,
    HostSlots,
    parse_retry_after,
)
from monitor.models import FetchResult

UA = "statement-monitor-test/1.0 (+https://example.org/bot)"
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
ETAG = '"v1"'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
MB = 1024 * 1024


@functools.cache
def gzip_bomb() -> bytes:
    """50 MB of zeros, gzipped to about 50 kB."""
    return gzip.compress(bytes(50 * MB), compresslevel=9)


@dataclass
class Seen:
    """What the test server saw."""

    headers: list[CIMultiDictProxy[str]] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    starts: list[float] = field(default_factory=list)


# --- the test server -------------------------------------------------------------------------


def make_app(seen: Seen) -> web.Application:
    async def feed(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == ETAG:
            # Validators omitted on purpose: the fetcher must keep the ones it sent.
            return web.Response(status=304)
        return web.Response(
            body=FEED,
            content_type="application/rss+xml",
            headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED},
        )

    async def feed_linked(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304, headers={"Link": '</hub>; rel="hub"'})
        links = '</websub/hub>; rel="hub", <https://gov.example/feed.xml>; rel="self"'
        return web.Response(body=FEED, headers={"ETag": ETAG, "Link": links})

    async def feed_new_etag(request: web.Request) -> web.StreamResponse:
        return web.Response(status=304, headers={"ETag": '"v2"'})

    async def encoded(request: web.Request) -> web.StreamResponse:
        coding = request.match_info["coding"]
        body = gzip.compress(FEED) if coding == "gzip" else brotli.compress(FEED)
        return web.Response(
            body=body, headers={"Content-Encoding": coding, "Content-Type": "application/rss+xml"}
        )

    async def bomb(request: web.Request) -> web.StreamResponse:
        return web.Response(body=gzip_bomb(), headers={"Content-Encoding": "gzip"})

    async def big(request: web.Request) -> web.StreamResponse:
        """2 MB, chunked: no Content-Length to reject early."""
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(32):
                await response.write(b"x" * (64 * 1024))
        except ConnectionResetError:
            pass
        return response

    async def exact(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"y" * int(request.query["n"]))

    async def declared(request: web.Request) -> web.StreamResponse:
        """Declares 10 MB, then drips: only an early reject answers quickly."""
        response = web.StreamResponse()
        response.content_length = 10 * MB
        await response.prepare(request)
        await drip(response)
        return response

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await drip(response)
        return response

    async def status(request: web.Request) -> web.StreamResponse:
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        body = b"e" * int(request.query.get("size", "5"))
        return web.Response(status=int(request.match_info["code"]), body=body, headers=headers)

    async def chain(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=b"done")
        raise web.HTTPFound(f"/chain/{n - 1}")

    async def loop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/loop")

    async def no_location(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302)

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"ok")

    async def busy(request: web.Request) -> web.StreamResponse:
        seen.starts.append(time.monotonic())
        seen.inflight += 1
        seen.max_inflight = max(seen.max_inflight, seen.inflight)
        try:
            await asyncio.sleep(float(request.query.get("hold", "0.2")))
        finally:
            seen.inflight -= 1
        return web.Response(body=b"ok")

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.headers.append(request.headers)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/feed", feed)
    app.router.add_get("/feed-new-etag", feed_new_etag)
    app.router.add_get("/feed-linked", feed_linked)
    app.router.add_get("/encoded/{coding}", encoded)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/big", big)
    app.router.add_get("/exact", exact)
    app.router.add_get("/declared", declared)
    app.router.add_get("/slow", slow)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/loop", loop)
    app.router.add_get("/no-location", no_location)
    app.router.add_get("/echo", echo)
    app.router.add_get("/busy", busy)
    return app


async def drip(response: web.StreamResponse) -> None:
    """A byte every 50 ms for up to 10 s; stops as soon as the client is gone."""
    try:
        for _ in range(200):
            await response.write(b".")
            await asyncio.sleep(0.05)
    except ConnectionResetError:
        pass


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def server(seen: Seen) -> AsyncIterator[TestServer]:
    test_server = TestServer(make_app(seen), host="127.0.0.1", port=0)
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def fetcher(server: TestServer) -> AsyncIterator[Fetcher]:
    # The test server is a configured source: its origin is trusted, loopback or not.
    async with Fetcher(user_agent=UA, trusted_origins=[origin(server)]) as f:
        yield f


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


def origin(server: TestServer) -> str:
    return url(server, "/")


async def get(fetcher: Fetcher, target: str, **kwargs: Any) -> FetchResult:
    options: dict[str, Any] = {
        "source_id": "src",
        "kind": "feed",
        "timeout": 5.0,
        "max_bytes": MB,
    }
    options.update(kwargs)
    return await fetcher.fetch(target, **options)


# --- success, validators, encodings --------------------------------------------------------


async def test_200_returns_body_and_validators(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/feed"))

    assert result.ok and result.error is None
    assert result.status == 200
    assert result.body == FEED
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED
    assert result.content_type is not None
    assert result.content_type.startswith("application/rss+xml")
    assert result.final_url == result.url == url(server, "/feed")
    assert result.source_id == "src"
    assert result.elapsed > 0
    assert result.fetched_at.tzinfo is not None


async def test_conditional_request_answered_304_keeps_validators(
    server: TestServer, fetcher: Fetcher, seen: Seen
) -> None:
    result = await get(fetcher, url(server, "/feed"), etag=ETAG, last_modified=LAST_MODIFIED)

    assert seen.headers[-1]["If-None-Match"] == ETAG
    assert seen.headers[-1]["If-Modified-Since"] == LAST_MODIFIED
    assert result.status == 304 and result.not_modified
    assert result.error is None
    assert result.body == b""
    assert result.etag == ETAG  # the 304 omitted it: the one sent still holds
    assert result.last_modified == LAST_MODIFIED


async def test_websub_links_are_read_from_a_200_and_made_absolute(
    server: TestServer, fetcher: Fetcher
) -> None:
    result = await get(fetcher, url(server, "/feed-linked"))
    assert result.hub == url(server, "/websub/hub")
    assert result.self_link == "https://gov.example/feed.xml"
    plain = await get(fetcher, url(server, "/feed"))
    assert plain.hub is None and plain.self_link is None
    # The 304 path reads no Link header: subscribing happens after a full fetch.
    cached = await get(fetcher, url(server, "/feed-linked"), etag=ETAG)
    assert cached.not_modified and cached.hub is None


async def test_304_with_new_etag_returns_it(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/feed-new-etag"), etag=ETAG)

    assert result.not_modified
    assert result.etag == '"v2"'


async def test_unconditional_request_sends_no_validators(
    server: TestServer, fetcher: Fetcher, seen: Seen
) -> None:
    await get(fetcher, url(server, "/feed"))

    assert "If-None-Match" not in seen.headers[-1]
    assert "If-Modified-Since" not in seen.headers[-1]


@pytest.mark.parametrize("coding", ["gzip", "br"])
async def test_encoded_body_is_decoded(server: TestServer, fetcher: Fetcher, coding: str) -> None:
    result = await get(fetcher, url(server, f"/encoded/{coding}"))

    assert result.ok
    assert result.body == FEED


async def test_request_headers(server: TestServer, fetcher: Fetcher, seen: Seen) -> None:
    await get(fetcher, url(server, "/echo"), kind="feed")
    await get(fetcher, url(server, "/echo"), kind="page")
    await get(fetcher, url(server, "/echo"), accept="text/plain")

    feed, page, custom = seen.headers
    assert feed["User-Agent"] == UA
    assert feed["Accept-Encoding"] == ACCEPT_ENCODING == "gzip, deflate, br"
    assert feed["Accept"] == FEED_ACCEPT
    assert page["Accept"] == PAGE_ACCEPT
    assert page["User-Agent"] == UA
    assert custom["Accept"] == "text/plain"


# --- caps and deadlines -------------------------------------------------------------------------


async def test_body_over_cap_is_cut(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/big"), max_bytes=MB)

    assert result.status == 200
    assert result.error is not None
    assert result.error.kind == "too_large"
    assert result.error.retriable is False
    assert result.body == b""
    assert not result.ok


async def test_body_of_exactly_the_cap_is_accepted(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/exact?n=1000"), max_bytes=1000)

    assert result.ok
    assert len(result.body) == 1000


async def test_declared_length_over_cap_is_rejected_early(
    server: TestServer, fetcher: Fetcher
) -> None:
    started = time.monotonic()
    result = await get(fetcher, url(server, "/declared"), max_bytes=MB, timeout=5.0)

    assert result.error is not None
    assert result.error.kind == "too_large"
    assert "Content-Length" in result.error.message
    assert time.monotonic() - started < 1.0  # no waiting for a body that drips


async def test_gzip_bomb_is_cut_without_buffering_it(server: TestServer, fetcher: Fetcher) -> None:
    gzip_bomb()  # compress outside the measurement
    tracemalloc.start()
    try:
        result = await get(fetcher, url(server, "/bomb"), max_bytes=MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.error is not None
    assert result.error.kind == "too_large"
    assert result.body == b""
    # The server's 50 kB body plus about the cap and a few chunks, not 50 MB.
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"


async def test_slow_drip_is_cut_by_total_timeout(server: TestServer, fetcher: Fetcher) -> None:
    started = time.monotonic()
    result = await get(fetcher, url(server, "/slow"), timeout=0.5)
    took = time.monotonic() - started

    assert result.error is not None
    assert result.error.kind == "timeout"
    assert result.error.retriable is True
    assert result.status == 200  # the headers did arrive
    assert result.body == b""
    assert 0.4 < took < 1.5


# --- network failures ---------------------------------------------------------------------------


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    target = f"http://127.0.0.1:{port}/feed"
    async with Fetcher(user_agent=UA, trusted_origins=[target]) as fetcher:
        result = await get(fetcher, target)

    assert result.status == 0
    assert result.error is not None
    assert result.error.kind == "connect"
    assert result.error.retriable is True
    assert result.final_url == result.url


@pytest.mark.parametrize("bad", ["not a url", "ftp://example.org/feed", "http://", "/relative"])
async def test_invalid_url(fetcher: Fetcher, bad: str) -> None:
    result = await get(fetcher, bad)

    assert result.status == 0
    assert result.error is not None
    assert result.error.kind == "invalid_url"
    assert result.error.retriable is False


# --- statuses and Retry-After -------------------------------------------------------------------


async def test_500_is_retriable_http_5xx(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/status/500"))

    assert result.status == 500
    assert result.error is not None
    assert result.error.kind == "http_5xx"
    assert result.error.retriable is True
    assert result.body == b"eeeee"


async def test_404_is_not_retriable(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/status/404"))

    assert result.status == 404
    assert result.error is not None
    assert result.error.kind == "http_4xx"
    assert result.error.retriable is False


async def test_408_is_retriable(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/status/408"))

    assert result.error is not None
    assert (result.error.kind, result.error.retriable) == ("http_4xx", True)


async def test_error_body_is_capped(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/status/503?size=5000"), max_bytes=100)

    assert result.error is not None
    assert result.error.kind == "http_5xx"  # the status matters more than the size
    assert result.body == b"e" * 100


@pytest.mark.parametrize(("code", "kind"), [(429, "http_429"), (503, "http_5xx")])
async def test_retry_after_seconds(
    server: TestServer, fetcher: Fetcher, code: int, kind: str
) -> None:
    result = await get(fetcher, url(server, f"/status/{code}?retry_after=120"))

    assert result.status == code
    assert result.error is not None
    assert result.error.kind == kind
    assert result.error.retriable is True
    assert result.retry_after == 120.0


@pytest.mark.parametrize("code", [429, 503])
async def test_retry_after_http_date(server: TestServer, fetcher: Fetcher, code: int) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    header = email.utils.format_datetime(when, usegmt=True)
    target = server.make_url(f"/status/{code}").with_query(retry_after=header)
    result = await get(fetcher, str(target))

    assert result.retry_after is not None
    assert 85 <= result.retry_after <= 90


async def test_no_retry_after_is_none(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/status/503"))

    assert result.retry_after is None


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:00 GMT", now) == 60.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("nan", now) is None
    assert parse_retry_after("", now) is None


# --- redirects ----------------------------------------------------------------------------------


async def test_redirect_chain_is_followed(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/chain/5"))  # exactly max_redirects (5) hops

    assert result.ok
    assert result.body == b"done"
    assert result.url == url(server, "/chain/5")
    assert result.final_url == url(server, "/chain/0")


async def test_too_many_redirects(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/chain/6"))

    assert result.error is not None
    assert result.error.kind == "redirects"
    assert result.error.retriable is False
    assert result.final_url == url(server, "/chain/1")  # where it gave up


async def test_redirect_loop_ends(server: TestServer, fetcher: Fetcher) -> None:
    result = await asyncio.wait_for(get(fetcher, url(server, "/loop")), timeout=3)

    assert result.error is not None
    assert result.error.kind == "redirects"


async def test_redirect_without_location(server: TestServer, fetcher: Fetcher) -> None:
    result = await get(fetcher, url(server, "/no-location"))

    assert result.status == 302
    assert result.error is not None
    assert result.error.kind == "redirects"


async def test_redirects_disabled(server: TestServer) -> None:
    async with Fetcher(
        user_agent=UA, max_redirects=0, trusted_origins=[origin(server)]
    ) as no_follow:
        result = await get(no_follow, url(server, "/chain/1"))

    assert result.status == 302
    assert result.error is not None
    assert result.error.kind == "redirects"


# --- per-host slots -----------------------------------------------------------------------------


async def test_host_concurrency_is_capped(server: TestServer, seen: Seen) -> None:
    async with Fetcher(
        user_agent=UA, default_limits=HostLimits(connections=2), trusted_origins=[origin(server)]
    ) as f:
        # Six sources on one host: the limit is the host's, not the source's.
        results = await asyncio.gather(
            *(get(f, url(server, "/busy"), source_id=f"src-{i}") for i in range(6))
        )

    assert all(r.ok for r in results)
    assert len(seen.starts) == 6
    assert seen.max_inflight == 2


async def test_host_override_applies(server: TestServer, seen: Seen) -> None:
    async with Fetcher(
        user_agent=UA,
        default_limits=HostLimits(connections=4),
        host_limits={"127.0.0.1": HostLimits(connections=1)},
        trusted_origins=[origin(server)],
    ) as f:
        await asyncio.gather(*(get(f, url(server, "/busy?hold=0.1")) for _ in range(3)))

    assert seen.max_inflight == 1


async def test_hosts_have_separate_slots(server: TestServer, seen: Seen) -> None:
    by_name = str(server.make_url("/busy").with_host("localhost"))
    async with Fetcher(
        user_agent=UA,
        default_limits=HostLimits(connections=1),
        trusted_origins=[origin(server), by_name],
    ) as f:
        results = await asyncio.gather(
            get(f, url(server, "/busy")),
            get(f, url(server, "/busy")),
            get(f, by_name),
            get(f, by_name),
        )

    assert all(r.ok for r in results)
    assert seen.max_inflight == 2  # one per host
    assert len(f.hosts) == 2


async def test_host_delay_spaces_starts(server: TestServer, seen: Seen) -> None:
    limits = HostLimits(connections=4, delay=0.2)
    async with Fetcher(user_agent=UA, default_limits=limits, trusted_origins=[origin(server)]) as f:
        await asyncio.gather(*(get(f, url(server, "/busy?hold=0")) for _ in range(4)))

    starts = sorted(seen.starts)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.15, gaps


async def test_slot_is_released_after_errors(server: TestServer) -> None:
    async with Fetcher(
        user_agent=UA, default_limits=HostLimits(connections=1), trusted_origins=[origin(server)]
    ) as f:
        for _ in range(3):
            result = await get(f, url(server, "/slow"), timeout=0.2)
            assert result.error is not None and result.error.kind == "timeout"
        result = await asyncio.wait_for(get(f, url(server, "/feed")), timeout=2)

    assert result.ok


def test_host_slots_are_lazy_and_per_host() -> None:
    slots = HostSlots(HostLimits(connections=3), {"Gov.Example": HostLimits(connections=1)})

    assert len(slots) == 0
    assert slots.slot("gov.example") is slots.slot("gov.example")
    assert slots.slot("gov.example").limits.connections == 1
    assert slots.slot("other.example").limits.connections == 3
    assert len(slots) == 2


def test_host_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="connections"):
        HostLimits(connections=0)
    with pytest.raises(ValueError, match="delay"):
        HostLimits(delay=-1)


# --- lifecycle and metrics ----------------------------------------------------------------------


async def test_fetch_before_start_raises() -> None:
    with pytest.raises(RuntimeError, match="start"):
        await Fetcher(user_agent=UA).fetch(
            "http://127.0.0.1/", source_id="s", kind="feed", timeout=1, max_bytes=1
        )


async def test_duration_is_observed_by_kind(server: TestServer, fetcher: Fetcher) -> None:
    def count(kind: str) -> float:
        name = "statement_monitor_fetch_duration_seconds_count"
        return REGISTRY.get_sample_value(name, {"kind": kind}) or 0.0

    feeds, pages = count("feed"), count("page")
    await get(fetcher, url(server, "/feed"), kind="feed")
    await get(fetcher, url(server, "/status/500"), kind="page")

    assert count("feed") == feeds + 1
    assert count("page") == pages + 1


def test_error_kinds_are_the_documented_set() -> None:
    assert {
        "timeout",
        "connect",
        "dns",
        "reset",
        "tls",
        "redirects",
        "refused",
        "too_large",
        "http_4xx",
        "http_5xx",
        "http_429",
        "invalid_url",
        "other",
    } == ERROR_KINDS
