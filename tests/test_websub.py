"""WebSub end to end: a real hub on loopback subscribes, verifies, signs and pushes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from monitor import metrics
from monitor.sources import parse_document
from monitor.websub import verify_signature
from tests.conftest import EventReader, counter, free_port, make_config, running, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite, start_app

RSS = "application/rss+xml; charset=utf-8"


@dataclass
class Verification:
    mode: str
    topic: str
    lease: int | None
    status: int
    echoed: bool
    at: float


@dataclass
class HubSubscription:
    callback: str
    topic: str
    secret: str | None
    lease: int | None


@dataclass
class LoopbackHub:
    """A WebSub hub: accepts (un)subscriptions, verifies intent, pushes signed content."""

    port: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    active: dict[str, HubSubscription] = field(default_factory=dict)  # by callback
    grant_lease: int | None = None  # the lease the hub grants, when not the one asked
    _runner: web.AppRunner | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"

    async def __aenter__(self) -> LoopbackHub:
        app = web.Application()
        app.router.add_post("/hub", self._hub)
        self._runner, self.port = await start_app(app)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hub(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        if form.get("hub.mode") not in {"subscribe", "unsubscribe"} or "hub.callback" not in form:
            return web.Response(status=400)
        task = asyncio.create_task(self._verify(form))  # verification is asynchronous
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=202)

    async def _verify(self, form: dict[str, str]) -> None:
        lease = int(form["hub.lease_seconds"]) if "hub.lease_seconds" in form else None
        if self.grant_lease is not None and form["hub.mode"] == "subscribe":
            lease = self.grant_lease
        status, echoed = await self.challenge(
            form["hub.callback"], form["hub.mode"], form["hub.topic"], lease
        )
        if status // 100 == 2 and echoed:
            if form["hub.mode"] == "subscribe":
                self.active[form["hub.callback"]] = HubSubscription(
                    form["hub.callback"], form["hub.topic"], form.get("hub.secret"), lease
                )
            else:
                self.active.pop(form["hub.callback"], None)

    async def challenge(
        self, callback: str, mode: str, topic: str, lease: int | None = None
    ) -> tuple[int, bool]:
        challenge = secrets.token_urlsafe(16)
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if lease is not None:
            params["hub.lease_seconds"] = str(lease)
        async with aiohttp.ClientSession() as http, http.get(callback, params=params) as response:
            text = await response.text()
        echoed = text == challenge
        self.verifications.append(
            Verification(mode, topic, lease, response.status, echoed, time.monotonic())
        )
        return response.status, echoed

    async def publish(
        self, callback: str, body: bytes, *, algorithm: str = "sha256",
        secret: str | None = None, sign: bool = True,
    ) -> int:  # fmt: skip
        """Distribute content to one subscriber, signed with its secret (or `secret`)."""
        sub = self.active.get(callback)
        topic = sub.topic if sub else "http://127.0.0.1/unknown.xml"
        headers = {
            "Content-Type": RSS,
            "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"',
        }
        key = secret if secret is not None else (sub.secret if sub else None)
        if sign and key is not None:
            digest = hmac.new(key.encode(), body, algorithm).hexdigest()
            headers["X-Hub-Signature"] = f"{algorithm}={digest}"
        async with (
            aiohttp.ClientSession() as http,
            http.post(callback, data=body, headers=headers) as response,
        ):
            return response.status


def hub_feed(items: list[Item], *, hub: str, self_url: str) -> str:
    """An RSS feed that names its WebSub hub and its own URL."""
    links = f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{self_url}"/>'
    return (
        rss(items)
        .replace('<rss version="2.0">', '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">')
        .replace("<channel>", "<channel>" + links, 1)
    )  # fmt: skip


def statement_page(site: LoopbackSite, n: int) -> str:
    return site.put(
        f"/news/{n}.html",
        page(
            f"Pushed statement {n}",
            [
                f"The ministry announced pushed measure number {n} after the board met today.",
                "The measure takes effect on the first day of next month and applies nationwide.",
            ],
        ),
    )


def websub_config(
    tmp_path: Path, *, bootstrap: str, topic: str, site: LoopbackSite, hub: LoopbackHub,
    lease: float = 864000,
) -> tuple[dict[str, Any], int]:  # fmt: skip
    port = free_port()
    config = make_config(
        tmp_path,
        bootstrap=bootstrap,
        topic=topic,
        sources=[{"id": "pushy", "url": site.url("/feed.xml"), "interval": 300}],
        metrics={"host": "127.0.0.1", "port": port},
        websub={"callback_base": f"http://127.0.0.1:{port}", "lease": lease},
        # The hub is on loopback, on an origin that no source names.
        fetch={"allow_private_networks": True},
    )
    return config, port


# -- unit ------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_signatures_of_every_algorithm_are_checked(algorithm: str) -> None:
    body = b"<rss/>"
    digest = hmac.new(b"s3cret", body, algorithm).hexdigest()
    assert verify_signature("s3cret", body, f"{algorithm}={digest}")
    assert verify_signature("s3cret", body, f"{algorithm.upper()}={digest.upper()}")
    assert not verify_signature("other", body, f"{algorithm}={digest}")
    assert not verify_signature("s3cret", body + b" ", f"{algorithm}={digest}")


def test_missing_or_odd_signatures_are_refused() -> None:
    digest = hashlib.md5(b"x").hexdigest()  # not an algorithm WebSub allows
    for header in (None, "", "sha256", f"md5={digest}", "sha256="):
        assert not verify_signature("s", b"x", header)


def test_the_feed_names_its_hub_and_self() -> None:
    body = hub_feed(
        [Item("One", "http://gov.example/1", guid="1")],
        hub="https://hub.example/",
        self_url="/feed.xml",
    ).encode()
    parsed = parse_document(body, source_id="s", feed_url="http://gov.example/feed.xml")
    assert parsed.hub == "https://hub.example/"
    assert parsed.self_url == "http://gov.example/feed.xml"
    plain = parse_document(rss([]).encode(), source_id="s", feed_url="http://gov.example/f")
    assert plain.hub is None and plain.self_url is None


def test_a_json_feed_names_its_hub_and_self() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Ministry",
        "feed_url": "/feed.json",
        "hubs": [
            "not an object",
            {"type": "rssCloud", "url": "https://cloud.example/"},
            {"type": "WebSub", "url": "ftp://hub.example/"},
            {"type": "websub", "url": "https://hub.example/websub"},
            {"type": "WebSub", "url": "https://second.example/"},
        ],
        "items": [{"id": "1", "url": "/1"}],
    }
    parsed = parse_document(
        json.dumps(document).encode(), source_id="s", feed_url="http://gov.example/f.json"
    )
    assert parsed.format == "json1.1"
    assert parsed.hub == "https://hub.example/websub"
    assert parsed.self_url == "http://gov.example/feed.json"
    for hubs in (None, [], "https://hub.example/", [{"url": "https://hub.example/"}]):
        document["hubs"] = hubs
        del document["feed_url"]
        plain = parse_document(
            json.dumps(document).encode(), source_id="s", feed_url="http://gov.example/f"
        )
        assert plain.hub is None and plain.self_url is None
        document["feed_url"] = "/feed.json"


# -- end to end ------------------------------------------------------------------


@pytest.mark.integration
async def test_a_pushed_statement_arrives_at_once_and_only_once(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    async with LoopbackHub() as hub:
        feed_url = site.url("/feed.xml")
        items = [Item("Pushed statement 1", statement_page(site, 1), guid="p-1")]
        site.put("/feed.xml", hub_feed(items, hub=hub.url, self_url=feed_url), content_type=RSS)
        config, port = websub_config(
            tmp_path, bootstrap=kafka_bootstrap, topic=topic, site=site, hub=hub
        )
        callback = f"http://127.0.0.1:{port}/websub/pushy"
        published = counter(metrics.EVENTS_PUBLISHED, source_id="pushy")
        async with running(config) as service:
            await wait_until(lambda: callback in hub.active and service.store.has_seen("pushy"))
            request = hub.requests[0]
            assert request["hub.mode"] == "subscribe" and request["hub.topic"] == feed_url
            assert request["hub.lease_seconds"] == "864000" and len(request["hub.secret"]) >= 32
            assert hub.verifications[0].status == 200 and hub.verifications[0].echoed

            items.insert(0, Item("Pushed statement 2", statement_page(site, 2), guid="p-2"))
            body = hub_feed(items, hub=hub.url, self_url=feed_url).encode()
            started = time.monotonic()
            assert await hub.publish(callback, body, algorithm="sha512") == 202
            await wait_until(
                lambda: counter(metrics.EVENTS_PUBLISHED, source_id="pushy") > published,
                timeout=5,
            )
            latency = time.monotonic() - started

            # The same content pushed again (and a sha1 signature) publishes nothing more.
            assert await hub.publish(callback, body, algorithm="sha1") == 202
            await asyncio.sleep(1.0)
            received = await events.read(1, settle=0.5)
        assert len(site.hits("/feed.xml")) == 1  # one poll at start-up: the rest was pushed
        assert [e["data"]["title"] for e in received] == ["Pushed statement 2"]
        assert received[0]["data"]["text"].startswith("The ministry announced pushed measure")
        assert latency < 1.5, f"push to broker ack took {latency:.3f} s"
        # Shutdown kept the subscription (it is saved; the next start resumes it).
        assert callback in hub.active
        assert all(r["hub.mode"] == "subscribe" for r in hub.requests)


@pytest.mark.integration
async def test_bad_signatures_and_unknown_callbacks_are_refused(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    async with LoopbackHub() as hub:
        feed_url = site.url("/feed.xml")
        items = [Item("Pushed statement 1", statement_page(site, 1), guid="p-1")]
        site.put("/feed.xml", hub_feed(items, hub=hub.url, self_url=feed_url), content_type=RSS)
        config, port = websub_config(
            tmp_path, bootstrap=kafka_bootstrap, topic=topic, site=site, hub=hub
        )
        base = f"http://127.0.0.1:{port}/websub"
        callback = f"{base}/pushy"
        bad = counter(metrics.WEBSUB_NOTIFICATIONS, source_id="pushy", outcome="bad_signature")
        unknown = counter(metrics.WEBSUB_NOTIFICATIONS, source_id="unknown", outcome="unknown")
        detected = counter(metrics.STATEMENTS_DETECTED, source_id="pushy")
        async with running(config) as service:
            await wait_until(lambda: callback in hub.active and service.store.has_seen("pushy"))
            items.insert(0, Item("Forged statement", statement_page(site, 9), guid="p-9"))
            body = hub_feed(items, hub=hub.url, self_url=feed_url).encode()
            assert await hub.publish(callback, body, secret="not-the-secret") == 202
            assert await hub.publish(callback, body, sign=False) == 202
            assert await hub.publish(f"{base}/nosuchsource", body) == 404
            # Intent we never declared is not confirmed.
            assert (await hub.challenge(callback, "unsubscribe", feed_url))[0] == 404
            assert (await hub.challenge(callback, "subscribe", "http://evil.example/"))[0] == 404
            assert (await hub.challenge(f"{base}/nosuchsource", "subscribe", feed_url))[0] == 404
            await asyncio.sleep(1.0)
            assert counter(metrics.STATEMENTS_DETECTED, source_id="pushy") == detected
            assert service.relay is not None and service.relay.pending == 0
        assert (
            counter(metrics.WEBSUB_NOTIFICATIONS, source_id="pushy", outcome="bad_signature")
            == bad + 2
        )
        assert (
            counter(metrics.WEBSUB_NOTIFICATIONS, source_id="unknown", outcome="unknown")
            == unknown + 1
        )


@pytest.mark.integration
async def test_a_lease_is_renewed_before_it_expires(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    async with LoopbackHub() as hub:
        feed_url = site.url("/feed.xml")
        site.put("/feed.xml", hub_feed([], hub=hub.url, self_url=feed_url), content_type=RSS)
        config, _ = websub_config(
            tmp_path, bootstrap=kafka_bootstrap, topic=topic, site=site, hub=hub, lease=2
        )
        async with running(config):
            await wait_until(
                lambda: (
                    sum(v.mode == "subscribe" and v.status == 200 for v in hub.verifications) >= 3
                ),
                timeout=10,
            )
        subscribes = [v for v in hub.verifications if v.mode == "subscribe"]
        for earlier, later in itertools.pairwise(subscribes):
            assert later.at - earlier.at < 2.0  # each renewal lands inside the lease
            assert later.echoed and later.lease == 2
        assert len({r["hub.secret"] for r in hub.requests if r["hub.mode"] == "subscribe"}) == 1
        assert len(site.hits("/feed.xml")) == 1  # renewals come from the timer, not from polls


async def test_a_source_that_leaves_the_config_is_unsubscribed() -> None:
    from monitor.config import WebSubConfig
    from monitor.fetch import Fetcher
    from monitor.models import Source
    from monitor.websub import WebSubManager

    pushed: list[bytes] = []

    async def process(
        source: Source, body: bytes, content_type: str | None, *, url: str | None = None
    ) -> None:
        pushed.append(body)

    port = free_port()
    source = Source(
        id="gone", name="gone", url="http://127.0.0.1:1/feed.xml", interval=300, timeout=5,
        backfill=False, topic="t",
    )  # fmt: skip
    config = WebSubConfig(callback_base=f"http://127.0.0.1:{port}/")
    callback = f"http://127.0.0.1:{port}/websub/gone"
    async with LoopbackHub() as hub:
        refused = counter(metrics.WEBSUB_REQUESTS, mode="subscribe", outcome="refused")
        for allow in (False, True):
            fetcher = Fetcher(
                user_agent="test", trusted_origins=[source.url], allow_private_networks=allow
            )
            await fetcher.start()
            manager = WebSubManager(
                config, [source], process=process, max_body_bytes=1 << 20, fetcher=fetcher
            )
            app = web.Application()
            app.router.add_routes(manager.routes())
            runner, _ = await start_app(app, port=port)
            await manager.start()
            renewing = asyncio.create_task(manager.run())
            try:
                manager.hub_found(source, hub.url, "http://127.0.0.1:1/feed.xml")
                if not allow:  # a loopback hub that no source names is refused by the guard
                    await wait_until(
                        lambda: (
                            counter(metrics.WEBSUB_REQUESTS, mode="subscribe", outcome="refused")
                            > refused
                        )
                    )
                    assert hub.requests == []
                    continue
                await wait_until(lambda: callback in hub.active)
                assert await hub.publish(callback, b"<rss/>") == 202
                await wait_until(lambda: pushed == [b"<rss/>"])
                manager.sync_sources([])
                await wait_until(lambda: callback not in hub.active)
                assert hub.requests[-1]["hub.mode"] == "unsubscribe"
                assert await hub.publish(callback, b"<rss/>") == 404
            finally:
                renewing.cancel()
                await manager.close(timeout=1)
                await fetcher.close()
                await runner.cleanup()


@pytest.mark.integration
async def test_a_restart_keeps_the_subscription_and_its_secret(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    async with LoopbackHub() as hub:
        feed_url = site.url("/feed.xml")
        items = [Item("Pushed statement 1", statement_page(site, 1), guid="p-1")]
        site.put("/feed.xml", hub_feed(items, hub=hub.url, self_url=feed_url), content_type=RSS)
        config, port = websub_config(
            tmp_path, bootstrap=kafka_bootstrap, topic=topic, site=site, hub=hub
        )
        callback = f"http://127.0.0.1:{port}/websub/pushy"
        with capture_logs() as logs:
            async with running(config) as service:
                await wait_until(
                    lambda: callback in hub.active and service.store.has_seen("pushy")
                )
            secret = hub.active[callback].secret
            assert secret
            bad = counter(metrics.WEBSUB_NOTIFICATIONS, source_id="pushy", outcome="bad_signature")
            ok = counter(metrics.WEBSUB_NOTIFICATIONS, source_id="pushy", outcome="accepted")
            async with running(config) as service:
                # Pushed before any poll could subscribe again: signed with the old secret.
                items.insert(0, Item("Pushed statement 2", statement_page(site, 2), guid="p-2"))
                body = hub_feed(items, hub=hub.url, self_url=feed_url).encode()
                assert await hub.publish(callback, body, secret=secret) == 202
                received = await events.read(1, settle=1.0)
                assert service.websub is not None
                assert service.websub.subscriptions["pushy"].verified
        assert [e["data"]["title"] for e in received] == ["Pushed statement 2"]
        assert (
            counter(metrics.WEBSUB_NOTIFICATIONS, source_id="pushy", outcome="bad_signature")
            == bad
        )
        assert counter(metrics.WEBSUB_NOTIFICATIONS, source_id="pushy", outcome="accepted") == ok + 1
        # One subscription, one secret, never unsubscribed; the secret never logged.
        assert [r["hub.mode"] for r in hub.requests] == ["subscribe"]
        assert secret not in json.dumps([str(e) for e in logs])


@pytest.mark.integration
async def test_a_source_removed_while_stopped_is_unsubscribed_at_start(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    async with LoopbackHub() as hub:
        feed_url = site.url("/feed.xml")
        site.put("/feed.xml", hub_feed([], hub=hub.url, self_url=feed_url), content_type=RSS)
        site.put("/other.xml", rss([]), content_type=RSS)
        config, port = websub_config(
            tmp_path, bootstrap=kafka_bootstrap, topic=topic, site=site, hub=hub
        )
        callback = f"http://127.0.0.1:{port}/websub/pushy"
        async with running(config) as service:
            await wait_until(lambda: callback in hub.active)
            await wait_until(
                lambda: [r.state for r in service.store.websub_subscriptions()] == ["verified"]
            )
        config["sources"] = [{"id": "other", "url": site.url("/other.xml"), "interval": 300}]
        async with running(config) as service:
            await wait_until(lambda: hub.requests[-1]["hub.mode"] == "unsubscribe")
            assert hub.requests[-1]["hub.callback"] == callback
            assert hub.requests[-1]["hub.topic"] == feed_url
            await wait_until(lambda: service.store.websub_subscriptions() == [])
            await wait_until(lambda: callback not in hub.active, timeout=5)
        assert [r["hub.mode"] for r in hub.requests] == ["subscribe", "unsubscribe"]
