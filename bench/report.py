"""The report over a grown database: ``nurtured report``'s queries (build) and its HTML
page (charts included) at 10,000 and 100,000 leads (2,000 with ``--quick``).

Every lead got its stream's first email three days before; 40% opened it, 15% clicked,
3% replied, 1% bounced (inserted straight into SQLite, like the other benches' seeds).
The period is the last 30 days. Each figure is the median of 3 builds; the page is the
same data drawn (matplotlib SVG), which the daemon does in a thread.

    python3 -m bench.report --out FILE [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import time
from datetime import timedelta
from pathlib import Path

from bench.common import (
    NOW,
    Figure,
    create_schema,
    db_path,
    log,
    seed,
    stamp,
    workdir,
    write_project,
)

REPEAT = 3
SHARES = (("open", 0.40), ("click", 0.15), ("reply", 0.03), ("bounce", 0.01))


def add_events(config: Path, leads: int) -> int:
    """Reactions to each lead's first email (delivery id = lead id in the seed)."""
    rng = random.Random(7)
    at = stamp(NOW - timedelta(days=2))
    rows = []
    for lead in range(1, leads + 1):
        for kind, share in SHARES:
            if rng.random() < share:
                data = {"hard": True} if kind == "bounce" else {}
                rows.append((lead, lead, kind, at, json.dumps(data)))
    conn = sqlite3.connect(db_path(config), isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO event (lead_id, delivery_id, kind, occurred_at, stream_id, data) "
            "VALUES (?, ?, ?, ?, '', ?)",
            rows,
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return len(rows)


async def measure(config: Path) -> tuple[float, float, int]:
    """Median seconds of the build and of the page, and the page's size."""
    from nurtured.app import load_app
    from nurtured.db import database
    from nurtured.report import build
    from nurtured.report.queries import Period

    app = load_app(config)
    period = Period(NOW - timedelta(days=30), NOW)
    builds, pages, size = [], [], 0
    async with database(app.settings.database.url):
        for _ in range(REPEAT):
            started = time.perf_counter()
            data = await build.build(app, period)
            builds.append(time.perf_counter() - started)
            started = time.perf_counter()
            page = await asyncio.to_thread(build.html, data)
            pages.append(time.perf_counter() - started)
            size = len(page)
    return statistics.median(builds), statistics.median(pages), size


async def run(args: argparse.Namespace) -> list[Figure]:
    sizes = (2_000,) if args.quick else (10_000, 100_000)
    figures: list[Figure] = []
    for leads in sizes:
        with workdir("report") as root:
            config = write_project(root, transport="outbox")
            await create_schema(config)
            seed(config, leads=leads, due=0, history=True)
            events = add_events(config, leads)
            log(f"report: {leads:,} leads, {leads:,} emails, {events:,} events")
            built, drawn, size = await measure(config)
        note = f"{leads:,} emails, {events:,} events; median of {REPEAT}"
        figures += [
            Figure("report", f"report queries, {leads:,} leads", round(built, 3), "s", "",
                   "INFO", note),
            Figure("report", f"  HTML page with charts, {leads:,} leads", round(drawn, 3), "s",
                   "", "INFO", f"{size / 1024:.0f} KiB, self-contained"),
        ]  # fmt: skip
    return figures


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run)
