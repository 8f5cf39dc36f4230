"""``nurtured leads import|merge``, ``nurtured lead export|erase`` and ``nurtured suppress``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from nurtured.app import App
from nurtured.cli_base import config_option, now_option, run_async, utcnow, with_app
from nurtured.data import suppression
from nurtured.data.importing import csv_format, import_csv, parse_delimiter
from nurtured.data.merge import change_address, merge_leads
from nurtured.data.privacy import erase_lead, export_lead
from nurtured.data.relations import dumps
from nurtured.exceptions import LeadError
from nurtured.intake import normalise_email
from nurtured.models import Suppression, SuppressionKind
from nurtured.queries import find_lead


@click.command("import")
@config_option
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--source", help="Lead source for every row (overrides the CSV's source column).")
@click.option("--delimiter", help="comma, semicolon, tab or one character (default: detected).")
@click.option("--encoding", help="e.g. utf-8, cp1252, latin-1 (default: UTF-8, else cp1252).")
@click.option("--dry-run", is_flag=True, help="Print the summary; write nothing.")
@now_option
@run_async
@with_app
async def leads_import(
    app: App, csv_file: Path, source: str | None, delimiter: str | None,
    encoding: str | None, dry_run: bool, now: datetime | None,
) -> None:  # fmt: skip
    """Import leads from CSV_FILE (header: email, first_name, ...); dedupes by email."""
    from nurtured.sales.cli import alert_consults

    fmt = csv_format(csv_file, encoding=encoding,
                     delimiter=parse_delimiter(delimiter) if delimiter else None)  # fmt: skip
    total = _count_lines(csv_file)
    with click.progressbar(length=max(total - 1, 0), label="importing", file=sys.stderr) as bar:
        seen = 1

        def advance(line: int) -> None:
            nonlocal seen
            bar.update(line - seen)
            seen = line

        report = await import_csv(csv_file, app.catalog, app.rules, now or utcnow(),
                                  source=source, progress=advance, fmt=fmt, dry_run=dry_run,
                                  sales_sources=app.settings.intake.sales_sources,
                                  suppression=app.settings.suppression, app=app)  # fmt: skip
    for line, reason in report.counts.invalid:
        click.echo(f"{csv_file}:{line}: {reason}")
    for email, rule, then in report.counts.fit:
        click.echo(f"{email}: " + ("disqualified by fit rule " + rule if then == "disqualify"
                                   else f"routed to {then} by a fit rule"))  # fmt: skip
    click.echo(report.summary())
    if not dry_run:
        await alert_consults(app, report.counts.to_sales, now or utcnow())


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _read(path: Path) -> str:
    from nurtured.data.importing import detect_encoding

    return path.read_text(encoding=detect_encoding(path))


@click.command("merge")
@config_option
@click.argument("keep_email", metavar="KEEP")
@click.argument("other_email", metavar="OTHER")
@now_option
@run_async
@with_app
async def leads_merge(app: App, keep_email: str, other_email: str, now: datetime | None) -> None:
    """Merge OTHER into KEEP: every email, event, stream and handoff of both stays."""
    keep, other = await find_lead(keep_email), await find_lead(other_email)
    apart = await merge_leads(keep, other, now or utcnow(), app.settings.scoring.half_life)
    note = f" ({apart} rows of content both got stay on merged lead {other.id})" if apart else ""
    click.echo(f"{other.email} merged into {keep.email}{note}")


async def set_address(app: App, email: str, address: str, now: datetime) -> str:
    """``lead set EMAIL email=NEW``: a new address, merging a lead that already has it."""
    lead = await find_lead(email)
    return await change_address(lead, normalise_email(address), now,
                                app.settings.scoring.half_life)  # fmt: skip


@click.command("export")
@config_option
@click.argument("email")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the JSON here (default: standard output).")  # fmt: skip
@now_option
@run_async
@with_app
async def lead_export(app: App, email: str, output: Path | None, now: datetime | None) -> None:
    """Everything held about EMAIL, every table, as JSON."""
    text = dumps(await export_lead(await find_lead(email), now or utcnow()))
    if output is None:
        click.echo(text)
    else:
        _write(output, text + "\n")
        click.echo(f"written to {output}", err=True)


@click.command("erase")
@config_option
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@now_option
@run_async
@with_app
async def lead_erase(app: App, email: str, yes: bool, now: datetime | None) -> None:
    """Remove EMAIL's personal data; keep a hashed suppression entry and the counts."""
    lead = await find_lead(email)
    if not yes and not click.confirm(f"erase everything personal about {lead.email}?"):
        raise SystemExit(1)
    counts = await erase_lead(lead, now or utcnow())
    rows = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "no other rows"
    click.echo(f"erased lead {lead.id} ({rows}); its address is suppressed by hash")


@click.group("suppress")
def suppress() -> None:
    """Addresses and domains that are never mailed, whatever a stream or import says."""


@suppress.command("add")
@config_option
@click.argument("entries", nargs=-1, required=True, metavar="ADDRESS_OR_DOMAIN...")
@click.option("--reason", default="", help="Why (shown by suppress list).")
@now_option
@run_async
@with_app
async def suppress_add(app: App, entries: tuple[str, ...], reason: str, now: datetime | None
                       ) -> None:  # fmt: skip
    """Suppress addresses (a@b.example) or whole domains (b.example, its subdomains too)."""
    parsed = [_entry(text) for text in entries]
    added = await suppression.add(parsed, now or utcnow(), reason=reason)
    click.echo(f"suppressed: {added} added, {len(set(parsed)) - added} already there")


@suppress.command("remove")
@config_option
@click.argument("entries", nargs=-1, required=True, metavar="ADDRESS_OR_DOMAIN...")
@run_async
@with_app
async def suppress_remove(app: App, entries: tuple[str, ...]) -> None:
    """Take addresses or domains off the list (an erased address's hash too)."""
    for text in entries:
        kind, value = _entry(text)
        config = app.settings.suppression
        if value in (config.addresses if kind == SuppressionKind.ADDRESS else config.domains):
            click.echo(f"{value}: listed in config.toml [suppression]: remove it there")
            continue
        removed = await suppression.remove(kind, value)
        click.echo(f"{value}: {'removed' if removed else 'not on the list'}")


@suppress.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@run_async
@with_app
async def suppress_list(app: App, as_json: bool) -> None:
    """Every entry: from config.toml, added, and erased leads' hashes."""
    config = app.settings.suppression
    rows = [{"kind": "address", "value": v, "from": "config"} for v in config.addresses]
    rows += [{"kind": "domain", "value": v, "from": "config"} for v in config.domains]
    for entry in await Suppression.all().order_by("kind", "value"):
        rows.append({"kind": str(entry.kind), "value": entry.value, "from": "database",
                     "reason": entry.reason, "added": entry.created_at.isoformat()})  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        shown = f"sha256:{row['value'][:16]}..." if row["kind"] == "hash" else row["value"]
        click.echo(f"{row['kind']:<8} {shown:<40} {row['from']:<8} {row.get('reason', '')}")
    click.echo(f"{len(rows)} entries")


@suppress.command("import")
@config_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--reason", default="", help="Why (shown by suppress list).")
@now_option
@run_async
@with_app
async def suppress_import(app: App, file: Path, reason: str, now: datetime | None) -> None:
    """One address or domain per line (or the first column of a CSV); # starts a comment."""
    entries, bad = [], 0
    text = _read(file)
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].replace(";", ",").replace("\t", ",").split(",")[0]
        value = value.strip().strip('"')
        if not value or (number == 1 and value.lower() in ("email", "address", "domain")):
            continue
        try:
            entries.append(_entry(value))
        except LeadError as exc:
            click.echo(f"{file}:{number}: {exc}")
            bad += 1
    added = await suppression.add(entries, now or utcnow(), reason=reason)
    click.echo(f"suppressed: {added} added, {len(set(entries)) - added} already there, "
               f"{bad} invalid")  # fmt: skip


def _entry(text: str) -> tuple[SuppressionKind, str]:
    try:
        return suppression.parse_entry(text)
    except ValueError as exc:
        raise LeadError(str(exc)) from None
