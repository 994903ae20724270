"""Polite HTTP for every stage: `Fetcher.fetch` returns a `FetchResult`, never raises.

Modules:

    client.py   the Fetcher: conditional GET, deadline, body cap, redirects, Retry-After, errors;
                post_form (WebSub hub requests): the one guarded path for every request
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
