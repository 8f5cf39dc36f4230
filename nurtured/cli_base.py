"""What every ``nurtured`` subcommand shares: --config, --now, running async code with
clear errors, and opening the project."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from nurtured.app import load_app
from nurtured.exceptions import ConfigError, NurturedError

__all__ = [
    "NurturedGroup", "aware", "config_option", "now_option", "parse_now", "run_async", "utcnow",
    "with_app",
]  # fmt: skip

P = ParamSpec("P")
R = TypeVar("R")

CONFIG_KEY = "nurtured.config"  # ctx.meta: the --config given before the subcommand
DEFAULT_CONFIG = Path("config.toml")


def _config_path(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    """--config after the subcommand wins; else the one before it; else ./config.toml."""
    if value is not None:
        return value
    before: Path | None = ctx.meta.get(CONFIG_KEY)
    return before or DEFAULT_CONFIG


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    callback=_config_path,
    help="The config file (default: the --config before the command, else config.toml); "
    "streams/ and templates/ are found relative to it.",
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
    """Run an async command; NurturedError becomes ``error: ...`` lines and exit 1 (or
    the error's ``exit_code``: 3 for StartupError)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return asyncio.run(func(*args, **kwargs))
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            raise SystemExit(1) from None
        except NurturedError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(getattr(exc, "exit_code", 1)) from None

    return wrapper


def with_app(func: Callable[..., Awaitable[R]]) -> Callable[..., Coroutine[Any, Any, R]]:
    """Load and validate the marketer's files, open the database, pass ``app`` in."""

    @wraps(func)
    async def wrapper(config_path: Path, **kwargs: Any) -> R:
        from nurtured.talk import opened_database

        app = load_app(config_path)
        async with opened_database(app.settings.database.url):
            return await func(app, **kwargs)

    return wrapper


class NurturedGroup(click.Group):
    """click's group, with every error as ``error: ...`` on stderr (click writes "Error:").

    Exit codes: 0 done; 1 bad input (a config, stream, template, lead or file); 2 a
    command line click could not parse (the usage line comes first); 3 the daemon could
    not start as configured (a busy port, a missing permission).
    """

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None,
        complete_var: str | None = None, standalone_mode: bool = True, **extra: Any,
    ) -> Any:  # fmt: skip
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            if exc.ctx is not None:
                click.echo(exc.ctx.get_usage(), err=True)
                click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)
