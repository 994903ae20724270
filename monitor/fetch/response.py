"""From a response's headers to a FetchResult: validators, freshness, Retry-After, WebSub links.

`outcome` turns what an exchange ended with (the response, its body, the
error, the last URL that answered, the permanent redirect) into the
`FetchResult` the callers see. A 304 keeps the validators the request sent
when the server does not repeat them. `parse_max_age` (Cache-Control,
Expires) and `parse_retry_after` read the headers that tell when to come
back; `Link` headers give the WebSub hub and self URLs.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import AsyncIterator
from typing import Protocol

import yarl
from multidict import CIMultiDictProxy, MultiDictProxy
from yarl import URL

from monitor.fetch.errors import log_unusual
from monitor.models import FetchError, FetchResult

__all__ = ["Exchange", "Response", "outcome", "parse_max_age", "parse_retry_after"]


class _Stream(Protocol):
    def iter_chunked(self, n: int) -> AsyncIterator[bytes]: ...


class Response(Protocol):
    """What is read of an aiohttp `ClientResponse` the Fetcher has opened.

    A protocol rather than aiohttp's class, so that reading a response (here
    and in body.py) is not mistaken for opening one (tests/test_outbound_http.py).
    """

    @property
    def status(self) -> int: ...
    @property
    def url(self) -> URL: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def links(self) -> MultiDictProxy[MultiDictProxy[str | URL]]: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def content(self) -> _Stream: ...
    def close(self) -> None: ...


# The result of one exchange: the response that ended it (None when none did),
# its body, the error, the URL of the last response that arrived (else the
# request's), the permanent redirect, when the slot admitted it and how long it took.
Exchange = tuple[Response | None, bytes, FetchError | None, URL, URL | None, dt.datetime, float]


def outcome(
    exchange: Exchange,
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
        log_unusual(error, source_id=source_id, url=url)
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
    return response_result(
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


def response_result(
    response: Response,
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


def _websub_links(response: Response) -> tuple[str | None, str | None]:
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
