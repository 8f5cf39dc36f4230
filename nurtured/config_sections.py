"""config.toml sections for the HTTP server, intake API, scoring, sales alerts and inbox.

They are pydantic models used as they are (frozen, unknown keys forbidden); config.py
puts them into ``Settings``. Relative paths are resolved with ``Settings.path()``.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field

from nurtured.fit.settings import Profile
from nurtured.schema import (
    Days,
    EnvName,
    Hours,
    Mailbox,
    Model,
    PositiveDuration,
    Zone,
    _holiday,
    checked,
    show,
)


def parse_listen(text: str) -> tuple[str, int]:
    """ "127.0.0.1:8080" or "[::1]:8080" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'{show(text)} is not an address like "127.0.0.1:8080"')
    return host, int(port)


Listen = Annotated[tuple[str, int], checked(parse_listen, "an address")]


class Http(Model):
    """The tracking server and intake API, served inside ``nurtured run``."""

    enabled: bool = True
    listen: Listen = ("127.0.0.1", 8080)
    max_body: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)  # bytes
    # A connection whose request headers are not all in this long after it opened (or
    # after the previous answer: an idle keep-alive connection) is closed; a request
    # body not all in this long after the headers gets 408.
    request_timeout: PositiveDuration = timedelta(seconds=15)


class Intake(Model):
    """POST /api/leads: who may post, and which sources go straight to sales."""

    token_env: EnvName = "NURTURED_API_TOKEN"  # noqa: S105 (the name of a variable)
    sales_sources: list[str] = Field(
        default_factory=lambda: ["consult", "demo-request", "contact-sales"]
    )


class Report(Model):
    """`nurtured report` and GET /report: the default period, and who may see the page."""

    period: PositiveDuration = timedelta(days=30)  # --since defaults to this before --until
    # The environment variable holding GET /report's bearer token; unset: [intake] token_env.
    token_env: EnvName | None = None


class Bots(Model):
    """Clicks and opens that machines make: recorded, never scored, never acted on."""

    click_grace: PositiveDuration = timedelta(seconds=5)  # after delivery
    burst: PositiveDuration = timedelta(seconds=1)  # every link of one email within this
    scanner_agents: list[str] = Field(
        default_factory=list
    )  # substrings, in addition to the built-in list


class Scoring(Model):
    """Points per behaviour; the score halves every ``half_life`` without new points."""

    open: int = 1
    click: int = 5
    reply: int = 30
    interested: int = 20  # extra, for a reply that asks for a call, a demo, a quote
    forward: int = 20
    unsubscribe: int = 0  # e.g. -20: an unsubscribe keeps its lead from looking hot
    # Extra points for a clicked link tag, by tag or tag prefix ("interest:" matches all).
    tags: dict[str, int] = Field(default_factory=dict)
    sales_ready: int = Field(100, ge=1)
    half_life: PositiveDuration = timedelta(days=30)
    profile: Profile = Profile()  # points for who the lead is (nurtured.fit.settings)


class Territory(Model):
    """Leads whose email domain ends with one of ``domains`` (e.g. ".de") go to ``to``."""

    domains: list[str] = Field(min_length=1)
    to: list[Mailbox] = Field(min_length=1)


class Alerts(Model):
    """Who hears about replies, sales-ready leads and consult requests.

    The lead's own owner (the ``owner`` field of an imported lead) comes first, then the
    first matching territory, then round robin, then the default ``to`` list.
    """

    to: list[Mailbox] = Field(default_factory=list)
    round_robin: list[Mailbox] = Field(default_factory=list)
    territories: list[Territory] = Field(default_factory=list)
    # Sales answer alerts here ("accept", "return: no budget"); defaults to sender.reply_to.
    reply_to: Mailbox | None = None


Criterion = Literal["budget", "authority", "need", "timing", "fit", "other"]
CRITERIA: tuple[Criterion, ...] = ("budget", "authority", "need", "timing", "fit", "other")


class SalesCalendar(Model):
    """Working time of sales, in which the SLA is counted."""

    hours: Hours = (time(9), time(17))
    days: Days = frozenset(range(5))
    holidays: list[Annotated[date, BeforeValidator(_holiday)]] = Field(default_factory=list)
    timezone: Zone = ZoneInfo("UTC")


class Handoff(Model):
    """When an MQL becomes SQL (the BANTFO gate), who may act on it and by when, and
    where sales' returns go back to nurturing."""

    # Which criteria must hold, besides the score, before a lead is handed to sales. Each
    # is a lead field (import column, API field, `nurtured lead set`, a sales reply)
    # that says yes; authority also holds for a title containing one of
    # authority_titles, fit for any lead not disqualified.
    require: list[Criterion] = Field(default_factory=list)
    authority_titles: list[str] = Field(
        default_factory=lambda: [
            "Chief",
            "CEO",
            "CTO",
            "CFO",
            "COO",
            "CIO",
            "VP",
            "Vice President",
            "Head of",
            "Director",
            "Owner",
            "Founder",
            "President",
            "Partner",
        ]
    )
    collect_stream: str | None = None  # an MQL that lacks criteria waits here
    sla: PositiveDuration = timedelta(hours=24)  # working hours of the calendar below
    remind_before: PositiveDuration = timedelta(hours=4)  # working time left
    escalate_to: list[Mailbox] = Field(default_factory=list)  # e.g. the sales manager
    sales: list[Mailbox] = Field(default_factory=list)  # may act on any handoff
    calendar: SalesCalendar = SalesCalendar()
    # Reason category (budget, authority, need, timing, fit, other, lost) -> stream id
    # for returned leads; "default" for the rest.
    returns: dict[str, str] = Field(default_factory=dict)


class Imap(Model):
    host: str = "localhost"
    port: int = Field(993, ge=1, le=65535)
    tls: Literal["implicit", "none"] = "implicit"  # aioimaplib has no STARTTLS
    username: str = "nurtured"
    password_env: EnvName = "NURTURED_IMAP_PASSWORD"  # noqa: S105 (the name of a variable)
    mailbox: str = "INBOX"
    processed_folder: str | None = None  # move handled messages here; else flag them
    idle: bool = True
    poll_interval: PositiveDuration = timedelta(seconds=60)
    timeout: PositiveDuration = timedelta(seconds=30)


class Inbox(Model):
    """Where replies, bounces and auto-replies arrive."""

    source: Literal["none", "maildir", "imap"] = "maildir"
    maildir: str = "inbox"  # a local Maildir, relative to config.toml
    imap: Imap = Imap()
    auto_reply_pause: PositiveDuration = timedelta(days=7)
    soft_bounce_limit: int = Field(3, ge=1, le=100)


def parse_redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")) or any(c.isspace() for c in text):
        raise ValueError(f'{show(text)} is not a Redis URL like "redis://127.0.0.1:6379/0"')
    return text


class Queue(Model):
    """Who does the work: "embedded" (in `nurtured run`) or "arq" workers on Redis."""

    backend: Literal["embedded", "arq"] = "embedded"
    redis_url: Annotated[str, checked(parse_redis_url, "a Redis URL")] = "redis://127.0.0.1:6379/0"
    # Send jobs started per tick: one per worker process you run is about right.
    parallel: int = Field(4, ge=1, le=256)
    tick: PositiveDuration = timedelta(seconds=5)
    queue_name: str = "nurtured"
    # Send jobs one worker runs at once (arq's max_jobs): 1 spreads them over the workers.
    max_jobs: int = Field(1, ge=1, le=256)
    # SIGTERM/SIGINT: a worker takes no new job and gives its running sends this long.
    drain: PositiveDuration = timedelta(seconds=30)
    # A worker or leader not heard of in Redis for this long is taken as dead.
    liveness: PositiveDuration = timedelta(seconds=10)


class Log(Model):
    """How the daemon's log lines look (``--log-format`` overrides it)."""

    format: Literal["text", "json"] = "text"


class Warmup(Model):
    """A new sending domain's ramp: ``first_day`` emails a day on ``start`` (and before),
    ``factor`` times more each day after, until ``daily_cap`` (if set)."""

    start: Annotated[date, BeforeValidator(_holiday)]
    first_day: int = Field(ge=1)
    factor: float = Field(ge=1, le=100, allow_inf_nan=False)


class Limits(Model):
    """Send limits shared by every process (in Redis with ``[queue] backend = "arq"``).

    Emails held back wait in order and go when their slot comes; nothing is dropped.
    """

    # Emails per ``period`` to a recipient domain, spaced evenly: {"gmail.com" = 60}.
    per_domain: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    per_domain_default: int | None = Field(None, ge=1)  # for every other domain
    period: PositiveDuration = timedelta(minutes=1)
    # Emails per sender address and day (in [sending] timezone); None: no cap.
    daily_cap: int | None = Field(None, ge=1)
    warmup: Warmup | None = None
    # An email whose slot is further away than this is deferred instead of waited for.
    max_wait: PositiveDuration = timedelta(seconds=10)


def _address(value: object) -> object:
    from nurtured.data.addresses import normal_address

    return normal_address(value) if isinstance(value, str) else value


def _domain(value: object) -> object:
    from nurtured.data.addresses import normal_domain

    return normal_domain(value) if isinstance(value, str) else value


class Suppression(Model):
    """Never mailed, whatever a stream, move or import says (beside ``nurtured suppress``)."""

    addresses: list[Annotated[str, BeforeValidator(_address)]] = Field(default_factory=list)
    domains: list[Annotated[str, BeforeValidator(_domain)]] = Field(default_factory=list)
