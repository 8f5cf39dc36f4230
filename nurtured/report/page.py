"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no script,
nothing fetched from anywhere (the Content-Security-Policy meta tag says so to the
browser too). Every value from the database is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from nurtured.report import charts
from nurtured.report.shape import LOST, OUTCOMES, RATES, STAGES, percent

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;
margin:0;background:#f7fafc}
header{background:#1a365d;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.85}
main{padding:16px 24px;max-width:1280px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:12px 16px;
margin:0 0 16px;overflow-x:auto;min-width:0}
h2{font-size:16px;margin:0 0 8px}h3{font-size:14px;margin:12px 0 4px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 16px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#4a5568;font-size:12px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #edf2f7;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f7fafc;font-weight:600}
svg.chart{width:100%;height:auto;max-width:640px}
pre{white-space:pre-wrap;margin:0}.muted{color:#718096}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="muted">{escape(empty)}</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def _emails(table_data: Mapping[str, Mapping[str, Any]], first: str) -> str:
    headers = [first, "sent", "leads", *(f"{r} rate" for r in RATES)]
    rows = ([name, row["sent"], row["leads"], *(percent(row["rates"][r]) for r in RATES)]
            for name, row in table_data.items())  # fmt: skip
    return table(headers, rows, "nothing sent in this period")


def _cards(data: Mapping[str, Any]) -> str:
    total, emails = data["funnel"]["total"], data["emails"]
    cards = [("emails sent", emails["sent"]), ("leads mailed", emails["leads"]),
             ("open rate", percent(emails["rates"]["open"])),
             ("click rate", percent(emails["rates"]["click"])),
             ("reply rate", percent(emails["rates"]["reply"])),
             ("handed to sales", total["sql"]), ("won", total["won"])]  # fmt: skip
    inner = "".join(f'<div class="card"><b>{escape(str(v))}</b><span>{escape(k)}</span></div>'
                    for k, v in cards)  # fmt: skip
    return f'<div class="cards">{inner}</div>'


def _attribution(data: Mapping[str, Any]) -> str:
    parts = []
    for kind in OUTCOMES:
        last = data["last_touch"].get(kind, {})
        paths = data["paths"].get(kind, {})
        parts.append(f"<div><h3>{escape(kind)}</h3>"
                     + table(["last email before", kind], list(last.items())[:10])
                     + table(["emails before (in order, last 5)", kind], list(paths.items())[:10])
                     + "</div>")  # fmt: skip
    return f'<div class="grid">{"".join(parts)}</div>'


def page(data: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()) -> str:
    """The page for a report's data; ``extra`` holds (title, HTML fragment) sections."""
    funnel = data["funnel"]
    by_source = table(["source", *STAGES, *LOST],
                      ([s, *(row[c] for c in STAGES + LOST)]
                       for s, row in funnel["by_source"].items()))  # fmt: skip
    bounces = table(["class", "notices", "leads", "emails"],
                    ([c, b["notices"], b["leads"], b["emails"]]
                     for c, b in data["bounces"].items()))  # fmt: skip
    before = table(["outcome", "outcomes", "average emails before", "median"],
                   ([k, v["outcomes"], v["average"] if v["average"] is not None else "-",
                     v["median"] if v["median"] is not None else "-"]
                    for k, v in data["before"].items()))  # fmt: skip
    machine = data["emails"]["machine"]
    note = ""
    if machine:
        note = ('<p class="muted">Emails opened or clicked only by machines (scanners, image '
                f"proxies), not counted as opens or clicks: {machine}.</p>")  # fmt: skip
    body = [
        _cards(data),
        '<div class="grid">',
        _section("Funnel", charts.funnel_chart(funnel["total"])),
        _section("Rates over time", charts.rates_chart(data["by_day"]), note),
        "</div>",
        _section("Leads by source", by_source),
        _section("Emails by stream", _emails(data["by_stream"], "stream")),
        _section("Emails by step", _emails(data["by_step"], "step")),
        _section("Emails by source", _emails(data["by_source"], "source")),
        '<div class="grid">',
        _section("Emails before handoff", charts.before_chart(data["before"]), before),
        _section("Bounces by class", bounces,
                 '<p class="muted">hard: the address is dead; soft: full or delayed, '
                 "counted in a row; policy: blocked (5.7.x), the address may be fine.</p>"),
        "</div>",
        _section("Attribution: what came before replies, MQLs, handoffs and wins",
                 _attribution(data)),
        *(_section(title, fragment) for title, fragment in extra),
    ]  # fmt: skip
    period = f"{data['since']} .. {data['until']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>nurtured report {escape(period)}</title><style>{CSS}</style></head>"
        f"<body><header><h1>nurtured report</h1><p>{escape(period)}</p></header>"
        f"<main>{''.join(body)}</main></body></html>\n"
    )
