"""The Kafka sink: aiokafka producer with acks=all, and topic creation.

Records are sent in outbox order and each send waits for the broker's
acknowledgement from all in-sync replicas before the relay may forget it.
With `kafka.enable_idempotence` (the default) the producer also asks the
broker for a producer id, so retried batches are not written twice. A broker
that does not support that answers InitProducerId with an error; we say so in
plain words instead of surfacing aiokafka's `UnknownError`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import ssl
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from monitor.config import KafkaConfig
from monitor.errors import BrokerRefusedError, RecordRejectedError, SinkError
from monitor.sinks.deadletter import (
    dead_letter_record,
    dead_letter_topic,
    rejection,
)
from monitor.state import OutboxRecord

__all__ = ["KafkaSink", "client_options", "connection_problem"]

log = structlog.get_logger(__name__)

IDEMPOTENCE_REFUSED = (
    "the Kafka broker refused to give this producer an id (InitProducerId failed), so it "
    "does not support idempotent producers; set kafka.enable_idempotence: false "
    "(or MONITOR__KAFKA__ENABLE_IDEMPOTENCE=false) for this broker. Delivery stays "
    "at-least-once with stable event ids either way."
)


_TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
_SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_PASSWORD_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
_SASL_FIELDS = (
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_kerberos_service_name",
)
_TLS_FIELDS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_keyfile_password")
_ADDRESS = re.compile(r"\[?(?P<host>[^\]]+?)\]?(?::(?P<port>\d+))?")
# ApiVersions v0 with a null client id: a request every Kafka broker answers.
_API_VERSIONS_REQUEST = struct.pack(">ihhih", 10, 18, 0, 1, -1)


def client_options(config: KafkaConfig, bootstrap_servers: str) -> dict[str, Any]:
    """Connection options shared by the producer, the admin client and `monitor tail`.

    SASL options are passed only with SASL_PLAINTEXT or SASL_SSL, and an
    SSLContext is built only with SSL or SASL_SSL. Settings that cannot work (a
    SASL mechanism without its credentials, TLS files under a plaintext
    protocol, an unreadable certificate, a wrong key password) raise a
    `SinkError` that names the settings and never holds a secret value.
    """
    problems = _security_problems(config)
    if problems:
        raise SinkError("invalid Kafka security settings: " + "; ".join(problems))
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": config.client_id,
        "request_timeout_ms": int(config.request_timeout * 1000),
        "security_protocol": config.security_protocol,
    }
    if config.security_protocol in _SASL_PROTOCOLS:
        options.update(_sasl_options(config))
    if config.security_protocol in _TLS_PROTOCOLS:
        options["ssl_context"] = _ssl_context(config)
    return options


def _security_problems(config: KafkaConfig) -> list[str]:
    """Security settings that cannot work together, one `kafka.key: why` per problem."""
    protocol = config.security_protocol
    problems: list[str] = []
    if protocol in _SASL_PROTOCOLS:
        problems.extend(_sasl_problems(config))
    else:
        problems.extend(
            f"kafka.{name}: is set, but SASL is used only with security_protocol "
            f"SASL_SSL or SASL_PLAINTEXT (it is {protocol})"
            for name in _set_fields(config, _SASL_FIELDS)
        )
    if protocol in _TLS_PROTOCOLS:
        problems.extend(_tls_problems(config))
    else:
        problems.extend(
            f"kafka.{name}: is set, but TLS is used only with security_protocol "
            f"SSL or SASL_SSL (it is {protocol})"
            for name in _set_fields(config, _TLS_FIELDS)
        )
    return problems


def _set_fields(config: KafkaConfig, names: Sequence[str]) -> list[str]:
    return [name for name in names if getattr(config, name) is not None]


def _sasl_problems(config: KafkaConfig) -> list[str]:
    mechanism = config.sasl_mechanism or "PLAIN"
    if mechanism in _PASSWORD_MECHANISMS:
        missing = [
            f"kafka.{name}"
            for name in ("sasl_plain_username", "sasl_plain_password")
            if getattr(config, name) is None
        ]
        if missing:
            return [f"{' and '.join(missing)}: required for SASL mechanism {mechanism}"]
        return []
    if mechanism == "OAUTHBEARER":
        return [
            "kafka.sasl_mechanism: OAUTHBEARER needs a token provider, which the config "
            "cannot name; use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN"
        ]
    if mechanism == "GSSAPI" and importlib.util.find_spec("gssapi") is None:
        return ["kafka.sasl_mechanism: GSSAPI needs the Python package gssapi (pip install gssapi)"]
    return []


def _tls_problems(config: KafkaConfig) -> list[str]:
    problems = []
    if config.ssl_keyfile is not None and config.ssl_certfile is None:
        problems.append("kafka.ssl_keyfile: needs kafka.ssl_certfile, the certificate of the key")
    if _keyfile_password(config) is not None and config.ssl_certfile is None:
        problems.append("kafka.ssl_keyfile_password: needs kafka.ssl_certfile (and its key)")
    return problems


def _sasl_options(config: KafkaConfig) -> dict[str, Any]:
    """The aiokafka SASL options; the password as its plain value, which aiokafka needs."""
    options: dict[str, Any] = {"sasl_mechanism": config.sasl_mechanism or "PLAIN"}
    if config.sasl_plain_username is not None:
        options["sasl_plain_username"] = config.sasl_plain_username
    if config.sasl_plain_password is not None:
        options["sasl_plain_password"] = config.sasl_plain_password.get_secret_value()
    if config.sasl_kerberos_service_name:
        options["sasl_kerberos_service_name"] = config.sasl_kerberos_service_name
    return options


def _ssl_context(config: KafkaConfig) -> ssl.SSLContext:
    """A client context: verify the broker, check its name, present a client certificate.

    The broker's certificate must chain to `ssl_cafile` (only to it, when set)
    or else to the system's CAs, and name the host dialled unless
    `ssl_check_hostname` is false. With `ssl_certfile` the client proves itself
    too (mutual TLS).
    """
    cafile = config.ssl_cafile
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ValueError) as exc:
        raise SinkError(
            f"kafka.ssl_cafile {cafile}: cannot load the CA certificates: {_why(exc)}"
        ) from exc
    context.check_hostname = config.ssl_check_hostname
    if config.ssl_certfile is not None:
        _load_client_certificate(context, config.ssl_certfile, config.ssl_keyfile, config)
    return context


def _load_client_certificate(
    context: ssl.SSLContext, certfile: Path, keyfile: Path | None, config: KafkaConfig
) -> None:
    password = _keyfile_password(config)
    asked = False

    def give_password() -> str:
        # A callable, never None: with None OpenSSL would prompt on the terminal
        # for an encrypted key and hang the service.
        nonlocal asked
        asked = True
        return password or ""

    try:
        context.load_cert_chain(
            str(certfile), str(keyfile) if keyfile else None, password=give_password
        )
    except (OSError, ValueError) as exc:
        files = f"kafka.ssl_certfile {certfile}"
        if keyfile:
            files += f", kafka.ssl_keyfile {keyfile}"
        if asked and password is None:
            hint = "; the private key is encrypted: set kafka.ssl_keyfile_password"
        elif asked:
            hint = "; check kafka.ssl_keyfile_password"
        else:
            hint = ""
        raise SinkError(
            f"{files}: cannot load the client certificate and key: {_why(exc)}{hint}"
        ) from exc


def _keyfile_password(config: KafkaConfig) -> str | None:
    secret = config.ssl_keyfile_password
    return secret.get_secret_value() if secret is not None else None


def _why(exc: BaseException) -> str:
    """The reason in an OSError or SSLError, without Python's errno prefix."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


async def connection_problem(config: KafkaConfig, bootstrap_servers: str) -> str | None:
    """Why connecting to the first bootstrap server fails, in plain words; None if it works.

    When the bootstrap fails, aiokafka logs the cause (a certificate that does not
    verify, a refused SASL login) and raises only "Unable to bootstrap". This
    connects once more the same way, with `client_options`, and returns the
    cause for an error message. TLS and SASL failures never echo credentials.
    """
    options = client_options(config, bootstrap_servers)
    del options["bootstrap_servers"]
    host, port = _first_address(bootstrap_servers)
    try:
        connection = await create_conn(host, port, **options)
    except KafkaConnectionError as exc:
        # Under TLS 1.3 a broker refuses a client certificate after the handshake,
        # and aiokafka reports only a closed connection: ask TLS for the alert.
        context = options.get("ssl_context")
        alert = None if context is None else await _tls_alert(host, port, context, config)
        return _describe_alert(alert) if alert else str(exc)
    except Exception as exc:  # aiokafka's SCRAM client raises KeyError on a server error
        return _describe_failure(exc, host)
    connection.close()
    return None


def _first_address(bootstrap_servers: str) -> tuple[str, int]:
    """(host, port) of the first of `host:port,[v6 address]:port,host`."""
    first = bootstrap_servers.split(",")[0].strip()
    match = _ADDRESS.fullmatch(first)
    if match is None:
        return first, 9092
    return match["host"], int(match["port"] or 9092)


async def _tls_alert(
    host: str, port: int, context: ssl.SSLContext, config: KafkaConfig
) -> str | None:
    """The TLS alert a broker sends once the handshake is done and a request arrives, if any."""
    try:
        async with asyncio.timeout(config.request_timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host
            )
            try:
                writer.write(_API_VERSIONS_REQUEST)
                await writer.drain()
                await reader.read(4)
            finally:
                writer.close()
    except ssl.SSLError as exc:
        return str(exc.reason or exc)
    except (OSError, TimeoutError):
        return None
    return None


def _describe_alert(alert: str) -> str:
    if "CERTIFICATE_REQUIRED" in alert:
        hint = "; the broker requires a client certificate: kafka.ssl_certfile, kafka.ssl_keyfile"
    elif "UNKNOWN_CA" in alert or "BAD_CERTIFICATE" in alert:
        hint = "; the broker did not accept the client certificate (kafka.ssl_certfile)"
    else:
        hint = ""
    return f"TLS: the broker ended the connection: {alert}{hint}"


def _describe_failure(exc: BaseException, host: str) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = (
            f"; it does not name {host} (kafka.ssl_check_hostname)"
            if "mismatch" in str(exc.verify_message)
            else "; is kafka.ssl_cafile the CA that signed it?"
        )
        return f"TLS: the broker's certificate was refused: {exc.verify_message}{hint}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: the handshake failed: {exc.reason or exc}"
    if isinstance(exc, KeyError):
        return "SASL: the broker ended the SCRAM exchange with an error (unknown user?)"
    if isinstance(exc, KafkaError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


class KafkaSink:
    """Publishes outbox records to Kafka and reports each record's outcome."""

    def __init__(self, config: KafkaConfig, *, bootstrap_servers: str, topics: Sequence[str]):
        self._config = config
        self._bootstrap = bootstrap_servers
        # Each topic's dead-letter topic too: a broker may not create topics on produce.
        self._topics = [*topics, *(dead_letter_topic(t) for t in topics)]
        self._producer: AIOKafkaProducer | None = None
        self._topics_ready = not config.create_topics

    async def start(self) -> None:
        if self._producer is not None:
            return
        if not self._topics_ready:
            await self._create_topics()
            self._topics_ready = True
        producer = AIOKafkaProducer(
            **client_options(self._config, self._bootstrap),
            acks="all",
            enable_idempotence=self._config.enable_idempotence,
            linger_ms=self._config.linger_ms,
            compression_type=self._config.compression_type,
            max_request_size=self._config.max_request_size,
        )
        try:
            await producer.start()
        except (KafkaConnectionError, KeyError) as exc:
            # KeyError: aiokafka's SCRAM client when the broker ends the exchange with `e=`.
            await _quietly_stop(producer)
            raise SinkError(await self._unreachable()) from exc
        except KafkaError as exc:
            await _quietly_stop(producer)
            if self._config.enable_idempotence and not _has_producer_id(producer):
                raise BrokerRefusedError(IDEMPOTENCE_REFUSED) from exc
            raise SinkError(f"Kafka at {self._bootstrap} refused the producer: {exc!r}") from exc
        self._producer = producer

    async def send(self, records: Sequence[OutboxRecord]) -> list[BaseException | None]:
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        futures: list[asyncio.Future[Any] | BaseException] = []
        for record in records:
            try:
                futures.append(
                    await producer.send(
                        record.topic, record.value, key=record.key, headers=list(record.headers)
                    )
                )
            except KafkaError as exc:
                futures.append(exc)
        outcomes: list[BaseException | None] = []
        refused_by_broker = False
        for future in futures:
            if isinstance(future, BaseException):  # refused by the producer, never sent
                outcomes.append(self._explain(future))
                continue
            try:
                await future
                outcomes.append(None)
            except KafkaError as exc:
                outcomes.append(self._explain(exc))
                refused_by_broker = True
        if any(o is not None and not isinstance(o, RecordRejectedError) for o in outcomes) or (
            refused_by_broker and self._config.enable_idempotence
        ):
            # A producer whose sender failed is not reused: start afresh next time.
            # One refused record says nothing against the producer or the broker,
            # except with idempotence: a refused batch leaves a gap in the
            # producer's sequence numbers, which a new producer id clears.
            await self.stop()
        return outcomes

    async def dead_letter(self, record: OutboxRecord, error: RecordRejectedError) -> None:
        """Send `record` to `<topic>.dlq` with the reason in its headers.

        When the refused value is too large, a stand-in naming the event is sent
        instead of it. Raises `RecordRejectedError` if the dead-letter topic refuses
        the record too, `SinkError` if the broker did not answer.
        """
        omit = error.reason == "too_large"
        try:
            await self._send_one(record, error, omit_value=omit)
        except RecordRejectedError as again:
            if omit or again.reason != "too_large":
                raise
            await self._send_one(record, error, omit_value=True)

    async def _send_one(
        self, record: OutboxRecord, error: RecordRejectedError, *, omit_value: bool
    ) -> None:
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        value, headers = dead_letter_record(record, error, omit_value=omit_value)
        try:
            future = await producer.send(
                dead_letter_topic(record.topic), value, key=record.key, headers=headers
            )
            await future
        except KafkaError as exc:
            explained = self._explain(exc)
            if self._config.enable_idempotence or not isinstance(explained, RecordRejectedError):
                await self.stop()  # as in send()
            raise explained from exc

    async def check(self) -> None:
        """Connect if needed and ask the broker for metadata."""
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        if not await self._producer.client.force_metadata_update():
            await self.stop()
            raise SinkError(f"Kafka at {self._bootstrap} does not answer metadata requests")

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        # The next start checks the topics again: a broker that comes back
        # after an outage may have lost them (a fresh cluster, memory storage).
        self._topics_ready = not self._config.create_topics
        if producer is not None:
            await _quietly_stop(producer)

    def _explain(self, exc: KafkaError) -> SinkError:
        refused = rejection(exc)
        if refused is not None:
            return refused
        if (
            self._config.enable_idempotence
            and self._producer is not None
            and not _has_producer_id(self._producer)
        ):
            return BrokerRefusedError(IDEMPOTENCE_REFUSED)
        return SinkError(f"Kafka did not acknowledge: {exc!r}")

    async def _unreachable(self) -> str:
        """Why Kafka cannot be reached: aiokafka itself says only "Unable to bootstrap"."""
        reason = await connection_problem(self._config, self._bootstrap)
        return f"cannot connect to Kafka at {self._bootstrap}: {reason or 'the connection failed'}"

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(**client_options(self._config, self._bootstrap))
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in self._topics if t not in existing]
            if missing:
                await admin.create_topics(
                    [
                        NewTopic(t, self._config.partitions, self._config.replication_factor)
                        for t in missing
                    ]
                )
                log.info(
                    "kafka_topics_created",
                    topics=missing,
                    partitions=self._config.partitions,
                    replication_factor=self._config.replication_factor,
                )
        except TopicAlreadyExistsError:
            pass  # another instance created it between our list and our create
        except (KafkaConnectionError, KeyError) as exc:  # KeyError: see start()
            raise SinkError(await self._unreachable()) from exc
        except KafkaError as exc:
            raise SinkError(
                f"cannot create topics {self._topics} on {self._bootstrap}: {exc}"
            ) from exc
        finally:
            await _quietly_close(admin)


def _has_producer_id(producer: AIOKafkaProducer) -> bool:
    # aiokafka keeps the producer id on its transaction manager; there is no
    # public accessor. Without a manager (idempotence off) there is nothing to refuse.
    manager = getattr(producer, "_txn_manager", None)
    return bool(manager is None or manager.has_pid())


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout=5)
    except (KafkaError, TimeoutError, OSError) as exc:
        log.warning("kafka_producer_stop_failed", error=repr(exc))


async def _quietly_close(admin: AIOKafkaAdminClient) -> None:
    try:
        await admin.close()
    except (KafkaError, OSError) as exc:
        log.debug("kafka_admin_close_failed", error=repr(exc))
