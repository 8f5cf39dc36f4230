"""Sales replies read as commands (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from nurtured.sales.commands import Command, parse_command, parse_when

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    "text",
    [
        "accept",
        "Accept!",
        "  ACCEPTED.",
        "> quoted\nAccept\n\nOn Mon, Nov 23 Bob wrote:\n> x",
        "akzeptiert",
        "J'accepte",
        "Acepto",
        "accetto",
        "geaccepteerd",
        "aceito",
        "\n\naccept\n-- \nJane Doe\nSales",
    ],
)
def test_accept_in_many_forms(text: str) -> None:
    assert parse_command(text, TODAY) == Command("accept")


def test_return_with_reason_category_and_reentry_date() -> None:
    cmd = parse_command("return: timing, next year", TODAY)
    assert cmd == Command(
        "return", reason="timing, next year", category="timing", until=date(2027, 1, 1)
    )
    cmd = parse_command("Return - no budget this quarter", TODAY)
    assert cmd is not None
    assert (cmd.action, cmd.category) == ("return", "budget")
    cmd = parse_command("zurück: kein Budget", TODAY)
    assert cmd is not None
    assert (cmd.action, cmd.category) == ("return", "budget")


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("won 12000", Decimal(12000), None),
        ("Won 12,000", Decimal(12000), None),
        ("won $12k", Decimal(12000), "USD"),
        ("gewonnen 12.000 EUR", Decimal(12000), "EUR"),
        ("won: 12000.50", Decimal("12000.50"), None),
        ("gagné 12.000,50 €", Decimal("12000.50"), "EUR"),
    ],
)
def test_won_reads_the_amount(text: str, amount: Decimal, currency: str | None) -> None:
    assert parse_command(text, TODAY) == Command("won", amount=amount, currency=currency)


def test_lost_and_later() -> None:
    lost = parse_command("lost: went with a competitor", TODAY)
    assert lost is not None
    assert (lost.action, lost.category) == ("lost", "fit")
    later = parse_command("later: March", TODAY)
    assert later == Command("later", reason="March", category="timing", until=date(2027, 3, 1))
    assert parse_command("plus tard: septembre", TODAY) is not None
    assert parse_command("later", TODAY) is None  # a time is needed


def test_anything_else_is_not_understood() -> None:
    for text in ["Thanks!", "who is this?", "", "> accept", "I accept nothing"[2:]]:
        assert parse_command(text, TODAY) is None, text


def test_when() -> None:
    assert parse_when("Q2", TODAY) == date(2027, 4, 1)
    assert parse_when("Q4", TODAY) == date(2027, 10, 1)  # Q4 2026 began already
    assert parse_when("in 3 months", TODAY) == date(2027, 2, 1)
    assert parse_when("2027-05-04", TODAY) == date(2027, 5, 4)
    assert parse_when("December", TODAY) == date(2026, 12, 1)
    assert parse_when("nothing", TODAY) is None
