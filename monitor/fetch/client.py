"""The Fetcher: polite HTTP, the one place that talks to web servers.

This module owns one aiohttp session (keep-alive connections, a DNS cache),
the request and its redirect loop: conditional requests, a total deadline,
redirects with the address guard on every hop, and the mapping of every
exception to a `FetchError`. It never raises on a status or a network
problem: the `error` of its `FetchResult` carries one of the bounded kinds of
`errors.py`. The body is read within its cap by `body.py`, the result built
from the headers by `response.py`, a hop's rules are `redirects.py`'s;
per-host politeness lives in `hosts.py`, the address policy in `guard.py`.

It raises only on the caller's bugs: `RuntimeError` when called before `start`,
`ValueError` for a non-positive `timeout` or a negative `max_bytes`.

Redirects are followed here, hop by hop, never by aiohttp: 301, 302, 303,
307 and 308 with a Location, up to `max_redirects` hops; one more is a
"redirects" error that keeps the last response (its status and URL). Before
each hop the address policy judges the hop's URL, and at connect time the
session's resolver judges the addresses of a host name (guard.py), so no hop
of an untrusted origin reaches a loopback, private, link-local or metadata
address unless `allow_private_networks`. A refused request gets status 0 and
the error kind "refused", is counted in `FETCH_REFUSED{source_id, reason}`
and logged; `final_url` stays at the last URL that answered.

`post_form` (WebSub hub requests) takes the same path, guard, slots and
deadline (its own rules are in its docstring). This module is the only one in
`monitor/` that opens HTTP requests; tests/test_outbound_http.py keeps it so.

`permanent_redirect` is the target of the last of the leading run of 301/308
responses: 301→308→200 gives the URL of the 200, 301→302→200 the URL that
answered 302 (where the permanent part ended), 302→301→200 gives None. It is
set whatever happened after the run (an error, a refusal), and None when the
run leads back to `url` itself.

Timing: the host slot is entered first; `timeout`, `elapsed` and the
`FETCH_DURATION` histogram all count from the moment the slot admits the
request, so time spent queueing behind other requests to the same host is
not charged to the server. Each hop holds its own host's slot: a hop to the
same host keeps the slot it has; a hop to another host gives it back, then
waits for that host's slot. The deadline covers every hop, that wait
included. A request refused before its first hop is not timed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Final, Literal, Self

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from yarl import URL

from monitor.fetch.body import ERROR_BODY_BYTES, read_response
from monitor.fetch.errors import (
    ERROR_KINDS,
    describe,
    invalid_url,
    log_unusual,
    no_response,
    post_redirect_refused,
    refusal_in,
    refused,
    timeout_error,
)
from monitor.fetch.guard import AddressGuard, GuardedResolver
from monitor.fetch.hosts import DEFAULT_LIMITS, HostLimits, HostSlot, HostSlots
from monitor.fetch.redirects import (
    PERMANENT,
    REDIRECTS,
    SCHEMES,
    keeps_body,
    not_followed,
    redirect_target,
    too_many,
)
from monitor.fetch.response import Exchange, outcome, parse_max_age, parse_retry_after
from monitor.metrics import FETCH_DURATION
from monitor.models import FetchError, FetchResult

__all__ = [
    "ACCEPT_ENCODING",
    "ERROR_KINDS",
    "FEED_ACCEPT",
    "PAGE_ACCEPT",
    "FetchKind",
    "Fetcher",
    "parse_max_age",
    "parse_retry_after",
]

FetchKind = Literal["feed", "page"]

FEED_ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT: Final = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACCEPT_ENCODING: Final = "gzip, deflate, br"

_DNS_TTL: Final = 300  # seconds a resolved address is reused
_POST_HEADERS: Final = {"Accept": "*/*"}
_URL_CACHE: Final = 65_536  # parsed URLs kept (feeds, robots.txt); about 10 MB when full

# Exceptions to error kinds, first match wins: subclasses come before their bases
# (ClientSSLError and ClientConnectorDNSError are ClientConnectorErrors, which are
# ClientOSErrors; InvalidUrlRedirectClientError is both a redirect and an InvalidURL).
_ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]
_EXCEPTION_KINDS: Final[tuple[tuple[_ExceptionTypes, str, bool], ...]] = (
    (TimeoutError, "timeout", True),
    ((aiohttp.TooManyRedirects, aiohttp.RedirectClientError), "redirects", False),
    ((aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError), "invalid_url", False),
    (aiohttp.ClientConnectorDNSError, "dns", True),
    ((aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch), "tls", False),
    (aiohttp.ClientConnectorError, "connect", True),
    (
        (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, ConnectionError, OSError),
        "reset",
        True,
    ),
)

log = structlog.get_logger(__name__)


class Fetcher:
    """Polite HTTP GET over one shared session. Use `async with Fetcher(...)`.

    `trusted_origins` are origins ("https://gov.example", or any URL on them)
    exempt from the address policy: the lead passes the origin of every
    `sources[].url`. A request anywhere else may not reach a loopback,
    private, link-local, metadata or otherwise non-public address unless
    `allow_private_networks` (see guard.py). `resolver` is the resolver the
    address policy wraps, aiohttp's default when None; the fetcher does not
    close a resolver it is given.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        default_limits: HostLimits = DEFAULT_LIMITS,
        host_limits: Mapping[str, HostLimits] | None = None,
        max_connections: int = 256,
        max_redirects: int = 5,
        trusted_origins: Iterable[str] = (),
        allow_private_networks: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {max_redirects}")
        self._user_agent = user_agent
        self._max_connections = max_connections
        self._max_redirects = max_redirects
        self._hosts = HostSlots(default_limits, host_limits)
        self._guard = AddressGuard(trusted_origins, allow_private_networks=allow_private_networks)
        self._resolver = resolver
        self._own_resolver: AbstractResolver | None = None  # the guarded default, closed here
        self._session: aiohttp.ClientSession | None = None
        self._accept: dict[str, dict[str, str]] = {
            "feed": {"Accept": FEED_ACCEPT},
            "page": {"Accept": PAGE_ACCEPT},
        }
        self._durations = {kind: FETCH_DURATION.labels(kind=kind) for kind in ("feed", "page")}
        # Parsed URLs of the URLs fetched again and again (feeds): parsing and
        # encoding a URL was ~3 % of a 304 poll, and aiohttp takes a URL as it is.
        self._urls: dict[str, tuple[URL, str]] = {}

    @property
    def hosts(self) -> HostSlots:
        """The per-host slots, for inspection."""
        return self._hosts

    @property
    def guard(self) -> AddressGuard:
        """The address policy, for inspection."""
        return self._guard

    async def start(self) -> None:
        """Open the session and its connection pool. Calling it twice is harmless."""
        if self._session is not None:
            return
        resolver = self._resolver
        if not self._guard.allow_private_networks:
            # Host names are judged by the addresses they resolve to, at connect time.
            if resolver is None:
                resolver = self._own_resolver = GuardedResolver(self._guard, DefaultResolver())
            else:
                resolver = GuardedResolver(self._guard, resolver)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,  # the host slots do this, with a delay as well
            use_dns_cache=True,
            ttl_dns_cache=_DNS_TTL,
            resolver=resolver,  # None: aiohttp's default, which the connector closes
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self._user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            # Cookies are not kept: no state shared across sources, none that grows.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            raise_for_status=False,
            trust_env=False,
        )

    async def close(self) -> None:
        """Close the session and its connections. Calling it twice is harmless."""
        session, self._session = self._session, None
        resolver, self._own_resolver = self._own_resolver, None
        if session is not None:
            await session.close()
        if resolver is not None:
            await resolver.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def fetch(
        self,
        url: str,
        *,
        source_id: str,
        kind: FetchKind,
        timeout: float,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
    ) -> FetchResult:
        """GET `url` once, politely. Never raises on a status or a network problem.

        `timeout` is the total deadline in seconds, body and redirects included;
        `max_bytes` caps the decoded body. `etag` and `last_modified` make the
        request conditional; a 304 keeps them when the server does not repeat them.
        """
        checked = self._check_request(url, source_id, timeout, max_bytes)
        if isinstance(checked, FetchResult):
            return checked
        session, target, host = checked
        headers = self._request_headers(kind, etag, last_modified, accept)
        exchange = await self._exchange(
            session,
            target,
            host,
            headers,
            source_id=source_id,
            deadline=timeout,
            max_bytes=max_bytes,
        )
        self._durations[kind].observe(exchange[6])
        return outcome(
            exchange, url, target, source_id=source_id, etag=etag, last_modified=last_modified
        )

    async def post_form(
        self,
        url: str,
        form: Mapping[str, str],
        *,
        source_id: str,
        timeout: float,
        max_bytes: int = ERROR_BODY_BYTES,
    ) -> FetchResult:
        """POST `form` (urlencoded) to `url`, through the same guard, slots and deadline as a GET.

        The body is never sent anywhere but `url`'s origin: a 307 or 308 on the
        same origin is followed with the body; any other redirect (another
        origin, or a 301/302/303 that would turn the POST into a GET) is
        refused, counted in `FETCH_REFUSED{reason="post_redirect"}` (or the
        address policy's reason, which is judged first). WebSub hub requests
        carry `hub.secret`: this is the path they take. Never raises on a status
        or a network problem.
        """
        checked = self._check_request(url, source_id, timeout, max_bytes)
        if isinstance(checked, FetchResult):
            return checked
        session, target, host = checked
        exchange = await self._exchange(
            session,
            target,
            host,
            _POST_HEADERS,
            source_id=source_id,
            deadline=timeout,
            max_bytes=max_bytes,
            form=dict(form),
        )
        return outcome(exchange, url, target, source_id=source_id)

    def _check_request(
        self, url: str, source_id: str, timeout: float, max_bytes: int
    ) -> tuple[aiohttp.ClientSession, URL, str] | FetchResult:
        """The session, URL and host of a request, or the result of one refused unsent."""
        session = self._session
        if session is None:
            raise RuntimeError("Fetcher.start() has not been called, or close() has")
        if not timeout > 0:  # also rejects NaN; aiohttp reads 0 as "no deadline"
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        checked = self._check_target(url, source_id)
        if isinstance(checked, FetchResult):
            return checked
        return (session, *checked)

    def _check_target(self, url: str, source_id: str) -> tuple[URL, str] | FetchResult:
        """The parsed URL and host of a request, or the result of one refused before sending."""
        parsed = self._urls.get(url)
        if parsed is None:
            try:
                target = URL(url)
            except (TypeError, ValueError) as exc:
                return invalid_url(url, source_id, str(exc))
            host = target.host
            if not host or target.scheme not in SCHEMES:
                return invalid_url(url, source_id, "not an absolute http(s) URL")
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()  # rebuilt on demand; a cycle, not a leak
            self._urls[url] = target, host
        else:
            target, host = parsed
        refusal = self._guard.check_url(target)
        if refusal is not None:  # a discovered link to a forbidden address
            error = refused(refusal, target, source_id=source_id, redirected=False)
            log_unusual(error, source_id=source_id, url=url)
            return no_response(url, source_id, error)
        return target, host

    def _request_headers(
        self,
        kind: FetchKind,
        etag: str | None,
        last_modified: str | None,
        accept: str | None,
    ) -> Mapping[str, str]:
        """The per-request headers; User-Agent and Accept-Encoding are the session's."""
        base = self._accept[kind]
        if etag is None and last_modified is None and accept is None:
            return base
        headers = base.copy()
        if accept is not None:
            headers["Accept"] = accept
        if etag is not None:
            headers["If-None-Match"] = etag
        if last_modified is not None:
            headers["If-Modified-Since"] = last_modified
        return headers

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        target: URL,
        host: str,
        headers: Mapping[str, str],
        *,
        source_id: str,
        deadline: float,
        max_bytes: int,
        form: dict[str, str] | None = None,
    ) -> Exchange:
        """Take the host's slot, send the request, follow redirects, read the body.

        Every failure becomes a FetchError. The deadline is aiohttp's `total`
        timeout, which covers connecting, the headers and every read of the
        body, so a slow drip is cut too; a later hop gets what is left of it.
        The response is returned even when reading its body failed, so the
        result keeps the status and headers that did arrive. The same headers
        go to every hop, as aiohttp's own redirects do (no credentials are sent).
        A `form` makes it a POST, redirected only where `keeps_body` allows.
        """
        slot = self._hosts.slot(host)
        await slot.acquire()
        held: HostSlot | None = slot
        try:
            fetched_at = dt.datetime.now(dt.UTC)
            started = time.perf_counter()
            timeout = _client_timeout(deadline)
            hop = final = target
            moved: URL | None = None  # where the leading run of 301/308 points
            leading = True  # whether every redirect so far was permanent
            redirects = 0
            response: aiohttp.ClientResponse | None
            body = b""
            error: FetchError | None = None
            while True:
                try:
                    async with session.request(
                        "GET" if form is None else "POST",
                        hop,
                        headers=headers,
                        data=form,
                        timeout=timeout,
                        allow_redirects=False,
                    ) as response:
                        final = hop
                        status = response.status
                        location = None
                        if status in REDIRECTS:
                            found = response.headers
                            location = found.get("Location") or found.get("URI")
                        if location is None:  # the hot path: no redirect
                            try:
                                body, error = await read_response(response, max_bytes)
                            except Exception as exc:  # every failure becomes a FetchError
                                error = _exception_error(exc, deadline, hop)
                            break
                except Exception as exc:  # every failure becomes a FetchError
                    response = None
                    refusal = refusal_in(exc)
                    if refusal is None:
                        error = _exception_error(exc, deadline, hop)
                    else:  # the host name resolved to forbidden addresses only
                        redirected = hop is not target
                        error = refused(refusal, hop, source_id=source_id, redirected=redirected)
                    break

                # A redirect, released on leaving the block: decide where it leads.
                following = redirect_target(hop, location)
                if leading:
                    if status in PERMANENT and following is not None:
                        moved = following[0]
                    else:
                        leading = False
                if following is None:
                    error = not_followed(status, location)
                    break
                if redirects >= self._max_redirects:
                    error = too_many(redirects, self._max_redirects)
                    break
                hop, hop_host = following
                refusal = self._guard.check_url(hop)
                if refusal is not None:
                    response = None
                    error = refused(refusal, hop, source_id=source_id, redirected=True)
                    break
                if form is not None and not keeps_body(status, target, hop):
                    response = None
                    error = post_redirect_refused(status, hop, source_id=source_id)
                    break
                redirects += 1
                if hop_host != host:  # another host: give this slot back, wait for that one
                    slot.release()  # the slot held until now
                    held = None
                    host = hop_host
                    slot = self._hosts.slot(host)
                    try:
                        async with asyncio.timeout(deadline - (time.perf_counter() - started)):
                            await slot.acquire()
                    except TimeoutError:
                        response, error = None, timeout_error(deadline)
                        break
                    held = slot
                left = deadline - (time.perf_counter() - started)
                if left <= 0:  # aiohttp would read a zero total as "no deadline"
                    response, error = None, timeout_error(deadline)
                    break
                timeout = aiohttp.ClientTimeout(total=left)
            elapsed = time.perf_counter() - started
        finally:
            if held is not None:
                held.release()
        return response, body, error, final, moved, fetched_at, elapsed


@functools.lru_cache(maxsize=256)
def _client_timeout(total: float) -> aiohttp.ClientTimeout:
    """One shared ClientTimeout per distinct deadline (sources use a handful)."""
    return aiohttp.ClientTimeout(total=total)


def _exception_error(exc: BaseException, deadline: float, url: URL) -> FetchError:
    """Map an exception from aiohttp (or below it) to a bounded error kind."""
    for types, kind, retriable in _EXCEPTION_KINDS:
        if isinstance(exc, types):
            if kind == "timeout":
                return timeout_error(deadline)
            return FetchError(kind=kind, message=describe(exc), retriable=retriable)
    log.warning("fetch_unexpected_error", url=str(url), exc_info=exc)
    return FetchError(kind="other", message=describe(exc), retriable=True)
