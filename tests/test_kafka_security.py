"""Kafka security settings, for real: TLS, mutual TLS, SASL_SSL with PLAIN and SCRAM.

The test broker is tansu 0.6.0, which has no TLS listener (`broker --cert/--key`
are accepted and ignored) and, with `--authentication`, offers SCRAM only and
no way to create its first user (`tansu user create` itself must authenticate,
and memory storage forgets users made before a restart). So:

- TLS and mutual TLS run through `KafkaTlsListener` (tests/sites/tls.py), a
  real TLS listener in front of tansu that tansu advertises as its address:
  every connection, bootstrap and partition leader, goes through it.
- SASL PLAIN and SCRAM-SHA-256/512 are checked by the same listener, which
  runs the SASL exchange against its user table before piping to tansu.
- tansu's own SCRAM is used where it can be: refusing an unknown user.

Each end-to-end test publishes through `KafkaSink` built from a `KafkaConfig`
and reads the record back with aiokafka under the same `client_options`, as
`monitor tail` does.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from monitor.config import KafkaConfig
from monitor.errors import SinkError
from monitor.sinks.embedded import broker_binary
from monitor.sinks.kafka import KafkaSink, client_options, connection_problem
from monitor.state import OutboxRecord
from tests.conftest import free_port
from tests.sites.tls import (
    SASL_MECHANISMS,
    KafkaTlsListener,
    Pki,
    issue_server_certificate,
    make_pki,
)

USERS = {"statement-monitor": "s3cret-Pässword,=\"'\\"}
USER, PASSWORD = next(iter(USERS.items()))


# -- brokers behind listeners --------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def tansu_behind(listener: KafkaTlsListener, *, authentication: bool = False) -> Iterator[None]:
    """A tansu broker on a free port that advertises `listener`, which pipes to it."""
    port = free_port()
    listener_url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(broker_binary()),
            "broker",
            "--listener-url",
            listener_url,
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{listener.port}",
            "--storage-engine",
            "memory://tansu/",
            *(["--authentication"] if authentication else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_listening(port, process)
        listener.start(port)
        yield
    finally:
        listener.stop()
        process.terminate()
        process.wait(timeout=10)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, f"tansu exited with {process.returncode}"
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise AssertionError(f"tansu did not listen on {port}")


@pytest.fixture(scope="module")
def tls_listener(pki: Pki) -> Iterator[KafkaTlsListener]:
    """SSL: the broker proves itself with a certificate from the test CA."""
    listener = KafkaTlsListener(certfile=pki.server_cert, keyfile=pki.server_key)
    with tansu_behind(listener):
        yield listener


@pytest.fixture(scope="module")
def mtls_listener(pki: Pki) -> Iterator[KafkaTlsListener]:
    """SSL with client authentication: a client certificate from the test CA is required."""
    listener = KafkaTlsListener(
        certfile=pki.server_cert, keyfile=pki.server_key, client_cafile=pki.ca
    )
    with tansu_behind(listener):
        yield listener


@pytest.fixture(scope="module")
def sasl_listener(pki: Pki) -> Iterator[KafkaTlsListener]:
    """SASL_SSL: TLS, then PLAIN or SCRAM against `USERS`."""
    listener = KafkaTlsListener(certfile=pki.server_cert, keyfile=pki.server_key, users=USERS)
    with tansu_behind(listener):
        yield listener


@pytest.fixture(scope="module")
def misnamed_listener(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaTlsListener]:
    """SSL with a valid certificate that names another host (broker.internal)."""
    directory = tmp_path_factory.mktemp("misnamed")
    cert, key = issue_server_certificate(
        pki, ("broker.internal",), directory / "cert.pem", directory / "key.pem"
    )
    listener = KafkaTlsListener(certfile=cert, keyfile=key)
    with tansu_behind(listener):
        yield listener


@pytest.fixture(scope="module")
def tansu_sasl_listener(pki: Pki) -> Iterator[KafkaTlsListener]:
    """SASL_SSL where tansu itself runs SASL (`--authentication`); the listener only does TLS."""
    listener = KafkaTlsListener(certfile=pki.server_cert, keyfile=pki.server_key)
    with tansu_behind(listener, authentication=True):
        yield listener


# -- helpers ----------------------------------------------------------------------------


def kafka_config(topic: str, **security: Any) -> KafkaConfig:
    """A validated KafkaConfig for one topic, tansu-friendly, with `security` settings."""
    return KafkaConfig.model_validate(
        {
            "topic": topic,
            "enable_idempotence": False,  # tansu has no InitProducerId
            "partitions": 1,
            "request_timeout": 5,
            **security,
        }
    )


def record(topic: str) -> OutboxRecord:
    event_id = uuid.uuid4().hex
    return OutboxRecord(
        seq=1,
        event_id=event_id,
        statement_id="s1",
        source_id="secure",
        topic=topic,
        key=b"secure",
        value=f'{{"id": "{event_id}"}}'.encode(),
        headers=(("ce_id", event_id.encode()),),
        created_at=time.time(),
    )


async def publish_and_read_back(config: KafkaConfig, bootstrap: str) -> None:
    """Publish one record through KafkaSink, then read it back over the same settings."""
    sent = record(config.topic)
    sink = KafkaSink(config, bootstrap_servers=bootstrap, topics=[config.topic])
    try:
        assert await sink.send([sent]) == [None]
    finally:
        await sink.stop()
    consumer = AIOKafkaConsumer(
        config.topic,
        **client_options(config, bootstrap),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got = await consumer.getmany(timeout_ms=10_000, max_records=1)
    finally:
        await consumer.stop()
    values = [r.value for records in got.values() for r in records]
    assert values == [sent.value]


async def start_fails(config: KafkaConfig, bootstrap: str) -> SinkError:
    sink = KafkaSink(config, bootstrap_servers=bootstrap, topics=[config.topic])
    try:
        with pytest.raises(SinkError) as caught:
            await sink.start()
    finally:
        await sink.stop()
    return caught.value


def ca_names(context: ssl.SSLContext) -> list[str]:
    """The common names of the CAs a context trusts."""
    return [
        str(attribute[1])
        for cert in context.get_ca_certs()
        for rdn in cert["subject"]
        for attribute in rdn
        if attribute[0] == "commonName"
    ]


# -- client_options, no broker -------------------------------------------------------


def test_plaintext_has_neither_tls_nor_sasl() -> None:
    options = client_options(kafka_config("t"), "b:9092")
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options
    assert not [key for key in options if key.startswith("sasl_")]


@pytest.mark.parametrize("mechanism", SASL_MECHANISMS)
def test_sasl_ssl_options(pki: Pki, mechanism: str) -> None:
    config = kafka_config(
        "t",
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=USER,
        sasl_plain_password=PASSWORD,
        ssl_cafile=str(pki.ca),
    )
    options = client_options(config, "b:9093")
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == USER
    # aiokafka needs the plain value; a SecretStr would send "**********"
    assert options["sasl_plain_password"] == PASSWORD
    assert type(options["sasl_plain_password"]) is str
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert ca_names(context) == ["statement-monitor test CA"]  # that CA only, not the system's


def test_sasl_plaintext_has_no_tls_and_defaults_to_plain() -> None:
    config = kafka_config(
        "t", security_protocol="SASL_PLAINTEXT", sasl_plain_username="u", sasl_plain_password="p"
    )
    options = client_options(config, "b:9092")
    assert options["sasl_mechanism"] == "PLAIN"
    assert "ssl_context" not in options


def test_ssl_without_cafile_trusts_the_system_cas() -> None:
    context = client_options(kafka_config("t", security_protocol="SSL"), "b:9093")["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert "statement-monitor test CA" not in ca_names(context)


def test_mutual_tls_options(pki: Pki) -> None:
    config = kafka_config(
        "t",
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
    )
    options = client_options(config, "b:9093")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert not [key for key in options if key.startswith("sasl_")]


def test_encrypted_client_key_with_its_password(pki: Pki) -> None:
    config = kafka_config(
        "t",
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key_encrypted),
        ssl_keyfile_password=pki.key_password,
    )
    assert isinstance(client_options(config, "b:9093")["ssl_context"], ssl.SSLContext)


def test_wrong_key_password_is_a_clear_error_without_the_password(pki: Pki) -> None:
    wrong = "not-the-Passw0rd"
    config = kafka_config(
        "t",
        security_protocol="SSL",
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key_encrypted),
        ssl_keyfile_password=wrong,
    )
    with pytest.raises(SinkError, match=r"check kafka\.ssl_keyfile_password") as caught:
        client_options(config, "b:9093")
    assert wrong not in str(caught.value)
    assert pki.key_password not in str(caught.value)


def test_encrypted_key_without_password_is_an_error_not_a_prompt(pki: Pki) -> None:
    # With password=None OpenSSL would prompt on the terminal and hang the service.
    config = kafka_config(
        "t",
        security_protocol="SSL",
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key_encrypted),
    )
    with pytest.raises(SinkError, match=r"encrypted: set kafka\.ssl_keyfile_password"):
        client_options(config, "b:9093")


def test_hostname_check_can_be_turned_off_but_not_verification(pki: Pki) -> None:
    config = kafka_config(
        "t", security_protocol="SSL", ssl_cafile=str(pki.ca), ssl_check_hostname=False
    )
    context = client_options(config, "b:9093")["ssl_context"]
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512"},
            "kafka.sasl_plain_username and kafka.sasl_plain_password: required for SASL "
            "mechanism SCRAM-SHA-512",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_plain_username": "u"},
            "kafka.sasl_plain_password: required for SASL mechanism PLAIN",
        ),
        (
            {"sasl_mechanism": "PLAIN", "sasl_plain_username": "u", "sasl_plain_password": "p"},
            "kafka.sasl_mechanism: is set, but SASL is used only with security_protocol "
            "SASL_SSL or SASL_PLAINTEXT (it is PLAINTEXT)",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "ssl_cafile": "/ca.pem",
                "sasl_plain_username": "u",
                "sasl_plain_password": "p",
            },
            "kafka.ssl_cafile: is set, but TLS is used only with security_protocol SSL or "
            "SASL_SSL (it is SASL_PLAINTEXT)",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"},
            "OAUTHBEARER needs a token provider",
        ),
        (
            {"security_protocol": "SSL", "ssl_keyfile": "/client.key"},
            "kafka.ssl_keyfile: needs kafka.ssl_certfile",
        ),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"},
            "kafka.ssl_cafile /nonexistent/ca.pem: cannot load the CA certificates: "
            "No such file or directory",
        ),
        (
            {"security_protocol": "SSL", "ssl_certfile": "/nonexistent/client.pem"},
            "kafka.ssl_certfile /nonexistent/client.pem: cannot load the client certificate",
        ),
    ],
    ids=[
        "scram-without-credentials",
        "plain-without-password",
        "sasl-without-sasl-protocol",
        "tls-file-without-tls-protocol",
        "oauthbearer",
        "key-without-certificate",
        "missing-ca-file",
        "missing-certificate",
    ],
)
def test_settings_that_cannot_work_are_named(security: dict[str, Any], expected: str) -> None:
    with pytest.raises(SinkError) as caught:
        client_options(kafka_config("t", **security), "b:9093")
    assert expected in str(caught.value)


def test_a_ca_file_that_is_not_pem_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(SinkError, match=r"kafka.ssl_cafile .*ca.pem: cannot load the CA"):
        client_options(kafka_config("t", security_protocol="SSL", ssl_cafile=str(bogus)), "b:1")


# -- end to end, through a real TLS listener ------------------------------------------


@pytest.mark.integration
async def test_tls_publishes_and_reads_back(tls_listener: KafkaTlsListener, pki: Pki) -> None:
    config = kafka_config(_topic(), security_protocol="SSL", ssl_cafile=str(pki.ca))
    await publish_and_read_back(config, tls_listener.bootstrap_servers)
    assert await connection_problem(config, tls_listener.bootstrap_servers) is None


@pytest.mark.integration
async def test_tls_with_the_wrong_ca_fails_with_a_clear_reason(
    tls_listener: KafkaTlsListener, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    config = kafka_config(_topic(), security_protocol="SSL", ssl_cafile=str(pki.other_ca))
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await start_fails(config, tls_listener.bootstrap_servers)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    problem = await connection_problem(config, tls_listener.bootstrap_servers)
    assert problem is not None
    assert problem.startswith("TLS: the broker's certificate was refused: ")
    assert problem.endswith("; is kafka.ssl_cafile the CA that signed it?")


@pytest.mark.integration
async def test_tls_refuses_a_certificate_for_another_host(
    misnamed_listener: KafkaTlsListener, pki: Pki
) -> None:
    config = kafka_config(_topic(), security_protocol="SSL", ssl_cafile=str(pki.ca))
    await start_fails(config, misnamed_listener.bootstrap_servers)
    problem = await connection_problem(config, misnamed_listener.bootstrap_servers)
    assert problem is not None
    assert "mismatch" in problem
    assert "it does not name 127.0.0.1 (kafka.ssl_check_hostname)" in problem


@pytest.mark.integration
async def test_tls_without_hostname_check_accepts_it(
    misnamed_listener: KafkaTlsListener, pki: Pki
) -> None:
    config = kafka_config(
        _topic(), security_protocol="SSL", ssl_cafile=str(pki.ca), ssl_check_hostname=False
    )
    await publish_and_read_back(config, misnamed_listener.bootstrap_servers)


@pytest.mark.integration
async def test_mutual_tls_publishes_with_a_client_certificate(
    mtls_listener: KafkaTlsListener, pki: Pki
) -> None:
    config = kafka_config(
        _topic(),
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
    )
    await publish_and_read_back(config, mtls_listener.bootstrap_servers)


@pytest.mark.integration
async def test_mutual_tls_with_an_encrypted_key(mtls_listener: KafkaTlsListener, pki: Pki) -> None:
    config = kafka_config(
        _topic(),
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key_encrypted),
        ssl_keyfile_password=pki.key_password,
    )
    await publish_and_read_back(config, mtls_listener.bootstrap_servers)


@pytest.mark.integration
async def test_mutual_tls_refuses_a_client_without_certificate(
    mtls_listener: KafkaTlsListener, pki: Pki
) -> None:
    config = kafka_config(_topic(), security_protocol="SSL", ssl_cafile=str(pki.ca))
    await start_fails(config, mtls_listener.bootstrap_servers)
    problem = await connection_problem(config, mtls_listener.bootstrap_servers)
    assert problem == (
        "TLS: the broker ended the connection: TLSV13_ALERT_CERTIFICATE_REQUIRED; "
        "the broker requires a client certificate: kafka.ssl_certfile, kafka.ssl_keyfile"
    )


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", SASL_MECHANISMS)
async def test_sasl_ssl_publishes_and_reads_back(
    sasl_listener: KafkaTlsListener, pki: Pki, mechanism: str
) -> None:
    config = kafka_config(
        _topic(),
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=USER,
        sasl_plain_password=PASSWORD,
        ssl_cafile=str(pki.ca),
    )
    await publish_and_read_back(config, sasl_listener.bootstrap_servers)


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", SASL_MECHANISMS)
async def test_sasl_ssl_wrong_password_fails_without_showing_it(
    sasl_listener: KafkaTlsListener, pki: Pki, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-but-still-secret"
    config = kafka_config(
        _topic(),
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=USER,
        sasl_plain_password=wrong,
        ssl_cafile=str(pki.ca),
    )
    # INFO: at DEBUG aiokafka.conn logs each request, a PLAIN password included;
    # configure_logging keeps that logger at INFO or above (see tests/test_secrets.py).
    with caplog.at_level(logging.INFO):
        error = await start_fails(config, sasl_listener.bootstrap_servers)
        problem = await connection_problem(config, sasl_listener.bootstrap_servers)
    assert problem is not None
    assert "SaslAuthenticationFailed" in problem
    texts = [str(error), repr(error), repr(error.__cause__), problem, caplog.text]
    assert not [text for text in texts if wrong in text or PASSWORD in text]
    assert "SaslAuthenticationFailed" in caplog.text  # aiokafka says why, without the password


@pytest.mark.integration
async def test_tansu_scram_refuses_an_unknown_user(
    tansu_sasl_listener: KafkaTlsListener, pki: Pki
) -> None:
    config = kafka_config(
        _topic(),
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="nobody",
        sasl_plain_password=PASSWORD,
        ssl_cafile=str(pki.ca),
    )
    problem = await connection_problem(config, tansu_sasl_listener.bootstrap_servers)
    assert problem == "SASL: the broker ended the SCRAM exchange with an error (unknown user?)"


@pytest.mark.integration
async def test_tansu_scram_refusal_is_a_sink_error(
    tansu_sasl_listener: KafkaTlsListener, pki: Pki
) -> None:
    config = kafka_config(
        _topic(),
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="nobody",
        sasl_plain_password=PASSWORD,
        ssl_cafile=str(pki.ca),
    )
    error = await start_fails(config, tansu_sasl_listener.bootstrap_servers)
    assert PASSWORD not in str(error)


def _topic() -> str:
    return f"statements.secure-{uuid.uuid4().hex[:10]}"
