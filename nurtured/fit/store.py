"""Companies in the database: found by key (name and aliases) or by domain, created in
one statement when missing, so every contact of one company points at one row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tortoise.expressions import Q

from nurtured.db import update_rows
from nurtured.fit.companies import alias_keys, company_domain, company_key
from nurtured.fit.settings import Fit
from nurtured.models import Company


async def resolve_companies(
    wanted: Mapping[str, str],
    now: datetime,
    *,
    aliases: Mapping[str, str] = {},
    fit: Fit | None = None,
) -> dict[str, Company]:
    """email -> its Company, for ``wanted`` (email -> company name as given, maybe "").

    By the name's key (aliases applied) first, else by the address's domain (unless free
    mail); a missing one is created (named after the domain when no name was given, and
    renamed when a lead names it later). Emails with neither name nor domain are left out.
    """
    fit = fit or Fit()
    keys = alias_keys(aliases)
    plan: dict[str, tuple[str, str, str | None]] = {}  # email -> (name, key, domain)
    for email, name in wanted.items():
        domain = company_domain(email, fit.free_mail, fit.not_free_mail)
        key = company_key(name, keys) if name else ""
        if key or domain:
            plan[email] = (name if key else domain or "", key or domain or "", domain)
    if not plan:
        return {}
    all_keys = {key for _, key, _ in plan.values()}
    domains = {d for _, _, d in plan.values() if d}
    found = await Company.filter(Q(key__in=list(all_keys)) | Q(domain__in=list(domains)))
    by_key: dict[str, Company] = {c.key: c for c in found if c.key}
    by_domain: dict[str, Company] = {c.domain: c for c in found if c.domain}
    new: list[Company] = []
    touched: dict[int, Company] = {}
    out: dict[str, Company] = {}
    for email, (name, key, domain) in plan.items():
        company = by_key.get(key)
        if company is None and domain and domain in by_domain:
            candidate = by_domain[domain]
            if name == domain:  # no name given: the domain's company
                company = candidate
            elif candidate.key == candidate.domain:  # named after its domain: renamed
                candidate.name, candidate.key = name, key
                company = by_key[key] = candidate
                if candidate.id is not None:
                    touched[candidate.id] = candidate
            # else another company has that domain: this one is a company of its own
        if company is None:
            company = Company(name=name, key=key, created_at=now,
                              domain=None if domain in by_domain else domain)  # fmt: skip
            new.append(company)
            by_key[key] = company
            if company.domain:
                by_domain[company.domain] = company
        elif company.domain is None and domain and domain not in by_domain:
            company.domain = domain
            by_domain[domain] = company
            if company.id is not None:
                touched[company.id] = company
        out[email] = company
    if touched:
        await update_rows(Company, list(touched.values()), ["name", "key", "domain"])
    if new:
        await Company.bulk_create(new, ignore_conflicts=True)
        stored = {c.name: c for c in await Company.filter(name__in=[c.name for c in new])}
        out = {email: stored.get(c.name, c) if c.id is None else c for email, c in out.items()}
    return {email: c for email, c in out.items() if c.id is not None}
