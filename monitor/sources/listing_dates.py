"""Dates as listing pages print them next to a link: `04/10/15`, `April 10, 2015`, `10.04.2015`.

`find_date(text, day_first=...)` returns the first calendar date printed in
a short piece of text (a list item, a table row), as midnight UTC, or None.
Forms read:

    2015-04-10, 2015/04/10                 ISO order, always year first
    10 April 2015, April 10, 2015          month names in English, French,
    10. April 2015, 10 апреля 2015 г.      German, Spanish and Russian (any
    10 de abril de 2015, Apr. 10, 2015     case, abbreviations, genitive forms)
    10.04.2015, 10.04.15                   dots: always day first
    04/10/15, 04/10/2015, 10-04-2015       slashes and dashes: month first when
                                           `day_first` is False (US sites), day
                                           first otherwise; a first number above
                                           12 is a day whatever the setting

A two-digit year is 20yy when that is not in the future, else 19yy. Pure,
never raises (an impossible date such as 31.02.2015 is simply not a date).
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["find_date", "month_number"]

_MONTHS: dict[str, int] = {}


def _add(month: int, *names: str) -> None:
    for name in names:
        _MONTHS[name] = month


# English, French, German, Spanish, Russian (nominative and genitive), with abbreviations.
_add(1, "january", "jan", "janvier", "janv", "januar", "jän", "enero", "ene",
     "январь", "января", "янв")  # fmt: skip
_add(2, "february", "feb", "février", "fevrier", "févr", "fevr", "februar", "febrero",
     "февраль", "февраля", "фев", "февр")  # fmt: skip
_add(3, "march", "mar", "mars", "märz", "marz", "maerz", "marzo", "март", "марта", "мар")
_add(4, "april", "apr", "avril", "avr", "abril", "abr", "апрель", "апреля", "апр")
_add(5, "may", "mai", "mayo", "май", "мая")
_add(6, "june", "jun", "juin", "juni", "junio", "июнь", "июня", "июн")
_add(7, "july", "jul", "juillet", "juil", "juli", "julio", "июль", "июля", "июл")
_add(8, "august", "aug", "août", "aout", "agosto", "ago", "август", "августа", "авг")
_add(9, "september", "sep", "sept", "septembre", "septiembre", "setiembre",
     "сентябрь", "сентября", "сен", "сент")  # fmt: skip
_add(10, "october", "oct", "octobre", "oktober", "okt", "octubre", "октябрь", "октября", "окт")
_add(11, "november", "nov", "novembre", "noviembre", "ноябрь", "ноября", "ноя", "нояб")
_add(12, "december", "dec", "décembre", "decembre", "déc", "dezember", "dez", "diciembre",
     "dic", "декабрь", "декабря", "дек")  # fmt: skip

# A word that may name a month (checked against `_MONTHS`): matching any word and
# looking it up is ten times faster than an alternation of a hundred names.
_WORD = r"(?P<month>[^\W\d_]{3,10})"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_ISO = re.compile(r"(?<!\d)(?P<year>(?:19|20)\d\d)[-/.](?P<month>\d\d?)[-/.](?P<day>\d\d?)(?!\d)")
# 10 April 2015 · 10. April 2015 · 10 de abril de 2015 · 10 апреля 2015 г.
_DAY_MONTH = re.compile(
    rf"(?<!\d)(?P<day>\d\d?)(?:er|\.)?\s*(?:de\s+)?{_WORD}\.?,?\s*(?:de\s+)?{_YEAR}"
)
# April 10, 2015 · Apr. 10 2015 · April 10th, 2015
_MONTH_DAY = re.compile(
    rf"(?<![^\W\d_]){_WORD}\.?\s+(?P<day>\d\d?)(?:st|nd|rd|th)?,?\s+{_YEAR}"
)
_DOTTED = re.compile(r"(?<![\d.])(?P<day>\d\d?)\.(?P<month>\d\d?)\.(?P<year>\d{4}|\d\d)(?![\d])")
_SLASHED = re.compile(r"(?<![\d/])(?P<a>\d\d?)([/-])(?P<b>\d\d?)\2(?P<year>\d{4}|\d\d)(?![\d/])")


def month_number(name: str) -> int | None:
    """The month (1-12) a name or abbreviation stands for, in any of the five languages."""
    return _MONTHS.get(name.lower().rstrip("."))


def find_date(
    text: str, *, day_first: bool = False, today: dt.date | None = None
) -> dt.datetime | None:
    """The first date printed in `text`, as midnight UTC; None if there is none."""
    if not text or not any(ch.isdigit() for ch in text):
        return None
    today = today or dt.datetime.now(dt.UTC).date()
    found: list[tuple[int, dt.datetime]] = []  # (position, date): the first printed wins
    for pattern in (_ISO, _DAY_MONTH, _MONTH_DAY):
        for match in pattern.finditer(text):
            month = match.group("month")
            number = int(month) if month.isdigit() else month_number(month)
            date = _make(int(match.group("year")), number, int(match.group("day")))
            if date is not None:
                found.append((match.start(), date))
                break
    for match in _DOTTED.finditer(text):
        year = _full_year(match.group("year"), today)
        date = _make(year, int(match.group("month")), int(match.group("day")))
        if date is not None:
            found.append((match.start(), date))
            break
    for match in _SLASHED.finditer(text):
        a, b = int(match.group("a")), int(match.group("b"))
        month, day = (b, a) if day_first or a > 12 else (a, b)
        date = _make(_full_year(match.group("year"), today), month, day)
        if date is not None:
            found.append((match.start(), date))
            break
    return min(found, key=lambda pair: pair[0])[1] if found else None


def _full_year(text: str, today: dt.date) -> int:
    year = int(text)
    if len(text) == 4:
        return year
    return 2000 + year if 2000 + year <= today.year else 1900 + year


def _make(year: int, month: int | None, day: int) -> dt.datetime | None:
    if month is None:
        return None
    try:
        return dt.datetime(year, month, day, tzinfo=dt.UTC)
    except ValueError:
        return None
