"""Every place in `monitor/` that can open an outbound connection, and whether it is guarded.

Issue 13: WebSub hub requests once had their own aiohttp session, which
followed redirects past the address guard. Since then every HTTP request goes
through one guarded path, `monitor/fetch/client.py` (the Fetcher: the address
guard on every hop, the POST rules of `post_form`). This test reads the source
of every module under `monitor/` with `ast` and lists what could open a
connection:

* an HTTP client library, imported or imported by name at run time
  (aiohttp's client side, urllib.request, http.client, httpx, requests,
  urllib3, pycurl, Playwright, Selenium, websockets...), or a subprocess
  running curl, wget or a browser;
* a raw outbound connection (`socket.socket()`, `open_connection`,
  `create_connection`, `sock_connect`), which could speak HTTP by hand.

A module that does either must be registered below, with the reason it is
safe. A new module that opens HTTP requests (the browser fetcher of issue 17,
`monitor/fetch/browser.py`, for one) fails this test until it is added to
`GUARDED_HTTP`, and a module registered there must use the address guard
or the Fetcher (import from `monitor.fetch.guard` or `monitor.fetch.client`). Registering a module is a review
decision: do it only when every request it opens, redirects and subrequests
included, is judged by the guard.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parent.parent
PACKAGE: Final = ROOT / "monitor"

# The modules that open HTTP requests, each through the address guard on every hop.
GUARDED_HTTP: Final[dict[str, str]] = {
    "monitor/fetch/client.py": "the Fetcher: GET and post_form, the guard on every hop",
    "monitor/fetch/browser.py": "Chromium: every request the page makes (subrequests, redirects, "
    "navigations) is intercepted by page.route and judged by AddressGuard.check_url and the "
    "GuardedResolver before it is let through (tests/test_browser.py)",
}

# Modules of the command line that request only a URL the operator gives, never
# one from the web, and that the service itself never imports (checked below).
OPERATOR_HTTP: Final[dict[str, str]] = {
    "monitor/cli_status.py": "`monitor status` reads a running service's own /status, at the "
    "metrics address of the config or the --url the operator types",
}

# Modules with raw connections that never carry a URL from the web. A stale entry
# is harmless (and not checked): only a missing one fails.
RAW_SOCKETS: Final[dict[str, str]] = {
    "monitor/pool.py": "the loop's end of a socketpair to each worker process",
    "monitor/sinks/kafka.py": "a TCP probe of the configured Kafka bootstrap servers",
    "monitor/sinks/embedded.py": "waits for the embedded broker's port on loopback",
}

# Modules (or packages) whose import means HTTP requests can be opened.
_HTTP_MODULES: Final = frozenset(
    {
        "aiohttp",
        "urllib.request",
        "http.client",
        "httpx",
        "requests",
        "urllib3",
        "pycurl",
        "playwright",
        "pyppeteer",
        "selenium",
        "websockets",
        "websocket",
        "tornado.httpclient",
        "treq",
        "twisted.web.client",
        "xmlrpc.client",
        "ftplib",
        "aiohttp_retry",
        "trafilatura.downloads",
    }
)
# Parts of those packages that open nothing: the server side, abstract types.
_HARMLESS: Final = frozenset(
    {"aiohttp.web", "aiohttp.abc", "aiohttp.hdrs", "aiohttp.web_exceptions", "aiohttp.typedefs"}
)
# Functions that download on their own, whatever module they come from.
_HTTP_CALLS: Final = frozenset(
    {"urlopen", "urlretrieve", "fetch_url", "fetch_response", "async_playwright", "sync_playwright"}
)
_SOCKET_CALLS: Final = frozenset(
    {"open_connection", "create_connection", "open_unix_connection", "sock_connect"}
)
_PROGRAMS: Final = ("curl", "wget", "chromium", "chrome", "firefox", "aria2c", "httpie")


def _is_http_module(name: str) -> bool:
    if name in _HARMLESS or any(name.startswith(h + ".") for h in _HARMLESS):
        return False
    return any(name == m or name.startswith(m + ".") for m in _HTTP_MODULES)


def _called_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_socket_constructor(node: ast.Call) -> bool:
    """`socket.socket(...)` (a socketpair or a type annotation opens nothing outbound)."""
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "socket"
        and isinstance(func.value, ast.Name)
        and func.value.id == "socket"
    )


def _strings(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def scan(source: str, filename: str = "<source>") -> tuple[list[str], list[str]]:
    """(HTTP openings, raw sockets) found in one module's source, as `line: what`."""
    tree = ast.parse(source, filename)
    http: list[str] = []
    sockets: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_http_module(alias.name):
                    http.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from aiohttp import web` is harmless, `import X` not
                if _is_http_module(f"{node.module}.{alias.name}"):
                    http.append(f"{node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr == "_session":
            http.append(f"{node.lineno}: ._session (an HTTP session)")
        elif isinstance(node, ast.Call):
            name = _called_name(node)
            if name in _HTTP_CALLS:
                http.append(f"{node.lineno}: {name}()")
            elif name in _SOCKET_CALLS or _is_socket_constructor(node):
                sockets.append(f"{node.lineno}: {name}()")
            elif name in {"import_module", "__import__"}:
                found = [s for s in _strings(node) if _is_http_module(s)]
                if found:
                    http.append(f"{node.lineno}: {name}({found[0]!r})")
            elif name in {"run", "Popen", "call", "check_call", "check_output",
                          "create_subprocess_exec", "create_subprocess_shell", "system"}:  # fmt: skip
                words = [w for s in _strings(node) for w in s.replace("/", " ").split()]
                if any(w in _PROGRAMS for w in words):
                    http.append(f"{node.lineno}: {name}() runs a downloader or browser")
    def line(entry: str) -> int:
        return int(entry.partition(":")[0])

    return sorted(http, key=line), sorted(sockets, key=line)


def _modules() -> dict[str, tuple[list[str], list[str]]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        found[relative] = scan(path.read_text(encoding="utf-8"), relative)
    return found


def test_every_module_that_opens_http_requests_is_registered_as_guarded() -> None:
    modules = _modules()
    unregistered = {
        name: http
        for name, (http, _) in modules.items()
        if http and name not in GUARDED_HTTP and name not in OPERATOR_HTTP
    }
    assert not unregistered, (
        "these modules open HTTP requests outside the guarded path (monitor/fetch/client.py); "
        "send the requests through the Fetcher, or, if the module applies the address guard "
        f"to every request and hop itself, register it in GUARDED_HTTP: {unregistered}"
    )
    stale = [name for name in GUARDED_HTTP if not modules.get(name, ([], []))[0]]
    assert not stale, f"registered in GUARDED_HTTP but opening no HTTP request: {stale}"


def test_every_guarded_module_uses_the_address_guard() -> None:
    for name in GUARDED_HTTP:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        }
        uses = imported & {"monitor.fetch.guard", "monitor.fetch.client", "monitor.fetch"}
        assert uses, f"{name} is registered as guarded but uses neither the guard nor the Fetcher"


def test_raw_sockets_are_registered() -> None:
    modules = _modules()
    unregistered = {
        name: sockets
        for name, (_, sockets) in modules.items()
        if sockets and name not in RAW_SOCKETS and name not in GUARDED_HTTP
    }
    assert not unregistered, (
        "raw sockets could speak HTTP past the guard; register each with its reason in "
        f"RAW_SOCKETS, or use the Fetcher: {unregistered}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "import aiohttp",
        "from aiohttp import ClientSession",
        "from aiohttp.client import ClientSession",
        "import urllib.request",
        "from urllib.request import urlopen",
        "from urllib import request",
        "from http.client import HTTPSConnection",
        "from http import client",
        "import httpx",
        "import requests",
        "from playwright.async_api import async_playwright",
        "import importlib\nimportlib.import_module('httpx')",
        "__import__('urllib.request')",
        "import subprocess\nsubprocess.run(['curl', '-s', url])",
        "import asyncio\nasyncio.create_subprocess_exec('/usr/bin/chromium', '--headless')",
        "from trafilatura import fetch_url\nfetch_url(u)",
        "from trafilatura.downloads import fetch_url",
        "fetcher._session.post(hub, data=form)",
    ],
)
def test_the_scanner_sees_http_clients(source: str) -> None:
    http, _ = scan(source)
    assert http, source


@pytest.mark.parametrize(
    "source",
    [
        "import socket\nsocket.create_connection(('h', 80))",
        "import socket\ns = socket.socket()\ns.connect(('h', 80))",
        "import asyncio\nasyncio.open_connection('h', 80)",
        "loop.sock_connect(s, ('h', 80))",
    ],
)
def test_the_scanner_sees_raw_sockets(source: str) -> None:
    _, sockets = scan(source)
    assert sockets, source


@pytest.mark.parametrize(
    "source",
    [
        "from aiohttp import web",
        "from aiohttp.web import Application",
        "from aiohttp.abc import AbstractResolver",
        "from urllib.parse import urlsplit",
        "import http\nfrom http import HTTPStatus",
        "d = {}\nd.get('x')\nsession.get  # an attribute, not a call",
        "subprocess.run(['git', 'status'])",
        "import socket\na, b = socket.socketpair()\nfamily: socket.AddressFamily",
    ],
)
def test_the_scanner_leaves_harmless_code_alone(source: str) -> None:
    assert scan(source) == ([], []), source


def test_operator_only_http_stays_out_of_the_service() -> None:
    """A module of OPERATOR_HTTP is imported by the command line (monitor/cli.py) alone:
    were the service to use it, web content could steer its requests past the guard."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative == "monitor/cli.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        } | {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
            for alias in node.names
        }
        for name in OPERATOR_HTTP:
            dotted = name.removesuffix(".py").replace("/", ".")
            assert dotted not in imported, f"{relative} imports {dotted}, an operator-only module"
