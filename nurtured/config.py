"""config.toml -> frozen, typed settings; every mistake names the file and the key.

pydantic checks the file's shape; its errors are turned into plain-English ``Problem``s
(``config.toml: mail.smtp.prot: unknown key``) and raised together as one ``ConfigError``.
The helpers for that (``problems_from``, ``show``, ``read_toml``) are shared with streams.py.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from email.headerregistry import Address
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from nurtured.exceptions import ConfigError, Problem
from nurtured.timing import SendWindow, parse_days, parse_duration, parse_hours, parse_timezone

DATABASE_ENV = "NURTURED_DATABASE_URL"
DB_SCHEMES = ("sqlite", "postgres", "asyncpg", "psycopg")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
T = TypeVar("T")

# -- shared with streams.py: TOML reading and pydantic errors in plain English ------------


def show(value: object) -> str:
    """A value as the marketer wrote it: strings quoted, TOML spelling for the rest."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def dotted(loc: tuple[int | str, ...]) -> str:
    """('steps', 2, 'wait') -> 'steps[2].wait'; odd table keys are quoted."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += f".{name}" if out else name
    return out


def _reason(error: Mapping[str, Any]) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, show(error.get("input"))
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    simple = {
        "missing": "required",
        "extra_forbidden": "unknown key",
        "int_type": f"{value} is not a whole number",
        "int_parsing": f"{value} is not a whole number",
        "int_from_float": f"{value} is not a whole number",
        "float_type": f"{value} is not a number",
        "float_parsing": f"{value} is not a number",
        "finite_number": f"{value} is not a finite number",
        "string_type": f"{value} is not text (put it in quotes)",
        "bool_type": f"{value} is not true or false",
        "string_too_short": "must not be empty",
        "list_type": f"{value} is not a list",
        "dict_type": f"{value} is not a table",
        "model_type": f"{value} is not a table",
        "model_attributes_type": f"{value} is not a table",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"{value} is not one of {str(ctx['expected']).replace(chr(39), chr(34))}"
    bounds = {
        "greater_than": "more than {gt}",
        "greater_than_equal": "at least {ge}",
        "less_than": "less than {lt}",
        "less_than_equal": "at most {le}",
    }
    if kind in bounds:
        limits = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()
        }
        size = "small" if kind.startswith("greater") else "large"
        return f"{value} is too {size}: must be " + bounds[kind].format(**limits)
    return str(error["msg"])


def problems_from(file: str, exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[Problem]:
    """Every pydantic error as a Problem naming ``file`` and the dotted key."""
    return [Problem(file, dotted((*prefix, *e["loc"])), _reason(e)) for e in exc.errors()]


def read_toml(path: Path, file: str) -> dict[str, Any]:
    """The parsed file, or ConfigError with one Problem (TOML errors carry the line)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(file, "", f"not UTF-8 text (byte {exc.start})")]) from None
    except OSError as exc:
        raise ConfigError([Problem(file, "", exc.strerror or str(exc))]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(file, "", f"not valid TOML: {exc}")]) from None


def checked(parse: Callable[[str], T], what: str = "text") -> BeforeValidator:
    """A field validator that runs ``parse`` on strings and names the wrong type otherwise."""

    def run(value: object) -> object:
        if isinstance(value, str):
            return parse(value)
        raise ValueError(f"{show(value)} is not {what}")

    return BeforeValidator(run)


def parse_address(text: str) -> tuple[str, str]:
    """ "Name <a@b.example>" or "a@b.example" -> (display name, addr-spec); no CR/LF."""
    if "\r" in text or "\n" in text:
        raise ValueError(f"{show(text)} contains a line break")
    name, addr = parseaddr(text)
    local, _, domain = addr.rpartition("@")
    if not local or "." not in domain or " " in addr or domain.startswith("."):
        raise ValueError(f"{show(text)} is not an email address")
    try:
        Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError):
        raise ValueError(f"{show(text)} is not an email address") from None
    return name, addr


def parse_env_name(text: str) -> str:
    if not _ENV_NAME.fullmatch(text):
        raise ValueError(f"{show(text)} is not an environment variable name")
    return text


def parse_base_url(text: str) -> str:
    parts = urlsplit(text)
    bad = any(c.isspace() or ord(c) < 32 for c in text)
    if bad or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f'{show(text)} is not a web address like "https://t.acme.example"')
    if parts.query or parts.fragment:
        raise ValueError(f"{show(text)} must not have a query or fragment")
    return text.rstrip("/")


def _positive(text: str) -> timedelta:
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ValueError(f'"{text}" must be longer than 0')
    return value


def _days(value: object) -> frozenset[int]:
    if not isinstance(value, list):
        raise ValueError(f"{show(value)} is not a list of days")
    return parse_days(value)


def _holiday(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f'{show(value)} is not a date like "2026-12-24"')


Duration = Annotated[timedelta, checked(parse_duration, "a duration")]
PositiveDuration = Annotated[timedelta, checked(_positive, "a duration")]
Hours = Annotated[tuple[time, time], checked(parse_hours, "a time range")]
Days = Annotated[frozenset[int], BeforeValidator(_days)]
Zone = Annotated[ZoneInfo, checked(parse_timezone, "a time zone")]
Mailbox = Annotated[tuple[str, str], checked(parse_address, "an email address")]
EnvName = Annotated[str, checked(parse_env_name, "an environment variable name")]


class Model(BaseModel):
    """Strict: "587" is not a port and 1.5 is not a batch size; unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True
    )


class WindowTable(Model):
    hours: Hours
    days: Days

    def window(self) -> SendWindow:
        return SendWindow(self.hours[0], self.hours[1], self.days)


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


class _Retry(Model):
    max_attempts: int = Field(5, ge=1, le=100)
    backoff: PositiveDuration = timedelta(minutes=15)


class _Sending(Model):
    rate_limit: float = Field(50.0, gt=0, allow_inf_nan=False)
    timezone: Zone = ZoneInfo("UTC")
    window: WindowTable = WindowTable.model_validate(
        {"hours": "09:00-17:00", "days": ["mon", "tue", "wed", "thu", "fri"]}
    )
    holidays: list[Annotated[date, BeforeValidator(_holiday)]] = []
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

    @property
    def from_header(self) -> str:
        return formataddr((self.name, self.address))


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
    )
