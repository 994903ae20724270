"""Reading a response's body within its cap: streamed, decoded, never more than asked.

A 304 reads nothing; an error status keeps the first `ERROR_BODY_BYTES` for
humans; a 3xx that is not followed is a "redirects" error; anything else is
read in `_CHUNK` steps up to `max_bytes` decoded bytes. aiohttp decodes gzip,
deflate and br as the stream is read, so a decompression bomb costs the cap
and one chunk, never the whole. A body over the cap drops the connection
rather than drain the rest. The charset is not decoded here: the body is
returned as bytes, and its Content-Type with the FetchResult (response.py).
"""

from __future__ import annotations

from typing import Final

from monitor.fetch.errors import status_error, too_large
from monitor.fetch.response import Response
from monitor.models import FetchError

__all__ = ["ERROR_BODY_BYTES", "read_response"]

_CHUNK: Final = 64 * 1024  # bytes asked of the stream per read
ERROR_BODY_BYTES: Final = 64 * 1024  # of a 4xx/5xx body, kept for humans


async def read_response(response: Response, max_bytes: int) -> tuple[bytes, FetchError | None]:
    """The body of `response`, within the cap, and the error its status means."""
    status = response.status
    if status == 304:
        return b"", None  # the hot path: nothing to read
    if status >= 400:
        body = await _read_prefix(response, min(max_bytes, ERROR_BODY_BYTES))
        return body, status_error(status)
    if status >= 300:  # a redirect that is not followed: no Location, or 300
        return b"", FetchError(
            kind="redirects", message=f"HTTP {status} without a usable Location", retriable=False
        )
    declared = response.content_length
    if declared is not None and declared > max_bytes and _is_identity(response):
        response.close()
        return b"", too_large(max_bytes, f"Content-Length is {declared}")
    body, overflow = await _read_capped(response, max_bytes)
    if overflow:
        response.close()  # drop the connection rather than drain the rest
        return b"", too_large(max_bytes, "the decoded body is larger")
    return body, None


async def _read_capped(response: Response, max_bytes: int) -> tuple[bytes, bool]:
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


async def _read_prefix(response: Response, max_bytes: int) -> bytes:
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


def _is_identity(response: Response) -> bool:
    encoding = response.headers.get("Content-Encoding")
    return encoding is None or encoding.strip().lower() == "identity"
