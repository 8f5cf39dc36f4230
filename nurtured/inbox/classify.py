"""What an inbound message is: reply, auto-reply, bounce, unsubscribe request or forward.

Pure: an ``Inbound`` (and ``now``, for return dates) in, a ``Classification`` out. The
order of the checks is the order of certainty:

0. complaint: an RFC 5965 feedback-loop report (``multipart/report;
   report-type=feedback-report``, as Yahoo and Microsoft send them): never a reply.
1. bounce: an RFC 3464 multipart/report DSN, or a non-standard one (a mailer-daemon
   sender with a bounce subject, or with a delay or full-mailbox notice whatever the
   subject, or a bounce subject with an SMTP status in the body). A notice that the
   mail system is still trying is soft. The most specific
   enhanced code counts (the Diagnostic-Code's 5.7.1 over a generic Status 5.0.0).
   Status 5.1.x (or a 5xx "user unknown") is hard; 5.7.x is a policy/reputation block,
   not a dead address; everything else is soft. A report on several recipients is
   judged by the lead's own (``for_recipient``, once the message is matched).
2. auto-reply: RFC 3834 Auto-Submitted, X-Autoreply/X-Autorespond,
   X-Auto-Response-Suppress, Precedence, a null Return-Path, an out-of-office subject,
   or an out-of-office sentence in a message that quotes nothing.
3. unsubscribe: a request in words in the new text (not the quoted email, whose footer
   says "unsubscribe" too), or a message to our List-Unsubscribe mailto address.
4. forward: a forward subject prefix or a forwarded-message marker.
5. otherwise a genuine reply.

Phrases are matched on folded text (lower case, accents removed), in EN, DE, FR, ES,
IT, NL and PT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from nurtured.inbox.dates import fold, return_date
from nurtured.inbox.extract import has_quote, new_text
from nurtured.inbox.lang import language, month_first
from nurtured.inbox.parse import Inbound
from nurtured.models import EventKind

__all__ = [
    "Bounce", "Classification", "classify", "feedback_type", "for_recipient", "most_specific",
]  # fmt: skip


# What <mails> and <w> stand for in phrases: the words for "emails" in our languages, and
# one word of filler ("keine <w>{0,2}<mails> mehr": "keine weiteren E-Mails mehr").
_WORDS = {
    "<mails>": r"(?:e-?mails?|mails?|messages?|newsletters?|courriels?|correos?|mensagens?|"
    r"mensajes?|nachrichten|berichten|nieuwsbrieven|comunicazioni|comunicacoes)",
    "<w>": r"(?:[^\s.,;:!?]+ )",
}


def _phrases(*groups: str) -> re.Pattern[str]:
    """One pattern from "|"-separated phrase lists (one per language), whole words only;
    a phrase is a regex, spaces included ("(la |mi )?suscripcion")."""
    parts = [group.strip().strip("|") for group in groups if group.strip()]
    pattern = "|".join(parts)
    for word, regex in _WORDS.items():
        pattern = pattern.replace(word, regex)
    return re.compile(r"(?<!\w)(?:" + pattern + r")(?!\w)")


_AUTO_SUBJECT = _phrases(
    "out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    "away from (the )?office|on vacation|on holiday|on leave|annual leave",
    "abwesenheitsnotiz|automatische antwort|abwesend|ausser haus|nicht im buro|"
    "abwesenheit|urlaubsbedingt|im urlaub",
    "reponse automatique|absence|absent du bureau|message d'absence|absent",
    "respuesta automatica|fuera de la oficina|fuera de oficina|ausente|de vacaciones",
    "risposta automatica|fuori ufficio|assente|in ferie",
    "automatisch antwoord|automatisch bericht|afwezig|niet aanwezig|buiten kantoor|"
    "met vakantie|afwezigheidsbericht",
    "resposta automatica|ausencia|fora do escritorio|de ferias|ausente",
)
_AUTO_BODY = _phrases(
    r"(i am|i'm|i will be|i'll be) (currently )?(out of (the )?office|away|on (annual )?leave|"
    r"on vacation|on holiday|travell?ing|out of the country)|limited access to (my )?e-?mail|"
    r"this is an automatic reply|this is an automated (reply|response)",
    r"ich bin (derzeit |zurzeit |momentan |vom .{0,20})?(bis .{0,40})?"
    r"(nicht im (buro|haus)|abwesend|im urlaub|ausser haus)|"
    r"befinde mich (derzeit |zurzeit )?(im urlaub|ausser haus)|"
    r"dies ist eine automatische antwort",
    r"je (suis|serai) (actuellement )?(absent|absente|en conges|en vacances)|"
    r"ceci est une reponse automatique",
    r"(estoy|estare|me encuentro) (actualmente )?(fuera de la oficina|fuera|ausente|"
    r"de vacaciones)|esta es una respuesta automatica",
    r"(sono|saro) (attualmente )?(fuori ufficio|assente|in ferie)|"
    r"questa e una risposta automatica",
    r"ik ben (momenteel |tot .{0,30})?(afwezig|niet aanwezig|met vakantie|"
    r"niet op kantoor)|ben ik (afwezig|niet aanwezig|met vakantie)|"
    r"dit is een automatisch (antwoord|bericht)",
    r"(estou|estarei|encontro-me|me encontro) (atualmente )?(fora do escritorio|ausente|"
    r"de ferias)|esta e uma resposta automatica",
)
_UNSUBSCRIBE = _phrases(
    r"unsubscribe|remove me|take me off|opt(-| )?(me )?out|"
    r"stop (e-?mailing|sending|contacting|writing to)|no (more|further) <mails>|"
    r"(do not|don't|dont) (contact|e-?mail|write to) me|"
    r"remove my (e-?mail|address|name)|take my (e-?mail|address|name) off|"
    r"(no longer|do not|don't|dont) (wish|want) to (receive|get) <w>{0,2}(<mails>|these|them)|"
    r"(do not|don't|dont) want (to (receive|get) )?any more <mails>|"
    r"delete (me|my (e-?mail|address)) from",
    r"abmelden|austragen|abbestellen|(entfernen|streichen|loschen) sie mich|"
    r"nehmen sie mich .{0,30}(raus|heraus)|keine weiteren <mails>|keine <w>{0,2}<mails> mehr|"
    r"aus (ihrem|dem) verteiler|nicht mehr (kontaktieren|anschreiben|zuschicken)",
    r"desabonner|desinscri(re|vez|ption)|desabonnement|retirez-moi|supprimez-moi|"
    r"ne (plus|pas) recevoir|ne (veux|souhaite|desire) plus (recevoir|etre contacte)|"
    r"arretez de m'envoyer|ne m'envoyez plus|"
    r"(retirer|supprimer|retirez|supprimez|enlevez|effacez) (mon adresse|mon e-?mail|"
    r"mon courriel|moi) (de|des) (votre|vos|la|cette) liste",
    r"darme de baja|dar de baja|denme de baja|darse de baja|no me envien mas|eliminenme|"
    r"quitenme|borrenme|saquenme|dejen de enviar(me)?|(cancelar|anular) (la |mi )?suscripcion|"
    r"no (quiero|deseo) (recibir|seguir recibiendo) <w>{0,2}(mas|<mails>)|"
    r"(eliminar|quitar|borrar|sacar)(me)? de (la|su|vuestra|esta) lista",
    r"disiscriv(i|imi|ermi|etemi)|disiscrizione|cancella(mi|rmi|temi)|rimuovetemi|rimuovermi|"
    r"toglietemi|toglimi|non (inviatemi|mandatemi|scrivetemi) piu|"
    r"annulla(re)? (l')?iscrizione|smettete di (inviarmi|scrivermi|mandarmi)|"
    r"non (voglio|desidero) (piu )?ricevere|"
    r"(rimuovere|togliere|cancellare) (il mio indirizzo|la mia (e-?mail|mail)|mi) dalla "
    r"(vostra |sua |mailing )?lista",
    r"afmelden|uitschrijven|verwijder (mij|me)|geen <w>{0,2}<mails> meer|stop met mailen|"
    r"haal (mij|me) <w>{0,2}(van|uit) (de|uw|jullie) (mailing)?lijst",
    r"descadastr(ar|e|em|o)|descadastre-me|cancelar (a |minha |a minha )?(inscricao|assinatura)|"
    r"remover-me|removam-me|remova-me|me (remova|remover|removam|tire|tirem|retire)|"
    r"parem de (me )?enviar|nao (quero|desejo) (mais )?receber|nao enviem mais|"
    r"(remover|retirar|tirar|tirem|tire|retirem|removam|remova)(-me)? (da|de) "
    r"(vossa |sua |minha )?lista",
)
_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|r|rif|res)\s*:\s*)*"
    r"(?:fwd?|fw|wg|tr|rv|i|enc|doorst|inoltro|reenv|weitergeleitet)\s*:",
    re.IGNORECASE,
)
_FORWARD_BODY = _phrases(
    r"-+ ?forwarded message ?-+|begin forwarded message:|forwarded message:",
    r"-+ ?weitergeleitete nachricht ?-+|anfang der weitergeleiteten nachricht:",
    r"-+ ?message transfere ?-+|debut du message reexpedie ?:|message transfere ?:",
    r"-+ ?mensaje reenviado ?-+|inicio del mensaje reenviado:",
    r"-+ ?messaggio inoltrato ?-+|inizio messaggio inoltrato:",
    r"-+ ?doorgestuurd bericht ?-+|begin doorgestuurd bericht:",
    r"-+ ?mensagem encaminhada ?-+|inicio da mensagem (re)?encaminhada:",
)
_BOUNCE_FROM = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|bounces?)@", re.IGNORECASE)
_BOUNCE_SUBJECT = _phrases(
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
_PENDING = _phrases(
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
_FULL = _phrases(
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
_DEAD = _phrases(
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


@dataclass(frozen=True)
class Classification:
    kind: EventKind  # REPLY, AUTO_REPLY, BOUNCE, UNSUBSCRIBE, FORWARD or COMPLAINT
    reason: str  # which rule decided, for logs and tests
    text: str = ""  # the new text, without quotes and signature
    until: datetime | None = None  # AUTO_REPLY: when the sender says they are back
    bounce: Bounce | None = None  # BOUNCE: the first failed recipient's (see for_recipient)
    bounces: tuple[Bounce, ...] = ()  # BOUNCE: one per recipient a DSN reports on


def for_recipient(cls: Classification, address: str) -> Classification:
    """``cls`` judged by the status of ``address`` (the lead the message was matched
    to) when the report names it among several recipients: another recipient's dead
    address says nothing about ours, and ours delivered is no bounce for our lead."""
    ours = [b for b in cls.bounces if b.about(address)]
    if not ours:
        return cls
    # Several about ours (an alias that forwards to more than one mailbox): the mildest,
    # since any copy that arrives (or may yet) proves the address alive.
    mildest = min(ours, key=lambda b: (not b.delivered, b.hard, b.policy, b.status))
    if mildest == cls.bounce:
        return cls
    return replace(cls, bounce=mildest, reason=f"{cls.reason}, recipient {address}")


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


def _auto_header(msg: Inbound) -> str | None:
    auto_submitted = msg.header("auto-submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if msg.header(name):
            return name
    suppress = msg.header("x-auto-response-suppress").lower()
    if any(word in suppress for word in ("all", "oof", "autoreply")):
        return "X-Auto-Response-Suppress"
    precedence = msg.header("precedence").lower()
    if precedence in ("auto_reply", "bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    if msg.header("return-path").strip() == "<>":
        return "null Return-Path"
    return None


def feedback_type(msg: Inbound) -> str | None:
    """An RFC 5965 (ARF) feedback report's Feedback-Type ("abuse", ...), else None."""
    if msg.report_type != "feedback-report" and "feedback-type" not in msg.feedback:
        return None
    return msg.feedback.get("feedback-type", "").strip().lower() or "abuse"


def classify(
    msg: Inbound, now: datetime, *, unsubscribe_addresses: frozenset[str] = frozenset()
) -> Classification:
    """Decide what ``msg`` is; ``now`` dates the return dates that omit a year."""
    complaint = feedback_type(msg)
    if complaint is not None:  # a mailbox provider's report, whatever its subject says
        return Classification(EventKind.COMPLAINT, f"feedback report: {complaint}")
    bounce = bounce_of(msg)
    if bounce is not None:
        why = "DSN" if msg.dsn else "non-standard bounce"
        return Classification(EventKind.BOUNCE, why, bounce=bounce, bounces=dsn_bounces(msg))

    text = new_text(msg.text)
    folded_subject = fold(msg.subject)
    folded_text = fold(text)
    sent = msg.date or now
    auto = _auto_header(msg)
    if auto is None and _AUTO_SUBJECT.search(folded_subject):
        auto = "out-of-office subject"
    if auto is None and _AUTO_BODY.search(folded_text) and not has_quote(msg.text):
        auto = "out-of-office text"
    if auto is not None:
        lang = language(msg.header("content-language"), f"{msg.subject}\n{text}")
        until = return_date(f"{msg.subject}\n{text}", sent, month_first=month_first(lang))
        return Classification(EventKind.AUTO_REPLY, auto, text=text, until=until)

    if unsubscribe_addresses & {r.lower() for r in msg.recipients}:
        return Classification(EventKind.UNSUBSCRIBE, "sent to the unsubscribe address", text)
    if _UNSUBSCRIBE.search(folded_text) or (
        not folded_text and _UNSUBSCRIBE.search(folded_subject)
    ):
        return Classification(EventKind.UNSUBSCRIBE, "asked in words", text)
    if _FORWARD_SUBJECT.match(msg.subject) or _FORWARD_BODY.search(fold(msg.text[:20_000])):
        return Classification(EventKind.FORWARD, "forwarded", text)
    return Classification(EventKind.REPLY, "reply", text)
