"""The service-level sections of config.yaml: kafka, state, metrics, log, fetch, extract,
browser, defaults, websub and coordination.

Each section is a strict model (base.py): unknown keys are errors, and every
value is checked where it is read, so an error names its path
(`kafka.topic: ...`). The sources and watchlists are sources.py's; the whole
config, with the checks across sections, is model.py's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from monitor import __version__
from monitor.config.base import (
    MAX_CONCURRENT_POLLS,
    MAX_CONNECTIONS,
    MIN_WORKER_MEMORY_MB,
    WORKERS_PER_CPU,
    Duration,
    Strict,
    check_http_url,
    check_topic,
)

__all__ = [
    "EMBEDDED",
    "BrowserConfig",
    "CoordinationConfig",
    "DefaultsConfig",
    "ExtractConfig",
    "FetchConfig",
    "HostConfig",
    "KafkaConfig",
    "LogConfig",
    "MetricsConfig",
    "StateConfig",
    "WebSubConfig",
]

EMBEDDED = "embedded"


class KafkaConfig(Strict):
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
        return check_topic(value)

    @property
    def embedded(self) -> bool:
        return self.bootstrap_servers.strip().lower() == EMBEDDED


class StateConfig(Strict):
    path: Path = Path("./state/monitor.db")
    outbox_max_events: int = Field(default=100_000, ge=1)
    # An empty store at start-up (a lost volume) is not a first start when the output
    # topic holds events of the configured sources: what they say was published is
    # learnt back, within these bounds (monitor/recovery.py, docs/operations.md).
    recover_from_topic: bool = True
    recover_max_age: Duration = 30 * 86400.0
    recover_max_events_per_partition: int = Field(default=10_000, ge=1)
    recover_timeout: Duration = 60.0  # waiting for the broker; then a first start


class MetricsConfig(Strict):
    enabled: bool = True
    host: str = "0.0.0.0"  # a metrics endpoint is meant to be scraped
    port: int = Field(default=9108, ge=0, le=65535)


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    status_interval: Duration = 300.0  # the `sources: N healthy, M failing (...)` line


class HostConfig(Strict):
    connections: int = Field(default=2, ge=1, le=MAX_CONNECTIONS)
    delay: Duration | Literal[0] = 0


class FetchConfig(Strict):
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


class ExtractConfig(Strict):
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


class BrowserConfig(Strict):
    """`browser:`, for sources with `render: browser` (monitor/fetch/browser.py)."""

    # Where Debian's `chromium` package puts it; None: looked up on PATH as `chromium`.
    executable: Path | None = None
    timeout: Duration = 30.0  # one page: navigation, scripts and settling
    max_pages: int = Field(default=2, ge=1)  # pages open at once in the one browser
    settle: Duration = 0.5  # no network for this long after the load event: the page is done
    restart_after: int = Field(default=100, ge=1)  # pages; Chromium grows as it lives


class DefaultsConfig(Strict):
    interval: Duration = 300.0
    # Intervals under MIN_INTERVAL (1 s) are refused unless this is true (here: every
    # source; or per source). Such a source is named in a warning at start.
    allow_fast_polling: bool = False
    timeout: Duration = 20.0
    backfill: bool = False
    # Re-checks of published statements' pages (edits, retractions): how often, how long.
    recheck_interval: Duration = 3600.0
    recheck_window: Duration = 7 * 86400.0


class WebSubConfig(Strict):
    """Push: subscribe to the WebSub hub a feed names. Off while `callback_base` is None."""

    enabled: bool = True
    # The public base URL of this service's HTTP port (the metrics port); callbacks
    # are `<callback_base>/websub/<source id>`.
    callback_base: str | None = None
    lease: Duration = 864000.0  # 10 days: the lease asked of the hub

    @field_validator("callback_base")
    @classmethod
    def _callback_base_is_http(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @property
    def active(self) -> bool:
        return self.enabled and self.callback_base is not None


class CoordinationConfig(Strict):
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
        return check_topic(value)

    @field_validator("control_topic", "state_topic")
    @classmethod
    def _topics_are_legal(cls, value: str | None) -> str | None:
        return None if value is None else check_topic(value)

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
