"""No secret in logs, errors or metrics.

The Kafka password is set in every test here and must never show: not in the
config's repr, not in a config error, not in the log lines and SinkError of a
failed connection, not on /metrics or /readyz. The redaction in monitor.log is
the second line of defence: any registered secret that reaches a log line
anyway, in any field or in exception text, is shown as "***".
"""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
import yaml
from prometheus_client import REGISTRY, generate_latest
from pydantic import SecretStr

from monitor.config import Config, KafkaConfig, load_config
from monitor.errors import ConfigError, SinkError
from monitor.log import (
    REDACTED,
    configure_logging,
    forget_secrets,
    redact,
    register_secret,
    secret_values,
)
from monitor.sinks.kafka import KafkaSink, connection_problem
from tests.conftest import free_port, make_config, running, wait_until

PASSWORD = 'Pa55-"wörd"\\with,=odd:chars'
MARK = "Pa55"  # how the password starts, in every escaped form
KEY_PASSWORD = "key-pass-Wörd-7"
SASL = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "monitor",
    "sasl_plain_password": PASSWORD,
}

Configure = Callable[..., io.StringIO]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """configure_logging into a StringIO; structlog and the secrets restored afterwards."""
    saved = structlog.get_config()
    forget_secrets()

    def configure(
        level: str = "debug", fmt: str = "json", secrets: Iterable[str] = ()
    ) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level, fmt, secrets, stream=stream)  # type: ignore[arg-type]
        # Loggers first used in this test must not keep this stream for later tests.
        structlog.configure(cache_logger_on_first_use=False)
        return stream

    yield configure
    forget_secrets()
    structlog.configure(**saved)


def closed_port_config(**kafka: Any) -> KafkaConfig:
    """SASL settings for a broker that is not there: nothing listens on the port."""
    return KafkaConfig.model_validate(
        {"topic": "statements", "request_timeout": 2, "enable_idempotence": False, **SASL, **kafka}
    )


def assert_hidden(*texts: str) -> None:
    """Not the password, nor any escaped form of it (all of them start with MARK)."""
    leaks = [text for text in texts if MARK in text]
    assert not leaks, f"the password leaked into: {leaks}"


# -- (a) the config ---------------------------------------------------------------------


def test_config_repr_str_and_dumps_hide_the_password() -> None:
    config = Config.model_validate({"kafka": SASL})
    shown = [
        repr(config),
        str(config),
        f"{config}",
        repr(config.kafka),
        str(config.kafka),
        config.model_dump_json(),
        json.dumps(config.model_dump(mode="json")),
        repr(config.kafka.sasl_plain_password),
    ]
    assert_hidden(*shown)
    assert "**********" in repr(config.kafka)


@pytest.mark.skipif(
    "ssl_keyfile_password" not in KafkaConfig.model_fields,
    reason="config.py has no kafka.ssl_keyfile_password yet",
)
def test_the_key_password_is_secret_too() -> None:
    config = KafkaConfig.model_validate(
        {"security_protocol": "SSL", "ssl_keyfile_password": KEY_PASSWORD}
    )
    assert KEY_PASSWORD not in repr(config) + config.model_dump_json()
    assert KEY_PASSWORD in secret_values(config)


def test_config_errors_never_show_the_password(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {"kafka": {**SASL, "partitions": 0, "sasl_mechanism": "PLAIN-TEXT"}, "sources": []}
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert_hidden(str(caught.value), *caught.value.problems)
    # a password of the wrong type: pydantic's message does not echo the input
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"MONITOR__KAFKA__SASL_PLAIN_PASSWORD": f"[{PASSWORD!r}]"})
    assert_hidden(str(caught.value))


@pytest.mark.parametrize("password", ["123456", "abc #def", "null", "'quoted'", "yes"])
def test_passwords_from_the_environment_are_taken_verbatim(tmp_path: Path, password: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"kafka": {**SASL, "sasl_plain_password": "from-file"}}))
    config = load_config(path, env={"MONITOR__KAFKA__SASL_PLAIN_PASSWORD": password})
    assert config.kafka.sasl_plain_password is not None
    assert config.kafka.sasl_plain_password.get_secret_value() == password


# -- (b) a failed connection: log lines and errors ------------------------------------


async def test_a_failed_sasl_connection_shows_no_password(
    configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    lines = configure("debug", "json")  # no secret registered: nothing to redact, nothing leaks
    config = closed_port_config()
    bootstrap = f"127.0.0.1:{free_port()}"
    sink = KafkaSink(config, bootstrap_servers=bootstrap, topics=[config.topic])
    with caplog.at_level(logging.INFO), pytest.raises(SinkError) as caught:
        await sink.start()
    await sink.stop()
    problem = await connection_problem(config, bootstrap)
    error = caught.value
    assert problem is not None
    assert_hidden(
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),  # with the aiokafka error it came from
        problem,
        lines.getvalue(),
        caplog.text,
    )
    assert "Unable connect" in caplog.text  # aiokafka did log the failure


async def test_the_service_with_sasl_settings_leaks_nothing(
    configure: Configure, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole service against a closed port: logs, /readyz and /metrics stay clean."""
    lines = configure("debug", "json")
    config = make_config(
        tmp_path,
        bootstrap=f"127.0.0.1:{free_port()}",
        topic="statements.secrets",
        sources=[],
        kafka={**SASL, "request_timeout": 2},
    )
    with caplog.at_level(logging.INFO):
        async with running(config) as service:
            await wait_until(lambda: service.relay is not None and service.relay.last_error)
            assert service.server is not None
            pages = await _scrape(service.server.port, "/metrics", "/readyz", "/healthz")
    logged = lines.getvalue()
    assert "broker_unavailable" in logged
    assert_hidden(logged, caplog.text, *pages, generate_latest(REGISTRY).decode())


async def _scrape(port: int, *paths: str) -> list[str]:
    async with aiohttp.ClientSession() as session:
        pages = []
        for path in paths:
            async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                pages.append(await response.text())
        return pages


# -- (d) the redaction ----------------------------------------------------------------


def test_a_registered_secret_is_redacted_in_any_field(configure: Configure) -> None:
    lines = configure("info", "json", secrets=[PASSWORD])
    log = structlog.get_logger("test")
    log.info(
        f"event mentioning {PASSWORD}",
        plain=PASSWORD,
        nested={"deep": [f"prefix {PASSWORD} suffix", {"k": PASSWORD}]},
        as_repr=repr(PASSWORD),
        as_bytes=PASSWORD.encode(),
        secret_object=SecretStr(PASSWORD),
    )
    line = lines.getvalue()
    assert_hidden(line)
    event = json.loads(line)  # still valid JSON
    assert event["plain"] == REDACTED
    assert event["event"] == f"event mentioning {REDACTED}"
    assert event["nested"]["deep"][0] == f"prefix {REDACTED} suffix"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_registered_secret_is_redacted_in_exception_text(configure: Configure, fmt: str) -> None:
    lines = configure("info", fmt, secrets=[PASSWORD])
    log = structlog.get_logger("test")
    try:
        raise RuntimeError(f"login refused for password {PASSWORD!r}")
    except RuntimeError:
        log.exception("login_failed")
    text = lines.getvalue()
    assert "login refused for password" in text
    assert REDACTED in text
    assert_hidden(text)


def test_standard_library_records_are_redacted(
    configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        configure("info", "json", secrets=[SecretStr(PASSWORD)])
        library = logging.getLogger("some_library.client")
        library.error("SASL message %r for %s", b"u\x00u\x00" + PASSWORD.encode(), PASSWORD)
        try:
            raise ValueError(PASSWORD)
        except ValueError:
            library.exception("failed")
    assert caplog.records
    assert_hidden(caplog.text, *(record.getMessage() for record in caplog.records))
    assert REDACTED in caplog.text


def test_secrets_registered_after_configuration_count(configure: Configure) -> None:
    lines = configure("info", "json")
    register_secret(PASSWORD)
    structlog.get_logger("test").info("late", value=PASSWORD)
    assert_hidden(lines.getvalue())


def test_without_secrets_nothing_is_touched(configure: Configure) -> None:
    configure("info", "json")
    text = f"a line with {PASSWORD}"
    assert redact(text) is text
    register_secret("")
    register_secret(None)
    assert redact(text) is text


def test_a_longer_secret_containing_another_is_replaced_whole() -> None:
    forget_secrets()
    try:
        register_secret("abc")
        register_secret("xxabcxx")
        assert redact("1 xxabcxx 2 abc 3") == f"1 {REDACTED} 2 {REDACTED} 3"
    finally:
        forget_secrets()


def test_secret_values_finds_every_secret_of_the_config() -> None:
    config = Config.model_validate({"kafka": SASL})
    assert secret_values(config) == [PASSWORD]
    assert secret_values(Config()) == []


def test_aiokafka_request_dumps_stay_off_even_at_debug(configure: Configure) -> None:
    """aiokafka.conn logs each request at DEBUG, a SASL PLAIN password included."""
    configure("debug", "json")
    assert not logging.getLogger("aiokafka.conn").isEnabledFor(logging.DEBUG)
