"""The ``nurtured`` command."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click

from nurtured import __version__
from nurtured.app import App, load_app
from nurtured.cli_base import config_option, now_option, run_async, utcnow, with_app
from nurtured.cockpit.cli import simulate
from nurtured.data import cli as data_cli
from nurtured.exceptions import ConfigError, LeadError
from nurtured.fit.commands import companies, leads_requalify
from nurtured.intake import make_input, upsert
from nurtured.models import LeadStage, LeadStatus
from nurtured.queries import find_lead, lead_timeline, status
from nurtured.report.command import report_cmd
from nurtured.sales.cli import alert_consults, handoff, handoffs, lead_set
from nurtured.splits.cli import splits_cmd


@click.group()
@click.version_option(__version__, prog_name="nurtured")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """nurtured: walks leads through email content streams until they are ready for sales."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, force: bool) -> None:
    """Create a working config.toml, example streams, templates and leads.csv in DIRECTORY."""
    scaffold = resources.files("nurtured") / "scaffold"
    written = skipped = 0
    with resources.as_file(scaffold) as source:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = path.relative_to(source)
            target = directory / relative
            if target.exists() and not force:
                click.echo(f"kept     {target} (exists; --force overwrites)")
                skipped += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            click.echo(f"created  {target}")
            written += 1
    click.echo(f"{written} files written, {skipped} kept. Next: cd {directory} && "
               "nurtured validate && nurtured leads import leads.csv && nurtured run")  # fmt: skip


@main.command()
@config_option
def validate(config_path: Path) -> None:
    """Check config, streams and templates (rendering each against a sample lead)."""
    try:
        app = load_app(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        click.echo(f"{len(exc.problems)} problem(s) found", err=True)
        raise SystemExit(1) from None
    steps = sum(len(s.steps) for s in app.catalog.streams.values())
    click.echo(f"ok: {len(app.catalog.streams)} streams, {steps} steps, "
               f"{len(app.catalog.template_names())} templates")  # fmt: skip


@main.group()
def leads() -> None:
    """Add, import and merge leads."""


@leads.command("add")
@config_option
@click.argument("email")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--company", default="")
@click.option("--title", default="")
@click.option("--source", default="")
@click.option("--interest", "interests", multiple=True, help="Repeatable.")
@click.option("--timezone", default="", help="IANA name, e.g. America/New_York.")
@now_option
@run_async
@with_app
async def leads_add(app: App, email: str, now: datetime | None, **fields: Any) -> None:
    """Add or update one lead and enroll it by the streams' entry rules."""
    try:
        item = make_input({"email": email, **fields})
    except LeadError as exc:
        raise click.ClickException(str(exc)) from None
    report, _ = await upsert([item], app.catalog, app.rules, now or utcnow(),
                             sales_sources=app.settings.intake.sales_sources,
                             suppression=app.settings.suppression, app=app)  # fmt: skip
    where = "to sales (a sales source)" if report.to_sales else (
        f"enrolled: {', '.join(report.enrolled) or 'no new stream'}")  # fmt: skip
    if report.suppressed:
        where = f"suppressed ({report.suppressed[item.email]}): not enrolled"
    click.echo(f"{item.email}: {'created' if report.created else 'updated'}; {where}")
    await alert_consults(app, report.to_sales, now or utcnow())


@main.group()
def lead() -> None:
    """Look at one lead."""


@lead.command("show")
@config_option
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@now_option
@run_async
@with_app
async def lead_show(app: App, email: str, as_json: bool, now: datetime | None) -> None:
    """A lead's profile and timeline, and its score as the sum of its causes."""
    data = await lead_timeline(await find_lead(email), now=now or utcnow(),
                               half_life=app.settings.scoring.half_life)  # fmt: skip
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['email']}  {data['name']}  {data['title']}  {data['company'] or ''}")
    interests = ", ".join(data["interests"]) or "-"
    click.echo(
        f"stage {data['stage']}, status {data['status']}, score {data['score']}, "
        f"source {data['source'] or '-'}, "
        f"interests {interests}, tz {data['timezone'] or '-'}"
    )
    click.echo(f"score {data['score']} = the sum of its causes, as of {data['score_at']}:")
    for part in data["score_causes"]:
        how = (f"{part['given']:+d} given in {part['changes']}, decaying" if part["decays"]
               else "profile, no decay")  # fmt: skip
        click.echo(f"  {part['now']:>+5d}  {part['rule']:<16} {how}; {part['cause']}")
    click.echo("enrollments:")
    for e in data["enrollments"]:
        due = f" next {e['next_due_at']}" if e["next_due_at"] else ""
        why = f" ({e['reason']})" if e["reason"] else ""
        click.echo(f"  {e['stream']:<20} {e['state']:<8} step {e['position']}{due}{why}")
    click.echo("timeline:")
    for item in data["timeline"]:
        extra = {k: v for k, v in item.items() if k not in ("at", "what", "stream") and v}
        details = " ".join(f"{k}={v}" for k, v in extra.items())
        click.echo(f"  {item['at']}  {item['what']:<14} {item['stream'] or '':<16} {details}")


@main.command()
@config_option
@click.argument("stream_id", metavar="STREAM")
@click.argument("step", metavar="STEP")
@click.option("--lead", "lead_email", help="Render for this lead (default: a sample lead).")
@click.option("--raw", is_flag=True, help="Print the whole MIME message.")
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help='Send it once to ADDRESS as a test ("[TEST] " subject, nothing recorded).',
)
@click.option("--variant", "variant", metavar="ID", help="Which variant of a split-test step.")
def preview(
    config_path: Path, stream_id: str, step: str, lead_email: str | None, raw: bool,
    to: str | None, variant: str | None,
) -> None:  # fmt: skip
    """Show STEP (a content id, or its index as in steps[N]) of STREAM as it would be
    sent, or send it to yourself with --to."""
    from nurtured.preview import render_preview

    run_async(render_preview)(config_path, stream_id, step, lead_email, raw, click.echo,
                              to=to, variant_name=variant)  # fmt: skip


@main.command()
@config_option
@click.argument("email")
@click.argument("stream_id", metavar="STREAM")
@now_option
@run_async
@with_app
async def move(app: App, email: str, stream_id: str, now: datetime | None) -> None:
    """Move a lead to STREAM; it keeps its history and gets no content twice."""
    from nurtured.enrollment import move_lead

    lead_row = await find_lead(email)
    if lead_row.status == LeadStatus.SALES:
        raise LeadError(f"{email} is with sales: `nurtured handoff return {email} --reason ...` "
                        "gives it back to nurturing")  # fmt: skip
    if lead_row.status in (LeadStatus.UNSUBSCRIBED, LeadStatus.BOUNCED):
        raise LeadError(f"{email} is {lead_row.status}: it is never mailed again")
    if lead_row.stage == LeadStage.DISQUALIFIED:
        raise LeadError(f"{email} is disqualified by a fit rule ([fit] rules): edit the rules "
                        "and run `nurtured leads requalify`")  # fmt: skip
    if lead_row.status == LeadStatus.REPLIED:  # the marketer puts it back on purpose
        lead_row.status = LeadStatus.ACTIVE
        await lead_row.save(update_fields=["status"])
    enrollment = await move_lead(lead_row, stream_id, app.catalog, app.rules, now or utcnow())
    due = enrollment.next_due_at.isoformat() if enrollment.next_due_at else "-"
    click.echo(f"{lead_row.email}: now in {enrollment.stream_id} ({enrollment.state}), "
               f"next email {due}")  # fmt: skip


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@now_option
def run(config_path: Path, once: bool, now: datetime | None) -> None:
    """Run the daemon (SIGINT/SIGTERM finish the current batch and exit).

    With --now and without --once, the clock stands still at that time. `--now` sends for
    real, records deliveries and moves leads on: to see what would happen without doing
    it, use `nurtured simulate`."""
    from nurtured.daemon import serve

    run_async(serve)(config_path, once=once, now=now)


@main.command()
@config_option
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@now_option
def worker(config_path: Path, burst: bool, now: datetime | None) -> None:
    """Run an arq worker: scale-out sending ([queue] backend = "arq").

    SIGTERM/SIGINT: no new job, running sends finish (at most [queue] drain), exit 0."""
    from nurtured.worker import make_worker, run

    async def work() -> None:
        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
        clock = (lambda: now) if now is not None else utcnow
        await run(make_worker(config_path, burst=burst, clock=clock))

    run_async(work)()


@main.command("status")
@config_option
@now_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@run_async
@with_app
async def status_cmd(app: App, now: datetime | None, as_json: bool) -> None:
    """Leads per stream and state, next due times, deliveries by status."""
    data = await status(now or utcnow())
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"as of {data['now']}")
    for stream_id, info in data["streams"].items():
        states = ", ".join(f"{k} {v}" for k, v in sorted(info["states"].items()))
        click.echo(f"  {stream_id:<20} {states}; due now {info['due_now']}, "
                   f"next due {info['next_due_at'] or '-'}")  # fmt: skip
    click.echo("deliveries: " + (", ".join(f"{k} {v}" for k, v in data["deliveries"].items())
                                 or "none"))  # fmt: skip
    click.echo("leads: " + (", ".join(f"{k} {v}" for k, v in data["leads"].items()) or "none"))


leads.add_command(leads_requalify)
main.add_command(companies)
main.add_command(handoff)
main.add_command(simulate)
main.add_command(report_cmd)
main.add_command(splits_cmd)
main.add_command(handoffs)
lead.add_command(lead_set)
leads.add_command(data_cli.leads_import)
leads.add_command(data_cli.leads_merge)
lead.add_command(data_cli.lead_export)
lead.add_command(data_cli.lead_erase)
main.add_command(data_cli.suppress)
