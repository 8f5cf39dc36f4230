"""What ``nurtured run`` says: what it serves at start, what each pass did, why it cannot start.

- ``start_lines``: one line each for the transport, the inbox, the streams, the leads and
  when the next email is due (on that lead's clock and in UTC);
- ``Activity`` + ``pass_line``: one line per pass that did something: the pass's sends
  (sent, deferred, failed, ...) and the replies, clicks, bounces and unsubscribes recorded
  since the pass before (counted from the events, whichever process recorded them);
- ``naming``: an OS refusal at start (a busy port, a missing permission) becomes one
  ``StartupError`` line naming the config key to change; ``opened_database`` does it
  for the database (every command opens it so).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from tortoise.functions import Count

from nurtured import __version__
from nurtured.app import App
from nurtured.config import DATABASE_ENV, Settings
from nurtured.db import close_db, open_db, sqlite_path
from nurtured.exceptions import StartupError
from nurtured.jobs import soonest_due
from nurtured.models import CURRENT, Enrollment, Event, EventKind, Lead, LeadStatus
from nurtured.outcomes import PassReport
from nurtured.scheduler import SendRules, lead_zone
from nurtured.when import shown_both

__all__ = [
    "Activity", "due_line", "naming", "once_line", "opened_database", "pass_line",
    "start_lines",
]  # fmt: skip

# Events worth a word in the pass line, and the word.
TOLD = {
    EventKind.REPLY: "replies",
    EventKind.CLICK: "clicks",
    EventKind.BOUNCE: "bounces",
    EventKind.UNSUBSCRIBE: "unsubscribes",
}


def transport_line(settings: Settings) -> str:
    mail = settings.mail
    if mail.transport == "outbox":
        return f"transport: outbox, a Maildir at {mail.outbox} (nothing leaves this machine)"
    smtp = mail.smtp
    return (f"transport: SMTP {smtp.host}:{smtp.port} ({smtp.tls}, up to {smtp.pool_size} "
            f"connections, {settings.sending.rate_limit}/s)")  # fmt: skip


def inbox_line(settings: Settings) -> str:
    inbox = settings.inbox
    if inbox.source == "maildir":
        return f"inbox: the Maildir {settings.path(inbox.maildir)}"
    if inbox.source == "imap":
        imap = inbox.imap
        how = "IDLE" if imap.idle else f"polled every {imap.poll_interval.total_seconds():.0f} s"
        return f"inbox: IMAP {imap.username}@{imap.host}:{imap.port} {imap.mailbox} ({how})"
    return 'inbox: none ([inbox] source = "none"): replies and bounces are not read'


def due_line(now: datetime, soonest: tuple[datetime, str] | None, rules: SendRules) -> str:
    """ "next email due 2026-11-24 10:00:00 +01:00 Europe/Berlin (09:00:00 UTC)", or why not."""
    if soonest is None:
        return "nothing due: no lead is waiting for an email"
    at, zone_name = soonest
    zone: ZoneInfo = lead_zone(zone_name, rules)
    local, _, utc = shown_both(at, zone).partition(" (")
    if at <= now:
        return f"next email due now (waiting since {local} {zone.key}, {utc.rstrip(')')})"
    return f"next email due {local} {zone.key} ({utc}"


async def start_lines(app: App, now: datetime) -> list[str]:
    """What the daemon serves, for the log at start (three count queries)."""
    settings, catalog = app.settings, app.catalog
    active = await Lead.filter(status=LeadStatus.ACTIVE).count()
    enrolled = await Enrollment.filter(state__in=CURRENT).count()
    streams = ", ".join(sorted(catalog.streams)) or "none"
    sending = ("sending here" if settings.queue.backend == "embedded"
               else f"sending by arq workers on {settings.queue.redis_url}")  # fmt: skip
    return [
        f"nurtured {__version__} starting with {settings.config_path}, {sending}",
        transport_line(settings),
        inbox_line(settings),
        f"streams: {len(catalog.streams)} loaded ({streams}), "
        f"{len(app.renderer.template_names())} templates",
        f"leads: {active} active, {enrolled} in a stream",
        due_line(now, await soonest_due(), app.rules),
    ]


class Activity:
    """Counts the events recorded since the last ``take`` (an id watermark: no row is
    counted twice, and two aggregate queries per call whatever the traffic)."""

    def __init__(self) -> None:
        self.mark = 0

    async def start(self) -> None:
        self.mark = await self._top()

    @staticmethod
    async def _top() -> int:
        last = await Event.all().order_by("-id").first().values_list("id")
        return int(last[0]) if last else 0

    async def take(self) -> Counter[str]:
        top = await self._top()
        counts: Counter[str] = Counter()
        if top > self.mark:
            rows = await (
                Event.filter(id__gt=self.mark, id__lte=top, kind__in=list(TOLD))
                .annotate(n=Count("id"))
                .group_by("kind")
                .values_list("kind", "n")
            )
            counts.update({TOLD[EventKind(kind)]: n for kind, n in rows})
            self.mark = top
        return counts


def once_line(
    report: PassReport, now: datetime, soonest: tuple[datetime, str] | None, rules: SendRules
) -> str:
    """``run --once``'s last word: what it did and when the next email is due."""
    if soonest is None:
        ahead = "no lead is waiting for an email"
    else:
        ahead = shown_both(soonest[0], lead_zone(soonest[1], rules))
    if not report.counts:
        if soonest is None:
            return f"run --once: nothing due, {ahead}"
        return f"run --once: nothing due until {ahead}"
    nxt = f"next email due {ahead}" if soonest is not None else ahead
    return f"run --once: {report.summary()}; {nxt}"


def pass_line(report: PassReport, events: Counter[str]) -> str | None:
    """ "pass: sent 12, deferred 1; replies 2, clicks 5", or None when nothing happened."""
    parts = [report.summary()] if report.counts else []
    if events:
        parts.append(", ".join(f"{k} {v}" for k, v in sorted(events.items())))
    return "pass: " + "; ".join(parts) if parts else None


_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "not an address of this machine",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or directory",
    errno.ECONNREFUSED: "connection refused",
}


def refusal(key: str, value: object, exc: OSError) -> str:
    """One line: what was refused, why, and the key to change."""
    section, _, name = key.rpartition(".")
    where = f"[{section}] {name}" if section else key
    code = exc.errno or 0
    reason = _REASONS.get(code) or (exc.strerror or str(exc)).lower()
    if key == "http.listen":
        advice = {
            errno.EADDRINUSE: f"set {where} to another port",
            errno.EADDRNOTAVAIL: f"set {where} to an address of this machine",
        }.get(code, f"set {where} to a port above 1023 or one this user may bind")
    elif key == "database.url":
        advice = f"check {where} (the environment variable {DATABASE_ENV} overrides it)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = f"make it writable for this user or set {where} to another place"
    else:
        advice = f"check {where}"
    return f"{where} {value}: {reason}; {advice}"


@contextlib.contextmanager
def naming(key: str, value: object) -> Iterator[None]:
    """Turn an OSError in the block into a one-line ``StartupError`` naming ``key``."""
    try:
        yield
    except OSError as exc:
        raise StartupError(refusal(key, value, exc)) from None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@contextlib.asynccontextmanager
async def opened_database(url: str) -> AsyncIterator[None]:
    """``db.database``, with a database that cannot be opened (no such directory, no
    permission, the server refusing) as one ``StartupError`` line naming [database] url."""
    path = sqlite_path(url)
    if path is not None:
        folder = Path(path).parent
        code = (errno.ENOENT if not folder.is_dir() else
                errno.EACCES if not os.access(folder, os.W_OK | os.X_OK) else 0)  # fmt: skip
        if code:
            raise StartupError(refusal("database.url", url, OSError(code, os.strerror(code))))
    with naming("database.url", _without_password(url)):
        await open_db(url)
    try:
        yield
    finally:
        await close_db()
