"""The pieces config.py and streams.py build their TOML schemas from.

pydantic checks a file's shape; its errors are turned into plain-English ``Problem``s
(``config.toml: mail.smtp.prot: unknown key``) and raised together as one ``ConfigError``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from nurtured.exceptions import ConfigError, Problem
from nurtured.timing import SendWindow, parse_days, parse_duration, parse_hours, parse_timezone

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
