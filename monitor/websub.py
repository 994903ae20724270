"""Push: WebSub subscriptions, their lease renewal, and the callbacks hubs call.

    poll finds <link rel="hub"> ─hub_found→ subscribe (POST to the hub)
    hub ─GET /websub/{source_id}?hub.challenge→ verify intent, echo the challenge
    hub ─POST /websub/{source_id} (signed feed body)→ check X-Hub-Signature
        → Poller.process_pushed (parse → detect → record, as a poll does)

- One secret per subscription, random, saved with the subscription in the
  state store (`websub_subscriptions`) and registered with the log redactor,
  never logged. At start the saved subscriptions are loaded: one whose source
  is still configured keeps its secret (pushes signed with it still verify) and
  its renewal schedule (or is subscribed again at once if its lease ended); one
  whose source left the config is unsubscribed, then forgotten. Shutdown keeps
  the subscriptions (the next start resumes them): only a source that leaves
  the config is unsubscribed.
- One task (`run`) renews every lease: it sleeps until the earliest renewal
  and wakes early when a new hub is found. A lease is renewed when three
  quarters of it have passed. A lease is capped at 30 days (`MAX_LEASE`),
  whatever the hub (or a forger) grants, so a renewal is never further away
  than 22.5 days.
- A verification (`hub.mode=subscribe` or `unsubscribe` with `hub.challenge`)
  or a denial (`hub.mode=denied`) is accepted only for a request this service
  has pending, for that source, topic and mode: a subscribe request sent less
  than an hour ago and not yet answered, or an unsubscribe not yet verified.
  Anything else is answered 404 and counted
  (`websub_requests_total{outcome="unsolicited"}`), so a forger can neither
  mark a subscription verified (with an endless lease) nor drop one.
- A bad or missing signature is answered 202 (the spec: the hub must not
  learn that the signature was wrong) and counted; nothing is processed.
- A callback for a source that has no subscription is answered 404, a body
  over `fetch.max_feed_bytes` 413.
- The hub URL comes from a feed, so requests to it go through the Fetcher
  (`Fetcher.post_form`): its address policy (`fetch.allow_private_networks`,
  trusted source origins) judges every hop, and the form, which carries
  `hub.secret`, is never re-sent to another origin nor turned into a GET by
  a redirect (refusals counted in `fetch_refused_total{source_id, reason}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from aiohttp import web

from monitor import metrics
from monitor.config import WebSubConfig
from monitor.fetch.client import Fetcher
from monitor.log import register_secret
from monitor.models import Source
from monitor.state import StateStore, WebSubRow

__all__ = [
    "CALLBACK_PREFIX",
    "MAX_LEASE",
    "PushHandler",
    "Subscription",
    "WebSubManager",
    "verify_signature",
]

log = structlog.get_logger(__name__)

CALLBACK_PREFIX = "/websub/"


class PushHandler(Protocol):
    """`Poller.process_pushed`: record what a pushed feed body holds."""

    def __call__(
        self, source: Source, body: bytes, content_type: str | None, *, url: str | None = None
    ) -> Awaitable[object]: ...


_ALGORITHMS = frozenset({"sha1", "sha256", "sha384", "sha512"})
_RENEW_AT = 0.75  # of the lease granted
_REQUEST_TIMEOUT = 10.0
_VERIFY_WAIT = 60.0  # a hub that accepted but never verified: ask again after this
_RETRY_BASE, _RETRY_CAP = 30.0, 3600.0
_MAX_SLEEP = 3600.0
_PENDING_FOR = 3600.0  # a hub verifies a subscribe request within this, or not at all
MAX_LEASE = 30 * 86400.0  # seconds: the longest lease believed, whatever the hub says


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `X-Hub-Signature` (`sha256=<hex>`, or sha1, sha384, sha512) signs `body`."""
    if not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    method = method.strip().lower()
    if method not in _ALGORITHMS:
        return False
    expected = hmac.new(secret.encode(), body, method).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


@dataclass(slots=True)
class Subscription:
    """What this service asked of one hub for one source."""

    source: Source
    hub: str
    topic: str
    callback: str
    secret: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    verified: bool = False
    expires_at: float = 0.0  # monotonic; meaningful once verified
    next_action_at: float = 0.0  # monotonic; when to (re)subscribe
    failures: int = 0
    verifications: int = 0  # subscribe verifications answered, to spot one during a request
    busy: bool = False  # a request to the hub is in flight
    requested_at: float | None = None  # monotonic; a subscribe request awaits its verification

    def awaits_verification(self, now: float) -> bool:
        """Whether a subscribe request of ours is pending: sent, not yet verified or denied."""
        return self.requested_at is not None and now - self.requested_at < _PENDING_FOR


class WebSubManager:
    """Subscriptions of every source whose feed names a hub, and their callbacks."""

    def __init__(
        self,
        config: WebSubConfig,
        sources: Iterable[Source],
        *,
        process: PushHandler,
        fetcher: Fetcher,
        max_body_bytes: int,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if config.callback_base is None:
            raise ValueError("websub.callback_base is required")
        self._base = config.callback_base.rstrip("/")
        self._lease = min(config.lease, MAX_LEASE)
        if config.lease > MAX_LEASE:
            log.warning("websub_lease_capped", lease=config.lease, max_lease=MAX_LEASE)
        self._sources = {s.id: s for s in sources}
        self._process = process
        self._fetcher = fetcher  # the one guarded path out (started and closed by its owner)
        self._max_body = max_body_bytes
        self._store = store
        self._clock = clock
        self._wall = wall
        self.subscriptions: dict[str, Subscription] = {}
        self._leaving: dict[str, Subscription] = {}  # unsubscribe sent, verification awaited
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()  # requests to hubs
        self.pushes: set[asyncio.Task[None]] = set()  # pushed bodies being processed
        self._started = False
        self._closing = False

    def callback_url(self, source_id: str) -> str:
        return f"{self._base}{CALLBACK_PREFIX}{source_id}"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(CALLBACK_PREFIX + "{source_id}", self._verify),
            web.post(CALLBACK_PREFIX + "{source_id}", self._deliver),
        ]

    async def start(self) -> None:
        """Resume the saved subscriptions. The fetcher must be started already."""
        if self._started:
            return
        self._started = True
        self._load()

    def _load(self) -> None:
        """Resume the saved subscriptions; unsubscribe those whose source left the config."""
        if self._store is None:
            return
        now, wall = self._clock(), self._wall()
        for row in self._store.websub_subscriptions():
            register_secret(row.secret)
            remaining = (row.lease_expires_at or 0.0) - wall
            source = self._sources.get(row.source_id)
            if source is None:
                if remaining > 0:  # the hub may still push: tell it to stop
                    gone = Source(
                        id=row.source_id, name=row.source_id, url=row.topic, interval=300,
                        timeout=_REQUEST_TIMEOUT, backfill=False, topic="",
                    )  # fmt: skip
                    sub = Subscription(
                        source=gone, hub=row.hub, topic=row.topic,
                        callback=self.callback_url(row.source_id), secret=row.secret,
                    )  # fmt: skip
                    log.info("websub_source_removed", source_id=row.source_id, hub=row.hub)
                    self._leave(sub)
                else:
                    self._store.delete_websub_subscription(row.source_id, row.hub, row.topic)
                continue
            sub = Subscription(
                source=source, hub=row.hub, topic=row.topic,
                callback=self.callback_url(row.source_id), secret=row.secret,
            )  # fmt: skip
            if row.state == "verified" and remaining > 0:
                remaining = min(remaining, MAX_LEASE)  # a lease saved before the cap
                sub.verified = True
                sub.expires_at = now + remaining
                sub.next_action_at = now + remaining * _RENEW_AT
            self.subscriptions[row.source_id] = sub
        self._set_gauge()
        self._wake.set()

    def _save(self, sub: Subscription, state: str) -> None:
        if self._store is None or not self._store.is_open:
            return
        expires = None
        if sub.verified:
            expires = self._wall() + max(sub.expires_at - self._clock(), 0.0)
        self._store.save_websub_subscription(
            WebSubRow(
                source_id=sub.source.id, hub=sub.hub, topic=sub.topic, secret=sub.secret,
                lease_expires_at=expires, state=state,
            )
        )

    def _forget(self, sub: Subscription) -> None:
        if self._store is not None and self._store.is_open:
            self._store.delete_websub_subscription(sub.source.id, sub.hub, sub.topic)

    # -- subscriptions --------------------------------------------------------------

    def hub_found(self, source: Source, hub: str, topic: str) -> None:
        """A poll saw that `source`'s feed names `hub` for `topic`: subscribe if new."""
        if self._closing or source.id not in self._sources:
            return
        current = self.subscriptions.get(source.id)
        if current is not None and (current.hub, current.topic) == (hub, topic):
            return
        if current is not None:
            self._leave(current)
        log.info("websub_hub_found", source_id=source.id, hub=hub, topic=topic)
        sub = Subscription(
            source=source, hub=hub, topic=topic, callback=self.callback_url(source.id)
        )
        register_secret(sub.secret)
        self.subscriptions[source.id] = sub
        self._save(sub, "pending")
        self._wake.set()

    def sync_sources(self, sources: Iterable[Source]) -> None:
        """Adopt a new list of sources: unsubscribe those that left it."""
        self._sources = {s.id: s for s in sources}
        for source_id in [i for i in self.subscriptions if i not in self._sources]:
            self._leave(self.subscriptions[source_id])

    def _leave(self, sub: Subscription) -> None:
        self.subscriptions.pop(sub.source.id, None)
        self._set_gauge()
        self._leaving[sub.source.id] = sub
        self._spawn(self._request(sub, "unsubscribe"))

    async def run(self) -> None:
        """The one renewal task: (re)subscribe whatever is due, sleep until the next."""
        while True:
            now = self._clock()
            wake_at = now + _MAX_SLEEP
            for sub in list(self.subscriptions.values()):
                if sub.verified and now >= sub.expires_at:
                    sub.verified = False
                    log.warning("websub_lease_expired", source_id=sub.source.id, hub=sub.hub)
                    self._set_gauge()
                    self._save(sub, "expired")
                if sub.busy:
                    continue
                if now >= sub.next_action_at:
                    sub.busy = True
                    self._spawn(self._request(sub, "subscribe"))
                else:
                    wake_at = min(wake_at, sub.next_action_at)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(wake_at - self._clock(), 0.01))

    async def _request(self, sub: Subscription, mode: str) -> None:
        """Send one subscribe or unsubscribe request; schedule what comes next."""
        outcome = "error"
        verifications = sub.verifications
        try:
            outcome = await self._send(sub, mode)
        finally:
            metrics.WEBSUB_REQUESTS.labels(mode=mode, outcome=outcome).inc()
            if mode == "unsubscribe" and outcome in {"accepted", "refused"}:
                self._forget(sub)  # a failed request is tried again at the next start
            gave_up = outcome in {"refused", "rejected"}  # the hub will verify nothing
            if mode == "unsubscribe" and gave_up and self._leaving.get(sub.source.id) is sub:
                del self._leaving[sub.source.id]
            if mode == "subscribe":
                sub.busy = False
                if gave_up:
                    sub.requested_at = None
                if outcome == "accepted":
                    sub.failures = 0
                    if sub.verifications == verifications:  # not verified while we waited
                        sub.next_action_at = self._clock() + _VERIFY_WAIT
                else:
                    sub.failures += 1
                    sub.next_action_at = self._clock() + min(
                        _RETRY_BASE * 2 ** (sub.failures - 1), _RETRY_CAP
                    )
                self._wake.set()

    async def _send(self, sub: Subscription, mode: str) -> str:
        """POST one request to the hub, through the Fetcher's guarded path; its outcome."""
        form = {"hub.callback": sub.callback, "hub.mode": mode, "hub.topic": sub.topic}
        if mode == "subscribe":
            form["hub.lease_seconds"] = str(max(int(self._lease), 1))
            form["hub.secret"] = sub.secret
            sub.requested_at = self._clock()  # before sending: a hub may verify at once
        result = await self._fetcher.post_form(
            sub.hub, form, source_id=sub.source.id, timeout=_REQUEST_TIMEOUT
        )
        status, error = result.status, result.error
        if 200 <= status < 300:
            log.info("websub_requested", source_id=sub.source.id, hub=sub.hub, mode=mode)
            return "accepted"
        if error is not None and error.kind in {"refused", "invalid_url"}:  # ours to refuse
            log.warning(
                "websub_hub_refused", source_id=sub.source.id, hub=sub.hub, mode=mode,
                error=error.message,
            )  # fmt: skip
            return "refused"
        if status == 0:
            log.warning(
                "websub_request_failed", source_id=sub.source.id, hub=sub.hub, mode=mode,
                error=error.message if error is not None else "no response",
            )  # fmt: skip
            return "error"
        log.warning(
            "websub_request_rejected", source_id=sub.source.id, hub=sub.hub, mode=mode,
            status=status, detail=result.body[:512].decode("utf-8", "replace"),
        )  # fmt: skip
        return "rejected"

    def _set_gauge(self) -> None:
        metrics.WEBSUB_ACTIVE.set(sum(s.verified for s in self.subscriptions.values()))

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout: float) -> None:
        """Finish requests and pushes (bounded by `timeout`); the fetcher stays open.

        Subscriptions are kept: they are saved, and the next start resumes them.
        Without a store (nothing would remember them) they are unsubscribed."""
        self._closing = True
        deadline = self._clock() + timeout
        if self._store is None:
            for sub in list(self.subscriptions.values()):
                self._leave(sub)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(deadline - self._clock(), 0.01))
        if self.pushes:
            await asyncio.wait(set(self.pushes), timeout=max(deadline - self._clock(), 0.01))
        for task in (*self._tasks, *self.pushes):
            task.cancel()  # safe: an unrecorded entry is found by the next poll

    # -- callbacks ------------------------------------------------------------------

    async def _verify(self, request: web.Request) -> web.Response:
        """The hub checks our intent: echo `hub.challenge` only for what we asked."""
        source_id = request.match_info["source_id"]
        query = request.query
        mode, topic = query.get("hub.mode"), query.get("hub.topic")
        if mode == "denied":
            return self._denied(source_id, topic, query.get("hub.reason"))
        challenge = query.get("hub.challenge")
        if not challenge or topic is None:
            return web.Response(status=400, text="hub.challenge and hub.topic are required")
        if mode == "subscribe":
            sub = self.subscriptions.get(source_id)
            now = self._clock()
            if sub is None or sub.topic != topic or not sub.awaits_verification(now):
                return _unsolicited(source_id, mode, topic)
            granted = _lease_seconds(query.get("hub.lease_seconds"), self._lease)
            lease = min(granted, MAX_LEASE)
            sub.requested_at = None  # answered: a second verification is not ours
            sub.verified = True
            sub.verifications += 1
            sub.expires_at = now + lease
            sub.next_action_at = now + lease * _RENEW_AT
            self._set_gauge()
            self._save(sub, "verified")
            self._wake.set()
            metrics.WEBSUB_REQUESTS.labels(mode="subscribe", outcome="verified").inc()
            log.info(
                "websub_subscribed", source_id=source_id, hub=sub.hub, lease_seconds=lease,
                **({"lease_granted": granted} if granted != lease else {}),
            )  # fmt: skip
        elif mode == "unsubscribe":
            leaving = self._leaving.get(source_id)
            if leaving is None or leaving.topic != topic:
                return _unsolicited(source_id, mode, topic)
            del self._leaving[source_id]
            metrics.WEBSUB_REQUESTS.labels(mode="unsubscribe", outcome="verified").inc()
            log.info("websub_unsubscribed", source_id=source_id, hub=leaving.hub)
        else:
            return web.Response(status=404)
        return web.Response(status=200, text=challenge, content_type="text/plain")

    def _denied(self, source_id: str, topic: str | None, reason: str | None) -> web.Response:
        """The hub refused a subscribe request of ours: retry much later."""
        sub = self.subscriptions.get(source_id)
        if sub is None or sub.topic != topic or not sub.awaits_verification(self._clock()):
            return _unsolicited(source_id, "denied", topic)
        sub.requested_at = None
        sub.verified = False
        sub.next_action_at = self._clock() + _RETRY_CAP
        self._set_gauge()
        self._save(sub, "denied")
        metrics.WEBSUB_REQUESTS.labels(mode="subscribe", outcome="denied").inc()
        log.warning("websub_denied", source_id=source_id, hub=sub.hub, reason=reason)
        return web.Response(status=200)

    async def _deliver(self, request: web.Request) -> web.Response:
        """Content distribution: check the signature, answer at once, process in the background."""
        source_id = request.match_info["source_id"]
        sub = self.subscriptions.get(source_id)
        if sub is None:
            metrics.WEBSUB_NOTIFICATIONS.labels(source_id="unknown", outcome="unknown").inc()
            return web.Response(status=404)
        if self._closing:
            return web.Response(status=503)  # the hub retries; the next start polls anyway
        body = await _read_capped(request, self._max_body)
        if body is None:
            metrics.WEBSUB_NOTIFICATIONS.labels(source_id=source_id, outcome="too_large").inc()
            log.warning("websub_push_too_large", source_id=source_id, max_bytes=self._max_body)
            return web.Response(status=413)
        if not verify_signature(sub.secret, body, request.headers.get("X-Hub-Signature")):
            metrics.WEBSUB_NOTIFICATIONS.labels(source_id=source_id, outcome="bad_signature").inc()
            log.warning("websub_bad_signature", source_id=source_id, hub=sub.hub)
            return web.Response(status=202)  # per the spec: acknowledge, then ignore
        metrics.WEBSUB_NOTIFICATIONS.labels(source_id=source_id, outcome="accepted").inc()
        task = asyncio.create_task(
            self._handle_push(sub, body, request.headers.get("Content-Type")),
            name=f"websub-push-{source_id}",
        )
        self.pushes.add(task)
        task.add_done_callback(self.pushes.discard)
        return web.Response(status=202)

    async def _handle_push(self, sub: Subscription, body: bytes, content_type: str | None) -> None:
        try:
            await self._process(sub.source, body, content_type, url=sub.topic)
        except Exception:
            log.exception("websub_push_crashed", source_id=sub.source.id)


def _unsolicited(source_id: str, mode: str, topic: str | None) -> web.Response:
    """A verification or denial for no request of ours: 404, counted, logged."""
    counted = "unsubscribe" if mode == "unsubscribe" else "subscribe"  # a denial is of a subscribe
    metrics.WEBSUB_REQUESTS.labels(mode=counted, outcome="unsolicited").inc()
    log.warning("websub_unsolicited_verification", source_id=source_id, mode=mode, topic=topic)
    return web.Response(status=404)


def _lease_seconds(value: str | None, default: float) -> float:
    try:
        lease = float(value) if value is not None else default
    except ValueError:
        return default
    return lease if math.isfinite(lease) and lease > 0 else default


async def _read_capped(request: web.Request, max_bytes: int) -> bytes | None:
    """The request body, or None when it is longer than `max_bytes`."""
    if request.content_length is not None and request.content_length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
