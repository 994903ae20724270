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
import ssl
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from monitor.config import KafkaConfig
from monitor.errors import BrokerRefusedError, SinkError
from monitor.state import OutboxRecord

__all__ = ["KafkaSink", "client_options"]

log = structlog.get_logger(__name__)

IDEMPOTENCE_REFUSED = (
    "the Kafka broker refused to give this producer an id (InitProducerId failed), so it "
    "does not support idempotent producers; set kafka.enable_idempotence: false "
    "(or MONITOR__KAFKA__ENABLE_IDEMPOTENCE=false) for this broker. Delivery stays "
    "at-least-once with stable event ids either way."
)


def client_options(config: KafkaConfig, bootstrap_servers: str) -> dict[str, Any]:
    """Connection options shared by the producer, the admin client and `monitor tail`."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": config.client_id,
        "request_timeout_ms": int(config.request_timeout * 1000),
        "security_protocol": config.security_protocol,
    }
    if config.sasl_mechanism:
        options["sasl_mechanism"] = config.sasl_mechanism
    if config.sasl_plain_username is not None:
        options["sasl_plain_username"] = config.sasl_plain_username
    if config.sasl_plain_password is not None:
        options["sasl_plain_password"] = config.sasl_plain_password.get_secret_value()
    if config.sasl_kerberos_service_name:
        options["sasl_kerberos_service_name"] = config.sasl_kerberos_service_name
    if config.security_protocol in {"SSL", "SASL_SSL"}:
        context = ssl.create_default_context(
            cafile=str(config.ssl_cafile) if config.ssl_cafile else None
        )
        if config.ssl_certfile:
            context.load_cert_chain(
                str(config.ssl_certfile), str(config.ssl_keyfile) if config.ssl_keyfile else None
            )
        options["ssl_context"] = context
    return options


class KafkaSink:
    """Publishes outbox records to Kafka and reports each record's outcome."""

    def __init__(self, config: KafkaConfig, *, bootstrap_servers: str, topics: Sequence[str]):
        self._config = config
        self._bootstrap = bootstrap_servers
        self._topics = list(topics)
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
        )
        try:
            await producer.start()
        except KafkaConnectionError as exc:
            await _quietly_stop(producer)
            raise SinkError(f"cannot connect to Kafka at {self._bootstrap}: {exc}") from exc
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
        for future in futures:
            if isinstance(future, BaseException):
                outcomes.append(self._explain(future))
                continue
            try:
                await future
                outcomes.append(None)
            except KafkaError as exc:
                outcomes.append(self._explain(exc))
        if any(outcomes):
            # A producer whose sender failed is not reused: start afresh next time.
            await self.stop()
        return outcomes

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
        if producer is not None:
            await _quietly_stop(producer)

    def _explain(self, exc: KafkaError) -> SinkError:
        if (
            self._config.enable_idempotence
            and self._producer is not None
            and not _has_producer_id(self._producer)
        ):
            return BrokerRefusedError(IDEMPOTENCE_REFUSED)
        return SinkError(f"Kafka did not acknowledge: {exc!r}")

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
