"""Tests of the fetcher's address policy (monitor.fetch.guard) and of permanent redirects.

Real aiohttp servers on loopback. The "trusted" site, a configured source, is
served on 127.0.0.1; the "other" site, an origin nobody configured, on
127.0.0.2 (on Linux the whole of 127/8 answers on lo). Both are loopback, so
the fetcher must reach the first and refuse the second.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from yarl import URL

from monitor.fetch import ERROR_KINDS, Fetcher, HostLimits
from monitor.fetch.guard import (
    REFUSAL_REASONS,
    AddressGuard,
    AddressRefusedError,
    Refusal,
    address_class,
    origin_key,
)
from monitor.models import FetchResult

UA = "statement-monitor-test/1.0 (+https://example.org/bot)"
ETAG = '"v1"'


# --- the sites ----------------------------------------------------------------------------------


@dataclass
class Site:
    """A running test server and the paths it was asked for."""

    server: TestServer
    paths: list[str] = field(default_factory=list)
    busy: asyncio.Event = field(default_factory=asyncio.Event)  # set when /busy is entered

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def origin(self) -> str:
        return self.url("/")

    @property
    def port(self) -> int:
        port = self.server.port
        assert port is not None
        return port

    def redirect(self, target: str, code: int = 302, delay: float = 0.0) -> str:
        """A URL on this site that answers `code` with `Location: target`, after `delay` s."""
        query = {"u": target, "code": str(code), "delay": str(delay)}
        return str(self.server.make_url("/to").with_query(query))


def make_app(paths: list[str], busy_entered: asyncio.Event) -> web.Application:
    async def feed(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304)
        return web.Response(body=b"<rss/>", headers={"ETag": ETAG})

    async def to(request: web.Request) -> web.StreamResponse:
        code = int(request.query.get("code", "302"))
        await asyncio.sleep(float(request.query.get("delay", "0")))
        return web.Response(status=code, headers={"Location": request.query["u"]})

    async def chain(request: web.Request) -> web.StreamResponse:
        """/r/301/308/ answers 301 to /r/308/, which answers 308 to /r/, which answers 200."""
        code, _, rest = request.match_info["tail"].partition("/")
        if not code:
            return web.Response(body=b"done")
        return web.Response(status=int(code), headers={"Location": f"/r/{rest}"})

    async def pingpong(request: web.Request) -> web.StreamResponse:
        """Redirects to the same path on `peer`, naming this site as the next peer."""
        here = f"http://{request.host}"
        back = URL(request.query["peer"]).with_path("/pingpong").with_query(peer=here)
        return web.Response(status=302, headers={"Location": str(back)})

    async def busy(request: web.Request) -> web.StreamResponse:
        busy_entered.set()
        await asyncio.sleep(float(request.query.get("hold", "0.2")))
        return web.Response(body=b"ok")

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(200):
                await response.write(b".")
                await asyncio.sleep(0.05)
        except ConnectionResetError:
            pass
        return response

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"ok")

    async def self301(request: web.Request) -> web.StreamResponse:
        return web.Response(status=301, headers={"Location": "/self301"})

    async def form(request: web.Request) -> web.StreamResponse:
        """Echoes a posted form, urlencoded, keys sorted."""
        data = await request.post()
        return web.Response(body=urlencode(sorted((k, str(v)) for k, v in data.items())).encode())

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        paths.append(request.path_qs)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/feed", feed)
    app.router.add_route("*", "/to", to)
    app.router.add_post("/form", form)
    app.router.add_get("/r/{tail:.*}", chain)
    app.router.add_get("/pingpong", pingpong)
    app.router.add_get("/busy", busy)
    app.router.add_get("/slow", slow)
    app.router.add_get("/echo", echo)
    app.router.add_get("/self301", self301)
    return app


async def serve(host: str) -> Site:
    paths: list[str] = []
    busy = asyncio.Event()
    server = TestServer(make_app(paths, busy), host=host, port=0)
    await server.start_server()
    return Site(server, paths, busy)


@pytest.fixture
async def trusted() -> AsyncIterator[Site]:
    site = await serve("127.0.0.1")
    yield site
    await site.server.close()


@pytest.fixture
async def other() -> AsyncIterator[Site]:
    site = await serve("127.0.0.2")
    yield site
    await site.server.close()


@pytest.fixture
async def fetcher(trusted: Site) -> AsyncIterator[Fetcher]:
    """The fetcher as the service builds it: the source's origin trusted, nothing else."""
    async with Fetcher(user_agent=UA, trusted_origins=[trusted.origin]) as f:
        yield f


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hosts aiohttp opened (or tried to open) a connection to, in order."""
    opened: list[str] = []
    original = aiohttp.TCPConnector._create_connection

    async def counting(self: aiohttp.TCPConnector, req: Any, *args: Any) -> Any:
        opened.append(req.url.raw_host)
        return await original(self, req, *args)

    monkeypatch.setattr(aiohttp.TCPConnector, "_create_connection", counting)
    yield opened


class FakeResolver(AbstractResolver):
    """Answers from a table, as a DNS server under an attacker's control would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append((host, port))
        if host not in self.table:
            raise OSError(f"{host} does not resolve")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


async def get(fetcher: Fetcher, target: str, **kwargs: Any) -> FetchResult:
    options: dict[str, Any] = {
        "source_id": "guard",
        "kind": "page",
        "timeout": 5.0,
        "max_bytes": 1 << 20,
    }
    options.update(kwargs)
    return await asyncio.wait_for(fetcher.fetch(target, **options), timeout=10)


def refused_total(source_id: str, reason: str) -> float:
    labels = {"source_id": source_id, "reason": reason}
    return REGISTRY.get_sample_value("statement_monitor_fetch_refused_total", labels) or 0.0


def assert_refused(result: FetchResult, reason: str) -> None:
    assert result.error is not None, result
    assert result.error.kind == "refused", result.error
    assert result.error.retriable is False
    assert result.status == 0
    assert result.body == b""
    assert not result.ok
    assert "set fetch.allow_private_networks: true to allow" in result.error.message
    words = {"link_local": "link-local", "cgnat": "carrier-grade NAT", "metadata": "cloud metadata"}
    assert f"{words.get(reason, reason)} address" in result.error.message, result.error.message


# --- trusted origins ----------------------------------------------------------------------------


async def test_trusted_origin_is_fetched(trusted: Site, fetcher: Fetcher) -> None:
    fresh = await get(fetcher, trusted.url("/feed"))
    again = await get(fetcher, trusted.url("/feed"), etag=ETAG)
    page = await get(fetcher, trusted.redirect("/echo"))  # a page on the same origin

    assert fresh.ok and fresh.status == 200 and fresh.body == b"<rss/>"
    assert again.status == 304 and again.error is None and again.etag == ETAG
    assert page.ok and page.body == b"ok" and page.final_url == trusted.url("/echo")
    assert len(trusted.paths) == 4


async def test_trusted_name_is_not_filtered(trusted: Site) -> None:
    """Trust is by (host, port): a configured origin on a name that resolves to loopback works."""
    resolver = FakeResolver({"feeds.intranet.test": ["127.0.0.1"]})
    origin = f"http://feeds.intranet.test:{trusted.port}"
    async with Fetcher(user_agent=UA, trusted_origins=[origin], resolver=resolver) as f:
        result = await get(f, f"{origin}/feed")

    assert result.ok, result.error
    assert resolver.asked == [("feeds.intranet.test", trusted.port)]
    assert trusted.paths == ["/feed"]


# --- POST (WebSub hub requests): the form stays on its origin ----------------------------------

SECRET_FORM = {"hub.mode": "subscribe", "hub.secret": "s3cret"}


async def post(fetcher: Fetcher, target: str, source_id: str = "poster") -> FetchResult:
    return await asyncio.wait_for(
        fetcher.post_form(target, SECRET_FORM, source_id=source_id, timeout=5.0), timeout=10
    )


@pytest.mark.parametrize("code", [307, 308])
async def test_post_follows_307_and_308_on_its_origin_with_the_form(
    trusted: Site, fetcher: Fetcher, code: int
) -> None:
    result = await post(fetcher, trusted.redirect("/form", code))
    assert result.ok, result.error
    assert result.body == b"hub.mode=subscribe&hub.secret=s3cret"
    assert result.final_url == trusted.url("/form")


@pytest.mark.parametrize("code", [307, 308])
async def test_post_redirect_to_an_untrusted_loopback_origin_is_refused(
    trusted: Site, other: Site, fetcher: Fetcher, code: int
) -> None:
    before = refused_total("poster", "loopback")
    result = await post(fetcher, trusted.redirect(other.url("/form"), code))
    assert_refused(result, "loopback")
    assert refused_total("poster", "loopback") == before + 1
    assert other.paths == []


@pytest.mark.parametrize("code", [307, 308])
async def test_post_is_never_resent_to_another_origin_even_a_trusted_one(
    trusted: Site, other: Site, code: int
) -> None:
    before = refused_total("poster", "post_redirect")
    async with Fetcher(user_agent=UA, trusted_origins=[trusted.origin, other.origin]) as fetcher:
        result = await post(fetcher, trusted.redirect(other.url("/form"), code))
    assert result.error is not None and result.error.kind == "refused"
    assert result.status == 0 and not result.ok
    assert f"HTTP {code} redirect of a POST to {other.url('/form')} refused" in (
        result.error.message
    )
    assert refused_total("poster", "post_redirect") == before + 1
    assert other.paths == []


@pytest.mark.parametrize("code", [301, 302, 303])
async def test_post_is_never_turned_into_a_get(
    trusted: Site, fetcher: Fetcher, code: int
) -> None:
    before = refused_total("poster", "post_redirect")
    result = await post(fetcher, trusted.redirect("/echo", code))
    assert result.error is not None and result.error.kind == "refused"
    assert refused_total("poster", "post_redirect") == before + 1
    assert [p.partition("?")[0] for p in trusted.paths] == ["/to"]


async def test_post_to_a_forbidden_literal_is_refused_without_connecting(
    fetcher: Fetcher, connections: list[str]
) -> None:
    before = refused_total("poster", "loopback")
    result = await post(fetcher, "http://[::1]:9/hub")
    assert_refused(result, "loopback")
    assert refused_total("poster", "loopback") == before + 1
    assert connections == []


# --- refusals: other origins --------------------------------------------------------------------


async def test_redirect_to_other_loopback_origin_is_refused(
    trusted: Site, other: Site, fetcher: Fetcher
) -> None:
    before = refused_total("redirected", "loopback")
    start = trusted.redirect(other.url("/feed"))

    result = await get(fetcher, start, source_id="redirected")

    assert_refused(result, "loopback")
    assert result.error is not None
    assert result.error.message.startswith(f"redirect to {other.url('/feed')} refused:")
    assert result.final_url == start  # the last URL that answered
    assert refused_total("redirected", "loopback") == before + 1
    assert other.paths == []  # never reached
    assert len(trusted.paths) == 1


async def test_discovered_link_to_other_loopback_origin_is_refused(
    other: Site, fetcher: Fetcher, connections: list[str]
) -> None:
    before = refused_total("discovered", "loopback")

    result = await get(fetcher, other.url("/feed"), source_id="discovered")

    assert_refused(result, "loopback")
    assert result.error is not None
    assert result.error.message.startswith(f"{other.url('/feed')} refused:")
    assert result.final_url == result.url == other.url("/feed")
    assert result.elapsed == 0.0
    assert refused_total("discovered", "loopback") == before + 1
    assert other.paths == []
    assert connections == []


async def test_same_host_other_port_is_another_origin(trusted: Site, fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = await get(fetcher, trusted.redirect(f"http://127.0.0.1:{port}/admin"))

    assert_refused(result, "loopback")


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://169.254.10.10/", "link_local"),
        ("http://10.0.0.5/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://100.64.0.1/", "cgnat"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://0.0.0.0:{port}/feed", "unspecified"),
        ("http://127.0.0.1:{other_port}/feed", "loopback"),
        ("http://[::1]:{port}/feed", "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/feed", "loopback"),
        ("http://[::ffff:a00:5]/", "private"),
        ("http://[64:ff9b::7f00:1]:{port}/feed", "loopback"),
        ("http://[fe80::1]/", "link_local"),
        ("http://[fd00::1]/", "private"),
        ("http://[fd00:ec2::254]/", "metadata"),
    ],
)
async def test_redirect_to_forbidden_literal_is_refused_without_connecting(
    trusted: Site, fetcher: Fetcher, connections: list[str], location: str, reason: str
) -> None:
    # Ports that would reach the trusted server, were the policy not there.
    target = location.format(port=trusted.port, other_port=trusted.port + 1)
    before = refused_total("literal", reason)

    result = await get(fetcher, trusted.redirect(target), source_id="literal", timeout=2.0)

    assert_refused(result, reason)
    assert refused_total("literal", reason) == before + 1
    assert connections == ["127.0.0.1"]  # the redirecting hop, and nothing after it
    assert len(trusted.paths) == 1


async def test_name_resolving_to_loopback_is_refused_at_resolve_time(
    trusted: Site, fetcher: Fetcher
) -> None:
    """The name localhost is not the trusted 127.0.0.1: it is judged by its addresses."""
    before = refused_total("byname", "loopback")
    target = f"http://localhost:{trusted.port}/feed"

    direct = await get(fetcher, target, source_id="byname")
    redirected = await get(fetcher, trusted.redirect(target), source_id="byname")

    for result in (direct, redirected):
        assert_refused(result, "loopback")
        assert result.error is not None
        assert "localhost resolves to 127.0.0.1" in result.error.message
    assert redirected.error is not None
    assert redirected.error.message.startswith("redirect to ")
    assert refused_total("byname", "loopback") == before + 2
    assert trusted.paths == [URL(trusted.redirect(target)).path_qs]  # /feed never reached


async def test_rebinding_name_is_refused_at_resolve_time(trusted: Site) -> None:
    """A public-looking name whose DNS answers 127.0.0.1 (DNS rebinding)."""
    resolver = FakeResolver({"news.rebind.test": ["127.0.0.1"]})
    target = f"http://news.rebind.test:{trusted.port}/feed"
    async with Fetcher(user_agent=UA, trusted_origins=[trusted.origin], resolver=resolver) as f:
        first = await get(f, target, source_id="rebind")
        second = await get(f, target, source_id="rebind")

    for result in (first, second):
        assert_refused(result, "loopback")
    # The check happened at resolve time, each time: a refusal is never cached.
    assert resolver.asked == [("news.rebind.test", trusted.port)] * 2
    assert trusted.paths == []


async def test_unresolvable_name_is_still_a_dns_error(trusted: Site) -> None:
    resolver = FakeResolver({})
    async with Fetcher(user_agent=UA, trusted_origins=[trusted.origin], resolver=resolver) as f:
        result = await get(f, "http://nowhere.test/feed")

    assert result.error is not None
    assert result.error.kind == "dns"


# --- allow_private_networks ---------------------------------------------------------------------


async def test_allow_private_networks_follows_the_same_redirects(
    trusted: Site, other: Site
) -> None:
    before = sum(refused_total("open", reason) for reason in REFUSAL_REASONS)
    async with Fetcher(
        user_agent=UA, trusted_origins=[trusted.origin], allow_private_networks=True
    ) as f:
        redirected = await get(f, trusted.redirect(other.url("/feed")), source_id="open")
        direct = await get(f, other.url("/echo"), source_id="open")
        mapped = await get(
            f, trusted.redirect(f"http://[::ffff:127.0.0.1]:{trusted.port}/echo"), source_id="open"
        )
        by_name = await get(f, f"http://localhost:{trusted.port}/echo", source_id="open")

    for result in (redirected, direct, mapped, by_name):
        assert result.ok, result.error
    assert redirected.final_url == other.url("/feed")
    assert other.paths == ["/feed", "/echo"]
    assert sum(refused_total("open", reason) for reason in REFUSAL_REASONS) == before


# --- permanent redirects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "permanent", "final"),
    [
        ("/r/301/308/", "/r/", "/r/"),  # all permanent: where the chain ended
        ("/r/308/", "/r/", "/r/"),
        ("/r/301/302/", "/r/302/", "/r/"),  # permanent up to the 302
        ("/r/301/301/307/301/", "/r/307/301/", "/r/"),
        ("/r/302/301/", None, "/r/"),  # a temporary redirect first: not moved
        ("/r/307/", None, "/r/"),
        ("/r/", None, "/r/"),  # no redirect at all
    ],
)
async def test_permanent_redirect(
    trusted: Site, fetcher: Fetcher, start: str, permanent: str | None, final: str
) -> None:
    result = await get(fetcher, trusted.url(start))

    assert result.ok, result.error
    assert result.url == trusted.url(start)
    assert result.final_url == trusted.url(final)
    assert result.permanent_redirect == (None if permanent is None else trusted.url(permanent))


async def test_permanent_redirect_to_another_origin(trusted: Site, other: Site) -> None:
    async with Fetcher(user_agent=UA, trusted_origins=[trusted.origin, other.origin]) as f:
        result = await get(f, trusted.redirect(other.url("/feed"), code=301))

    assert result.ok
    assert result.permanent_redirect == result.final_url == other.url("/feed")


async def test_permanent_redirect_is_reported_when_the_target_fails(
    trusted: Site, other: Site, fetcher: Fetcher
) -> None:
    result = await get(fetcher, trusted.redirect(other.url("/feed"), code=308))

    assert_refused(result, "loopback")
    assert result.permanent_redirect == other.url("/feed")  # what the server said, still


async def test_a_301_back_to_the_url_is_not_a_move(trusted: Site, fetcher: Fetcher) -> None:
    result = await get(fetcher, trusted.url("/self301"))

    assert result.error is not None and result.error.kind == "redirects"
    assert result.status == 301
    assert result.permanent_redirect is None  # the permanent run leads back to `url`


# --- redirect cap, loops, slots, deadline -------------------------------------------------------


async def test_redirect_cap_still_ends_with_redirects(trusted: Site, fetcher: Fetcher) -> None:
    five = await get(fetcher, trusted.url("/r/302/302/302/302/302/"))
    six = await get(fetcher, trusted.url("/r/302/302/302/302/302/302/"))

    assert five.ok
    assert six.error is not None and six.error.kind == "redirects"
    assert six.error.retriable is False
    assert six.status == 302
    assert six.final_url == trusted.url("/r/302/")  # the sixth redirect, not followed


async def test_redirect_loop_across_origins_ends(trusted: Site, other: Site) -> None:
    start = str(trusted.server.make_url("/pingpong").with_query(peer=other.origin.rstrip("/")))
    async with Fetcher(user_agent=UA, trusted_origins=[trusted.origin, other.origin]) as f:
        result = await get(f, start)

    assert result.error is not None and result.error.kind == "redirects"
    assert len(trusted.paths) + len(other.paths) == 6  # five redirects followed, one more seen


async def test_each_hop_takes_its_own_hosts_slot(trusted: Site, other: Site) -> None:
    """A hop to another host gives the first host's slot back and waits for its own."""
    async with Fetcher(
        user_agent=UA,
        trusted_origins=[trusted.origin, other.origin],
        default_limits=HostLimits(connections=1),
    ) as f:
        started = time.monotonic()
        long = asyncio.create_task(get(f, trusted.redirect(other.url("/busy?hold=0.6"))))
        await other.busy.wait()  # the long request is now on the other host
        await get(f, trusted.url("/echo"))
        first_host_free = time.monotonic() - started
        await get(f, other.url("/echo"))
        second_host_free = time.monotonic() - started
        result = await long

    assert result.ok and result.final_url == other.url("/busy?hold=0.6")
    assert first_host_free < 0.4  # not kept waiting behind the hop on the other host
    assert second_host_free >= 0.55  # the hop did hold the other host's only slot


async def test_deadline_covers_every_hop(trusted: Site, other: Site) -> None:
    async with Fetcher(user_agent=UA, trusted_origins=[trusted.origin, other.origin]) as f:
        started = time.monotonic()
        result = await get(f, trusted.redirect(other.url("/slow"), delay=0.4), timeout=0.7)
        took = time.monotonic() - started

    assert result.error is not None and result.error.kind == "timeout"
    assert result.error.message == "no complete response within 0.7 s"
    assert other.paths == ["/slow"]
    assert 0.6 < took < 0.95  # 0.4 s on the first hop, what was left of 0.7 on the second


# --- the policy itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::127.0.0.1", "loopback"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.0.1", "link_local"),
        ("fe80::1", "link_local"),
        ("fe80::1%eth0", "link_local"),
        ("169.254.169.254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "cgnat"),
        ("100.127.255.254", "cgnat"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("192.0.0.8", "reserved"),
        ("2001:db8::1", "reserved"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible, deprecated
        ("not an address", "reserved"),  # fails closed
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("100.128.0.1", None),  # just past the carrier-grade NAT range
        ("172.32.0.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::8.8.8.8", None),
    ],
)
def test_address_class(address: str, reason: str | None) -> None:
    assert address_class(address) == reason
    assert reason is None or reason in REFUSAL_REASONS


def test_origin_key_normalises_default_ports_and_case() -> None:
    assert origin_key("http://127.0.0.1") == ("127.0.0.1", 80)
    assert origin_key("http://127.0.0.1:80/feed?x=1") == ("127.0.0.1", 80)
    assert origin_key("https://Gov.Example./news") == ("gov.example", 443)
    assert origin_key("http://[::1]:8080") == ("::1", 8080)
    assert origin_key("http://bücher.example/") == ("xn--bcher-kva.example", 80)
    for bad in ("ftp://example.org/", "/relative", "example.org"):
        with pytest.raises(ValueError, match="http"):
            origin_key(bad)


def test_guard_trusts_by_host_and_port() -> None:
    guard = AddressGuard(["http://10.0.0.8:8080/feed", "https://intranet.example"])

    assert guard.trusts("10.0.0.8", 8080)
    assert not guard.trusts("10.0.0.8", 80)
    assert guard.trusts("intranet.example", 443)
    assert guard.trusts("intranet.example.", 443)  # a trailing dot names the same host
    assert guard.check_url(URL("https://10.0.0.8:8080/x")) is None  # same endpoint
    assert guard.check_url(URL("http://10.0.0.8/x")) == Refusal("private", "10.0.0.8", "10.0.0.8")
    assert guard.check_url(URL("http://intranet.example:8443/")) is None  # judged when resolved
    assert guard.check_url(URL("http://93.184.216.34/")) is None
    assert AddressGuard(allow_private_networks=True).check_url(URL("http://127.0.0.1/")) is None


def test_filter_keeps_public_addresses_of_a_mixed_answer() -> None:
    guard = AddressGuard()

    def answer(*addresses: str) -> list[ResolveResult]:
        return [
            ResolveResult(hostname="h", host=a, port=80, family=2, proto=0, flags=0)
            for a in addresses
        ]

    kept = guard.filter_resolved("h.example", 80, answer("127.0.0.1", "93.184.216.34", "10.0.0.1"))
    assert [r["host"] for r in kept] == ["93.184.216.34"]
    with pytest.raises(AddressRefusedError) as caught:
        guard.filter_resolved("h.example", 80, answer("10.0.0.1", "127.0.0.1"))
    assert caught.value.refusal == Refusal("private", "h.example", "10.0.0.1")
    assert isinstance(caught.value, OSError)
    assert caught.value.refusal.what == "private address (h.example resolves to 10.0.0.1)"
    trusting = AddressGuard(["http://h.example"])
    assert len(trusting.filter_resolved("h.example", 80, answer("127.0.0.1"))) == 1


def test_refused_is_a_documented_error_kind() -> None:
    assert "refused" in ERROR_KINDS
    assert ipaddress.ip_address("::ffff:127.0.0.1").ipv4_mapped is not None  # the premise
