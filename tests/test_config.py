"""Config: the contract's keys, env overrides, and precise error paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_config, parse_duration
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


CONTRACT_EXAMPLE = """
kafka:
  bootstrap_servers: "localhost:9092"
  topic: statements
  enable_idempotence: true
state:
  path: ./state/monitor.db
metrics:
  host: 0.0.0.0
  port: 9108
defaults:
  interval: 5m
  timeout: 20s
sources:
  - id: mod-ru-en
    name: Ministry of Defence of the Russian Federation
    url: https://eng.mil.ru/en/news_page/rss.htm
    interval: 2m
    backfill: true
    topic: statements.defence
    tags: [defence, ru]
  - id: fed
    url: https://www.federalreserve.gov/feeds/press_all.xml
"""


def test_the_contract_example_loads_with_defaults_applied(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONTRACT_EXAMPLE), env={})
    mod, fed = config.resolved_sources()
    assert (mod.interval, mod.timeout, mod.backfill, mod.topic) == (120, 20, True, "statements.defence")
    assert mod.tags == ("defence", "ru")
    assert (fed.interval, fed.timeout, fed.backfill, fed.topic, fed.name) == (300, 20, False, "statements", "fed")
    assert config.topics() == ["statements", "statements.defence"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(1, 1.0), (0.5, 0.5), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), ("2", 2.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_every_error_is_reported_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, """
kafka:
  topik: typo
sources:
  - {id: ok, url: "https://example.org/feed"}
  - {id: b, url: "https://example.org/b"}
  - {id: c, url: "https://example.org/c"}
  - {id: d, url: "https://example.org/d", interval: -5}
  - {id: "Bad Id", url: "ftp://example.org/x", colour: blue}
  - {id: ok, url: "https://example.org/again"}
""")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    problems = caught.value.problems
    assert "sources[3].interval: must be a positive duration" in problems
    assert "kafka.topik: unknown key (check its spelling and the configuration reference)" in problems
    assert any(p.startswith("sources[4].id: must match [a-z0-9_-]+") for p in problems)
    assert any(p.startswith("sources[4].url: must be an absolute http") for p in problems)
    assert any(p.startswith("sources[4].colour: unknown key") for p in problems)
    assert any(p.startswith("sources[5].id: duplicate id 'ok'") for p in problems)


def test_missing_required_keys_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "sources:\n  - {name: nameless}\n"), env={})
    assert "sources[0].id: is required" in caught.value.problems
    assert "sources[0].url: is required" in caught.value.problems
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "kafka: [unclosed\n"), env={})
    assert "invalid YAML" in caught.value.problems[0]
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml", env={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "MONITOR__KAFKA__BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
        "MONITOR__KAFKA__ENABLE_IDEMPOTENCE": "false",
        "MONITOR__KAFKA__SASL_PLAIN_PASSWORD": "s3cret",
        "MONITOR__KAFKA__SECURITY_PROTOCOL": "SASL_SSL",  # a password needs SASL (issue 13)
        "MONITOR__SOURCES__0__INTERVAL": "1m",
        "UNRELATED": "x",
    }
    config = load_config(write(tmp_path, CONTRACT_EXAMPLE), env=env)
    assert config.kafka.bootstrap_servers == "kafka-1:9093,kafka-2:9093"
    assert config.kafka.enable_idempotence is False
    assert config.kafka.sasl_plain_password is not None
    assert config.kafka.sasl_plain_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)  # secrets never reach logs
    assert config.resolved_sources()[0].interval == 60


def test_an_env_override_is_validated_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, CONTRACT_EXAMPLE), env={"MONITOR__DEFAULTS__INTERVAL": "soon"})
    assert any(p.startswith("defaults.interval: must be a positive duration") for p in caught.value.problems)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


def test_monitor_check_exit_codes_and_paths(tmp_path: Path) -> None:
    good = run_cli("check", "--config", str(write(tmp_path, CONTRACT_EXAMPLE)))
    assert good.returncode == 0, good.stderr
    assert "config OK: 2 sources" in good.stdout
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text("sources:\n  - {id: a, url: 'https://x.org/f'}\n  - {id: b, url: 'https://x.org/g'}\n"
                        "  - {id: c, url: 'https://x.org/h'}\n  - {id: d, url: 'https://x.org/i', interval: 0}\n")
    bad = run_cli("check", "--config", str(bad_path))
    assert bad.returncode == 2
    assert "sources[3].interval: must be a positive duration" in bad.stderr


def test_run_refuses_an_invalid_config_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: {bootstrap_servers: 'localhost:1'}\nstate: {path: '%s'}\nsources: [{id: x}]\n"
                   % (tmp_path / "state.db"))
    result = run_cli("run", "--config", str(bad))
    assert result.returncode == 2
    assert "sources[0].url: is required" in result.stderr
    assert not (tmp_path / "state.db").exists()  # nothing was started


def test_the_shipped_config_is_valid() -> None:
    config = load_config(REPO / "config.yaml", env={})
    assert len(config.sources) >= 12
    assert config.kafka.embedded
