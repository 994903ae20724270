"""The service's own HTTP port: `/metrics`, `/healthz` and `/readyz`.

- `/healthz`: the process is alive and its event loop answers.
- `/readyz`: the config is loaded, the state store is open and its last
  operation did not fail (disk full, read-only, I/O, corruption: not ready until
  a write succeeds again), and the broker answered the last publish or
  connect. 503 with the failing checks otherwise, as JSON, so an operator sees
  *why*.
- `/status` (JSON) and `/` (an HTML page): source health at a glance, when the
  service passes a `status` snapshot function (monitor/status.py,
  monitor/status_page.py). They do not change `/readyz`: a service whose
  sources all fail can still work, and says so there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from monitor.status_page import render_status_page

__all__ = ["HealthServer", "ReadinessCheck"]

# name → () -> (ok, detail)
ReadinessCheck = Callable[[], tuple[bool, str]]


class HealthServer:
    """An aiohttp server for metrics and probes, on the metrics host and port."""

    def __init__(
        self,
        host: str,
        port: int,
        checks: Mapping[str, ReadinessCheck],
        routes: Iterable[web.RouteDef] = (),
        status: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._checks = checks
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_routes(list(routes))  # e.g. the WebSub callbacks under /websub/
        self._status = status
        if status is not None:
            self.app.router.add_get("/status", self._status_json)
            self.app.router.add_get("/", self._status_page)

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._runner is None:
            return self._port
        for site in self._runner.sites:
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                return int(server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        results = {name: check() for name, check in self._checks.items()}
        ready = all(ok for ok, _ in results.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {
                name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()
            },
        }
        return web.Response(
            text=json.dumps(body), status=200 if ready else 503, content_type="application/json"
        )

    async def _status_json(self, _: web.Request) -> web.Response:
        assert self._status is not None
        return web.json_response(self._status(), headers={"Cache-Control": "no-store"})

    async def _status_page(self, _: web.Request) -> web.Response:
        assert self._status is not None
        return web.Response(
            text=render_status_page(self._status()),
            content_type="text/html",
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                # Belt and braces over the escaping: nothing on the page may run or load.
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )
