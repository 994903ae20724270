"""The composition root: build every part from the config, run, and stop in order.

Start-up order: state store → worker pool → HTTP fetcher → Kafka sink and
outbox relay → metrics server → recovery of an empty store from the output
topic (monitor/recovery.py) → WebSub → scheduler. A broker that is down at start-up
does not stop the service: polling starts anyway and the outbox holds the
events until the broker answers.

Shutdown (SIGTERM, SIGINT) in the reverse order, within `SHUTDOWN_BUDGET`:
stop scheduling and re-checks → let in-flight polls finish (or abandon them safely: an
entry not yet recorded is found again at the next start, because validators
are saved only after their entries) → drain the outbox to the broker → close.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
import time

import structlog

from monitor import __version__, metrics
from monitor.config import Config, KafkaConfig
from monitor.coordination import Coordinator
from monitor.extract.stage import prepare_worker
from monitor.fetch import Fetcher, HostLimits
from monitor.fetch.browser import BrowserFetcher, BrowserUnavailable, find_chromium
from monitor.fetch.robots import RobotsCache
from monitor.models import Source
from monitor.outbox import OutboxRelay
from monitor.pipeline import Poller, PollOutcome
from monitor.pool import WORKER_PRELOAD, WorkerPool
from monitor.recheck import Rechecker
from monitor.recovery import recover_from_topic
from monitor.scheduler import Scheduler
from monitor.server import HealthServer, ReadinessCheck
from monitor.sinks.embedded import EmbeddedBroker
from monitor.sinks.kafka import KafkaSink
from monitor.state import StateStore
from monitor.status import StatusBoard, report_periodically
from monitor.websub import PushHandler, WebSubManager

__all__ = ["SHUTDOWN_BUDGET", "Service", "build_fetcher", "run_service"]

log = structlog.get_logger(__name__)

SHUTDOWN_BUDGET = 8.0  # seconds; the contract is an exit within 10 s of the signal
_POLL_GRACE = 4.0  # of which in-flight polls may take this much
_WEBSUB_GRACE = 2.0  # unsubscribing and pushes in flight, at the same time as the polls



def build_fetcher(config: Config) -> Fetcher:
    """The fetcher the config describes: politeness per host, trust in the sources' origins."""
    fetch = config.fetch
    return Fetcher(
        user_agent=fetch.user_agent,
        default_limits=HostLimits(
            connections=fetch.per_host_connections, delay=float(fetch.per_host_delay)
        ),
        host_limits={
            host.lower(): HostLimits(connections=h.connections, delay=float(h.delay))
            for host, h in fetch.hosts.items()
        },
        max_redirects=fetch.max_redirects,
        trusted_origins=[source.url for source in config.sources],
        allow_private_networks=fetch.allow_private_networks,
    )

def build_browser(config: Config, fetcher: Fetcher) -> BrowserFetcher | None:
    """The one browser of this instance, when a source has `render: browser`: the
    fetcher's address policy, host slots and user agent (launched at its first page)."""
    if not any(source.render == "browser" for source in config.sources):
        return None
    browser = config.browser
    try:  # said once at start, not only at every page of the source
        find_chromium(str(browser.executable) if browser.executable else None)
    except BrowserUnavailable as exc:
        log.error("browser_unavailable", error=str(exc))
    return BrowserFetcher(
        guard=fetcher.guard,
        hosts=fetcher.hosts,
        user_agent=config.fetch.user_agent,
        executable=str(browser.executable) if browser.executable else None,
        timeout=browser.timeout,
        max_pages=browser.max_pages,
        settle=browser.settle,
        restart_after=browser.restart_after,
    )


class Service:
    """statement-monitor, assembled."""

    # Tune the garbage collector once started (`settle_gc`): set by `run_service`,
    # which owns the process, not by tests that run a Service inside theirs.
    settle_gc = False

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sources: list[Source] = config.resolved_sources()
        self.store = StateStore(config.state.path)
        self.pool = WorkerPool(
            config.extract.workers,
            initializer=prepare_worker,  # when the forkserver did not preload (it started earlier)
            preload=WORKER_PRELOAD,
            priority_workers=config.extract.feed_workers,
            memory_mb=config.extract.worker_memory_mb,
        )
        self.fetcher = build_fetcher(config)
        self.browser: BrowserFetcher | None = None  # built in run(), if a source needs it
        self.embedded: EmbeddedBroker | None = None
        self.relay: OutboxRelay | None = None
        self.server: HealthServer | None = None
        self.websub: WebSubManager | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._polling: dict[str, asyncio.Task[None]] = {}  # the poll in flight per source
        self._rechecking: asyncio.Task[None] | None = None
        self.coordinator: Coordinator | None = None
        # With coordination the scheduler starts empty: the group assigns the sources.
        self.scheduler = Scheduler([] if config.coordination else self.sources)
        self._by_id = {source.id: source for source in self.sources}
        # Source health for /status, the page at /, `monitor status` and the log line.
        self.status = StatusBoard(
            [] if config.coordination else self.sources,
            counts=lambda: self.store.statement_counts() if self.store.is_open else {},
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down in order."""
        metrics.BUILD_INFO.info({"version": __version__})
        for path, seconds in self.config.fast_polling():  # allowed, but worth a line
            log.warning(
                "fast_polling_allowed",
                path=path,
                interval=seconds,
                hint="intervals under 1 s are allowed by allow_fast_polling: true; "
                "make sure the site's owner agrees",
            )
        bootstrap, kafka_config = self._broker()
        self.store.open()
        self.pool.start()
        await self.fetcher.start()
        sink = KafkaSink(kafka_config, bootstrap_servers=bootstrap, topics=self.config.topics())
        self.relay = relay = OutboxRelay(
            self.store, sink, max_pending=self.config.state.outbox_max_events
        )
        relay.on_acked = self.status.acked
        self.browser = build_browser(self.config, self.fetcher)
        robots = RobotsCache(
            self.fetcher, user_agent=self.config.fetch.user_agent, browser=self.browser
        )
        poller = Poller(
            self.config,
            store=self.store,
            fetcher=self.fetcher,
            pool=self.pool,
            outbox=relay,
            on_hub=self._hub_found,
            robots=robots,
            browser=self.browser,
        )
        if self.config.coordination is not None:
            self.coordinator = Coordinator(
                self.config.coordination,
                kafka_config,
                bootstrap_servers=bootstrap,
                sources=self.sources,
                store=self.store,
                on_assigned=self._sources_assigned,
                on_revoked=self._sources_revoked,
            )
        rechecker = Rechecker(
            self.config,
            self.sources,
            store=self.store,
            fetcher=self.fetcher,
            pool=self.pool,
            outbox=relay,
            robots=robots,
            owns=self.coordinator.owns if self.coordinator is not None else None,
        )
        if self.config.websub.active and self.config.metrics.enabled:
            # The callbacks live on the metrics port: `websub.callback_base` must reach it.
            self.websub = WebSubManager(
                self.config.websub,
                self.sources,
                process=self._owned_only(poller.process_pushed),
                fetcher=self.fetcher,
                max_body_bytes=self.config.fetch.max_feed_bytes,
                store=self.store,
            )
        elif self.config.websub.active:
            log.warning("websub_off", reason="metrics.enabled is false: no port for callbacks")
        if self.config.metrics.enabled:
            server = HealthServer(
                self.config.metrics.host,
                self.config.metrics.port,
                self._readiness_checks(),
                routes=self.websub.routes() if self.websub else (),
                status=self.status.snapshot,
            )
            await server.start()
            self.server = server  # set once bound: its port is the real one
        # Before anything is polled or pushed: an empty store may be a lost one.
        await recover_from_topic(
            self.config, self.store, bootstrap_servers=bootstrap, kafka=kafka_config
        )
        if self.websub is not None:
            # After the server: a hub verifies (un)subscriptions at once, on our port.
            await self.websub.start()
        if self.coordinator is None:
            for source in self.sources:
                metrics.SOURCE_INTERVAL.labels(source_id=source.id).set(source.interval)
        log.info(
            "service_started",
            version=__version__,
            sources=len(self.sources),
            bootstrap_servers=bootstrap,
            state=str(self.config.state.path),
            metrics_port=self.server.port if self.server else None,
        )

        if self.settle_gc:  # start-up is over: what it built lives as long as the process
            settle_gc()
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        scheduling = asyncio.create_task(self._schedule(poller), name="scheduler")
        if self.coordinator is not None:
            # Joins the group; shards are assigned in the background, then polled.
            await self.coordinator.start()
        self._rechecking = asyncio.create_task(rechecker.run(), name="recheck")
        renewing = (
            asyncio.create_task(self.websub.run(), name="websub-renewal") if self.websub else None
        )
        reporting = asyncio.create_task(
            report_periodically(self.status, self.config.log.status_interval, _log_status),
            name="status-log",
        )
        try:
            await stop.wait()
        finally:
            reporting.cancel()
            if renewing is not None:
                renewing.cancel()
            await self._shutdown(scheduling, relay_task, sink)

    def _hub_found(self, source: Source, hub: str, topic: str) -> None:
        if self.websub is not None:
            self.websub.hub_found(source, hub, topic)

    def _broker(self) -> tuple[str, KafkaConfig]:
        kafka = self.config.kafka
        if not kafka.embedded:
            return kafka.bootstrap_servers, kafka
        self.embedded = EmbeddedBroker()
        self.embedded.start()
        if kafka.enable_idempotence:
            log.warning(
                "idempotence_disabled_for_embedded_broker",
                reason="the embedded broker does not support InitProducerId",
            )
        return self.embedded.bootstrap_servers, kafka.model_copy(
            update={"enable_idempotence": False}
        )

    async def _schedule(self, poller: Poller) -> None:
        scheduler = self.scheduler
        slots = asyncio.Semaphore(self.config.fetch.max_concurrent_polls)
        async for source, lateness in scheduler.due():
            metrics.SCHEDULER_LAG.observe(lateness)
            await slots.acquire()
            task = asyncio.create_task(self._poll(poller, scheduler, source, slots))
            self._polls.add(task)
            self._polling[source.id] = task
            task.add_done_callback(self._polls.discard)
            task.add_done_callback(functools.partial(self._poll_done, source.id))

    def _poll_done(self, source_id: str, task: asyncio.Task[None]) -> None:
        if self._polling.get(source_id) is task:
            del self._polling[source_id]

    # -- coordination ------------------------------------------------------------

    async def _sources_assigned(self, source_ids: frozenset[str]) -> None:
        """Shards assigned to this instance (their state restored): poll their sources."""
        sources = [self._by_id[i] for i in sorted(source_ids) if i in self._by_id]
        for source in sources:
            metrics.SOURCE_INTERVAL.labels(source_id=source.id).set(source.interval)
        self.scheduler.add(sources)
        self.status.track(sources)

    async def _sources_revoked(self, source_ids: frozenset[str]) -> None:
        """Shards taken away: stop scheduling their sources and wait for their polls in
        flight, so that the next owner never polls a source at the same time."""
        self.scheduler.remove(source_ids)
        inflight = {self._polling[i] for i in source_ids if i in self._polling}
        if inflight:
            _, unfinished = await asyncio.wait(inflight, timeout=_POLL_GRACE)
            for task in unfinished:
                task.cancel()  # safe: unrecorded entries are found again by the next owner
            if unfinished:
                await asyncio.wait(unfinished, timeout=1.0)
        for source_id in source_ids:
            metrics.forget_source(source_id)
        self.status.forget(source_ids)

    def _owned_only(self, process: PushHandler) -> PushHandler:
        """A WebSub push for a source another instance now polls is acknowledged and left
        to that instance's polls (its own subscription, once renewed, brings it there)."""
        coordinator = self.coordinator
        if coordinator is None:
            return process

        async def handle(
            source: Source, body: bytes, content_type: str | None, *, url: str | None = None
        ) -> object:
            if not coordinator.owns(source.id):
                log.info("websub_push_for_other_instance", source_id=source.id)
                return None
            return await process(source, body, content_type, url=url)

        return handle

    async def _poll(
        self, poller: Poller, scheduler: Scheduler, source: Source, slots: asyncio.Semaphore
    ) -> None:
        outcome = PollOutcome("internal", ok=False)
        try:
            outcome = await poller.poll(source)
        except Exception:
            # A bug in one poll must not stop the others: log it, count it, back off.
            log.exception("poll_crashed", source_id=source.id, url=source.url)
            metrics.POLLS.labels(source_id=source.id, outcome="internal").inc()
        finally:
            slots.release()
            delay = scheduler.done(
                source.id,
                ok=outcome.ok,
                retry_after=outcome.retry_after,
                min_interval=outcome.min_interval,
                published=outcome.published,
            )
            self.status.polled(source.id, outcome=outcome.detail or outcome.outcome, ok=outcome.ok,
                               errors=scheduler.errors(source.id), next_in=delay)

    async def _shutdown(
        self, scheduling: asyncio.Task[None], relay_task: asyncio.Task[None], sink: KafkaSink
    ) -> None:
        started = time.monotonic()
        log.info("service_stopping", inflight_polls=len(self._polls))
        # Subscriptions are kept for the next start; pushes in flight finish or are abandoned.
        unsubscribing = (
            asyncio.create_task(self.websub.close(timeout=_WEBSUB_GRACE)) if self.websub else None
        )
        scheduling.cancel()
        # A re-check cut short is safe: last_checked_at was written before it, and its
        # version is written in one transaction or not at all.
        stopping = {scheduling}
        if self._rechecking is not None:
            self._rechecking.cancel()
            stopping.add(self._rechecking)
        await asyncio.wait(stopping, timeout=1.0)  # bounded, whatever the tasks do
        if self._polls:
            _, unfinished = await asyncio.wait(set(self._polls), timeout=_POLL_GRACE)
            for task in unfinished:
                task.cancel()  # safe: unrecorded entries are found again next time
            if unfinished:
                await asyncio.wait(unfinished, timeout=1.0)
                log.warning("polls_abandoned", count=len(unfinished))
        if unsubscribing is not None:
            await asyncio.wait({unsubscribing}, timeout=_WEBSUB_GRACE + 0.5)
        assert self.relay is not None
        self.relay.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        remaining = max(SHUTDOWN_BUDGET - (time.monotonic() - started), 0.5)
        drained = await self.relay.drain(timeout=remaining)
        if self.coordinator is not None:
            # After the drain: the statements just acknowledged go to the state topic
            # too, then the group hands our shards to the others. Within the budget.
            elapsed = time.monotonic() - started
            await self.coordinator.stop(timeout=max(SHUTDOWN_BUDGET + 1.0 - elapsed, 1.0))
        await sink.stop()
        await self.fetcher.close()
        if self.browser is not None:
            await self.browser.close()
        self.pool.close()
        pending = self.store.outbox_stats()[0]
        self.store.close()
        if self.server is not None:
            await self.server.stop()
        if self.embedded is not None:
            self.embedded.stop()
        log.info(
            "service_stopped",
            drained=drained,
            outbox_pending=pending,
            seconds=round(time.monotonic() - started, 3),
        )

    def _readiness_checks(self) -> dict[str, ReadinessCheck]:
        relay = self.relay

        def broker() -> tuple[bool, str]:
            return relay.broker_state() if relay is not None else (False, "not started")

        return {
            "config": lambda: (True, f"{len(self.sources)} sources"),
            "state": lambda: self.store.healthy,  # open, and no SQLite error since
            "broker": broker,
        }


def _log_status(board: StatusBoard) -> None:
    """One line a person reads: `sources: 12 healthy, 2 failing (ecb-press: dns, ...)`."""
    log.info(board.summary(), **board.totals())


def settle_gc() -> None:
    """Keep the garbage collector off the hot path of a service full of long-lived objects.

    Everything built at start-up (config, sources, state caches, metric children)
    is frozen out of the collector's view, and a young-generation collection runs
    every 10,000 net allocations rather than 700: each request allocates hundreds of
    short-lived objects, and with the defaults the collector took 35-45 % of the CPU
    of a 304 poll. Measured with bench/unchanged_feeds.py (3,000 feeds, 2026-11-25):
    6,051 -> 10,073 304/s (freeze alone: 6,225; threshold alone 50,000: 9,055).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def run_service(config: Config) -> None:
    """Run the service in this process until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        service = Service(config)
        service.settle_gc = True
        await service.run(stop)

    asyncio.run(main())
