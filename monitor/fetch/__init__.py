"""Polite HTTP for every stage: `Fetcher.fetch` returns a `FetchResult`, never raises.

Modules:

    client.py   the Fetcher: conditional GET, deadline, body cap, Retry-After, error kinds
    hosts.py    per-host slots: concurrent requests and delay between starts, per hostname
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
from monitor.fetch.hosts import DEFAULT_LIMITS, HostLimits, HostSlot, HostSlots

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_LIMITS",
    "ERROR_KINDS",
    "FEED_ACCEPT",
    "PAGE_ACCEPT",
    "FetchKind",
    "Fetcher",
    "HostLimits",
    "HostSlot",
    "HostSlots",
    "parse_retry_after",
]
