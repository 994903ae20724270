"""A loopback site that needs a browser: pages that JavaScript writes, checks and reloads.

    /news/                  a news list written into the page by a script after load
    /news/<n>.html          a statement whose body a script fetch()es from /api/<n>.json
    /guarded/               an anti-bot check: a script sets a cookie and reloads; the
                            server sends the real page only with that cookie
    /reach?target=URL,URL   a statement whose script also tries to fetch each target
    /busy.html              a page that polls /tick every 100 ms: it never settles
                            (and /news/<n>.html for n in `busy`)
    /popup.html             a page that opens a window and starts a download
    /robots.txt             disallows /private/

Each request is recorded (`JsSite.requests`: path, headers) for the tests to read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web

from tests.sites.loopback import start_app

__all__ = ["BODY", "JsSite", "Seen"]

BODY = (
    "The Ministry of Foreign Affairs announced today that the bilateral talks will resume "
    "next week in Geneva, after a pause of three months.",
    "The minister said the delegations had agreed on an agenda covering trade, energy and "
    "the exchange of prisoners, and that a joint statement would follow the first round.",
    "Officials stressed that the talks remain confidential until their conclusion and that "
    "no further comment would be made before the meeting.",
)

_SHELL = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
</head><body><header><nav><a href="/">Home</a> <a href="/news/">News</a></nav></header>
<main id="main"></main><footer>Ministry of Foreign Affairs</footer>
<script>{script}</script></body></html>"""

_LIST_SCRIPT = """
window.addEventListener('load', function () {
  setTimeout(function () {
    var items = %(news)s.map(function (n) {
      return '<li><a href="/news/' + n + '.html">Statement number ' + n +
             ' on the resumption of talks</a></li>';
    }).join('');
    document.getElementById('main').innerHTML = '<h1>News</h1><ul class="news-list">' +
      items + '</ul>';
  }, 150);
});
"""

_BODY_SCRIPT = """
fetch('/api/%(n)s.json').then(function (r) { return r.json(); }).then(function (data) {
  document.title = data.title + ' - Ministry of Foreign Affairs';
  var html = '<article><h1>' + data.title + '</h1><time datetime="2026-11-04">4 November 2026' +
    '</time>' + data.paragraphs.map(function (p) { return '<p>' + p + '</p>'; }).join('') +
    '</article>';
  document.getElementById('main').innerHTML = html;
});
"""

_COOKIE_SCRIPT = """
if (document.cookie.indexOf('js_check=passed') < 0) {
  document.cookie = 'js_check=passed; path=/';
  setTimeout(function () { location.reload(); }, 50);
}
"""

_REACH_SCRIPT = """
document.body.dataset.seen = 'targets:';
%(targets)s.forEach(function (target) {
  fetch(target).then(function () { document.body.dataset.seen += ' reached'; })
               .catch(function () { document.body.dataset.seen += ' blocked'; });
});
"""

_BUSY_SCRIPT = """
document.getElementById('main').innerHTML = '<article><p>%(text)s</p></article>';
setInterval(function () { fetch('/tick?' + Date.now()); }, 100);
"""

_POPUP_SCRIPT = """
window.open('/news/1.html', '_blank');
var a = document.createElement('a'); a.href = '/file.bin'; a.download = 'file.bin';
document.body.appendChild(a); a.click();
document.getElementById('main').innerHTML = '<article><p>%(text)s</p></article>';
"""


@dataclass
class Seen:
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class JsSite:
    """The site on 127.0.0.1 at an ephemeral port (`url(path)`)."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.news = [1, 2, 3]  # the statements /news/ lists
        self.busy = {9}  # statements whose page never settles (/news/9.html)
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    async def __aenter__(self) -> JsSite:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._serve)
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

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Seen(request.path_qs, dict(request.headers)))
        path = request.path
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nDisallow: /private/\n")
        if path == "/news/":
            return _html("News", _LIST_SCRIPT % {"news": json.dumps(self.news)})
        if path.startswith("/news/") and path.endswith(".html"):
            n = path.removeprefix("/news/").removesuffix(".html")
            if n.isdigit() and int(n) in self.busy:
                return _html("Busy", _BUSY_SCRIPT % {"text": BODY[0]})
            return _html("Ministry", _BODY_SCRIPT % {"n": n})
        if path.startswith("/api/") and path.endswith(".json"):
            n = path.removeprefix("/api/").removesuffix(".json")
            data = {"title": f"Statement number {n} on the resumption of talks",
                    "paragraphs": list(BODY)}
            return web.json_response(data)
        if path == "/guarded/":
            if "js_check=passed" not in request.headers.get("Cookie", ""):
                return _html("Checking your browser", _COOKIE_SCRIPT)
            return web.Response(
                text=_SHELL.format(title="Statement behind a check", script="").replace(
                    '<main id="main"></main>',
                    "<main><article><h1>Statement behind a check</h1>"
                    + "".join(f"<p>{p}</p>" for p in BODY)
                    + "</article></main>",
                ),
                content_type="text/html",
            )
        if path == "/reach":
            targets = request.query.get("target", "").split(",")
            script = _REACH_SCRIPT % {"targets": json.dumps(targets)} + _BODY_SCRIPT % {"n": 7}
            return _html("Reach", script)
        if path == "/busy.html":
            return _html("Busy", _BUSY_SCRIPT % {"text": BODY[0]})
        if path == "/popup.html":
            return _html("Popup", _POPUP_SCRIPT % {"text": BODY[0]})
        if path == "/file.bin":
            return web.Response(
                body=b"\0" * 1024,
                headers={"Content-Disposition": 'attachment; filename="file.bin"'},
                content_type="application/octet-stream",
            )
        if path == "/tick" or path == "/secret":
            return web.Response(text="ok")
        if path.startswith("/private/"):
            return _html("Private", _BODY_SCRIPT % {"n": 9})
        return web.Response(status=404, text="not found")


def _html(title: str, script: str) -> web.Response:
    return web.Response(text=_SHELL.format(title=title, script=script), content_type="text/html")
