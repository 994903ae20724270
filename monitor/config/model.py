"""The whole config: its sections and sources together, the checks across them, and
the sources resolved with the defaults (what the pipeline runs on).

`Config` is the model of config.yaml; loading.py reads a file into it. Checks
that need more than one section live here: unique source and watchlist ids,
watchlists naming known sources, a SASL password with a protocol that sends
it, and polite intervals (at least `MIN_INTERVAL` unless fast polling is
allowed).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from monitor.config.base import MIN_INTERVAL, Strict
from monitor.config.sections import (
    BrowserConfig,
    CoordinationConfig,
    DefaultsConfig,
    ExtractConfig,
    FetchConfig,
    KafkaConfig,
    LogConfig,
    MetricsConfig,
    StateConfig,
    WebSubConfig,
)
from monitor.config.sources import IntervalRange, SourceConfig, WatchlistConfig
from monitor.models import Source, Watchlist

__all__ = ["Config", "duplicate_source_ids"]

class Config(Strict):
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
