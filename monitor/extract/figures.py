"""Figures: the quantities a statement claims ("destroyed 46 command centres").

`find_figures(text)` returns each stated quantity with its number and what it
counts, in text order: `Figure(value=46, unit="command centres",
text="46 command centres")`. It is pure, bounded and runs in the extraction
pool with the other enrichment steps (`enrich.py`).

What counts as a figure:

* a number in digits, with thousands separators (`1,200`, `1.200`, `1 200`,
  a thin or no-break space), decimals (`2.5`, `2,5`), a scale word
  (`2.5 billion`, `300 Millionen`, `5 млрд`), followed by the words it counts:
  up to three words, stopping at function words, verbs and punctuation
  (`46 command centres and 6 plants` -> "command centres", "plants");
* an English number word up to twenty followed by what it counts ("six plants");
* a percentage (`12%`, `12 percent`, `12 Prozent`, `12 pour cent`,
  `12 процентов`): the unit is "%";
* money (`$2.5 billion`, `€300 million`, `300 millions d'euros`,
  `5 млрд рублей`): the unit is the currency code;
* a bound before the number ("up to 100", "more than 700", "bis zu",
  "jusqu'à", "до", "более") is kept in `bound` ("at_most", "more_than").

What is left out: dates and their parts ("October 14-15", "19 октября 2015
г.", "12.03.2024"), times ("10:30", "5 p.m.", "14 Uhr"), years, ordinals
("14th", "1er"), phone numbers, numbers inside URLs, e-mail addresses and
codes ("H.R. 5062", "F-16", "Resolution 2254", "No. 12"), and any number that
is not followed by something it counts.

Languages: English, French, German and Russian word lists; digits work in
any script's text. Everything is regex work over at most `MAX_INPUT_CHARS`,
with at most `MAX_FIGURES` results and `MAX_CANDIDATES` numbers examined; the
date, URL and code patterns run on a few dozen characters around each number.
"""

from __future__ import annotations

import re

from monitor.models import Figure

__all__ = ["Figure", "find_figures"]

MAX_INPUT_CHARS = 200_000
MAX_FIGURES = 200
MAX_CANDIDATES = 3_000  # numbers and number words examined (most may be dates or codes)
MAX_UNIT_WORDS = 3


def _split(words: str) -> list[str]:
    return words.split()


def _alternation(words: str) -> str:
    return "|".join(sorted((re.escape(w) for w in words.split()), key=len, reverse=True))


_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        _split(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
_MONTH_NAMES = frozenset(
    _split(
    """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    januar jänner februar märz april mai juni juli august oktober dezember
    janvier février fevrier mars avril mai juin juillet août aout septembre octobre
    novembre décembre decembre
    января февраля марта апреля мая июня июля августа сентября октября ноября декабря
    январь февраль март апрель май июнь июль август сентябрь октябрь ноябрь декабрь
    """
    )
)
# A month is matched as any word, then looked up: an alternation of a hundred names
# made each pattern twenty times slower.
_MONTH = r"(?P<month>[^\W\d_]{3,10})"
_SCALES = {
    **dict.fromkeys(_split("thousand thousands tausend mille тысяч тысячи тысяча тыс"), 10**3),
    **dict.fromkeys(
        _split("million millions mln mn m million(s) millionen mio миллионов миллиона миллион млн"),
        10**6,
    ),
    **dict.fromkeys(
        _split(
            "billion billions bn bln milliard milliards milliarde milliarden mrd "
            "миллиардов миллиарда миллиард млрд"
        ),
        10**9,
    ),
    **dict.fromkeys(_split("trillion trillions триллионов триллиона триллион трлн"), 10**12),
}
_CURRENCY_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "₽": "RUB", "¥": "JPY"}
_CURRENCY_WORDS = {
    **dict.fromkeys(_split("dollars dollar usd долларов доллара доллар"), "USD"),
    **dict.fromkeys(_split("euros euro eur евро"), "EUR"),
    **dict.fromkeys(_split("pounds gbp"), "GBP"),
    **dict.fromkeys(_split("roubles rubles rub рублей рубля рубль"), "RUB"),
}
_PERCENT_WORDS = _alternation(
    "percent per-cent prozent процентов процента процент pour-cent pourcent"
)
_BOUNDS = [
    (re.compile(r"(?:up to|as many as|bis zu|jusqu'à|jusqu’à|до)\s+$", re.I), "at_most"),
    (
        re.compile(
            r"(?:more than|over|over than|mehr als|über|plus de|более|свыше|больше)\s+$", re.I
        ),
        "more_than",
    ),
]
# Words that end what a number counts: function words, auxiliaries, common verbs.
_STOP = frozenset(
    _split("""
    and or of the a an in on at by for from to with without since per including included
    have has had having was were is are be been being will would shall should can could
    may might must that which who whom whose than as into over under during after before
    between among against about such this these those its their his her our your
    it they he she we you there here also only each every all both some any more most
    less least other another nearly about around approximately almost just still yet
    und oder der die das den dem des ein eine einer eines einem im in am an auf aus bei
    mit von vom zu zum zur für über unter nach vor seit sind ist war waren wurde wurden
    hat haben hatte hatten sowie bis dass
    et ou de du des la le les un une en au aux à par pour avec sans sur sous dans ont
    a été sont était étaient qui que dont ainsi depuis
    и или в во на по с со за из от до для к ко о об у при что как был была были было
    это этот эта эти а но же также более менее около
    """)
)
_UNIT_WORD = re.compile(r"[^\W\d_][\w'’-]*")

# Spans never read as figures: URLs, e-mail, dates, times, phones, codes.
_MASKS = [
    re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.I),
    # 12.03.2024, 2024-03-12, 12/03/2024, 03/12
    re.compile(r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|\b\d{1,2}/\d{1,2}\b"),
    # October 14-15, 2015 / 14 October 2015 / 19 октября 2015 г. / am 14. März
    re.compile(
        rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:\s*[-–—]\s*\d{{1,2}})?"
        rf"(?:,?\s+\d{{4}})?\b",
        re.I,
    ),
    re.compile(
        rf"\b\d{{1,2}}(?:st|nd|rd|th|er|\.)?(?:\s*[-–—]\s*\d{{1,2}}\.?)?\s+(?:of\s+)?{_MONTH}\b"
        rf"\.?(?:,?\s+\d{{4}}(?:\s*(?:г\.|года|году))?)?",
        re.I,
    ),
    # 10:30, 10.30 a.m., 5 p.m., 14 Uhr, 9h30
    re.compile(
        r"\b\d{1,2}(?:[:.h]\d{2})?\s*(?:a\.?m\.?|p\.?m\.?|uhr|heures?|час(?:ов|а)?)(?!\w)|"
        r"\b\d{1,2}:\d{2}(?::\d{2})?\b",
        re.I,
    ),
    # years: "in 2015", "2015 г.", "(2015)", and any bare 4-digit year with no separator
    re.compile(
        r"(?:\b(?:in|since|until|till|from|to|by|of|year|fiscal|FY|im|seit|bis|jahr|en|depuis|"
        r"année|в|с|до|году|года)\s+|[(,–-]\s*)(?:1[89]|20)\d{2}(?![\d,.]\d)\b"
        r"|\b(?:1[89]|20)\d{2}\s*(?:г\.|года|году|год)",
        re.I,
    ),
    # phone numbers: +7 495 123-45-67, (202) 647-4000
    re.compile(r"\+\d[\d\s().-]{6,}\d|\(\d{2,5}\)\s*\d[\d\s.-]{4,}\d|\b\d{3}-\d{3}-\d{4}\b"),
    # codes: H.R. 5062, S. 12, No. 12, Nr. 5, № 5, Resolution 2254, F-16, Su-24, COVID-19
    re.compile(
        r"(?:\b[A-Z](?:\.[A-Z])*\.|\b(?:No|Nr|Art|Sec|Para|Vol|p|pp)\.|№|§|\b[nN][°º]|"
        r"\b(?:[Rr]esolution|[Aa]rticle|[Ss]ection|[Dd]ecree|[Oo]rder|[Pp]aragraph|"
        r"[Rr]ule|[Ll]aw|[Bb]ill|[Cc]hapter|[Pp]oint|[Ii]tem|[Pp]age|[Cc]ase|[Ff]ile|"
        r"[Rr]ésolution|[Dd]écret|[Aa]rtikel|[Rr]esolution|[Зз]акон|[Уу]каз|[Пп]ункт|"
        r"[Cc]ode|[Ff]light|[Rr]oute|[Rr]oom|[Pp]hase|[Gg]roup|[Tt]ype|[Mm]odel))"
        r"\s*\d[\w/.-]*"
    ),
    re.compile(r"\b[A-Za-zА-Яа-я]+[-/]\d[\w/-]*|\b\d+[-/][A-Za-zА-Яа-я][\w/-]*"),
    re.compile(r"\b[A-Z]{2,}\s+\d+\b"),  # "UNSCR 2231", "ISIN 123"
    # ordinals: 14th, 1st, 1er, 2e, 3-й
    re.compile(r"\b\d+(?:st|nd|rd|th|er|ère|e|ème|eme|-?й|-?го|-?я)\b", re.I),
]

# Patterns start with a digit (or a number word's letter) so that the regex engine
# skips to candidates; the currency sign before a number is looked up apart.
_NUMBER = re.compile(
    r"(?P<num>\d{1,3}(?:(?P<sep>[,.\u00a0\u202f\u2009 ])\d{3})(?:(?P=sep)\d{3})*"
    r"(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    r"(?P<pct>\s?%)?"
    r"(?![\d\w])"
)
# Words that may be a number word, looked up in _NUMBER_WORDS: an alternation of
# the words themselves was eight times slower (bench: the seed, 3.3 -> 0.4 ms).
_WORD_NUMBER = re.compile(r"\b(?P<word>[ZzOoTtFfSsEeNn][a-z]{2,8})\b")
_CURRENCY_BEFORE = re.compile(r"(?:US\$|[$€£₽¥])\s?$")


def find_figures(text: str) -> tuple[Figure, ...]:
    """The quantities `text` states, in order (see the module docstring)."""
    if not text:
        return ()
    text = text[:MAX_INPUT_CHARS]
    found: list[tuple[int, Figure]] = []
    for count, match in enumerate(_NUMBER.finditer(text)):
        if len(found) >= MAX_FIGURES or count >= MAX_CANDIDATES:
            break
        if _masked(text, *match.span("num")):
            continue
        figure = _digit_figure(text, match)
        if figure is not None:
            found.append((match.start(), figure))
    for count, match in enumerate(_WORD_NUMBER.finditer(text)):
        if len(found) >= MAX_FIGURES or count >= 10 * MAX_CANDIDATES:
            break
        if match.group().lower() not in _NUMBER_WORDS or _masked(text, *match.span()):
            continue
        figure = _word_figure(text, match)
        if figure is not None:
            found.append((match.start(), figure))
    found.sort(key=lambda item: item[0])
    return tuple(figure for _, figure in found)


_MASK_BEFORE, _MASK_AFTER = 32, 24  # how far a date, URL or code reaches around a number


def _masked(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is inside a span that is no figure (a date, a URL...).

    The patterns run over a window around the number only: a text's cost stays
    linear in its numbers, not in its length times the patterns.
    """
    low = max(0, start - _MASK_BEFORE)
    window = text[low : end + _MASK_AFTER]
    for pattern in _MASKS:
        for match in pattern.finditer(window):
            if match.start() + low >= end or match.end() + low <= start:
                continue
            month = match.groupdict().get("month")
            if month is None or month.lower() in _MONTH_NAMES:
                return True
    return False


def _parse_number(raw: str, sep: str | None) -> float:
    if sep is not None:
        # Thousands grouping: drop the separator; a last other mark is the decimal point.
        grouped = raw.replace(sep, "")
        return float(grouped.replace(",", "."))
    if "," in raw:
        return float(raw.replace(",", "."))
    return float(raw)


def _as_value(value: float) -> int | float:
    return int(value) if value.is_integer() and abs(value) < 1e18 else value


def _bound(text: str, start: int) -> tuple[str | None, int]:
    before = text[max(0, start - 20) : start]
    for pattern, name in _BOUNDS:
        match = pattern.search(before)
        if match is not None:
            return name, start - (len(before) - match.start())
    return None, start


def _digit_figure(text: str, match: re.Match[str]) -> Figure | None:
    start, end = match.span()
    raw = match.group("num")
    # A digit glued to a letter or a dot-digit before it is part of a code or a version.
    if start and (text[start - 1].isalnum() or text[start - 1] in "/#_"):
        return None
    try:
        value = _parse_number(raw, match.group("sep"))
    except ValueError:
        return None
    currency = None
    sign = _CURRENCY_BEFORE.search(text, max(0, start - 4), start)
    if sign is not None:
        currency = _CURRENCY_SYMBOLS[sign.group().strip()]
        start = sign.start()
    if match.group("pct"):
        return _make(text, start, end, value, "%")
    words, unit_end = _words_after(text, end)
    scale_used = 0
    if words and words[0][0].lower() in _SCALES:
        value *= _SCALES[words[0][0].lower()]
        scale_used = 1
        end = words[0][2]
    rest = words[scale_used:]
    if rest and re.fullmatch(_PERCENT_WORDS, rest[0][0].replace(" ", "-"), re.I):
        return _make(text, start, rest[0][2], value, "%")
    if rest and re.fullmatch("pour", rest[0][0], re.I) and text[rest[0][2] :].startswith(" cent"):
        return _make(text, start, rest[0][2] + 5, value, "%")
    if currency is None:
        currency_word = _currency_after(text, end)
        if currency_word is not None:
            code, currency_end = currency_word
            return _make(text, start, currency_end, value, code)
    if currency is not None:
        return _make(text, start, end, value, currency)
    unit = _unit(rest)
    if unit is None:
        return None
    unit_text, unit_end = unit
    return _make(text, start, unit_end, value, unit_text)


def _word_figure(text: str, match: re.Match[str]) -> Figure | None:
    start, end = match.span()
    word = match.group("word")
    value = float(_NUMBER_WORDS[word.lower()])
    words, _ = _words_after(text, end)
    if words and words[0][0].lower() in _SCALES:
        value *= _SCALES[words[0][0].lower()]
        end = words[0][2]
        words = words[1:]
    unit = _unit(words)
    if unit is None or (word.lower() == "one" and not unit[0].endswith("s")):
        return None  # "one of", "one day": "one" is too often no count
    return _make(text, start, unit[1], value, unit[0])


def _make(text: str, start: int, end: int, value: float, unit: str) -> Figure:
    bound, phrase_start = _bound(text, start)
    phrase = " ".join(text[phrase_start:end].split())
    return Figure(value=_as_value(value), unit=unit, text=phrase, bound=bound)


def _words_after(text: str, end: int) -> tuple[list[tuple[str, int, int]], int]:
    """Up to MAX_UNIT_WORDS + 1 words right after `end`, separated by spaces only."""
    words: list[tuple[str, int, int]] = []
    pos = end
    for _ in range(MAX_UNIT_WORDS + 1):
        gap = len(text) - len(text[pos:].lstrip(" \u00a0\u202f\t"))
        if gap - pos > 2 or (words == [] and gap == pos and pos < len(text)):
            break  # the number must be followed by a space
        match = _UNIT_WORD.match(text, gap)
        if match is None:
            break
        words.append((match.group(), match.start(), match.end()))
        pos = match.end()
    return words, pos


def _currency_after(text: str, end: int) -> tuple[str, int] | None:
    """A currency named after the number: "300 millions d'euros", "5 млрд рублей"."""
    words, _ = _words_after(text, end)
    for word, _start, word_end in words[:2]:
        plain = word.lower().removeprefix("d'").removeprefix("d’")
        if plain in _CURRENCY_WORDS:
            return _CURRENCY_WORDS[plain], word_end
    return None


_RUSSIAN_ADJECTIVE = re.compile(
    r"(?:ых|их|ые|ие|ый|ий|ой|ая|яя|ое|ее|ого|его|ому|ему|ым|им|ую|юю)$"
)


def _ends_unit(word: str) -> bool:
    """Whether `word` is the head noun that closes what a number counts.

    Modifiers come before the head ("combat sorties", "командных пунктов",
    "armed extremists"), so the unit ends at a plural (English, French), a
    capitalised noun (German) or a Russian word that is not an adjective;
    whatever follows it is the verb ("cross", "zerstört", "покинули").
    """
    if any("\u0400" <= c <= "\u04ff" for c in word):
        return _RUSSIAN_ADJECTIVE.search(word.lower()) is None
    return word[0].isupper() or (len(word) > 2 and word[-1] in "sxSX")


def _unit(words: list[tuple[str, int, int]]) -> tuple[str, int] | None:
    """What the number counts: modifier words up to a head noun, before any stop word."""
    kept: list[tuple[str, int, int]] = []
    for word, start, end in words[:MAX_UNIT_WORDS]:
        if word.lower() in _STOP or word.lower() in _SCALES:
            break
        kept.append((word, start, end))
        if _ends_unit(word):
            break
    if not kept:
        return None
    return " ".join(word for word, _, _ in kept), kept[-1][2]
