"""A discarding SMTP sink (aiosmtpd) for the send benches, run in a process of its own.

    python3 -m bench.sink --port 2525

Prints ``ready <port>`` once it listens. Every message is accepted and dropped; SIGUSR1
prints ``count <messages> <bytes> <connections>`` (a line on stdout), SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP


class Counter:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.connections = 0

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.messages += 1
        self.bytes += len(envelope.original_content or b"")
        return "250 2.0.0 OK"

    def report(self) -> None:
        print(f"count {self.messages} {self.bytes} {self.connections}", flush=True)


async def serve(host: str, port: int) -> None:
    counter = Counter()
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        counter.connections += 1
        # hostname given: aiosmtpd would otherwise call socket.getfqdn() per connection.
        return SMTP(counter, hostname="sink.bench", ident="bench sink")

    server = await loop.create_server(factory, host=host, port=port, reuse_address=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, counter.report)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()
    counter.report()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
