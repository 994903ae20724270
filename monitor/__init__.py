"""statement-monitor: official statements from official sources, as CloudEvents on Kafka."""

__version__ = "0.1.0"
