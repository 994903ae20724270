"""The configuration: pydantic models of config.yaml, env overrides, precise errors.

`load_config(path)` is the one entry point. It reads YAML, applies
`MONITOR__SECTION__KEY=value` environment overrides, validates, and either
returns a `Config` or raises `ConfigError` with one `path: message` line per
problem, for example `sources[3].interval: must be a positive duration`.

Unknown keys are errors: a misspelt key that silently does nothing is how a
source ends up never polled.

Modules:

    base.py      the strict base model, durations, topic and URL checks, the bounds
    sections.py  the service-level sections: kafka, state, metrics, log, fetch,
                 extract, browser, defaults, websub, coordination
    sources.py   `sources[]` (SourceConfig, its validators, Telegram channels) and
                 `watchlists[]`
    model.py     `Config`: every section together, the checks across them, and the
                 sources resolved with the defaults
    loading.py   `load_config`: YAML, env overrides, the `path: message` error lines
"""

from monitor.config.base import (
    MAX_CONCURRENT_POLLS,
    MAX_CONNECTIONS,
    MIN_INTERVAL,
    MIN_WORKER_MEMORY_MB,
    WORKERS_PER_CPU,
    Duration,
    parse_duration,
)
from monitor.config.loading import ENV_PREFIX, default_config_path, load_config
from monitor.config.model import Config, duplicate_source_ids
from monitor.config.sections import (
    EMBEDDED,
    BrowserConfig,
    CoordinationConfig,
    DefaultsConfig,
    ExtractConfig,
    FetchConfig,
    HostConfig,
    KafkaConfig,
    LogConfig,
    MetricsConfig,
    StateConfig,
    WebSubConfig,
)
from monitor.config.sources import (
    Interval,
    IntervalRange,
    Regex,
    Selector,
    SourceConfig,
    Term,
    WatchlistConfig,
)

__all__ = [
    "EMBEDDED",
    "ENV_PREFIX",
    "MAX_CONCURRENT_POLLS",
    "MAX_CONNECTIONS",
    "MIN_INTERVAL",
    "MIN_WORKER_MEMORY_MB",
    "WORKERS_PER_CPU",
    "BrowserConfig",
    "Config",
    "CoordinationConfig",
    "DefaultsConfig",
    "Duration",
    "ExtractConfig",
    "FetchConfig",
    "HostConfig",
    "Interval",
    "IntervalRange",
    "KafkaConfig",
    "LogConfig",
    "MetricsConfig",
    "Regex",
    "Selector",
    "SourceConfig",
    "StateConfig",
    "Term",
    "WatchlistConfig",
    "WebSubConfig",
    "default_config_path",
    "duplicate_source_ids",
    "load_config",
    "parse_duration",
]
