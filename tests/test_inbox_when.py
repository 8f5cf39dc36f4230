"""Dates named in words for "come back later", with a literal today (no clock)."""

from __future__ import annotations

from datetime import date

import pytest

from nurtured.when import fold_chars, fold_text, later_date

TODAY = date(2026, 5, 20)  # a Wednesday in Q2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # months: the 1st of the next occurrence after today
        ("not now, maybe in March", date(2027, 3, 1)),
        ("Let's revisit in September", date(2026, 9, 1)),
        ("later: May", date(2027, 5, 1)),
        ("im Oktober wieder", date(2026, 10, 1)),
        ("recontactez-moi en septembre", date(2026, 9, 1)),
        ("a partir de marzo", date(2027, 3, 1)),
        ("risentiamoci a settembre", date(2026, 9, 1)),
        ("neem in augustus weer contact op", date(2026, 8, 1)),
        ("fale comigo em outubro", date(2026, 10, 1)),
        ("Mitte Juni", date(2026, 6, 1)),
        ("mid-May", date(2027, 5, 1)),
        ("March 2028", date(2028, 3, 1)),
        ("marzo de 2027", date(2027, 3, 1)),
        ("in March next year", date(2027, 3, 1)),
        ("im November nächsten Jahres", date(2027, 11, 1)),
        # written dates
        ("later: 2026-08-01", date(2026, 8, 1)),
        ("after 15 March", date(2027, 3, 15)),
        ("bis zum 30.09.2026", date(2026, 9, 30)),
        # quarters
        ("Q2", date(2027, 4, 1)),
        ("q3", date(2026, 7, 1)),
        ("Q1 2027", date(2027, 1, 1)),
        ("Q4/26", date(2026, 10, 1)),
        ("get back to me next quarter", date(2026, 7, 1)),
        ("el próximo trimestre", date(2026, 7, 1)),
        ("au prochain trimestre", date(2026, 7, 1)),
        ("im 2. Quartal", date(2027, 4, 1)),
        ("third quarter", date(2026, 7, 1)),
        ("tweede kwartaal", date(2027, 4, 1)),
        # seasons, northern hemisphere
        ("after the summer", date(2026, 9, 1)),
        ("nach dem Sommer", date(2026, 9, 1)),
        ("après l'été", date(2026, 9, 1)),
        ("después del verano", date(2026, 9, 1)),
        ("dopo l'estate", date(2026, 9, 1)),
        ("na de zomer", date(2026, 9, 1)),
        ("depois do verão", date(2026, 9, 1)),
        ("in the autumn", date(2026, 9, 1)),
        ("im Frühjahr", date(2027, 3, 1)),
        ("this winter", date(2026, 12, 1)),
        # next week / month / year
        ("next week", date(2026, 5, 25)),
        ("next month", date(2026, 6, 1)),
        ("nächstes Jahr", date(2027, 1, 1)),
        ("l'année prochaine", date(2027, 1, 1)),
        ("el año que viene", date(2027, 1, 1)),
        ("l'anno prossimo", date(2027, 1, 1)),
        ("volgend jaar", date(2027, 1, 1)),
        ("no ano que vem", date(2027, 1, 1)),
        ("in the new year", date(2027, 1, 1)),
        # spans from today
        ("in 3 months", date(2026, 8, 20)),
        ("in two weeks", date(2026, 6, 3)),
        ("in a month", date(2026, 6, 20)),
        ("in a couple of months", date(2026, 7, 20)),
        ("in drei Monaten", date(2026, 8, 20)),
        ("dans 10 jours", date(2026, 5, 30)),
        ("dentro de 6 meses", date(2026, 11, 20)),
        ("tra sei mesi", date(2026, 11, 20)),
        ("over 2 maanden", date(2026, 7, 20)),
        ("daqui a 3 meses", date(2026, 8, 20)),
        ("in a year", date(2027, 5, 20)),
        # a year alone, after a preposition
        ("in 2028", date(2028, 1, 1)),
    ],
)
def test_later_date(text: str, expected: date) -> None:
    """Each way of naming a time to come back gives its first day."""
    assert later_date(text, TODAY) == expected


def test_span_from_month_end_clamps_the_day() -> None:
    """31 January + 1 month is 28 February."""
    assert later_date("in one month", date(2026, 1, 31)) == date(2026, 2, 28)


def test_month_this_month_is_next_year() -> None:
    """In May, "in May" means next May; on 30 April it means tomorrow."""
    assert later_date("in May", date(2026, 5, 1)) == date(2027, 5, 1)
    assert later_date("in May", date(2026, 4, 30)) == date(2026, 5, 1)


def test_the_latest_named_date_wins() -> None:
    """Busy until 30 June, then in July, comes back in July, not in June."""
    assert later_date("busy until 30 June, try me in July", TODAY) == date(2026, 7, 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Thanks for the email",
        "this may be interesting",  # "may" the verb
        "we may talk",
        "a set of questions",  # "set" is Portuguese September only after a time word
        "I read it two weeks ago",
        "talk to Marco",  # a name, not Portuguese "março"
        "our contract runs until 2031",  # a year alone only after "in", "from" ...
        "we use version 3.2 now",
        "yesterday, 2026-05-01",  # past dates are no later
        "in 2035",  # beyond five years: not a time to come back
    ],
)
def test_no_date(text: str) -> None:
    """Text that names no time to come back gives None."""
    assert later_date(text, TODAY) is None


def test_ambiguous_month_words_follow_the_language() -> None:
    """The words set, mai and ago are months only in the languages where they are one."""
    assert later_date("voltamos a falar em set", TODAY, "pt") == date(2026, 9, 1)
    assert later_date("voltamos a falar em set", TODAY) is None
    assert later_date("ab Mai", TODAY, "de") == date(2027, 5, 1)
    assert later_date("ab Mai", TODAY) == date(2027, 5, 1)
    assert later_date("dopo mai", TODAY, "it") is None
    assert later_date("a partir de ago", TODAY, "es") == date(2026, 8, 1)
    assert later_date("a partir de ago", TODAY, "en") is None


def test_fold_text_makes_apostrophes_plain() -> None:
    """A typographic apostrophe reads like a plain one."""
    assert fold_text("L’Année  Prochaine") == "l'annee prochaine"


def test_fold_chars_keeps_every_span() -> None:
    """One character out for each character in: "Müller’s ÉTÉ" keeps its length."""
    text = "Müller’s ÉTÉ straße"
    assert fold_chars(text) == "muller's ete straße"
    assert fold_chars(text, lower=False) == "Muller's ETE straße"
    assert len(fold_chars(text)) == len(text)
