"""nurtured.mailer against a real SMTP server (aiosmtpd): pooling, SMTP codes, outcomes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult

from nurtured.exceptions import PermanentSendError, TransientSendError, UnknownSendOutcome
from nurtured.mailer import MaildirOutbox, RateLimiter, SmtpTransport
from nurtured.message import build_message
from tests.smtp_sink import SinkFactory, SmtpSink, free_port

SENDER = "news@acme.example"
RCPT = "ana@lead.example"


def make_message(n: int = 0) -> EmailMessage:
    return build_message(
        subject=f"Message {n}",
        text=f"Body {n}\n",
        html=None,
        from_name="Acme",
        from_addr=SENDER,
        to_name="Ana",
        to_addr=RCPT,
        reply_to=None,
        message_id=f"<m{n}@acme.example>",
        date=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
        unsubscribe_url=None,
        unsubscribe_mailto=None,
    )


TransportFactory = Callable[..., SmtpTransport]


@pytest.fixture
async def transport_for() -> AsyncIterator[TransportFactory]:
    """Make SmtpTransports for a sink; all are closed at teardown."""
    made: list[SmtpTransport] = []

    def make(sink: SmtpSink | None = None, **overrides: Any) -> SmtpTransport:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": sink.port if sink else free_port(),
            "tls": "none",
            "username": None,
            "password": None,
            "pool_size": 1,
            "timeout": 10.0,
            "rate_limit": None,
        }
        settings.update(overrides)
        transport = SmtpTransport(**settings)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()


async def send(transport: SmtpTransport, n: int = 0) -> None:
    await transport.send(make_message(n), sender=SENDER, recipients=[RCPT])


async def test_many_messages_share_one_connection(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """50 sequential sends with pool_size=1 open exactly one connection."""
    transport = transport_for(smtp_sink)
    await transport.start()
    for n in range(50):
        await send(transport, n)
    assert len(smtp_sink.messages) == 50
    assert smtp_sink.connections == 1
    first = smtp_sink.messages[0]
    assert (first.mail_from, first.rcpt_tos) == (SENDER, (RCPT,))
    parsed = email.message_from_bytes(first.content, policy=email.policy.default)
    assert parsed["Message-ID"] == "<m0@acme.example>"


async def test_pool_is_used_concurrently_and_bounded(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """40 concurrent sends over a pool of 4 all arrive over at most 4 connections."""
    transport = transport_for(smtp_sink, pool_size=4)
    await asyncio.gather(*(send(transport, n) for n in range(40)))
    assert len(smtp_sink.messages) == 40
    assert 1 <= smtp_sink.connections <= 4
    ids = {email.message_from_bytes(m.content)["Message-ID"] for m in smtp_sink.messages}
    assert ids == {f"<m{n}@acme.example>" for n in range(40)}


@pytest.mark.parametrize(
    ("reply", "at"),
    [
        ("421 4.3.2 shutting down", "mail"),
        ("451 4.3.0 try later", "mail"),
        ("452 4.5.3 too many recipients", "rcpt"),
        ("451 4.7.1 greylisted", "rcpt"),
        ("451 4.3.0 queue full", "data"),
    ],
)
async def test_4xx_is_transient_and_next_send_works(
    smtp_sink: SmtpSink, transport_for: TransportFactory, reply: str, at: Any
) -> None:
    """A 4xx at MAIL/RCPT/DATA raises TransientSendError with its code; the next send succeeds."""
    transport = transport_for(smtp_sink)
    smtp_sink.fail_next(reply, at=at)
    with pytest.raises(TransientSendError) as caught:
        await send(transport, 1)
    assert caught.value.code == int(reply[:3])
    assert reply[4:] in str(caught.value)
    await send(transport, 2)
    assert [m.content.count(b"Message 2") for m in smtp_sink.messages] == [1]
    # 421 means the server is closing: only then is a new connection needed.
    assert smtp_sink.connections == (2 if reply.startswith("421") else 1)


@pytest.mark.parametrize(
    ("reply", "at"),
    [
        ("550 5.1.1 no such user", "rcpt"),
        ("553 5.1.3 bad sender", "mail"),
        ("552 5.3.4 message too big", "data"),
        ("554 5.7.1 rejected as spam", "data"),
    ],
)
async def test_5xx_is_permanent_and_connection_stays_usable(
    smtp_sink: SmtpSink, transport_for: TransportFactory, reply: str, at: Any
) -> None:
    """A 5xx raises PermanentSendError with code and server text; the connection is reused."""
    transport = transport_for(smtp_sink)
    smtp_sink.fail_next(reply, at=at)
    with pytest.raises(PermanentSendError) as caught:
        await send(transport, 1)
    assert caught.value.code == int(reply[:3])
    assert reply in str(caught.value)
    await send(transport, 2)
    assert len(smtp_sink.messages) == 1
    assert smtp_sink.connections == 1


async def test_dead_address_is_recognised_from_the_reply(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """A 550 5.1.1 refusal reads as a dead address; a 5.7.1 policy block does not."""
    transport = transport_for(smtp_sink)
    smtp_sink.fail_next("550 5.1.1 no such user", at="rcpt")
    with pytest.raises(PermanentSendError) as dead:
        await send(transport)
    smtp_sink.fail_next("550 5.7.1 blocked", at="rcpt")
    with pytest.raises(PermanentSendError) as blocked:
        await send(transport)
    assert dead.value.dead_address
    assert not blocked.value.dead_address


async def test_drop_after_data_is_unknown_then_fresh_connection(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """A connection lost after DATA raises UnknownSendOutcome; the next send reconnects."""
    transport = transport_for(smtp_sink)
    smtp_sink.drop_after_data()
    with pytest.raises(UnknownSendOutcome):
        await send(transport, 1)
    # The server did take it: exactly why the caller must not resend blindly.
    assert len(smtp_sink.messages) == 1
    await send(transport, 2)
    assert len(smtp_sink.messages) == 2
    assert smtp_sink.connections == 2


async def test_connection_closed_while_idle_is_replaced(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """A pooled connection the server closed between sends is reopened transparently."""
    transport = transport_for(smtp_sink)
    await send(transport, 1)
    smtp_sink.close_connections()
    await send(transport, 2)
    assert len(smtp_sink.messages) == 2
    assert smtp_sink.connections == 2


async def test_server_not_listening_is_transient(transport_for: TransportFactory) -> None:
    """Connection refused raises TransientSendError (the message certainly was not taken)."""
    transport = transport_for(None)
    with pytest.raises(TransientSendError, match="cannot connect"):
        await send(transport)


async def test_bad_envelope_is_permanent(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """An envelope with no recipients or an injected address is refused before any I/O."""
    transport = transport_for(smtp_sink)
    with pytest.raises(PermanentSendError, match="no recipients"):
        await transport.send(make_message(), sender=SENDER, recipients=[])
    with pytest.raises(PermanentSendError, match="bad envelope"):
        await transport.send(make_message(), sender=SENDER, recipients=["a@b.example\r\nRSET"])
    assert smtp_sink.connections == 0


async def test_auth_failure_535_is_permanent(
    smtp_sink_factory: SinkFactory, transport_for: TransportFactory
) -> None:
    """A 535 refusal of the login raises PermanentSendError with code 535."""

    def refuse(*args: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)

    sink = smtp_sink_factory(authenticator=refuse, auth_require_tls=False)
    transport = transport_for(sink, username="u", password="wrong")
    with pytest.raises(PermanentSendError) as caught:
        await send(transport)
    assert caught.value.code == 535
    assert sink.messages == []


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts from a throwaway CA, for 127.0.0.1."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_implicit_tls(
    smtp_sink_factory: SinkFactory,
    transport_for: TransportFactory,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """tls="implicit" speaks TLS from the first byte and verifies the server certificate."""
    server_ctx, client_ctx = tls_contexts
    sink = smtp_sink_factory(ssl_context=server_ctx)
    transport = transport_for(sink, tls="implicit", tls_context=client_ctx)
    await send(transport)
    assert len(sink.messages) == 1
    untrusting = transport_for(sink, tls="implicit", tls_context=ssl.create_default_context())
    with pytest.raises(TransientSendError):
        await send(untrusting)


async def test_starttls(
    smtp_sink_factory: SinkFactory,
    transport_for: TransportFactory,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """tls="starttls" upgrades before MAIL, so a server that requires TLS takes the message."""
    server_ctx, client_ctx = tls_contexts
    sink = smtp_sink_factory(tls_context=server_ctx, require_starttls=True)
    transport = transport_for(sink, tls="starttls", tls_context=client_ctx)
    await send(transport, 1)
    await send(transport, 2)
    assert len(sink.messages) == 2
    assert sink.connections == 1


async def test_rate_limited_transport_still_delivers(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """A transport with a rate limit sends through it (its burst covers these few sends)."""
    transport = transport_for(smtp_sink, rate_limit=100.0)
    for n in range(5):
        await send(transport, n)
    assert len(smtp_sink.messages) == 5


async def test_closed_transport_refuses_to_send(
    smtp_sink: SmtpSink, transport_for: TransportFactory
) -> None:
    """After close() a send raises TransientSendError instead of reopening connections."""
    transport = transport_for(smtp_sink)
    await send(transport)
    await transport.close()
    with pytest.raises(TransientSendError, match="closed"):
        await send(transport)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(("rate", "count"), [(50.0, 105), (5.0, 11), (25.0, 60), (0.5, 4)])
async def test_rate_limiter_paces_after_burst(rate: float, count: int) -> None:
    """N acquisitions at rate R take (N - burst) / R seconds, burst = max(1, R / 10)."""
    fake = FakeTime()
    limiter = RateLimiter(rate, clock=fake.clock, sleep=fake.sleep)
    burst = max(1.0, rate / 10)
    for _ in range(count):
        await limiter.acquire()
    assert fake.now == pytest.approx((count - burst) / rate)


async def test_rate_limiter_burst_is_capped_after_idle() -> None:
    """An idle spell refills at most `burst` tokens, not a backlog."""
    fake = FakeTime()
    limiter = RateLimiter(50.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        await limiter.acquire()
    fake.now = 100.0
    for _ in range(5):
        await limiter.acquire()
    assert fake.now == 100.0
    await limiter.acquire()
    assert fake.now == pytest.approx(100.02)


async def test_rate_limiter_serves_concurrent_waiters() -> None:
    """Concurrent acquirers share one bucket: 20 at rate 10 take (20 - 1) / 10 s."""
    fake = FakeTime()
    limiter = RateLimiter(10.0, clock=fake.clock, sleep=fake.sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(20)))
    assert fake.now == pytest.approx(1.9)


def test_rate_limiter_rejects_nonsense() -> None:
    """A rate of zero or less is refused."""
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0)


async def test_maildir_outbox_round_trip(tmp_path: Path) -> None:
    """The outbox writes into Maildir new/ with LF line ends; mailbox reads headers back."""
    box_path = tmp_path / "outbox"
    outbox = MaildirOutbox(box_path)
    await outbox.start()
    message = build_message(
        subject="Grüße",
        text="Hallo\n",
        html="<p>Hallo</p>",
        from_name="Acme",
        from_addr=SENDER,
        to_name="Zoë",
        to_addr=RCPT,
        reply_to=None,
        message_id="<box1@acme.example>",
        date=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
        unsubscribe_url="https://t.acme.example/u/1",
        unsubscribe_mailto=None,
    )
    await outbox.send(message, sender=SENDER, recipients=[RCPT])
    await outbox.close()

    files = list((box_path / "new").iterdir())
    assert len(files) == 1
    assert b"\r" not in files[0].read_bytes()
    stored = list(mailbox.Maildir(box_path))
    assert len(stored) == 1
    parsed = email.message_from_bytes(stored[0].as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == "<box1@acme.example>"
    assert parsed["Subject"] == "Grüße"
    assert parsed["Return-Path"] == f"<{SENDER}>"
    assert parsed["Delivered-To"] == RCPT
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"


async def test_maildir_outbox_write_error_is_transient(tmp_path: Path) -> None:
    """An outbox that cannot be written raises TransientSendError."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    outbox = MaildirOutbox(blocker / "outbox")
    with pytest.raises(TransientSendError, match="outbox"):
        await outbox.send(make_message(), sender=SENDER, recipients=[RCPT])
