"""Tracking server: click redirects per second and p50/p99 latency, measured with wrk on
loopback against one server process, then every click counted in the database. Beside
it, in the same run with the same wrk settings, the ceiling: a bare aiohttp app that
answers every /c/<token> with a 302 and records nothing.

Skipped, with the reason, when wrk (Debian package ``wrk``), aiohttp or
``nurtured.tracking`` is not there.

    python3 -m bench.tracking --out FILE [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    DiscardTransport,
    Figure,
    bench_env,
    create_schema,
    db_path,
    log,
    seed,
    skip,
    start_server,
    verdict,
    workdir,
    write_project,
)

TARGET_RATE = 5_000
TARGET_P99_MS = 20.0
THREADS = 1  # two cores: one for wrk, one for the server
CONNECTIONS = 32
LEADS = 2_000
# Each lead clicks its link about 25 times in the 10 s: with the default sales_ready
# (100, 5 points a click) every lead would turn sales-ready inside the window and the
# run would measure 2,000 sales alerts (the inbound bench measures those), not redirects.
SALES_READY = 1_000_000

# A browser's User-Agent: wrk sends none, and a click without one is (rightly) taken for
# a machine's, which is recorded but never scored or acted on.
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
LUA = """\
wrk.headers["User-Agent"] = "%s"
paths = {
%s
}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx/3xx answers
    errors: int  # socket errors of every kind

    @property
    def ok(self) -> int:
        return self.requests - self.bad


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> WrkResult:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        rate,
        _ms(p50),
        _ms(p99),
        requests,
        int(bad.group(1)) if bad else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
    )


class Server:
    """One of bench/http_servers.py's servers in its own process."""

    def __init__(self, *args: str, profile: Path | None = None) -> None:
        env = bench_env()
        if profile is not None:
            env["NURTURED_BENCH_PROFILE"] = str(profile)
        self.proc, self.port = start_server("bench.http_servers", *args, env=env)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


def wrk(port: int, script: Path, seconds: int) -> WrkResult:
    cmd = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)  # noqa: S603
    return parse_wrk(out.stdout)


async def click_paths(config: Path, now: datetime) -> list[str]:
    """Send one email to each seeded lead (discarding transport), then sign a click
    token for every link of every delivery, as the rendered emails carry them."""
    from nurtured.app import load_app
    from nurtured.db import database
    from nurtured.engine import Engine

    app = load_app(config)
    async with database(app.settings.database.url):
        engine = Engine(
            settings=app.settings,
            catalog=app.catalog,
            renderer=app.renderer,
            transport=DiscardTransport(),
        )
        await engine.run_due(now)
    conn = sqlite3.connect(db_path(config))
    rows = conn.execute(
        'SELECT d.token, l."index" FROM link l JOIN delivery d ON d.id = l.delivery_id'
    ).fetchall()
    conn.close()
    return [f"/c/{app.signer.sign('c', token, str(index))}" for token, index in rows]


def count_clicks(config: Path) -> tuple[int, int]:
    """(click events, of which flagged as machine clicks)."""
    conn = sqlite3.connect(db_path(config))
    total = conn.execute("SELECT count(*) FROM event WHERE kind = 'click'").fetchone()[0]
    machine = conn.execute(
        "SELECT count(*) FROM event WHERE kind = 'click' AND json_extract(data, '$.machine') = 1"
    ).fetchone()[0]
    conn.close()
    return total, machine


async def run(args: argparse.Namespace) -> list[Figure]:
    name = "click redirects"
    if shutil.which("wrk") is None:
        return [skip("tracking", name, "wrk not installed (apt-get install -y wrk)")]
    try:
        importlib.import_module("aiohttp")
    except ImportError:
        return [skip("tracking", name, "aiohttp not installed")]
    try:
        importlib.import_module("nurtured.tracking")
    except ImportError as exc:
        return [skip("tracking", name, f"not available yet (import nurtured.tracking: {exc})")]

    seconds = 2 if args.quick else 10
    figures: list[Figure] = []
    with workdir("tracking") as root:
        config = write_project(root, transport="outbox")
        with config.open("a") as handle:  # see SALES_READY
            handle.write(f"\n[scoring]\nsales_ready = {SALES_READY}\n")
        await create_schema(config)
        # Sent two days ago: the clicks come long after delivery (not scanner-fast).
        sent = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        leads = 300 if args.quick else LEADS
        seed(config, leads=leads, due=leads, now=sent)
        paths = await click_paths(config, sent)
        script = root / "clicks.lua"
        script.write_text(LUA % (BROWSER, ",\n".join(f'  "{p}"' for p in paths)))
        log(f"tracking: {len(paths):,} signed click URLs over {leads:,} deliveries")
        with Server("ceiling") as server:
            ceiling = wrk(server.port, script, seconds)
        log(f"tracking: ceiling {ceiling.rate:.0f}/s; now nurtured's server for {seconds} s")
        with Server("nurtured", str(config), profile=args.profile) as server:
            result = wrk(server.port, script, seconds)
        clicks, machine = count_clicks(config)

    recorded = result.ok <= clicks <= result.ok + CONNECTIONS
    wrk_note = f"wrk -t{THREADS} -c{CONNECTIONS} -d{seconds}s, {len(paths):,} distinct links"
    figures.append(
        Figure(
            "tracking",
            "bare aiohttp 302 (ceiling)",
            round(ceiling.rate),
            "req/s",
            "ceiling",
            "INFO",
            f"p50 {ceiling.p50_ms:.2f} ms, p99 {ceiling.p99_ms:.2f} ms; {wrk_note}",
        )
    )
    figures.append(
        Figure(
            "tracking",
            "click redirects, one process",
            round(result.rate),
            "req/s",
            f">= {TARGET_RATE:,}/s (ceiling {ceiling.rate:.0f})",
            verdict(result.rate >= TARGET_RATE),
            f"{result.rate / ceiling.rate:.0%} of ceiling; {result.bad} non-3xx, "
            f"{result.errors} socket errors",
        )
    )
    figures.append(
        Figure(
            "tracking",
            "  click latency p50",
            round(result.p50_ms, 2),
            "ms",
            f"ceiling {ceiling.p50_ms:.2f} ms",
            "INFO",
        )
    )
    figures.append(
        Figure(
            "tracking",
            "  click latency p99",
            round(result.p99_ms, 2),
            "ms",
            f"< {TARGET_P99_MS:.0f} ms",
            verdict(result.p99_ms < TARGET_P99_MS),
        )
    )
    figures.append(
        Figure(
            "tracking",
            "  every click recorded",
            clicks,
            "events",
            f"== {result.ok:,} answered (+ <= {CONNECTIONS} in flight)",
            verdict(recorded),
            f"{machine:,} of them flagged as machine clicks",
        )
    )
    return figures


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run)
