"""A loopback "t.me": a public channel's web preview, written to mirror the real markup.

`render` writes one page of `https://t.me/s/<channel>` as Telegram serves it
(posts oldest first in `section.tgme_channel_history`, each a
`div.tgme_widget_message[data-post]` with its bubble, forwarded-from line,
media, `tgme_widget_message_text`, and a footer whose meta holds the "edited"
mark and `<time datetime>`; service messages carry `service_message`; the
"load older" link is `a.tme_messages_more[data-before]`).

`FakeChannel` serves a channel that a test posts to, edits and deletes from
while the service polls it: `/s/<channel>` shows the newest `page_size`
posts, `/s/<channel>?before=<id>` those before `id`, as t.me does. `down`
makes it answer 503 (an outage).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from tests.sites.loopback import start_app


@dataclass
class Post:
    id: int
    text_html: str = ""  # the message text block's inner HTML
    date: dt.datetime = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)
    edited: bool = False
    forwarded_from: str | None = None
    media: str | None = None  # "photo", "video", "document"
    service: bool = False  # "Channel photo updated", "pinned a message"
    reply_to: tuple[int, str] | None = None  # (post id, its text)


_MEDIA = {
    "photo": (
        '<a class="tgme_widget_message_photo_wrap {id} blured" href="https://t.me/{channel}/{id}'
        "?single\" style=\"width:800px;background-image:url('https://cdn4.telesco.pe/file/x.jpg')\">"
        '<div class="tgme_widget_message_photo" style="padding-top:56.25%"></div></a>'
    ),
    "video": (
        '<a class="tgme_widget_message_video_player blured js-message_video_player" '
        'href="https://t.me/{channel}/{id}"><i class="tgme_widget_message_video_thumb" '
        "style=\"background-image:url('https://cdn4.telesco.pe/file/v.jpg')\"></i>"
        '<div class="tgme_widget_message_video_wrap"><video class="tgme_widget_message_video '
        'js-message_video" src="https://cdn4.telesco.pe/file/v.mp4" width="100%"></video></div>'
        '<div class="message_video_play"></div></a>'
    ),
    "document": (
        '<div class="tgme_widget_message_document_wrap"><a class="tgme_widget_message_document_icon '
        'accent_bgcolor" href="https://t.me/{channel}/{id}"></a><div class="tgme_widget_message_'
        'document"><div class="tgme_widget_message_document_title accent_color" dir="auto">'
        "report.pdf</div><div class=\"tgme_widget_message_document_extra\" dir=\"auto\">2.1 MB"
        "</div></div></div>"
    ),
}


def _post(channel: str, title: str, post: Post) -> str:
    kind = "service_message" if post.service else "text_not_supported_wrap"
    forwarded = (
        '<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
        f'<a class="tgme_widget_message_forwarded_from_name" href="https://t.me/other/77">'
        f'<span dir="auto">{html.escape(post.forwarded_from)}</span></a></div>'
        if post.forwarded_from
        else ""
    )
    reply = (
        f'<a class="tgme_widget_message_reply" href="https://t.me/{channel}/{post.reply_to[0]}">'
        '<div class="tgme_widget_message_author accent_color"><span class="tgme_widget_message_'
        f'author_name" dir="auto">{html.escape(title)}</span></div><div class="tgme_widget_'
        f'message_metatext js-message_reply_text" dir="auto">{html.escape(post.reply_to[1])}'
        "</div></a>"
        if post.reply_to
        else ""
    )
    media = _MEDIA[post.media].format(channel=channel, id=post.id) if post.media else ""
    text = (
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{post.text_html}</div>'
        if post.text_html
        else ""
    )
    edited = "edited&nbsp;" if post.edited else ""
    stamp = post.date.isoformat()
    return f"""<div class="tgme_widget_message_wrap js-widget_message_wrap">
<div class="tgme_widget_message {kind} js-widget_message" data-post="{channel}/{post.id}"
 data-view="eyJjIjotMTAwMTA4OTg1NTk3MCwicCI6MTIzNDUsInQiOjE3MDk5OTk5OTl9">
 <div class="tgme_widget_message_user"><a href="https://t.me/{channel}"><i class="tgme_widget_message_user_photo bgcolor0" data-content="M"><img src="https://cdn4.telesco.pe/file/avatar.jpg"></i></a></div>
 <div class="tgme_widget_message_bubble">
  <i class="tgme_widget_message_bubble_tail"><svg class="bubble_icon" width="9px" height="20px" viewBox="0 0 9 20"></svg></i>
  <div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" href="https://t.me/{channel}"><span dir="auto">{html.escape(title)}</span></a></div>
  {forwarded}{reply}{media}{text}
  <div class="tgme_widget_message_footer compact js-message_footer">
   <div class="tgme_widget_message_info short js-message_info">
    <span class="tgme_widget_message_views">{1000 + post.id}</span><span class="copyonclick" data-copy="https://t.me/{channel}/{post.id}"></span>
    <span class="tgme_widget_message_meta">{edited}<a class="tgme_widget_message_date" href="https://t.me/{channel}/{post.id}"><time datetime="{stamp}" class="time">{post.date:%H:%M}</time></a></span>
   </div>
  </div>
 </div>
</div>
</div>"""


def render(channel: str, posts: list[Post], *, title: str = "Ministry of Defence") -> str:
    """One page of https://t.me/s/<channel> holding `posts` (oldest first)."""
    older = (
        '<div class="tgme_widget_message_centered js-messages_more_wrap">'
        f'<a href="/s/{channel}?before={posts[0].id}" class="tme_messages_more js-messages_more" '
        f'data-before="{posts[0].id}"></a></div>'
        if posts
        else ""
    )
    body = "\n".join(_post(channel, title, post) for post in posts)
    return f"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{html.escape(title)} – Telegram</title>
<meta property="og:title" content="{html.escape(title)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0, minimum-scale=1.0, maximum-scale=1.0, user-scalable=no">
<link href="//telegram.org/css/widget-frame.css?71" rel="stylesheet"></head>
<body class="widget_frame_base tgme_webpreview_body">
<header class="tgme_header search_collapsed"><div class="tgme_header_search"><form class="tgme_header_search_form" action="/s/{channel}" method="get"><input class="tgme_header_search_form_input js-header_search" placeholder="Search" name="q"></form></div></header>
<main class="tgme_main">
<div class="tgme_container">
<div class="tgme_channel_info"><div class="tgme_channel_info_header"><div class="tgme_channel_info_header_title"><span dir="auto">{html.escape(title)}</span></div><div class="tgme_channel_info_header_username"><a href="https://t.me/{channel}">@{channel}</a></div></div></div>
<section class="tgme_channel_history js-message_history">
{older}
{body}
</section>
</div>
</main>
</body>
</html>"""


class FakeChannel:
    """A channel on a loopback server: posts, edits and deletions while a service polls it."""

    def __init__(self, channel: str = "mod_example", *, page_size: int = 5) -> None:
        self.channel = channel
        self.page_size = page_size
        self.posts: dict[int, Post] = {}
        self.next_id = 1
        self.down = False
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/s/{self.channel}"

    def post(self, text_html: str, **fields: object) -> int:
        post_id = self.next_id
        self.next_id += 1
        date = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.posts[post_id] = Post(post_id, text_html, date=date, **fields)  # type: ignore[arg-type]
        return post_id

    def edit(self, post_id: int, text_html: str) -> None:
        self.posts[post_id].text_html = text_html
        self.posts[post_id].edited = True

    def delete(self, post_id: int) -> None:
        del self.posts[post_id]

    def page(self, before: int | None) -> list[Post]:
        ids = sorted(i for i in self.posts if before is None or i < before)
        return [self.posts[i] for i in ids[-self.page_size :]]

    async def __aenter__(self) -> FakeChannel:
        app = web.Application()
        app.router.add_get("/s/{channel}", self._serve)
        self._runner, self.port = await start_app(app)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        if request.match_info["channel"] != self.channel:
            return web.Response(status=302, headers={"Location": "https://telegram.org/"})
        before = request.query.get("before")
        posts = self.page(int(before) if before and before.isdigit() else None)
        return web.Response(
            text=render(self.channel, posts), content_type="text/html", charset="utf-8"
        )
