"""Checks of the Kubernetes manifests in deploy/kubernetes/.

No cluster is needed: every manifest is parsed and checked field by field
against the others (selectors, ports, Secret keys, volumes), against the image
(deploy/Dockerfile), against the service (its config schema, probes, shutdown
budget, Kafka security checks) and against the alert rules. When kubectl is
installed, `kubectl kustomize` must render the directory; `kubectl apply
--dry-run=client` runs only if kubectl can reach a cluster, and is skipped
otherwise.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"

METRICS_PORT = 9108
CONFIG_IN_IMAGE = "/etc/statement-monitor/config.yaml"
CMD_IN_IMAGE = ["run", "--config", CONFIG_IN_IMAGE]
MEASURED_MEMORY_10K_SOURCES = 292e6  # bytes, bench/README.md
SECRET_ENV = ("MONITOR__KAFKA__SASL_PLAIN_USERNAME", "MONITOR__KAFKA__SASL_PLAIN_PASSWORD")

API_VERSIONS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
}
REQUIRED_KINDS = set(API_VERSIONS) - {"PrometheusRule"}  # the PrometheusRule is optional
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SECRET_VALUE_HINT = re.compile(r"change-?me|placeholder|example", re.IGNORECASE)


# --------------------------------------------------------------------------
# loading


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path, doc))
    return docs


def objects() -> dict[str, dict[str, Any]]:
    """kind -> the one object of that kind."""
    by_kind: dict[str, dict[str, Any]] = {}
    for path, doc in documents():
        assert doc["kind"] not in by_kind, f"{path.name}: a second {doc['kind']}"
        by_kind[doc["kind"]] = doc
    return by_kind


def deployment() -> dict[str, Any]:
    return objects()["Deployment"]


def pod_spec() -> dict[str, Any]:
    return deployment()["spec"]["template"]["spec"]


def pod_labels() -> dict[str, str]:
    return deployment()["spec"]["template"]["metadata"]["labels"]


def container() -> dict[str, Any]:
    containers = pod_spec()["containers"]
    assert len(containers) == 1, [c["name"] for c in containers]
    return containers[0]


def config_text() -> str:
    return objects()["ConfigMap"]["data"]["config.yaml"]


def secret_data() -> dict[str, str]:
    secret = objects()["Secret"]
    return {**(secret.get("data") or {}), **(secret.get("stringData") or {})}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def container_port(port: int | str) -> int:
    """A port of the container, by number or by name."""
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    if isinstance(port, str):
        assert port in ports, f"no container port named {port!r}: {ports}"
        return ports[port]
    assert port in ports.values(), f"no container port {port}: {ports}"
    return port


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (`500m`, `2`, `512Mi`, `1G`) as a number."""
    text = str(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", text)
    assert match, f"not a quantity: {text!r}"
    factors = {
        None: 1,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    return float(match.group(1)) * factors[match.group(2)]


def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert match, f"no ARG {name} in {DOCKERFILE}"
    return match.group(1)


def pod_env(secret_values: dict[str, str]) -> dict[str, str]:
    """The container's environment as the pod would see it, Secret values filled in."""
    env: dict[str, str] = {}
    for item in container().get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            env[item["name"]] = secret_values[source["secretKeyRef"]["key"]]
        elif "fieldRef" in source:
            env[item["name"]] = "statement-monitor-7c9d8-x2x4q"  # e.g. metadata.name
        else:
            raise AssertionError(f"env {item['name']}: unexpected source {source}")
    return env


# --------------------------------------------------------------------------
# every manifest


def test_every_manifest_has_kind_api_version_and_name() -> None:
    docs = documents()
    assert docs, f"no manifests in {K8S}"
    for path, doc in docs:
        kind = doc.get("kind")
        assert kind in API_VERSIONS, f"{path.name}: unexpected kind {kind!r}"
        assert doc.get("apiVersion") == API_VERSIONS[kind], f"{path.name}: {doc.get('apiVersion')}"
        name = doc.get("metadata", {}).get("name", "")
        assert DNS_1123.match(name) and len(name) <= 63, f"{path.name}: bad name {name!r}"
        assert "namespace" not in doc["metadata"], f"{path.name}: set the namespace when applying"
        for key, value in (doc["metadata"].get("labels") or {}).items():
            assert LABEL_VALUE.match(str(value)) and len(str(value)) <= 63, (path.name, key)
    kinds = {doc["kind"] for _, doc in docs}
    assert kinds >= REQUIRED_KINDS, f"missing: {sorted(REQUIRED_KINDS - kinds)}"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    assert "namespace" not in kustomization, "namespace-agnostic: set it when applying"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), listed
    assert sorted(listed) == [p.name for p in manifest_files()]
    # The image transformer must match the Deployment's image name.
    image = container()["image"].split(":")[0]
    assert image in {entry["name"] for entry in kustomization.get("images", [])}


# --------------------------------------------------------------------------
# Deployment


def test_deployment_replicas_and_selector() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] >= 2
    assert selects(spec["selector"]["matchLabels"], pod_labels())
    assert not spec["selector"].get("matchExpressions")
    rolling = spec["strategy"]["rollingUpdate"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert rolling["maxUnavailable"] == 0, "a new pod must be ready before an old one stops"
    assert rolling["maxSurge"] == 1, "one rebalance of the coordination group at a time"


def test_deployment_runs_the_image_command() -> None:
    main = container()
    assert "command" not in main, "keep the image's ENTRYPOINT (monitor)"
    assert main.get("args", CMD_IN_IMAGE) == CMD_IN_IMAGE
    name, _, tag = main["image"].partition(":")
    assert name == "statement-monitor"
    assert tag and tag != "latest", "pin a version (kustomization.yaml `images:` sets it)"


def test_probes() -> None:
    main = container()
    expected = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }
    for probe, path in expected.items():
        http = main[probe]["httpGet"]
        assert http["path"] == path, probe
        assert container_port(http["port"]) == METRICS_PORT, probe
        assert main[probe].get("timeoutSeconds", 1) <= main[probe].get("periodSeconds", 10)
    # Liveness must not be /readyz: a broker outage makes /readyz 503, and
    # restarting the pods would not bring the broker back.
    assert main["livenessProbe"]["httpGet"]["path"] != "/readyz"


def test_resources_requests_within_limits() -> None:
    resources = container()["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        limit = quantity(resources["limits"][resource])
        assert 0 < request <= limit, (resource, request, limit)
    # bench/README.md, "Memory and start-up": 10,000 sources took up to 292 MB
    # (PSS of the service and its workers). The request must cover that.
    assert quantity(resources["requests"]["memory"]) >= MEASURED_MEMORY_10K_SOURCES


def test_extraction_workers_match_the_cpu_limit() -> None:
    """os.cpu_count() in a container is the node's: the config must say how many."""
    workers = yaml.safe_load(config_text())["extract"]["workers"]
    cpu_limit = quantity(container()["resources"]["limits"]["cpu"])
    assert 1 <= workers <= math.ceil(cpu_limit), (workers, cpu_limit)


def test_security_context() -> None:
    pod = pod_spec()["securityContext"]
    uid, gid = int(dockerfile_arg("MONITOR_UID")), int(dockerfile_arg("MONITOR_GID"))
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == uid and pod["runAsUser"] != 0
    assert pod["runAsGroup"] == gid
    assert pod["fsGroup"] == gid, "the emptyDir volumes must be writable by the monitor user"
    main = container()["securityContext"]
    assert main["readOnlyRootFilesystem"] is True
    assert main["allowPrivilegeEscalation"] is False
    assert main["capabilities"]["drop"] == ["ALL"]
    assert not main.get("privileged", False)
    assert pod_spec().get("automountServiceAccountToken") is False


def test_volumes() -> None:
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    for mount in mounts.values():
        assert mount["name"] in volumes, f"mount of unknown volume {mount['name']}"

    # The config: the ConfigMap's config.yaml where the image's CMD reads it.
    config_dir, config_file = CONFIG_IN_IMAGE.rsplit("/", 1)
    config_mount = mounts[config_dir]
    assert config_mount.get("readOnly") is True
    config_volume = volumes[config_mount["name"]]["configMap"]
    assert config_volume["name"] == objects()["ConfigMap"]["metadata"]["name"]
    items = {item["path"]: item["key"] for item in config_volume.get("items", [])}
    assert items.get(config_file, config_file) in objects()["ConfigMap"]["data"]

    # The state store on an emptyDir, the writable /tmp on another.
    state_path = str(yaml.safe_load(config_text())["state"]["path"])
    state_mount = next(
        (m for path, m in mounts.items() if state_path.startswith(path.rstrip("/") + "/")), None
    )
    assert state_mount is not None, f"state.path {state_path} is on the read-only root"
    assert "emptyDir" in volumes[state_mount["name"]]
    assert not state_mount.get("readOnly")
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_termination_grace_covers_the_shutdown() -> None:
    from monitor.app import SHUTDOWN_BUDGET

    grace = pod_spec()["terminationGracePeriodSeconds"]
    # The service exits within 10 s of SIGTERM (SHUTDOWN_BUDGET of draining
    # plus closing); SIGKILL must come later, but not much later.
    assert SHUTDOWN_BUDGET < 10 < grace <= 60, (SHUTDOWN_BUDGET, grace)


def test_topology_spread() -> None:
    constraints = pod_spec()["topologySpreadConstraints"]
    keys = {c["topologyKey"] for c in constraints}
    assert "kubernetes.io/hostname" in keys
    for constraint in constraints:
        assert constraint["maxSkew"] >= 1
        assert constraint["whenUnsatisfiable"] in {"ScheduleAnyway", "DoNotSchedule"}
        assert selects(constraint["labelSelector"]["matchLabels"], pod_labels())


def test_secret_env_refs_point_to_existing_keys() -> None:
    secret = objects()["Secret"]
    keys = secret_data()
    refs = {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container()["env"]
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert set(SECRET_ENV) <= set(refs), sorted(refs)
    for name, ref in refs.items():
        assert ref["name"] == secret["metadata"]["name"], name
        assert ref["key"] in keys, f"{name}: no key {ref['key']!r} in the Secret"
    # Only placeholders in the repository.
    assert SECRET_VALUE_HINT.search(keys["password"]), "secret.yaml holds a real-looking password"


def test_no_secret_in_the_configmap() -> None:
    kafka = yaml.safe_load(config_text())["kafka"]
    assert "sasl_plain_password" not in kafka and "ssl_keyfile_password" not in kafka


# --------------------------------------------------------------------------
# ConfigMap: the service's own schema


def test_configmap_config_is_valid() -> None:
    from monitor.config import Config

    raw = yaml.safe_load(config_text())
    config = Config.model_validate(raw)
    assert config.coordination is not None and config.coordination.group_id
    assert config.metrics.port == METRICS_PORT
    assert config.metrics.host == "0.0.0.0", "probes and Prometheus come from outside the pod"
    assert not config.kafka.embedded
    assert "localhost" not in config.kafka.bootstrap_servers
    assert config.kafka.replication_factor >= 3
    assert config.sources, "no sources"


def test_configmap_config_loads_with_the_pod_environment(tmp_path: Path) -> None:
    """With the Secret's values in the environment, the config loads and the
    Kafka security settings pass the sink's own checks (no SinkError)."""
    from monitor.config import load_config
    from monitor.sinks.kafka import client_options

    path = tmp_path / "config.yaml"
    path.write_text(config_text(), encoding="utf-8")
    env = pod_env({"username": "statement-monitor", "password": "s3cr3t: #not yaml"})
    config = load_config(path, env=env)
    assert config.kafka.sasl_plain_username == "statement-monitor"
    assert config.kafka.sasl_plain_password is not None
    assert config.kafka.sasl_plain_password.get_secret_value() == "s3cr3t: #not yaml"
    assert config.kafka.security_protocol.startswith("SASL_")
    options = client_options(config.kafka, config.kafka.bootstrap_servers)
    assert options["sasl_plain_username"] == "statement-monitor"


# --------------------------------------------------------------------------
# Service, ServiceMonitor, PodDisruptionBudget, PrometheusRule


def scrape_job() -> str:
    """The job the alerts expect (`up{job="..."}`)."""
    jobs = set(re.findall(r'up\{job="([^"]+)"\}', ALERTS.read_text(encoding="utf-8")))
    assert len(jobs) == 1, jobs
    return jobs.pop()


def test_service_selects_the_pods_on_the_metrics_port() -> None:
    service = objects()["Service"]
    assert selects(service["spec"]["selector"], pod_labels())
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["metrics"]["port"] == METRICS_PORT
    assert container_port(ports["metrics"].get("targetPort", METRICS_PORT)) == METRICS_PORT
    # Not-ready pods (Kafka down) must still be scraped.
    assert service["spec"].get("publishNotReadyAddresses") is True
    # The Prometheus Operator names the job after the Service.
    assert service["metadata"]["name"] == scrape_job()


def test_servicemonitor_selects_the_service() -> None:
    monitor = objects()["ServiceMonitor"]
    service = objects()["Service"]
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert "jobLabel" not in monitor["spec"], "the job must stay the Service's name"
    port_names = {p["name"] for p in service["spec"]["ports"]}
    interval = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))["global"][
        "scrape_interval"
    ]
    endpoints = monitor["spec"]["endpoints"]
    assert endpoints
    for endpoint in endpoints:
        assert endpoint["port"] in port_names, endpoint
        assert endpoint.get("path", "/metrics") == "/metrics"
        assert endpoint.get("interval") == interval, "the alerts' windows assume this interval"


def test_pdb_allows_one_disruption() -> None:
    pdb = objects()["PodDisruptionBudget"]["spec"]
    assert selects(pdb["selector"]["matchLabels"], pod_labels())
    replicas = deployment()["spec"]["replicas"]
    if "maxUnavailable" in pdb:
        assert pdb["maxUnavailable"] == 1
    else:
        assert 1 <= pdb["minAvailable"] == replicas - 1


def test_prometheusrule_matches_alerts_yml() -> None:
    rule = objects().get("PrometheusRule")
    if rule is None:
        pytest.skip("no PrometheusRule")
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    assert rule["spec"]["groups"] == groups, (
        "prometheusrule.yaml is out of date: python deploy/kubernetes/make_prometheusrule.py"
    )


# --------------------------------------------------------------------------
# kubectl, when installed


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl not installed")
    return path


def test_kubectl_kustomize_renders() -> None:
    proc = subprocess.run(
        [kubectl(), "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    rendered = {
        (doc["kind"], doc["metadata"]["name"])
        for doc in yaml.safe_load_all(proc.stdout)
        if doc is not None
    }
    assert rendered == {(doc["kind"], doc["metadata"]["name"]) for _, doc in documents()}


def test_kubectl_dry_run_client() -> None:
    """Schema validation by kubectl; it needs a reachable cluster for the API's schema."""
    core = [str(p) for p in manifest_files() if "monitoring.coreos.com" not in p.read_text()]
    args = [kubectl(), "apply", "--dry-run=client", "--request-timeout=5s", "-o", "name"]
    for path in core:
        args += ["-f", path]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0 and re.search(
        r"connection refused|no configuration|unable to connect|failed to download openapi"
        r"|couldn't get current server API group list|i/o timeout|Unauthorized",
        proc.stderr,
        re.IGNORECASE,
    ):
        pytest.skip(f"kubectl cannot reach a cluster: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
