"""``nurtured splits``: the split-test report on its own."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click

from nurtured.app import App
from nurtured.cli_base import config_option, parse_now, run_async, utcnow, with_app


@click.command("splits")
@config_option
@click.option("--since", "since", callback=parse_now,
              help="Emails sent from (ISO date-time); default 30 days ago.")  # fmt: skip
@click.option("--until", "until", callback=parse_now,
              help="Emails sent before (ISO date-time); default now.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@run_async
@with_app
async def splits_cmd(
    app: App, since: datetime | None, until: datetime | None, as_json: bool
) -> None:
    """Split tests: per variant sent, opened, clicked, replied, rates, p-value, winner."""
    from nurtured.splits.report import format_variants, variants_report

    end = until or utcnow()
    data = await variants_report(app.catalog, since or end - timedelta(days=30), end)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_variants(data) or "no split tests: no step has variants\n", nl=False)
