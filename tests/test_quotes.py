"""Quote attribution: `monitor.extract.quotes.find_quotes`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.extract.quotes import find_quotes
from monitor.models import Quote, Speaker
from tests.shared import SEED_FILE, require_shared

KARTAPOLOV = "Andrei Kartapolov"


def speakers_of(text: str) -> list[str | None]:
    quotes, _ = find_quotes(text)
    return [q.speaker for q in quotes]


# --- the seed statement -----------------------------------------------------------


@pytest.fixture(scope="module")
def seed() -> tuple[tuple[Quote, ...], tuple[Speaker, ...]]:
    return find_quotes(require_shared(*SEED_FILE).read_text(encoding="utf-8"))


def test_seed_has_exactly_seven_quotes_all_by_kartapolov(
    seed: tuple[tuple[Quote, ...], tuple[Speaker, ...]],
) -> None:
    quotes, _ = seed
    assert len(quotes) == 7
    assert all(q.speaker == KARTAPOLOV for q in quotes)
    assert [q.verb for q in quotes] == [
        "said",
        "stressed",
        "stated",
        "told",
        "noted",
        "stated",
        "said",
    ]
    assert quotes[0].text.startswith("Last week situation in Syria changed significantly.")
    assert quotes[-1].text.endswith("the strikes have made an impressive effect")


def test_seed_lists_kartapolov_with_his_role(
    seed: tuple[tuple[Quote, ...], tuple[Speaker, ...]],
) -> None:
    _, speakers = seed
    assert [s.name for s in speakers] == [KARTAPOLOV]
    role = speakers[0].role or ""
    assert role.startswith(
        "Chief of the Main Operational Directorate of the General Staff of the Russian Armed Forces"
    )
    assert role.endswith("Colonel General")


def test_seed_scare_quotes_are_not_quotes_and_nested_marks_do_not_split(
    seed: tuple[tuple[Quote, ...], tuple[Speaker, ...]],
) -> None:
    quotes, _ = seed
    texts = [q.text for q in quotes]
    assert not any(t.strip("“”") in {"hot line", "Syrian Free Army"} for t in texts)
    whole = [t for t in texts if "“Syrian Free Army”" in t]
    assert len(whole) == 1
    assert whole[0].startswith("We are performing strikes only against facilities")
    assert whole[0].endswith("were located according to our data")


# --- English patterns --------------------------------------------------------------


def test_verb_after_quote_with_full_name() -> None:
    quotes, speakers = find_quotes("“We will continue the operation,” said Andrei Kartapolov.")
    assert quotes == (
        Quote(text="We will continue the operation", speaker=KARTAPOLOV, verb="said"),
    )
    assert speakers == (Speaker(name=KARTAPOLOV, role=None),)


def test_name_before_verb_after_quote() -> None:
    quotes, _ = find_quotes("“The talks were useful,” Lavrov said after the meeting.")
    assert quotes == (Quote(text="The talks were useful", speaker="Lavrov", verb="said"),)


def test_pronoun_carries_the_last_named_speaker_forward() -> None:
    text = (
        "“Inflation remains too high,” said Christine Lagarde.\n\n"
        "The bank kept its rates unchanged for the third time.\n\n"
        "“We will do what is needed,” she added."
    )
    quotes, speakers = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [
        ("Christine Lagarde", "said"),
        ("Christine Lagarde", "added"),
    ]
    assert [s.name for s in speakers] == ["Christine Lagarde"]


def test_pronoun_follows_a_reporting_clause_without_quotes() -> None:
    text = (
        "Jerome Powell said that the committee would stay patient.\n\n"
        "“We are prepared to adjust policy as appropriate,” he added."
    )
    assert speakers_of(text) == ["Jerome Powell"]


def test_verb_before_quote_with_colon() -> None:
    text = (
        "Kartapolov told reporters at the briefing: “The militants are leaving the combat areas.”"
    )
    quotes, _ = find_quotes(text)
    assert quotes == (
        Quote(
            text="The militants are leaving the combat areas.", speaker="Kartapolov", verb="told"
        ),
    )


def test_according_to_a_name_before_quote() -> None:
    quotes, _ = find_quotes("According to Sergey Lavrov, “the door to negotiations remains open.”")
    assert quotes == (
        Quote(
            text="the door to negotiations remains open.",
            speaker="Sergey Lavrov",
            verb="according to",
        ),
    )


def test_according_to_the_minister_carries_the_named_minister() -> None:
    text = (
        "Foreign Minister Sergey Lavrov met his Turkish counterpart on Tuesday.\n\n"
        "“We discussed the situation in Syria,” Lavrov said.\n\n"
        "According to the minister, “the parties agreed to keep in touch.”"
    )
    quotes, speakers = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [
        ("Sergey Lavrov", "said"),
        ("Sergey Lavrov", "according to"),
    ]
    assert speakers == (Speaker(name="Sergey Lavrov", role="Foreign Minister"),)


def test_description_of_someone_else_is_not_given_the_last_name() -> None:
    text = (
        "“Rates will stay where they are,” said Governor Andrew Bailey.\n\n"
        "“The border will remain closed,” the minister said."
    )
    quotes, _ = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [
        ("Andrew Bailey", "said"),
        (None, "said"),
    ]


def test_short_form_resolves_to_a_full_name_seen_later() -> None:
    text = (
        "“The situation has changed significantly,” Kartapolov said.\n\n"
        "The briefing was held by Colonel General Andrei Kartapolov in Moscow."
    )
    quotes, speakers = find_quotes(text)
    assert [q.speaker for q in quotes] == [KARTAPOLOV]
    assert speakers == (Speaker(name=KARTAPOLOV, role="Colonel General"),)


def test_short_form_resolves_to_a_full_name_seen_earlier() -> None:
    text = (
        "“We will act decisively,” said Andrei Kartapolov.\n\n"
        "“The militants are demoralized,” Kartapolov added."
    )
    quotes, speakers = find_quotes(text)
    assert [q.speaker for q in quotes] == [KARTAPOLOV, KARTAPOLOV]
    assert [s.name for s in speakers] == [KARTAPOLOV]


def test_multiple_speakers_each_attributed() -> None:
    text = (
        "“We are ready to sign the agreement,” said Russian Foreign Minister Sergey Lavrov.\n\n"
        "“The text is not final yet,” Maria Zakharova, spokeswoman of the Foreign Ministry, said.\n\n"
        "“Nothing has been agreed,” Lavrov added.\n\n"
        "“We expect the talks to resume next week,” she noted."
    )
    quotes, speakers = find_quotes(text)
    assert [q.speaker for q in quotes] == [
        "Sergey Lavrov",
        "Maria Zakharova",
        "Sergey Lavrov",
        "Sergey Lavrov",  # "she": the last named speaker; gender is not modelled
    ]
    assert speakers == (
        Speaker(name="Sergey Lavrov", role="Russian Foreign Minister"),
        Speaker(name="Maria Zakharova", role="spokeswoman of the Foreign Ministry"),
    )


def test_quote_split_across_sentences_keeps_its_speaker() -> None:
    text = (
        "“We will not retreat,” Lavrov said. “Our position is clear and it will not change.”\n\n"
        "“This is the first part,” he said, “and this is the second.”"
    )
    quotes, _ = find_quotes(text)
    assert [(q.text, q.speaker) for q in quotes] == [
        ("We will not retreat", "Lavrov"),
        ("Our position is clear and it will not change.", "Lavrov"),
        ("This is the first part", "Lavrov"),
        ("and this is the second.", "Lavrov"),
    ]
    assert [q.verb for q in quotes] == ["said", None, "said", None]


def test_multi_sentence_quote_is_one_quote() -> None:
    quotes, _ = find_quotes(
        "“The first sentence. The second sentence! And a third?” said Olaf Scholz."
    )
    assert quotes == (
        Quote(
            text="The first sentence. The second sentence! And a third?",
            speaker="Olaf Scholz",
            verb="said",
        ),
    )


def test_role_from_title_words_before_the_name() -> None:
    _, speakers = find_quotes(
        "“The ceasefire holds,” said Secretary-General António Guterres at the press conference."
    )
    assert speakers == (Speaker(name="António Guterres", role="Secretary-General"),)


def test_straight_double_quotes() -> None:
    quotes, _ = find_quotes('"We stand ready to act," the governor said, citing Janet Yellen.')
    assert [(q.text, q.verb) for q in quotes] == [("We stand ready to act", "said")]


# --- scare quotes and sentence-level quotes without a speaker -----------------------------


def test_scare_quotes_and_quoted_names_are_not_quotations() -> None:
    text = (
        "There is a “hot line” between the two centres. "
        "Fighters of the “Syrian Free Army” and the so-called “moderate opposition” were seen. "
        "The “Strategy for the Development of the Arctic Zone” was approved."
    )
    assert find_quotes(text) == ((), ())


def test_unattributed_sentence_quote_is_kept_without_speaker() -> None:
    quotes, speakers = find_quotes(
        "The statement ended with the words: “Russia will never abandon its allies in the region.”"
    )
    assert quotes == (
        Quote(text="Russia will never abandon its allies in the region.", speaker=None, verb=None),
    )
    assert speakers == ()


# --- French, German, Russian ----------------------------------------------------------------


def test_french_quote_marks_and_verbs() -> None:
    text = (
        "« Nous ne céderons pas », a déclaré le ministre Jean Dupont.\n\n"
        "«\u202fLa France tiendra ses engagements\u202f», a-t-il souligné.\n\n"
        "Selon Jean Dupont, « les discussions vont continuer »."
    )
    quotes, speakers = find_quotes(text)
    assert quotes == (
        Quote(text="Nous ne céderons pas", speaker="Jean Dupont", verb="a déclaré"),
        Quote(text="La France tiendra ses engagements", speaker="Jean Dupont", verb="a souligné"),
        Quote(text="les discussions vont continuer", speaker="Jean Dupont", verb="selon"),
    )
    assert speakers == (Speaker(name="Jean Dupont", role="ministre"),)


def test_french_speaker_before_quote() -> None:
    quotes, _ = find_quotes(
        "Le porte-parole Marc Lefèvre a affirmé : « La décision sera prise demain. »"
    )
    assert quotes == (
        Quote(text="La décision sera prise demain.", speaker="Marc Lefèvre", verb="a affirmé"),
    )


def test_german_quote_marks_and_verbs() -> None:
    text = (
        "„Wir werden handeln“, sagte Bundeskanzler Olaf Scholz.\n\n"
        "„Die Lage ist ernst“, betonte er.\n\n"
        "»Das ist ein wichtiger Schritt«, so Scholz."
    )
    quotes, speakers = find_quotes(text)
    assert quotes == (
        Quote(text="Wir werden handeln", speaker="Olaf Scholz", verb="sagte"),
        Quote(text="Die Lage ist ernst", speaker="Olaf Scholz", verb="betonte"),
        Quote(text="Das ist ein wichtiger Schritt", speaker="Olaf Scholz", verb="so"),
    )
    assert speakers == (Speaker(name="Olaf Scholz", role="Bundeskanzler"),)


def test_german_speaker_before_quote_and_nested_single_marks() -> None:
    quotes, _ = find_quotes(
        "Außenministerin Annalena Baerbock erklärte: „Der Begriff ‚Frieden‘ muss gefüllt werden.“"
    )
    assert quotes == (
        Quote(
            text="Der Begriff ‚Frieden‘ muss gefüllt werden.",
            speaker="Annalena Baerbock",
            verb="erklärte",
        ),
    )


def test_russian_quote_marks_and_verbs() -> None:
    text = (
        "«Мы продолжим работу», — заявил министр Сергей Лавров.\n\n"
        "«Переговоры будут трудными», — подчеркнул он.\n\n"
        "«Решение уже принято», — отметила официальный представитель МИД России Мария Захарова."
    )
    quotes, speakers = find_quotes(text)
    assert quotes == (
        Quote(text="Мы продолжим работу", speaker="Сергей Лавров", verb="заявил"),
        Quote(text="Переговоры будут трудными", speaker="Сергей Лавров", verb="подчеркнул"),
        Quote(text="Решение уже принято", speaker="Мария Захарова", verb="отметила"),
    )
    assert speakers[0] == Speaker(name="Сергей Лавров", role="министр")
    assert speakers[1].name == "Мария Захарова"
    assert "представитель МИД России" in (speakers[1].role or "")


def test_russian_speaker_before_quote_and_german_style_marks() -> None:
    text = (
        "Министр иностранных дел России Сергей Лавров заявил: „Мы готовы к диалогу“.\n\n"
        "По словам Лаврова, «решение за Вашингтоном»."
    )
    quotes, speakers = find_quotes(text)
    assert [(q.text, q.speaker, q.verb) for q in quotes] == [
        ("Мы готовы к диалогу", "Сергей Лавров", "заявил"),
        ("решение за Вашингтоном", "Сергей Лавров", "по словам"),
    ]
    assert speakers == (Speaker(name="Сергей Лавров", role="Министр иностранных дел России"),)


# --- edge cases ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n  ", "No quotations here at all. None."])
def test_no_quotes(text: str) -> None:
    assert find_quotes(text) == ((), ())


def test_unbalanced_marks_do_not_swallow_later_quotes() -> None:
    text = (
        "An opening mark “ that never closes, and a stray » too.\n\n"
        "Another « unclosed mark, then “We will win,” said Olaf Scholz. And ” a stray closer."
    )
    quotes, _ = find_quotes(text)
    assert quotes == (Quote(text="We will win", speaker="Olaf Scholz", verb="said"),)


def test_quote_does_not_run_across_a_blank_line() -> None:
    text = "“This opens and never closes.\n\n“This one closes,” said Jean Dupont."
    quotes, _ = find_quotes(text)
    assert quotes == (Quote(text="This one closes", speaker="Jean Dupont", verb="said"),)


def test_adversarial_megabytes_finish_quickly() -> None:
    chunk = '“ « „ » ‹ " a “b ” Chief of the Main Staff said: « x ' * 40
    text = (chunk + "\n") * (2_000_000 // (len(chunk) + 1))
    text += "“" * 200_000 + "«" * 200_000 + " said " * 50_000
    assert len(text) >= 2_000_000
    started = time.perf_counter()
    find_quotes(text)
    assert time.perf_counter() - started < 3.0


def test_adversarial_single_paragraph_of_open_marks_finishes_quickly() -> None:
    text = "“«„‹" * 500_000 + " “We will win,” said Olaf Scholz."
    started = time.perf_counter()
    find_quotes(text)
    assert time.perf_counter() - started < 3.0


def test_result_is_picklable_and_deterministic() -> None:
    import pickle

    text = "“We will act,” said Olaf Scholz. “Now,” he added."
    first = find_quotes(text)
    assert pickle.loads(pickle.dumps(first)) == first == find_quotes(text)


def test_organisation_attributes_without_a_speaker_and_breaks_continuation() -> None:
    text = (
        "“A deal is close,” Lavrov said. “We are concerned,” the State Department said.\n\n"
        "“We will not accept this,” a spokesman for the Foreign Ministry said."
    )
    quotes, speakers = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [
        ("Lavrov", "said"),
        (None, "said"),
        (None, "said"),
    ]
    assert speakers == (Speaker(name="Lavrov", role=None),)


def test_forms_of_address_are_not_roles_and_appositive_roles_are() -> None:
    text = (
        "« Ce n’est pas acceptable », déclare M. Dupont.\n\n"
        "“Europe must stand together,” said Ursula von der Leyen, President of the European Commission."
    )
    _, speakers = find_quotes(text)
    assert speakers == (
        Speaker(name="Dupont", role=None),
        Speaker(name="Ursula von der Leyen", role="President of the European Commission"),
    )


def test_russian_inflected_name_resolves_to_the_nominative() -> None:
    text = (
        "По словам официального представителя МИД России Марии Захаровой, «ответ будет жестким».\n\n"
        "«Мы не оставим это без внимания», — сказала Мария Захарова."
    )
    quotes, speakers = find_quotes(text)
    assert [q.speaker for q in quotes] == ["Мария Захарова", "Мария Захарова"]
    assert [s.name for s in speakers] == ["Мария Захарова"]


def test_nested_marks_of_another_style_stay_inside() -> None:
    quotes, _ = find_quotes(
        "«Мы видим, как „Северный поток“ превращается в инструмент давления», — заявил Дмитрий Песков."
    )
    assert quotes == (
        Quote(
            text="Мы видим, как „Северный поток“ превращается в инструмент давления",
            speaker="Дмитрий Песков",
            verb="заявил",
        ),
    )


# --- lead-in paragraphs ending with a colon (GOV.UK, German ministries) -----------------


def test_colon_paragraph_attributes_the_quote_paragraphs_after_it() -> None:
    text = (
        "Energy Secretary Margaret Hollis said:\n\n"
        "“Families off the gas grid have faced some of the highest heating bills in the country. "
        "This scheme will help them switch.”\n\n"
        "“We have listened to installers and households, and we have made the application "
        "simpler.”"
    )
    quotes, speakers = find_quotes(text)
    # A continuation paragraph keeps the speaker; its verb is None, as for “A,” he said. “B.”
    assert [(q.speaker, q.verb) for q in quotes] == [
        ("Margaret Hollis", "said"),
        ("Margaret Hollis", None),
    ]
    assert quotes[0].text.endswith("This scheme will help them switch.")
    assert speakers == (Speaker(name="Margaret Hollis", role="Energy Secretary"),)


def test_colon_paragraph_after_an_introductory_sentence() -> None:
    text = (
        "The scheme opens on 1 April. Commenting on the launch, Energy Secretary Margaret "
        "Hollis said:\n\n“This scheme will help families switch to cleaner heating.”"
    )
    quotes, _ = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [("Margaret Hollis", "said")]


@pytest.mark.parametrize(
    ("text", "speaker", "verb", "role"),
    [
        (
            "Bundesministerin Sabine Kellermann erklärt dazu:\n\n"
            "„Wer mit Steuergeld bezahlt wird, muss seine Beschäftigten anständig bezahlen.“",
            "Sabine Kellermann",
            "erklärt",
            "Bundesministerin",
        ),
        (
            "Министр иностранных дел Сергей Лавров заявил:\n\n«Мы готовы к диалогу.»",
            "Сергей Лавров",
            "заявил",
            "Министр иностранных дел",
        ),
        (
            "La ministre Catherine Vautrin a déclaré :\n\n« Nous agirons sans attendre. »",
            "Catherine Vautrin",
            "a déclaré",
            "ministre",
        ),
    ],
)
def test_colon_paragraph_in_german_russian_french(
    text: str, speaker: str, verb: str, role: str
) -> None:
    quotes, speakers = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [(speaker, verb)]
    assert speakers == (Speaker(name=speaker, role=role),)


def test_narrative_paragraph_breaks_the_colon_chain() -> None:
    text = (
        "Energy Secretary Margaret Hollis said:\n\n"
        "“This scheme will help families switch to cleaner heating.”\n\n"
        "Installers must be certified under the certification scheme.\n\n"
        "“Applications will be checked by an independent body.”"
    )
    quotes, _ = find_quotes(text)
    assert [q.speaker for q in quotes] == ["Margaret Hollis", None]


def test_narrative_between_colon_paragraph_and_quote_breaks_the_attribution() -> None:
    text = (
        "Energy Secretary Margaret Hollis said:\n\n"
        "The scheme opens on 1 April for three years.\n\n"
        "“Applications will be checked by an independent body.”"
    )
    quotes, _ = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [(None, None)]


def test_colon_paragraph_without_a_reporting_verb_attributes_nothing() -> None:
    text = "Key facts:\n\n“The scheme opens on 1 April and runs for three years.”"
    quotes, _ = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [(None, None)]


# --- present tense and "said the Governor, Name" ------------------------------------


@pytest.mark.parametrize(
    ("text", "verbs"),
    [
        (
            "“We act,” says Jane Doe. “Prices fall,” Jane Doe states. “More,” she adds. "
            "“Rates hold,” she notes. “Wages rise,” she stresses. “Jobs grow,” she explains.",
            ["says", "states", "adds", "notes", "stresses", "explains"],
        ),
        (
            "„Wir handeln“, sagt Olaf Scholz. „Die Lage ist ernst“, erklärt er. "
            "„Das ist wichtig“, betont er. „Wir bleiben dran“, ergänzt er.",
            ["sagt", "erklärt", "betont", "ergänzt"],
        ),
        (
            "«Мы готовы», — заявляет Сергей Лавров. «Это важно», — говорит он. "
            "«Решение принято», — отмечает он. «Мы открыты», — подчёркивает он.",
            ["заявляет", "говорит", "отмечает", "подчёркивает"],
        ),
        (
            "« Nous agirons », déclare Jean Dupont. « La France tiendra », affirme-t-il. "
            "« Rien ne change », souligne Jean Dupont. « Tout est prêt », indique-t-il.",
            ["déclare", "affirme", "souligne", "indique"],
        ),
    ],
)
def test_present_tense_reporting_verbs(text: str, verbs: list[str]) -> None:
    quotes, speakers = find_quotes(text)
    assert [q.verb for q in quotes] == verbs
    assert len(speakers) == 1
    assert all(q.speaker == speakers[0].name for q in quotes)


@pytest.mark.parametrize(
    "text",
    [
        "“Rates will stay where they are,” said the Governor, Elena Marković.",
        "“Rates will stay where they are,” said Governor Elena Marković.",
        "“Rates will stay where they are,” said the Governor Elena Marković at the meeting.",
    ],
)
def test_said_the_title_then_the_name(text: str) -> None:
    quotes, speakers = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [("Elena Marković", "said")]
    assert speakers == (Speaker(name="Elena Marković", role="Governor"),)


def test_said_the_title_then_a_non_name_is_no_speaker() -> None:
    quotes, _ = find_quotes("“Rates will stay where they are,” said the Governor, in Frankfurt.")
    assert [(q.speaker, q.verb) for q in quotes] == [(None, "said")]


def test_the_title_later_refers_to_the_named_speaker_with_that_role() -> None:
    text = (
        "“Rates will stay where they are,” said Governor Elena Marković.\n\n"
        "The bank kept its three key rates unchanged.\n\n"
        "“Inflation is coming down,” the Governor said."
    )
    quotes, speakers = find_quotes(text)
    assert [(q.speaker, q.verb) for q in quotes] == [
        ("Elena Marković", "said"),
        ("Elena Marković", "said"),
    ]
    assert speakers == (Speaker(name="Elena Marković", role="Governor"),)


# --- the official-layout bench pages -----------------------------------------------------

BENCH_PAGES = Path(__file__).resolve().parents[1] / "bench/pages"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("gov-press-release-share", [("Margaret Hollis", "said"), ("Margaret Hollis", None)]),
        ("de-ministerium-pressemitteilung", [("Sabine Kellermann", "erklärt")]),
        ("central-bank-rates", [("Elena Marković", "said"), ("Elena Marković", None)]),
        ("whitehouse-statement-wp", [("Dana Whitfield", "said"), ("Dana Whitfield", None)]),
        # "a déclaré la ministre": no name anywhere, so no speaker rather than a guess.
        ("fr-ministere-communique", [(None, "a déclaré")]),
    ],
)
def test_bench_pages_expected_speakers(case: str, expected: list[tuple[str | None, str]]) -> None:
    path = BENCH_PAGES / case / "expected.txt"
    if not path.exists():
        pytest.skip(f"bench page not found at {path}")
    quotes, _ = find_quotes(path.read_text(encoding="utf-8"))
    assert [(q.speaker, q.verb) for q in quotes] == expected
