"""What a page's markup says about its site name and headline, for `titles.clean_title`.

Official pages often name neither the site (no og:site_name) nor the headline
in an <h1> (the <h1> is a section, "Press releases", and the headline an
<h2>). Two more sources of evidence, both cheap and bounded:

* `home_link_names(tree)`: the text (or image alt) of the site's logo or home
  link ("Bundesministerium des Innern" in `<a class="logo" href="/">`): the
  name the site goes by, so `<title>Bundesministerium des Innern - Neue
  Regeln</title>` loses it;
* `subheadings(tree)`: the first <h2>s, as headline hints: `clean_title` only
  keeps a side of the title that equals a hint exactly, so a wrong hint costs
  nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from monitor.extract.text import normalize_whitespace

__all__ = ["home_link_names", "subheadings"]

_MAX_NAMES = 3
_MAX_NAME_CHARS = 80
_MAX_SUBHEADINGS = 4
_MAX_LINKS_SCANNED = 60  # the logo and home link sit at the top of the page


def _is_home(href: str | None) -> bool:
    if href is None:
        return False
    parts = urlsplit(href.strip())
    return parts.path in ("", "/", "/index.html", "/index.php") and not parts.query and (
        bool(parts.netloc) or parts.path == "/"
    )


def _marked_logo(element: Any) -> bool:
    names = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
    return "logo" in names or "brand" in names


def home_link_names(tree: Any) -> tuple[str, ...]:
    """Names of the site from its logo or home link, at most `_MAX_NAMES`."""
    found: list[str] = []
    for count, link in enumerate(tree.iter("a")):
        if count >= _MAX_LINKS_SCANNED or len(found) >= _MAX_NAMES:
            break
        if not (_is_home(link.get("href")) or _marked_logo(link)):
            continue
        text = normalize_whitespace(link.text_content())
        if not text:
            image = next(link.iter("img"), None)
            text = normalize_whitespace(image.get("alt") or "") if image is not None else ""
        if 2 < len(text) <= _MAX_NAME_CHARS and text.lower() not in ("home", "startseite",
                                                                      "accueil", "главная"):
            found.append(text)
    return tuple(dict.fromkeys(found))


def subheadings(tree: Any) -> tuple[str, ...]:
    """The texts of the first <h2>s (headline hints for pages whose <h1> is a section)."""
    found: list[str] = []
    for h2 in tree.iter("h2"):
        text = normalize_whitespace(h2.text_content())
        if text:
            found.append(text)
        if len(found) == _MAX_SUBHEADINGS:
            break
    return tuple(found)
