"""Phrase patterns for the inbox's seven languages (EN, DE, FR, ES, IT, NL, PT). Pure.

Phrases are matched on folded text (``dates.fold``: lower case, accents removed).
"""

from __future__ import annotations

import re

__all__ = ["phrases"]

# What <mails> and <w> stand for in phrases: the words for "emails" in our languages, and
# one word of filler ("keine <w>{0,2}<mails> mehr": "keine weiteren E-Mails mehr").
_WORDS = {
    "<mails>": r"(?:e-?mails?|mails?|messages?|newsletters?|courriels?|correos?|mensagens?|"
    r"mensajes?|nachrichten|berichten|nieuwsbrieven|comunicazioni|comunicacoes)",
    "<w>": r"(?:[^\s.,;:!?]+ )",
}


def phrases(*groups: str) -> re.Pattern[str]:
    """One pattern from "|"-separated phrase lists (one per language), whole words only;
    a phrase is a regex, spaces included ("(la |mi )?suscripcion")."""
    parts = [group.strip().strip("|") for group in groups if group.strip()]
    pattern = "|".join(parts)
    for word, regex in _WORDS.items():
        pattern = pattern.replace(word, regex)
    return re.compile(r"(?<!\w)(?:" + pattern + r")(?!\w)")
