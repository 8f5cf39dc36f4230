"""HTTP servers for the tracking bench, each run in a process of its own:

    python3 -m bench.http_servers ceiling           a bare aiohttp app: GET /c/{token} -> 302
    python3 -m bench.http_servers nurtured CONFIG   nurtured's tracking server on CONFIG's db

Each prints ``ready <port>`` once it listens and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from aiohttp import web


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()


async def ceiling() -> None:
    async def click(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "https://acme.example/guide"})

    web_app = web.Application()
    web_app.router.add_get("/c/{token}", click)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"ready {port}", flush=True)
    await _until_stopped()
    await runner.cleanup()


async def tracking(config: Path) -> None:
    from bench.common import DiscardTransport, profiled
    from nurtured.app import Runtime, load_app
    from nurtured.daemon import freeze_startup_heap
    from nurtured.db import database
    from nurtured.tracking import bound_port, start_server

    app = load_app(config)
    profile = os.environ.get("NURTURED_BENCH_PROFILE")
    async with database(app.settings.database.url):
        runtime = Runtime(app, DiscardTransport())
        runner = await start_server(runtime, listen=("127.0.0.1", 0))
        freeze_startup_heap()  # as the daemon does once its server is up
        print(f"ready {bound_port(runner)}", flush=True)
        with profiled(Path(profile) if profile else None, whole_thread=True):
            await _until_stopped()
        await runner.cleanup()


def main() -> None:
    if sys.argv[1:2] == ["ceiling"]:
        asyncio.run(ceiling())
    elif sys.argv[1:2] == ["nurtured"] and len(sys.argv) == 3:
        asyncio.run(tracking(Path(sys.argv[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
