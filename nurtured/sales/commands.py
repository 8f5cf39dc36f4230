"""What a salesperson's reply to a handoff alert tells us to do. Pure: text and today in,
a ``Command`` (or None when the reply is not one) out.

The forms (``HELP_TEXT`` lists them for the "not understood" answer)::

    accept
    return: <reason>        reason category guessed; re-entry date when the reason names one
    won 12000               "won 12,000", "won $12k", "won 12.000 EUR", "won: 12000.50"
    lost: <reason>
    later: <when>           "later: March", "later: Q2", "later: in 3 months", "2026-09-01"

The command word opens one of the first three non-empty lines of the new text, in any
case, after quote markers, bullets or quotes. Return, lost and later need punctuation
(":", "-", ",", ".") before their argument, so that prose ("Returned from holiday")
is no command; a form that takes an argument and has none on its line takes the next.
Nothing after a line that starts quoted history ("On ... wrote:", "-----Original
Message-----") or a "-- " signature counts. The words are also read in DE, FR, ES,
IT, NL and PT ("übernehme", "j'accepte", "devolver:", "gewonnen", "perdu", "più tardi"
...). Dates are read by ``inbox.when.later_date``: "next year" is 1 January, "March"
the next 1 March, "Q2" the next 1 April, "in 3 months" today plus three months.

Amounts: "," or "." followed by exactly three digits groups thousands, otherwise it is
the decimal point (with both, the last one is); "k" is a thousand, "m" a million. The
currency is an ISO code (EUR, USD, GBP, CHF ...), from a code or "$", "€", "£" next to
the number, or None when none is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from nurtured.when import fold_chars, later_date

__all__ = ["HELP_TEXT", "Action", "Category", "Command", "parse_command"]

Action = Literal["accept", "return", "won", "lost", "later"]
Category = Literal["budget", "authority", "need", "timing", "fit", "other"]


@dataclass(frozen=True)
class Command:
    action: Action
    reason: str | None = None  # return, lost, later: the text after the command word
    category: Category | None = None  # return, lost: guessed from the reason's words
    amount: Decimal | None = None  # won
    currency: str | None = None  # won: ISO 4217 code, when given
    until: date | None = None  # later (always), return (when the reason names a date)


HELP_TEXT = """\
Reply with one of these on the first line of your answer:

  To take the lead:                 accept
  To hand it back to nurturing:     return: <reason>   (e.g. return: timing, next year)
  To record a won deal:             won <amount>       (e.g. won 12,000 EUR)
  To record a lost deal:            lost: <reason>
  To be reminded later:             later: <when>      (e.g. later: March, or Q2,
                                                        in 3 months, 2026-09-01)

A reason names budget, authority, need, timing or fit when it can. The same words
work in other languages, for example:

  German:      akzeptiert, zurück: <reason>, gewonnen, verloren, später: <when>
  French:      j'accepte, retour: <reason>, gagné, perdu, plus tard: <when>
  Spanish:     acepto, devolver: <reason>, ganado, perdido, más tarde: <when>
  Italian:     accetto, restituisci: <reason>, vinto, perso, più tardi: <when>
  Dutch:       geaccepteerd, terug: <reason>, gewonnen, verloren, later: <when>
  Portuguese:  aceito, devolver: <reason>, ganho, perdido, mais tarde: <when>
"""


def _words(*groups: str) -> str:
    words = [w for group in groups for w in group.split("|")]
    return "|".join(sorted(words, key=len, reverse=True))


_ACTIONS: dict[Action, str] = {
    "accept": _words(
        "accept|accepted|accepting|i accept|i'll take it|i will take it|taking it|ack",
        "akzeptiert|akzeptiere|akzeptieren|annehmen|angenommen|nehme an|ich nehme an|"
        "ubernehme|ich ubernehme|ubernommen|uebernehme",
        "accepte|acceptee|j'accepte|je prends",
        "acepto|aceptar|aceptado|aceptada|lo acepto",
        "accetto|accettare|accettato|accettata",
        "accepteer|accepteren|geaccepteerd|ik accepteer|aanvaard",
        "aceito|aceitar|aceitei|aceite",
    ),
    "return": _words(
        "return|returned|returning|send back|back to nurture|back to nurturing",
        "zuruck|zurueck|zuruckgeben|zuruckgegeben|zuruckschicken",
        "retour|retourner|renvoyer|renvoi|retourne",
        "devolver|devuelto|devuelvo|devolucion",
        "restituisci|restituire|restituito|rimanda",
        "terug|terugsturen|teruggeven|retourneren",
        "devolvido|devolvo|retornar",
    ),
    "won": _words(
        "won|win|closed won|deal won|gewonnen|gagne|gagnee|ganado|ganada|ganamos|vinto|vinta|"
        "ganho|ganhamos|ganhou"
    ),
    "lost": _words(
        "lost|closed lost|deal lost|verloren|perdu|perdue|perdido|perdida|perdemos|perso|persa"
    ),
    "later": _words(
        "later|snooze|postpone|defer|spater|spaeter|wiedervorlage|plus tard|mas tarde|"
        "piu tardi|mais tarde"
    ),
}
_COMMAND = re.compile(
    r"^[\s>|*_\"'`“”„«»‹›•·-]*(?:"
    + "|".join(f"(?P<{action}>{words})" for action, words in _ACTIONS.items())
    + r")(?![\w'])(?P<separator>[\s:;,.!=>*_\"'“”»–—-]*)"
)
_PUNCTUATION = re.compile(r"[:;,.!=–—-]")
_NEEDS_PUNCTUATION = frozenset({"return", "lost", "later"})
_CUT = re.compile(
    r"^\s*(?:(?:on|am|le|el|il|op|em|no dia) .{4,200}(?:wrote|schrieb|a ecrit|escribio|"
    r"ha scritto|schreef|escreveu)\s*:?\s*$"
    r"|-{2,}\s*(?:original message|ursprungliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|mensagem original|forwarded message|"
    r"weitergeleitete nachricht|message transfere)\s*-{2,}"
    r"|(?:from|von|de|da|van)\s?:\s.*@|_{10,}\s*$|--\s*$)"
)
_CATEGORIES: dict[Category, str] = {
    "budget": _words(
        "budget|budgets|money|price|pricing|expensive|too costly|cost|costs|afford|funds|"
        "funding|geld|teuer|kosten|preis|etat|argent|cher|prix|cout|couts|moyens|presupuesto|"
        "dinero|caro|precio|costo|coste|soldi|costoso|prezzo|costi|duur|prijs|orcamento|"
        "dinheiro|preco|custo|verba"
    ),
    "authority": _words(
        "authority|decision maker|decision-maker|not the decision|decides|decide|boss|"
        "approval|sign off|sign-off|gatekeeper|wrong person|wrong contact|entscheider|"
        "entscheidet|befugnis|chef|freigabe|genehmigung|falscher ansprechpartner|decideur|"
        "autorite|validation|pas le bon interlocuteur|patron|autoridad|decisor|jefe|"
        "aprobacion|autorita|decisore|capo|approvazione|beslisser|beslist|bevoegd|baas|"
        "goedkeuring|autoridade|chefe|aprovacao"
    ),
    "need": _words(
        "need|no need|needs|requirement|no use|not relevant|no interest|not interested|"
        "already have|existing solution|bedarf|braucht|brauchen|nicht relevant|kein interesse|"
        "besoin|pas pertinent|pas interesse|necesidad|necesita|no le interesa|ya tiene|"
        "bisogno|esigenza|non interessa|behoefte|nodig|geen interesse|necessidade|precisa|"
        "sem interesse"
    ),
    "timing": _words(
        "timing|time|too early|too soon|not now|not yet|wait|next year|next quarter|later|"
        "zeitpunkt|zu fruh|spater|nachstes jahr|noch nicht|jetzt nicht|moment|trop tot|"
        "plus tard|l'an prochain|annee prochaine|pas maintenant|momento|pronto|mas tarde|"
        "proximo ano|ahora no|tempistica|presto|piu tardi|prossimo anno|te vroeg|"
        "volgend jaar|nu niet|cedo|mais tarde"
    ),
    "fit": _words(
        "fit|no fit|not a fit|wrong size|too small|too big|competitor|student|researcher|"
        "not our target|wrong industry|not a match|freemail|spam|fake|passt nicht|zu klein|"
        "zu gross|wettbewerber|konkurrent|falsche branche|zielgruppe|ne correspond pas|"
        "trop petit|trop grand|concurrent|etudiant|cible|no encaja|demasiado pequen[oa]|"
        "competidor|estudiante|perfil|non adatto|troppo piccol[oa]|concorrente|studente|"
        "past niet|te klein|te groot|doelgroep|nao se encaixa|pequena demais|estudante"
    ),
    "other": _words(
        "other|sonstiges|andere|autre|otro|altro|anders|outro|went with|signed with|"
        "chose|lost to|bought from|entschieden fur|choisi|eligieron|scelto|gekozen voor|"
        "escolheram"
    ),
}
_CATEGORY = re.compile(
    r"(?<!\w)(?:"
    + "|".join(f"(?P<{category}>{words})" for category, words in _CATEGORIES.items())
    + r")(?!\w)"
)
_CATEGORY_OF: dict[str, Category] = {category: category for category in _CATEGORIES}

_CODES = "eur|usd|gbp|chf|jpy|cad|aud|nzd|sek|nok|dkk|pln|czk|huf|brl|mxn|inr|cny|sgd|hkd|zar"
_SYMBOLS = {"us$": "USD", "r$": "BRL", "c$": "CAD", "a$": "AUD", "$": "USD", "€": "EUR"}
_SYMBOLS |= {"£": "GBP", "¥": "JPY", "euro": "EUR", "euros": "EUR", "dollars": "USD"}
_SYMBOLS |= {"dollar": "USD", "pounds": "GBP", "franken": "CHF"}
_CURRENCY = rf"us\$|r\$|c\$|a\$|\$|€|£|¥|(?<![a-z])(?:{_CODES})(?![a-z])"
_MONEY = re.compile(
    rf"(?P<pre>{_CURRENCY})?\s*"
    r"(?P<num>\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?|\d(?:[\d.,]*\d)?)"
    r"(?:\s*(?P<suffix>k|tsd|thousand|mil|m|mio|mn|million|millions|millionen|millones|"
    r"milioni|miljoen|milhoes)(?![a-z]))?"
    rf"(?:\s*(?P<post>{_CURRENCY}|euros?|dollars?|pounds|franken)(?![a-z]))?"
)
_MULTIPLIERS = {"k": 1000, "tsd": 1000, "thousand": 1000, "mil": 1000}


def _number(raw: str) -> Decimal | None:
    digits = re.sub(r"[ \u00a0\u202f']", "", raw)
    if "." in digits and "," in digits:
        point = max(digits.rfind("."), digits.rfind(","))
        digits = digits[:point].replace(".", "").replace(",", "") + "." + digits[point + 1 :]
    elif "." in digits or "," in digits:
        separator = "." if "." in digits else ","
        head, _, tail = digits.rpartition(separator)
        if digits.count(separator) > 1 or len(tail) == 3:
            digits = digits.replace(separator, "")
        else:
            digits = f"{head}.{tail}"
    if not re.fullmatch(r"\d+(?:\.\d+)?", digits):
        return None
    return Decimal(digits)


def _money(text: str) -> tuple[Decimal | None, str | None]:
    """The first amount in ``text`` with a currency, else the first one; and its currency."""
    found: list[tuple[Decimal, str | None]] = []
    for m in _MONEY.finditer(fold_chars(text)):
        amount = _number(m.group("num"))
        if amount is None:
            continue
        suffix = m.group("suffix")
        if suffix is not None:
            amount *= _MULTIPLIERS.get(suffix, 1_000_000)
        symbol = m.group("pre") or m.group("post")
        currency = _SYMBOLS.get(symbol, symbol.upper()) if symbol else None
        if currency is not None:
            return amount, currency
        found.append((amount, None))
    return found[0] if found else (None, None)


def _category(reason: str, until: date | None) -> Category:
    """The first category the reason names; timing when it names only a date."""
    m = _CATEGORY.search(fold_chars(reason))
    if m is not None and m.lastgroup is not None:
        return _CATEGORY_OF[m.lastgroup]
    return "timing" if until is not None else "other"


def _lines(text: str) -> list[str]:
    """The first non-empty lines of the new text, quote markers and history cut off."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:200]:
        if _CUT.match(fold_chars(line)):
            break
        line = re.sub(r"^[\s>|]+", "", line).strip()
        if line:
            lines.append(line)
    return lines


def parse_command(text: str, today: date) -> Command | None:
    """The command in a salesperson's reply, or None when it is not understood."""
    lines = _lines(text[:20_000])
    for index, line in enumerate(lines[:3]):
        m = _COMMAND.match(fold_chars(line))
        if m is None:
            continue
        action = next(action for action in _ACTIONS if m.group(action))
        rest = line[m.end() :].strip()
        if action in _NEEDS_PUNCTUATION and rest and not _PUNCTUATION.search(m["separator"]):
            continue  # "Returned from holiday" is prose, "return: budget" a command
        if not rest and index + 1 < len(lines):
            rest = lines[index + 1]
        return _command(action, rest[:1000], today)
    return None


def _command(action: Action, rest: str, today: date) -> Command | None:
    if action == "accept":
        return Command("accept")
    if action == "won":
        amount, currency = _money(rest)
        return Command("won", amount=amount, currency=currency)
    until = later_date(rest, today) if action in ("return", "later") else None
    if action == "later":
        return Command("later", reason=rest, until=until) if until is not None else None
    if not rest:
        return Command(action)
    return Command(action, reason=rest, category=_category(rest, until), until=until)
