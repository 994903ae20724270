"""Sinks: where acknowledged events go. Today, Kafka."""

from monitor.sinks.base import Sink
from monitor.sinks.kafka import KafkaSink

__all__ = ["KafkaSink", "Sink"]
