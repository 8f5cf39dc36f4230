"""``nurtured handoff``, ``nurtured handoffs`` and ``nurtured lead set``: the sales loop
from the command line (the same actions as replies to an alert)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, cast

import click

from nurtured.app import App
from nurtured.cli_base import config_option, now_option, run_async, utcnow, with_app
from nurtured.exceptions import LeadError
from nurtured.queries import find_lead
from nurtured.sales.commands import Action, Command
from nurtured.sales.handoff import open_handoff_list, recheck_gate, work_calendar
from nurtured.sales.sla import sla_state

if TYPE_CHECKING:
    from nurtured.alerts import AlertResult
from nurtured.scheduler import lead_zone
from nurtured.when import later_date, shown


@click.command("handoff")
@config_option
@click.argument("action", type=click.Choice(["accept", "return", "won", "lost", "later"]))
@click.argument("email")
@click.option("--reason", help='Why (return, lost), e.g. "timing, next year".')
@click.option("--amount", help="The deal's amount (won), e.g. 12000.")
@click.option("--currency", default="", help="The amount's currency (won), e.g. EUR.")
@click.option("--until", "until", help='When it comes back (return, later): "March", "Q2", ISO.')
@click.option("--by", "actor", default="cli", help="Who acts (recorded on the event).")
@now_option
@run_async
@with_app
async def handoff(
    app: App, action: str, email: str, reason: str | None, amount: str | None,
    currency: str, until: str | None, actor: str, now: datetime | None,
) -> None:  # fmt: skip
    """Act on EMAIL's handoff: accept, return, won, lost or later."""
    from nurtured.sales.commands import _category
    from nurtured.sales.handoff import act

    at = now or utcnow()
    value = None
    if amount is not None:
        try:
            value = Decimal(amount.replace(",", ""))
        except InvalidOperation:
            raise click.BadParameter(
                f"{amount!r} is not an amount", param_hint="--amount"
            ) from None
    when = (
        later_date(until, at.date())
        if until
        else (later_date(reason, at.date()) if reason else None)
    )
    if action == "later" and when is None:
        raise click.BadParameter("later needs --until (a month, a quarter or a date)")
    command = Command(
        cast(Action, action),
        reason=reason,
        category=_category(reason, when) if reason else None,
        amount=value,
        currency=currency or None,
        until=when,
    )
    lead = await find_lead(email)
    click.echo(await act(app, lead, command, at, actor=actor, via="cli"))


@click.command("handoffs")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@now_option
@run_async
@with_app
async def handoffs(app: App, as_json: bool, now: datetime | None) -> None:
    """Open handoffs: owner, age and SLA state (ok, due_soon, overdue)."""
    at = now or utcnow()
    cal = work_calendar(app)
    remind = app.settings.handoff.remind_before
    rows, deadlines = [], []
    for h, lead in await open_handoff_list(at):
        rows.append({"email": lead.email, "owner": h.owner, "state": str(h.state),
                     "handed_at": h.handed_at.isoformat(), "deadline": h.deadline.isoformat(),
                     "age_hours": round((at - h.handed_at).total_seconds() / 3600, 1),
                     "sla": "met" if h.acted_at
                     else sla_state(h.handed_at, at, h.deadline, remind, cal)})  # fmt: skip
        deadlines.append(shown(h.deadline, lead_zone(lead.timezone or "", app.rules)))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no open handoffs")
    for row, deadline in zip(rows, deadlines, strict=True):
        click.echo(f"{row['email']:40} {row['owner']:30} {row['state']:9} "
                   f"{row['age_hours']:>7}h  {row['sla']:<8} due {deadline}")  # fmt: skip


@click.command("set")
@config_option
@click.argument("email")
@click.argument("fields", nargs=-1, required=True, metavar="FIELD=VALUE...")
@now_option
@run_async
@with_app
async def lead_set(app: App, email: str, fields: tuple[str, ...], now: datetime | None) -> None:
    """Set lead fields (e.g. budget=yes timing=Q2); hands an MQL off once the gate holds.

    email=NEW changes the address; a lead that already has NEW is merged in."""
    at = now or utcnow()
    addresses = [f.partition("=")[2] for f in fields if f.partition("=")[0].strip() == "email"]
    if addresses:  # a new address: the lead (and one that had it) keeps all history
        from nurtured.data.cli import set_address

        how = await set_address(app, email, addresses[-1], at)
        click.echo(f"{email} -> {addresses[-1]}: {how}")
        email = addresses[-1]
        fields = tuple(f for f in fields if f.partition("=")[0].strip() != "email")
        if not fields:
            return
    lead = await find_lead(email)
    extra = dict(lead.extra or {})
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LeadError(f"{item!r} is not FIELD=VALUE")
        extra[key.strip().lower()] = value.strip()
    lead.extra = extra
    lead.updated_at = at
    await lead.save(update_fields=["extra", "updated_at"])
    click.echo(f"{lead.email}: " + ", ".join(fields))
    lacks, owner = await recheck_gate(app, lead, at)
    if lacks:
        click.echo(f"still lacks: {', '.join(lacks)}")
    if owner is None:
        return
    await _alert(app, [lead.id], "sales_ready", at)
    click.echo(f"handed to {owner}")


async def _alert(app: App, lead_ids: list[int], reason: str, now: datetime) -> list[AlertResult]:
    """Send the alerts (which hand the leads off) over a transport opened for them."""
    from nurtured.alerts import AlertRequest, alert_many
    from nurtured.app import make_transport

    transport = make_transport(app.settings)
    await transport.start()
    try:
        return await alert_many(app, transport, [AlertRequest(i, reason) for i in lead_ids], now)
    finally:
        await transport.close()


async def alert_consults(app: App, lead_ids: list[int], now: datetime) -> None:
    """Alert sales of leads that came in with a sales source (which hands them off)."""
    if not lead_ids:
        return
    results = await _alert(app, lead_ids, "consult", now)
    failed = [r for r in results if r.error is not None]
    click.echo(f"handed to sales: {len(lead_ids) - len(failed)}"
               + (f" ({len(failed)} alerts not sent: see the log)" if failed else ""))  # fmt: skip


__all__ = ["alert_consults", "handoff", "handoffs", "lead_set"]
