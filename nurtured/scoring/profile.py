"""PURE: points for who a lead is (title, account, company size and industry, engaged
colleagues, free mail, competitor), with caps per rule and in all. They do not decay."""

from __future__ import annotations

from nurtured.fit.rules import Person, listed, split_listed, title_has
from nurtured.fit.settings import Profile
from nurtured.scoring.behaviour import Points


def _clamp(value: int, cap: int | None) -> int:
    return value if cap is None else max(-cap, min(cap, value))


def profile_points(person: Person, profile: Profile) -> list[Points]:
    """Each profile rule's points for ``person`` (rules worth 0 left out)."""
    found: list[Points] = []
    words = [(w, p) for w, p in profile.titles.items() if p and title_has(person.title, w)]
    if words:
        said = ", ".join(f"{w} {p:+d}" for w, p in words)
        found.append(Points("title", sum(p for _, p in words), f'title "{person.title}": {said}'))
    domains, keys = split_listed(profile.key_accounts)
    if profile.key_account and listed(person, domains, keys):
        found.append(Points("key_account", profile.key_account,
                            f"key account {person.company or person.domain}"))  # fmt: skip
    if person.size is not None:
        bands = [(at, p) for at, p in profile.size_bands() if person.size >= at]
        if bands and bands[-1][1]:
            at, p = bands[-1]
            found.append(Points("size", p, f"{person.size} employees (>= {at})"))
    industry = person.industry.lower()
    for name, p in profile.industries.items():
        if p and industry and name.lower() == industry:
            found.append(Points("industry", p, f"industry {person.industry}"))
            break
    if profile.colleagues and person.colleagues:
        found.append(Points("colleagues", profile.colleagues * person.colleagues,
                            f"{person.colleagues} more engaged at {person.company}"))  # fmt: skip
    if profile.free_mail and person.free_mail:
        found.append(Points("free_mail", profile.free_mail, f"free mail {person.domain}"))
    if profile.competitor and person.competitor:
        found.append(Points("competitor", profile.competitor,
                            f"competitor {person.company or person.domain}"))  # fmt: skip
    capped = [
        Points(p.rule, _clamp(p.points, profile.caps.get(p.rule)), p.cause)  # type: ignore[call-overload]
        for p in found
    ]
    capped = [p for p in capped if p.points]
    total = sum(p.points for p in capped)
    if profile.cap is not None and abs(total) > profile.cap:
        over = total - _clamp(total, profile.cap)
        capped.append(Points("cap", -over, f"profile points held to {profile.cap:+d}"))
    return capped
