"""The events as the CloudEvents spec, its Python SDK, jsonschema and the Kafka binding read them.

One service run on a loopback site and the real broker publishes every type of
event (published with quotes and watchlist matches, updated, retracted); each
record goes through `tests.spec.check_record` (the `data` schema that
`dataschema` names, the envelope schema, the SDK in structured mode, the
`content-type` header, the key, no `ce_` headers). The checker itself is shown
to fail on what the spec forbids.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from monitor.events import CONTENT_TYPE, DATASCHEMA
from tests.conftest import EventReader, make_config, running
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite
from tests.spec import DATA_SCHEMA_ID, ENVELOPE, SCHEMAS, check_record, data_validator

RSS = "application/rss+xml; charset=utf-8"
WHEN = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)
PREFIX = "org.statement-monitor.statement."
QUOTED = (
    "“We will keep the policy rate unchanged until inflation falls,” said Governor "
    "Maria Jensen at the press conference."
)
FIRST = "The central bank announced its decision on the policy rate after the board met today."
SECOND = "The decision takes effect on Monday and applies to all commercial banks in the country."
EDITED = "The decision takes effect on Tuesday and applies to the commercial banks of two regions."


def _put(site: LoopbackSite, second: str) -> str:
    return site.put("/news/1.html", page("Policy rate decision", [FIRST, QUOTED, second]))


@pytest.mark.integration
async def test_every_event_type_reads_as_the_spec_says(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    url = _put(site, SECOND)
    site.put("/feed.xml", rss([Item("Policy rate decision", url, guid="g-1", published=WHEN)]),
             content_type=RSS)
    source = {"id": "bank", "url": site.url("/feed.xml"), "backfill": True,
              "recheck_interval": 0.5}
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=[source])
    config["watchlists"] = [{"id": "rates", "terms": ["policy rate"], "topic": f"{topic}.rates"}]
    async with running(config):
        await events.read(1)
        _put(site, EDITED)
        await events.read(2)
        site.put("/news/1.html", "gone", status=404)
        received = await events.read(3, settle=1.0)
    assert [e["type"].removeprefix(PREFIX) for e in received] == [
        "published", "updated", "retracted"]
    # EventReader ran check_record on each record; say the essentials once more here.
    for record, event in zip(events.records, received, strict=True):
        assert event["dataschema"] == DATA_SCHEMA_ID
        data_validator(event["dataschema"]).validate(event["data"])
        assert dict(record.headers) == {"content-type": CONTENT_TYPE.encode()}
        assert record.key == event["data"]["statement_id"].encode()
    published = received[0]["data"]
    assert published["quotes"] and published["quotes"][0]["speaker"] == "Maria Jensen"
    assert published["matches"] == [{"watchlist": "rates", "term": "policy rate", "count": 3}]  # title + text
    assert received[1]["data"]["changes"]["fields"] == ["text"]
    assert received[2]["data"]["retracted_at"]


def test_dataschema_names_the_data_schema_shipped_in_the_package() -> None:
    assert DATASCHEMA == DATA_SCHEMA_ID
    shipped = resources.files("monitor") / "schema" / "statement-data-v1.json"
    schema = json.loads(shipped.read_text(encoding="utf-8"))
    assert schema["$id"] == DATASCHEMA
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "specversion" not in schema["properties"]  # `data` alone, not the envelope
    assert ENVELOPE["properties"]["dataschema"] == {
        "const": DATASCHEMA, "description": ENVELOPE["properties"]["dataschema"]["description"]}


def test_the_envelope_and_the_data_schema_agree() -> None:
    """The envelope keeps its own copy of `data`; each field it has, the data schema has alike."""
    data = SCHEMAS[DATA_SCHEMA_ID]
    inner = ENVELOPE["properties"]["data"]
    assert inner["required"] == data["required"]
    for name, definition in inner["properties"].items():
        assert data["properties"].get(name) == definition, name


def _event(**data_changes: Any) -> dict[str, Any]:
    data = {
        "statement_id": "s1", "source_id": "bank", "source_name": "Bank", "feed_url": "http://x/f",
        "url": "http://x/1", "guid": "g", "title": "T", "text": "Text.", "summary": None,
        "language": "en", "published_at": None, "detected_at": "2025-03-14T09:30:00Z",
        "authors": [], "tags": [], "content_hash": "sha256:" + "0" * 64, "version": 1,
        "backfill": False, **data_changes,
    }
    return {
        "specversion": "1.0", "id": "e1", "source": "urn:statement-monitor:source:bank",
        "type": PREFIX + "published", "time": "2025-03-14T09:30:00Z",
        "datacontenttype": "application/json", "subject": "http://x/1",
        "dataschema": DATASCHEMA, "data": data,
    }


def _record(event: dict[str, Any], **headers: bytes) -> tuple[bytes, bytes, list[Any]]:
    pairs = [("content-type", CONTENT_TYPE.encode()), *headers.items()]
    return event["data"]["statement_id"].encode(), json.dumps(event).encode(), pairs


def test_the_checker_accepts_a_good_record_with_figures_and_truncation() -> None:
    event = _event(figures=[{"value": 4.5, "unit": "%", "text": "4.5%"}], text_truncated=True)
    assert check_record(*_record(event)) == event


def test_data_fails_the_envelope_schema_as_the_issue_found() -> None:
    """Before: `dataschema` named the envelope, so every `data` failed it."""
    envelope = jsonschema.Draft202012Validator(ENVELOPE)
    with pytest.raises(jsonschema.ValidationError, match="'specversion' is a required property"):
        envelope.validate(_event()["data"])


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda e, r: (r[0], r[1], [("content-type", b"application/json")]),
                     id="content-type"),
        pytest.param(lambda e, r: (b"other", r[1], r[2]), id="key"),
        pytest.param(lambda e, r: (r[0], r[1], [*r[2], ("ce_type", b"x")]), id="ce-header"),
        pytest.param(lambda e, r: _record({**e, "dataschema": ENVELOPE["$id"]}), id="dataschema"),
        pytest.param(lambda e, r: _record(_event(figures=[{"value": "4.5", "unit": "%",
                                                           "text": "4.5%"}])), id="figures"),
        pytest.param(lambda e, r: _record(_event(text_truncated="yes")), id="text_truncated"),
        pytest.param(lambda e, r: _record({k: v for k, v in e.items() if k != "id"}), id="no-id"),
    ],
)
def test_the_checker_fails_what_the_spec_forbids(spoil: Any) -> None:
    event = _event()
    record = _record(copy.deepcopy(event))
    with pytest.raises((AssertionError, jsonschema.ValidationError)):
        check_record(*spoil(event, record))
