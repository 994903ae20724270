"""What a spec-following consumer checks on every record the service publishes.

- The CloudEvents Kafka protocol binding, structured content mode: the
  `content-type` header is the event format's media type
  (`application/cloudevents+json`), no header carries a `ce_` attribute (that
  would make it binary mode to a receiver), and the key is the statement id.
- The CloudEvents Python SDK (`cloudevents` on PyPI) reads the record.
- `data` alone validates against the JSON Schema that the event's `dataschema`
  names (resolved by `$id` among the schemas the package ships), and the whole
  document against the envelope schema `statement-v1.json`.

`tests/conftest.py`'s EventReader runs `check_record` on every record a test
reads, so every event of the suite goes through it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
from cloudevents.core.bindings import kafka as ce_kafka

__all__ = ["DATA_SCHEMA_ID", "ENVELOPE", "SCHEMAS", "check_record", "data_validator"]

CONTENT_TYPE = "application/cloudevents+json"
DATA_SCHEMA_ID = "https://statement-monitor.github.io/schema/statement-data-v1.json"


def _shipped_schemas() -> dict[str, dict[str, Any]]:
    """Every schema in the installed package, by its `$id`."""
    folder = resources.files("monitor") / "schema"
    schemas = [
        json.loads(entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    ]
    return {schema["$id"]: schema for schema in schemas}


SCHEMAS = _shipped_schemas()
ENVELOPE = SCHEMAS["https://statement-monitor.github.io/schema/statement-v1.json"]
_FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def data_validator(dataschema: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema a `dataschema` URI names (KeyError if none ships)."""
    return jsonschema.Draft202012Validator(SCHEMAS[dataschema], format_checker=_FORMATS)


def _header_dict(headers: Any) -> dict[str, bytes]:
    pairs = list(headers or ())
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"repeated headers: {names}"
    return {name: value for name, value in pairs}


def check_record(key: bytes | None, value: bytes, headers: Any) -> dict[str, Any]:
    """Check one Kafka record as a spec-following consumer would; return the JSON document."""
    by_name = _header_dict(headers)
    assert by_name.get("content-type") == CONTENT_TYPE.encode(), by_name
    ce_headers = [name for name in by_name if name.lower().startswith("ce_")]
    assert not ce_headers, f"structured mode carries no ce_ headers: {ce_headers}"

    document = json.loads(value)
    jsonschema.Draft202012Validator(ENVELOPE, format_checker=_FORMATS).validate(document)
    data_validator(document["dataschema"]).validate(document["data"])
    assert key == document["data"]["statement_id"].encode("utf-8")

    message = ce_kafka.KafkaMessage(headers=by_name, key=key, value=value)
    event = ce_kafka.from_kafka_event(message)  # auto-detects the mode: must find structured
    attributes = event.get_attributes()
    assert attributes["specversion"] == "1.0"
    for name in ("id", "source", "type", "subject", "dataschema", "datacontenttype"):
        assert attributes.get(name) == document.get(name), name
    assert attributes["partitionkey"] == document["data"]["statement_id"]
    assert event.get_data() == document["data"]
    return dict(document)
