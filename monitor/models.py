"""The typed contracts that flow between pipeline stages.

Every stage takes and returns these frozen dataclasses, never another stage's
internals. They are plain data: picklable (so they cross into the process
pool), hashable where it matters, and free of I/O.

    Source ─fetch→ FetchResult ─sources→ ParsedFeed[Candidate]
           ─detect→ Candidate ─extract→ Article ─events→ Statement → Event
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Article",
    "Candidate",
    "Event",
    "ExtractionRules",
    "FetchError",
    "FetchResult",
    "ParsedFeed",
    "Quote",
    "Source",
    "SourceKind",
    "Speaker",
    "Statement",
    "WatchMatch",
    "Watchlist",
]

SourceKind = Literal["auto", "feed", "sitemap", "listing", "telegram"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractionRules:
    """Per-source extraction rules, for sites whose layout defeats generic extraction.

    Each is optional. A rule that matches nothing on a page is reported in
    `Article.rule_misses`, and extraction falls back to the generic path for it.
    """

    content_selector: str | None = None  # CSS: the statement body
    title_selector: str | None = None  # CSS: the statement's title
    date_selector: str | None = None  # CSS: the element holding the publication date
    date_format: str | None = None  # strptime format of that date; None: parse leniently
    remove_selectors: tuple[str, ...] = ()  # CSS: removed from the page before extraction

    def __bool__(self) -> bool:
        return any(
            (self.content_selector, self.title_selector, self.date_selector, self.remove_selectors)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Watchlist:
    """Terms and patterns a consumer watches for; a hit routes the event to `topic` too."""

    id: str
    terms: tuple[str, ...] = ()  # whole words or phrases, case-insensitive, Unicode-aware
    regex: tuple[str, ...] = ()  # Python regular expressions, case-insensitive
    topic: str = "statements.alerts"
    sources: tuple[str, ...] = ()  # source ids it applies to; empty means every source


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """One configured source, with the defaults already applied."""

    id: str
    name: str
    url: str
    interval: float  # seconds between polls
    timeout: float  # total deadline of one fetch, seconds
    backfill: bool
    topic: str
    tags: tuple[str, ...] = ()
    kind: SourceKind = "auto"
    # Adaptive interval (`interval: {min, max}`): both set, and `interval` is where it
    # starts; both None for a fixed interval. See adaptive.py.
    interval_min: float | None = None
    interval_max: float | None = None
    robots: bool = True  # obey robots.txt
    respect_cache_headers: bool = True  # max-age, Expires and RSS <ttl> as interval floors
    selector: str | None = None  # listing pages: CSS selector of the statement links
    link_pattern: str | None = None  # listing pages: regex that statement links must match
    recheck_interval: float = 3600.0  # seconds between re-checks of a published statement
    recheck_window: float = 7 * 86400.0  # re-check statements detected this recently
    rules: ExtractionRules | None = None  # per-source extraction rules, if any
    max_pages: int = 10  # telegram: preview pages read per poll when catching up (`?before=`)
    render: Literal["http", "browser"] = "http"  # "browser": pages rendered in Chromium first

    @property
    def adaptive(self) -> bool:
        return self.interval_min is not None and self.interval_max is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchError:
    """Why a fetch produced no usable body.

    `kind` is a short, bounded token used as a metric label (`timeout`,
    `connect`, `too_large`, `http_5xx`, ...); `message` is for humans.
    """

    kind: str
    message: str
    retriable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchResult:
    """The outcome of one HTTP GET. The fetcher never raises on a status."""

    source_id: str
    url: str
    final_url: str
    status: int  # 0 when no response arrived
    fetched_at: dt.datetime
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header
    permanent_redirect: str | None = None  # where a 301/308 chain from `url` ended
    hub: str | None = None  # a WebSub hub named by a `Link: <...>; rel="hub"` header
    self_link: str | None = None  # the topic URL named by `Link: <...>; rel="self"`
    elapsed: float = 0.0
    error: FetchError | None = None
    max_age: float | None = None  # seconds of freshness, from Cache-Control max-age or Expires

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One feed entry that may be a statement, as the source described it."""

    source_id: str
    feed_url: str
    url: str | None  # absolute link to the statement page, if the entry has one
    guid: str | None
    title: str | None = None
    summary: str | None = None  # plain text
    content_html: str | None = None  # full content carried by the feed, if any
    published_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None  # the feed's updated date, where distinct from published
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # What a source kind knows of an entry beyond the feed fields, as (name, value)
    # pairs: a Telegram post's channel, id, "forwarded from", media kind, edited mark.
    # Published as `data.post`.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str | None:
        """The identity of the entry within its source: guid, else link."""
        return self.guid or self.url


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFeed:
    """What a source adapter made of a fetched document."""

    format: str  # "rss20", "atom10", "json1.1", ... or "unknown"
    title: str | None
    entries: tuple[Candidate, ...]
    bozo: bool = False  # the document was malformed, entries are best effort
    error: str | None = None  # set when nothing usable could be read
    ttl: float | None = None  # RSS <ttl>, seconds
    hub: str | None = None  # WebSub hub named by `<link rel="hub">`, absolute
    self_url: str | None = None  # `<link rel="self">`: the topic URL to subscribe to
    # Documents to fetch next, in the same poll: the child sitemaps of a sitemap
    # index or robots.txt, or the feed an HTML page links to (format "discovery").
    follow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Article:
    """What extraction made of one statement page. Plain data from the pool."""

    title: str | None
    text: str  # paragraphs separated by one blank line
    language: str | None  # ISO 639-1
    published_at: dt.datetime | None
    canonical_url: str | None
    authors: tuple[str, ...] = ()
    description: str | None = None
    sitename: str | None = None
    tags: tuple[str, ...] = ()
    # Names of the source's extraction rules that matched nothing on this page
    # ("content_selector", "title_selector", "date_selector", "remove_selectors");
    # generic extraction stood in for each.
    rule_misses: tuple[str, ...] = ()
    # What the document was: "text/html", or "application/pdf" (monitor/extract/pdf.py).
    media_type: str = "text/html"


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """A direct quotation in a statement, and who said it (None when the text does not say)."""

    text: str  # the words inside the quotation marks, marks removed
    speaker: str | None  # the speaker's fullest name in the text
    verb: str | None  # the reporting verb as written ("said", "stressed", "according to")


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """A quantity a statement claims: "46 command centres" is 46 of "command centres"."""

    value: int | float
    unit: str  # what it counts; "%" for a percentage; a currency code (ISO 4217) for money
    text: str  # the words that state it, whitespace collapsed ("up to 100 armed extremists")
    bound: str | None = None  # "at_most" ("up to 100") or "more_than" ("over 700")


@dataclass(frozen=True, slots=True, kw_only=True)
class Speaker:
    """A named person quoted in a statement, with the role the text gives them."""

    name: str
    role: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchMatch:
    """How often one watchlist term (or pattern) occurs in a statement's title and text."""

    watchlist: str
    term: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One version of one statement: the payload of an event."""

    statement_id: str  # stable across versions; the Kafka key
    source_id: str
    source_name: str
    feed_url: str
    url: str | None
    guid: str | None
    title: str | None
    text: str
    summary: str | None
    language: str | None
    published_at: dt.datetime | None
    detected_at: dt.datetime
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    content_hash: str
    version: int
    backfill: bool
    extraction_error: str | None = None  # why `text` fell back to the feed's own content
    quotes: tuple[Quote, ...] = ()
    speakers: tuple[Speaker, ...] = ()
    matches: tuple[WatchMatch, ...] = ()
    figures: tuple[Figure, ...] = ()  # the quantities the text claims (extract/figures.py)
    # "text/html" or "application/pdf": what the statement's text was read from
    # (None when it is the feed's own text and the page's type is unknown).
    media_type: str | None = None
    # Every source that carried the statement (one canonical URL), first the one that
    # found it; empty means just `source_id`.
    sources: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # the candidate's `extra`, published as `data.post`


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A CloudEvent bound for one topic, one encode away from a Kafka record."""

    id: str
    type: str
    source: str
    subject: str | None
    time: dt.datetime
    topic: str
    key: str
    data: dict[str, Any] = field(default_factory=dict)
    dataschema: str | None = None
