"""Fit rules and profile points applied to leads, in batches (a few statements per batch,
whatever its size): at intake, when a colleague engages, and by ``leads requalify``.

A lead that fails a rule with ``then = "disqualify"`` gets stage DISQUALIFIED and leaves
its stream (nothing more is mailed to it); one routed to a stream is enrolled or moved
there. Each is a FIT event (rule, then, cause) on its timeline. A disqualified lead that
now passes every rule is "requalified": stage NEW, for the entry rules to enroll.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.functions import Count, Sum

from nurtured.app import App
from nurtured.db import update_rows
from nurtured.enrollment import Changes, leave, received_content, settle
from nurtured.fit.companies import alias_keys, company_key
from nurtured.fit.rules import Person, Verdict, judge, make_person
from nurtured.fit.settings import DISQUALIFY
from nurtured.models import (
    CURRENT,
    Company,
    Enrollment,
    EventKind,
    Lead,
    LeadStage,
    LeadStatus,
    ScoreChange,
)
from nurtured.scheduler import place
from nurtured.scoring.profile import profile_points

log = logging.getLogger(__name__)

# Stages fit rules may change: sales' own stages (SQL, ACCEPTED, WON) are left alone.
JUDGED = (LeadStage.NEW, LeadStage.NURTURING, LeadStage.MQL, LeadStage.RETURNED,
          LeadStage.LOST, LeadStage.DISQUALIFIED)  # fmt: skip


@dataclass
class FitResult:
    checked: int = 0
    disqualified: dict[int, str] = field(default_factory=dict)  # lead id -> rule
    routed: dict[int, str] = field(default_factory=dict)  # lead id -> stream
    requalified: list[int] = field(default_factory=list)
    rescored: int = 0  # leads whose profile points changed
    by_rule: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rules = ", ".join(f"{k} {v}" for k, v in sorted(self.by_rule.items())) or "none"
        return (
            f"checked {self.checked}: disqualified {len(self.disqualified)}, "
            f"routed {len(self.routed)}, requalified {len(self.requalified)}, "
            f"profile points changed {self.rescored}; by rule: {rules}"
        )


async def _people(leads: Sequence[Lead], app: App) -> dict[int, Person]:
    company_ids = {lead.company_id for lead in leads if lead.company_id}
    companies = {c.id: c for c in await Company.filter(id__in=list(company_ids))}
    engaged: dict[int, int] = {}
    if company_ids:
        engaged = dict(
            await Lead.filter(company_id__in=list(company_ids), score_at__isnull=False)
            .annotate(n=Count("id"))
            .group_by("company_id")
            .values_list("company_id", "n")
        )
    keys = alias_keys(app.settings.companies.aliases)
    people = {}
    for lead in leads:
        company = companies.get(lead.company_id) if lead.company_id else None
        others = engaged.get(company.id, 0) - (lead.score_at is not None) if company else 0
        name = company.name if company else ""
        people[lead.id] = make_person(
            lead.email, title=lead.title, company=name,
            key=(company.key or company_key(name, keys)) if company else "",
            fields=lead.extra or {}, fit=app.settings.fit,
            company_size=company.size if company else None,
            company_industry=company.industry if company else None,
            colleagues=max(others, 0),
        )  # fmt: skip
    return people


async def rescore(
    leads: Sequence[Lead], app: App, now: datetime, people: Mapping[int, Person] | None = None
) -> int:
    """Bring each lead's profile points in line with [scoring.profile]: a ScoreChange per
    rule that changed; returns how many leads changed."""
    if not leads:
        return 0
    people = people or await _people(leads, app)
    held: dict[int, dict[str, int]] = defaultdict(dict)
    for lead_id, rule, total in (
        await ScoreChange.filter(lead_id__in=[lead.id for lead in leads], decays=False)
        .annotate(total=Sum("points"))
        .group_by("lead_id", "rule")
        .values_list("lead_id", "rule", "total")
    ):
        held[lead_id][rule] = int(total or 0)
    rows: list[ScoreChange] = []
    changed: list[Lead] = []
    for lead in leads:
        wanted = {p.rule: p for p in profile_points(people[lead.id], app.settings.scoring.profile)}
        before = held[lead.id]
        for rule in sorted(set(wanted) | set(before)):
            diff = (wanted[rule].points if rule in wanted else 0) - before.get(rule, 0)
            if diff:
                cause = wanted[rule].cause if rule in wanted else f"{rule}: no longer applies"
                rows.append(ScoreChange(lead_id=lead.id, at=now, rule=rule, points=diff,
                                        decays=False, cause=cause[:300]))  # fmt: skip
        total = sum(p.points for p in wanted.values())
        if total != lead.profile_score:
            lead.profile_score = total
            changed.append(lead)
    if rows:
        await ScoreChange.bulk_create(rows)
    if changed:
        await update_rows(Lead, changed, ["profile_score"])
    return len({r.lead_id for r in rows})


async def rescore_companies(company_ids: Collection[int], app: App, now: datetime) -> int:
    """``rescore`` every contact of these companies (one of them engaged: colleagues)."""
    if not company_ids or not app.settings.scoring.profile.colleagues:
        return 0
    return await rescore(await Lead.filter(company_id__in=list(company_ids)), app, now)


async def qualify(
    leads: Sequence[Lead], app: App, now: datetime, *, result: FitResult | None = None
) -> FitResult:
    """Rescore ``leads`` and apply the fit rules to those still with marketing."""
    result = result or FitResult()
    people = await _people(leads, app)
    result.rescored += await rescore(leads, app, now, people)
    judged = [lead for lead in leads if lead.status == LeadStatus.ACTIVE and lead.stage in JUDGED]
    result.checked += len(judged)
    verdicts: dict[int, Verdict] = {}
    for lead in judged:
        verdict = judge(people[lead.id], app.settings.fit.rules)
        if verdict is not None:
            verdicts[lead.id] = verdict
    ids = [lead.id for lead in judged]
    current = {e.lead_id: e for e in await Enrollment.filter(lead_id__in=ids, state__in=CURRENT)}
    routed = [
        lead for lead in judged if lead.id in verdicts and verdicts[lead.id].then != DISQUALIFY
    ]
    received = await received_content([lead.id for lead in routed]) if routed else {}
    changes = Changes()
    stages: dict[LeadStage, list[int]] = defaultdict(list)

    def stage(lead: Lead, to: LeadStage, cause: str) -> None:
        if lead.stage == to:
            return
        fields: dict[str, object] = {"from": str(lead.stage), "to": str(to), "cause": cause}
        changes.event(lead.id, EventKind.STAGE, now, **fields)  # type: ignore[arg-type]
        log.info("lead %s: stage %s -> %s (%s)", lead.email, lead.stage, to, cause)
        lead.stage = to
        stages[to].append(lead.id)

    for lead in judged:
        verdict = verdicts.get(lead.id)
        enrollment = current.get(lead.id)
        if verdict is None:
            if lead.stage == LeadStage.DISQUALIFIED:
                changes.event(lead.id, EventKind.FIT, now, rule=None, then="requalified",
                              cause="passes every fit rule")  # fmt: skip
                stage(lead, LeadStage.NEW, "requalified: passes every fit rule")
                result.requalified.append(lead.id)
            continue
        why = f"fit rule {verdict.rule}: {verdict.cause}"
        if verdict.then == DISQUALIFY:
            if lead.stage == LeadStage.DISQUALIFIED:
                continue
            if enrollment is not None:
                leave(enrollment, now, why, changes)
                changes.event(lead.id, EventKind.ENDED, now, stream_id=enrollment.stream_id,
                              reason=why)  # fmt: skip
            changes.event(lead.id, EventKind.FIT, now, rule=verdict.rule, then=verdict.then,
                          cause=verdict.cause)  # fmt: skip
            stage(lead, LeadStage.DISQUALIFIED, why)
            result.disqualified[lead.id] = verdict.rule
        else:
            target = app.catalog.streams[verdict.then]
            if enrollment is not None and enrollment.stream_id == target.id:
                if lead.stage == LeadStage.DISQUALIFIED:
                    stage(lead, LeadStage.NURTURING, why)
                continue
            if enrollment is None:
                enrollment = Enrollment(lead_id=lead.id, active_lead=lead.id,
                                        stream_id=target.id, entered_at=now,
                                        content_version=target.content_version)  # fmt: skip
                changes.created.append(enrollment)
                changes.event(lead.id, EventKind.ENROLLED, now, stream_id=target.id,
                              source=f"fit:{verdict.rule}")  # fmt: skip
            changes.event(lead.id, EventKind.FIT, now, stream_id=target.id, rule=verdict.rule,
                          then=verdict.then, cause=verdict.cause)  # fmt: skip
            placement = place(app.catalog, target.id, 0, received.get(lead.id, set()))
            settle(enrollment, placement, lead=lead, now=now, rules=app.rules, changes=changes,
                   reason=why)  # fmt: skip
            stage(lead, LeadStage.NURTURING, why)
            result.routed[lead.id] = target.id
        result.by_rule[verdict.rule] = result.by_rule.get(verdict.rule, 0) + 1
    await changes.save()
    for to, stage_ids in stages.items():
        await Lead.filter(id__in=stage_ids).update(stage=to)
    return result
