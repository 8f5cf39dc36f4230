"""Bounces: RFC 3464 delivery status notifications and the usual non-standard ones. Pure.

A DSN gives one Bounce per recipient it reports on (``dsn_bounces``); without one, a
mail system's notice is recognised by its sender and subject, or by a delay or
full-mailbox sentence whatever its subject. The most specific enhanced status code
counts (the Diagnostic-Code's 5.7.1 over a generic Status 5.0.0). 5.1.x (or a 5xx "user
unknown") is hard; 5.7.x is a policy or reputation block, not a dead address;
everything else, and any notice that the mail system is still trying, is soft.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nurtured.inbox.dates import fold
from nurtured.inbox.parse import Inbound
from nurtured.inbox.phrases import phrases

__all__ = ["Bounce", "bounce_of", "dsn_bounces", "most_specific"]

_BOUNCE_FROM = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|bounces?)@", re.IGNORECASE)
_BOUNCE_SUBJECT = phrases(
    r"undeliver(ed|able)|delivery status notification|delivery (has )?failed|"
    r"mail delivery (failed|failure|system)|returned mail|failure notice|"
    r"delivery failure|could not be delivered|non-?delivery",
    r"unzustellbar|nicht zustellbar|zustellung fehlgeschlagen|unzustellbare",
    r"non remis|echec de (la )?remise|echec de distribution|non distribuable",
    r"no se puede entregar|no entregado|error de entrega|devuelto",
    r"non recapitabile|mancato recapito|errore di consegna|impossibile recapitare",
    r"onbestelbaar|niet afgeleverd|bezorging mislukt",
    r"nao entregue|falha na entrega|nao foi possivel entregar|devolvida",
)
# A delivery that has not happened yet, in a mail system's own notice: the mail system is
# still trying, so the address is not dead (a soft bounce, whatever the subject says).
_PENDING = phrases(
    r"(delivery|message|mail) (has been |is |was )?(delayed|deferred)|delayed (delivery|mail)|"
    r"has not (yet )?been delivered|not (yet )?been delivered yet|still (undelivered|pending)|"
    r"will (keep|continue) (trying|to try)|will (be )?retr(y|ied)|(is|still) being retried|"
    r"delivery attempts will continue|warning (message )?only|do not need to resend",
    r"noch nicht (zugestellt|ausgeliefert)|zustellung (wurde |ist )?verzogert|verzogert|"
    r"(weiterhin|erneut) (zu )?versuch(en|t)|weitere zustellversuche|"
    r"nur eine warnung",
    r"n'a pas encore ete (remis|distribue|delivre)|pas encore ete (remis|distribue)|"
    r"(remise|distribution|livraison) (differee|retardee|en attente)|nouvelles tentatives|"
    r"(continuera|continuerons) (a|d')essayer|sera (a nouveau )?retente",
    r"(aun|todavia) no se ha (podido )?entregado|(entrega|envio) (retrasada|retrasado|demorada|"
    r"diferida)|seguira intentando(lo)?|se volvera a intentar|reintentara",
    r"non e ancora stato (recapitato|consegnato)|non (ancora|e stato ancora) (recapitato|"
    r"consegnato)|(consegna|recapito) (ritardata|ritardato|in ritardo|differita)|"
    r"continuera a (provare|tentare)|ritentera|nuovi tentativi",
    r"nog niet (afgeleverd|bezorgd)|(bezorging|aflevering) (is )?vertraagd|"
    r"blijft (het )?(proberen|opnieuw proberen)|wordt opnieuw geprobeerd",
    r"ainda nao (foi )?entregue|(entrega|envio) (atrasada|atrasado|adiada|adiado)|"
    r"continuara (a )?tentar|continuaremos (a )?tentar|tentara novamente|nova tentativa",
)
# A full mailbox: the address is fine, the mail system may or may not try again.
_FULL = phrases(
    r"(mailbox|inbox) (?:[^\s.;:]+ ){0,4}(is )?full|over (its |the )?quota|quota exceeded|"
    r"exceeded (the |his |her |its )?(storage|quota)",
    r"postfach (?:[^\s.;:]+ ){0,4}voll|speicherplatz (?:[^\s.;:]+ ){0,3}(voll|uberschritten)",
    r"boite (?:[^\s.;:]+ ){0,5}pleine|quota (est )?depasse",
    r"buzon (?:[^\s.;:]+ ){0,4}lleno|cuota (excedida|superada)",
    r"casella (?:[^\s.;:]+ ){0,4}piena|quota (superata|esaurita)",
    r"(mailbox|postvak|postbus) (?:[^\s.;:]+ ){0,4}vol",
    r"caixa (?:[^\s.;:]+ ){0,5}cheia|cota (excedida|esgotada)",
)

_STATUS = re.compile(r"(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"(?<!\d)([45]\d\d)[ -]")
_DEAD = phrases(
    r"user unknown|unknown user|no such user|does not exist|doesn't exist|"
    r"mailbox unavailable|mailbox not found|invalid recipient|recipient rejected|"
    r"address rejected|no mailbox|account (has been )?disabled|no longer (active|in use)|"
    r"unknown recipient|not a valid mailbox|host or domain name not found|nxdomain",
    r"unbekannt|existiert nicht|inconnu|n'existe pas|no existe|inesistente|"
    r"onbekend|bestaat niet|nao existe|desconhecido",
)
_DIAG = re.compile(r"^.*(?:\b[45]\d\d\b|[245]\.\d{1,3}\.\d{1,3}).*$", re.MULTILINE)


@dataclass(frozen=True)
class Bounce:
    hard: bool
    status: str  # "5.1.1", "" when none was found
    diagnostic: str
    recipient: str  # the failed address, lower-cased, "" when unknown
    policy: bool = False  # 5.7.x: blocked for policy or reputation, the address is fine
    original: str = ""  # the DSN's Original-Recipient, when it names one
    delivered: bool = False  # the report says this recipient got the message

    def about(self, address: str) -> bool:
        return bool(address) and address.lower() in (self.recipient, self.original)


def _severity(status: str, diagnostic: str) -> tuple[bool, bool]:
    """(hard, policy) for an enhanced status code and diagnostic text."""
    folded = fold(diagnostic)
    if status.startswith("5.7."):
        return False, True
    if status.startswith("5.1."):
        return True, False
    if status.startswith("5.") or re.search(r"(?<!\d)5\d\d(?!\d)", diagnostic):
        return bool(_DEAD.search(folded)), False
    return False, False


def most_specific(*texts: str) -> str:
    """The most specific enhanced status code (RFC 3463) in ``texts``, "" when none.

    Exim writes ``Status: 5.0.0`` in every report and says what happened in the
    Diagnostic-Code (``550 5.7.1 ...``): of the codes of the first one's class, the one
    with the most non-zero subject and detail wins; on a tie, the first one found.
    """
    codes = [m.groups() for text in texts for m in _STATUS.finditer(text)]
    if not codes:
        return ""
    same = [c for c in codes if c[0] == codes[0][0]]
    best = max(same, key=lambda c: (c[1] != "0", c[2] != "0"))
    return ".".join(best)


def dsn_bounces(msg: Inbound) -> tuple[Bounce, ...]:
    """A Bounce per recipient of an RFC 3464 report, successes (``delivered``) too."""
    found = []
    for rcpt in msg.dsn:
        delivered = rcpt.action in ("delivered", "relayed", "expanded")
        status = most_specific(rcpt.status, rcpt.diagnostic)
        status = status or ("2.0.0" if delivered else "5.0.0" if rcpt.action == "failed"
                            else "4.0.0")  # fmt: skip
        hard, policy = (False, False) if delivered else _severity(status, rcpt.diagnostic)
        found.append(Bounce(hard, status, rcpt.diagnostic, rcpt.recipient, policy,
                            rcpt.original, delivered))  # fmt: skip
    return tuple(found)


def bounce_of(msg: Inbound) -> Bounce | None:
    """The bounce in ``msg`` (a DSN's first failed recipient), or None when it is none."""
    for bounce in dsn_bounces(msg):
        if not bounce.delivered:
            return bounce
    if msg.is_report and msg.dsn:
        return None  # a report of success ("delivered", "relayed")
    from_bounce = bool(_BOUNCE_FROM.match(msg.from_addr)) or not msg.from_addr
    subject_bounce = bool(_BOUNCE_SUBJECT.search(fold(msg.subject)))
    folded = fold(msg.text[:20_000])
    pending = bool(_PENDING.search(folded))
    soft = pending or bool(_FULL.search(folded))
    if not (from_bounce and (subject_bounce or msg.is_report or soft)) and not (
        subject_bounce and _STATUS.search(msg.text)
    ):
        return None
    status = most_specific(msg.text)
    code = _SMTP_CODE.search(msg.text)
    if not status and code:
        status = f"{code.group(1)[0]}.0.0"
    line = _DIAG.search(msg.text)
    diagnostic = line.group(0).strip()[:500] if line else ""
    status = status or ("4.0.0" if soft else "5.0.0")
    hard, policy = _severity(status, f"{diagnostic}\n{msg.text[:5000]}")
    hard = hard and not pending  # still trying: whatever failed so far, it is not final
    recipient = ""
    for header in ("x-failed-recipients", "original-recipient", "final-recipient"):
        value = msg.header(header).rpartition(";")[2].strip().strip("<>").lower()
        if "@" in value:
            recipient = value
            break
    return Bounce(hard, status, diagnostic, recipient, policy)
