"""The sources of config.yaml (`sources[]`) and the watchlists (`watchlists[]`).

`SourceConfig` holds what one source may set: its kind and URL (a Telegram
channel stands for its preview URL), its interval (a duration or an adaptive
`{min, max}`), robots.txt, extraction rules, rendering; its validators give
each mistake its path and an actionable message. `WatchlistConfig` holds the
terms and RE2 patterns a consumer watches for. The defaults a source falls
back on are sections.py's; applying them is model.py's.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import cssselect
from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.config.base import Duration, Strict, check_http_url, check_label, check_topic
from monitor.models import ExtractionRules, Watchlist
from monitor.userregex import UserRegexError, compile_user_regex

__all__ = [
    "Interval",
    "IntervalRange",
    "Regex",
    "Selector",
    "SourceConfig",
    "Term",
    "WatchlistConfig",
]

class IntervalRange(Strict):
    """`interval: {min: 1m, max: 1h}`: adapt to the source's publication rate (adaptive.py)."""

    min: Duration
    max: Duration

    @model_validator(mode="after")
    def _min_below_max(self) -> IntervalRange:
        if self.min > self.max:
            raise PydanticCustomError("interval_range", "min must not be greater than max")
        return self

    @property
    def start(self) -> float:
        """Where an adaptive interval starts before any rate is seen: the geometric mean."""
        return math.sqrt(self.min * self.max)


def _interval_form(value: Any) -> str:
    return "min-max" if isinstance(value, dict | IntervalRange) else "float"


# A duration, or {min, max}. The tags are names `_format_loc` leaves out of paths.
Interval = Annotated[
    Annotated[Duration, Tag("float")] | Annotated[IntervalRange, Tag("min-max")],
    Discriminator(_interval_form),
]


def _check_selector(value: str) -> str:
    try:
        cssselect.GenericTranslator().css_to_xpath(value)
    except cssselect.SelectorError as exc:
        raise PydanticCustomError(
            "selector",
            "must be a valid CSS selector such as 'div.article-body', got {value}: {error}",
            {"value": repr(value), "error": str(exc)},
        ) from None
    return value


def _check_regex(value: str) -> str:
    # RE2, the engine that will run it: linear time, so no pattern can hang a worker.
    try:
        compile_user_regex(value)
    except UserRegexError as exc:
        raise PydanticCustomError(
            "regex",
            "must be a valid regular expression for RE2 (matched in linear time: no "
            "backreferences or lookaround), got {value}: {error}",
            {"value": repr(value), "error": str(exc)},
        ) from None
    return value


def _check_term(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("term", "must not be blank")
    return " ".join(value.split())


# List items validated one by one, so an error names its index: `regex[2]: ...`.
Selector = Annotated[str, AfterValidator(_check_selector)]
Regex = Annotated[str, AfterValidator(_check_regex)]
Term = Annotated[str, AfterValidator(_check_term)]


class SourceConfig(Strict):
    id: str
    name: str | None = None
    url: str
    kind: Literal["auto", "feed", "sitemap", "listing", "telegram"] = "auto"
    # Listing pages (see README "Source kinds"): which links are statements.
    selector: str | None = None
    link_pattern: str | None = None
    interval: Interval | None = None
    allow_fast_polling: bool | None = None  # None: as defaults.allow_fast_polling
    timeout: Duration | None = None
    backfill: bool | None = None
    topic: str | None = None
    tags: list[str] = Field(default_factory=list)
    # robots.txt is obeyed unless turned off, with a reason that is logged at start.
    robots: bool = True
    robots_reason: str | None = None
    # Cache-Control max-age, Expires and RSS <ttl> are floors on the poll interval.
    respect_cache_headers: bool = True
    recheck_interval: Duration | None = None
    recheck_window: Duration | None = None
    # Extraction rules for layouts that defeat generic extraction (README "Extraction rules").
    content_selector: str | None = None
    title_selector: str | None = None
    date_selector: str | None = None
    date_format: str | None = None
    remove_selectors: list[Selector] = Field(default_factory=list)
    # Telegram channels (README "Source kinds"): `channel: <name>` stands for
    # `url: https://t.me/s/<name>`; at most `max_pages` preview pages per poll.
    channel: str | None = None
    max_pages: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="before")
    @classmethod
    def _channel_gives_the_url(cls, data: Any) -> Any:
        from monitor.sources.telegram import channel_of, preview_url

        if not isinstance(data, dict):
            return data
        if data.get("channel") and not data.get("url"):
            data = {**data, "url": preview_url(str(data["channel"]))}
        url = data.get("url")
        if (
            data.get("kind", "auto") == "auto"
            and isinstance(url, str)
            and re.match(r"^https?://(www\.)?t\.me/s/", url, re.IGNORECASE)
            and channel_of(url)
        ):
            data = {**data, "kind": "telegram"}  # a channel's preview reads as nothing else
        return data

    @model_validator(mode="after")
    def _telegram_names_a_channel(self) -> SourceConfig:
        from monitor.sources.telegram import channel_of, valid_channel

        if self.channel is not None and self.kind != "telegram":
            raise PydanticCustomError("channel", "channel: only for kind: telegram")
        if self.kind != "telegram":
            return self
        if self.channel is not None and not valid_channel(self.channel):
            raise PydanticCustomError(
                "channel",
                "channel: must be a public channel name ([A-Za-z0-9_], 4 to 64), got {value}",
                {"value": repr(self.channel)},
            )
        named = channel_of(self.url)
        if named is None:
            raise PydanticCustomError(
                "url",
                "url: a telegram source reads a channel's web preview, "
                "https://t.me/s/<channel>, got {value} (or give channel: <name>)",
                {"value": repr(self.url)},
            )
        if self.channel is not None and self.channel != named:
            raise PydanticCustomError(
                "channel",
                "channel: {channel} does not match the url's channel {named}",
                {"channel": repr(self.channel), "named": repr(named)},
            )
        return self
    # `browser`: the source's pages (listing and statements) are rendered in headless
    # Chromium first (README "Pages that need a browser").
    render: Literal["http", "browser"] = "http"

    @model_validator(mode="after")
    def _date_format_needs_a_selector(self) -> SourceConfig:
        if self.date_format is not None and self.date_selector is None:
            raise PydanticCustomError(
                "date_format", "date_format: needs date_selector (the element it parses)"
            )
        return self

    @field_validator("content_selector", "title_selector", "date_selector")
    @classmethod
    def _rule_selector_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _check_selector(value)

    @field_validator("date_format")
    @classmethod
    def _date_format_has_a_directive(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise PydanticCustomError(
                "date_format",
                "must be a strptime format such as '%d.%m.%Y' or '%B %d, %Y', got {value}",
                {"value": repr(value)},
            )
        return value

    @property
    def rules(self) -> ExtractionRules | None:
        rules = ExtractionRules(
            content_selector=self.content_selector,
            title_selector=self.title_selector,
            date_selector=self.date_selector,
            date_format=self.date_format,
            remove_selectors=tuple(self.remove_selectors),
        )
        return rules if rules else None

    @model_validator(mode="after")
    def _robots_off_needs_a_reason(self) -> SourceConfig:
        if not self.robots and not (self.robots_reason or "").strip():
            raise PydanticCustomError(
                "robots_reason",
                "robots_reason: is required when robots is false (it is logged at start)",
            )
        return self

    @field_validator("id")
    @classmethod
    def _id_is_a_label(cls, value: str) -> str:
        return check_label(value, "source_id")

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("topic")
    @classmethod
    def _topic_is_legal(cls, value: str | None) -> str | None:
        return None if value is None else check_topic(value)

    @field_validator("selector")
    @classmethod
    def _selector_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _check_selector(value)

    @field_validator("link_pattern")
    @classmethod
    def _link_pattern_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _check_regex(value)


class WatchlistConfig(Strict):
    """`watchlists[]`: terms a consumer watches for. A hit goes to `topic` as well."""

    id: str
    terms: list[Term] = Field(default_factory=list)
    regex: list[Regex] = Field(default_factory=list)
    topic: str = "statements.alerts"
    sources: list[str] = Field(default_factory=list)  # empty: every source

    @field_validator("id")
    @classmethod
    def _id_is_a_label(cls, value: str) -> str:
        return check_label(value, "watchlist_id")

    @field_validator("topic")
    @classmethod
    def _topic_is_legal(cls, value: str) -> str:
        return check_topic(value)

    @model_validator(mode="after")
    def _has_something_to_match(self) -> WatchlistConfig:
        if not self.terms and not self.regex:
            raise PydanticCustomError(
                "watchlist_empty", "a watchlist needs at least one entry in terms or regex"
            )
        return self

    def resolved(self) -> Watchlist:
        return Watchlist(
            id=self.id,
            terms=tuple(self.terms),
            regex=tuple(self.regex),
            topic=self.topic,
            sources=tuple(self.sources),
        )
