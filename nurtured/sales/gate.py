"""PURE: the handoff gate. A lead over ``sales_ready`` is an MQL; it becomes SQL (is
handed to sales) only when the required BANTFO criteria hold as well.

A criterion is known from a lead field of the same name (an import column, an API
field, ``nurtured lead set EMAIL budget=yes``, a sales reply) that says yes; authority
also from a title naming a decision-maker; fit from the lead not being disqualified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Values that say a criterion does NOT hold (or is not known), in the inbox's languages.
_NO = frozenset(
    [
        "",
        "no",
        "n",
        "false",
        "0",
        "none",
        "unknown",
        "?",
        "-",
        "nein",
        "non",
        "nee",
        "não",
        "nao",
        "nessuno",
        "ninguno",
        "keine",
        "kein",
        "aucun",
    ]
)


def says_yes(value: Any) -> bool:
    """A field value that confirms a criterion: anything but empty, "no", "unknown"..."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, int | float):
        return value > 0
    return str(value).strip().lower() not in _NO


def _title_has(title: str, words: Iterable[str]) -> bool:
    for word in words:
        if re.search(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", title, re.IGNORECASE):
            return True
    return False


def criterion_holds(
    name: str,
    fields: Mapping[str, Any],
    *,
    title: str = "",
    authority_titles: Sequence[str] = (),
    disqualified: bool = False,
) -> bool:
    if name == "fit":
        return not disqualified and (name not in fields or says_yes(fields[name]))
    if says_yes(fields.get(name)):
        return True
    return name == "authority" and name not in fields and _title_has(title, authority_titles)


def missing_criteria(
    require: Sequence[str],
    fields: Mapping[str, Any],
    *,
    title: str = "",
    authority_titles: Sequence[str] = (),
    disqualified: bool = False,
) -> list[str]:
    """The required criteria that do not hold yet, in the order required."""
    return [
        name
        for name in require
        if not criterion_holds(
            name, fields, title=title, authority_titles=authority_titles, disqualified=disqualified
        )
    ]


def criteria_state(
    names: Sequence[str],
    fields: Mapping[str, Any],
    *,
    title: str = "",
    authority_titles: Sequence[str] = (),
    disqualified: bool = False,
) -> dict[str, bool]:
    """Each criterion -> whether it holds (for the alert and ``lead show``)."""
    return {
        name: criterion_holds(
            name, fields, title=title, authority_titles=authority_titles, disqualified=disqualified
        )
        for name in names
    }
