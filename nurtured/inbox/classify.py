"""What an inbound message is: reply, auto-reply, bounce, unsubscribe request, forward
or complaint.

Pure: an ``Inbound`` (and ``now``, for return dates) in, a ``Classification`` out. The
order of the checks is the order of certainty:

0. complaint: an RFC 5965 feedback-loop report (``multipart/report;
   report-type=feedback-report``, as Yahoo and Microsoft send them): never a reply.
1. bounce (bounce.py): an RFC 3464 DSN, or a mail system's non-standard notice; hard,
   soft or a policy block. A report on several recipients is judged by the lead's own
   (``for_recipient``, once the message is matched).
2. auto-reply: RFC 3834 Auto-Submitted, X-Autoreply/X-Autorespond,
   X-Auto-Response-Suppress, Precedence, a null Return-Path, an out-of-office subject,
   or an out-of-office sentence in a message that quotes nothing; its return date is
   read in the message's language and calendar order (lang.py, dates.py).
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

from nurtured.inbox.bounce import Bounce, bounce_of, dsn_bounces, most_specific
from nurtured.inbox.dates import fold, return_date
from nurtured.inbox.extract import has_quote, new_text
from nurtured.inbox.lang import language, month_first
from nurtured.inbox.parse import Inbound
from nurtured.inbox.phrases import phrases
from nurtured.models import EventKind

__all__ = [
    "Bounce", "Classification", "bounce_of", "classify", "feedback_type", "for_recipient",
    "most_specific",
]  # fmt: skip


_AUTO_SUBJECT = phrases(
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
_AUTO_BODY = phrases(
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
_UNSUBSCRIBE = phrases(
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
_FORWARD_BODY = phrases(
    r"-+ ?forwarded message ?-+|begin forwarded message:|forwarded message:",
    r"-+ ?weitergeleitete nachricht ?-+|anfang der weitergeleiteten nachricht:",
    r"-+ ?message transfere ?-+|debut du message reexpedie ?:|message transfere ?:",
    r"-+ ?mensaje reenviado ?-+|inicio del mensaje reenviado:",
    r"-+ ?messaggio inoltrato ?-+|inizio messaggio inoltrato:",
    r"-+ ?doorgestuurd bericht ?-+|begin doorgestuurd bericht:",
    r"-+ ?mensagem encaminhada ?-+|inicio da mensagem (re)?encaminhada:",
)


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
