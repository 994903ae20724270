"""Figures: `monitor.extract.figures.find_figures`, the quantities a statement claims."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.extract.figures import MAX_FIGURES, Figure, find_figures
from tests.conftest import SHARED

SEED = SHARED / "seed/official-statement-example.txt"


def pairs(text: str) -> list[tuple[int | float, str]]:
    return [(f.value, f.unit) for f in find_figures(text)]


def test_seed_gives_its_four_figures() -> None:
    if not SEED.exists():
        pytest.skip(f"seed statement not found at {SEED}")
    figures = find_figures(SEED.read_text(encoding="utf-8"))
    for expected in (
        Figure(value=46, unit="command centres", text="46 command centres"),
        Figure(value=394, unit="combat sorties", text="394 combat sorties"),
        Figure(value=699, unit="combat sorties", text="699 combat sorties"),
        Figure(value=456, unit="objects", text="456 objects"),
    ):
        assert expected in figures
    assert (
        Figure(
            value=100, unit="armed extremists", text="up to 100 armed extremists", bound="at_most"
        )
        in figures
    )
    # The dates of the seed ("since September 30", "on October 14-15") are no figures.
    assert not {30, 14, 15} & {f.value for f in figures}


ENGLISH = [
    (
        "The Russian aviation group has destroyed 46 command centres and 6 plants.",
        [(46, "command centres"), (6, "plants")],
    ),
    ("The United States will provide $2.5 billion in humanitarian aid.", [(2_500_000_000, "USD")]),
    ("Unemployment fell to 3.9 percent in March.", [(3.9, "%")]),
    ("Exports rose by 12% compared with last year.", [(12, "%")]),
    (
        "The Department deployed 1,200 troops and six aircraft to the region.",
        [(1200, "troops"), (6, "aircraft")],
    ),
    ("Every night up to 100 armed extremists cross the border.", [(100, "armed extremists")]),
    (
        "For Immediate Release: April 10, 2015. Secretary Kerry will meet 14 foreign ministers.",
        [(14, "foreign ministers")],
    ),
    ("H.R. 5062 was signed into law on October 14, 2016 at 10:30 a.m.", []),
    ("Call the press office at (202) 647-2492 or +1 202 647 2492 for details.", []),
    (
        "The 3rd meeting took place on 14th May; see https://www.state.gov/r/pa/prs/ps/2015/04/240.htm",
        [],
    ),
    (
        "The Fund approved €300 million for 12 projects in 2024.",
        [(300_000_000, "EUR"), (12, "projects")],
    ),
    (
        "In 2015 the ministry opened two new embassies and 25 consulates.",
        [(2, "new embassies"), (25, "consulates")],
    ),
    ("Resolution 2254 calls for a ceasefire; F-16 jets flew 40 missions.", [(40, "missions")]),
]
FRENCH = [
    ("Publié le 3 mars 2024 : la France mobilise 300 millions d'euros.", [(300_000_000, "EUR")]),
    ("Les forces ont détruit 46 postes de commandement.", [(46, "postes")]),
    ("Le chômage a baissé de 7,5 % au dernier trimestre.", [(7.5, "%")]),
    ("Le ministre a rencontré 12 ambassadeurs le 14 juillet 2023.", [(12, "ambassadeurs")]),
    ("Près de 1 200 soldats sont déployés.", [(1200, "soldats")]),
    ("La croissance atteint 2,1 pour cent.", [(2.1, "%")]),
    ("Jusqu'à 500 réfugiés arrivent chaque jour.", [(500, "réfugiés")]),
    ("La conférence du 3 au 5 mai réunit 40 pays.", [(40, "pays")]),
    ("Le décret n° 2024-123 entre en vigueur à 10h30.", []),
    ("L'aide s'élève à 2,5 milliards d'euros.", [(2_500_000_000, "EUR")]),
    ("Plus de 700 personnes ont été évacuées.", [(700, "personnes")]),
    ("Contact presse : +33 1 43 17 53 53.", []),
]
GERMAN = [
    (
        "Pressemitteilung vom 12.03.2024: Die Bundeswehr entsendet 1.200 Soldaten.",
        [(1200, "Soldaten")],
    ),
    ("Die Inflation lag bei 2,5 Prozent.", [(2.5, "%")]),
    ("Der Bund stellt 300 Millionen Euro bereit.", [(300_000_000, "EUR")]),
    ("Bis zu 100 Fachkräfte werden eingestellt.", [(100, "Fachkräfte")]),
    ("Am 14. März 2024 trafen sich 27 Minister in Brüssel.", [(27, "Minister")]),
    ("Die Sitzung beginnt um 14 Uhr.", []),
    ("Es wurden 46 Kommandoposten zerstört.", [(46, "Kommandoposten")]),
    ("Rund 3 500 Menschen wurden evakuiert.", [(3500, "Menschen")]),
    ("Das Gesetz Nr. 5 tritt 2025 in Kraft.", []),
    ("Der Haushalt wächst um 4 % auf 476 Milliarden Euro.", [(4, "%"), (476_000_000_000, "EUR")]),
    ("Mehr als 700 Einsätze wurden geflogen.", [(700, "Einsätze")]),
    ("Telefon: +49 30 18 17 0", []),
]
RUSSIAN = [
    ("Уничтожено 46 командных пунктов и 6 заводов.", [(46, "командных пунктов"), (6, "заводов")]),
    ("МОСКВА, 19 октября 2015 г. Выполнено 394 боевых вылета.", [(394, "боевых вылета")]),
    ("Инфляция составила 7,4 процента.", [(7.4, "%")]),
    ("Выделено 5 млрд рублей.", [(5_000_000_000, "RUB")]),
    ("С 30 сентября выполнено 699 боевых вылетов.", [(699, "боевых вылетов")]),
    ("Поражено 456 объектов.", [(456, "объектов")]),
    ("На границе находится 1 200 военнослужащих.", [(1200, "военнослужащих")]),
    ("Рост ВВП составил 3,5%.", [(3.5, "%")]),
    ("Брифинг начнется в 10:00.", []),
    ("Совещание прошло 14-15 октября.", []),
    ("Телефон: +7 495 696-71-71.", []),
    ("Свыше 300 боевиков покинули район.", [(300, "боевиков")]),
]


@pytest.mark.parametrize(("text", "expected"), ENGLISH + FRENCH + GERMAN + RUSSIAN)
def test_official_sentences(text: str, expected: list[tuple[int | float, str]]) -> None:
    assert pairs(text) == expected


def test_bounds_are_kept() -> None:
    assert [
        f.bound for f in find_figures("up to 100 armed extremists and more than 700 people")
    ] == [
        "at_most",
        "more_than",
    ]


def test_work_is_bounded() -> None:
    figures = find_figures("12 ships, " * 100_000)
    assert len(figures) == MAX_FIGURES


@settings(max_examples=200, deadline=5000, derandomize=True, database=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("0123456789 ,.%$€-:/+()\nup to six ships Октября г.")),
        max_size=200,
    )
)
def test_find_figures_is_total_and_quotes_its_own_text(text: str) -> None:
    flat = " ".join(text.split())
    for figure in find_figures(text):
        assert figure.text in flat
        assert figure.unit


def test_figures_in_the_event_data_follow_the_schema() -> None:
    from monitor.events import statement_data
    from tests.conftest import SCHEMA_VALIDATOR
    from tests.test_events import statement

    text = "The aircraft performed 394 combat sorties; up to 100 armed extremists crossed."
    data = statement_data(statement(text=text, figures=find_figures(text)))
    assert data["figures"] == [
        {"value": 394, "unit": "combat sorties", "text": "394 combat sorties"},
        {"value": 100, "unit": "armed extremists", "text": "up to 100 armed extremists",
         "bound": "at_most"},
    ]
    data_schema = SCHEMA_VALIDATOR.schema["properties"]["data"]
    errors = list(SCHEMA_VALIDATOR.evolve(schema=data_schema).iter_errors(data))
    assert errors == []
    bad = {**data, "figures": [{"value": "394", "unit": "", "text": "x"}]}
    assert list(SCHEMA_VALIDATOR.evolve(schema=data_schema).iter_errors(bad))
