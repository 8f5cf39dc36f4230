"""The report's questions as aggregate statements: one GROUP BY query per table, whatever
the number of leads (no per-lead reads). Each returns plain rows for ``shape.py``.

An event counts for the email it belongs to (its delivery); a reply or unsubscribe
matched only by the sender's address counts for the last email sent to that lead before
it. Events within [since, until) count; an email's reactions count when the email was
sent in the period too (``email_rows``: rates per email sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nurtured.report.sql import Dialect, dialect, fetch

# (name, SQL expressions) the email tables are grouped by; d is the delivery, l its lead.
# A split test's variant plugs in here as ("variant", ("d.stream_id", "d.content_id",
# "d.variant")) once deliveries have that column.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "by_stream": ("d.stream_id",),
    "by_step": ("d.stream_id", "d.step_index", "d.content_id"),
    "by_source": ("l.source",),
}
EMAIL_COLUMNS = ("sent", "leads", "opened", "clicked", "replied", "unsubscribed", "bounced",
                 "machine")  # fmt: skip
TOUCH_DEPTH = 5  # a touch combination is the last this many emails before the outcome


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, **extra}


def _in(column: str) -> str:
    return f"{column} >= :since AND {column} < :until"


def _sent_before(lead: str, at: str) -> str:
    """The condition for the emails sent to ``lead`` at or before ``at`` (delivery p)."""
    status = dialect().by_lead("p.status")
    return f"p.lead_id = {lead} AND {status} = 'sent' AND p.sent_at <= {at}"


def _last_sent(lead: str, at: str, select: str) -> str:
    """A subquery: ``select`` of the last email sent to ``lead`` at or before ``at``."""
    return (f"(SELECT {select} FROM delivery p WHERE {_sent_before(lead, at)}"
            " ORDER BY p.sent_at DESC, p.id DESC LIMIT 1)")  # fmt: skip


def _touches(d: Dialect) -> str:
    """Per email: did it get a human open, click, a reply, an unsubscribe, a bounce."""
    human = f"NOT {d.flag('e.data', 'machine')}"
    delivered = d.flag("e.data", "delivered")
    return f"""
      touch AS (
        SELECT COALESCE(e.delivery_id, {_last_sent("e.lead_id", "e.occurred_at", "p.id")})
                 AS delivery_id,
               e.kind, {human} AS human, {delivered} AS delivered
        FROM event e
        WHERE e.kind IN ('open', 'click', 'reply', 'unsubscribe', 'complaint', 'bounce')
          AND {_in("e.occurred_at")}
      ),
      per AS (
        SELECT delivery_id,
          MAX(CASE WHEN kind = 'open' AND human THEN 1 ELSE 0 END) AS opened,
          MAX(CASE WHEN kind = 'click' AND human THEN 1 ELSE 0 END) AS clicked,
          MAX(CASE WHEN kind = 'reply' THEN 1 ELSE 0 END) AS replied,
          MAX(CASE WHEN kind IN ('unsubscribe', 'complaint') THEN 1 ELSE 0 END) AS unsubscribed,
          MAX(CASE WHEN kind = 'bounce' AND NOT delivered THEN 1 ELSE 0 END) AS bounced,
          MAX(CASE WHEN kind IN ('open', 'click') AND NOT human THEN 1 ELSE 0 END) AS machine
        FROM touch GROUP BY delivery_id
      )"""


# The lead a sent email counts for, as a person: a merged lead's row (status "merged",
# nurtured.data.merge) keeps only emails its survivor got too, so it is no extra person
# (its emails still count as emails).
PERSON = "CASE WHEN l.status <> 'merged' THEN d.lead_id END"


async def email_rows(period: Period, keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Emails sent in the period grouped by ``keys``: each row is the key values, then
    the EMAIL_COLUMNS counts (emails, distinct leads, emails opened by a human, ...).

    The emails and their reactions are counted apart and the two small grouped results
    joined by key: a join of every email to the reactions would be emails x reactions."""
    d = dialect()
    names = [f"k{i}" for i in range(len(keys))]
    picked = "".join(f"{expr} AS {name}, " for expr, name in zip(keys, names, strict=True))
    group = f"GROUP BY {', '.join(names)}" if keys else ""
    same = " AND ".join(f"s.{n} = r.{n}" for n in names) or "1 = 1"
    flags = EMAIL_COLUMNS[2:]
    sums = ", ".join(f"SUM(per.{c}) AS {c}" for c in flags)
    sql = f"""
      WITH {_touches(d)},
      reacted AS (
        SELECT {picked}{sums}
        FROM per JOIN delivery d ON d.id = per.delivery_id JOIN lead l ON l.id = d.lead_id
        WHERE d.status = 'sent' AND {_in("d.sent_at")} {group}
      ),
      sent AS (
        SELECT {picked}COUNT(*) AS sent, COUNT(DISTINCT {PERSON}) AS leads
        FROM delivery d JOIN lead l ON l.id = d.lead_id
        WHERE d.status = 'sent' AND {_in("d.sent_at")} {group}
      )
      SELECT {"".join(f"s.{n}, " for n in names)}s.sent, s.leads,
             {", ".join(f"COALESCE(r.{c}, 0)" for c in flags)}
      FROM sent s LEFT JOIN reacted r ON {same}
      {f"ORDER BY {', '.join(f's.{n}' for n in names)}" if names else ""}"""
    return await fetch(sql, period.params())


async def day_rows(period: Period) -> list[tuple[Any, ...]]:
    """``email_rows`` by the UTC day the emails were sent: the rates over time."""
    return await email_rows(period, (dialect().day("d.sent_at"),))


async def funnel_rows(period: Period) -> list[tuple[str, str, int]]:
    """(lead source, stage, distinct leads) for every stage reached in the period."""
    d = dialect()
    human = f"NOT {d.flag('e.data', 'machine')}"
    sql = f"""
      SELECT l.source, 'new', COUNT(*) FROM lead l
        WHERE {_in("l.created_at")} AND l.status <> 'merged' GROUP BY l.source
      UNION ALL
      SELECT l.source, 'mailed', COUNT(DISTINCT {PERSON}) FROM delivery d
        JOIN lead l ON l.id = d.lead_id
        WHERE d.status = 'sent' AND {_in("d.sent_at")} GROUP BY l.source
      UNION ALL
      SELECT source, stage, COUNT(DISTINCT lead_id) FROM (
        SELECT l.source AS source, e.lead_id AS lead_id,
               CASE e.kind WHEN 'complaint' THEN 'unsubscribe' ELSE e.kind END AS stage
        FROM event e JOIN lead l ON l.id = e.lead_id
        WHERE e.kind IN ('open', 'click', 'reply', 'sales_ready', 'unsubscribe', 'complaint')
          AND (e.kind NOT IN ('open', 'click') OR {human}) AND {_in("e.occurred_at")}
      ) x GROUP BY source, stage
      UNION ALL
      SELECT l.source, 'bounced', COUNT(DISTINCT e.lead_id) FROM event e
        JOIN lead l ON l.id = e.lead_id
        WHERE e.kind = 'bounce' AND {d.flag("e.data", "hard")} AND {_in("e.occurred_at")}
        GROUP BY l.source
      UNION ALL
      SELECT l.source, 'sql', COUNT(DISTINCT h.lead_id) FROM handoff h
        JOIN lead l ON l.id = h.lead_id WHERE {_in("h.handed_at")} GROUP BY l.source
      UNION ALL
      SELECT l.source, 'won', COUNT(DISTINCT h.lead_id) FROM handoff h
        JOIN lead l ON l.id = h.lead_id
        WHERE h.state = 'won' AND {_in("h.closed_at")} GROUP BY l.source"""
    return [(str(s or ""), str(k), int(n)) for s, k, n in await fetch(sql, period.params())]


async def bounce_rows(period: Period) -> list[tuple[str, int, int, int]]:
    """(class, bounce notices, distinct leads, distinct emails) per class: hard (the
    address is dead), soft (full, delayed, temporary), policy (5.7.x, blocked)."""
    d = dialect()
    sql = f"""
      SELECT cls, COUNT(*), COUNT(DISTINCT lead_id), COUNT(DISTINCT delivery_id) FROM (
        SELECT e.lead_id, e.delivery_id,
               CASE WHEN {d.flag("e.data", "hard")} THEN 'hard'
                    WHEN {d.flag("e.data", "policy")} THEN 'policy' ELSE 'soft' END AS cls
        FROM event e
        WHERE e.kind = 'bounce' AND NOT {d.flag("e.data", "delivered")}
          AND {_in("e.occurred_at")}
      ) b GROUP BY cls ORDER BY cls"""
    return [(str(c), int(n), int(leads), int(emails))
            for c, n, leads, emails in await fetch(sql, period.params())]  # fmt: skip


def _outcomes() -> str:
    """Every reply, MQL (sales-ready), handoff and win in the period, numbered."""
    return f"""
      outcome AS (
        SELECT ROW_NUMBER() OVER (ORDER BY at, lead_id, kind) AS oid, kind, lead_id, at FROM (
          SELECT 'reply' AS kind, e.lead_id AS lead_id, e.occurred_at AS at FROM event e
            WHERE e.kind = 'reply' AND {_in("e.occurred_at")}
          UNION ALL
          SELECT 'mql', e.lead_id, e.occurred_at FROM event e
            WHERE e.kind = 'sales_ready' AND {_in("e.occurred_at")}
          UNION ALL
          SELECT 'handoff', h.lead_id, h.handed_at FROM handoff h WHERE {_in("h.handed_at")}
          UNION ALL
          SELECT 'won', h.lead_id, h.handed_at FROM handoff h
            WHERE h.state = 'won' AND {_in("h.closed_at")}
        ) o
      )"""


async def before_rows(period: Period) -> list[tuple[str, int, int]]:
    """(outcome, emails the lead had been sent before it, how many outcomes)."""
    count = f"(SELECT COUNT(*) FROM delivery p WHERE {_sent_before('o.lead_id', 'o.at')})"
    sql = f"""
      WITH {_outcomes()}
      SELECT kind, n, COUNT(*) FROM (SELECT o.kind AS kind, {count} AS n FROM outcome o) c
      GROUP BY kind, n ORDER BY kind, n"""
    return [(str(k), int(n), int(c)) for k, n, c in await fetch(sql, period.params())]


async def last_touch_rows(period: Period) -> list[tuple[str, str, int]]:
    """(outcome, the content sent last before it, how many outcomes): last-touch."""
    last = _last_sent("o.lead_id", "o.at", "p.content_id")
    sql = f"""
      WITH {_outcomes()}
      SELECT kind, content, COUNT(*) FROM (
        SELECT o.kind AS kind, {last} AS content FROM outcome o
      ) t WHERE content IS NOT NULL GROUP BY kind, content ORDER BY kind, COUNT(*) DESC, content"""
    return [(str(k), str(c), int(n)) for k, c, n in await fetch(sql, period.params())]


async def path_rows(period: Period, depth: int = TOUCH_DEPTH) -> list[tuple[str, str, int]]:
    """(outcome, the last ``depth`` contents before it in sending order, how many
    outcomes): touch-combination attribution."""
    d = dialect()
    sql = f"""
      WITH {_outcomes()},
      touches AS (
        SELECT o.oid, o.kind, p.content_id, p.sent_at, p.id,
               ROW_NUMBER() OVER (PARTITION BY o.oid ORDER BY p.sent_at DESC, p.id DESC) AS back
        FROM outcome o JOIN delivery p ON {_sent_before("o.lead_id", "o.at")}
      ),
      paths AS (
        SELECT oid, kind, {d.ordered_list("content_id", "sent_at, id")} AS path FROM (
          SELECT * FROM touches WHERE back <= :depth ORDER BY oid, sent_at, id
        ) t GROUP BY oid, kind
      )
      SELECT kind, path, COUNT(*) FROM paths GROUP BY kind, path
      ORDER BY kind, COUNT(*) DESC, path"""
    rows = await fetch(sql, period.params(depth=depth))
    return [(str(k), str(p), int(n)) for k, p, n in rows]
