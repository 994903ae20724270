"""Checks of the deployment files in deploy/ (and the root .dockerignore).

No Docker engine is needed: the compose file, the Dockerfile and the configs
are parsed and checked against each other and against the code (metric names,
config schema). The alert rules are checked and unit-tested with promtool when
it is installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts.test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKER_CONFIG = DEPLOY / "config.docker.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"

ALERT_GROUP = "statement-monitor"
EXPECTED_ALERTS = {
    "StatementMonitorSourceStale",
    "StatementMonitorHighErrorRatio",
    "StatementMonitorPublishFailures",
    "StatementMonitorOutboxBacklog",
    "StatementMonitorNoStatements",
    "StatementMonitorDown",
    "StatementMonitorBrokerDown",
    "StatementMonitorExtractionRuleMiss",
    "StatementMonitorEnrichmentFailing",
    "StatementMonitorInstanceWithoutShards",
    "StatementMonitorRebalanceStorm",
    "StatementMonitorStateRestoreFailing",
    "StatementMonitorEventsDeadLettered",
    "StatementMonitorEventsDropped",
    "StatementMonitorStateStoreErrors",
    "StatementMonitorAllSourcesFailing",
}
SEVERITIES = {"critical", "warning", "info"}
STATE_DIR = "/var/lib/statement-monitor"
CONFIG_IN_IMAGE = "/etc/statement-monitor/config.yaml"
METRICS_PORT = 9108

METRIC_NAME = re.compile(r"\bstatement_monitor_[A-Za-z0-9_]+")
RECORDED_NAME = re.compile(r"\bstatement_monitor:[A-Za-z0-9_:]+")
SOURCE_ID = re.compile(r"^[a-z0-9_-]+$")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"]]


# --------------------------------------------------------------------------
# promtool


PROMTOOL_COMMANDS = {
    "check-rules": ["check", "rules", str(ALERTS)],
    "test-rules": ["test", "rules", str(ALERTS_TEST)],
    "check-config": ["check", "config", str(PROMETHEUS_CONFIG)],
}


@pytest.mark.parametrize("args", PROMTOOL_COMMANDS.values(), ids=PROMTOOL_COMMANDS.keys())
def test_promtool(args: list[str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    proc = subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=300, check=False
    )
    output = f"$ promtool {shlex.join(args)}\n{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, output


# --------------------------------------------------------------------------
# alerts.yml against the code and against its tests


def registry_metric_names() -> set[str]:
    """Every series name the service can expose, from monitor/metrics.py's registry."""
    from prometheus_client import REGISTRY

    import monitor.metrics  # noqa: F401 - importing registers the metrics

    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_alert_metric_names_exist_in_metrics_module() -> None:
    referenced = set(METRIC_NAME.findall(ALERTS.read_text(encoding="utf-8")))
    assert referenced, f"no statement_monitor_ metric found in {ALERTS}: is the regex broken?"
    defined = registry_metric_names()
    assert "statement_monitor_polls_total" in defined, sorted(defined)
    unknown = sorted(referenced - defined)
    assert not unknown, (
        f"{ALERTS.name} uses metrics that monitor/metrics.py does not define: {unknown}\n"
        f"defined: {sorted(n for n in defined if n.startswith('statement_monitor_'))}"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="process metrics need Linux /proc")
def test_process_start_time_is_exported() -> None:
    """The 'never succeeded' rules fall back on prometheus_client's process collector."""
    if "process_start_time_seconds" not in ALERTS.read_text(encoding="utf-8"):
        pytest.skip("alerts.yml does not use process_start_time_seconds")
    assert "process_start_time_seconds" in registry_metric_names()


def test_recorded_names_are_recorded() -> None:
    rules = alert_rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    used = {name for rule in rules for name in RECORDED_NAME.findall(rule["expr"])}
    assert used <= recorded, f"used but never recorded: {sorted(used - recorded)}"


def test_alert_rules_are_complete() -> None:
    groups = {group["name"]: group for group in load_yaml(ALERTS)["groups"]}
    assert ALERT_GROUP in groups, f"no group {ALERT_GROUP!r} in {ALERTS}"
    rules = [rule for rule in groups[ALERT_GROUP]["rules"] if "alert" in rule]
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name}: no summary"
        assert annotations.get("description"), f"{name}: no description"
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no `for:`"
        if "source_id" in rule["expr"]:
            text = annotations["summary"] + annotations["description"]
            assert "$labels.source_id" in text, f"{name}: annotations do not name the source"


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    tests = load_yaml(ALERTS_TEST)
    assert [ALERTS.name] == tests["rule_files"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        assert case.get("input_series"), "a test group without input series"
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert EXPECTED_ALERTS - fires == set(), "alerts never shown firing"
    assert EXPECTED_ALERTS - quiet == set(), "alerts never shown quiet"


def test_prometheus_scrapes_the_monitor() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert [ALERTS.name] == config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert ALERT_GROUP in jobs, 'the alerts select up{job="statement-monitor"}'
    job = jobs[ALERT_GROUP]
    assert job.get("scrape_interval", config["global"].get("scrape_interval")) == "15s"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"monitor:{METRICS_PORT}"]


# --------------------------------------------------------------------------
# docker-compose.yml


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, in either of compose's two spellings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host source, container target) of the service's short-syntax volumes."""
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        yield source, target


def test_compose_has_the_three_services_and_no_zookeeper() -> None:
    services = compose()["services"]
    assert {"kafka", "monitor", "prometheus"} <= set(services)
    for name, service in services.items():
        assert "zookeeper" not in name.lower()
        assert "zookeeper" not in str(service.get("image", "")).lower()
        assert not any("ZOOKEEPER" in key for key in environment(service)), name


def test_compose_kafka_is_kraft_broker_and_controller() -> None:
    kafka = compose()["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert tuple(int(part) for part in tag.split(".")[:2]) >= (3, 8), tag
    env = environment(kafka)
    roles = {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS")
    assert env.get("CLUSTER_ID")
    # The monitor's bootstrap address must be one the broker advertises.
    bootstrap = environment(compose()["services"]["monitor"])["MONITOR__KAFKA__BOOTSTRAP_SERVERS"]
    assert bootstrap == "kafka:9092"
    advertised = {url.split("://", 1)[1] for url in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert bootstrap in advertised
    assert kafka.get("healthcheck", {}).get("test"), "monitor waits for kafka to be healthy"


def test_compose_monitor_build_and_wiring() -> None:
    data = compose()
    monitor = data["services"]["monitor"]
    context = (COMPOSE.parent / monitor["build"]["context"]).resolve()
    assert context.is_dir() and (context / "pyproject.toml").is_file(), context
    dockerfile = (context / monitor["build"].get("dockerfile", "Dockerfile")).resolve()
    assert dockerfile.is_file(), dockerfile
    assert dockerfile == DOCKERFILE.resolve()

    assert monitor["depends_on"]["kafka"]["condition"] == "service_healthy"
    env = environment(monitor)
    assert env["MONITOR__KAFKA__ENABLE_IDEMPOTENCE"].lower() == "true"

    mounts = dict(bind_mounts(monitor))
    config_source = next(src for src, dst in mounts.items() if dst == CONFIG_IN_IMAGE)
    assert (COMPOSE.parent / config_source).resolve() == DOCKER_CONFIG.resolve()
    state = next(src for src, dst in mounts.items() if dst == STATE_DIR)
    assert state in (data.get("volumes") or {}), "state must live in a named volume"


def test_compose_prometheus_mounts_existing_files() -> None:
    prometheus = compose()["services"]["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus")
    assert any(str(port).startswith("9090:") for port in prometheus.get("ports", []))
    mounts = dict(bind_mounts(prometheus))
    files = {}
    for source, target in mounts.items():
        if source.startswith((".", "/")):
            path = (COMPOSE.parent / source).resolve()
            assert path.exists(), f"prometheus mounts {source}, which does not exist"
            files[target] = path
    config_target = "/etc/prometheus/prometheus.yml"
    assert files.get(config_target) == PROMETHEUS_CONFIG.resolve()
    for rule_file in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        target = f"/etc/prometheus/{rule_file}"
        assert files.get(target) == (PROMETHEUS_DIR / rule_file).resolve(), target


# --------------------------------------------------------------------------
# Dockerfile


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuations joined,
    ${ARG} references replaced by the ARG defaults in scope."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"

    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    args: dict[str, str] = {}

    def expand(text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)

    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG":
            name, _, default = rest.strip().partition("=")
            value = default or global_args.get(name, "")
            (args if stages else global_args)[name] = value
            continue
        if instruction == "FROM":
            args = dict(global_args)
            stages.append([])
        assert stages, f"{instruction} before the first FROM"
        stages[-1].append((instruction, expand(rest.strip())))
    return stages


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [rest for instruction, rest in stage if instruction == name]


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    final = dockerfile_stages()[-1]
    assert instructions(final, "FROM")[0].split()[0] == "python:3.11-slim"
    users = instructions(final, "USER")
    assert users, "the final stage has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0", ""}, users[-1]
    assert user.isdigit(), f"use a fixed numeric uid, got {user!r}"

    healthchecks = instructions(final, "HEALTHCHECK")
    assert healthchecks and healthchecks[-1].upper() != "NONE"
    assert "/healthz" in healthchecks[-1] and "urllib" in healthchecks[-1]


def test_dockerfile_contract() -> None:
    stages = dockerfile_stages()
    final = stages[-1]
    runs = " ".join(rest for stage in stages for rest in instructions(stage, "RUN"))
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", runs)
    assert str(METRICS_PORT) in instructions(final, "EXPOSE")[-1].split()
    assert STATE_DIR in json.loads(instructions(final, "VOLUME")[-1])
    assert json.loads(instructions(final, "ENTRYPOINT")[-1]) == ["monitor"]
    assert json.loads(instructions(final, "CMD")[-1]) == ["run", "--config", CONFIG_IN_IMAGE]


# --------------------------------------------------------------------------
# .dockerignore (build context = repository root)


def dockerignore_excludes(relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""

    def to_regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + r"\Z")

    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = to_regex(line.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("monitor/__init__.py", True),
        ("monitor/metrics.py", True),
        ("deploy/config.docker.yaml", True),
        ("monitor/__pycache__/metrics.cpython-311.pyc", False),
        (".git/HEAD", False),
        ("tests/test_deploy.py", False),
        ("state/monitor.db", False),
        (".venv/bin/python", False),
    ],
)
def test_dockerignore(path: str, sent: bool) -> None:
    assert dockerignore_excludes(path) is not sent


def test_dockerfile_copies_only_what_the_context_sends() -> None:
    for stage in dockerfile_stages():
        for rest in instructions(stage, "COPY"):
            words = [word for word in rest.split() if not word.startswith("--")]
            if any(word.startswith("--from") for word in rest.split()):
                continue
            for source in words[:-1]:
                if source == ".":
                    continue
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not dockerignore_excludes(source), f"COPY {source}: .dockerignore drops it"


# --------------------------------------------------------------------------
# config.docker.yaml


def test_docker_config_shape() -> None:
    config = load_yaml(DOCKER_CONFIG)
    assert isinstance(config.get("kafka"), dict) and config["kafka"].get("bootstrap_servers")
    assert config["kafka"].get("topic")
    sources = config.get("sources")
    assert isinstance(sources, list) and sources
    ids = [source.get("id") for source in sources]
    assert len(ids) == len(set(ids)), f"duplicate source ids: {ids}"
    for source in sources:
        assert isinstance(source["id"], str) and SOURCE_ID.match(source["id"]), source
        assert str(source.get("url", "")).startswith("https://"), source
        assert source.get("name"), source
    assert str(config["state"]["path"]).startswith(STATE_DIR + "/"), "state off the volume"
    assert config.get("metrics", {}).get("port", METRICS_PORT) == METRICS_PORT


def test_docker_config_loads_with_the_compose_environment() -> None:
    """The service's own loader accepts the file with the compose overrides applied."""
    try:
        from monitor.config import load_config
    except ImportError as exc:  # the config module is written alongside
        pytest.skip(f"monitor.config not importable: {exc}")
    env = environment(compose()["services"]["monitor"])
    config = load_config(DOCKER_CONFIG, env=env)
    assert config.kafka.bootstrap_servers == "kafka:9092"
    assert config.kafka.enable_idempotence is True
    assert len(config.sources) == len(load_yaml(DOCKER_CONFIG)["sources"])
