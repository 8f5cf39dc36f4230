"""Mixed load, embedded mode: click redirect latency while ``nurtured run`` sends at full
speed, its tracking server sharing the engine's event loop (as it does in production).

One ``nurtured run`` process (SQLite, SMTP to the discarding sink in its own process)
serves clicks on deliveries sent two days before. A click driver in another process
(bench/clicker.py, aiohttp, a fixed rate: latencies count from when each click was due)
measures p50/p99 first with nothing to send, then while 20,000 due emails go out (from
the sink's first email to its last). Every click answered must be one click event.

    python3 -m bench.mixed --out FILE [--quick]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Figure,
    Sink,
    bench_env,
    create_schema,
    db_path,
    log,
    seed,
    stamp,
    until,
    verdict,
    workdir,
    write_project,
)
from bench.tracking import SALES_READY, click_paths, count_clicks

IDLE_P99_MS = 20.0
BUSY_P99_MS = 40.0
RATE = 200.0  # clicks a second: a busy campaign's clicks, not a load test
CLICK_LEADS = 1_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def park(config: Path, first_id: int, due: datetime | None) -> None:
    """Enrollments from ``first_id`` on: due at ``due``, or parked a year ahead."""
    moment = due if due is not None else datetime.now(UTC) + timedelta(days=365)
    conn = sqlite3.connect(db_path(config), isolation_level=None)
    try:
        conn.execute(
            "UPDATE enrollment SET next_due_at = ? WHERE id >= ?", (stamp(moment), first_id)
        )
    finally:
        conn.close()


def clicker(port: int, paths: Path, seconds: float | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.clicker", "--port", str(port), "--paths", str(paths),
           "--rate", str(RATE)]  # fmt: skip
    if seconds is not None:
        cmd += ["--seconds", str(seconds)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=bench_env(), stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stdout is not None
    if proc.stdout.readline().split()[:1] != ["ready"]:
        proc.kill()
        raise RuntimeError("the click driver did not start")
    return proc


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    return dict(json.loads(out.strip().splitlines()[-1]))


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "nurtured", "run", "--config", str(config)]
    return subprocess.Popen(cmd, cwd=ROOT, env=bench_env(), stdout=subprocess.DEVNULL)  # noqa: S603


def wait_for_port(port: int, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError("nurtured run exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nurtured run did not listen")


async def run(args: argparse.Namespace) -> list[Figure]:
    emails = 1_000 if args.quick else 20_000
    idle_seconds = 3 if args.quick else 10
    with workdir("mixed") as root, Sink() as sink:
        port = free_port()
        config = write_project(root, port=sink.port, pool_size=8)
        with config.open("a") as handle:  # see bench.tracking's SALES_READY
            handle.write(f'\n[scoring]\nsales_ready = {SALES_READY}\n\n[inbox]\nsource = "none"\n'
                         f'\n[http]\nlisten = "127.0.0.1:{port}"\n')  # fmt: skip
        await create_schema(config)
        sent = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        leads = 300 if args.quick else CLICK_LEADS
        seed(config, leads=leads + emails, due=leads + emails, now=sent)
        park(config, leads + 1, None)
        clicks = await click_paths(config, sent)
        park(config, 1, None)  # the click leads' next emails too: idle means idle
        paths = root / "paths.txt"
        paths.write_text("\n".join(clicks) + "\n")
        log(f"mixed: {len(clicks):,} click URLs; `nurtured run` with {emails:,} to send")
        daemon = start_daemon(config)
        try:
            wait_for_port(port, daemon)
            warm = result(clicker(port, paths, 1.0))  # first connections, first queries
            idle = result(clicker(port, paths, idle_seconds))
            log(f"mixed: idle p99 {idle['p99_ms']:.1f} ms; now the send")
            base = sink.count()[0]
            park(config, leads + 1, datetime.now(UTC) - timedelta(minutes=1))
            deadline = time.monotonic() + 900
            await until(lambda: sink.count()[0] > base, deadline, 0.02)
            started = time.perf_counter()
            busy_proc = clicker(port, paths)
            await until(lambda: sink.count()[0] - base >= emails, deadline)
            send_seconds = time.perf_counter() - started
            busy_proc.send_signal(signal.SIGTERM)
            busy = result(busy_proc)
            got = sink.count()[0] - base
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        recorded, _ = count_clicks(config)

    answered = warm["ok"] + idle["ok"] + busy["ok"]
    note = f"{RATE:.0f} clicks/s from another process (aiohttp), {len(clicks):,} links"
    return [
        Figure("mixed", "click p50, nothing to send", round(idle["p50_ms"], 2), "ms", "", "INFO",
               note),
        Figure("mixed", "click p99, nothing to send", round(idle["p99_ms"], 2), "ms",
               f"< {IDLE_P99_MS:.0f} ms", verdict(idle["p99_ms"] < IDLE_P99_MS),
               f"{idle['ok']:,} clicks in {idle['seconds']:.0f} s, max {idle['max_ms']:.0f} ms"),
        Figure("mixed", f"click p50, while sending {emails:,}", round(busy["p50_ms"], 2), "ms", "",
               "INFO", f"{busy['ok']:,} clicks during the send"),
        Figure("mixed", f"click p99, while sending {emails:,}", round(busy["p99_ms"], 2), "ms",
               f"< {BUSY_P99_MS:.0f} ms", verdict(busy["p99_ms"] < BUSY_P99_MS),
               f"max {busy['max_ms']:.0f} ms; {busy['bad']} non-3xx, {busy['errors']} errors"),
        Figure("mixed", "  emails/s meanwhile", round(got / send_seconds), "msg/s", "", "INFO",
               f"{got:,} emails in {send_seconds:.1f} s at the sink"),
        Figure("mixed", "  every click recorded", recorded, "events", f"== {answered:,} answered",
               verdict(recorded == answered and got >= emails)),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run)
