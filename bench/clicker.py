"""A click driver for the mixed-load bench: GETs signed click URLs at a fixed rate, in a
process of its own, and prints the latencies as JSON when it stops.

    python3 -m bench.clicker --port 8080 --paths FILE --rate 200 [--seconds 10]

Runs for ``--seconds`` or until SIGTERM. Each request is scheduled at ``start + i/rate``
and its latency counted from that moment (a stalled server cannot hide its stall by
holding the client back). A browser User-Agent, no redirects followed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp

from bench.tracking import BROWSER


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    port: int, paths: list[str], rate: float, seconds: float, connections: int
) -> dict[str, float]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"User-Agent": BROWSER}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(path: str, due: float) -> None:
            try:
                async with session.get(
                    f"http://127.0.0.1:{port}{path}", allow_redirects=False
                ) as r:
                    await r.read()
                    counts["ok" if 300 <= r.status < 400 else "bad"] += 1
            except (aiohttp.ClientError, OSError):
                counts["errors"] += 1
            latencies.append(time.perf_counter() - due)

        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        i = 0
        while not stop.is_set() and time.perf_counter() - start < seconds:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            task = asyncio.create_task(one(paths[i % len(paths)], due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        elapsed = time.perf_counter() - start
        await asyncio.gather(*tasks)
    ms = [x * 1000 for x in latencies]
    return {"p50_ms": percentile(ms, 0.50), "p99_ms": percentile(ms, 0.99),
            "max_ms": max(ms, default=0.0), "seconds": elapsed, **counts}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--paths", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    paths = args.paths.read_text().split()
    print("ready 0", flush=True)
    result = asyncio.run(drive(args.port, paths, args.rate, args.seconds, args.connections))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
