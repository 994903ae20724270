"""A loopback web server that misbehaves on purpose, for the faulty-source suite.

A raw asyncio server (no framework between the test and the socket), so that a
behaviour can do what no well-behaved server does: accept and never answer,
send headers and stall, drip a body one byte at a time, reset the connection
mid-body, loop redirects, announce a bomb with `Content-Encoding: gzip`, or
stream 40 MB without ever holding more than one chunk of it.

    async with FaultySite() as bad:                 # 127.0.0.2 by default
        url = bad.route("/feed.xml", respond(body, content_type=RSS))
        bad.route("/slow.xml", drip(interval=0.1))
        bad.hits_of("/slow.xml")                    # what the server saw, with times

Each response closes its connection (`Connection: close`), so every request
is one connection and the hit log is exact. Routes may be replaced while the
server runs. `black_hole()` gives a port whose connections never complete
(a genuine connect timeout) and `dead_port()` one that refuses them.

The bombs (`gzip_bomb`, `deflate_bomb`) are compressed once, chunk by chunk,
and `stream` generates its body as it goes: serving 40 or 50 MB costs the
test process one 64 KiB chunk, so a memory measurement sees only the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

__all__ = [
    "Behaviour",
    "FaultySite",
    "Hit",
    "Request",
    "deflate_bomb",
    "drip",
    "gzip_bomb",
    "hang",
    "headers_then_hang",
    "http_date_in",
    "redirect",
    "reset_before_headers",
    "reset_mid_body",
    "respond",
    "status",
    "stream",
]

_CHUNK = 64 * 1024
_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Hit:
    """One request the server saw: its path, when (time.monotonic()), its headers."""

    path: str
    at: float
    headers: dict[str, str]


Behaviour = Callable[[Request, asyncio.StreamWriter, "FaultySite"], Awaitable[None]]


@dataclass
class FaultySite:
    host: str = "127.0.0.2"
    port: int = 0
    routes: dict[str, Behaviour] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sockets: list[socket.socket] = []

    # --- configuration -------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, behaviour: Behaviour) -> str:
        """Serve `path` with `behaviour` (replacing any earlier one); return its URL."""
        self.routes[path] = behaviour
        return self.url(path)

    def hits_of(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    def black_hole(self) -> str:
        """A base URL on this host whose TCP handshakes never complete: connect timeouts.

        A listening socket with a backlog of 0 that never accepts, its queue
        filled by two connections of our own: the kernel then drops every new
        SYN, so a client waits in connect() until its deadline.
        """
        listener = socket.socket()
        listener.bind((self.host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        self._sockets.append(listener)
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((self.host, port))
            self._sockets.append(filler)
        return f"http://{self.host}:{port}"

    def dead_port(self) -> str:
        """A base URL on this host where nothing listens: connection refused."""
        with socket.socket() as probe:
            probe.bind((self.host, 0))
            port = probe.getsockname()[1]
        return f"http://{self.host}:{port}"

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> FaultySite:
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        for sock in self._sockets:
            sock.close()

    async def wait_closing(self) -> None:
        await self._closing.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            self.hits.append(Hit(request.path, time.monotonic(), request.headers))
            behaviour = self.routes.get(request.path) or self.routes.get(request.path.split("?")[0])
            if behaviour is None:
                await _write_head(writer, 404, {"Content-Length": "9"})
                writer.write(b"not found")
            else:
                await behaviour(request, writer, self)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client gave up first: that is what most of these behaviours provoke
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, *_ = [*lines[0].split(" ", 2), "", ""]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return Request(method, path, headers)


async def _write_head(writer: asyncio.StreamWriter, code: int, headers: dict[str, str]) -> None:
    lines = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Whatever')}"]
    lines += [f"{name}: {value}" for name, value in {**headers, "Connection": "close"}.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a TCP RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- behaviours ----------------------------------------------------------------------------


def respond(
    body: bytes | str | Callable[[], bytes],
    *,
    code: int = 200,
    content_type: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> Behaviour:
    """An ordinary response with a Content-Length. `body` may be a callable, read per request."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
        data = body() if callable(body) else body
        data = data.encode("utf-8") if isinstance(data, str) else data
        head = {"Content-Type": content_type, "Content-Length": str(len(data)), **(headers or {})}
        await _write_head(writer, code, head)
        writer.write(data)

    return behaviour


def status(code: int, *, retry_after: str | Callable[[], str] | None = None) -> Behaviour:
    """An error status, optionally with Retry-After (a string, or a callable per request)."""

    def headers() -> dict[str, str]:
        if retry_after is None:
            return {}
        return {"Retry-After": retry_after() if callable(retry_after) else retry_after}

    async def behaviour(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
        text = f"error {code}".encode()
        head = {"Content-Type": "text/plain", "Content-Length": str(len(text)), **headers()}
        await _write_head(writer, code, head)
        writer.write(text)

    return behaviour


def http_date_in(seconds: float) -> str:
    """An HTTP date `seconds` from now (whole seconds, as HTTP dates are)."""
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


def redirect(location: str, *, code: int = 302) -> Behaviour:
    async def behaviour(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
        await _write_head(writer, code, {"Location": location, "Content-Length": "0"})

    return behaviour


async def hang(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
    """Accept the request and never answer."""
    await site.wait_closing()


def headers_then_hang(*, content_length: int = 5000) -> Behaviour:
    """Send the status line and headers, then never a byte of the body."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
        head = {"Content-Type": "application/rss+xml", "Content-Length": str(content_length)}
        await _write_head(writer, 200, head)
        await site.wait_closing()

    return behaviour


def drip(*, interval: float = 0.1, size: int = 100_000) -> Behaviour:
    """Headers at once, then the body one byte every `interval` seconds."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
        await _write_head(
            writer, 200, {"Content-Type": "application/rss+xml", "Content-Length": str(size)}
        )
        for _ in range(size):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(interval)

    return behaviour


def reset_mid_body(*, sent: int = 1000, declared: int = 100_000) -> Behaviour:
    """Headers and the first `sent` bytes of a longer body, then a TCP RST."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
        await _write_head(
            writer, 200, {"Content-Type": "application/rss+xml", "Content-Length": str(declared)}
        )
        writer.write(b'<?xml version="1.0"?><rss version="2.0"><channel>'.ljust(sent))
        await writer.drain()
        await asyncio.sleep(0.05)
        _abort_with_rst(writer)

    return behaviour


async def reset_before_headers(
    request: Request, writer: asyncio.StreamWriter, site: FaultySite
) -> None:
    """Read the request, then reset the connection without a byte of answer."""
    _abort_with_rst(writer)


def stream(
    size: int,
    *,
    prefix: bytes = b"",
    filler: bytes = b" ",
    content_type: str = "text/html; charset=utf-8",
    declare_length: bool = False,
) -> Behaviour:
    """`size` bytes (`prefix`, then `filler` repeated), generated as they are sent.

    Chunked unless `declare_length`, so a client cannot refuse it from the
    headers alone and has to cut the stream. The server never holds more than
    one 64 KiB chunk, so it adds nothing to the memory of the test process.
    """
    block = (filler * (_CHUNK // len(filler) + 1))[:_CHUNK]

    async def behaviour(request: Request, writer: asyncio.StreamWriter, site: FaultySite) -> None:
        head = {"Content-Type": content_type}
        if declare_length:
            head["Content-Length"] = str(size)
        else:
            head["Transfer-Encoding"] = "chunked"
        await _write_head(writer, 200, head)
        left = size
        first = prefix
        while left > 0:
            piece = (first + block)[: min(_CHUNK, left)]
            first = b""
            left -= len(piece)
            if declare_length:
                writer.write(piece)
            else:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        if not declare_length:
            writer.write(b"0\r\n\r\n")

    return behaviour


def _compressed(prefix: bytes, size: int, wbits: int) -> bytes:
    """`prefix` and then spaces up to `size` bytes, compressed without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts = [packer.compress(prefix)]
    block = b" " * _CHUNK
    left = size - len(prefix)
    while left > 0:
        parts.append(packer.compress(block[: min(_CHUNK, left)]))
        left -= _CHUNK
    parts.append(packer.flush())
    return b"".join(parts)


def gzip_bomb(
    size: int, *, prefix: bytes = b"", content_type: str = "application/rss+xml"
) -> Behaviour:
    """A small gzip body (`Content-Encoding: gzip`) that decodes to `size` bytes."""
    return _bomb(_compressed(prefix, size, 16 + zlib.MAX_WBITS), "gzip", content_type)


def deflate_bomb(
    size: int, *, prefix: bytes = b"", content_type: str = "text/html; charset=utf-8"
) -> Behaviour:
    """A small deflate body (`Content-Encoding: deflate`) that decodes to `size` bytes."""
    return _bomb(_compressed(prefix, size, zlib.MAX_WBITS), "deflate", content_type)


def _bomb(data: bytes, encoding: str, content_type: str) -> Behaviour:
    return respond(data, content_type=content_type, headers={"Content-Encoding": encoding})
