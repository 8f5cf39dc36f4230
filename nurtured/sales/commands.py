"""PURE: a salesperson's reply to a handoff alert, read as a command.

``parse_command(text, today)`` reads the first line of the new text that says anything
(quoted history, "On ... wrote:", "-----Original Message-----" and a "-- " signature cut
off) leniently: case, punctuation, the same words in the languages the inbox reads.
Forms: ``accept``; ``return: <reason>``; ``won <amount>``; ``lost: <reason>``;
``later: <when>``. None when nothing is understood (the caller answers with HELP_TEXT).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

Action = Literal["accept", "return", "won", "lost", "later"]

HELP_TEXT = """\
Reply with one of these on the first line:
  accept                   you take the lead
  return: <reason>         back to nurturing, e.g. "return: timing, next year"
  won <amount>             e.g. "won 12000" or "won 12,000 EUR"
  lost: <reason>           closed as lost, e.g. "lost: went with a competitor"
  later: <when>            e.g. "later: March", "later: Q3", "later: 2027-03-01"
"""

_WORDS: dict[Action, tuple[str, ...]] = {
    "accept": (
        "accept",
        "accepted",
        "accepting",
        "ok accept",
        "take it",
        "mine",
        "akzeptiert",
        "akzeptieren",
        "annehmen",
        "angenommen",
        "ubernehme",
        "uebernehme",
        "accepte",
        "j'accepte",
        "acepto",
        "aceptar",
        "aceptado",
        "accetto",
        "accettato",
        "accepteer",
        "geaccepteerd",
        "aceito",
        "aceitar",
    ),
    "return": (
        "return",
        "returned",
        "send back",
        "zuruck",
        "zurueck",
        "retour",
        "renvoyer",
        "devolver",
        "devuelto",
        "restituisci",
        "restituire",
        "terug",
        "terugsturen",
        "devolvido",
    ),
    "won": (
        "won",
        "win",
        "closed won",
        "gewonnen",
        "gagne",
        "ganado",
        "ganamos",
        "vinto",
        "ganho",
        "ganhamos",
    ),
    "lost": ("lost", "closed lost", "verloren", "perdu", "perdido", "perso"),
    "later": (
        "later",
        "spater",
        "spaeter",
        "plus tard",
        "mas tarde",
        "piu tardi",
        "mais tarde",
        "snooze",
    ),
}
_BY_WORD = sorted(((w, a) for a, ws in _WORDS.items() for w in ws), key=lambda p: -len(p[0]))

_CATEGORIES = {
    "budget": (
        "budget",
        "money",
        "price",
        "cost",
        "expensive",
        "geld",
        "preis",
        "teuer",
        "prix",
        "cher",
        "presupuesto",
        "precio",
        "caro",
        "costo",
        "prezzo",
        "prijs",
        "duur",
        "orcamento",
        "preco",
    ),
    "authority": (
        "authority",
        "decision",
        "decide",
        "boss",
        "not the buyer",
        "entscheid",
        "decideur",
        "decision",
        "decisore",
        "beslisser",
        "decisor",
    ),
    "need": (
        "need",
        "no use",
        "not relevant",
        "bedarf",
        "besoin",
        "necesidad",
        "bisogno",
        "behoefte",
        "necessidade",
    ),
    "timing": (
        "timing",
        "time",
        "later",
        "next year",
        "next quarter",
        "not now",
        "zeit",
        "nachstes jahr",
        "temps",
        "annee prochaine",
        "tiempo",
        "proximo ano",
        "tempo",
        "prossimo anno",
        "volgend jaar",
        "proximo ano",
    ),
    "fit": (
        "fit",
        "too small",
        "too big",
        "wrong size",
        "competitor",
        "student",
        "passt nicht",
        "concurrent",
        "competidor",
        "concorrente",
    ),
}

_MONTHS = {
    1: ("january", "jan", "januar", "janvier", "enero", "gennaio", "januari", "janeiro"),
    2: ("february", "feb", "februar", "fevrier", "febrero", "febbraio", "februari", "fevereiro"),
    3: ("march", "mar", "marz", "maerz", "mars", "marzo", "maart", "marco"),
    4: ("april", "apr", "avril", "abril", "aprile"),
    5: ("may", "mai", "mayo", "maggio", "mei", "maio"),
    6: ("june", "jun", "juni", "juin", "junio", "giugno", "junho"),
    7: ("july", "jul", "juli", "juillet", "julio", "luglio", "julho"),
    8: ("august", "aug", "aout", "agosto", "augustus"),
    9: ("september", "sep", "sept", "septembre", "septiembre", "settembre", "setembro"),
    10: ("october", "oct", "oktober", "octobre", "octubre", "ottobre", "outubro"),
    11: ("november", "nov", "novembre", "noviembre", "novembro"),
    12: ("december", "dec", "dezember", "decembre", "diciembre", "dicembre", "dezembro"),
}
_MONTH_OF = {name: n for n, names in _MONTHS.items() for name in names}
_NEXT_YEAR = (
    "next year",
    "nachstes jahr",
    "annee prochaine",
    "proximo ano",
    "prossimo anno",
    "volgend jaar",
    "l'annee prochaine",
)
_CUTS = re.compile(
    r"^(?:on .{0,200} wrote:|am .{0,200} schrieb .{0,100}:|le .{0,200} a ecrit\s*:|"
    r"-{2,}\s*(?:original message|ursprungliche nachricht|message d'origine)\s*-{2,}|-- ?)$"
)


@dataclass(frozen=True)
class Command:
    action: Action
    reason: str | None = None
    category: str | None = None  # budget, authority, need, timing, fit, other
    amount: Decimal | None = None
    currency: str | None = None
    until: date | None = None


def _fold(text: str) -> str:
    """Lower case without accents, typographic apostrophes straightened."""
    text = text.replace("\u2019", "'").lower()
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _first_line(text: str) -> str:
    for raw in text.replace("\r", "").split("\n"):
        line = raw.strip()
        if line.startswith(">"):
            continue
        if _CUTS.match(_fold(line)):
            break
        if line.strip(" .!-*_"):
            return line
    return ""


def _category(reason: str) -> str:
    folded = _fold(reason)
    for category, words in _CATEGORIES.items():
        if any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", folded) for w in words):
            return category
    return "other"


def parse_when(text: str, today: date) -> date | None:
    """ "March" (next 1 March), "Q2" (next 1 April), "next year" (1 January), "in 3
    months", "2027-03-01", "03/2027"; None when no time is named."""
    folded = _fold(text)
    if m := re.search(r"\b(\d{4})-(\d\d)-(\d\d)\b", folded):
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if m := re.search(r"\bq([1-4])\b(?:\s*(\d{4}))?", folded):
        month = 3 * (int(m[1]) - 1) + 1
        return _next_first(today, month, int(m[2]) if m[2] else None)
    if m := re.search(r"\bin\s+(\d{1,2})\s+(?:months?|monaten?|mois|meses|mesi|maanden)\b", folded):
        months = today.month - 1 + int(m[1])
        return date(today.year + months // 12, months % 12 + 1, 1)
    if m := re.search(r"\bin\s+(\d{1,2})\s+(?:weeks?|wochen|semaines|semanas|settimane)\b", folded):
        return today + timedelta(weeks=int(m[1]))
    for word in re.findall(r"[a-z]+", folded):
        if word in _MONTH_OF and (len(word) > 3 or word in ("may", "mai", "mei")):
            year = re.search(rf"{word}\s+(\d{{4}})", folded)
            return _next_first(today, _MONTH_OF[word], int(year[1]) if year else None)
    if any(phrase in folded for phrase in _NEXT_YEAR):
        return date(today.year + 1, 1, 1)
    return None


def _next_first(today: date, month: int, year: int | None) -> date:
    if year is not None:
        return date(year, month, 1)
    first = date(today.year, month, 1)
    return first if first > today else date(today.year + 1, month, 1)


def _amount(text: str) -> tuple[Decimal | None, str | None]:
    currency = None
    if m := re.search(r"(eur|usd|gbp|chf|€|\$|£)", text, re.IGNORECASE):
        currency = {"€": "EUR", "$": "USD", "£": "GBP"}.get(m[1], m[1].upper())
    m = re.search(r"(\d[\d.,' ]*)\s*([km])?\b", text, re.IGNORECASE)
    if m is None:
        return None, currency
    digits = m[1].strip().replace("'", "").replace(" ", "")
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", digits):  # 12,000 or 12.000
        digits = re.sub(r"[.,]", "", digits)
    elif re.fullmatch(r"\d{1,3}(?:,\d{3})+\.\d{1,2}", digits):  # 12,000.50
        digits = digits.replace(",", "")
    elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d{1,2}", digits):  # 12.000,50
        digits = digits.replace(".", "").replace(",", ".")
    else:
        digits = digits.replace(",", ".")
    try:
        value = Decimal(digits.rstrip("."))
    except InvalidOperation:
        return None, currency
    if m[2]:
        value *= 1000 if m[2].lower() == "k" else 1_000_000
    return value, currency


def parse_command(text: str, today: date) -> Command | None:
    line = _first_line(text)
    folded = _fold(line).strip()
    for word, action in _BY_WORD:
        if re.match(rf"{re.escape(word)}(?![a-z])", folded):
            rest = line[len(word) :].lstrip(" :;,.-!\t") if len(folded) >= len(word) else ""
            return _command(action, rest.strip(), today)
    return None


def _command(action: Action, rest: str, today: date) -> Command | None:
    if action == "accept":
        polite = _fold(rest).strip(" .!,")
        if polite and not re.fullmatch(
            r"(?:(?:thanks|thank you|thx|ok|danke|merci|gracias|"
            r"grazie|bedankt|obrigado|obrigada)[ .!,]*)+",
            polite,
        ):
            return None  # "accept nothing": not a plain accept
        return Command("accept")
    if action == "won":
        amount, currency = _amount(rest)
        return Command("won", amount=amount, currency=currency)
    if action == "later":
        until = parse_when(rest, today)
        if until is None:
            return None  # "later" needs a time
        return Command("later", reason=rest or None, category="timing", until=until)
    reason = rest or None
    category = _category(rest) if rest else "other"
    return Command(
        action, reason=reason, category=category, until=parse_when(rest, today) if rest else None
    )
