"""The report's numbers from the aggregate rows of ``queries.py``: rates, the funnel,
emails before an outcome, attribution; and the plain-text tables. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nurtured.report.queries import EMAIL_COLUMNS

STAGES = ("new", "mailed", "opened", "clicked", "replied", "mql", "sql", "won")
LOST = ("unsubscribed", "bounced")  # lead counts shown beside the funnel
_STAGE_OF = {"open": "opened", "click": "clicked", "reply": "replied", "sales_ready": "mql",
             "unsubscribe": "unsubscribed"}  # fmt: skip
RATES = {"open": "opened", "click": "clicked", "reply": "replied", "unsubscribe": "unsubscribed",
         "bounce": "bounced"}  # fmt: skip
OUTCOMES = ("reply", "mql", "handoff", "won")
BOUNCE_CLASSES = ("hard", "soft", "policy")


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def email_row(counts: Sequence[Any]) -> dict[str, Any]:
    """EMAIL_COLUMNS counts as a dict, with ``rates`` per email sent (None: none sent)."""
    row: dict[str, Any] = {c: int(v or 0) for c, v in zip(EMAIL_COLUMNS, counts, strict=True)}
    row["rates"] = {name: ratio(row[column], row["sent"]) for name, column in RATES.items()}
    return row


def email_table(rows: Iterable[Sequence[Any]], width: int) -> dict[str, dict[str, Any]]:
    """Rows whose first ``width`` values are the key, as {"key": row}; a step's key is
    "stream #index content"."""
    table: dict[str, dict[str, Any]] = {}
    for values in rows:
        key = values[:width]
        if width == 3:  # (stream, step index, content)
            name = f"{key[0]} #{key[1]} {key[2]}"
        else:
            name = " / ".join(str(k) if k not in (None, "") else "-" for k in key)
        table[name] = email_row(values[width:])
    return table


def funnel(rows: Iterable[tuple[str, str, int]]) -> dict[str, Any]:
    """Distinct leads per stage, in total and by source (a lead has one source, so the
    sources add up to the total)."""
    by_source: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAGES + LOST, 0))
    for source, kind, n in rows:
        by_source[source or "-"][_STAGE_OF.get(kind, kind)] += n
    total = dict.fromkeys(STAGES + LOST, 0)
    for row in by_source.values():
        for stage, n in row.items():
            total[stage] += n
    return {"total": total, "by_source": dict(sorted(by_source.items()))}


def bounces(rows: Iterable[tuple[str, int, int, int]]) -> dict[str, dict[str, int]]:
    result = {cls: {"notices": 0, "leads": 0, "emails": 0} for cls in BOUNCE_CLASSES}
    for cls, notices, leads, emails in rows:
        result[cls] = {"notices": notices, "leads": leads, "emails": emails}
    return result


def before(rows: Iterable[tuple[str, int, int]]) -> dict[str, dict[str, Any]]:
    """Per outcome: how many emails the lead had been sent before it, as a distribution
    {emails: outcomes} with its average and median."""
    spread: dict[str, dict[int, int]] = defaultdict(dict)
    for kind, emails, n in rows:
        spread[kind][emails] = n
    result: dict[str, dict[str, Any]] = {}
    for kind in OUTCOMES:
        counts = spread.get(kind, {})
        total = sum(counts.values())
        average = round(sum(e * n for e, n in counts.items()) / total, 1) if total else None
        result[kind] = {"outcomes": total, "average": average, "median": _median(counts),
                        "distribution": {str(e): n for e, n in sorted(counts.items())}}  # fmt: skip
    return result


def _median(counts: Mapping[int, int]) -> float | None:
    total = sum(counts.values())
    if not total:
        return None
    middle = sorted(e for e, n in counts.items() for _ in range(n))
    half = total // 2
    return float(middle[half]) if total % 2 else (middle[half - 1] + middle[half]) / 2


def attribution(rows: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """{outcome: {content or path: outcomes}}, most frequent first (rows come so)."""
    result: dict[str, dict[str, int]] = {kind: {} for kind in OUTCOMES}
    for kind, what, n in rows:
        result.setdefault(kind, {})[what] = n
    return result


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _lines_emails(title: str, table: Mapping[str, Mapping[str, Any]]) -> list[str]:
    head = f"{title:<28}{'sent':>9}{'leads':>9}" + "".join(f"{c:>12}" for c in RATES)
    lines = [head]
    for name, row in table.items():
        rates = "".join(f"{percent(row['rates'][r]):>12}" for r in RATES)
        lines.append(f"{name[:28]:<28}{row['sent']:>9}{row['leads']:>9}{rates}")
    return [*lines, ""]


def format_text(data: Mapping[str, Any]) -> str:
    """The report as plain-text tables (the sales part is added by its own formatter)."""
    lines = [f"{data['since']} .. {data['until']}", ""]
    total = data["funnel"]["total"]
    lines.append("leads: " + ", ".join(f"{s} {total[s]}" for s in STAGES + LOST))
    emails = data["emails"]
    lines.append(f"emails: sent {emails['sent']} to {emails['leads']} leads; per email sent: "
                 + ", ".join(f"{r} {percent(v)}" for r, v in emails["rates"].items()))  # fmt: skip
    if emails["machine"]:
        lines.append(f"emails opened or clicked only by machines (scanners, image proxies), "
                     f"not counted above: {emails['machine']}")  # fmt: skip
    shown = ", ".join(f"{cls} {b['notices']} ({b['leads']} leads)"
                      for cls, b in data["bounces"].items())  # fmt: skip
    lines += [f"bounces: {shown}", ""]
    for key, title in (("by_stream", "stream"), ("by_step", "step"), ("by_source", "source")):
        lines += _lines_emails(title, data[key])
    for kind, info in data["before"].items():
        if info["outcomes"]:
            lines.append(f"emails before {kind}: average {info['average']}, median "
                         f"{info['median']}, over {info['outcomes']}")  # fmt: skip
    for kind, contents in data["last_touch"].items():
        if contents:
            top = ", ".join(f"{c} {n}" for c, n in list(contents.items())[:5])
            lines.append(f"last email before {kind}: {top}")
    for kind, paths in data["paths"].items():
        for path, n in list(paths.items())[:3]:
            lines.append(f"{n} {kind} after: {path}")
    return "\n".join(lines).rstrip() + "\n"
