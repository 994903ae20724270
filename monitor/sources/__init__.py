"""Source adapters: one per kind of document, each turning fetched bytes into candidates.

    feed.py      RSS and Atom via feedparser, and `parse_document`, which sniffs the format
    jsonfeed.py  JSON Feed 1.0/1.1
    sitemap.py   sitemaps, sitemap indexes (plain or gzipped), Google News sitemaps, robots.txt
    listing.py   HTML listing pages: links chosen by a CSS selector or a heuristic
    listing_blocks.py  the main list of a listing page without a selector, by structure
    listing_dates.py   dates as listing pages print them next to links
    listing_urls.py    which URLs of a listing page may be statements
    telegram.py  public Telegram channels, from their web preview t.me/s/<channel>
    discovery.py feed autodiscovery: the feed an HTML page links to
    kinds.py     `sniff_kind`: what a fetched document is, by its content
    base.py      the `DocumentParser` protocol every adapter meets, and their shared helpers

Every adapter is a pure top-level function, safe to run in a process pool.
"""

from __future__ import annotations

from monitor.sources.base import DocumentParser
from monitor.sources.discovery import discover_feeds, parse_discovery
from monitor.sources.feed import parse_document, parse_xml_feed
from monitor.sources.jsonfeed import parse_json_feed
from monitor.sources.kinds import sniff_kind
from monitor.sources.listing import parse_listing
from monitor.sources.sitemap import parse_robots, parse_sitemap
from monitor.sources.telegram import parse_telegram

__all__ = [
    "DocumentParser",
    "discover_feeds",
    "parse_discovery",
    "parse_document",
    "parse_json_feed",
    "parse_listing",
    "parse_robots",
    "parse_sitemap",
    "parse_telegram",
    "parse_xml_feed",
    "sniff_kind",
]
