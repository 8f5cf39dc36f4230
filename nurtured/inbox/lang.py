"""Which of the inbox's languages a message is written in, and its calendar order. Pure.

The ``Content-Language`` header decides when it names a language (``en-US``, ``fr``);
otherwise the language whose common words the text uses most (EN, DE, FR, ES, IT, NL,
PT), "" when none stands out. Numeric dates are read day first (30/11) in every one
of them except American English, which writes the month first (11/30): ``en-US``, and
English text without a stated region, since most English out-of-office replies written
with slashes come from there; any other region (``en-GB``, ``en-IE``, ...) is day first.
"""

from __future__ import annotations

import re
from collections import Counter

from nurtured.inbox.dates import fold

__all__ = ["LANGUAGES", "language", "month_first"]

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")
# Frequent words of each language that the others rarely use (accents folded).
_WORDS = {
    "en": "the and i i'm you your will be back until my with for of to out office "
    "thank thanks please return regards away",
    "de": "ich bin und der die das nicht bis zum zur mit sie ihre vielen dank bitte wieder "
    "im urlaub grusse gruss freundlichen ihnen",
    "fr": "je suis le les et vous votre jusqu'au du au mon merci pour serai retour absent "
    "absente cordialement bureau",
    "es": "estoy el los las y hasta con gracias mi oficina volvere saludos fuera mensaje estare",
    "it": "sono gli fino con per grazie ufficio tornero saluti mio messaggio che non saro cordiali",
    "nl": "ik ben het en tot met van niet u uw bedankt kantoor terug groet groeten afwezig "
    "mijn voor",
    "pt": "estou o os ate com obrigado obrigada escritorio voltarei cumprimentos meu minha "
    "fora mensagem nao estarei",
}
_VOCABULARY = {word: lang for lang, words in _WORDS.items() for word in words.split()}
_AMBIGUOUS = {w for w in _VOCABULARY if sum(w in ws.split() for ws in _WORDS.values()) > 1}
_TAG = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))?")
_WORD = re.compile(r"[a-z']+")


def language(content_language: str, text: str) -> str:
    """``"en-us"``, ``"fr"``, ...: the header's first tag if it is one of ours, else the
    text's language (no region), else ""."""
    tag = _TAG.match(content_language.split(",")[0])
    if tag and tag.group(1).lower() in LANGUAGES:
        region = f"-{tag.group(2).lower()}" if tag.group(2) else ""
        return tag.group(1).lower() + region
    counts = Counter(
        _VOCABULARY[w]
        for w in _WORD.findall(fold(text[:5_000]))
        if w in _VOCABULARY and w not in _AMBIGUOUS
    )
    ranked = counts.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return ""
    return ranked[0][0]


def month_first(lang: str) -> bool:
    """Whether ``lang`` writes numeric dates month first (12/01 is December 1)."""
    base, _, region = lang.lower().partition("-")
    return base == "en" and region in ("", "us")
