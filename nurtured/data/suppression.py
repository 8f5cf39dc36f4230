"""The suppression list: addresses, whole domains and erased leads' hashes that nothing
mails, whatever a stream, move, return to nurture or import says.

Entries come from config.toml (``[suppression] addresses / domains``) and from the
``suppression`` table (``nurtured suppress``, ``nurtured lead erase``). The send gate
(``nurtured.engine``) asks once per batch, intake once per chunk: one query each.
"""

from __future__ import annotations

import operator
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import reduce

from tortoise.expressions import Q

from nurtured.config_sections import Suppression as SuppressionSettings
from nurtured.data.addresses import (
    address_hash,
    domain_of,
    normal_address,
    normal_domain,
    parent_domains,
    suppressed_by,
)
from nurtured.models import Lead, Setting, Suppression, SuppressionKind

SALT_KEY = "suppression_salt"


async def install_salt() -> str:
    """This install's salt for address hashes, made once and kept in the database (so a
    restored backup still recognises erased people)."""
    row = await Setting.get_or_none(key=SALT_KEY)
    if row is None:
        await Setting.bulk_create([Setting(key=SALT_KEY, value=secrets.token_hex(16))],
                                  ignore_conflicts=True)  # fmt: skip
        row = await Setting.get(key=SALT_KEY)
    return row.value


@dataclass
class Gate:
    """Answers "which of these addresses are suppressed?" with one query."""

    settings: SuppressionSettings
    salt: str | None = None  # read once (a second query the first time only)

    async def check(self, addresses: Iterable[str]) -> dict[str, str]:
        """address -> why it is suppressed, for the suppressed ones among ``addresses``."""
        wanted = set(addresses)
        if not wanted:
            return {}
        if self.salt is None:
            self.salt = await install_salt()
        domains = {d for a in wanted for d in parent_domains(domain_of(a))}
        hashes = {address_hash(a, self.salt): a for a in wanted}
        rows = await Suppression.filter(
            Q(kind=SuppressionKind.ADDRESS, value__in=list(wanted))
            | Q(kind=SuppressionKind.DOMAIN, value__in=list(domains))
            | Q(kind=SuppressionKind.HASH, value__in=list(hashes))
        ).values_list("kind", "value")
        found: dict[SuppressionKind, set[str]] = {kind: set() for kind in SuppressionKind}
        for kind, value in rows:
            found[SuppressionKind(kind)].add(value)
        listed = frozenset(found[SuppressionKind.ADDRESS] | set(self.settings.addresses))
        blocked = frozenset(found[SuppressionKind.DOMAIN] | set(self.settings.domains))
        erased = frozenset(found[SuppressionKind.HASH])
        result = {}
        for address in wanted:
            why = suppressed_by(address, self.salt, listed, blocked, erased)
            if why is not None:
                result[address] = why
        return result

    async def leads(self, leads: Iterable[Lead]) -> dict[int, str]:
        """lead id -> why, for the suppressed ones."""
        by_address = {lead.email: lead.id for lead in leads}
        return {by_address[a]: why for a, why in (await self.check(by_address)).items()}


def parse_entry(text: str) -> tuple[SuppressionKind, str]:
    """``a@b.example`` is an address, ``b.example`` or ``@b.example`` a whole domain."""
    raw = text.strip()
    if "@" in raw.lstrip("@"):
        return SuppressionKind.ADDRESS, normal_address(raw)
    return SuppressionKind.DOMAIN, normal_domain(raw)


async def add(entries: Iterable[tuple[SuppressionKind, str]], now: datetime, *,
              reason: str = "") -> int:  # fmt: skip
    """Store entries (one statement); returns how many were new."""
    wanted = set(entries)
    if not wanted:
        return 0
    before = await Suppression.filter(_any(wanted)).count()
    await Suppression.bulk_create(
        [Suppression(kind=k, value=v, reason=reason[:200], created_at=now) for k, v in wanted],
        ignore_conflicts=True,
    )
    return len(wanted) - before


async def remove(kind: SuppressionKind, value: str) -> int:
    """Remove an entry; for an address its erased hash too. Returns rows removed."""
    pairs = {(kind, value)}
    if kind == SuppressionKind.ADDRESS:
        pairs.add((SuppressionKind.HASH, address_hash(value, await install_salt())))
    return await Suppression.filter(_any(pairs)).delete()


async def suppress_hashed(address: str, now: datetime, reason: str) -> None:
    """Keep only the salted hash of ``address`` (erasure): intake still recognises it."""
    digest = address_hash(address, await install_salt())
    await Suppression.filter(kind=SuppressionKind.ADDRESS, value=address).delete()
    await add([(SuppressionKind.HASH, digest)], now, reason=reason)


def _any(pairs: Iterable[tuple[SuppressionKind, str]]) -> Q:
    by_kind: dict[SuppressionKind, list[str]] = {}
    for kind, value in pairs:
        by_kind.setdefault(kind, []).append(value)
    return reduce(operator.or_, (Q(kind=k, value__in=v) for k, v in by_kind.items()))
