"""Source adapters: one per kind of document, each turning fetched bytes into candidates.

    feed.py      RSS and Atom via feedparser, and `parse_document`, which sniffs the format
    jsonfeed.py  JSON Feed 1.0/1.1
    base.py      the `DocumentParser` protocol every adapter meets, and their shared helpers

Every adapter is a pure top-level function, safe to run in a process pool.
"""

from __future__ import annotations

from monitor.sources.base import DocumentParser
from monitor.sources.feed import parse_document, parse_xml_feed
from monitor.sources.jsonfeed import parse_json_feed

__all__ = ["DocumentParser", "parse_document", "parse_json_feed", "parse_xml_feed"]
