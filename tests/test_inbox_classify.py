"""The corpus (tests/corpus/, every kind in each language and client style) -> kind, text."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nurtured.inbox.classify import classify, for_recipient, most_specific
from nurtured.inbox.dates import return_date
from nurtured.inbox.extract import new_text
from nurtured.inbox.lang import language, month_first
from nurtured.inbox.parse import parse
from nurtured.models import EventKind

CORPUS = Path(__file__).parent / "corpus"
INDEX: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "index.toml").read_text())
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
UNSUBSCRIBE = frozenset({"unsubscribe@acme.example"})


def load(name: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes()


def test_corpus_covers_every_kind_in_every_language() -> None:
    """Replies, auto-replies, unsubscribes and forwards in all seven languages; bounces too."""
    for kind in ("reply", "auto_reply", "unsubscribe", "forward"):
        langs = {e["lang"] for e in INDEX.values() if e["kind"] == kind}
        assert langs == {"en", "de", "fr", "es", "it", "nl", "pt"}, kind
    assert sum(e["kind"] == "bounce" for e in INDEX.values()) >= 10


@pytest.mark.parametrize("name", sorted(INDEX))
def test_corpus_message_is_classified(name: str) -> None:
    expect = INDEX[name]
    result = classify(parse(load(name)), NOW, unsubscribe_addresses=UNSUBSCRIBE)
    if "recipient" in expect:  # a report on several recipients, matched to this lead
        result = for_recipient(result, expect["recipient"])
    assert result.kind == EventKind(expect["kind"]), result.reason
    if "text" in expect:  # the new text, without the quoted email (sign-offs may stay)
        assert result.text.startswith(expect["text"])
        assert "guide" not in result.text
        assert "Unsubscribe" not in result.text
    if "until" in expect:
        assert result.until is not None
        assert result.until.date().isoformat() == expect["until"]
    if expect["kind"] == "bounce":
        assert result.bounce is not None
        assert (result.bounce.hard, result.bounce.status) == (expect["hard"], expect["status"])


@pytest.mark.parametrize("name", ["bounce-policy", "bounce-exim-policy"])
def test_policy_block_is_not_a_dead_address(name: str) -> None:
    """5.7.1 is soft and marked as a policy block, also when only the Diagnostic-Code
    says so (Exim's Status is 5.0.0 in every report)."""
    result = classify(parse(load(name)), NOW)
    assert result.bounce is not None
    assert (result.bounce.hard, result.bounce.policy, result.bounce.status) == (
        False, True, "5.7.1"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("texts", "status"),
    [
        (("5.0.0", "smtp; 550 5.7.1 blocked"), "5.7.1"),
        (("5.1.0", "smtp; 550 5.1.1 unknown"), "5.1.1"),
        (("5.2.2", "smtp; 552 5.0.0 full"), "5.2.2"),  # the Status is the more specific
        (("4.0.0", "smtp; 550 5.1.1 unknown"), "4.0.0"),  # another class never wins
        (("", "Exim 4.94.2: 452 4.2.2 over quota"), "4.2.2"),  # a version is no code
        (("", "no code here"), ""),
    ],
)
def test_most_specific_status_code_wins(texts: tuple[str, str], status: str) -> None:
    assert most_specific(*texts) == status


def test_quoted_unsubscribe_footer_is_not_a_request() -> None:
    """Our own footer, quoted in a reply, does not unsubscribe anyone."""
    raw = load("reply-en-gmail")
    assert b"Unsubscribe" in raw
    assert classify(parse(raw), NOW).kind == EventKind.REPLY


UNSUBSCRIBE_REQUESTS = {
    "en": ["Please unsubscribe me.", "Take me off your mailing list.", "Opt me out.",
           "I no longer wish to receive these emails.", "I don't want any more emails."],
    "de": ["Bitte abmelden.", "Ich möchte keine E-Mails mehr erhalten.",
           "Bitte keine weiteren Mails.", "Streichen Sie mich von Ihrer Liste."],
    "fr": ["Merci de me désabonner.", "Je ne veux plus recevoir vos e-mails.",
           "Désinscrivez-moi s’il vous plaît.", "Supprimez mon adresse de votre liste."],
    "es": ["Por favor, darme de baja.", "No quiero recibir más correos.",
           "Deseo cancelar la suscripción.", "Bórrenme de la lista de correo."],
    "it": ["Cancellami dalla lista.", "Non voglio più ricevere queste email.",
           "Vi prego di cancellarmi.", "Toglietemi dalla vostra lista.",
           "Non desidero più ricevere comunicazioni."],
    "nl": ["Graag afmelden.", "Ik wil geen e-mails meer ontvangen.",
           "Haal mij van de mailinglijst.", "Stuur mij geen berichten meer."],
    "pt": ["Quero descadastrar o meu e-mail.", "Remover da lista, por favor.",
           "Não quero receber mais e-mails.", "Não quero mais receber.",
           "Cancelar a minha inscrição.", "Tirem-me da vossa lista.", "Me tire da lista."],
}  # fmt: skip


@pytest.mark.parametrize(
    ("lang", "request_text"),
    [(lang, text) for lang, texts in UNSUBSCRIBE_REQUESTS.items() for text in texts],
)
def test_unsubscribe_requests_in_every_language(lang: str, request_text: str) -> None:
    """In the new text of a reply that quotes us, in each language the README names."""
    raw = (
        "From: lead@example.com\r\nSubject: Re: intro\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{request_text}\r\n\r\nOn Mon, 23 Nov 2026, Acme <hello@acme.example> wrote:\r\n"
        "> Hello,\r\n> Unsubscribe: https://t.acme.example/u/xyz\r\n"
    ).encode()
    result = classify(parse(raw), NOW)
    assert result.kind == EventKind.UNSUBSCRIBE, (lang, result.reason)


@pytest.mark.parametrize(
    "text",
    [
        "I got no emails from you yet, can you resend?",
        "Wir haben keine Mails bekommen.",
        "Non voglio più aspettare: chiamatemi oggi.",
        "Não quero perder o webinar, obrigado.",
        "No quiero esperar más, llámenme.",
    ],
)
def test_words_near_an_unsubscribe_request_are_a_reply(text: str) -> None:
    raw = f"From: lead@example.com\r\nSubject: Re: intro\r\n\r\n{text}\r\n".encode()
    assert classify(parse(raw), NOW).kind == EventKind.REPLY


@pytest.mark.parametrize(
    "text",
    ["Ich bin derzeit nicht im Büro.", "Ik ben momenteel afwezig.", "I'm currently away."],
)
def test_out_of_office_sentences_with_optional_words(text: str) -> None:
    """Optional words inside a phrase ("derzeit ") keep their spaces in the pattern."""
    raw = f"From: lead@example.com\r\nSubject: intro\r\n\r\n{text}\r\n".encode()
    assert classify(parse(raw), NOW).kind == EventKind.AUTO_REPLY


def test_message_to_the_unsubscribe_address_is_an_unsubscribe() -> None:
    raw = b"From: a@example.com\r\nTo: unsubscribe@acme.example\r\nSubject: x\r\n\r\n\r\n"
    kind = classify(parse(raw), NOW, unsubscribe_addresses=UNSUBSCRIBE).kind
    assert kind == EventKind.UNSUBSCRIBE


def test_human_mentioning_holidays_with_a_quote_is_a_reply() -> None:
    """An out-of-office sentence in a real reply (it quotes us) does not make it automatic."""
    raw = (
        b"From: a@example.com\r\nSubject: Re: intro\r\n\r\nI'm on vacation next week, "
        b"but call me after.\r\n\r\n"
        b"On Mon, 23 Nov 2026, Acme <hello@acme.example> wrote:\r\n> Hi\r\n"
    )
    assert classify(parse(raw), NOW).kind == EventKind.REPLY


@pytest.mark.parametrize(
    ("text", "until"),
    [
        ("back on 30 November", "2026-12-01"),
        ("bis zum 28.11.2026", "2026-11-29"),
        ("ab dem 1.12. wieder da", "2026-12-02"),
        ("returning 12/15/2026", "2026-12-16"),
        ("back 2026-12-04", "2026-12-05"),
        ("out until 3 January", "2027-01-04"),
    ],
)
def test_return_dates(text: str, until: str) -> None:
    found = return_date(text, NOW)
    assert found is not None
    assert found.date().isoformat() == until


@pytest.mark.parametrize(
    ("text", "month_first", "until"),
    [
        ("jusqu'au 12/01", False, "2027-01-13"),  # day first, next 12 January
        ("until 12/01", True, "2026-12-02"),  # American: December 1
        ("until 12/01/2026", True, "2026-12-02"),
        ("back 25/12", True, "2026-12-26"),  # only day first makes a date
        ("bis 01.12.", True, "2026-12-02"),  # dotted dates are day first everywhere
        ("fino al 30/11", False, "2026-12-01"),
    ],
)
def test_numeric_dates_follow_the_writers_calendar(
    text: str, month_first: bool, until: str
) -> None:
    found = return_date(text, NOW, month_first=month_first)
    assert found is not None
    assert found.date().isoformat() == until


@pytest.mark.parametrize(
    ("header", "text", "lang", "first"),
    [
        ("en-US", "", "en-us", True),
        ("en-GB", "I am out of the office", "en-gb", False),
        ("", "I am out of the office until 12/01, thank you", "en", True),
        ("", "Je suis absente jusqu'au 12/01, merci", "fr", False),
        ("", "Ich bin bis 12/01 nicht im Büro, vielen Dank", "de", False),
        ("", "Estoy fuera de la oficina hasta el 12/01, gracias", "es", False),
        ("", "Sono fuori ufficio fino al 12/01, grazie", "it", False),
        ("", "Ik ben afwezig tot 12/01, bedankt", "nl", False),
        ("", "Estou fora do escritório até 12/01, obrigado", "pt", False),
        ("fr-CA, en", "I am away", "fr-ca", False),  # the header decides
        ("", "12/01", "", False),  # no words: day first, like six of our seven languages
    ],
)
def test_language_and_calendar_order(header: str, text: str, lang: str, first: bool) -> None:
    assert language(header, text) == lang
    assert month_first(lang) is first


def test_return_date_counts_from_the_message_date_not_the_clock() -> None:
    """Dated 28 December, "jusqu'au 03/01" is next January, whatever ``now`` says."""
    raw = (
        b"From: claire@exemple.fr\r\nSubject: Absence\r\nAuto-Submitted: auto-replied\r\n"
        b"Date: Mon, 28 Dec 2026 09:00:00 +0100\r\n\r\n"
        b"Je suis absente jusqu'au 03/01. Merci.\r\n"
    )
    result = classify(parse(raw), datetime(2026, 1, 2, tzinfo=UTC))
    assert result.until is not None
    assert result.until.date().isoformat() == "2027-01-04"


def test_no_date_or_far_future_gives_no_return_date() -> None:
    assert return_date("call me at 10.30", NOW) is None
    assert return_date("our 24/7 hotline, or 1/2 day later", NOW - timedelta(days=150)) is None
    assert return_date("call 10-12 people", NOW) is None
    assert return_date("back on 1 March 2029", NOW) is None


def test_extract_handles_portuguese_and_signatures() -> None:
    text = "Obrigado.\n\n-- \nJoão\n\nEm seg., 23 de nov. de 2026 às 10:00, Acme escreveu:\n> Olá\n"
    assert new_text(text) == "Obrigado."
    assert new_text("") == ""


def dsn(*blocks: tuple[str, str, str, str]) -> bytes:
    """A DSN with one block per (final recipient, original recipient, action, status)."""
    parts = [
        f"Final-Recipient: rfc822; {final}\r\n"
        + (f"Original-Recipient: rfc822; {original}\r\n" if original else "")
        + f"Action: {action}\r\nStatus: {status}\r\n"
        for final, original, action, status in blocks
    ]
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nSubject: Delivery Status Notification\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nReport.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n" + "\r\n".join(parts) + "\r\n--b--\r\n"
    ).encode()


def test_report_on_several_recipients_is_judged_by_ours() -> None:
    """Never by the first one listed: ours failed second is hard, ours delivered is none."""
    raw = dsn(("x@example.com", "", "delayed", "4.4.1"), ("ada@example.com", "", "failed", "5.1.1"))
    result = for_recipient(classify(parse(raw), NOW), "ada@example.com")
    assert result.bounce is not None
    assert (result.bounce.hard, result.bounce.status, result.bounce.recipient) == (
        True, "5.1.1", "ada@example.com"
    )  # fmt: skip
    raw = dsn(("x@example.com", "", "failed", "5.1.1"), ("ada@example.com", "", "delivered", ""))
    result = for_recipient(classify(parse(raw), NOW), "ADA@example.com")
    assert result.bounce is not None
    assert (result.bounce.delivered, result.bounce.hard, result.bounce.status) == (
        True, False, "2.0.0"
    )  # fmt: skip
    # Not named in the report (matched some other way): the first failed one, as before.
    result = for_recipient(classify(parse(raw), NOW), "bea@example.com")
    assert result.bounce is not None
    assert (result.bounce.recipient, result.bounce.hard) == ("x@example.com", True)


def test_alias_that_forwards_to_several_mailboxes_is_judged_by_the_mildest() -> None:
    """Ada's address forwards to a dead and a full mailbox: not a dead address."""
    raw = dsn(
        ("ada@old.example", "ada@example.com", "failed", "5.1.1"),
        ("ada@home.example", "ada@example.com", "delayed", "4.2.2"),
    )
    result = for_recipient(classify(parse(raw), NOW), "ada@example.com")
    assert result.bounce is not None
    assert (result.bounce.hard, result.bounce.status) == (False, "4.2.2")


def test_full_mailbox_notice_from_a_mail_system_is_a_soft_bounce() -> None:
    """No bounce subject, no status code, no "still trying": a full mailbox is soft."""
    raw = (
        "From: Postmaster <postmaster@beispiel.de>\r\nSubject: Benachrichtigung\r\n"
        "Auto-Submitted: auto-replied\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Das Postfach des Empfängers ist voll.\r\n"
    ).encode()
    result = classify(parse(raw), NOW)
    assert result.kind == EventKind.BOUNCE, result.reason
    assert result.bounce is not None
    assert (result.bounce.hard, result.bounce.status) == (False, "4.0.0")


def test_a_person_whose_mailbox_is_full_is_no_bounce() -> None:
    """The same words from a person (not a mail system) are a reply or an auto-reply."""
    raw = b"From: anna@beispiel.de\r\nSubject: Re: intro\r\n\r\nMein Postfach ist voll, ok.\r\n"
    assert classify(parse(raw), NOW).kind == EventKind.REPLY
    auto = raw.replace(b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:")
    assert classify(parse(auto), NOW).kind == EventKind.AUTO_REPLY
