"""Which lead (and which of our deliveries) an inbound message is about.

In order of certainty, for each message:

1. ``thread``: In-Reply-To / References (for a bounce: the returned message's
   Message-ID, or one of ours quoted in its text) equal to a ``Delivery.message_id``;
2. ``token``: a delivery token in a plus-addressed recipient (``replies+TOKEN@domain``,
   ``bounces+TOKEN@domain``), in the plus-addressed Reply-To or Return-Path of a
   returned message, or in the left half of one of our Message-IDs;
3. ``from`` (for a bounce: the failed recipient; for a complaint: the reported
   recipient): a lead's address;
4. ``company``: someone at the domain of a lead we mailed (not a free-mail domain):
   the most recently mailed lead there, as a colleague writing in.

A whole batch costs at most four queries, whatever its size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import getaddresses
from functools import reduce
from operator import or_

from tortoise.expressions import Q

from nurtured.inbox.classify import Classification
from nurtured.inbox.parse import Inbound
from nurtured.models import Delivery, EventKind, Lead

__all__ = ["FREE_MAIL", "Match", "match_all"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
_FREE_MAIL = (
    "gmail.com googlemail.com yahoo.com yahoo.de yahoo.fr yahoo.es yahoo.it yahoo.co.uk "
    "hotmail.com hotmail.de hotmail.fr hotmail.es hotmail.it outlook.com outlook.de live.com "
    "msn.com aol.com icloud.com me.com mac.com gmx.de gmx.net gmx.com web.de t-online.de "
    "proton.me protonmail.com mail.com yandex.com mail.ru orange.fr free.fr laposte.net "
    "libero.it virgilio.it tiscali.it alice.it ziggo.nl kpnmail.nl hetnet.nl planet.nl "
    "telefonica.net terra.com.br uol.com.br bol.com.br sapo.pt zoho.com qq.com 163.com"
)
FREE_MAIL = frozenset(_FREE_MAIL.split())


@dataclass(frozen=True)
class Match:
    lead_id: int | None
    delivery_id: int | None
    via: str | None  # "thread", "token", "from", "recipient", "company"; None: unmatched
    lead_email: str = ""


UNMATCHED = Match(None, None, None)


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2].lower()


def _our_ids(msg: Inbound, domains: frozenset[str]) -> list[str]:
    """Message-IDs this message points at: its thread, then what a bounce returned."""
    ids = list(msg.references)
    returned = re.findall(r"<[^<>\s]+>", msg.returned.get("message-id", ""))
    ids.extend(returned)
    if msg.dsn or msg.is_report or not msg.from_addr or not ids:
        pattern = r"<[^<>\s]{1,100}@(?:" + "|".join(re.escape(d) for d in domains) + r")>"
        ids.extend(re.findall(pattern, msg.text[:200_000], re.IGNORECASE))
    return ids


def _returned_addresses(msg: Inbound) -> list[str]:
    """Our plus-addressed Reply-To / Return-Path in a returned message (a bounce's or a
    complaint's): they carry the delivery token."""
    found: list[str] = []
    for name in ("reply-to", "return-path"):
        found.extend(a for _, a in getaddresses([msg.returned.get(name, "")]) if "@" in a)
    return found


def _tokens(msg: Inbound, ids: Sequence[str], domains: frozenset[str]) -> list[str]:
    tokens = []
    for addr in [*msg.recipients, *_returned_addresses(msg)]:
        local, _, domain = addr.rpartition("@")
        if "+" in local and domain.lower() in domains:
            tokens.append(local.partition("+")[2])
    for mid in ids:
        left, _, domain = mid.strip("<>").partition("@")
        if domain.lower() in domains:
            tokens.append(left)
    return [t for t in tokens if _TOKEN.match(t)]


def _addresses(msg: Inbound, cls: Classification) -> list[str]:
    if cls.kind == EventKind.BOUNCE:
        found = [a for r in msg.dsn for a in (r.recipient, r.original) if a]
        if cls.bounce is not None and cls.bounce.recipient:
            found.append(cls.bounce.recipient)
        found.extend(re.findall(r"[^\s<>\"',;:]+@[^\s<>\"',;:]+", msg.returned.get("to", "")))
        return [a.lower() for a in found]
    if cls.kind == EventKind.COMPLAINT:  # sent by the mailbox provider, about our lead
        values = [msg.feedback.get("original-rcpt-to", ""), msg.returned.get("to", "")]
        return [a.lower() for _, a in getaddresses(values) if "@" in a]
    return [msg.from_addr] if msg.from_addr else []


async def match_all(
    items: Sequence[tuple[Inbound, Classification]], domains: frozenset[str]
) -> list[Match]:
    """A Match per item, same order. ``domains``: where our Message-IDs and replies go."""
    domains = frozenset(d.lower() for d in domains)
    ids = [_our_ids(msg, domains) for msg, _ in items]
    tokens = [_tokens(msg, i, domains) for (msg, _), i in zip(items, ids, strict=True)]
    addresses = [_addresses(msg, cls) for msg, cls in items]

    all_ids = {i for group in ids for i in group}
    all_tokens = {t for group in tokens for t in group}
    by_id: dict[str, tuple[int, int]] = {}
    by_token: dict[str, tuple[int, int]] = {}
    if all_ids or all_tokens:
        query = Delivery.filter(Q(message_id__in=list(all_ids)) | Q(token__in=list(all_tokens)))
        for delivery_id, lead_id, message_id, token in await query.values_list(
            "id", "lead_id", "message_id", "token"
        ):
            by_id[message_id] = (lead_id, delivery_id)
            by_token[token] = (lead_id, delivery_id)

    lead_ids = {v[0] for v in by_id.values()} | {v[0] for v in by_token.values()}
    all_addresses = {a for group in addresses for a in group}
    emails: dict[int, str] = {}
    by_address: dict[str, int] = {}
    if lead_ids or all_addresses:
        leads = Lead.filter(Q(id__in=list(lead_ids)) | Q(email__in=list(all_addresses)))
        for lead_id, address in await leads.values_list("id", "email"):
            emails[lead_id] = address
            by_address[address] = lead_id

    matches: list[Match] = []
    for n, (_, cls) in enumerate(items):
        found = next((by_id[i] for i in ids[n] if i in by_id), None)
        via = "thread" if found else None
        if found is None:
            found = next((by_token[t] for t in tokens[n] if t in by_token), None)
            via = "token" if found else None
        if found is not None:
            matches.append(Match(found[0], found[1], via, emails.get(found[0], "")))
            continue
        lead_id = next((by_address[a] for a in addresses[n] if a in by_address), None)
        if lead_id is not None:
            via = "recipient" if cls.kind in (EventKind.BOUNCE, EventKind.COMPLAINT) else "from"
            matches.append(Match(lead_id, None, via, emails[lead_id]))
        else:
            matches.append(UNMATCHED)
    return await _colleagues(items, matches, domains)


async def _colleagues(
    items: Sequence[tuple[Inbound, Classification]], matches: list[Match], ours: frozenset[str]
) -> list[Match]:
    """Unmatched people writing from a company domain we mail: the latest lead mailed there."""
    wanted: dict[int, str] = {}
    for n, ((msg, cls), found) in enumerate(zip(items, matches, strict=True)):
        domain = _domain(msg.from_addr)
        if (found.via is None and domain and domain not in FREE_MAIL and domain not in ours
                and cls.kind in (EventKind.REPLY, EventKind.FORWARD)):  # fmt: skip
            wanted[n] = domain
    if not wanted:
        return matches
    condition = reduce(or_, (Q(lead__email__endswith=f"@{d}") for d in set(wanted.values())))
    latest: dict[str, tuple[int, int, str]] = {}
    rows = (
        await Delivery.filter(condition)
        .order_by("-claimed_at", "-id")
        .limit(500)
        .values_list("id", "lead_id", "lead__email")
    )
    for delivery_id, lead_id, address in rows:
        latest.setdefault(_domain(address), (lead_id, delivery_id, address))
    result = list(matches)
    for n, domain in wanted.items():
        if domain in latest:
            lead_id, delivery_id, address = latest[domain]
            result[n] = Match(lead_id, delivery_id, "company", address)
    return result
