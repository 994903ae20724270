"""End to end, a Telegram channel: a loopback "t.me" that posts, edits and deletes while the
service runs, and goes down for a while (issue 16 §2).

Every post arrives once, as `statement.published` with the post's URL, text,
language and `data.post`; the edit gives `.updated` with the diff; the
deletion of a post between two listed ones gives `.retracted`; posts that
only scrolled off the page are not retracted; and the posts made during an
outage (more than two pages of them) all arrive once the site is back,
through `?before=` paging.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from monitor.events import EVENT_TYPE_PUBLISHED, EVENT_TYPE_RETRACTED, EVENT_TYPE_UPDATED
from tests.conftest import EventReader, make_config, running, wait_until
from tests.sites.telegram import FakeChannel

pytestmark = pytest.mark.integration

POST = "https://t.me/mod_example/{}"


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


async def test_channel_posts_edits_deletions_and_an_outage(
    tmp_path: Path, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    async with FakeChannel("mod_example", page_size=5) as channel:
        for n in (1, 2, 3):
            channel.post(f"Old post {n}, from before the service started.")
        source = {"id": "tg", "kind": "telegram", "url": channel.url}
        config = make_config(
            tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=[source],
            fetch={"allow_private_networks": True},
        )  # fmt: skip
        async with running(config) as service:
            await wait_until(lambda: service.store.has_seen("tg"))
            statement = channel.post(
                "Заявление Министерства обороны.<br/>Подразделения продолжают выполнение задач "
                "в соответствии с планом, сообщает пресс-служба ведомства."
            )
            forwarded = channel.post(
                "The spokesman will brief the press at noon.", forwarded_from="Press Service"
            )
            photo = channel.post("", media="photo")
            received = await events.read(3, timeout=30)
            channel.edit(
                statement,
                "Заявление Министерства обороны.<br/>Подразделения завершили выполнение задач "
                "в соответствии с планом, сообщает пресс-служба ведомства.",
            )
            received = await events.read(4, timeout=30)
            channel.post("A post after the forwarded one.")
            channel.delete(forwarded)
            received = await events.read(6, timeout=30)

            channel.down = True
            outage_requests = len(channel.requests)
            during = [channel.post(f"Statement {n} made during the outage.") for n in range(12)]
            await wait_until(lambda: len(channel.requests) >= outage_requests + 2, timeout=30)
            channel.down = False
            received = await events.read(6 + 12, timeout=60, settle=3.0)
            await asyncio.sleep(0)

    published = of_type(received, EVENT_TYPE_PUBLISHED)
    urls = Counter(e["data"]["url"] for e in published)
    expected = [statement, forwarded, photo, forwarded + 2, *during]
    assert urls == Counter(POST.format(n) for n in expected), urls  # each post once, no old ones
    by_url = {e["data"]["url"]: e["data"] for e in published}

    first = by_url[POST.format(statement)]
    assert first["title"] == "Заявление Министерства обороны."
    assert first["text"].startswith("Заявление Министерства обороны.\nПодразделения продолжают")
    assert first["language"] == "ru"
    assert first["published_at"] is not None
    assert first["post"] == {"channel": "mod_example", "id": str(statement)}
    assert by_url[POST.format(forwarded)]["post"]["forwarded_from"] == "Press Service"
    media_only = by_url[POST.format(photo)]
    assert media_only["text"] == "" and media_only["post"]["media"] == "photo"

    [updated] = of_type(received, EVENT_TYPE_UPDATED)
    assert updated["data"]["url"] == POST.format(statement)
    assert updated["data"]["version"] == 2 and updated["data"]["post"]["edited"] == "true"
    diff = updated["data"]["changes"]["text_diff"]
    assert "-Подразделения продолжают" in diff and "+Подразделения завершили" in diff

    # Only the deleted post is retracted: the early posts merely scrolled off the page.
    [retracted] = of_type(received, EVENT_TYPE_RETRACTED)
    assert retracted["data"]["url"] == POST.format(forwarded)
    assert retracted["data"]["title"] == "The spokesman will brief the press at noon."

    # The outage was caught up with ?before= pages, not by luck of a page size.
    assert any("?before=" in path for path in channel.requests)
