"""Sales replies to handoff alerts parsed into commands, with a literal today (no clock)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from nurtured.sales.commands import HELP_TEXT, Command, parse_command

TODAY = date(2026, 5, 20)  # a Wednesday in Q2


def parse(text: str) -> Command | None:
    return parse_command(text, TODAY)


@pytest.mark.parametrize(
    "text",
    [
        "accept",
        "Accept",
        "ACCEPT!",
        "accept.",
        "> accept",
        ">> Accept",
        "**Accept**",
        '"accept"',
        "- accept",
        "  accepted, will call her tomorrow",
        "Hi,\n\naccept\n\nBob",
        "akzeptiert",
        "Annehmen",
        "Ich übernehme",
        "accepté",
        "J'accepte",
        "J’accepte",
        "acepto",
        "Aceptar",
        "accetto",
        "accepteer",
        "Geaccepteerd",
        "aceito",
    ],
)
def test_accept(text: str) -> None:
    """Accept in any case, punctuation or language, after quote markers and bullets."""
    assert parse(text) == Command("accept")


@pytest.mark.parametrize(
    ("text", "reason", "category", "until"),
    [
        ("return: timing, next year", "timing, next year", "timing", date(2027, 1, 1)),
        ("Return: no budget this year", "no budget this year", "budget", None),
        ("return - not the decision maker", "not the decision maker", "authority", None),
        ("return: they don't need it", "they don't need it", "need", None),
        ("return: too small, 3 employees", "too small, 3 employees", "fit", None),
        ("return: weird vibe", "weird vibe", "other", None),
        ("return: wants to talk in March", "wants to talk in March", "timing", date(2027, 3, 1)),
        ("return: Q2", "Q2", "timing", date(2027, 4, 1)),
        (
            "return: budget freeze until 2026-10-01",
            "budget freeze until 2026-10-01",
            "budget",
            date(2026, 10, 1),
        ),
        ("zurück: kein Budget", "kein Budget", "budget", None),
        ("Retour : pas le bon interlocuteur", "pas le bon interlocuteur", "authority", None),
        (
            "devolver: mal momento, el próximo año",
            "mal momento, el próximo año",
            "timing",
            date(2027, 1, 1),
        ),
        ("restituisci: nessun bisogno", "nessun bisogno", "need", None),
        ("terug: te klein", "te klein", "fit", None),
        ("devolver: sem orçamento", "sem orçamento", "budget", None),
        (
            "return:\nthey want to wait until Q3",
            "they want to wait until Q3",
            "timing",
            date(2026, 7, 1),
        ),
    ],
)
def test_return(text: str, reason: str, category: str, until: date | None) -> None:
    """A return keeps its reason, guesses a category and reads a re-entry date."""
    assert parse(text) == Command("return", reason=reason, category=category, until=until)


def test_return_category_is_the_first_one_named() -> None:
    """With budget and timing words, the one named first is the category."""
    command = parse("return: no budget now, maybe next year")
    assert command is not None
    assert (command.category, command.until) == ("budget", date(2027, 1, 1))


def test_return_without_reason() -> None:
    """A bare return is understood, without reason or category."""
    assert parse("return") == Command("return")


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("won 12000", Decimal("12000"), None),
        ("won 12,000", Decimal("12000"), None),
        ("won $12k", Decimal("12000"), "USD"),
        ("won 12.000 EUR", Decimal("12000"), "EUR"),
        ("won: 12000.50", Decimal("12000.50"), None),
        ("Won 12.000,50 €", Decimal("12000.50"), "EUR"),
        ("won €1,234,567.89", Decimal("1234567.89"), "EUR"),
        ("won 1.5m usd", Decimal("1500000"), "USD"),
        ("won 12 000 eur", Decimal("12000"), "EUR"),
        ("won CHF 5'000", Decimal("5000"), "CHF"),
        ("won £950", Decimal("950"), "GBP"),
        ("won 12,5k", Decimal("12500"), None),
        ("won 300 euros", Decimal("300"), "EUR"),
        ("won 2 licenses, 4800 EUR", Decimal("4800"), "EUR"),
        ("gewonnen 8.500 €", Decimal("8500"), "EUR"),
        ("gagné 12 000 €", Decimal("12000"), "EUR"),
        ("ganado 7.000", Decimal("7000"), None),
        ("vinto 3k", Decimal("3000"), None),
        ("ganho R$ 10.000", Decimal("10000"), "BRL"),
        ("won", None, None),
    ],
)
def test_won(text: str, amount: Decimal | None, currency: str | None) -> None:
    """Amounts in every common spelling; the currency when one is given."""
    command = parse(text)
    assert command == Command("won", amount=amount, currency=currency)


@pytest.mark.parametrize(
    ("text", "reason", "category"),
    [
        ("lost: went with a competitor", "went with a competitor", "other"),
        ("Lost - too expensive", "too expensive", "budget"),
        ("verloren: kein Bedarf", "kein Bedarf", "need"),
        ("perdu: trop cher", "trop cher", "budget"),
        ("perdido: no es quien decide", "no es quien decide", "authority"),
        ("perso: troppo presto", "troppo presto", "timing"),
    ],
)
def test_lost(text: str, reason: str, category: str) -> None:
    """A lost deal keeps its reason and a category."""
    assert parse(text) == Command("lost", reason=reason, category=category)


def test_lost_without_reason() -> None:
    """A bare lost is understood."""
    assert parse("lost") == Command("lost")
    assert parse("Perdido.") == Command("lost")


@pytest.mark.parametrize(
    ("text", "until"),
    [
        ("later: March", date(2027, 3, 1)),
        ("later: September", date(2026, 9, 1)),
        ("later: Q2", date(2027, 4, 1)),
        ("later: Q3", date(2026, 7, 1)),
        ("later: in 3 months", date(2026, 8, 20)),
        ("later: 2026-09-01", date(2026, 9, 1)),
        ("later: 15.07.2026", date(2026, 7, 15)),
        ("Later, next year", date(2027, 1, 1)),
        ("später: im Oktober", date(2026, 10, 1)),
        ("plus tard : en septembre", date(2026, 9, 1)),
        ("más tarde: el próximo trimestre", date(2026, 7, 1)),
        ("più tardi: a settembre", date(2026, 9, 1)),
        ("later: na de zomer", date(2026, 9, 1)),
        ("mais tarde: em setembro", date(2026, 9, 1)),
    ],
)
def test_later(text: str, until: date) -> None:
    """A later carries its date: the 1st of a month or quarter, or a span from today."""
    command = parse(text)
    assert command is not None
    assert (command.action, command.until) == ("later", until)


@pytest.mark.parametrize(
    "text", ["later", "later: soon", "later: when they call back", "later: 2026-01-10"]
)
def test_later_needs_a_date_to_come(text: str) -> None:
    """A later without a date (or with a past one) is not understood."""
    assert parse(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n ",
        "Thanks",
        "I'll look at it tomorrow",
        "won't accept this one",  # "won't" is not "won"
        "acceptable",
        "lostness",
        "Hi,\nthanks\nwill check\n\naccept",  # only the first three lines are read
    ],
)
def test_not_understood(text: str) -> None:
    """Anything that does not open with a command word is None."""
    assert parse(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "Returned from holiday, will check",
        "return budget",
        "Lost the thread, what was this about?",
        "later today I'll call",
    ],
)
def test_return_lost_later_need_punctuation_before_the_argument(text: str) -> None:
    """Prose that opens with return, lost or later is no command."""
    assert parse(text) is None


def test_punctuated_return_lost_later() -> None:
    """A comma, a dot or a dash is punctuation enough; so is the end of the line."""
    assert parse("Lost. Too expensive") == Command(
        "lost", reason="Too expensive", category="budget"
    )
    assert parse("return, no need") == Command("return", reason="no need", category="need")
    assert parse("later -\nQ3") == Command("later", reason="Q3", until=date(2026, 7, 1))


@pytest.mark.parametrize(
    "text",
    [
        "On Mon, 18 May 2026 at 10:00, nurtured <alerts@acme.example> wrote:\n> accept",
        "-----Original Message-----\naccept",
        "-- \naccept",
        "Von: nurtured <alerts@acme.example>\nGesendet: Montag\naccept",
        "Le lun. 18 mai 2026 à 10:00, nurtured a écrit :\n> accepte",
    ],
)
def test_nothing_after_quoted_history_or_signature(text: str) -> None:
    """A command word below a quote header or a signature delimiter is not read."""
    assert parse(text) is None


def test_command_above_quoted_history_is_read() -> None:
    """The reply's own line is read; the quoted alert under it is not."""
    text = "won 5k\n\nOn Mon, 18 May 2026, nurtured <alerts@acme.example> wrote:\n> lost"
    assert parse(text) == Command("won", amount=Decimal("5000"))


def test_help_text_lists_every_form_and_parses_as_nothing() -> None:
    """The help names each form, and no line of it, quoted back, reads as a command."""
    for form in ("accept", "return:", "won", "lost:", "later:"):
        assert form in HELP_TEXT
    assert parse(HELP_TEXT) is None
    for line in HELP_TEXT.splitlines():
        assert parse(line) is None, line
