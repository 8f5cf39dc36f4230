"""Import: a 100,000-row CSV with duplicates (other spellings of earlier addresses, some
far apart, some in the same chunk) and a few invalid rows, through ``nurtured leads
import`` in a process of its own: rows per second and peak RSS. Beside it, the same file
through the CSV reader and validation alone (no database): the import's ceiling.

    python3 -m bench.intake --out FILE [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import csv
import random
import sqlite3
import sys
import time
from pathlib import Path

from bench.common import (
    FIRST,
    LAST,
    NOW,
    TITLES,
    ZONES,
    Figure,
    bench_env,
    create_schema,
    db_path,
    log,
    run_measured,
    verdict,
    workdir,
    write_project,
)

DUPLICATES = 0.15
INVALID = 0.005
RSS_BUDGET_MB = 100.0  # not an issue target: the daemon's budget, for scale


def write_csv(path: Path, rows: int, rng_seed: int = 5) -> int:
    """Write the file; return how many distinct valid addresses it holds."""
    rng = random.Random(rng_seed)
    emails: list[str] = []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "email",
                "first_name",
                "last_name",
                "company",
                "title",
                "source",
                "interest",
                "timezone",
                "country",
            ]
        )
        for i in range(rows):
            roll = rng.random()
            if roll < INVALID:
                email = f"not-an-address-{i}"
            elif roll < INVALID + DUPLICATES and emails:
                # Half from the last 500 rows (same chunk), half from anywhere before.
                pool = emails[-500:] if rng.random() < 0.5 else emails
                email = rng.choice(pool).upper()
            else:
                email = f"Person.{i}@Company{i % 997}.example"
                emails.append(email)
            writer.writerow(
                [
                    email,
                    FIRST[i % len(FIRST)],
                    LAST[i % len(LAST)],
                    f"Company {i % 997}",
                    TITLES[i % len(TITLES)],
                    ("webinar", "white-paper", "badge-scan")[i % 3],
                    ("product-a", "product-b", "product-a;product-b")[i % 3],
                    ZONES[i % len(ZONES)],
                    ("DE", "US", "JP")[i % 3],
                ]
            )
    return len(emails)


def validate_only(path: Path) -> tuple[int, float]:
    """(rows, seconds) through nurtured's CSV reader and validation, nothing stored."""
    from nurtured.data.importing import read_csv

    started = time.perf_counter()
    count = sum(1 for _ in read_csv(path))
    return count, time.perf_counter() - started


async def run(args: argparse.Namespace) -> list[Figure]:
    rows = args.rows or (10_000 if args.quick else 100_000)
    with workdir("import") as root:
        config = write_project(root, transport="outbox")
        await create_schema(config)
        path = root / "leads.csv"
        unique = write_csv(path, rows)
        log(f"import: {rows:,} rows ({unique:,} distinct valid addresses) in {path.name}")
        checked, validate_seconds = validate_only(path)
        cmd = [
            sys.executable,
            "-m",
            "nurtured",
            "leads",
            "import",
            "--config",
            str(config),
            "--now",
            NOW.isoformat(),
            str(path),
        ]
        result = run_measured(cmd, cwd=root, env=bench_env())
        if result.returncode != 0:
            raise RuntimeError(f"nurtured leads import failed: {result.stderr[-2000:]}")
        summary = result.stdout.strip().splitlines()[-1]
        conn = sqlite3.connect(db_path(config))
        stored = conn.execute("SELECT count(*) FROM lead").fetchone()[0]
        enrolled = conn.execute("SELECT count(*) FROM enrollment").fetchone()[0]
        conn.close()
    rate = rows / result.seconds
    ceiling = checked / validate_seconds
    log(f"import: {result.seconds:.1f} s, peak RSS {result.peak_rss_mb:.0f} MB; {summary}")
    return [
        Figure(
            "import",
            "CSV read + validation alone",
            round(ceiling),
            "rows/s",
            "ceiling",
            "INFO",
            f"{checked:,} rows in {validate_seconds:.1f} s",
        ),
        Figure(
            "import",
            f"`nurtured leads import`, {rows:,} rows",
            round(rate),
            "rows/s",
            f"ceiling {ceiling:.0f}",
            "INFO",
            f"{rate / ceiling:.0%} of ceiling; {result.seconds:.1f} s; {summary}",
        ),
        Figure(
            "import",
            "  every distinct valid address stored once",
            stored,
            "leads",
            f"== {unique:,}",
            verdict(stored == unique == enrolled),
            f"{enrolled:,} enrollments",
        ),
        Figure(
            "import",
            "  import peak RSS",
            round(result.peak_rss_mb, 1),
            "MB",
            f"no target (daemon budget {RSS_BUDGET_MB:.0f} MB)",
            "INFO",
            "whole process, wait4 ru_maxrss",
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=0, help="CSV rows (default 100000)")


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run, add_arguments)
