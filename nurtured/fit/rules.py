"""PURE: who a lead is (``Person``) and which fit rule, if any, it fails."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from nurtured.fit.companies import company_key, domain_matches, email_domain, is_free_mail
from nurtured.fit.settings import Fit, FitRule


@dataclass(frozen=True)
class Person:
    """What profile scoring and fit rules look at."""

    email: str
    title: str = ""
    company: str = ""  # as shown
    company_key: str = ""
    size: int | None = None  # employees
    industry: str = ""
    country: str = ""
    free_mail: bool = False
    competitor: bool = False
    colleagues: int = 0  # other engaged contacts of the same company

    @property
    def domain(self) -> str:
        return email_domain(self.email)


def parse_size(value: object) -> int | None:
    """A company size as written ("51-200", "1,000+", "250") -> its lower bound."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    found = re.search(r"\d[\d,.' ]*", str(value or ""))
    if not found:
        return None
    digits = re.sub(r"\D", "", found.group().split("-")[0])
    return int(digits) if digits else None


def split_listed(listed: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """A list of domains or company names -> (domains, company keys)."""
    domains, names = set(), set()
    for item in listed:
        item = item.strip()
        if "." in item and " " not in item:
            domains.add(item.lower().lstrip("@"))
        elif company_key(item):
            names.add(company_key(item))
    return frozenset(domains), frozenset(names)


def listed(person: Person, domains: Collection[str], keys: Collection[str]) -> bool:
    return domain_matches(person.domain, domains) or (
        bool(person.company_key) and person.company_key in keys
    )


def make_person(
    email: str,
    *,
    title: str,
    company: str,
    key: str,
    fields: Mapping[str, object],
    fit: Fit,
    company_size: str | None = None,
    company_industry: str | None = None,
    colleagues: int = 0,
) -> Person:
    """A Person from a lead's fields: size from a ``company_size``/``employees`` field
    (else the company's), industry and country from fields of those names."""
    competitor_domains, competitor_keys = split_listed(fit.competitors)
    size = parse_size(fields.get("company_size") or fields.get("employees") or company_size)
    person = Person(
        email=email,
        title=title,
        company=company,
        company_key=key,
        size=size,
        industry=str(fields.get("industry") or company_industry or "").strip(),
        country=str(fields.get("country") or "").strip(),
        free_mail=is_free_mail(email_domain(email), fit.free_mail, fit.not_free_mail),
        colleagues=colleagues,
    )
    competitor = listed(person, competitor_domains, competitor_keys)
    return Person(**{**person.__dict__, "competitor": competitor})


def title_has(title: str, word: str) -> bool:
    """``word`` (one or more words) in ``title``, as whole words, case-insensitively."""
    return re.search(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", title, re.IGNORECASE) is not None


def why_fails(person: Person, rule: FitRule) -> str | None:
    """What makes ``person`` match ``rule`` (every condition it gives), or None."""
    causes: list[str] = []
    if rule.competitor:
        if not person.competitor:
            return None
        causes.append(f"competitor ({person.domain})")
    if rule.free_mail:
        if not person.free_mail:
            return None
        causes.append(f"free mail ({person.domain})")
    if rule.titles:
        words = [w for w in rule.titles if title_has(person.title, w)]
        if not words:
            return None
        causes.append(f'title "{person.title}" has "{words[0]}"')
    country = person.country.lower()
    if rule.countries:
        if country not in rule.countries:
            return None
        causes.append(f"country {person.country}")
    if rule.outside_countries:
        if not country or country in rule.outside_countries:
            return None
        causes.append(f"country {person.country} not served")
    if rule.min_size is not None:
        if person.size is None or person.size >= rule.min_size:
            return None
        causes.append(f"{person.size} employees < {rule.min_size}")
    if rule.max_size is not None:
        if person.size is None or person.size <= rule.max_size:
            return None
        causes.append(f"{person.size} employees > {rule.max_size}")
    return "; ".join(causes)


@dataclass(frozen=True)
class Verdict:
    rule: str
    then: str  # "disqualify" or a stream id
    cause: str


def judge(person: Person, rules: Sequence[FitRule]) -> Verdict | None:
    """The first rule ``person`` fails, with what made it fail; None: the lead fits."""
    for rule in rules:
        cause = why_fails(person, rule)
        if cause is not None:
            return Verdict(rule.name, rule.then, cause)
    return None
