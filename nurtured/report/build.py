"""The whole report: the core numbers (queries.py shaped by shape.py) and the extra
sections after them, as one JSON-able dict, its text and its HTML page.

Extra sections are the place for parts that other wings own (the sales loop now, split
tests next): add a ``Section`` to ``SECTIONS``. Its ``collect`` runs the section's own
aggregate queries, its ``text`` and ``html`` show what ``collect`` returned; the data
lands in the JSON under ``name``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nurtured.app import App
from nurtured.report import queries as q
from nurtured.report import shape
from nurtured.report.queries import Period
from nurtured.report.sql import reading
from nurtured.sales.report import format_sales, sales_report
from nurtured.splits.report import format_variants, variants_report


@dataclass(frozen=True)
class Section:
    name: str  # its key in the report's data (and JSON)
    title: str  # its heading on the page
    collect: Callable[[App, Period], Awaitable[Any]]
    text: Callable[[Any], str]
    html: Callable[[Any], str]  # an HTML fragment (escaped by the section itself)


def _sales_html(data: Any) -> str:
    from nurtured.report.page import pre

    return pre(format_sales(data))


def _variants_html(data: Any) -> str:
    from nurtured.report.page import pre

    return pre(format_variants(data) or "No split tests.")


SECTIONS: tuple[Section, ...] = (
    Section("sales", "Sales: stages, handoffs, SLA, revenue",
            lambda app, p: sales_report(app, p.since, p.until), format_sales, _sales_html),
    Section("variants", "Split tests",
            lambda app, p: variants_report(app.catalog, p.since, p.until), format_variants,
            _variants_html),
)  # fmt: skip


async def core(period: Period) -> dict[str, Any]:
    """Everything but the extra sections: a fixed number of aggregate queries."""
    data: dict[str, Any] = {"since": period.since.isoformat(), "until": period.until.isoformat()}
    data["funnel"] = shape.funnel(await q.funnel_rows(period))
    (total,) = await q.email_rows(period, ())
    data["emails"] = shape.email_row(total)
    for name, keys in q.DIMENSIONS.items():
        data[name] = shape.email_table(await q.email_rows(period, keys), len(keys))
    data["by_day"] = shape.email_table(await q.day_rows(period), 1)
    data["bounces"] = shape.bounces(await q.bounce_rows(period))
    data["before"] = shape.before(await q.before_rows(period))
    data["last_touch"] = shape.attribution(await q.last_touch_rows(period))
    data["paths"] = shape.attribution(await q.path_rows(period))
    return data


async def build(app: App, period: Period) -> dict[str, Any]:
    """The core numbers and every extra section's data (the aggregate queries on a
    reading connection of their own: ``sql.reading``)."""
    async with reading():
        data = await core(period)
        for section in SECTIONS:
            data[section.name] = await section.collect(app, period)
    return data


def text(data: dict[str, Any]) -> str:
    parts = [shape.format_text(data)]
    parts += [section.text(data[section.name]) for section in SECTIONS if section.name in data]
    return "\n".join(parts)


def html(data: dict[str, Any]) -> str:
    from nurtured.report.page import page

    extra = [(s.title, s.html(data[s.name])) for s in SECTIONS if s.name in data]
    return page(data, extra)
