"""Where a redirect leads, and whether it may be followed: the rules of one hop.

The Fetcher (client.py) follows redirects itself, hop by hop; this module
holds what it asks at each one: the absolute http(s) URL a Location points to,
whether a POST may carry its body there (a 307/308 on its own origin only),
and the errors of a redirect that is not followed (a Location that is not an
http(s) URL, or one hop too many). The address policy of the hop is the
guard's (guard.py), judged by the Fetcher before it goes.
"""

from __future__ import annotations

from typing import Final

from yarl import URL

from monitor.fetch.errors import quote
from monitor.fetch.guard import origin_key
from monitor.models import FetchError

__all__ = [
    "PERMANENT",
    "REDIRECTS",
    "SCHEMES",
    "keeps_body",
    "not_followed",
    "redirect_target",
    "too_many",
]

SCHEMES: Final = frozenset({"http", "https"})
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
PERMANENT: Final = frozenset({301, 308})
_KEEP_METHOD: Final = frozenset({307, 308})  # the redirects that re-send a POST as a POST


def redirect_target(base: URL, location: str) -> tuple[URL, str] | None:
    """The absolute URL a Location leads to, and its host; None when it is not http(s).

    Relative references are resolved against `base`, as aiohttp does; the
    fragment is dropped, since it is never sent.
    """
    try:
        target = base.join(URL(location))
    except (TypeError, ValueError):
        return None
    host = target.host
    if not host or not target.raw_host or target.scheme not in SCHEMES:
        return None
    if target.raw_fragment:
        target = target.with_fragment(None)
    return target, host


def keeps_body(status: int, origin: URL, hop: URL) -> bool:
    """Whether a POST may follow a `status` redirect to `hop`: a 307/308 on `origin`'s origin.

    A 301/302/303 would turn it into a GET (a different request, whose success
    says nothing of the POST's), and another origin must never see the body.
    """
    return status in _KEEP_METHOD and (hop.scheme, *origin_key(hop)) == (
        origin.scheme,
        *origin_key(origin),
    )


def not_followed(status: int, location: str) -> FetchError:
    """The error of a redirect whose Location is not an http(s) URL."""
    return FetchError(
        kind="redirects",
        message=f"HTTP {status} to {quote(location)}, not an http(s) URL",
        retriable=False,
    )


def too_many(redirects: int, max_redirects: int) -> FetchError:
    """The error of one redirect more than `max_redirects` (a loop, most often)."""
    return FetchError(
        kind="redirects",
        message=f"gave up after {redirects + 1} redirects (at most {max_redirects} are followed)",
        retriable=False,
    )
