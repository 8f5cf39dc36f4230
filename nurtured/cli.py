"""The ``nurtured`` command."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click

from nurtured import __version__
from nurtured.app import App, load_app
from nurtured.cli_base import (
    CONFIG_KEY,
    NurturedGroup,
    config_option,
    now_option,
    run_async,
    utcnow,
    with_app,
)  # fmt: skip
from nurtured.cockpit.cli import simulate
from nurtured.data import cli as data_cli
from nurtured.exceptions import ConfigError, LeadError
from nurtured.fit.commands import companies, leads_requalify
from nurtured.intake import make_input, upsert
from nurtured.lead_view import entry_lines, entry_reasons, lead_lines, status_lines
from nurtured.logs import Format
from nurtured.logs import set_levels as set_log_levels
from nurtured.logs import setup as setup_logging
from nurtured.models import LeadStage, LeadStatus
from nurtured.queries import find_lead, lead_timeline, status
from nurtured.report.command import report_cmd
from nurtured.sales.cli import alert_consults, handoff, handoffs, lead_set
from nurtured.scheduler import lead_zone
from nurtured.splits.cli import splits_cmd
from nurtured.when import shown_both


@click.group(cls=NurturedGroup)
@click.version_option(__version__, prog_name="nurtured")
@click.option("-v", "--verbose", count=True,
              help="More log output: -v the HTTP access log (and INFO everywhere), -vv debug, "
                   "-vvv the libraries' debug too.")  # fmt: skip
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text or one JSON object each (default: [log] format).",
)
@click.option("--debug-all", is_flag=True, help="Debug lines from every library (SQL included).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The config file for any command (a --config after the command wins).",
)
@click.pass_context
def main(
    ctx: click.Context, verbose: int, log_format: Format | None, debug_all: bool,
    config_path: Path | None,
) -> None:  # fmt: skip
    """nurtured: walks leads through email content streams until they are ready for sales."""
    ctx.meta[CONFIG_KEY] = config_path
    setup_logging(verbose, log_format, debug_all=debug_all, command=ctx.invoked_subcommand)


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
            click.echo(f"error: {problem}")
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
    if report.enrolled and not report.to_sales:  # why not the streams its interests name
        named = {i.lower() for i in item.interests}
        for stream_id, entered, why in entry_reasons(app.catalog, item.source, item.interests):
            entry = app.catalog.streams[stream_id].entry
            if not entered and entry is not None and named & entry.interests:
                click.echo(f"  not {stream_id}: {why}")
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
    """A lead's profile, its score as the sum of its causes, enrollments, why it enters
    each stream or not, and its timeline, on the lead's clock."""
    data = await lead_timeline(await find_lead(email), now=now or utcnow(),
                               half_life=app.settings.scoring.half_life)  # fmt: skip
    reasons = entry_reasons(app.catalog, data["source"], data["interests"])
    if as_json:
        data["entry_rules"] = [{"stream": s, "enters": e, "why": w} for s, e, w in reasons]
        click.echo(json.dumps(data, indent=2))
        return
    entry = entry_lines(data["source"], data["interests"], reasons,
                        app.settings.intake.sales_sources)  # fmt: skip
    zone = lead_zone(data["timezone"] or "", app.rules)
    click.echo("\n".join(lead_lines(data, zone, entry)))


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
    zone = lead_zone(lead_row.timezone or "", app.rules)
    due = shown_both(enrollment.next_due_at, zone) if enrollment.next_due_at else "-"
    click.echo(f"{lead_row.email}: now in {enrollment.stream_id} ({enrollment.state}), "
               f"next email {due}")  # fmt: skip


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@now_option
def run(config_path: Path, once: bool, now: datetime | None) -> None:
    """Run the daemon: SIGINT/SIGTERM finish the current batch and exit, SIGHUP reloads
    config, streams and templates. With --now and without --once its clock starts there
    and runs on.

    `--now` sends for real, records deliveries and moves leads on: to see what would
    happen without doing it, use `nurtured simulate`."""
    from nurtured.daemon import serve

    if once:
        set_log_levels(long_running=False)  # one pass says its result itself
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
    click.echo("\n".join(status_lines(data, app.settings.sending.timezone)))


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
