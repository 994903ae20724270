"""The Fetcher: polite HTTP, the one place that talks to web servers.

This module owns one aiohttp session (keep-alive connections, a DNS cache)
and the rules of a single GET: conditional requests, a total deadline, a cap
on the decoded body, Retry-After, redirects and the mapping of every failure
to a `FetchError`. Per-host politeness lives in `hosts.py`, the address
policy (which addresses a request may reach) in `guard.py`.

The fetcher never raises on a status or a network problem. It returns a
`FetchResult` whose `error` carries one of these kinds, a bounded set used as
a metric label:

    kind         cause                                                retriable
    timeout      the total deadline passed (connect, headers or body)  yes
    connect      connection refused, host or network unreachable       yes
    dns          the hostname did not resolve                          yes
    reset        server disconnected, connection reset, broken body    yes
    tls          TLS handshake or certificate failure                  no
    redirects    too many redirects (a loop), a bad or missing Location no
    refused      the address policy forbids the address (see guard.py) no
    too_large    the decoded body exceeds `max_bytes`                  no
    http_429     429 Too Many Requests                                 yes
    http_4xx     any other 4xx status                                  no (408: yes)
    http_5xx     any 5xx status                                        yes
    invalid_url  the URL cannot be fetched over http(s)                no
    other        anything else; logged, since it may be a bug          yes

What it raises: `RuntimeError` when `fetch` is called before `start`, and
`ValueError` for a non-positive `timeout` or a negative `max_bytes`, which are
the caller's bugs rather than the network's.

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
deadline, with one more rule: the form is never sent to another origin, and
never turned into a GET. A 307/308 on the request's own origin is followed
with the body; any other redirect of a POST is refused (kind "refused",
`FETCH_REFUSED{reason="post_redirect"}`, after the address policy has had
its say). This module is the only one in `monitor/` that opens HTTP
requests; tests/test_outbound_http.py keeps it so.

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
import email.utils
import functools
import math
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Final, Literal, Self

import aiohttp
import structlog
import yarl
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDictProxy
from yarl import URL

from monitor.fetch.guard import (
    AddressGuard,
    AddressRefusedError,
    GuardedResolver,
    Refusal,
    origin_key,
)
from monitor.fetch.hosts import DEFAULT_LIMITS, HostLimits, HostSlot, HostSlots
from monitor.metrics import FETCH_DURATION, FETCH_REFUSED
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

ERROR_KINDS: Final = frozenset(
    {
        "timeout",
        "connect",
        "dns",
        "reset",
        "tls",
        "redirects",
        "refused",
        "too_large",
        "http_429",
        "http_4xx",
        "http_5xx",
        "invalid_url",
        "other",
    }
)

_CHUNK: Final = 64 * 1024  # bytes asked of the stream per read
_ERROR_BODY_BYTES: Final = 64 * 1024  # of a 4xx/5xx body, kept for humans
_MESSAGE_MAX: Final = 300  # characters of an exception kept in a FetchError message
_SCHEMES: Final = frozenset({"http", "https"})
_DNS_TTL: Final = 300  # seconds a resolved address is reused
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_PERMANENT: Final = frozenset({301, 308})
_KEEP_METHOD: Final = frozenset({307, 308})  # the redirects that re-send a POST as a POST
_POST_HEADERS: Final = {"Accept": "*/*"}
_URL_MAX: Final = 150  # characters of a URL quoted in a FetchError message
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


# The result of one exchange: the response that ended it (None when none did),
# its body, the error, the URL of the last response that arrived (else the
# request's), the permanent redirect, when the slot admitted it and how long it took.
_Exchange = tuple[
    aiohttp.ClientResponse | None, bytes, FetchError | None, URL, URL | None, dt.datetime, float
]


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
        target, host = checked

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
        return self._outcome(
            exchange, url, target, source_id=source_id, etag=etag, last_modified=last_modified
        )

    async def post_form(
        self,
        url: str,
        form: Mapping[str, str],
        *,
        source_id: str,
        timeout: float,
        max_bytes: int = _ERROR_BODY_BYTES,
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
        session = self._session
        if session is None:
            raise RuntimeError("Fetcher.start() has not been called, or close() has")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        checked = self._check_target(url, source_id)
        if isinstance(checked, FetchResult):
            return checked
        target, host = checked
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
        return self._outcome(exchange, url, target, source_id=source_id)

    def _check_target(self, url: str, source_id: str) -> tuple[URL, str] | FetchResult:
        """The parsed URL and host of a request, or the result of one refused before sending."""
        parsed = self._urls.get(url)
        if parsed is None:
            try:
                target = URL(url)
            except (TypeError, ValueError) as exc:
                return _invalid_url(url, source_id, str(exc))
            host = target.host
            if not host or target.scheme not in _SCHEMES:
                return _invalid_url(url, source_id, "not an absolute http(s) URL")
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()  # rebuilt on demand; a cycle, not a leak
            self._urls[url] = target, host
        else:
            target, host = parsed
        refusal = self._guard.check_url(target)
        if refusal is not None:  # a discovered link to a forbidden address
            refused = _refused(refusal, target, source_id=source_id, redirected=False)
            _log_unusual(refused, source_id=source_id, url=url)
            return _no_response(url, source_id, refused)
        return target, host

    @staticmethod
    def _outcome(
        exchange: _Exchange,
        url: str,
        target: URL,
        *,
        source_id: str,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """The FetchResult of an exchange."""
        response, body, error, final, moved, fetched_at, elapsed = exchange
        if error is not None and not error.retriable:
            _log_unusual(error, source_id=source_id, url=url)
        final_url = url if final is target else str(final)
        permanent = None if moved is None or moved == target else str(moved)
        if response is None:
            return FetchResult(
                source_id=source_id,
                url=url,
                final_url=final_url,
                status=0,
                fetched_at=fetched_at,
                permanent_redirect=permanent,
                elapsed=elapsed,
                error=error,
            )
        return _result(
            response,
            body,
            error,
            url=url,
            final_url=final_url,
            permanent_redirect=permanent,
            source_id=source_id,
            fetched_at=fetched_at,
            elapsed=elapsed,
            etag=etag,
            last_modified=last_modified,
        )

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
    ) -> _Exchange:
        """Take the host's slot, send the request, follow redirects, read the body.

        Every failure becomes a FetchError. The deadline is aiohttp's `total`
        timeout, which covers connecting, the headers and every read of the
        body, so a slow drip is cut too; a later hop gets what is left of it.
        The response is returned even when reading its body failed, so the
        result keeps the status and headers that did arrive. The same headers
        go to every hop, as aiohttp's own redirects do (no credentials are sent).
        A `form` makes it a POST, redirected only where `_keeps_body` allows.
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
                        if status in _REDIRECTS:
                            found = response.headers
                            location = found.get("Location") or found.get("URI")
                        if location is None:  # the hot path: no redirect
                            try:
                                body, error = await _read_response(response, max_bytes)
                            except Exception as exc:  # every failure becomes a FetchError
                                error = _exception_error(exc, deadline, hop)
                            break
                except Exception as exc:  # every failure becomes a FetchError
                    response = None
                    refusal = _refusal_in(exc)
                    if refusal is None:
                        error = _exception_error(exc, deadline, hop)
                    else:  # the host name resolved to forbidden addresses only
                        redirected = hop is not target
                        error = _refused(refusal, hop, source_id=source_id, redirected=redirected)
                    break

                # A redirect, released on leaving the block: decide where it leads.
                following = _redirect_target(hop, location)
                if leading:
                    if status in _PERMANENT and following is not None:
                        moved = following[0]
                    else:
                        leading = False
                if following is None:
                    error = FetchError(
                        kind="redirects",
                        message=f"HTTP {status} to {_quote(location)}, not an http(s) URL",
                        retriable=False,
                    )
                    break
                if redirects >= self._max_redirects:
                    error = FetchError(
                        kind="redirects",
                        message=f"gave up after {redirects + 1} redirects "
                        f"(at most {self._max_redirects} are followed)",
                        retriable=False,
                    )
                    break
                hop, hop_host = following
                refusal = self._guard.check_url(hop)
                if refusal is not None:
                    response = None
                    error = _refused(refusal, hop, source_id=source_id, redirected=True)
                    break
                if form is not None and not _keeps_body(status, target, hop):
                    response = None
                    error = _post_redirect_refused(status, hop, source_id=source_id)
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
                        response, error = None, _timeout_error(deadline)
                        break
                    held = slot
                left = deadline - (time.perf_counter() - started)
                if left <= 0:  # aiohttp would read a zero total as "no deadline"
                    response, error = None, _timeout_error(deadline)
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


async def _read_response(
    response: aiohttp.ClientResponse, max_bytes: int
) -> tuple[bytes, FetchError | None]:
    """The body of `response`, within the cap, and the error its status means."""
    status = response.status
    if status == 304:
        return b"", None  # the hot path: nothing to read
    if status >= 400:
        body = await _read_prefix(response, min(max_bytes, _ERROR_BODY_BYTES))
        return body, _status_error(status)
    if status >= 300:  # a redirect that is not followed: no Location, or 300
        return b"", FetchError(
            kind="redirects", message=f"HTTP {status} without a usable Location", retriable=False
        )
    declared = response.content_length
    if declared is not None and declared > max_bytes and _is_identity(response):
        response.close()
        return b"", _too_large(max_bytes, f"Content-Length is {declared}")
    body, overflow = await _read_capped(response, max_bytes)
    if overflow:
        response.close()  # drop the connection rather than drain the rest
        return b"", _too_large(max_bytes, "the decoded body is larger")
    return body, None


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> tuple[bytes, bool]:
    """Read up to `max_bytes` decoded bytes; True (and what fit) when the body had more.

    aiohttp decodes gzip, deflate and br in bounded steps as the stream is
    read, so a decompression bomb stops here after `max_bytes` plus one chunk.
    On overflow nothing is joined: a body over the cap costs the cap, not twice.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


async def _read_prefix(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The first `max_bytes` of an error body, kept for humans; the rest is not read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        chunks.append(chunk[: max_bytes - size])
        size += len(chunk)
        if size >= max_bytes:
            response.close()  # drop the connection rather than drain the rest
            break
    return b"".join(chunks)


def _is_identity(response: aiohttp.ClientResponse) -> bool:
    encoding = response.headers.get("Content-Encoding")
    return encoding is None or encoding.strip().lower() == "identity"


def _result(
    response: aiohttp.ClientResponse,
    body: bytes,
    error: FetchError | None,
    *,
    url: str,
    final_url: str,
    permanent_redirect: str | None,
    source_id: str,
    fetched_at: dt.datetime,
    elapsed: float,
    etag: str | None,
    last_modified: str | None,
) -> FetchResult:
    """The FetchResult of a response that arrived."""
    headers: CIMultiDictProxy[str] = response.headers
    status = response.status
    if status == 304:  # a 304 may omit the validators: the old ones still hold
        etag = headers.get("ETag", etag)
        last_modified = headers.get("Last-Modified", last_modified)
    else:
        etag = headers.get("ETag")
        last_modified = headers.get("Last-Modified")
    retry_after = headers.get("Retry-After")
    max_age = None
    if status == 200 or status == 304:
        # Looked up only: the work below runs when a server sends the headers.
        cache_control = headers.get("Cache-Control")
        expires = headers.get("Expires")
        if cache_control is not None or expires is not None:
            max_age = parse_max_age(cache_control, expires, headers.get("Date"))
    hub, self_link = None, None
    if status == 200 and "Link" in headers:  # never on the 304 path
        hub, self_link = _websub_links(response)
    return FetchResult(
        source_id=source_id,
        url=url,
        final_url=final_url,
        status=status,
        fetched_at=fetched_at,
        body=body,
        content_type=headers.get("Content-Type"),
        hub=hub,
        self_link=self_link,
        etag=etag,
        last_modified=last_modified,
        retry_after=None if retry_after is None else parse_retry_after(retry_after),
        permanent_redirect=permanent_redirect,
        elapsed=elapsed,
        error=error,
        max_age=max_age,
    )


def _websub_links(response: aiohttp.ClientResponse) -> tuple[str | None, str | None]:
    """The WebSub hub and self URLs of a `Link` header (RFC 8288), absolute."""
    found: dict[str, str] = {}
    for rel in ("hub", "self"):
        link = response.links.get(rel)
        target = link.get("url") if link is not None else None
        if target is not None:
            found[rel] = str(response.url.join(yarl.URL(str(target))))
    return found.get("hub"), found.get("self")


def parse_max_age(
    cache_control: str | None,
    expires: str | None,
    date: str | None = None,
    now: dt.datetime | None = None,
) -> float | None:
    """Seconds the response stays fresh: Cache-Control max-age, else Expires (RFC 9111).

    `no-store` and `no-cache` mean 0. Expires counts from the response's Date
    when it has one (so a clock skew between us and the server does not
    matter), else from now; an invalid Expires means already stale (0).
    None when neither header says anything.
    """
    if cache_control is not None:
        for directive in cache_control.lower().split(","):
            name, _, value = directive.strip().partition("=")
            if name in ("no-store", "no-cache"):
                return 0.0
            if name == "max-age":
                try:
                    seconds = float(int(value.strip().strip('"')))
                except ValueError:
                    return 0.0
                return max(seconds, 0.0)
    if expires is None:
        return None
    try:
        until = email.utils.parsedate_to_datetime(expires.strip())
    except (TypeError, ValueError, IndexError):
        return 0.0
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    base = None
    if date is not None:
        try:
            base = email.utils.parsedate_to_datetime(date.strip())
        except (TypeError, ValueError, IndexError):
            base = None
        if base is not None and base.tzinfo is None:
            base = base.replace(tzinfo=dt.UTC)
    base = base or now or dt.datetime.now(dt.UTC)
    return max((until - base).total_seconds(), 0.0)


def parse_retry_after(value: str, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP date).

    Never negative; None when the value is neither.
    """
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _status_error(status: int) -> FetchError:
    if status == 429:
        return FetchError(kind="http_429", message="HTTP 429 Too Many Requests", retriable=True)
    if status >= 500:
        return FetchError(kind="http_5xx", message=f"HTTP {status}", retriable=True)
    return FetchError(kind="http_4xx", message=f"HTTP {status}", retriable=status == 408)


def _too_large(max_bytes: int, why: str) -> FetchError:
    return FetchError(
        kind="too_large", message=f"body over the {max_bytes}-byte cap: {why}", retriable=False
    )


def _exception_error(exc: BaseException, deadline: float, url: URL) -> FetchError:
    """Map an exception from aiohttp (or below it) to a bounded error kind."""
    for types, kind, retriable in _EXCEPTION_KINDS:
        if isinstance(exc, types):
            if kind == "timeout":
                return _timeout_error(deadline)
            return FetchError(kind=kind, message=_describe(exc), retriable=retriable)
    log.warning("fetch_unexpected_error", url=str(url), exc_info=exc)
    return FetchError(kind="other", message=_describe(exc), retriable=True)


def _log_unusual(error: FetchError, *, source_id: str, url: str) -> None:
    """Log the refusals that deserve a look; routine outcomes are left to the metrics.

    An unexpected exception ("other") is logged where it is caught, with its traceback.
    """
    if error.kind in ("too_large", "tls", "redirects", "refused"):
        log.info(
            "fetch_refused", source_id=source_id, url=url, kind=error.kind, error=error.message
        )


def _redirect_target(base: URL, location: str) -> tuple[URL, str] | None:
    """The absolute URL a Location leads to, and its host; None when it is not http(s).

    Relative references are resolved against `base`, as aiohttp does; the
    fragment is dropped, since it is never sent.
    """
    try:
        target = base.join(URL(location))
    except (TypeError, ValueError):
        return None
    host = target.host
    if not host or not target.raw_host or target.scheme not in _SCHEMES:
        return None
    if target.raw_fragment:
        target = target.with_fragment(None)
    return target, host


def _keeps_body(status: int, origin: URL, hop: URL) -> bool:
    """Whether a POST may follow a `status` redirect to `hop`: a 307/308 on `origin`'s origin.

    A 301/302/303 would turn it into a GET (a different request, whose success
    says nothing of the POST's), and another origin must never see the body.
    """
    return status in _KEEP_METHOD and (hop.scheme, *origin_key(hop)) == (
        origin.scheme,
        *origin_key(origin),
    )


def _post_redirect_refused(status: int, url: URL, *, source_id: str) -> FetchError:
    """The FetchError of a POST redirect that is not followed, counted in FETCH_REFUSED."""
    FETCH_REFUSED.labels(source_id=source_id, reason="post_redirect").inc()
    return FetchError(
        kind="refused",
        message=f"HTTP {status} redirect of a POST to {_quote(str(url))} refused: "
        "a request body is re-sent only on a 307/308 to its own origin",
        retriable=False,
    )


def _refusal_in(exc: BaseException) -> Refusal | None:
    """The address-policy refusal behind an aiohttp error, if that is what it is.

    The guarded resolver raises `AddressRefusedError`; aiohttp wraps it in a
    `ClientConnectorDNSError` whose cause it is.
    """
    cause: BaseException | None = exc
    for _ in range(4):
        if cause is None:
            return None
        if isinstance(cause, AddressRefusedError):
            return cause.refusal
        cause = cause.__cause__ or cause.__context__
    return None


def _refused(refusal: Refusal, url: URL, *, source_id: str, redirected: bool) -> FetchError:
    """The FetchError of a refused request, counted in FETCH_REFUSED."""
    FETCH_REFUSED.labels(source_id=source_id, reason=refusal.reason).inc()
    where = f"redirect to {_quote(str(url))}" if redirected else _quote(str(url))
    how = "set fetch.allow_private_networks: true to allow"
    return FetchError(
        kind="refused", message=f"{where} refused: {refusal.what}; {how}", retriable=False
    )


def _timeout_error(deadline: float) -> FetchError:
    return FetchError(
        kind="timeout", message=f"no complete response within {deadline:g} s", retriable=True
    )


def _quote(text: str) -> str:
    """`text` cut to fit in a FetchError message."""
    return text if len(text) <= _URL_MAX else text[: _URL_MAX - 1] + "…"


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _invalid_url(url: str, source_id: str, why: str) -> FetchResult:
    error = FetchError(kind="invalid_url", message=f"invalid URL: {why}", retriable=False)
    return _no_response(url, source_id, error)


def _no_response(url: str, source_id: str, error: FetchError) -> FetchResult:
    """The result of a request that was never sent."""
    return FetchResult(
        source_id=source_id,
        url=url,
        final_url=url,
        status=0,
        fetched_at=dt.datetime.now(dt.UTC),
        error=error,
    )
