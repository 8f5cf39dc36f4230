"""What every ``nurtured`` subcommand shares: --config, --now, running async code with
clear errors, and opening the project."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from nurtured.app import load_app
from nurtured.db import database
from nurtured.exceptions import ConfigError, NurturedError

__all__ = ["aware", "config_option", "now_option", "parse_now", "run_async", "utcnow", "with_app"]

P = ParamSpec("P")
R = TypeVar("R")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("config.toml"),
    show_default=True,
    help="The config file; streams/ and templates/ are found relative to it.",
)


def parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """--now as an aware datetime; a value without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date-time like 2026-11-23T09:00+01:00"
        ) from None
    return aware(parsed)


def aware(moment: datetime) -> datetime:
    """``moment`` with its offset, or as UTC when it has none."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


now_option = click.option(
    "--now", callback=parse_now, metavar="ISO-DATETIME",
    help="Take this as the current time (replays, tests; without an offset: UTC). Not a "
         "dry run: what the command does, it does for real (`nurtured simulate` changes nothing).",
)  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC)


def run_async(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run an async command; NurturedError becomes a clear message and exit 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return asyncio.run(func(*args, **kwargs))
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            raise SystemExit(1) from None
        except NurturedError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None

    return wrapper


def with_app(func: Callable[..., Awaitable[R]]) -> Callable[..., Coroutine[Any, Any, R]]:
    """Load and validate the marketer's files, open the database, pass ``app`` in."""

    @wraps(func)
    async def wrapper(config_path: Path, **kwargs: Any) -> R:
        app = load_app(config_path)
        async with database(app.settings.database.url):
            return await func(app, **kwargs)

    return wrapper
