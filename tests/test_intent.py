"""What a lead's reply means, in seven languages, with a literal today (no clock)."""

from __future__ import annotations

from datetime import date

import pytest

from nurtured.inbox.intent import Intent, classify_intent

TODAY = date(2026, 5, 20)  # a Wednesday in Q2
SENDER = "max.muster@acme.example"


def kind(text: str, language: str | None = None) -> str:
    return classify_intent(text, language, TODAY, SENDER).kind


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Thanks, this looks good. Can we set up a call next Tuesday?", "en"),
        ("Please send me a quote for 50 seats.", "en"),
        ("Let's talk. I'm free Thursday afternoon.", "en"),
        ("Yes please!", "en"),
        ("Sehr interessant, gerne ein Termin nächste Woche.", "de"),
        ("Was kostet das für 20 Nutzer? Schicken Sie mir ein Angebot.", "de"),
        ("Bitte keine Anrufe, aber schicken Sie mir gerne Unterlagen.", "de"),
        ("Bonjour, je serais ravi d'avoir un appel avec vous jeudi.", "fr"),
        ("Pouvez-vous m'envoyer un devis ?", "fr"),
        ("Hola, ¿podemos agendar una demo la semana que viene?", "es"),
        ("Me interesa, envíeme el presupuesto.", "es"),
        ("Buongiorno, possiamo fissare un appuntamento?", "it"),
        ("Mi può mandare un preventivo?", "it"),
        ("Klinkt interessant, kunnen we een afspraak maken?", "nl"),
        ("Kunt u mij een offerte sturen?", "nl"),
        ("Olá, podemos marcar uma reunião?", "pt"),
        ("Quanto custa a versão para 10 usuários?", "pt"),
    ],
)
def test_interested(text: str, language: str) -> None:
    """A call, a meeting, a demo, a quote or a price is interest, also asked as a question."""
    assert classify_intent(text, language, TODAY, SENDER) == Intent("interested")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Does it integrate with Salesforce?", "en"),
        ("How does the data import work", "en"),
        ("Funktioniert das auch mit SAP?", "de"),
        ("Wann ist das nächste Update geplant", "de"),
        ("Est-ce que vos serveurs sont en Europe ?", "fr"),
        ("¿Dónde están alojados los datos?", "es"),
        ("Dove sono ospitati i dati?", "it"),
        ("Hoe werkt de koppeling met Exact", "nl"),
        ("Onde ficam armazenados os dados?", "pt"),
    ],
)
def test_question(text: str, language: str) -> None:
    """A "?" or a question word without interest words is a question."""
    assert kind(text, language) == "question"


@pytest.mark.parametrize(
    ("text", "language", "until"),
    [
        ("Not now, maybe in March.", "en", date(2027, 3, 1)),
        ("Please get back to me next quarter.", "en", date(2026, 7, 1)),
        ("Busy until after the summer, let's see then.", "en", date(2026, 9, 1)),
        ("Try me again in 2 months.", "en", date(2026, 7, 20)),
        ("Im Moment nicht, melden Sie sich nächstes Jahr wieder.", "de", date(2027, 1, 1)),
        ("Bitte kommen Sie nach dem Sommer nochmal auf mich zu.", "de", date(2026, 9, 1)),
        ("Pas maintenant, recontactez-moi en septembre.", "fr", date(2026, 9, 1)),
        ("Plus tard, peut-être au prochain trimestre.", "fr", date(2026, 7, 1)),
        ("Ahora no, hablamos el próximo trimestre.", "es", date(2026, 7, 1)),
        ("Más adelante, quizás en octubre.", "es", date(2026, 10, 1)),
        ("Non ora, risentiamoci a settembre.", "it", date(2026, 9, 1)),
        ("Nu niet, neem over 3 maanden weer contact op.", "nl", date(2026, 8, 20)),
        ("Agora não, talvez em outubro.", "pt", date(2026, 10, 1)),
        ("Later please", "en", None),
        ("Plus tard.", "fr", None),
    ],
)
def test_later(text: str, language: str, until: date | None) -> None:
    """A deferral is later, dated by the first day of the month, quarter or season named."""
    assert classify_intent(text, language, TODAY, SENDER) == Intent("later", later_until=until)


@pytest.mark.parametrize(
    ("text", "language", "address", "name"),
    [
        (
            "I'm not the right person, talk to our CTO, cto@acme.example",
            "en",
            "cto@acme.example",
            None,
        ),
        (
            "Please contact my colleague Jane Doe <Jane.Doe@acme.example>.",
            "en",
            "jane.doe@acme.example",
            "Jane Doe",
        ),
        (
            "Bitte wenden Sie sich an Frau Anna Müller (anna.mueller@acme.example).",
            "de",
            "anna.mueller@acme.example",
            "Anna Müller",
        ),
        (
            "Contactez plutôt Marie Dupont, marie.dupont@acme.example, qui s'occupe des achats.",
            "fr",
            "marie.dupont@acme.example",
            "Marie Dupont",
        ),
        (
            "Hable con Juan Pérez: juan.perez@acme.example",
            "es",
            "juan.perez@acme.example",
            "Juan Pérez",
        ),
        (
            "Si rivolga al collega Marco Rossi - marco.rossi@acme.example",
            "it",
            "marco.rossi@acme.example",
            "Marco Rossi",
        ),
        (
            "Neem contact op met Jan van der Berg via jan@acme.example",
            "nl",
            "jan@acme.example",
            "Jan van der Berg",
        ),
        (
            "Fale com a minha colega Ana da Silva (ana@acme.example).",
            "pt",
            "ana@acme.example",
            "Ana da Silva",
        ),
    ],
)
def test_referral_with_address(text: str, language: str, address: str, name: str | None) -> None:
    """A hand-off with an address names the address (lower-cased) and the name next to it."""
    assert classify_intent(text, language, TODAY, SENDER) == Intent(
        "referral", referral=address, referral_name=name
    )


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Please contact my colleague Jane Doe, she handles purchasing.", "Jane Doe"),
        ("Sprechen Sie bitte mit meinem Kollegen Peter Schmidt.", "Peter Schmidt"),
        ("Voyez avec notre directeur des achats.", None),
        ("Hable con nuestro responsable de compras.", None),
    ],
)
def test_referral_without_address(text: str, name: str | None) -> None:
    """A hand-off to a colleague or a role is a referral even without an address."""
    assert classify_intent(text, None, TODAY, SENDER) == Intent("referral", referral_name=name)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Not interested, thanks.", "en"),
        ("No thanks.", "en"),
        ("We don't need this.", "en"),
        ("Kein Interesse.", "de"),
        ("Nein danke, wir haben schon eine Lösung.", "de"),
        ("Pas intéressé, merci.", "fr"),
        ("Ça ne nous intéresse pas.", "fr"),
        ("No me interesa, gracias.", "es"),
        ("Non mi interessa.", "it"),
        ("Geen interesse, bedankt.", "nl"),
        ("Não tenho interesse.", "pt"),
    ],
)
def test_not_interested(text: str, language: str) -> None:
    """A no in any of the seven languages."""
    assert classify_intent(text, language, TODAY, SENDER) == Intent("not_interested")


@pytest.mark.parametrize(
    "text",
    [
        "Not interested in a demo.",
        "I'm not interested in your pricing, thanks.",
        "Kein Interesse an einem Termin.",
        "Pas intéressé par une démo.",
        "No me interesa una llamada.",
        "I don't want a call, please.",
    ],
)
def test_negation_beats_interest_words(text: str) -> None:
    """Not interested in a demo is a no, not interest in a demo."""
    assert kind(text) == "not_interested"


@pytest.mark.parametrize(
    ("text", "until"),
    [
        ("Not interested right now, maybe next year.", date(2027, 1, 1)),
        ("Aktuell kein Bedarf.", None),
        ("Pas intéressé pour le moment.", None),
        ("No me interesa por ahora, quizás en septiembre.", date(2026, 9, 1)),
    ],
)
def test_soft_no_is_later(text: str, until: date | None) -> None:
    """A no for now, or with a time to come back, is later."""
    assert classify_intent(text, None, TODAY, SENDER) == Intent("later", later_until=until)


def test_hard_no_stays_no_even_with_a_date() -> None:
    """Not interested at all is a no, even with a date in it."""
    assert kind("Not interested at all, not even next year.") == "not_interested"


def test_referral_with_address_beats_no() -> None:
    """A no that names whom to ask instead is a referral."""
    intent = classify_intent("No thanks from me, but talk to bob@acme.example", "en", TODAY, SENDER)
    assert intent == Intent("referral", referral="bob@acme.example")


def test_later_with_a_date_beats_question() -> None:
    """A question that names a time to come back is later."""
    intent = classify_intent("Could you get back to me in September?", "en", TODAY, SENDER)
    assert intent == Intent("later", later_until=date(2026, 9, 1))
    assert kind("Wie wäre es im Oktober?", "de") == "later"


def test_a_call_soon_is_interest_a_call_far_ahead_is_later() -> None:
    """A call within 30 days is interest; one further out waits for its date."""
    assert kind("Can we set up a call next week?") == "interested"
    assert kind("Happy to chat on 10 June.") == "interested"
    assert classify_intent("Let's set up a call in March.", "en", TODAY, SENDER) == Intent(
        "later", later_until=date(2027, 3, 1)
    )
    assert classify_intent("Happy to chat after the summer.", "en", TODAY, SENDER) == Intent(
        "later", later_until=date(2026, 9, 1)
    )


def test_asking_for_something_now_is_interest_whatever_the_date() -> None:
    """A quote or a price asked for now is interest even when the purchase is far off."""
    assert kind("Please send me a quote, we plan to buy in Q3.") == "interested"
    assert kind("Schicken Sie mir bitte ein Angebot, wir entscheiden im Herbst.") == "interested"


def test_signed_with_a_competitor_is_no() -> None:
    """Having chosen someone else is a no."""
    assert kind("Unfortunately, we just signed with a competitor.") == "not_interested"
    assert kind("We went with another vendor.") == "not_interested"


def test_hand_off_by_cc_or_send_to_my() -> None:
    """Copying a colleague in, or asking to send it to an assistant, is a referral."""
    assert classify_intent(
        "cc'ing my colleague Ann (ann@acme.example) who runs procurement", "en", TODAY, SENDER
    ) == Intent("referral", referral="ann@acme.example", referral_name="Ann")
    assert classify_intent(
        "Please send it to my assistant, lisa@acme.example", "en", TODAY, SENDER
    ) == Intent("referral", referral="lisa@acme.example")


def test_later_today_is_not_later() -> None:
    """Later this week or later today schedules, it does not defer."""
    assert kind("I'll call you later this week.") == "interested"
    assert kind("Let's talk later today.") == "interested"


def test_own_address_is_no_referral() -> None:
    """The sender's own address (any case) in the text names nobody else."""
    intent = classify_intent(
        "Contact details: Max.Muster@acme.example, tell our CTO too",
        "en",
        TODAY,
        "Max.Muster@ACME.example",
    )
    assert intent.kind == "referral"
    assert intent.referral is None


def test_address_without_hand_off_is_no_referral() -> None:
    """Sending a quote to billing@ is interest; contact me at ... is not a referral."""
    assert kind("Please send the quote to billing@acme.example") == "interested"
    assert kind("Contact me at my private address max@home.example, I'm interested.") == (
        "interested"
    )


def test_talk_to_you_soon_is_no_referral() -> None:
    """A hand-off phrase with nobody to hand off to is not a referral."""
    assert kind("Thanks, talk to you soon!") == "other"


def test_may_the_verb_is_no_date() -> None:
    """May the verb names no month."""
    assert kind("We may be interested, send more information.") == "interested"


def test_other() -> None:
    """A thank-you, an empty text or a remark is other."""
    assert kind("Thanks for the article.") == "other"
    assert kind("") == "other"
    assert kind("   \n ") == "other"
    assert kind("Danke, habe ich erhalten.", "de") == "other"
    assert kind("Wie besprochen anbei die Unterlagen.", "de") == "other"


def test_language_settles_ambiguous_month_words() -> None:
    """Portuguese "set" is September only for a Portuguese-speaking lead."""
    assert classify_intent("Agora não. Talvez em set.", "pt", TODAY, SENDER) == Intent(
        "later", later_until=date(2026, 9, 1)
    )
    assert classify_intent("Agora não. Talvez em set.", "en", TODAY, SENDER) == Intent("later")
