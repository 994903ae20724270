"""Checks of the Grafana dashboard in deploy/grafana/.

Every `statement_monitor_*` metric a query uses must be in the service's
`/metrics` text (prometheus_client's `generate_latest()`, which lists every
family, with its `# TYPE` line, even before a labelled metric has a child), so
a renamed metric fails here rather than as an empty panel. The labels a query
filters or groups by must exist on the metrics it reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "statement-monitor.json"

DATASOURCE_UID = "${datasource}"
# Labels Prometheus adds to every scraped series (static config, or the
# Prometheus Operator's ServiceMonitor), and histogram buckets' `le`.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}
METRIC_NAME = re.compile(r"\bstatement_monitor_[A-Za-z0-9_]*[A-Za-z0-9]")
SELECTOR = re.compile(r"\b(statement_monitor_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
GRID_WIDTH = 24


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield (
                f"panel {panel['id']} ({panel.get('title')}) {target.get('refId')}",
                target["expr"],
            )
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield (
                f"variable {variable['name']}",
                query["query"] if isinstance(query, dict) else query,
            )


@cache
def exposition() -> dict[str, str]:
    """Name -> type of every series name `/metrics` can show, from `generate_latest()`."""
    from prometheus_client import REGISTRY, generate_latest

    import monitor.metrics  # noqa: F401  (registers the service's metrics)

    text = generate_latest(REGISTRY).decode("utf-8")
    names: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names[name] = kind
            if kind == "histogram":
                names.update((name + suffix, "histogram") for suffix in HISTOGRAM_SUFFIXES)
        elif line and not line.startswith("#"):
            names.setdefault(re.split(r"[{ ]", line, maxsplit=1)[0], "sample")
    return names


@cache
def label_names() -> dict[str, set[str]]:
    """Exposed series name -> its label names, from the metric objects of monitor/metrics.py."""
    from prometheus_client.metrics import MetricWrapperBase

    import monitor.metrics as metrics_module

    labels: dict[str, set[str]] = {}
    compact = (metrics_module.SourceGauge, metrics_module.SourceCounter)
    for metric in vars(metrics_module).values():
        if isinstance(metric, compact):
            name, kind, names = metric.name, metric.type, set(metric.labelnames)
        elif isinstance(metric, MetricWrapperBase):
            name, kind, names = metric._name, metric._type, set(metric._labelnames)
        else:
            continue
        if kind == "counter":
            labels[f"{name}_total"] = names
        elif kind == "histogram":
            labels[f"{name}_bucket"] = names | {"le"}
            labels[f"{name}_count"] = labels[f"{name}_sum"] = names
        elif kind == "info":
            labels[f"{name}_info"] = names  # plus the keys given to .info()
        else:
            labels[name] = names
    return labels


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = load_dashboard()
    assert dashboard["title"] and dashboard["uid"]
    assert 36 <= dashboard["schemaVersion"] <= 41, dashboard["schemaVersion"]
    assert dashboard.get("id") is None, "an exported id clashes on import; leave it out"
    assert dashboard["panels"], "no panels"


def test_datasource_and_instance_variables() -> None:
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query"
    assert instance["datasource"]["uid"] == DATASOURCE_UID
    assert instance.get("multi") and instance.get("includeAll")
    query = instance["query"]["query"] if isinstance(instance["query"], dict) else instance["query"]
    assert query.startswith("label_values(") and query.rstrip().endswith(", instance)"), query


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in all_panels(load_dashboard())]
    assert all(isinstance(i, int) for i in ids), ids
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate panel ids: {duplicates}"


def test_panels_fit_the_grid() -> None:
    for panel in all_panels(load_dashboard()):
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0, panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    for panel in all_panels(load_dashboard()):
        if panel["type"] == "row":
            assert not panel.get("targets"), f"row {panel['title']} has queries"
            continue
        assert panel.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
        assert panel.get("datasource", {}).get("type") == "prometheus", panel["title"]
        targets = panel.get("targets") or []
        assert targets, f"panel {panel['title']} has no query"
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), f"{panel['title']}: duplicate refIds {refs}"
        for target in targets:
            assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, panel["title"]
            assert target.get("expr", "").strip(), f"{panel['title']} {target['refId']}: no expr"


def test_every_queried_metric_is_in_metrics() -> None:
    exposed = exposition()
    assert "statement_monitor_polls_total" in exposed, sorted(exposed)
    used: dict[str, list[str]] = {}
    for where, expr in queries(load_dashboard()):
        for name in METRIC_NAME.findall(expr):
            used.setdefault(name, []).append(where)
    assert used, "no statement_monitor_ metric in any query: is the regex broken?"
    unknown = {name: places for name, places in used.items() if name not in exposed}
    assert not unknown, (
        f"the dashboard queries metrics that /metrics does not have: {unknown}\n"
        f"exposed: {sorted(n for n in exposed if n.startswith('statement_monitor_'))}"
    )


def test_histogram_queries_use_buckets() -> None:
    exposed = exposition()
    for where, expr in queries(load_dashboard()):
        if "histogram_quantile" not in expr:
            continue
        names = METRIC_NAME.findall(expr)
        assert names and all(name.endswith("_bucket") for name in names), (where, expr)
        assert all(exposed[name] == "histogram" for name in names), (where, expr)
        assert re.search(r"\bby\s*\([^)]*\ble\b", expr), f"{where}: quantile without `by (le)`"


def test_queried_labels_exist() -> None:
    labels = label_names()
    for where, expr in queries(load_dashboard()):
        for name, matchers in SELECTOR.findall(expr):
            known = labels.get(name, set()) | TARGET_LABELS
            for label in MATCHER_LABEL.findall(matchers):
                assert label in known, f"{where}: {name} has no label {label!r}"
        in_expr = set().union(*(labels.get(n, set()) for n in METRIC_NAME.findall(expr)))
        for group in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                assert label in in_expr | TARGET_LABELS, f"{where}: no metric has label {label!r}"


@pytest.mark.parametrize(
    "topic",
    [
        # The list, each with a metric that must be on the dashboard.
        ("polls by outcome", "statement_monitor_polls_total"),
        ("statement latency", "statement_monitor_poll_duration_seconds_bucket"),
        ("time since last statement", "statement_monitor_last_statement_timestamp_seconds"),
        ("outbox backlog", "statement_monitor_outbox_pending"),
        ("outbox age", "statement_monitor_outbox_oldest_age_seconds"),
        ("per-source freshness", "statement_monitor_source_last_success_timestamp_seconds"),
        ("shards per instance", "statement_monitor_coordination_shards"),
        ("rebalances", "statement_monitor_coordination_rebalances_total"),
        ("state restore time", "statement_monitor_state_restore_duration_seconds_bucket"),
        ("watchlist hits", "statement_monitor_watchlist_hits_total"),
        ("extraction failures", "statement_monitor_extraction_failures_total"),
        ("rule misses", "statement_monitor_extraction_rule_misses_total"),
    ],
    ids=lambda topic: topic[0],
)
def test_dashboard_covers(topic: tuple[str, str]) -> None:
    _, metric = topic
    exprs = " ".join(expr for _, expr in queries(load_dashboard()))
    assert metric in METRIC_NAME.findall(exprs)


def test_errors_by_source_excludes_successes() -> None:
    exprs = [expr for _, expr in queries(load_dashboard())]
    assert any("by (source_id)" in expr and 'outcome!~"200|304"' in expr for expr in exprs), (
        "no panel of errors by source (outcomes other than 200 and 304)"
    )
