"""What a failed fetch is called: the bounded error kinds and the FetchErrors that carry them.

Every failure of a request ends here as a `FetchError` whose `kind` is one of
`ERROR_KINDS`, a bounded set used as a metric label:

    kind         cause                                                retriable
    timeout      the total deadline passed (connect, headers or body)  yes
    connect      connection refused, host or network unreachable       yes
    dns          the hostname did not resolve                          yes
    reset        server disconnected, connection reset, broken body    yes
    tls          TLS handshake or certificate failure                  no
    redirects    too many redirects (a loop), a bad or missing Location no
    refused      the address policy forbids the address (see guard.py) no
    too_large    the decoded body exceeds `max_bytes`                  no
    http_429     429 Too Many Requests                                 yes
    http_4xx     any other 4xx status                                  no (408: yes)
    http_5xx     any 5xx status                                        yes
    invalid_url  the URL cannot be fetched over http(s)                no
    other        anything else; logged, since it may be a bug          yes

This module maps statuses and refusals to those kinds (the Fetcher maps aiohttp's
exceptions, with `describe`),
writes the messages (URLs and exception texts cut to fit), counts refusals in
`FETCH_REFUSED{source_id, reason}`, and builds the result of a request that was
never sent. It opens no connection: the Fetcher (client.py) does.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import structlog
from yarl import URL

from monitor.fetch.guard import AddressRefusedError, Refusal
from monitor.metrics import FETCH_REFUSED
from monitor.models import FetchError, FetchResult

__all__ = [
    "ERROR_KINDS",
    "describe",
    "invalid_url",
    "log_unusual",
    "no_response",
    "post_redirect_refused",
    "quote",
    "refusal_in",
    "refused",
    "status_error",
    "timeout_error",
    "too_large",
]

ERROR_KINDS: Final = frozenset(
    {
        "timeout",
        "connect",
        "dns",
        "reset",
        "tls",
        "redirects",
        "refused",
        "too_large",
        "http_429",
        "http_4xx",
        "http_5xx",
        "invalid_url",
        "other",
    }
)

_MESSAGE_MAX: Final = 300  # characters of an exception kept in a FetchError message
_URL_MAX: Final = 150  # characters of a URL quoted in a FetchError message

log = structlog.get_logger(__name__)


def status_error(status: int) -> FetchError:
    if status == 429:
        return FetchError(kind="http_429", message="HTTP 429 Too Many Requests", retriable=True)
    if status >= 500:
        return FetchError(kind="http_5xx", message=f"HTTP {status}", retriable=True)
    return FetchError(kind="http_4xx", message=f"HTTP {status}", retriable=status == 408)


def too_large(max_bytes: int, why: str) -> FetchError:
    return FetchError(
        kind="too_large", message=f"body over the {max_bytes}-byte cap: {why}", retriable=False
    )


def log_unusual(error: FetchError, *, source_id: str, url: str) -> None:
    """Log the refusals that deserve a look; routine outcomes are left to the metrics.

    An unexpected exception ("other") is logged where it is caught, with its traceback.
    """
    if error.kind in ("too_large", "tls", "redirects", "refused"):
        log.info(
            "fetch_refused", source_id=source_id, url=url, kind=error.kind, error=error.message
        )


def post_redirect_refused(status: int, url: URL, *, source_id: str) -> FetchError:
    """The FetchError of a POST redirect that is not followed, counted in FETCH_REFUSED."""
    FETCH_REFUSED.labels(source_id=source_id, reason="post_redirect").inc()
    return FetchError(
        kind="refused",
        message=f"HTTP {status} redirect of a POST to {quote(str(url))} refused: "
        "a request body is re-sent only on a 307/308 to its own origin",
        retriable=False,
    )


def refusal_in(exc: BaseException) -> Refusal | None:
    """The address-policy refusal behind an aiohttp error, if that is what it is.

    The guarded resolver raises `AddressRefusedError`; aiohttp wraps it in a
    `ClientConnectorDNSError` whose cause it is.
    """
    cause: BaseException | None = exc
    for _ in range(4):
        if cause is None:
            return None
        if isinstance(cause, AddressRefusedError):
            return cause.refusal
        cause = cause.__cause__ or cause.__context__
    return None


def refused(refusal: Refusal, url: URL, *, source_id: str, redirected: bool) -> FetchError:
    """The FetchError of a refused request, counted in FETCH_REFUSED."""
    FETCH_REFUSED.labels(source_id=source_id, reason=refusal.reason).inc()
    where = f"redirect to {quote(str(url))}" if redirected else quote(str(url))
    how = "set fetch.allow_private_networks: true to allow"
    return FetchError(
        kind="refused", message=f"{where} refused: {refusal.what}; {how}", retriable=False
    )


def timeout_error(deadline: float) -> FetchError:
    return FetchError(
        kind="timeout", message=f"no complete response within {deadline:g} s", retriable=True
    )


def quote(text: str) -> str:
    """`text` cut to fit in a FetchError message."""
    return text if len(text) <= _URL_MAX else text[: _URL_MAX - 1] + "…"


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def invalid_url(url: str, source_id: str, why: str) -> FetchResult:
    error = FetchError(kind="invalid_url", message=f"invalid URL: {why}", retriable=False)
    return no_response(url, source_id, error)


def no_response(url: str, source_id: str, error: FetchError) -> FetchResult:
    """The result of a request that was never sent."""
    return FetchResult(
        source_id=source_id,
        url=url,
        final_url=url,
        status=0,
        fetched_at=dt.datetime.now(dt.UTC),
        error=error,
    )
