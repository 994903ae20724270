"""A loopback website for tests: feeds and pages served by a real aiohttp server.

Tests put documents at paths (`site.put("/feed.xml", body, content_type=...)`)
and read what the server saw (`site.requests`). Feeds get an ETag from their
body and answer conditional requests with 304, as a well-behaved server does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web


async def start_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve `app` on `host` (at an ephemeral port unless given one): its runner (to
    `cleanup()`) and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None)
    assert sockets
    return runner, int(sockets[0].getsockname()[1])


@dataclass
class Document:
    body: bytes
    content_type: str
    status: int = 200
    etag: bool = True
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]
    status: int


class LoopbackSite:
    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}
        self.requests: list[SeenRequest] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: bytes | str, *, content_type: str = "text/html; charset=utf-8",
            status: int = 200, etag: bool = True, headers: dict[str, str] | None = None) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.documents[path] = Document(data, content_type, status, etag, headers or {})
        return self.url(path)

    def hits(self, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == path]

    async def __aenter__(self) -> LoopbackSite:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._serve)
        self._runner, self.port = await start_app(app)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        path = request.path_qs
        document = self.documents.get(path) or self.documents.get(request.path)
        if document is None:
            self.requests.append(SeenRequest(path, dict(request.headers), 404))
            return web.Response(status=404, text="not found")
        headers = dict(document.headers)
        if document.etag:
            tag = '"' + hashlib.sha256(document.body).hexdigest()[:16] + '"'
            headers["ETag"] = tag
            if request.headers.get("If-None-Match") == tag:
                self.requests.append(SeenRequest(path, dict(request.headers), 304))
                return web.Response(status=304, headers=headers)
        self.requests.append(SeenRequest(path, dict(request.headers), document.status))
        return web.Response(body=document.body, status=document.status,
                            headers={**headers, "Content-Type": document.content_type})
