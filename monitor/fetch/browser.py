"""The browser fetcher: a URL in, the DOM a headless Chromium built from it out, as a FetchResult.

For sources with `render: browser` (sites that write their news list or
article body with JavaScript, or put the page behind a JavaScript check).
`BrowserFetcher.fetch` has the face of `Fetcher.fetch`: it never raises on a
page's failure, it returns a `FetchResult` whose `body` is the serialised DOM
(UTF-8 HTML) and whose `error` says what went wrong.

What it owns:

* **One browser per instance**, Debian's `chromium` driven by Playwright
  through `executable_path` (nothing is ever downloaded), launched at the
  first page and replaced after it crashes or after `restart_after` pages
  (Chromium grows as it lives): the replacement waits for the pages open in
  the old one, so there is never more than one.
* **At most `max_pages` pages at once**, each in its own browser context (no
  cookie or storage shared between pages), each bounded by `timeout`: load,
  scripts, and settling together. A page is settled when no request has been
  in flight for `settle` seconds after its load event; one that never settles
  is a `timeout` error, and the caller falls back as for any fetch timeout.
* **The same safety as plain fetching.** Every request the page makes
  (documents, scripts, XHR, fetch(), images, a reload) is intercepted and
  judged by the fetcher's own `AddressGuard` (monitor/fetch/guard.py): an IP
  literal by `check_url`, a host name by the addresses it resolves to
  (`GuardedResolver`), the configured sources' origins trusted as there. A
  refused request is aborted, logged and counted in
  `statement_monitor_fetch_refused_total{source_id, reason}`. Service workers
  (whose requests would escape interception) and WebSockets are refused,
  downloads are not accepted, popups are closed. The user agent is the
  fetcher's. robots.txt is asked by the caller (RobotsCache.fetch_page), and
  each page load takes the host's slot (monitor/fetch/hosts.py) like a fetch.

Not bounded here: a host name that resolves to a public address when judged
and to a private one when Chromium resolves it a moment later (DNS
rebinding) — Chromium resolves names itself. Plain fetching closes that gap
by connecting only to the judged addresses; a browser source is a site the
operator chose to trust with a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from aiohttp import ThreadedResolver
from yarl import URL

from monitor import metrics
from monitor.fetch.guard import AddressGuard, AddressRefusedError, GuardedResolver, Refusal
from monitor.fetch.hosts import HostSlots
from monitor.models import FetchError, FetchResult

__all__ = ["LAUNCH_ARGS", "BrowserFetcher", "BrowserUnavailable", "find_chromium"]

log = structlog.get_logger(__name__)

# Chromium's switches: as root in a container there is no sandbox to use; no GPU;
# QUIC off (it would bypass nothing here, but keeps every request on HTTP/1-2 that
# interception sees); and none of the background traffic a desktop browser makes
# (updates, sync, safe-browsing lists, field trials, DNS prefetch, WebRTC's local IPs).
LAUNCH_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--dns-prefetch-disable",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
_ALLOWED_SCHEMES: Final = frozenset({"data", "blob", "about"})  # no network behind them
_HTTP: Final = frozenset({"http", "https"})
_CONTENT_TYPE: Final = "text/html; charset=utf-8"
# Popups: `window.open` gives nothing (a page that opened one anyway has it closed,
# and its requests aborted, see `_route`).
_NO_POPUPS: Final = "window.open = function () { return null; };"
_POLL: Final = 0.05  # seconds between looks at the page's network while it settles


class BrowserUnavailable(RuntimeError):
    """No Chromium to run: the `[browser]` extra or the `chromium` package is missing."""


def find_chromium(configured: str | None = None) -> str:
    """The Chromium executable: `configured`, else `chromium` (Debian) on PATH.

    Raises:
        BrowserUnavailable: with the command that installs it.
    """
    for candidate in (configured, "chromium", "chromium-browser"):
        if candidate:
            found = shutil.which(candidate)
            if found:
                return found
    raise BrowserUnavailable(
        "no Chromium found for render: browser; install it with "
        "`apt-get install chromium` (Debian/Ubuntu) and `pip install 'statement-monitor[browser]'`"
    )


@dataclass(eq=False)
class _Instance:
    """One launched browser and the pages it served."""

    browser: Any
    served: int = 0
    open: int = 0


@dataclass(eq=False)
class _Traffic:
    """A page's requests in flight, and when its network last moved."""

    in_flight: set[Any] = field(default_factory=set)
    last_change: float = field(default_factory=time.monotonic)

    def started(self, request: Any) -> None:
        self.in_flight.add(request)
        self.last_change = time.monotonic()

    def ended(self, request: Any) -> None:
        self.in_flight.discard(request)
        self.last_change = time.monotonic()


class BrowserFetcher:
    """Pages rendered in one headless Chromium, under the fetcher's address policy."""

    def __init__(
        self,
        *,
        guard: AddressGuard,
        hosts: HostSlots,
        user_agent: str,
        executable: str | None = None,
        timeout: float = 30.0,
        max_pages: int = 2,
        settle: float = 0.5,
        restart_after: int = 100,
    ) -> None:
        self._guard = guard
        self._hosts = hosts
        self._user_agent = user_agent
        self._executable = executable
        self._timeout = timeout
        self._settle = settle
        self._restart_after = restart_after
        self._pages = asyncio.Semaphore(max_pages)
        self._changing = asyncio.Condition()  # launch, retire and restart, one at a time
        self._instance: _Instance | None = None
        self._playwright: Any = None
        self._resolver = GuardedResolver(guard, ThreadedResolver())
        self.launches = 0

    async def close(self) -> None:
        """Close the browser and Playwright. Calling it twice is harmless."""
        instance, self._instance = self._instance, None
        if instance is not None:
            with contextlib.suppress(Exception):
                await instance.browser.close()
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):
                await playwright.stop()

    async def fetch(
        self, url: str, *, source_id: str, max_bytes: int, timeout: float | None = None
    ) -> FetchResult:
        """Load `url`, let it settle, and return its DOM. Never raises on the page's failure."""
        started = time.monotonic()
        fetched_at = dt.datetime.now(dt.UTC)
        deadline = min(timeout or self._timeout, self._timeout)
        refusal = await self._judge(url)
        if refusal is not None:
            self._count_refusal(refusal, source_id, url)
            refused = FetchError(
                kind="refused", message=f"{refusal.what} refused", retriable=False
            )
            return self._failed(url, source_id, fetched_at, started, refused)
        host = URL(url).host or ""
        async with self._pages:
            try:
                instance = await self._acquire()
            except BrowserUnavailable as exc:
                missing = FetchError(kind="browser", message=str(exc), retriable=True)
                return self._failed(url, source_id, fetched_at, started, missing)
            try:
                async with asyncio.timeout(deadline):
                    status, final_url, html = await self._render(instance, url, host, source_id)
            except TimeoutError:
                metrics.BROWSER_PAGES.labels(outcome="timeout").inc()
                failure = FetchError(
                    kind="timeout",
                    message=f"the page did not settle within {deadline:g} s",
                    retriable=True,
                )
                return self._failed(url, source_id, fetched_at, started, failure)
            except Exception as exc:  # a crashed page or browser: Playwright's errors
                metrics.BROWSER_PAGES.labels(outcome="error").inc()
                log.warning("browser_page_failed", source_id=source_id, url=url, error=repr(exc))
                failure = FetchError(kind="browser", message=str(exc)[:300], retriable=True)
                return self._failed(url, source_id, fetched_at, started, failure)
            finally:
                await self._release(instance)
        body = html.encode("utf-8")
        error: FetchError | None = None
        if len(body) > max_bytes:
            body = body[:max_bytes]
            error = FetchError(
                kind="too_large", message=f"the DOM exceeds {max_bytes} bytes", retriable=False
            )
        elif not 200 <= status < 300:
            error = FetchError(
                kind=f"http_{status // 100}xx", message=f"HTTP {status}", retriable=status >= 500
            )
        metrics.BROWSER_PAGES.labels(outcome="ok" if error is None else "error").inc()
        return FetchResult(
            source_id=source_id,
            url=url,
            final_url=final_url,
            status=status,
            fetched_at=fetched_at,
            body=body,
            content_type=_CONTENT_TYPE,
            elapsed=time.monotonic() - started,
            error=error,
        )

    # --- the browser's life ---------------------------------------------------------

    async def _acquire(self) -> _Instance:
        """The browser to open the next page in: launched, or replaced when it is due."""
        async with self._changing:
            instance = self._instance
            if instance is not None and not instance.browser.is_connected():
                metrics.BROWSER_RESTARTS.labels(reason="crash").inc()
                log.warning("browser_crashed", pages_served=instance.served)
                self._instance = instance = None
            elif instance is not None and instance.served >= self._restart_after:
                # Retire it once its open pages are done: one browser at a time.
                await self._changing.wait_for(lambda: instance is None or instance.open == 0)
                if self._instance is instance:
                    metrics.BROWSER_RESTARTS.labels(reason="pages").inc()
                    log.info("browser_restart", pages_served=instance.served)
                    self._instance = None
                    with contextlib.suppress(Exception):
                        await instance.browser.close()
                instance = self._instance
            if instance is None:
                instance = self._instance = _Instance(await self._launch())
            instance.served += 1
            instance.open += 1
            return instance

    async def _release(self, instance: _Instance) -> None:
        async with self._changing:
            instance.open -= 1
            self._changing.notify_all()

    async def _launch(self) -> Any:
        executable = find_chromium(self._executable)
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:
            raise BrowserUnavailable(
                "render: browser needs Playwright: pip install 'statement-monitor[browser]'"
            ) from exc
        if self._playwright is None:
            self._playwright = await async_playwright().start()
        browser = await self._playwright.chromium.launch(
            executable_path=executable, args=list(LAUNCH_ARGS), headless=True
        )
        self.launches += 1
        log.info("browser_launched", executable=executable, version=browser.version)
        return browser

    # --- one page -------------------------------------------------------------------

    async def _render(
        self, instance: _Instance, url: str, host: str, source_id: str
    ) -> tuple[int, str, str]:
        context = await instance.browser.new_context(
            user_agent=self._user_agent,
            accept_downloads=False,
            service_workers="block",
        )
        try:
            page = await context.new_page()
            traffic = _Traffic()
            page.on("request", traffic.started)
            page.on("requestfinished", traffic.ended)
            page.on("requestfailed", traffic.ended)
            context.on("page", lambda opened: _close_popup(opened, page))
            await context.add_init_script(_NO_POPUPS)
            await context.route("**/*", lambda route: self._route(route, source_id, page))
            with contextlib.suppress(Exception):  # Playwright < 1.48 has no WebSocket routes
                await context.route_web_socket("**/*", _refuse_web_socket)
            # The load takes the host's slot, as a fetch does: spaced and limited like one
            # (the page's subrequests are its own, as a fetched page's would be).
            async with self._hosts.slot(host):
                response = await page.goto(url, wait_until="load")
            await self._settled(page, traffic)
            html = await _content(page)
            status = response.status if response is not None else 200
            return status, page.url, html
        finally:
            with contextlib.suppress(Exception):
                await context.close()

    async def _settled(self, page: Any, traffic: _Traffic) -> None:
        """Return once no request has been in flight for `settle` seconds (the caller's
        deadline bounds the wait: a page that polls forever never settles)."""
        while True:
            quiet = time.monotonic() - traffic.last_change
            if not traffic.in_flight and quiet >= self._settle:
                with contextlib.suppress(Exception):  # a reload in progress: wait for it
                    await page.wait_for_load_state("load")
                if not traffic.in_flight and time.monotonic() - traffic.last_change >= self._settle:
                    return
            await asyncio.sleep(_POLL)

    async def _route(self, route: Any, source_id: str, ours: Any) -> None:
        """Every request of the page: on to the network if the address policy allows it.

        A request of another window (a popup that got through) goes nowhere."""
        url = route.request.url
        try:
            foreign = route.request.frame.page is not ours
        except Exception:  # a request without a frame (a worker's): judged as the page's
            foreign = False
        if foreign:
            await route.abort("blockedbyclient")
            return
        refusal = await self._judge(url)
        if refusal is None:
            await route.continue_()
            return
        self._count_refusal(refusal, source_id, url)
        await route.abort("blockedbyclient")

    async def _judge(self, url: str) -> Refusal | None:
        """The address policy's refusal of a request to `url`, or None: the fetcher's
        `AddressGuard` on IP literals, its `GuardedResolver` on host names."""
        try:
            target = URL(url)
        except (TypeError, ValueError):
            return Refusal("reserved", url[:100], url[:100])
        if target.scheme in _ALLOWED_SCHEMES:
            return None
        host, port = target.raw_host, target.port
        if target.scheme not in _HTTP or host is None or port is None:
            return Refusal("reserved", host or url[:100], target.scheme or "?")
        refusal = self._guard.check_url(target)
        if refusal is not None or self._guard.trusts(host, port):
            return refusal
        if ":" in host or host.replace(".", "").isdigit():
            return None  # a public literal: check_url passed it
        try:
            await self._resolver.resolve(host, port)
        except AddressRefusedError as exc:
            return exc.refusal
        except OSError:
            return None  # it does not resolve: Chromium finds that out itself
        return None

    def _count_refusal(self, refusal: Refusal, source_id: str, url: str) -> None:
        metrics.FETCH_REFUSED.labels(source_id=source_id, reason=refusal.reason).inc()
        log.warning(
            "browser_request_refused",
            source_id=source_id,
            url=url,
            reason=refusal.reason,
            address=refusal.address,
        )

    def _failed(
        self,
        url: str,
        source_id: str,
        fetched_at: dt.datetime,
        started: float,
        error: FetchError,
    ) -> FetchResult:
        return FetchResult(
            source_id=source_id,
            url=url,
            final_url=url,
            status=0,
            fetched_at=fetched_at,
            elapsed=time.monotonic() - started,
            error=error,
        )


async def _content(page: Any) -> str:
    """The DOM as HTML; asked again when a navigation (a reload) replaced the document."""
    for _ in range(20):
        try:
            html: str = await page.content()
            return html
        except Exception:  # "execution context was destroyed": a navigation is under way
            with contextlib.suppress(Exception):
                await page.wait_for_load_state("load")
            await asyncio.sleep(_POLL)
    html = await page.content()
    return html


async def _close_popup(opened: Any, ours: Any) -> None:
    """A window the page opened (window.open, target=_blank): closed, never loaded on."""
    if opened is not ours:
        log.info("browser_popup_blocked", url=opened.url)
        with contextlib.suppress(Exception):
            await opened.close()


async def _refuse_web_socket(ws: Any) -> None:
    """WebSockets pass no interception of their frames: none are opened."""
    with contextlib.suppress(Exception):
        await ws.close()
