"""config.toml -> frozen, typed settings; every mistake names the file and the key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from email.utils import formataddr
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, ValidationError

from nurtured.config_sections import (
    Alerts,
    Bots,
    Handoff,
    Http,
    Inbox,
    Intake,
    Limits,
    Log,
    Queue,
    Report,
    Scoring,
)
from nurtured.config_sections import Suppression as SuppressionList
from nurtured.exceptions import ConfigError, Problem
from nurtured.fit.settings import Companies, Fit
from nurtured.schema import (
    EnvName,
    Mailbox,
    Model,
    PositiveDuration,
    WindowTable,
    Zone,
    _holiday,
    checked,
    parse_base_url,
    problems_from,
    read_toml,
    show,
)
from nurtured.timing import SendWindow

DATABASE_ENV = "NURTURED_DATABASE_URL"
DB_SCHEMES = ("sqlite", "postgres", "asyncpg", "psycopg")


# -- config.toml's shape -----------------------------------------------------------------


def check_database_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in DB_SCHEMES or not rest or "\n" in url or "\r" in url:
        raise ValueError(
            f"{show(url)} is not a database URL like "
            '"sqlite://nurtured.db" or "postgres://user@host:5432/db"'
        )
    return url


class _Database(Model):
    url: Annotated[str, checked(check_database_url)] = "sqlite://nurtured.db"


class _Smtp(Model):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    username: str | None = None
    password_env: EnvName | None = None
    pool_size: int = Field(4, ge=1, le=64)
    timeout: PositiveDuration = timedelta(seconds=30)


class _Mail(Model):
    transport: Literal["outbox", "smtp"] = "outbox"
    outbox: str = "outbox"
    smtp: _Smtp = _Smtp()


class _Sender(Model):
    from_: Mailbox = Field(("nurtured", "nurtured@localhost"), alias="from")
    reply_to: Mailbox | None = None
    unsubscribe_mailto: Mailbox | None = None
    plus_address: bool = True
    bounce: Mailbox | None = None


class _Retry(Model):
    max_attempts: int = Field(5, ge=1, le=100)
    backoff: PositiveDuration = timedelta(minutes=15)


class _Sending(Model):
    rate_limit: float = Field(50.0, gt=0, allow_inf_nan=False)
    timezone: Zone = ZoneInfo("UTC")
    window: WindowTable = WindowTable.model_validate(
        {"hours": "09:00-17:00", "days": ["mon", "tue", "wed", "thu", "fri"]}
    )
    holidays: list[Annotated[date, BeforeValidator(_holiday)]] = Field(default_factory=list)
    batch_size: int = Field(500, ge=1, le=10_000)
    retry: _Retry = _Retry()


class _Tracking(Model):
    base_url: Annotated[str, checked(parse_base_url, "a web address")] = "http://localhost:8080"
    secret_env: EnvName = "NURTURED_SECRET"  # noqa: S105 (the name of a variable)


class _Paths(Model):
    streams: str = "streams"
    templates: str = "templates"


class _Config(Model):
    database: _Database = _Database()
    mail: _Mail = _Mail()
    sender: _Sender = _Sender()
    sending: _Sending = _Sending()
    tracking: _Tracking = _Tracking()
    paths: _Paths = _Paths()
    http: Http = Http()
    intake: Intake = Intake()
    report: Report = Report()
    scoring: Scoring = Scoring()
    alerts: Alerts = Alerts()
    handoff: Handoff = Handoff()
    inbox: Inbox = Inbox()
    bots: Bots = Bots()
    queue: Queue = Queue()
    log: Log = Log()
    limits: Limits = Limits()
    suppression: SuppressionList = SuppressionList()
    fit: Fit = Fit()
    companies: Companies = Companies()


# -- the settings the rest of nurtured reads ---------------------------------------------


@dataclass(frozen=True)
class Database:
    url: str  # a Tortoise URL; a relative sqlite path is made absolute against the config dir


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    tls: Literal["starttls", "implicit", "none"]
    username: str | None
    password_env: str | None
    pool_size: int
    timeout: timedelta
    file: str = field(default="config.toml", repr=False, compare=False)

    def password(self, environ: Mapping[str, str] | None = None) -> str:
        """The password from the environment variable named by ``password_env``.

        Read when the transport starts, never at load, so the secret stays out of the file.
        """
        env = os.environ if environ is None else environ
        if self.password_env is None:
            raise ConfigError([Problem(self.file, "mail.smtp.password_env", "required")])
        value = env.get(self.password_env)
        if value is None:
            reason = f"environment variable {self.password_env} is not set"
            raise ConfigError([Problem(self.file, "mail.smtp.password_env", reason)])
        return value


@dataclass(frozen=True)
class Mail:
    transport: Literal["outbox", "smtp"]
    outbox: Path  # a Maildir
    smtp: Smtp


@dataclass(frozen=True)
class Sender:
    name: str  # display name, may be ""
    address: str  # addr-spec
    reply_to: str | None
    unsubscribe_mailto: str | None
    plus_address: bool = True  # Reply-To: replies+<delivery token>@domain
    bounce: str | None = None  # the envelope sender; default bounces@<reply_to's domain>

    @property
    def from_header(self) -> str:
        return formataddr((self.name, self.address))

    def reply_to_for(self, token: str) -> str | None:
        """The Reply-To of one delivery: the token rides along in a plus address, so a
        reply is matched even when a mail client drops In-Reply-To and References."""
        if self.reply_to is None or not self.plus_address:
            return self.reply_to
        local, _, domain = self.reply_to.rpartition("@")
        return f"{local.partition('+')[0]}+{token}@{domain}"

    @property
    def bounce_address(self) -> str:
        """Where DSNs and auto-responders go (MAIL FROM, so Return-Path): ``bounce``, else
        ``bounces@`` the domain of reply_to (else of from). It must reach the inbox we read."""
        if self.bounce:
            return self.bounce
        domain = (self.reply_to or self.address).rpartition("@")[2]
        return f"bounces@{domain}"

    def bounce_for(self, token: str) -> str:
        """The envelope sender of one delivery, VERP-style: bounces+<token>@domain, so a
        bounce is matched by its recipient even when it quotes nothing of ours."""
        local, _, domain = self.bounce_address.rpartition("@")
        if not self.plus_address:
            return self.bounce_address
        return f"{local.partition('+')[0]}+{token}@{domain}"


@dataclass(frozen=True)
class Retry:
    max_attempts: int
    backoff: timedelta  # doubles after each failed attempt


@dataclass(frozen=True)
class Sending:
    rate_limit: float  # messages per second, all streams together
    timezone: ZoneInfo  # for leads without one of their own
    window: SendWindow
    holidays: frozenset[date]
    batch_size: int
    retry: Retry


@dataclass(frozen=True)
class Tracking:
    base_url: str  # no trailing slash
    secret_env: str  # the NAME of the variable holding the link-signing secret


@dataclass(frozen=True)
class Paths:
    streams: Path
    templates: Path


@dataclass(frozen=True)
class Settings:
    """Everything in config.toml, checked and with paths made absolute.

    The environment variable NURTURED_DATABASE_URL, when set, replaces ``database.url``
    (this is how tests and CI point the same project at PostgreSQL).
    """

    config_path: Path
    base_dir: Path
    database: Database
    mail: Mail
    sender: Sender
    sending: Sending
    tracking: Tracking
    paths: Paths
    http: Http = field(default_factory=Http)
    intake: Intake = field(default_factory=Intake)
    report: Report = field(default_factory=Report)
    scoring: Scoring = field(default_factory=Scoring)
    alerts: Alerts = field(default_factory=Alerts)
    handoff: Handoff = field(default_factory=Handoff)
    inbox: Inbox = field(default_factory=Inbox)
    bots: Bots = field(default_factory=Bots)
    queue: Queue = field(default_factory=Queue)
    log: Log = field(default_factory=Log)
    limits: Limits = field(default_factory=Limits)
    suppression: SuppressionList = field(default_factory=SuppressionList)
    fit: Fit = field(default_factory=Fit)
    companies: Companies = field(default_factory=Companies)

    def path(self, relative: str | Path) -> Path:
        """A path from config.toml, relative to the directory config.toml is in."""
        return self.base_dir / relative


def resolve_database_url(url: str, base_dir: Path) -> str:
    """sqlite://relative.db -> sqlite:///abs/dir/relative.db; postgres URLs pass through."""
    scheme, _, rest = check_database_url(url).partition("://")
    if scheme != "sqlite" or rest.startswith(":memory:"):
        return url
    path, query, params = rest.partition("?")
    return f"sqlite://{base_dir / path}{query}{params}"


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check config.toml; ConfigError lists every problem found."""
    env = os.environ if environ is None else environ
    file = path.name
    data = read_toml(path, file)
    base_dir = path.resolve().parent
    override = env.get(DATABASE_ENV)
    if override and isinstance(data.get("database", {}), dict):
        data["database"] = {**data.get("database", {}), "url": override}
    try:
        raw = _Config.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(file, exc)
        if override:
            note = f" (from {DATABASE_ENV})"
            problems = [p if p.key != "database.url" else replace(p, reason=p.reason + note)
                        for p in problems]  # fmt: skip
        raise ConfigError(problems) from None
    smtp = raw.mail.smtp
    if smtp.username is not None and smtp.password_env is None:
        raise ConfigError(
            [Problem(file, "mail.smtp.password_env", "required when username is set")]
        )
    sender, sending = raw.sender, raw.sending
    return Settings(
        config_path=path.resolve(),
        base_dir=base_dir,
        database=Database(resolve_database_url(raw.database.url, base_dir)),
        mail=Mail(
            transport=raw.mail.transport,
            outbox=base_dir / raw.mail.outbox,
            smtp=Smtp(**smtp.model_dump(), file=file),
        ),
        sender=Sender(
            name=sender.from_[0],
            address=sender.from_[1],
            reply_to=sender.reply_to[1] if sender.reply_to else None,
            unsubscribe_mailto=sender.unsubscribe_mailto[1] if sender.unsubscribe_mailto else None,
            plus_address=sender.plus_address,
            bounce=sender.bounce[1] if sender.bounce else None,
        ),
        sending=Sending(
            rate_limit=sending.rate_limit,
            timezone=sending.timezone,
            window=sending.window.window(),
            holidays=frozenset(sending.holidays),
            batch_size=sending.batch_size,
            retry=Retry(sending.retry.max_attempts, sending.retry.backoff),
        ),
        tracking=Tracking(raw.tracking.base_url, raw.tracking.secret_env),
        paths=Paths(base_dir / raw.paths.streams, base_dir / raw.paths.templates),
        http=raw.http,
        intake=raw.intake,
        report=raw.report,
        scoring=raw.scoring,
        alerts=raw.alerts,
        handoff=raw.handoff,
        inbox=raw.inbox,
        bots=raw.bots,
        queue=raw.queue,
        log=raw.log,
        limits=raw.limits,
        suppression=raw.suppression,
        fit=raw.fit,
        companies=raw.companies,
    )
