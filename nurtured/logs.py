"""Where log lines go and how they look: text or JSON, and how much of them.

``setup`` is called once by the ``nurtured`` command before any subcommand runs:

- the level: WARNING, or INFO for the commands that run for long (``run`` without
  ``--once``, ``worker``), one step lower per ``-v``;
- the database drivers, the mail and IMAP clients, aiohttp and the queue
  (``THIRD_PARTY``) are held at WARNING (arq at INFO: its line per job) unless asked
  for: ``-vvv`` or ``--debug-all`` let them through (their DEBUG lines carry every SQL
  statement); the per-request access log needs ``-v``;
- the format: ``text`` ("2026-11-24 10:00:00,123 INFO nurtured.daemon: ...") or ``json``,
  one object per line with the keys in ``JSON_KEYS`` (always all of them, in that order)
  and ``exc`` when there is a traceback. ``--log-format`` wins over ``[log] format``,
  which ``use_config_format`` applies once config.toml is read.

Plain stdlib logging with a small formatter: python-json-logger or structlog would be
a dependency for one class.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final, Literal

__all__ = [
    "JSON_KEYS", "THIRD_PARTY", "JsonFormatter", "set_levels", "setup", "use_config_format",
]  # fmt: skip

Format = Literal["text", "json"]

THIRD_PARTY: Final = (
    "tortoise", "aiosqlite", "asyncpg", "aiosmtplib", "aioimaplib", "arq", "aiohttp",
    "asyncio", "redis",
)  # fmt: skip
ACCESS: Final = "nurtured.access"
JSON_KEYS: Final = ("time", "level", "logger", "message")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LONG_RUNNING: Final = frozenset({"run", "worker"})


class _Chosen:
    """What the command line asked for."""

    format: Format | None = None
    verbose = 0
    debug_all = False
    managed = False  # the handler is ours (else someone else set logging up)


_chosen = _Chosen()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        data: dict[str, str] = {
            "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


def _formatter(fmt: Format) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def setup(
    verbose: int, fmt: Format | None, *, debug_all: bool = False, command: str | None = None
) -> None:
    """Configure logging for one ``nurtured`` command (see the module docstring). Like
    ``logging.basicConfig``, logging that someone else set up (a root logger with
    handlers of theirs: an embedding program, pytest) is left as it is."""
    _chosen.format, _chosen.verbose, _chosen.debug_all = fmt, verbose, debug_all
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "nurtured", False)]:
        root.removeHandler(old)
    _chosen.managed = not root.handlers
    if not _chosen.managed:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.nurtured = True  # type: ignore[attr-defined]
    handler.setFormatter(_formatter(fmt or "text"))
    root.addHandler(handler)
    set_levels(long_running=command in LONG_RUNNING)


def set_levels(*, long_running: bool) -> None:
    """The root level (INFO for long runs, WARNING else, lower per -v) and the caps."""
    if not _chosen.managed:
        return
    verbose, debug_all = _chosen.verbose, _chosen.debug_all
    base = logging.INFO if long_running else logging.WARNING
    level = logging.DEBUG if debug_all else max(base - 10 * verbose, logging.DEBUG)
    logging.getLogger().setLevel(level)
    quiet = not (debug_all or verbose >= 3)
    for name in THIRD_PARTY:
        cap = logging.INFO if name == "arq" else logging.WARNING  # arq: a line per job
        logging.getLogger(name).setLevel(cap if quiet else logging.NOTSET)
    logging.getLogger(ACCESS).setLevel(logging.NOTSET if verbose >= 1 else logging.WARNING)


def use_config_format(fmt: Format) -> None:
    """``[log] format`` from config.toml, unless ``--log-format`` was given."""
    if _chosen.format is not None:
        return
    for handler in logging.getLogger().handlers:
        if getattr(handler, "nurtured", False):
            handler.setFormatter(_formatter(fmt))
