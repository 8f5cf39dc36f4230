"""Scale of the due scan: 10k, 100k and 1M active enrollments with 1,000 due. The lease
(due scan + lease update + read back) and the claim of the 1,000 must stay flat as the
total grows. Then the daemon itself (``nurtured run --once``) makes passes over the 1M
leads in a process of its own, and its peak RSS is read with wait4.

    python3 -m bench.scale --out FILE [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
from datetime import timedelta
from pathlib import Path

from bench.common import (
    NOW,
    Figure,
    StageTimes,
    bench_env,
    create_schema,
    db_path,
    instrument,
    log,
    run_measured,
    seed,
    verdict,
    workdir,
    write_project,
)

DUE = 1_000
REPEAT = 5
DAEMON_BATCH = 500  # the default batch_size: the daemon as shipped
FLAT = 1.5  # "flat": the largest size within 1.5x of the smallest (or within NOISE)
NOISE = 0.003  # seconds: differences below this are timer noise on this machine
RSS_LIMIT_MB = 100.0


def reset(config: Path, leads: int, due_ids: list[int], due_at: dict[int, str]) -> None:
    """Undo one pass over the due leads, so the next repetition sees the same database."""
    conn = sqlite3.connect(db_path(config), isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("DELETE FROM link")
        conn.execute("DELETE FROM event")
        conn.execute("DELETE FROM delivery WHERE id > ?", (leads,))
        conn.execute("DELETE FROM enrollment WHERE id > ?", (leads,))
        conn.executemany(
            "UPDATE enrollment SET state = 'active', position = 1, next_due_at = ?, lease = NULL,"
            " active_lead = lead_id, left_at = NULL, reason = '' WHERE id = ?",
            [(due_at[i], i) for i in due_ids],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


async def measure(
    config: Path, leads: int, due_ids: list[int], repeat: int
) -> dict[str, list[float]]:
    """Run one batch over the due leads ``repeat`` times; seconds per stage per repetition."""
    from bench.common import DiscardTransport
    from nurtured.app import load_app
    from nurtured.db import database
    from nurtured.engine import Engine, PassReport

    conn = sqlite3.connect(db_path(config))
    marks = ",".join("?" * len(due_ids))
    due_at = dict(
        conn.execute(f"SELECT id, next_due_at FROM enrollment WHERE id IN ({marks})", due_ids)  # noqa: S608
    )
    conn.close()
    app = load_app(config)
    samples: dict[str, list[float]] = {"lease": [], "claim": [], "reads+plan": [], "batch": []}
    async with database(app.settings.database.url):
        engine = Engine(
            settings=app.settings,
            catalog=app.catalog,
            renderer=app.renderer,
            transport=DiscardTransport(),
        )
        for _ in range(repeat):
            times = StageTimes()
            undo = instrument(times)
            try:
                report = PassReport()
                picked = await engine.process_batch(NOW, report)
            finally:
                undo()
            if picked != len(due_ids) or report["sent"] != len(due_ids):
                raise RuntimeError(f"expected {len(due_ids)} due, leased {picked}: {report}")
            stages = times.stages()
            for key in ("lease", "claim", "reads+plan"):
                samples[key].append(stages[key])
            samples["batch"].append(times.seconds["batch"])
            reset(config, leads, due_ids, due_at)
    return samples


def daemon_pass(config: Path, hours: int) -> tuple[float, float, str]:
    """``nurtured run --once`` at NOW + hours: (seconds, peak RSS MB, its summary line)."""
    now = (NOW + timedelta(hours=hours)).isoformat()
    cmd = [sys.executable, "-m", "nurtured", "run", "--config", str(config), "--once", "--now", now]
    result = run_measured(cmd, cwd=config.parent, env=bench_env())
    if result.returncode != 0:
        raise RuntimeError(f"nurtured run --once failed: {result.stderr[-2000:]}")
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return result.seconds, result.peak_rss_mb, summary


async def run(args: argparse.Namespace) -> list[Figure]:
    sizes = [10_000, 30_000] if args.quick else [10_000, 100_000, 1_000_000]
    repeat = 2 if args.quick else REPEAT
    due = 200 if args.quick else DUE
    medians: dict[int, dict[str, float]] = {}
    figures: list[Figure] = []
    rss: list[tuple[int, float, float, str]] = []
    for size in sizes:
        with workdir(f"scale{size}") as root:
            config = write_project(root, transport="outbox", batch_size=due)
            await create_schema(config)
            seeded = seed(config, leads=size, due=due, history=True)
            log(
                f"scale: {size:,} leads + enrollments + deliveries seeded in {seeded.seconds:.1f} s"
            )
            samples = await measure(config, size, seeded.due_ids, repeat)
            medians[size] = {k: statistics.median(v) for k, v in samples.items()}
            log(
                f"scale: {size:,}: lease {1000 * medians[size]['lease']:.1f} ms, "
                f"claim {1000 * medians[size]['claim']:.1f} ms, "
                f"batch {1000 * medians[size]['batch']:.0f} ms"
            )
            if size == sizes[-1]:
                # Enrollments fall due evenly over 30 days: a pass at NOW + h hours finds
                # about size * h / 720 of them due (plus the 1,000). The daemon runs with
                # the default batch size, as shipped.
                write_project(root, transport="outbox", batch_size=DAEMON_BATCH)
                for hours in (2,) if args.quick else (2, 12):
                    seconds, peak, summary = daemon_pass(config, hours)
                    rss.append((hours, seconds, peak, summary))
                    log(
                        f"scale: daemon pass at +{hours} h: {seconds:.1f} s, peak RSS "
                        f"{peak:.0f} MB ({summary})"
                    )

    small, large = sizes[0], sizes[-1]
    for stage, label in (
        ("lease", "due scan + lease"),
        ("claim", "claim"),
        ("reads+plan", "lead/delivery reads + plan"),
        ("batch", "whole batch"),
    ):
        base = medians[small][stage]
        for size in sizes:
            value = medians[size][stage]
            ratio = value / base if base else 1.0
            flat = ratio <= FLAT or value - base <= NOISE
            is_target = stage in ("lease", "claim") and size != small
            figures.append(
                Figure(
                    "scale",
                    f"{label} of {due:,} due, {size:,} enrollments",
                    round(1000 * value, 1),
                    "ms",
                    f"<= {FLAT}x the {small // 1000}k figure"
                    if is_target
                    else f"{ratio:.2f}x the {small // 1000}k figure",
                    verdict(flat) if is_target else "INFO",
                    f"{ratio:.2f}x; median of {repeat}" if is_target else f"median of {repeat}",
                )
            )
    for hours, seconds, peak, summary in rss:
        sent = summary.split("sent ")[-1].split(",")[0] if "sent " in summary else "?"
        figures.append(
            Figure(
                "scale",
                f"daemon peak RSS, pass over {large:,} leads at +{hours} h",
                round(peak, 1),
                "MB",
                f"< {RSS_LIMIT_MB:.0f} MB",
                verdict(peak < RSS_LIMIT_MB),
                f"`nurtured run --once` (batch_size {DAEMON_BATCH}), {sent} emails to the outbox "
                f"in {seconds:.0f} s",
            )
        )
    return figures


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run)
