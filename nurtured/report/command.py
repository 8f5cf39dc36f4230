"""``nurtured report``: the report as text, JSON (--json) or an HTML page (--html FILE)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import click

from nurtured.app import App
from nurtured.cli_base import config_option, parse_now, run_async, utcnow, with_app
from nurtured.exceptions import NurturedError
from nurtured.report.queries import Period


def period_of(
    since: datetime | None, until: datetime | None, now: datetime, default: timedelta
) -> Period:
    """[since, until): until defaults to now, since to ``default`` before until."""
    end = until or now
    start = since or end - default
    if start >= end:
        raise NurturedError(f"--since {start.isoformat()} is not before --until {end.isoformat()}")
    return Period(start, end)


@click.command("report")
@config_option
@click.option(
    "--since",
    callback=parse_now,
    metavar="ISO-DATETIME",
    help="Start of the period; default [report] period (30 days) before --until.",
)
@click.option(
    "--until",
    callback=parse_now,
    metavar="ISO-DATETIME",
    help="End of the period (not included); default now.",
)
@click.option(
    "--now",
    callback=parse_now,
    metavar="ISO-DATETIME",
    help="Report as if it were this time (the default --until). Without an offset: UTC.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report as one self-contained HTML page with charts to FILE.",
)
@run_async
@with_app
async def report_cmd(
    app: App,
    since: datetime | None,
    until: datetime | None,
    now: datetime | None,
    as_json: bool,
    html_file: Path | None,
) -> None:
    """Leads per stage, emails and rates per email sent (by stream, step, source), bounces
    by class, emails before handoff, last-touch and touch-combination attribution."""
    from nurtured.report import build

    period = period_of(since, until, now or utcnow(), app.settings.report.period)
    data = await build.build(app, period)
    if html_file is not None:
        try:
            page = build.html(data)
            await asyncio.to_thread(html_file.write_text, page, encoding="utf-8")
        except OSError as exc:
            raise NurturedError(f"{html_file}: cannot write the report: {exc.strerror}") from None
        click.echo(f"wrote {html_file}", err=True)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif html_file is None:
        click.echo(build.text(data), nl=False)
