"""WebSub against hostile hubs and forgers (issue 13, sections 1 and 5).

Real aiohttp servers on loopback, a real `WebSubManager` serving its callbacks
on a loopback port, and the `Fetcher` the service builds: the hub's origin is
trusted (as if a source lived there), `allow_private_networks` is false, so
the address guard is active for every other origin, including other loopback
ports, 127.0.0.2 and [::1].

Section 1: a hub that redirects its POST elsewhere must not get `hub.secret`
re-posted there (a 307 to another origin, trusted or not), nor make the
service GET a loopback address (a 302 to [::1]); the refusals are counted.
Section 5: a verification or denial the service did not ask for is answered
404 and counted; it neither marks a subscription verified (with an endless
lease) nor drops one; a lease a hub grants is capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from monitor import metrics
from monitor.config import WebSubConfig
from monitor.fetch import Fetcher
from monitor.models import Source
from monitor.state import StateStore, WebSubRow
from monitor.websub import MAX_LEASE, WebSubManager
from tests.conftest import counter, free_port, wait_until
from tests.sites.loopback import start_app
from tests.test_websub import LoopbackHub

TOPIC = "http://127.0.0.1:1/feed.xml"


@dataclass
class Recorder:
    """A loopback server that records every request; `/hub` answers `status` to `location`."""

    host: str
    status: int = 202
    location: str | None = None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, form
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    async def _any(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.seen.append((request.method, request.path, form))
        if request.path != "/hub":
            return web.Response(status=202)
        headers = {"Location": self.location} if self.location is not None else {}
        return web.Response(status=self.status, headers=headers)

    async def __aenter__(self) -> Recorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner, self.port = await start_app(app, self.host)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def secrets_seen(self) -> list[str]:
        return [form["hub.secret"] for _, _, form in self.seen if "hub.secret" in form]


def source() -> Source:
    return Source(
        id="pushy", name="pushy", url=TOPIC, interval=300, timeout=5, backfill=False, topic="t"
    )


@contextlib.asynccontextmanager
async def manager(
    *trusted: str, lease: float = 864000, store: StateStore | None = None
) -> AsyncIterator[tuple[WebSubManager, str]]:
    """A started WebSubManager, its callbacks on a loopback port, and that callback base.

    Its Fetcher trusts `trusted` origins only; `allow_private_networks` is false."""
    port = free_port()
    fetcher = Fetcher(user_agent="test", trusted_origins=[TOPIC, *trusted])
    await fetcher.start()
    websub = WebSubManager(
        WebSubConfig(callback_base=f"http://127.0.0.1:{port}", lease=lease),
        [source()],
        process=_ignore,
        fetcher=fetcher,
        max_body_bytes=1 << 20,
        store=store,
    )
    app = web.Application()
    app.router.add_routes(websub.routes())
    runner, _ = await start_app(app, port=port)
    await websub.start()
    renewing = asyncio.create_task(websub.run())
    try:
        yield websub, f"http://127.0.0.1:{port}/websub/pushy"
    finally:
        renewing.cancel()
        await websub.close(timeout=1)
        await fetcher.close()
        await runner.cleanup()


async def _ignore(
    source: Source, body: bytes, content_type: str | None, *, url: str | None = None
) -> None:
    return None


def refused(reason: str) -> float:
    return counter(metrics.FETCH_REFUSED, source_id="pushy", reason=reason)


def requests(outcome: str, mode: str = "subscribe") -> float:
    return counter(metrics.WEBSUB_REQUESTS, mode=mode, outcome=outcome)


async def subscribe_and_wait_refusal(websub: WebSubManager, hub: str) -> None:
    before = requests("refused")
    websub.hub_found(source(), hub, TOPIC)
    await wait_until(lambda: requests("refused") > before, timeout=10)


# -- section 1: redirects of hub requests ------------------------------------------


async def test_a_307_to_an_untrusted_loopback_origin_does_not_get_the_secret() -> None:
    async with Recorder("127.0.0.2") as thief, Recorder("127.0.0.1") as hub:
        hub.status, hub.location = 307, thief.url("/steal")
        before = refused("loopback")
        async with manager(hub.url("/")) as (websub, _):
            await subscribe_and_wait_refusal(websub, hub.url("/hub"))
            assert refused("loopback") == before + 1
            secret = websub.subscriptions["pushy"].secret
            assert not websub.subscriptions["pushy"].verified
        assert hub.secrets_seen == [secret]  # the hub itself was asked, once
        assert thief.seen == []  # nothing re-posted, not even a connection's worth


async def test_a_307_to_another_trusted_origin_does_not_get_the_secret() -> None:
    """The guard would allow this hop (both origins are trusted): the body rule refuses it."""
    async with Recorder("127.0.0.1") as elsewhere, Recorder("127.0.0.1") as hub:
        hub.status, hub.location = 307, elsewhere.url("/hub")
        before = refused("post_redirect")
        async with manager(hub.url("/"), elsewhere.url("/")) as (websub, _):
            await subscribe_and_wait_refusal(websub, hub.url("/hub"))
            assert refused("post_redirect") == before + 1
        assert len(hub.secrets_seen) == 1
        assert elsewhere.seen == []


@pytest.mark.parametrize("code", [301, 302, 303])
async def test_a_redirect_to_ipv6_loopback_is_not_followed(code: int) -> None:
    async with Recorder("::1") as thief, Recorder("127.0.0.1") as hub:
        hub.status, hub.location = code, thief.url("/steal")
        before = refused("loopback")
        async with manager(hub.url("/")) as (websub, _):
            await subscribe_and_wait_refusal(websub, hub.url("/hub"))
            assert refused("loopback") == before + 1
        assert thief.seen == []  # neither a GET nor a POST reached [::1]


async def test_a_302_on_the_hub_origin_is_not_turned_into_a_get() -> None:
    async with Recorder("127.0.0.1") as hub:
        hub.status, hub.location = 302, "/moved"
        before = refused("post_redirect")
        async with manager(hub.url("/")) as (websub, _):
            await subscribe_and_wait_refusal(websub, hub.url("/hub"))
            assert refused("post_redirect") == before + 1
            assert [(method, path) for method, path, _ in hub.seen] == [("POST", "/hub")]


async def test_a_307_on_the_hub_origin_is_followed_with_the_form() -> None:
    async with Recorder("127.0.0.1") as hub:
        hub.status, hub.location = 307, "/hub-v2"
        async with manager(hub.url("/")) as (websub, _):
            before = requests("accepted")
            websub.hub_found(source(), hub.url("/hub"), TOPIC)
            await wait_until(lambda: requests("accepted") > before, timeout=10)
            secret = websub.subscriptions["pushy"].secret
            assert [(method, path) for method, path, _ in hub.seen] == [
                ("POST", "/hub"),
                ("POST", "/hub-v2"),
            ]
            assert hub.secrets_seen == [secret, secret]


# -- section 5: forged verifications and denials ------------------------------------


async def forge(callback: str, **params: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(callback, params=params) as response:
        return response.status


async def test_a_forged_verification_does_not_verify_nor_extend_a_lease() -> None:
    async with LoopbackHub() as hub, manager(hub.url.rsplit("/", 1)[0]) as (websub, callback):
        forged = requests("unsolicited"), requests("unsolicited", "unsubscribe")
        websub.hub_found(source(), hub.url, TOPIC)
        sub = websub.subscriptions["pushy"]
        endless = {"hub.topic": TOPIC, "hub.challenge": "x", "hub.lease_seconds": "1e15"}
        # Once verified by the real hub, a forged verification is refused and changes nothing.
        await wait_until(lambda: callback in hub.active and sub.verified)
        expires, renew = sub.expires_at, sub.next_action_at
        assert await forge(callback, **{"hub.mode": "subscribe"}, **endless) == 404
        assert (sub.expires_at, sub.next_action_at) == (expires, renew)
        assert await forge(callback, **{"hub.mode": "unsubscribe"}, **endless) == 404
        assert requests("unsolicited") == forged[0] + 1
        assert requests("unsolicited", "unsubscribe") == forged[1] + 1
        assert sub.verified and websub.subscriptions["pushy"] is sub


async def test_a_forged_verification_of_an_unverified_subscription_is_refused() -> None:
    """A hub that never verifies: the pending request is the only one that may be verified."""
    async with Recorder("127.0.0.1") as hub, manager(hub.url("/")) as (websub, callback):
        hub.status = 400  # the hub rejects the request: nothing is pending afterwards
        before = requests("rejected")
        websub.hub_found(source(), hub.url("/hub"), TOPIC)
        await wait_until(lambda: requests("rejected") > before, timeout=10)
        forged = requests("unsolicited")
        params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "x",
                  "hub.lease_seconds": "1e15"}  # fmt: skip
        assert await forge(callback, **params) == 404
        sub = websub.subscriptions["pushy"]
        assert not sub.verified and sub.expires_at == 0.0
        retry = sub.next_action_at
        assert await forge(callback, **{"hub.mode": "denied", "hub.topic": TOPIC}) == 404
        assert sub.next_action_at == retry  # the retry is not pushed an hour away
        assert requests("unsolicited") == forged + 2


async def test_a_lease_granted_beyond_the_cap_is_capped() -> None:
    hub = LoopbackHub(grant_lease=10**15)
    async with hub, manager(hub.url.rsplit("/", 1)[0]) as (websub, _):
        websub.hub_found(source(), hub.url, TOPIC)
        sub = websub.subscriptions["pushy"]
        await wait_until(lambda: sub.verified)
        now = time.monotonic()  # the manager's clock
        assert hub.verifications[-1].lease == 10**15
        assert sub.expires_at - now <= MAX_LEASE
        assert sub.next_action_at - now <= MAX_LEASE * 0.75


async def test_a_lease_saved_beyond_the_cap_is_capped_at_start(tmp_path: Path) -> None:
    """A subscription saved with an endless lease (before the cap) is renewed within it."""
    store = StateStore(tmp_path / "state.db")
    store.open()
    try:
        store.save_websub_subscription(
            WebSubRow(
                source_id="pushy", hub="http://127.0.0.1:9/hub", topic=TOPIC, secret="s" * 64,
                lease_expires_at=time.time() + 1e15, state="verified",
            )
        )  # fmt: skip
        async with manager(store=store) as (websub, _):
            sub = websub.subscriptions["pushy"]
            assert sub.verified
            assert sub.next_action_at - time.monotonic() <= MAX_LEASE * 0.75
    finally:
        store.close()


async def test_a_forged_denial_neither_drops_nor_blocks_a_subscription() -> None:
    async with LoopbackHub() as hub, manager(hub.url.rsplit("/", 1)[0]) as (websub, callback):
        websub.hub_found(source(), hub.url, TOPIC)
        sub = websub.subscriptions["pushy"]
        await wait_until(lambda: sub.verified)
        renew = sub.next_action_at
        forged = requests("unsolicited")
        denied = requests("denied")
        status = await forge(callback, **{"hub.mode": "denied", "hub.topic": TOPIC})
        assert status == 404
        assert sub.verified and sub.next_action_at == renew
        assert requests("unsolicited") == forged + 1 and requests("denied") == denied
        assert metrics.WEBSUB_ACTIVE._value.get() == 1


async def test_a_real_denial_of_a_pending_request_is_accepted() -> None:
    """The other side of the coin: the hub's own denial, while our request waits, counts."""
    async with Recorder("127.0.0.1") as hub, manager(hub.url("/")) as (websub, callback):
        before = requests("accepted")
        websub.hub_found(source(), hub.url("/hub"), TOPIC)  # the recorder accepts, never verifies
        await wait_until(lambda: requests("accepted") > before, timeout=10)
        denied = requests("denied")
        assert await forge(callback, **{"hub.mode": "denied", "hub.topic": TOPIC}) == 200
        assert requests("denied") == denied + 1
        # Answered: a second denial is not ours any more.
        assert await forge(callback, **{"hub.mode": "denied", "hub.topic": TOPIC}) == 404
