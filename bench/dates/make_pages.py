"""Writes the hand-made half of the dates-and-titles dev set: `pages/*.html` and
`expected.json` (`{page: {"published": "YYYY-MM-DD" | null, "title": str}}`).

Each page mirrors the markup of a kind of official site, with the traps such
pages hold: a dateline in the first paragraph, a press-release date line, a
sidebar or "latest news" list with newer dates, a "last updated" line, a
copyright year, a site name before or after the headline in `<title>`, a
section heading ("Press releases") in an `<h1>`. The statements are invented.

    python bench/dates/make_pages.py   # rewrites pages/ and expected.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Page:
    name: str
    lang: str
    site: str
    headline: str
    published: str | None  # the day the expected answer names
    date_text: str  # how the page writes its date
    paragraphs: tuple[str, ...]
    newer: tuple[str, ...] = ()  # newer dates shown elsewhere on the page (sidebar, updates)


def _doc(lang: str, title: str, head: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n{head}</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _nav(site: str) -> str:
    return (
        f'<header class="site-header"><a class="logo" href="/">{site}</a>\n'
        '<nav><ul><li><a href="/news">News</a></li><li><a href="/press">Press</a></li>'
        '<li><a href="/about">About</a></li><li><a href="/contact">Contact</a></li></ul></nav>'
        "</header>\n"
    )


def _sidebar(page: Page) -> str:
    items = "".join(
        f'<li><span class="date">{d}</span> <a href="/news/{i}">Other news item number {i}</a></li>'
        for i, d in enumerate(page.newer)
    )
    return f'<aside class="sidebar"><h2>Latest news</h2><ul>{items}</ul></aside>\n' if items else ""


def _footer(site: str) -> str:
    return (
        f'<footer><p>© 2026 {site}. All rights reserved.</p>'
        '<p><a href="/privacy">Privacy</a> · <a href="/imprint">Imprint</a></p></footer>'
    )


def _paras(page: Page) -> str:
    return "\n".join(f"<p>{p}</p>" for p in page.paragraphs)


def dateline(page: Page) -> str:
    """Date only in the dateline of the first paragraph ("MOSCOW, October 19, 2015 –")."""
    first, *rest = page.paragraphs
    body = (
        f"{_nav(page.site)}<main><h1>{page.headline}</h1>\n<p>{page.date_text} – {first}</p>\n"
        + "\n".join(f"<p>{p}</p>" for p in rest)
        + f"</main>\n{_sidebar(page)}{_footer(page.site)}"
    )
    return _doc(page.lang, f"{page.headline} | {page.site}", "", body)


def date_line(page: Page) -> str:
    """A press-release date line above the headline, a section h1 above it all."""
    body = (
        f'{_nav(page.site)}<main><h1 class="section">Press releases</h1>\n<article>'
        f'<p class="release-date">{page.date_text}</p>\n<h2>{page.headline}</h2>\n'
        f"{_paras(page)}</article></main>\n{_sidebar(page)}{_footer(page.site)}"
    )
    return _doc(page.lang, f"{page.site} - {page.headline}", "", body)


def colon_title(page: Page) -> str:
    """`<title>Site: Headline</title>`, the date in a meta line under the h1."""
    body = (
        f'{_nav(page.site)}<div id="content"><h1>{page.headline}</h1>\n'
        f'<div class="meta">{page.date_text}</div>\n{_paras(page)}</div>\n'
        f"{_sidebar(page)}{_footer(page.site)}"
    )
    return _doc(page.lang, f"{page.site}: {page.headline}", "", body)


def time_header(page: Page) -> str:
    """`<time datetime>` in the article header; newer `<time>`s in a sidebar."""
    newer = "".join(
        f'<li><time datetime="{d}">{d}</time> <a href="/n/{i}">Related update {i}</a></li>'
        for i, d in enumerate(page.newer)
    )
    body = (
        f'{_nav(page.site)}<article><header><h1>{page.headline}</h1>'
        f'<time datetime="{page.published}">{page.date_text}</time></header>\n{_paras(page)}'
        f'</article>\n<aside><h2>Related</h2><ul>{newer}</ul></aside>\n{_footer(page.site)}'
    )
    return _doc(page.lang, f"{page.headline} – {page.site}", "", body)


def json_ld(page: Page) -> str:
    """JSON-LD `datePublished`, a newer `dateModified`, og:title with the site name."""
    modified = page.newer[0] if page.newer else page.published
    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": page.headline,
            "datePublished": f"{page.published}T09:30:00+01:00",
            "dateModified": f"{modified}T16:00:00+01:00",
            "publisher": {"@type": "Organization", "name": page.site},
        },
        ensure_ascii=False,
    )
    head = (
        f'<meta property="og:title" content="{page.headline} | {page.site}">\n'
        f'<script type="application/ld+json">{ld}</script>\n'
    )
    body = (
        f'{_nav(page.site)}<main><h1>{page.headline}</h1>\n<p class="updated">Last updated: '
        f"{modified}</p>\n{_paras(page)}</main>\n{_footer(page.site)}"
    )
    return _doc(page.lang, f"{page.headline} | {page.site}", head, body)


def govuk(page: Page) -> str:
    """GOV.UK-like: "Published 12 March 2024", "Last updated" later, site first in title."""
    updated = page.newer[0] if page.newer else ""
    body = (
        f'{_nav(page.site)}<main><span class="govuk-caption">Press release</span>'
        f"<h1>{page.headline}</h1>\n<dl><dt>From:</dt><dd>{page.site}</dd>"
        f"<dt>Published</dt><dd>{page.date_text}</dd>"
        + (f"<dt>Last updated</dt><dd>{updated}</dd>" if updated else "")
        + f"</dl>\n{_paras(page)}</main>\n{_footer(page.site)}"
    )
    return _doc(page.lang, f"{page.site} - {page.headline}", "", body)


def no_date(page: Page) -> str:
    """No date of its own anywhere: only the copyright year and nothing else."""
    body = (
        f"{_nav(page.site)}<main><h1>{page.headline}</h1>\n{_paras(page)}</main>\n"
        f"{_footer(page.site)}"
    )
    return _doc(page.lang, f"{page.headline} - {page.site}", "", body)


LAYOUTS: dict[str, Callable[[Page], str]] = {
    "dateline": dateline,
    "date_line": date_line,
    "colon_title": colon_title,
    "time_header": time_header,
    "json_ld": json_ld,
    "govuk": govuk,
    "no_date": no_date,
}

P_EN = (
    "The Ministry said the delegation would meet its counterparts to discuss the security "
    "situation in the region and the next steps of the joint working group.",
    "“We are committed to a lasting solution that respects international law,” the minister "
    "said after the talks, adding that further consultations were planned.",
    "The sides agreed to continue contacts at the expert level and to report on the progress "
    "made at the next ministerial meeting.",
)
P_DE = (
    "Das Ministerium hat heute die Ergebnisse der Beratungen mit den Ländern vorgestellt und "
    "die nächsten Schritte für die Umsetzung des Programms erläutert.",
    "„Wir setzen auf eine verlässliche Zusammenarbeit mit unseren Partnern“, erklärte die "
    "Ministerin im Anschluss an das Treffen in Berlin.",
    "Die Mittel sollen noch in diesem Jahr bereitgestellt werden; Einzelheiten regelt eine "
    "Verwaltungsvereinbarung zwischen Bund und Ländern.",
)
P_FR = (
    "Le ministère a présenté aujourd'hui les conclusions de la réunion consacrée à la "
    "coopération régionale et aux prochaines étapes du programme commun.",
    "« Nous restons pleinement mobilisés aux côtés de nos partenaires », a déclaré la "
    "ministre à l'issue des échanges.",
    "Un point d'étape sera présenté lors du prochain conseil des ministres, selon le "
    "communiqué publié par le ministère.",
)
P_RU = (
    "Министерство сообщило о результатах переговоров с делегацией и о дальнейших шагах "
    "совместной рабочей группы по вопросам региональной безопасности.",
    "«Мы намерены продолжать диалог на всех уровнях», — заявил министр по итогам встречи, "
    "добавив, что следующие консультации уже запланированы.",
    "Стороны договорились продолжить контакты на уровне экспертов и доложить о результатах "
    "на следующем заседании.",
)

# name, layout, lang, site, headline, published, how the page writes it, newer dates
CASES: list[tuple[str, str, str, str, str, str | None, str, tuple[str, ...]]] = [
    # datelines: the date is only in the first sentence; the sidebar is newer
    ("dateline-moscow", "dateline", "en", "Ministry of Defence of the Russian Federation",
     "Chief of the General Staff briefs foreign military attaches", "2015-10-19",
     "MOSCOW, October 19, 2015", ("October 23, 2015", "October 22, 2015")),
    ("dateline-washington", "dateline", "en", "U.S. Department of State",
     "Secretary meets Foreign Minister of Japan", "2016-03-04",
     "WASHINGTON, March 4, 2016", ("March 9, 2016",)),
    ("dateline-geneva", "dateline", "en", "United Nations Office at Geneva",
     "Special Envoy convenes the constitutional committee", "2019-10-30",
     "GENEVA (30 October 2019)", ("4 November 2019", "2 November 2019")),
    ("dateline-brussels", "dateline", "en", "Council of the EU",
     "Council adopts conclusions on the Sahel", "2021-04-16",
     "Brussels, 16 April 2021", ("20 April 2021",)),
    ("dateline-berlin-de", "dateline", "de", "Bundesregierung",
     "Kanzler empfängt den Präsidenten Frankreichs", "2023-06-09",
     "BERLIN, 9. Juni 2023", ("12. Juni 2023", "14. Juni 2023")),
    ("dateline-paris-fr", "dateline", "fr", "Élysée",
     "Le Président reçoit le Premier ministre indien", "2023-07-14",
     "PARIS, le 14 juillet 2023", ("18 juillet 2023",)),
    ("dateline-moscow-ru", "dateline", "ru", "МИД России",
     "О встрече министра с послом Китая", "2015-10-19",
     "МОСКВА, 19 октября 2015 г.", ("22 октября 2015 г.", "21 октября 2015 г.")),
    ("dateline-kyiv", "dateline", "en", "Ministry of Foreign Affairs of Ukraine",
     "Foreign Minister holds talks with OSCE Chairperson", "2022-02-03",
     "KYIV, 3 February 2022", ("7 February 2022",)),
    # press-release date lines
    ("pm-vom-bmi", "date_line", "de", "Bundesministerium des Innern",
     "Neue Regeln für den Katastrophenschutz", "2024-03-12",
     "Pressemitteilung vom 12.03.2024", ("15.03.2024", "14.03.2024")),
    ("pm-vom-bmf", "date_line", "de", "Bundesministerium der Finanzen",
     "Haushaltsentwurf 2025 vom Kabinett beschlossen", "2024-07-17",
     "Pressemitteilung vom 17.07.2024", ("19.07.2024",)),
    ("pm-datum-lang", "date_line", "de", "Bundesministerium für Gesundheit",
     "Gesetz zur Stärkung der Pflege verabschiedet", "2023-11-02",
     "Pressemitteilung Nr. 45 vom 2. November 2023", ("6. November 2023",)),
    ("publie-le-diplo", "date_line", "fr", "Ministère de l'Europe et des Affaires étrangères",
     "Déclaration conjointe sur la situation au Soudan", "2024-03-03",
     "Publié le 3 mars 2024", ("7 mars 2024", "5 mars 2024")),
    ("publie-le-armees", "date_line", "fr", "Ministère des Armées",
     "Opération de soutien aux populations sinistrées", "2023-09-21",
     "Publié le 21 septembre 2023", ("25 septembre 2023",)),
    ("communique-du", "date_line", "fr", "Banque de France",
     "Communiqué relatif aux conditions de crédit", "2022-12-08",
     "Communiqué du 8 décembre 2022", ("13 décembre 2022",)),
    ("immediate-release-state", "date_line", "en", "U.S. Department of State",
     "Secretary Kerry to travel to Lausanne", "2015-04-10",
     "For Immediate Release: April 10, 2015", ("April 14, 2015", "April 12, 2015")),
    ("immediate-release-dod", "date_line", "en", "U.S. Department of Defense",
     "Statement on the Defense Budget Request", "2019-03-12",
     "FOR IMMEDIATE RELEASE | March 12, 2019", ("March 15, 2019",)),
    ("immediate-release-treasury", "date_line", "en", "U.S. Department of the Treasury",
     "Treasury Sanctions Network Financing Terrorism", "2020-09-03",
     "For Immediate Release — September 3, 2020", ("September 8, 2020",)),
    ("ru-press-mil", "date_line", "ru", "Министерство обороны Российской Федерации",
     "Брифинг начальника Главного оперативного управления Генштаба", "2015-10-19",
     "19 октября 2015 г. (14:05)", ("23 октября 2015 г. (10:00)",)),
    ("ru-press-kremlin", "date_line", "ru", "Президент России",
     "Встреча с Председателем Правительства", "2021-02-25",
     "25 февраля 2021 года", ("1 марта 2021 года", "27 февраля 2021 года")),
    ("un-press", "date_line", "en", "United Nations",
     "Secretary-General's remarks to the Security Council on Syria", "2024-03-12",
     "SG/SM/22150 12 March 2024", ("14 March 2024",)),
    # site name before the headline, date in a meta line
    ("auswaertiges-amt", "colon_title", "de", "Auswärtiges Amt",
     "Außenministerin reist nach Kiew", "2024-05-21",
     "21.05.2024 - Artikel", ("23.05.2024", "22.05.2024")),
    ("auswaertiges-amt-2", "colon_title", "de", "Auswärtiges Amt",
     "Erklärung zur Lage im Nahen Osten", "2023-10-09",
     "09.10.2023 - Pressemitteilung", ("11.10.2023",)),
    ("bundesbank", "colon_title", "de", "Deutsche Bundesbank",
     "Monatsbericht: Wirtschaft wächst leicht", "2024-02-19",
     "Veröffentlicht am 19. Februar 2024", ("21. Februar 2024",)),
    ("kremlin-en", "colon_title", "en", "President of Russia",
     "Meeting with Government members", "2020-05-13",
     "May 13, 2020, 16:20", ("May 15, 2020, 12:00",)),
    ("mid-ru", "colon_title", "ru", "Министерство иностранных дел Российской Федерации",
     "Комментарий официального представителя МИД России", "2022-08-11",
     "11.08.2022 14:30", ("12.08.2022 10:15", "15.08.2022 09:00")),
    ("quai-orsay", "colon_title", "fr", "France Diplomatie",
     "Entretien du ministre avec son homologue brésilien", "2024-01-18",
     "Paris, le 18 janvier 2024", ("22 janvier 2024",)),
    # <time> in the article header
    ("time-ecb", "time_header", "en", "European Central Bank",
     "Monetary policy decisions", "2025-06-12", "12 June 2025", ("2025-06-20", "2025-06-18")),
    ("time-nato", "time_header", "en", "NATO",
     "Statement by the North Atlantic Council", "2022-02-24", "24 Feb. 2022",
     ("2022-03-01",)),
    ("time-bmwk", "time_header", "de", "Bundesministerium für Wirtschaft",
     "Förderprogramm für Wasserstoff gestartet", "2023-04-04", "04.04.2023",
     ("2023-04-11",)),
    ("time-gouv-fr", "time_header", "fr", "Gouvernement",
     "Plan national pour l'eau", "2023-03-30", "30 mars 2023", ("2023-04-06",)),
    ("time-minfin-ru", "time_header", "ru", "Минфин России",
     "О размещении облигаций федерального займа", "2024-04-17", "17 апреля 2024",
     ("2024-04-24",)),
    # JSON-LD with a newer dateModified and "Last updated" line
    ("jsonld-whitehouse", "json_ld", "en", "The White House",
     "Statement from the Press Secretary on the Summit", "2023-05-20", "",
     ("2023-05-22",)),
    ("jsonld-un-news", "json_ld", "en", "UN News",
     "Security Council extends mission mandate", "2024-06-27", "", ("2024-07-02",)),
    ("jsonld-bundesregierung", "json_ld", "de", "Die Bundesregierung",
     "Kabinett beschließt Klimaschutzprogramm", "2023-10-04", "", ("2023-10-06",)),
    ("jsonld-elysee", "json_ld", "fr", "Élysée",
     "Conseil des ministres du mercredi", "2024-02-07", "", ("2024-02-08",)),
    # GOV.UK-like: site first in the title, "Published", "Last updated"
    ("govuk-fcdo", "govuk", "en", "GOV.UK",
     "UK statement on the humanitarian situation", "2024-03-12", "12 March 2024",
     ("14 March 2024",)),
    ("govuk-mod", "govuk", "en", "GOV.UK",
     "Defence Secretary announces new support package", "2023-01-16", "16 January 2023",
     ("20 January 2023",)),
    ("govuk-hmt", "govuk", "en", "GOV.UK",
     "Chancellor sets out plan for growth", "2022-11-17", "17 November 2022", ()),
    ("govuk-dfe", "govuk", "en", "GOV.UK",
     "New funding for school buildings", "2021-07-08", "8 July 2021", ("9 July 2021",)),
    # no date of its own: null, never an error
    ("nodate-en", "no_date", "en", "Ministry of Foreign Affairs",
     "Statement on the anniversary of the agreement", None, "", ()),
    ("nodate-de", "no_date", "de", "Bundesministerium der Verteidigung",
     "Erklärung zur Lage der Bundeswehr", None, "", ()),
    ("nodate-fr", "no_date", "fr", "Ministère de l'Intérieur",
     "Déclaration du ministre sur les inondations", None, "", ()),
    ("nodate-ru", "no_date", "ru", "Правительство России",
     "Заявление Правительства", None, "", ()),
]

PARAGRAPHS = {"en": P_EN, "de": P_DE, "fr": P_FR, "ru": P_RU}


def main() -> None:
    folder = HERE / "pages"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.html"):
        old.unlink()
    expected = {}
    for name, layout, lang, site, headline, published, date_text, newer in CASES:
        page = Page(name, lang, site, headline, published, date_text, PARAGRAPHS[lang], newer)
        (folder / f"{name}.html").write_text(LAYOUTS[layout](page), encoding="utf-8")
        expected[f"{name}.html"] = {"published": published, "title": headline, "layout": layout}
    (HERE / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"{len(expected)} pages written to {folder}")


if __name__ == "__main__":
    main()
