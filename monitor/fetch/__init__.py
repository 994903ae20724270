"""Polite HTTP for every stage: `Fetcher.fetch` returns a `FetchResult`, never raises.

Modules:

    client.py   the Fetcher: the session, conditional GET and post_form (WebSub hub requests),
                the deadline and the redirect loop with the guard on every hop: the one
                guarded path for every request
    redirects.py  the rules of one hop: where a Location leads, whether a POST may follow
    body.py     the body of a response, read within its cap (streamed, decoded, bombs cut)
    response.py the FetchResult of a response: validators, freshness, Retry-After, WebSub links
    errors.py   the bounded error kinds, and the FetchErrors of exceptions, statuses, refusals
    hosts.py    per-host slots: concurrent requests and delay between starts, per hostname
    guard.py    the address policy: no loopback, private or metadata address off the trusted origins
    browser.py  `render: browser`: a page loaded in headless Chromium, under the same policy
                (imported where used: Playwright is an optional extra)
"""

from monitor.fetch.client import (
    ACCEPT_ENCODING,
    ERROR_KINDS,
    FEED_ACCEPT,
    PAGE_ACCEPT,
    Fetcher,
    FetchKind,
    parse_retry_after,
)
from monitor.fetch.guard import REFUSAL_REASONS, AddressGuard, address_class, origin_key
from monitor.fetch.hosts import DEFAULT_LIMITS, HostLimits, HostSlot, HostSlots

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_LIMITS",
    "ERROR_KINDS",
    "FEED_ACCEPT",
    "PAGE_ACCEPT",
    "REFUSAL_REASONS",
    "AddressGuard",
    "FetchKind",
    "Fetcher",
    "HostLimits",
    "HostSlot",
    "HostSlots",
    "address_class",
    "origin_key",
    "parse_retry_after",
]
