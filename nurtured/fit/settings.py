"""config.toml's [fit], [companies] and [scoring.profile] sections (pydantic, checked at
load, every default keeps an existing config working)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import Field, field_validator, model_validator

from nurtured.exceptions import Problem
from nurtured.schema import Model

ProfileRule = Literal[
    "title", "key_account", "size", "industry", "colleagues", "free_mail", "competitor"
]  # fmt: skip
DISQUALIFY = "disqualify"


def _lower(values: list[str]) -> list[str]:
    return [v.strip().lower() for v in values if v.strip()]


class Profile(Model):
    """Points for who a lead is (they do not decay); re-applied at every import of the
    lead, when a colleague engages, and by ``nurtured leads requalify``."""

    # Title keyword -> points, whole words, case-insensitive; every matching keyword counts.
    titles: dict[str, int] = Field(default_factory=dict)
    key_accounts: list[str] = Field(default_factory=list)  # domains or company names
    key_account: int = 0
    # Company size: "at least N employees" -> points; the largest N reached applies.
    sizes: dict[str, int] = Field(default_factory=dict)
    industries: dict[str, int] = Field(default_factory=dict)  # industry -> points
    colleagues: int = 0  # per other engaged contact of the same company, to every contact
    free_mail: int = 0  # an address at a free-mail provider
    competitor: int = 0  # a domain or company in [fit] competitors
    caps: dict[ProfileRule, int] = Field(default_factory=dict)  # most points per rule, +/-
    cap: int | None = Field(None, ge=0)  # most profile points in all, +/-

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, value: dict[str, int]) -> dict[str, int]:
        for key in value:
            if not key.strip().isdigit():
                raise ValueError(f'"{key}" is not a number of employees (like "50")')
        return value

    @field_validator("caps")
    @classmethod
    def _caps(cls, value: dict[ProfileRule, int]) -> dict[ProfileRule, int]:
        for key, cap in value.items():
            if cap < 0:
                raise ValueError(f"caps.{key}: {cap} is negative (a cap holds both ways)")
        return value

    def size_bands(self) -> list[tuple[int, int]]:
        return sorted((int(k), v) for k, v in self.sizes.items())


class FitRule(Model):
    """A lead that matches every condition given is disqualified or routed (``then``)."""

    name: str = Field(min_length=1, max_length=50)
    competitor: bool = False  # email domain or company in [fit] competitors
    free_mail: bool = False  # address at a free-mail provider
    titles: list[str] = Field(default_factory=list)  # title has one of these words
    countries: list[str] = Field(default_factory=list)  # the lead's country field is one of
    outside_countries: list[str] = Field(default_factory=list)  # known and none of these
    min_size: int | None = Field(None, ge=0)  # company size known and below this
    max_size: int | None = Field(None, ge=0)  # company size known and above this
    then: str = DISQUALIFY  # "disqualify" or a stream id

    _countries = field_validator("countries", "outside_countries")(_lower)

    @model_validator(mode="after")
    def _some_condition(self) -> FitRule:
        if not (
            self.competitor
            or self.free_mail
            or self.titles
            or self.countries
            or self.outside_countries
            or self.min_size is not None
            or self.max_size is not None
        ):
            raise ValueError(
                "names no condition (competitor, free_mail, titles, countries, "
                "outside_countries, min_size or max_size)"
            )
        return self


class Fit(Model):
    """Qualification: who is never nurtured, or nurtured in a stream of its own."""

    competitors: list[str] = Field(default_factory=list)  # domains or company names
    free_mail: list[str] = Field(default_factory=list)  # added to the built-in list
    not_free_mail: list[str] = Field(default_factory=list)  # taken out of it
    rules: list[FitRule] = Field(default_factory=list)  # the first that matches applies

    _domains = field_validator("free_mail", "not_free_mail")(_lower)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[FitRule]) -> list[FitRule]:
        names = [r.name for r in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must differ: {', '.join(twice)} twice")
        return rules


class Companies(Model):
    """Company names that mean one company: "Amex" = "American Express"."""

    aliases: dict[str, str] = Field(default_factory=dict)


def check_fit_streams(file: str, fit: Fit, streams: Collection[str]) -> list[Problem]:
    """Each rule's ``then`` is "disqualify" or a stream that exists."""
    return [
        Problem(file, f"fit.rules[{i}].then",
                f'"{rule.then}" is not a stream nor "disqualify" (streams: {", ".join(streams)})')
        for i, rule in enumerate(fit.rules)
        if rule.then != DISQUALIFY and rule.then not in streams
    ]  # fmt: skip
