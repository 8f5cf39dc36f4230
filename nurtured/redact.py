"""No delivery token in any log line: ``redact`` and the ``RedactTokens`` filter.

The tokens in click, open and unsubscribe URLs (and in Message-IDs) are the keys to a
lead's email: whoever has one can unsubscribe the lead or click as them. The database
drivers print every SQL parameter at DEBUG (``-vv``), tokens among them, so
``guard_logs`` puts ``RedactTokens`` on their loggers and on aiohttp's: anything shaped
like a token in a message or a traceback becomes ``<token>``. Without aiohttp imports,
so the daemon guards its logs before anything else starts.
"""

from __future__ import annotations

import logging
import re
from typing import Final

# A delivery token: 22 URL-safe base64 characters (16 random bytes), after an optional
# 8-hex-digit time prefix (tokens.new_delivery_token); a signature is 22 characters too.
_TOKEN: Final = re.compile(r"(?<![\w-])(?:[0-9a-f]{8})?[\w-]{22}(?![\w-])", re.ASCII)
_TRACKING_PATH: Final = re.compile(r"^/([cou])/[^/]*")
GUARDED: Final = (
    "tortoise", "tortoise.db_client", "aiosqlite", "asyncpg", "aiohttp.server",
    "aiohttp.access", "aiohttp.web",
)  # fmt: skip


def _hide(match: re.Match[str]) -> str:
    word = match.group()
    # Random base64 has a digit or a capital nearly always; plain words are left alone.
    return "<token>" if any(c.isdigit() or c.isupper() for c in word) else word


def redact(text: str) -> str:
    """``text`` with every token-shaped word replaced by ``<token>``."""
    return _TOKEN.sub(_hide, text)


def redact_path(path: str) -> str:
    """A request path fit for a log: ``/c/<anything>`` -> ``/c/…`` (also /o/ and /u/)."""
    return redact(_TRACKING_PATH.sub(r"/\1/…", path))


def one_line(text: object, limit: int = 200) -> str:
    """aiohttp's parser message (several lines, with a ``^`` under the fault) on one line."""
    return " ".join(w for w in str(text).split() if w.strip("^"))[:limit]


class RedactTokens(logging.Filter):
    """Replaces token-shaped words in a record's message and traceback (see redact)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER: Final = RedactTokens()


def guard_logs() -> None:
    """Put the token filter on the loggers in GUARDED (once each)."""
    for name in GUARDED:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
