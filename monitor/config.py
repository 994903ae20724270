"""The configuration: pydantic models of config.yaml, env overrides, precise errors.

`load_config(path)` is the one entry point. It reads YAML, applies
`MONITOR__SECTION__KEY=value` environment overrides, validates, and either
returns a `Config` or raises `ConfigError` with one `path: message` line per
problem, for example `sources[3].interval: must be a positive duration`.

Unknown keys are errors: a misspelt key that silently does nothing is how a
source ends up never polled.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Annotated, Any, Literal

import cssselect
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor import __version__
from monitor.errors import ConfigError
from monitor.models import ExtractionRules, Source, Watchlist
from monitor.userregex import UserRegexError, compile_user_regex

__all__ = [
    "ENV_PREFIX",
    "Config",
    "CoordinationConfig",
    "DefaultsConfig",
    "FetchConfig",
    "HostConfig",
    "IntervalRange",
    "KafkaConfig",
    "SourceConfig",
    "WatchlistConfig",
    "WebSubConfig",
    "default_config_path",
    "duplicate_source_ids",
    "load_config",
    "parse_duration",
]

ENV_PREFIX = "MONITOR__"
_SECRET_KEYS = frozenset({"sasl_plain_password", "ssl_keyfile_password"})
EMBEDDED = "embedded"
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SOURCE_ID = re.compile(r"^[a-z0-9_-]+$")
# Issue 13: bounds on what a config may ask of the machine and of the sites it polls.
MIN_INTERVAL = 1.0  # seconds; lower only with allow_fast_polling: true
WORKERS_PER_CPU = 4
MIN_WORKER_MEMORY_MB = 512
MAX_CONNECTIONS = 256  # per host
MAX_CONCURRENT_POLLS = 10_000
# C0 and C1 control characters and DEL: never part of a URL, and a CR or LF in one
# is a request-splitting attempt rather than a typo.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def parse_duration(value: Any) -> float:
    """Seconds from a number (`1`, `0.5`) or a duration string (`90s`, `5m`, `1h`, `250ms`)."""
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "must be a positive duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        unit = (match.group(2) or "s").lower()
        seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
    else:
        raise PydanticCustomError(
            "duration",
            "must be a positive duration: a number of seconds or a string like 90s, 5m, 1h",
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise PydanticCustomError("duration", "must be a positive duration")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaConfig(_Strict):
    bootstrap_servers: str = "localhost:9092"
    topic: str = "statements"
    enable_idempotence: bool = True
    client_id: str = "statement-monitor"
    create_topics: bool = True
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    linger_ms: int = Field(default=5, ge=0)
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    request_timeout: Duration = 30.0
    # Passed through to aiokafka as they are.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: (
        Literal["PLAIN", "GSSAPI", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None
    ) = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    sasl_kerberos_service_name: str | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_keyfile_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    # The largest record (key + value + headers) an event may become: keep it under the
    # broker's message.max.bytes (Kafka's default: 1048588). Bigger events are cut to fit.
    max_event_bytes: int = Field(default=900_000, ge=16_384, le=100_000_000)
    # The producer's own limit on one request (Kafka's max.request.size, aiokafka's default).
    max_request_size: int = Field(default=1_048_576, ge=16_384, le=1_000_000_000)

    @field_validator("topic")
    @classmethod
    def _topic_is_legal(cls, value: str) -> str:
        return _check_topic(value)

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers.strip().lower() == EMBEDDED


class StateConfig(_Strict):
    path: Path = Path("./state/monitor.db")
    outbox_max_events: int = Field(default=100_000, ge=1)
    # An empty store at start-up (a lost volume) is not a first start when the output
    # topic holds events of the configured sources: what they say was published is
    # learnt back, within these bounds (monitor/recovery.py, docs/operations.md).
    recover_from_topic: bool = True
    recover_max_age: Duration = 30 * 86400.0
    recover_max_events_per_partition: int = Field(default=10_000, ge=1)
    recover_timeout: Duration = 60.0  # waiting for the broker; then a first start


class MetricsConfig(_Strict):
    enabled: bool = True
    host: str = "0.0.0.0"  # a metrics endpoint is meant to be scraped
    port: int = Field(default=9108, ge=0, le=65535)


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    status_interval: Duration = 300.0  # the `sources: N healthy, M failing (...)` line


class HostConfig(_Strict):
    connections: int = Field(default=2, ge=1, le=MAX_CONNECTIONS)
    delay: Duration | Literal[0] = 0


class FetchConfig(_Strict):
    user_agent: str = (
        f"statement-monitor/{__version__} (+https://github.com/statement-monitor/statement-monitor)"
    )
    per_host_connections: int = Field(default=2, ge=1, le=MAX_CONNECTIONS)
    per_host_delay: Duration | Literal[0] = 0
    hosts: dict[str, HostConfig] = Field(default_factory=dict)
    max_concurrent_polls: int = Field(default=200, ge=1, le=MAX_CONCURRENT_POLLS)
    max_feed_bytes: int = Field(default=10_000_000, ge=1024)
    max_page_bytes: int = Field(default=20_000_000, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    # The origins named in `sources[].url` are trusted. Elsewhere (a redirect,
    # a statement link), loopback, private, link-local and metadata addresses
    # are refused unless this is true.
    allow_private_networks: bool = False


class ExtractConfig(_Strict):
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    timeout: Duration = 60.0
    page_attempts: int = Field(default=3, ge=1)
    # A statement PDF is read up to this many pages (monitor/extract/pdf.py).
    max_pdf_pages: int = Field(default=200, ge=1)
    # Issue 13: hostile pages. Structural caps checked before parsing (0: none),
    # the workers' address-space cap in MB (0: none), and workers that parse feeds only.
    max_elements: int = Field(default=200_000, ge=0)
    max_attributes: int = Field(default=400_000, ge=0)
    max_links: int = Field(default=20_000, ge=0)
    worker_memory_mb: int = Field(default=1024, ge=0)
    feed_workers: int = Field(default=1, ge=0, le=16)

    @field_validator("workers")
    @classmethod
    def _workers_fit_the_machine(cls, value: int) -> int:
        cpus = os.cpu_count() or 1
        if value > WORKERS_PER_CPU * cpus:
            raise PydanticCustomError(
                "workers",
                "must be at most {most} ({per} per CPU, {cpus} CPUs here): each worker is "
                "a process of 100 MB or more, and more workers than CPUs add no speed",
                {"most": WORKERS_PER_CPU * cpus, "per": WORKERS_PER_CPU, "cpus": cpus},
            )
        return value

    @field_validator("worker_memory_mb")
    @classmethod
    def _memory_fits_a_worker(cls, value: int) -> int:
        if 0 < value < MIN_WORKER_MEMORY_MB:
            raise PydanticCustomError(
                "worker_memory_mb",
                "must be 0 (no limit) or at least {least}: a worker's address space is "
                "about 250 MB before its first page",
                {"least": MIN_WORKER_MEMORY_MB},
            )
        return value


class BrowserConfig(_Strict):
    """`browser:`, for sources with `render: browser` (monitor/fetch/browser.py)."""

    # Where Debian's `chromium` package puts it; None: looked up on PATH as `chromium`.
    executable: Path | None = None
    timeout: Duration = 30.0  # one page: navigation, scripts and settling
    max_pages: int = Field(default=2, ge=1)  # pages open at once in the one browser
    settle: Duration = 0.5  # no network for this long after the load event: the page is done
    restart_after: int = Field(default=100, ge=1)  # pages; Chromium grows as it lives


class DefaultsConfig(_Strict):
    interval: Duration = 300.0
    # Intervals under MIN_INTERVAL (1 s) are refused unless this is true (here: every
    # source; or per source). Such a source is named in a warning at start.
    allow_fast_polling: bool = False
    timeout: Duration = 20.0
    backfill: bool = False
    # Re-checks of published statements' pages (edits, retractions): how often, how long.
    recheck_interval: Duration = 3600.0
    recheck_window: Duration = 7 * 86400.0


class IntervalRange(_Strict):
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


class SourceConfig(_Strict):
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
        if not _SOURCE_ID.match(value):
            raise PydanticCustomError(
                "source_id",
                "must match [a-z0-9_-]+ (it becomes a metric label), got {value}",
                {"value": repr(value)},
            )
        return value

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        _refuse_control_characters(value)
        if not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
            raise PydanticCustomError(
                "url",
                "must be an absolute http:// or https:// URL, got {value}",
                {"value": repr(value)},
            )
        return value

    @field_validator("topic")
    @classmethod
    def _topic_is_legal(cls, value: str | None) -> str | None:
        return None if value is None else _check_topic(value)

    @field_validator("selector")
    @classmethod
    def _selector_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _check_selector(value)

    @field_validator("link_pattern")
    @classmethod
    def _link_pattern_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _check_regex(value)


class WatchlistConfig(_Strict):
    """`watchlists[]`: terms a consumer watches for. A hit goes to `topic` as well."""

    id: str
    terms: list[Term] = Field(default_factory=list)
    regex: list[Regex] = Field(default_factory=list)
    topic: str = "statements.alerts"
    sources: list[str] = Field(default_factory=list)  # empty: every source

    @field_validator("id")
    @classmethod
    def _id_is_a_label(cls, value: str) -> str:
        if not _SOURCE_ID.match(value):
            raise PydanticCustomError(
                "watchlist_id",
                "must match [a-z0-9_-]+ (it becomes a metric label), got {value}",
                {"value": repr(value)},
            )
        return value

    @field_validator("topic")
    @classmethod
    def _topic_is_legal(cls, value: str) -> str:
        return _check_topic(value)

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


class WebSubConfig(_Strict):
    """Push: subscribe to the WebSub hub a feed names. Off while `callback_base` is None."""

    enabled: bool = True
    # The public base URL of this service's HTTP port (the metrics port); callbacks
    # are `<callback_base>/websub/<source id>`.
    callback_base: str | None = None
    lease: Duration = 864000.0  # 10 days: the lease asked of the hub

    @field_validator("callback_base")
    @classmethod
    def _callback_base_is_http(cls, value: str | None) -> str | None:
        if value is not None:
            _refuse_control_characters(value)
        if value is not None and not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
            raise PydanticCustomError(
                "url",
                "must be an absolute http:// or https:// URL, got {value}",
                {"value": repr(value)},
            )
        return value

    @property
    def active(self) -> bool:
        return self.enabled and self.callback_base is not None


class CoordinationConfig(_Strict):
    """`coordination`: instances with one `group_id` split the sources through Kafka.

    The sources are hashed into `shards`; each shard is a partition of the control
    topic, assigned to one instance by the consumer-group protocol. What must travel
    with a source (validators, the statements it has seen) is in the compacted state
    topic, one partition per shard. See monitor/coordination.py and docs/operations.md.
    """

    group_id: str
    shards: int = Field(default=32, ge=1, le=1024)
    control_topic: str | None = None  # default: "<group_id>.control"
    state_topic: str | None = None  # default: "<group_id>.state"
    session_timeout: Duration = 30.0  # a dead instance's sources move within this
    heartbeat_interval: Duration = 3.0

    @field_validator("group_id")
    @classmethod
    def _group_id_is_a_topic_prefix(cls, value: str) -> str:
        return _check_topic(value)

    @field_validator("control_topic", "state_topic")
    @classmethod
    def _topics_are_legal(cls, value: str | None) -> str | None:
        return None if value is None else _check_topic(value)

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> CoordinationConfig:
        if self.heartbeat_interval * 3 > self.session_timeout:
            raise PydanticCustomError(
                "heartbeat_interval",
                "heartbeat_interval: must be at most a third of session_timeout",
            )
        return self

    @property
    def control(self) -> str:
        return self.control_topic or f"{self.group_id}.control"

    @property
    def state(self) -> str:
        return self.state_topic or f"{self.group_id}.state"


class Config(_Strict):
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    browser: BrowserConfig = Field(default_factory=BrowserConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    websub: WebSubConfig = Field(default_factory=WebSubConfig)
    watchlists: list[WatchlistConfig] = Field(default_factory=list)
    # Several instances sharing the sources; None: one instance on SQLite alone.
    coordination: CoordinationConfig | None = None

    @model_validator(mode="after")
    def _source_ids_are_unique(self) -> Config:
        problems = duplicate_source_ids([source.id for source in self.sources])
        if problems:
            raise PydanticCustomError("duplicate_id", "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _watchlists_are_consistent(self) -> Config:
        problems = duplicate_source_ids([w.id for w in self.watchlists], "watchlists")
        known = {source.id for source in self.sources}
        for index, watchlist in enumerate(self.watchlists):
            for position, source_id in enumerate(watchlist.sources):
                if source_id not in known:
                    problems.append(
                        f"watchlists[{index}].sources[{position}]: no source has the id "
                        f"{source_id!r}"
                    )
        if problems:
            raise PydanticCustomError("watchlists", "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _sasl_password_needs_sasl(self) -> Config:
        # A password the protocol never sends: the operator believes the link is
        # authenticated, and it is not. (Checked here, where `monitor check` sees it;
        # the sink checks the other impossible combinations when it starts.)
        kafka = self.kafka
        if kafka.sasl_plain_password is not None and not kafka.security_protocol.startswith(
            "SASL_"
        ):
            raise PydanticCustomError(
                "problems",
                "kafka.sasl_plain_password: is set, but security_protocol {protocol} sends "
                "no SASL credentials (the connection would not be authenticated): use "
                "SASL_SSL (or SASL_PLAINTEXT), or remove the password",
                {"protocol": kafka.security_protocol},
            )
        return self

    @model_validator(mode="after")
    def _intervals_are_polite(self) -> Config:
        problems = [
            f"{path}: must be at least {MIN_INTERVAL:g} s, got {seconds:g} s (set "
            "allow_fast_polling: true on the source, or in defaults for all, to poll faster)"
            for path, seconds, allowed in self._intervals()
            if seconds < MIN_INTERVAL and not allowed
        ]
        if problems:
            raise PydanticCustomError("problems", "; ".join(problems))
        return self

    def fast_polling(self) -> list[tuple[str, float]]:
        """(config path, seconds) of every interval under 1 s, allowed: to warn about."""
        return [
            (path, seconds)
            for path, seconds, _ in self._intervals()
            if seconds < MIN_INTERVAL
        ]

    def _intervals(self) -> list[tuple[str, float, bool]]:
        """(path, seconds, fast polling allowed) of each interval the config sets."""
        default_allowed = self.defaults.allow_fast_polling
        found = [("defaults.interval", self.defaults.interval, default_allowed)]
        for index, source in enumerate(self.sources):
            allowed = (
                default_allowed
                if source.allow_fast_polling is None
                else source.allow_fast_polling
            )
            path = f"sources[{index}].interval"
            if isinstance(source.interval, IntervalRange):
                found.append((f"{path}.min", source.interval.min, allowed))
            elif source.interval is not None:
                found.append((path, source.interval, allowed))
            elif allowed != default_allowed:  # its own "no", under the default's interval
                found.append((f"{path} (from defaults.interval)", self.defaults.interval, allowed))
        return found

    def resolved_watchlists(self) -> tuple[Watchlist, ...]:
        return tuple(watchlist.resolved() for watchlist in self.watchlists)

    def resolved_sources(self) -> list[Source]:
        """The sources with the defaults applied: what the pipeline runs on."""
        return [self._resolve(source) for source in self.sources]

    def topics(self) -> list[str]:
        """Every topic a statement may be published to."""
        return sorted(
            {
                self.kafka.topic,
                *(s.topic for s in self.sources if s.topic),
                *(w.topic for w in self.watchlists),
            }
        )

    def _resolve(self, source: SourceConfig) -> Source:
        adaptive = source.interval if isinstance(source.interval, IntervalRange) else None
        fixed = source.interval if isinstance(source.interval, float) else None
        return Source(
            id=source.id,
            name=source.name or source.id,
            url=source.url,
            kind=source.kind,
            selector=source.selector,
            link_pattern=source.link_pattern,
            interval=(
                adaptive.start
                if adaptive is not None
                else (fixed or self.defaults.interval)
            ),
            interval_min=adaptive.min if adaptive is not None else None,
            interval_max=adaptive.max if adaptive is not None else None,
            robots=source.robots,
            respect_cache_headers=source.respect_cache_headers,
            timeout=source.timeout or self.defaults.timeout,
            backfill=self.defaults.backfill if source.backfill is None else source.backfill,
            topic=source.topic or self.kafka.topic,
            tags=tuple(source.tags),
            recheck_interval=source.recheck_interval or self.defaults.recheck_interval,
            recheck_window=source.recheck_window or self.defaults.recheck_window,
            rules=source.rules,
            max_pages=source.max_pages,
            render=source.render,
        )


def duplicate_source_ids(ids: list[Any], section: str = "sources") -> list[str]:
    """One problem line per id used a second time in `section`."""
    first_seen: dict[Any, int] = {}
    problems = []
    for index, source_id in enumerate(ids):
        if source_id in first_seen:
            problems.append(
                f"{section}[{index}].id: duplicate id {source_id!r} "
                f"(first used by {section}[{first_seen[source_id]}])"
            )
        first_seen.setdefault(source_id, index)
    return problems


def _refuse_control_characters(value: str) -> None:
    if found := _CONTROL_CHARS.search(value):
        raise PydanticCustomError(
            "url_control_character",
            "must not contain control characters (CR, LF, NUL, ...), found {char} at "
            "position {position} of {value}",
            {"char": repr(found.group()), "position": found.start(), "value": repr(value)},
        )


def _check_topic(value: str) -> str:
    if not _TOPIC.match(value) or value in {".", ".."}:
        raise PydanticCustomError(
            "topic",
            "must be a legal Kafka topic name (letters, digits, '.', '_', '-'; at most 249)",
        )
    return value


def default_config_path() -> Path:
    """`$MONITOR_CONFIG`, else `./config.yaml`."""
    return Path(os.environ.get("MONITOR_CONFIG", "config.yaml"))


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate a config file."""
    origin = str(path)
    raw = _read_yaml(Path(path), origin)
    unapplied = _apply_env_overrides(raw, os.environ if env is None else env)
    if unapplied:
        raise ConfigError(unapplied, origin=origin)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = _describe(exc)
    # Field errors stop pydantic before the whole-config checks run; report
    # duplicate ids anyway, so one `monitor check` shows every problem.
    sources = raw.get("sources")
    if isinstance(sources, list) and not any("duplicate id" in p for p in problems):
        ids = [s.get("id") for s in sources if isinstance(s, dict) and s.get("id") is not None]
        problems.extend(duplicate_source_ids(ids))
    raise ConfigError(problems, origin=origin)


def _read_yaml(path: Path, origin: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{origin}: file not found"], origin=origin) from None
    except OSError as exc:
        raise ConfigError([f"{origin}: cannot be read: {exc.strerror}"], origin=origin) from None
    try:
        # libyaml's loader where PyYAML has it: 4x faster than the pure-Python one,
        # which took 1.2 s of a 2.3 s start with 10,000 sources (bench/memory.py).
        loaded = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{origin}: {_yaml_problem(exc)}"], origin=origin) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            [f"(top level): must be a mapping of sections, got {type(loaded).__name__}"],
            origin=origin,
        )
    return loaded


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`line L, column C: invalid YAML: ...`, at the line a person must fix.

    PyYAML places its problem where it gave up: for an unclosed bracket or quote
    that is the line *after* the mistake. When it also says where the construct
    it was reading began ("while parsing a flow sequence", "... a quoted scalar"),
    that is the line to point at; where it gave up follows in brackets.
    """
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    # Only for what opens and must close (brackets, quotes): a block mapping's start is
    # usually far above an indentation mistake, which the problem mark points at well.
    if context and context_mark is not None and ("flow" in context or "quoted" in context):
        given_up = (f" (at line {problem_mark.line + 1}, column {problem_mark.column + 1})"
                    if problem_mark is not None else "")
        return (f"line {context_mark.line + 1}, column {context_mark.column + 1}: invalid YAML: "
                f"{context.removeprefix('while ')} started here: {problem}{given_up}")
    where = (f"line {problem_mark.line + 1}, column {problem_mark.column + 1}: "
             if problem_mark is not None else "")
    return f"{where}invalid YAML: {problem}"


def _apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    """Apply `MONITOR__KAFKA__BOOTSTRAP_SERVERS=...` style overrides in place.

    Written by hand rather than with pydantic-settings because overrides must
    beat the file (so secrets can stay out of it) and must reach list items
    (`MONITOR__SOURCES__0__INTERVAL=1m`). Values are read as YAML scalars, so
    `true`, `3` and `[a, b]` mean what they say.

    Returns one problem per override that names a list item that does not exist
    (`MONITOR__SOURCES__7__INTERVAL` with one source): silently ignored, it would
    leave the operator sure of a setting the service never had.
    """
    problems = []
    for name in sorted(env):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == ENV_PREFIX:
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if keys:
            # A secret is taken verbatim: as YAML, `123456` is a number, `null` nothing,
            # and `pa ss #word` loses its end to a comment.
            value = env[name] if keys[-1] in _SECRET_KEYS else _parse_env_value(env[name])
            if missing := _set_path(raw, keys, value):
                problems.append(f"{name}: {missing}")
    return problems


def _parse_env_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_path(
    node: MutableMapping[str, Any] | list[Any], keys: list[str], value: Any, where: str = ""
) -> str | None:
    """Set `value` at `keys` under `node`; or say why not (a list item that does not exist)."""
    head, rest = keys[0], keys[1:]
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            return (
                f"{where}[{head}] does not exist ({where} has {len(node)} item"
                f"{'' if len(node) == 1 else 's'}, numbered from 0)"
            )
        if rest:
            return _set_path(node[int(head)], rest, value, f"{where}[{head}]")
        node[int(head)] = value
        return None
    if not rest:
        node[head] = value
        return None
    child = node.get(head)
    if not isinstance(child, dict | list):
        child = node[head] = {}
    return _set_path(child, rest, value, f"{where}.{head}" if where else head)


def _describe(exc: ValidationError) -> list[str]:
    """One `path: message` line per validation error, paths as `sources[3].interval`."""
    problems = []
    for error in exc.errors():
        path = _format_loc(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and the configuration reference)"
        elif error["type"] == "missing":
            message = "is required"
        elif error["type"] in {"duplicate_id", "problems"}:
            problems.extend(error["msg"].split("; "))
            continue
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path else message)
    return problems


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "literal[", "constrained-")) or part in {
            "float",
            "int",
            "str",
            "bool",
            "none",
            "min-max",
        }:
            continue  # pydantic names the union branch it tried; the user never wrote it
        else:
            path += f".{part}" if path else part
    return path
