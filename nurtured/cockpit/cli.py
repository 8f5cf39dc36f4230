"""The ``nurtured simulate`` command (registered in nurtured/cli.py)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from nurtured.app import load_app
from nurtured.cli_base import config_option, parse_now, run_async, utcnow
from nurtured.cockpit.journey import journey_json, journey_table
from nurtured.cockpit.script import (
    Script,
    parse_as,
    parse_click,
    parse_ooo,
    parse_reply,
    parse_when,
)

__all__ = ["simulate"]


@click.command()
@config_option
@click.argument("email", required=False)
@click.option("--as", "as_fields", multiple=True, metavar="FIELD=VALUE,...",
              help="A hypothetical lead instead, e.g. source=webinar,interest=product-a,"
                   "timezone=Asia/Tokyo (any field leads import knows).")  # fmt: skip
@click.option("--sample", type=click.IntRange(min=1), metavar="N",
              help="N active leads of the database.")  # fmt: skip
@click.option("--from", "start", callback=parse_now, metavar="ISO-DATETIME",
              help="Start here instead of now (without an offset: UTC).")  # fmt: skip
@click.option("--until", default="+90d", show_default=True, metavar="WHEN",
              help="+DURATION after the start, or an ISO date or date-time.")  # fmt: skip
@click.option("--click", "clicks", multiple=True, metavar="CONTENT:TAG@+DURATION",
              help="The lead clicks the link tagged TAG in email CONTENT that long after "
                   "it was sent, e.g. pa-guide:interest:product-b@+2d. Repeatable.")  # fmt: skip
@click.option("--reply", "replies", multiple=True, metavar="TEXT@WHEN",
              help='The lead answers the last email, e.g. "not now, March"@+5d '
                   "(after the start, or an ISO date-time). Repeatable.")  # fmt: skip
@click.option("--ooo", multiple=True, metavar="FIRST..LAST",
              help="Away on these days (lead's calendar): emails then get an out-of-office "
                   "reply, e.g. 2026-12-20..2027-01-04. Repeatable.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def simulate(
    config_path: Path,
    email: str | None,
    as_fields: tuple[str, ...],
    sample: int | None,
    start: datetime | None,
    until: str,
    clicks: tuple[str, ...],
    replies: tuple[str, ...],
    ooo: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show the journey of lead EMAIL (or --as a hypothetical one, or a --sample) ahead
    of time: every email with its local send time, subject and stream, every move,
    pause, stage change and handoff. It runs the real engine on a temporary copy of the
    lead's rows: nothing is written to the database, the outbox or SMTP."""
    if sum((email is not None, bool(as_fields), sample is not None)) != 1:
        raise click.UsageError("give one of EMAIL, --as FIELD=VALUE,... or --sample N")
    from nurtured.cockpit.simulate import simulate as run

    begin = start or utcnow()

    async def journey() -> None:
        script = Script(
            clicks=tuple(parse_click(c) for c in clicks),
            replies=tuple(parse_reply(r, begin) for r in replies),
            ooo=tuple(parse_ooo(o) for o in ooo),
        )
        end = parse_when("--until", until, begin)
        if end <= begin:
            raise click.BadParameter(f"{until!r} is not after the start", param_hint="--until")
        app = load_app(config_path)
        found = await run(app, script, begin, end, email=email, sample=sample or 0,
                          hypothetical=parse_as(as_fields) if as_fields else None)  # fmt: skip
        if as_json:
            click.echo(json.dumps(journey_json(found), indent=2))
        else:
            click.echo(journey_table(found), nl=False)

    run_async(journey)()
