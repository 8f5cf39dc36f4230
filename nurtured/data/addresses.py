"""Pure: normalised addresses and domains, and what a suppression entry matches.

An address is matched by itself, by its salted hash (what an erased lead leaves) and by
its domain and every parent domain (a suppressed ``example.com`` covers
``mail.example.com``)."""

from __future__ import annotations

import hashlib

from email_validator import EmailNotValidError, validate_email


def normal_address(text: str) -> str:
    """The lower-cased address as nurtured stores it (an IDN domain in punycode);
    ValueError names what is wrong."""
    raw = text.strip()
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{raw!r} is not an email address: {exc}") from None
    if checked.ascii_email is None:
        raise ValueError(f"{raw!r}: the local part is not ASCII")
    return checked.ascii_email.lower()


def normal_domain(text: str) -> str:
    """``@Bücher.Example.`` -> ``xn--bcher-kva.example``; ValueError when it is no domain."""
    raw = text.strip().lstrip("@").strip(".").lower()
    try:
        ascii_name = raw.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(labels) or any(c in raw for c in " @/\\"):
        raise ValueError(f"{text!r} is not a domain like example.com")
    return ascii_name


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def parent_domains(domain: str) -> list[str]:
    """``a.b.example.com`` -> it, ``b.example.com``, ``example.com`` (never a lone TLD)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))]


def address_hash(address: str, salt: str) -> str:
    """The hex sha256 of salt and the normalised address: what an erased lead leaves, so
    intake recognises the person again without the address being kept."""
    return hashlib.sha256(f"{salt}:{address}".encode()).hexdigest()


def suppressed_by(
    address: str, salt: str, addresses: frozenset[str], domains: frozenset[str],
    hashes: frozenset[str],
) -> str | None:  # fmt: skip
    """Why ``address`` is suppressed ("address", "domain example.com", "erased"), or None."""
    if address in addresses:
        return "address"
    for domain in parent_domains(domain_of(address)):
        if domain in domains:
            return f"domain {domain}"
    if hashes and address_hash(address, salt) in hashes:
        return "erased"
    return None
