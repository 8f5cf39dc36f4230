"""Run the benchmark suite: ``scripts/bench [--quick] [--only send,scale] [--json PATH]``.

Each bench runs in a child process; this prints the table (every figure beside its
ceiling or target, PASS / MISS) and writes the figures, the machine and the command as
JSON. A MISS does not fail the run (benchmarks are not tests); a bench that breaks
(ERROR) does, so a smoke run in CI notices.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, Figure, bench_env

BENCHES = {
    "send": "send pipeline vs raw aiosmtplib",
    "scale": "due scan and claim at 10k/100k/1M, daemon peak RSS",
    "intake": "CSV import",
    "tracking": "tracking server click redirects (wrk)",
    "inbound": "inbound classification",
    "scaleout": "emails/s with 1, 2, 3 arq workers (PostgreSQL + Redis)",
    "mixed": "click latency while the engine sends, embedded",
    "report": "report queries and page over 10k and 100k leads",
}


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kb = int(handle.readline().split()[1])
    versions = {}
    for package in ("aiosmtplib", "aiosmtpd", "tortoise-orm", "aiosqlite", "Jinja2", "aiohttp"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)  # noqa: S603
        versions["wrk"] = (out.stdout + out.stderr).split("\n")[0].strip()
    return {
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
        "packages": versions,
    }


def code() -> dict[str, Any]:
    """The commit measured, and whether nurtured/ differed from it (read-only git)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603, S607
        return out.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted": git("status", "--porcelain", "--", "nurtured").splitlines(),
    }


def run_bench(name: str, args: argparse.Namespace) -> list[Figure]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    cmd = [sys.executable, "-m", f"bench.{name}", "--out", str(out)]
    if args.quick:
        cmd.append("--quick")
    if args.profile:
        cmd += ["--profile", str(args.profile / f"{name}.txt")]
    if name == "send" and args.leads:
        cmd += ["--leads", str(args.leads)]
    print(f"== {name}: {BENCHES[name]}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    # The child's progress lines go on to our stderr as they come; the last ones are kept
    # for the table when it breaks.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=bench_env(), stderr=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stderr is not None
    tail: list[str] = []
    for line in proc.stderr:
        sys.stderr.write(line)
        tail = [*tail[-19:], line.rstrip()]
    proc.wait()
    print(f"   {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    try:
        if proc.returncode != 0:
            last = " | ".join(line for line in tail[-3:] if line)
            return [Figure(name, BENCHES[name], None, status="ERROR", note=last[-500:])]
        return [Figure(**item) for item in json.loads(out.read_text())]
    finally:
        out.unlink(missing_ok=True)


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    rows = [("bench", "figure", "value", "ceiling / target", "status", "note")]
    rows += [
        (f.bench, f.name, show(f.value, f.unit), f.reference, f.status, f.note) for f in figures
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) if i != 2 else row[i].rjust(widths[i]) for i in range(5)]
        lines.append("  ".join(cells) + "  " + row[5])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(lines)


def markdown(figures: list[Figure]) -> str:
    """The same table as Markdown, for BENCHMARKS.md."""
    lines = [
        "| bench | figure | value | ceiling / target | status | note |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for f in figures:
        name = f.name.strip()
        if f.name.startswith("  "):
            name = "&nbsp;&nbsp;" * ((len(f.name) - len(f.name.lstrip())) // 2) + name
        cells = (f.bench, name, show(f.value, f.unit), f.reference, f"**{f.status}**", f.note)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (~1 min)")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(BENCHES)}")
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "bench" / "results.json",
        help="where the JSON goes (default bench/results.json)",
    )
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the table as Markdown to this file"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write pyinstrument profiles (DIR/<bench>.txt) if installed",
    )
    parser.add_argument("--leads", type=int, default=0, help="leads in the send bench")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}")

    started = datetime.now(UTC)
    load_before = [round(x, 2) for x in os.getloadavg()]
    clock = time.perf_counter()
    figures: list[Figure] = []
    for name in names:
        figures += run_bench(name, args)
    seconds = time.perf_counter() - clock
    info = machine()
    info["load_average_before"] = load_before
    measured = code()
    command = "scripts/bench " + " ".join(sys.argv[1:])
    print()
    print(
        f"nurtured benchmarks ({'quick' if args.quick else 'full'}), {started:%Y-%m-%d %H:%M} "
        f"UTC, {seconds:.0f} s; {info['cpus']} CPUs ({info['cpu']}), {info['memory_gb']} GB, "
        f"Python {info['python']}, SQLite {info['sqlite']}; load average "
        f"{load_before[0]} before, {info['load_average'][0]} after"
    )
    dirty = f", uncommitted changes in {len(measured['uncommitted'])} files of nurtured/"
    print(f"code: commit {measured['commit']}{dirty if measured['uncommitted'] else ''}")
    print(table(figures))
    result = {
        "command": command.strip(),
        "quick": args.quick,
        "started": started.isoformat(),
        "seconds": round(seconds, 1),
        "machine": info,
        "code": measured,
        "figures": [f.to_dict() for f in figures],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nJSON: {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown(figures) + "\n")
        print(f"Markdown: {args.markdown}")
    sys.exit(1 if any(f.status == "ERROR" for f in figures) else 0)


if __name__ == "__main__":
    main()
