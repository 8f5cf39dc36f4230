"""``nurtured leads requalify`` and ``nurtured companies``."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

import click

from nurtured.app import App
from nurtured.cli_base import config_option, now_option, run_async, utcnow, with_app
from nurtured.db import update_rows
from nurtured.enrollment import enroll_new
from nurtured.fit.apply import FitResult, qualify
from nurtured.fit.companies import alias_keys, company_key
from nurtured.models import Company, Lead, LeadStage
from nurtured.scoring.behaviour import decay_factor

BATCH = 500


async def rekey_companies(app: App) -> int:
    """Give every company the key its name has now (aliases may have changed) and merge
    companies that now share a key into the oldest; returns how many were merged."""
    keys = alias_keys(app.settings.companies.aliases)
    companies = await Company.all().order_by("id")
    survivor: dict[str, Company] = {}
    merged: dict[int, list[int]] = defaultdict(list)
    changed: list[Company] = []
    for company in companies:
        key = company_key(company.name, keys) or company.name.lower()
        if company.domain and company.key == company.domain:
            key = company.domain  # named after its domain
        if key in survivor:
            merged[survivor[key].id].append(company.id)
            if company.domain and not survivor[key].domain:
                survivor[key].domain = company.domain
                changed.append(survivor[key])
            continue
        survivor[key] = company
        if company.key != key:
            company.key = key
            changed.append(company)
    for keep, gone in merged.items():  # one statement per merged group: merges are few
        await Lead.filter(company_id__in=gone).update(company_id=keep)
        await Company.filter(id__in=gone).delete()
    alive = [c for c in changed if not any(c.id in g for g in merged.values())]
    if alive:
        await update_rows(Company, list({c.id: c for c in alive}.values()), ["key", "domain"])
    return sum(len(g) for g in merged.values())


async def requalify(app: App, now: datetime) -> tuple[FitResult, int]:
    """Companies re-keyed, then profile points and fit rules applied to every lead, a
    batch at a time; requalified leads are enrolled by the entry rules."""
    merged = await rekey_companies(app)
    result = FitResult()
    last = 0
    while True:
        leads = await Lead.filter(id__gt=last).order_by("id").limit(BATCH)
        if not leads:
            break
        last = leads[-1].id
        before = set(result.requalified)
        await qualify(leads, app, now, result=result)
        back = [lead for lead in leads if lead.id in set(result.requalified) - before]
        enrolled = await enroll_new(back, app.catalog, app.rules, now)
        ids = [lead_id for lead_id, stream in enrolled.items() if stream]
        if ids:
            await Lead.filter(id__in=ids, stage=LeadStage.NEW).update(stage=LeadStage.NURTURING)
    return result, merged


@click.command("requalify")
@config_option
@now_option
@run_async
@with_app
async def leads_requalify(app: App, now: datetime | None) -> None:
    """Apply the fit rules, profile points and company aliases again to every lead."""
    result, merged = await requalify(app, now or utcnow())
    click.echo(result.summary() + (f"; companies merged {merged}" if merged else ""))


async def company_table(app: App, now: datetime) -> list[dict[str, Any]]:
    """Every company with its contacts, how many engaged, and their scores together."""
    half_life = app.settings.scoring.half_life
    contacts: dict[int, list[tuple[str, float]]] = defaultdict(list)
    engaged: dict[int, int] = defaultdict(int)
    for company_id, email, score, value, at, profile in await Lead.filter(
        company_id__isnull=False
    ).values_list("company_id", "email", "score", "score_value", "score_at", "profile_score"):
        behaviour = (value if value is not None else score) * decay_factor(at, now, half_life)
        contacts[company_id].append((email, profile + behaviour))
        engaged[company_id] += at is not None
    rows: list[dict[str, Any]] = []
    for company in await Company.filter(id__in=list(contacts)):
        people = sorted(contacts[company.id], key=lambda c: -c[1])
        rows.append({
            "company": company.name, "key": company.key, "domain": company.domain,
            "contacts": len(people), "engaged": engaged[company.id],
            "score": round(sum(s for _, s in people)),
            "leads": [{"email": e, "score": round(s)} for e, s in people],
        })  # fmt: skip
    rows.sort(key=lambda r: (-r["score"], r["company"]))
    return rows


@click.command("companies")
@config_option
@click.option("--limit", type=int, default=50, show_default=True, help="Companies shown.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@now_option
@run_async
@with_app
async def companies(app: App, limit: int, as_json: bool, now: datetime | None) -> None:
    """Companies with their contacts and combined score (decay applied), highest first."""
    rows = (await company_table(app, now or utcnow()))[:limit]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['company']:<32} {row['domain'] or '-':<24} contacts {row['contacts']:>3}"
                   f"  engaged {row['engaged']:>3}  score {row['score']:>5}")  # fmt: skip
        for lead in row["leads"][:5]:
            click.echo(f"    {lead['email']:<40} {lead['score']:>5}")
    if not rows:
        click.echo("no companies yet")
