"""Lead intake: validate and normalise lead data, upsert leads in batches, enroll them.

Used by ``nurtured leads import`` (reading the CSV: ``nurtured.data.importing``) /
``leads add`` and by the HTTP intake API. Bad rows
never abort good ones: each comes back with its line and reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from email_validator import EmailNotValidError, validate_email

from nurtured.app import App
from nurtured.config_sections import Suppression
from nurtured.data.suppression import Gate
from nurtured.db import update_rows
from nurtured.enrollment import enroll_new, stop_lead
from nurtured.exceptions import LeadError
from nurtured.fit.apply import qualify, rescore
from nurtured.fit.store import resolve_companies
from nurtured.models import Company, Lead, LeadStage, LeadStatus
from nurtured.scheduler import SendRules
from nurtured.streams import Catalog
from nurtured.timing import parse_timezone

KNOWN_COLUMNS = (
    "email", "first_name", "last_name", "company", "title", "source", "interest",
    "interests", "timezone",
)  # fmt: skip
LIMITS = {"first_name": 100, "last_name": 100, "title": 200, "company": 200, "source": 100}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
CHUNK = 1000


@dataclass(frozen=True)
class LeadInput:
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    title: str = ""
    source: str = ""
    interests: tuple[str, ...] = ()
    timezone: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    enrolled: dict[str, int] = field(default_factory=dict)  # stream id -> leads
    to_sales: list[int] = field(default_factory=list)  # lead ids with a sales source
    suppressed: dict[str, str] = field(default_factory=dict)  # address -> why: not enrolled
    fit: list[tuple[str, str, str]] = field(default_factory=list)  # (email, rule, then)

    def summary(self) -> str:
        streams = ", ".join(f"{k} {v}" for k, v in sorted(self.enrolled.items())) or "none"
        sales = f"; to sales: {len(self.to_sales)}" if self.to_sales else ""
        held = f"; suppressed, not enrolled: {len(self.suppressed)}" if self.suppressed else ""
        out = sum(1 for _, _, then in self.fit if then == "disqualify")
        fit = f"; disqualified {out}, routed {len(self.fit) - out}" if self.fit else ""
        return (
            f"created {self.created}, updated {self.updated}, duplicates {self.duplicates}, "
            f"invalid {len(self.invalid)}; enrolled: {streams}{sales}{fit}{held}"
        )


UNSTORABLE = "contains a lone surrogate (not valid Unicode): it cannot be stored or mailed"


def storable(value: object) -> bool:
    """False for text with a lone surrogate (what a JSON escape like "\\ud800" or a
    non-UTF-8 command-line argument gives): no database stores it, no email carries it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    elif isinstance(value, list | tuple):
        return all(storable(item) for item in value)
    return True


def printable(name: str) -> str:
    """A field name fit to be shown, lone surrogates as backslash escapes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def clean_text(value: object, limit: int = 200) -> str:
    """Untrusted text as one plain line: control characters (CR, LF, NUL ...) become spaces."""
    text = unicodedata.normalize("NFC", str(value or ""))
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


NEEDS_SMTPUTF8 = (
    "the local part is not ASCII: this address needs SMTPUTF8, which nurtured does not send"
)


def normalise_email(value: str) -> str:
    """The lower-cased, checked address as it is sent: an internationalised domain in
    its ASCII (punycode) form, ``a@bücher.example`` -> ``a@xn--bcher-kva.example``.
    LeadError says why an address is unusable, such as a non-ASCII local part."""
    raw = str(value or "").strip()
    if not raw:
        raise LeadError("email: required")
    if not storable(raw):
        raise LeadError(f"email: {UNSTORABLE}")
    if _CONTROL.search(raw) or " " in raw:
        raise LeadError(f"email: {clean_text(raw)!r} contains spaces or control characters")
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise LeadError(f"email: {raw!r}: {exc}") from exc
    if checked.ascii_email is None:  # an IDN domain alone has one: punycode
        raise LeadError(f"email: {raw!r}: {NEEDS_SMTPUTF8}")
    return checked.ascii_email.lower()


def make_input(row: Mapping[str, object], *, source: str | None = None) -> LeadInput:
    """A checked LeadInput from loose fields (a CSV row, a form, the CLI)."""
    for key, value in row.items():
        if not storable(key) or not storable(value):
            raise LeadError(f"{printable(str(key))}: {UNSTORABLE}")
    email = normalise_email(str(row.get("email") or ""))
    tz = clean_text(row.get("timezone"), 64)
    if tz:
        try:
            parse_timezone(tz)
        except ValueError as exc:
            raise LeadError(f"timezone: {exc}") from exc
    raw_interests = row.get("interests") or row.get("interest") or ""
    if isinstance(raw_interests, str):
        items: Iterable[object] = re.split(r"[;,|]", raw_interests)
    elif isinstance(raw_interests, Iterable):
        items = raw_interests
    else:
        items = [raw_interests]
    interests = tuple(dict.fromkeys(t for t in (clean_text(i, 100).lower() for i in items) if t))
    extra = {
        clean_text(k, 64): clean_text(v, 1000)
        for k, v in row.items()
        if k and k not in KNOWN_COLUMNS and v not in (None, "")
    }
    return LeadInput(
        email=email,
        first_name=clean_text(row.get("first_name"), LIMITS["first_name"]),
        last_name=clean_text(row.get("last_name"), LIMITS["last_name"]),
        company=clean_text(row.get("company"), LIMITS["company"]),
        title=clean_text(row.get("title"), LIMITS["title"]),
        source=clean_text(source or row.get("source"), LIMITS["source"]).lower(),
        interests=interests,
        timezone=tz,
        extra=extra,
    )


async def upsert(
    inputs: Sequence[LeadInput],
    catalog: Catalog,
    rules: SendRules,
    now: datetime,
    report: ImportReport | None = None,
    *,
    enroll: bool = True,
    sales_sources: Collection[str] = (),
    suppression: Suppression | None = None,
    app: App | None = None,
) -> tuple[ImportReport, list[Lead]]:
    """Create or update leads by email in a few statements, then enroll them (unless
    ``enroll`` is false: a lead that goes straight to sales is not nurtured).

    A lead whose source is one of ``sales_sources`` (a consult or demo request) is never
    nurtured: it is given to sales (status "sales"; its id in ``report.to_sales``, for the
    caller to alert, which hands it off). A suppressed address (``nurtured.data.suppression``,
    the DB's list and ``suppression`` from config) is stored but neither routed nor enrolled:
    it is in ``report.suppressed``.

    With ``app``, companies are matched by name key, alias and domain (nurtured.fit.store)
    and the fit rules and profile points apply (nurtured.fit.apply): a disqualified lead
    is neither enrolled nor given to sales; a routed one is enrolled in its rule's stream."""
    report = report or ImportReport()
    latest: dict[str, LeadInput] = {}
    for item in inputs:
        if item.email in latest:
            report.duplicates += 1
        latest[item.email] = _merge(latest.get(item.email), item)
    if not latest:
        return report, []
    settings = app.settings if app else None
    companies = await resolve_companies(
        {email: item.company for email, item in latest.items()}, now,
        aliases=settings.companies.aliases if settings else {},
        fit=settings.fit if settings else None,
    )  # fmt: skip
    existing = {lead.email: lead for lead in await Lead.filter(email__in=list(latest))}
    new: list[Lead] = []
    changed: list[Lead] = []
    for email, item in latest.items():
        lead = existing.get(email)
        if lead is None:
            lead = Lead(email=email, created_at=now, interests=[], extra={})
            new.append(lead)
        else:
            changed.append(lead)
        _apply(lead, item, companies.get(email), now)
    if new:
        await Lead.bulk_create(new, ignore_conflicts=True)
    if changed:
        await update_rows(Lead, changed, UPDATE_FIELDS)
    report.created += len(new)
    report.updated += len(changed)
    leads = await Lead.filter(email__in=list(latest))
    if suppression is None and app is not None:
        suppression = app.settings.suppression
    blocked = await Gate(suppression or Suppression()).leads(leads)
    report.suppressed.update({lead.email: blocked[lead.id] for lead in leads if lead.id in blocked})
    held: set[int] = set(blocked)  # suppressed, or disqualified or routed by a fit rule
    if app is not None and not enroll:
        await rescore(leads, app, now)  # profile points; it is nobody's to nurture
    elif app is not None:
        fit = await qualify([lead for lead in leads if lead.id not in blocked], app, now)
        by_id = {lead.id: lead.email for lead in leads}
        report.fit += [(by_id[i], rule, "disqualify") for i, rule in fit.disqualified.items()]
        report.fit += [(by_id[i], "", stream) for i, stream in fit.routed.items()]
        held |= set(fit.disqualified) | set(fit.routed)
        for target in fit.routed.values():
            report.enrolled[target] = report.enrolled.get(target, 0) + 1
    wanted = {source.lower() for source in sales_sources}
    routed = [lead for lead in leads if wanted and lead.source.lower() in wanted
              and lead.id not in held]  # fmt: skip
    for lead in routed:
        if lead.status in (LeadStatus.ACTIVE, LeadStatus.REPLIED):
            await stop_lead(lead, LeadStatus.SALES, now, reason=f"sales request ({lead.source})")
            report.to_sales.append(lead.id)
    if not enroll:
        return report, leads
    nurtured = [lead for lead in leads if lead not in routed and lead.id not in held]
    enrolled = await enroll_new(nurtured, catalog, rules, now)
    for stream_id in enrolled.values():
        if stream_id:
            report.enrolled[stream_id] = report.enrolled.get(stream_id, 0) + 1
    ids = [lead_id for lead_id, stream_id in enrolled.items() if stream_id]
    if ids:  # the ENROLLED events say why
        await Lead.filter(id__in=ids, stage=LeadStage.NEW).update(stage=LeadStage.NURTURING)
    return report, leads


UPDATE_FIELDS = (
    "first_name", "last_name", "title", "company_id", "source", "interests", "timezone",
    "extra", "updated_at",
)  # fmt: skip


def _merge(old: LeadInput | None, new: LeadInput) -> LeadInput:
    """A later row wins field by field, but never blanks what an earlier one said."""
    if old is None:
        return new
    return LeadInput(
        email=new.email,
        first_name=new.first_name or old.first_name,
        last_name=new.last_name or old.last_name,
        company=new.company or old.company,
        title=new.title or old.title,
        source=new.source or old.source,
        interests=tuple(dict.fromkeys(old.interests + new.interests)),
        timezone=new.timezone or old.timezone,
        extra={**old.extra, **new.extra},
    )


def _apply(lead: Lead, item: LeadInput, company: Company | None, now: datetime) -> None:
    lead.first_name = item.first_name or lead.first_name
    lead.last_name = item.last_name or lead.last_name
    lead.title = item.title or lead.title
    if company is not None and (item.company or lead.company_id is None):
        lead.company_id = company.id  # a domain alone never changes a company named before
    lead.source = lead.source or item.source  # the first source is the lead type
    lead.interests = list(dict.fromkeys([*(lead.interests or []), *item.interests]))
    lead.timezone = item.timezone or lead.timezone
    lead.extra = {**(lead.extra or {}), **item.extra}
    lead.updated_at = now
