"""Write prometheusrule.yaml from ../prometheus/alerts.yml (the one source of the rules).

    python deploy/kubernetes/make_prometheusrule.py

tests/test_kubernetes.py fails when the two differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "prometheus" / "alerts.yml"
OUTPUT = HERE / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by make_prometheusrule.py: do not
# edit; change alerts.yml (thresholds, comments and promtool tests are there)
# and run `python deploy/kubernetes/make_prometheusrule.py`.
#
# For the Prometheus Operator. If your Prometheus selects rules by label
# (kube-prometheus-stack: `release: <its release name>`), add that label here.
# The rules expect the scrape job to be `statement-monitor`: the Service's name.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def prometheus_rule() -> dict[str, Any]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "statement-monitor",
            "labels": {
                "app.kubernetes.io/name": "statement-monitor",
                "app.kubernetes.io/instance": "statement-monitor",
                "app.kubernetes.io/component": "monitor",
            },
        },
        "spec": {"groups": groups},
    }


def render() -> str:
    body = yaml.dump(
        prometheus_rule(), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True
    )
    return HEADER + body


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
