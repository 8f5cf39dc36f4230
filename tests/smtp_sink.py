"""A real SMTP server (aiosmtpd, in its own thread) that records what it receives
and injects faults on request.

    def test_x(smtp_sink):
        smtp_sink.fail_next("451 4.3.0 try later", at="rcpt")
        smtp_sink.drop_after_data()
        ... smtp_sink.host, smtp_sink.port, smtp_sink.messages, smtp_sink.connections
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

Stage = Literal["mail", "rcpt", "data"]


@dataclass(frozen=True)
class Received:
    """One envelope the sink accepted (or took and then dropped the connection on)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    at: float = field(default_factory=time.time)  # when it arrived (wall clock)


@dataclass
class _Fault:
    reply: str | None  # None: close the connection without replying
    times: int


@dataclass
class SmtpSink:
    """What a test sees of the running server. Thread-safe: the server runs in its own
    thread and loop, the test in another."""

    host: str
    port: int
    messages: list[Received] = field(default_factory=list)
    connections: int = 0
    _faults: dict[Stage, list[_Fault]] = field(
        default_factory=lambda: {"mail": [], "rcpt": [], "data": []}
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _servers: list[SMTP] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None

    def fail_next(self, code_and_text: str, at: Stage, times: int = 1) -> None:
        """Answer the next ``times`` MAIL/RCPT/DATA commands with this reply instead of 250."""
        with self._lock:
            self._faults[at].append(_Fault(code_and_text, times))

    def drop_after_data(self, times: int = 1) -> None:
        """For the next ``times`` transactions, keep the message, then close the connection
        instead of answering the end of DATA: the client cannot know it was taken."""
        with self._lock:
            self._faults["data"].append(_Fault(None, times))

    def close_connections(self) -> None:
        """Close every open connection from the server side, as an idle timeout would;
        returns once they are closed."""
        assert self._loop is not None
        done = threading.Event()

        def close_all() -> None:
            for server in self._servers:
                if server.transport is not None:
                    server.transport.close()
            done.set()

        self._loop.call_soon_threadsafe(close_all)
        assert done.wait(5)

    def _take_fault(self, at: Stage) -> _Fault | None:
        with self._lock:
            queue = self._faults[at]
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self.sink._take_fault("mail")
        if fault is not None and fault.reply is not None:
            return fault.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self.sink._take_fault("rcpt")
        if fault is not None and fault.reply is not None:
            return fault.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        fault = self.sink._take_fault("data")
        if fault is not None and fault.reply is not None:
            return fault.reply
        content = envelope.original_content or envelope.content
        self.sink.messages.append(
            Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(content))
        )
        if fault is not None:  # drop: taken, but the reply never arrives
            assert server.transport is not None
            server.transport.close()
            await asyncio.sleep(0)
        return "250 2.0.0 OK"


class _CountingController(Controller):
    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        self.sink = sink
        super().__init__(_Handler(sink), hostname=sink.host, port=sink.port, **kwargs)

    def factory(self) -> SMTP:
        # Called once per accepted connection (asyncio's protocol factory).
        self.sink._connected()
        self.sink._loop = self.loop
        server = SMTP(self.handler, **self.SMTP_kwargs)
        self.sink._servers.append(server)
        return server


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (aiosmtpd's readiness probe cannot use 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


SinkFactory = Callable[..., SmtpSink]


@pytest.fixture
def smtp_sink_factory() -> Iterator[SinkFactory]:
    """Start sinks (``ssl_context=`` for implicit TLS, other aiosmtpd SMTP keywords pass
    through); every sink started is stopped at teardown."""
    controllers: list[_CountingController] = []

    def start(*, ssl_context: ssl.SSLContext | None = None, **smtp_kwargs: Any) -> SmtpSink:
        sink = SmtpSink(host="127.0.0.1", port=free_port())
        controller = _CountingController(sink, ssl_context=ssl_context, **smtp_kwargs)
        controller.start()
        controllers.append(controller)
        # start() opened one probe connection and waited for it to reach the factory.
        sink.connections = 0
        return sink

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_sink(smtp_sink_factory: SinkFactory) -> SmtpSink:
    """A plain SMTP server on 127.0.0.1 that accepts everything and records it."""
    return smtp_sink_factory()
