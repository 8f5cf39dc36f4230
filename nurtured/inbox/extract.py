"""The new text of a reply: without quoted history, forwarded messages and signature.

mail-parser-reply does the work for Gmail, Outlook, Apple Mail and similar styles in
the languages it knows (EN, DE, FR, ES, IT, NL and more); a few cuts are added for what
it does not know (Portuguese headers, forward markers) and for what it leaves behind
(">"-quoted lines, a "-- " signature). Pure.
"""

from __future__ import annotations

import logging
import re

from mailparser_reply import EmailReplyParser

__all__ = ["has_quote", "new_text"]

log = logging.getLogger(__name__)

LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]
_PARSER = EmailReplyParser(languages=LANGUAGES)
MAX_INPUT = 50_000  # characters; the new text of a reply is at the top

# Lines where quoted or forwarded history begins, in any of our languages.
_CUT = re.compile(
    r"^\s*(?:"
    r"(?:on|am|le|el|il|op|em|no dia) .{4,160}(?:wrote|schrieb|a ecrit|a écrit|escribió|"
    r"escribio|ha scritto|schreef|escreveu)\s*:?"
    r"|(?:from|von|de|da|van|de) ?:.*\n\s*(?:sent|gesendet|envoy[ée]|enviado|inviato|"
    r"verzonden|enviada|date|datum|data|fecha)\s?:"
    r"|-{2,} ?(?:original message|urspr[üu]ngliche nachricht|message d'origine|"
    r"mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original) ?-{2,}"
    r"|-{2,} ?(?:forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|"
    r"mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada) ?-{2,}"
    r"|(?:begin forwarded message|anfang der weitergeleiteten nachricht|"
    r"d[ée]but du message r[ée]exp[ée]di[ée]|inicio del mensaje reenviado|"
    r"inizio messaggio inoltrato|begin doorgestuurd bericht|"
    r"in[íi]cio da mensagem (?:re)?encaminhada)\s*:"
    r"|_{10,}"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)
_SENT_FROM = re.compile(
    r"^\s*(?:sent from my|von meinem|envoy[ée] de mon|enviado desde mi|inviato da|"
    r"verzonden vanaf mijn|enviado do meu)\b.*$",
    re.IGNORECASE | re.MULTILINE,
)


def has_quote(text: str) -> bool:
    """Whether ``text`` carries quoted or forwarded history."""
    return bool(_CUT.search(text)) or any(
        line.lstrip().startswith(">") for line in text.splitlines()
    )


def _cut(text: str) -> str:
    found = _CUT.search(text)
    if found:
        text = text[: found.start()]
    found = _SIGNATURE.search(text)
    if found:
        text = text[: found.start()]
    text = _SENT_FROM.sub("", text)
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()


def new_text(text: str) -> str:
    """What the sender wrote this time; "" for an empty message."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:MAX_INPUT]
    if not text.strip():
        return ""
    try:
        reply = _PARSER.parse_reply(text)
    except Exception as exc:  # a library bug must not lose the reply: fall back to our cuts
        log.warning("reply extraction failed (%r); using the plain cut", exc)
        reply = None
    cut = _cut(reply if reply is not None else text)
    if not cut and reply is not None:  # the library cut everything: keep ours
        cut = _cut(text)
    if not cut:  # an inline answer below the quote header: what is not quoted
        cut = _unquoted(text)
    return cut


def _unquoted(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith(">") or _CUT.match(line):
            continue
        lines.append(line)
    return "\n".join(lines).strip()
