"""Mail transports: a pooled SMTP client and a local Maildir outbox, plus a rate limiter.

Every failure leaves here as one of three errors, and which one is decided by how far
the SMTP transaction got:

    before DATA was sent (connect, TLS, AUTH, MAIL, RCPT), 4xx or network -> TransientSendError
    any 5xx reply (MAIL, RCPT, DATA; 535 at AUTH)                        -> PermanentSendError
    4xx reply to DATA                                                    -> TransientSendError
    connection lost or timed out once DATA was started                   -> UnknownSendOutcome

The transaction is therefore run step by step (MAIL, RCPT..., DATA) rather than
through ``send_message``, which hides where it stopped.
"""

from __future__ import annotations

import asyncio
import email.policy
import mailbox
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from nurtured.exceptions import PermanentSendError, TransientSendError, UnknownSendOutcome
from nurtured.message import check_addr_spec

__all__ = ["MaildirOutbox", "RateLimiter", "SmtpTransport", "TlsMode", "Transport"]

TlsMode = Literal["starttls", "implicit", "none"]

# Local files use the platform's line ending, as mailbox and every MDA write them.
_FILE_POLICY = email.policy.SMTP.clone(linesep="\n")


class Transport(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> None: ...


def _check_envelope(sender: str, recipients: Sequence[str]) -> None:
    """Refuse an envelope no server could take (so never worth a retry)."""
    if not recipients:
        raise PermanentSendError("no recipients")
    try:
        if sender:  # "" is the null reverse-path
            check_addr_spec(sender)
        for recipient in recipients:
            check_addr_spec(recipient)
    except ValueError as exc:
        raise PermanentSendError(f"bad envelope: {exc}") from exc


class RateLimiter:
    """Token bucket: ``rate`` acquisitions per second on average, at most ``burst``
    (default ``max(1, rate / 10)``) back to back. Waiters are served in order."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                elapsed = max(0.0, now - self._updated)
                self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
                self._updated = now
                if self._tokens >= 1 - 1e-9:  # float dust must not cost another wait
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)


class MaildirOutbox:
    """Writes each message into a Maildir (``new/``) instead of sending it: the
    embedded mode's outbox, readable by any mail client (``mutt -f PATH``).

    The envelope is kept the way a delivery agent keeps it: a ``Return-Path`` and one
    ``Delivered-To`` per recipient on top. Writes run in a worker thread (a slow disk
    must not stall the loop) one at a time (``mailbox`` is not thread-safe). Like
    ``mailbox`` itself, this does not fsync.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the Maildir if needed; OSError propagates (a startup problem)."""
        async with self._lock:
            if self._box is None:
                self._box = await asyncio.to_thread(mailbox.Maildir, self.path, create=True)

    async def close(self) -> None:
        self._box = None

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> None:
        _check_envelope(sender, recipients)
        trace = f"Return-Path: <{sender}>\n" + "".join(f"Delivered-To: {r}\n" for r in recipients)
        if isinstance(message, bytes):  # CRLF wire form -> a file's LF lines
            body = message.replace(b"\r\n", b"\n")
        else:
            body = message.as_bytes(policy=_FILE_POLICY)
        data = trace.encode("ascii") + body
        async with self._lock:
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                raise TransientSendError(f"cannot write to outbox {self.path}: {exc}") from exc

    def _write(self, data: bytes) -> None:
        if self._box is None:
            self._box = mailbox.Maildir(self.path, create=True)
        self._box.add(data)


def _reply_error(
    exc: aiosmtplib.SMTPResponseException, stage: str
) -> TransientSendError | PermanentSendError:
    text = f"{exc.code} {exc.message}".strip()
    if 500 <= exc.code < 600:
        return PermanentSendError(f"{stage} refused: {text}", code=exc.code)
    return TransientSendError(f"{stage} refused: {text}", code=exc.code)


class SmtpTransport:
    """A pool of ``pool_size`` SMTP connections, each reused for many messages.

    Connections open lazily on first use and reopen on the next use after a drop, so
    the daemon starts even while the server is down. ``rate_limit`` caps messages per
    second across the whole pool.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: TlsMode,
        username: str | None,
        password: str | None,
        pool_size: int,
        timeout: float,
        rate_limit: float | None,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        if tls not in ("starttls", "implicit", "none"):
            raise ValueError(f"tls must be starttls, implicit or none, got {tls!r}")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self.host = host
        self.port = port
        self.pool_size = pool_size
        self.timeout = timeout
        self._limiter = RateLimiter(rate_limit) if rate_limit else None
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._closed = False
        for _ in range(pool_size):
            self._idle.put_nowait(
                aiosmtplib.SMTP(
                    hostname=host,
                    port=port,
                    username=username,
                    password=password,
                    timeout=timeout,
                    use_tls=tls == "implicit",
                    start_tls=tls == "starttls",
                    tls_context=tls_context,
                    # Skip socket.getfqdn(), which can take seconds on a bad resolver.
                    local_hostname=local_hostname or "localhost",
                )
            )

    async def start(self) -> None:
        """Nothing to do: connections open on first use."""
        self._closed = False

    async def close(self) -> None:
        """Wait for sends in flight, then QUIT every open connection."""
        self._closed = True
        connections = [await self._idle.get() for _ in range(self.pool_size)]
        for smtp in connections:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
            self._idle.put_nowait(smtp)

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> None:
        """Send one message (an EmailMessage, or its CRLF bytes as built for sending)."""
        if self._closed:
            raise TransientSendError("SMTP transport is closed")
        _check_envelope(sender, recipients)
        if isinstance(message, bytes):
            payload = message
        else:
            payload = message.as_bytes(policy=email.policy.SMTP)
        smtp = await self._idle.get()
        try:
            if self._limiter is not None:
                await self._limiter.acquire()
            await self._transact(smtp, payload, sender, recipients)
        finally:
            self._idle.put_nowait(smtp)

    async def _connect(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.connect()
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and exc.code >= 500:
                raise PermanentSendError(
                    f"SMTP login refused: {exc.code} {exc.message}", code=exc.code
                ) from exc
            raise TransientSendError(
                f"cannot connect to {self.host}:{self.port}: {exc.code} {exc.message}",
                code=exc.code,
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise TransientSendError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """Abort the transaction so the connection can carry the next message; a
        connection the server closed (421) or that fails RSET is dropped instead."""
        if not smtp.is_connected:
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()
        except BaseException:  # cancelled mid-RSET: the session state is unknown
            smtp.close()
            raise

    async def _transact(
        self, smtp: aiosmtplib.SMTP, payload: bytes, sender: str, recipients: Sequence[str]
    ) -> None:
        try:
            await self._envelope(smtp, sender, recipients)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(smtp)
            raise _reply_error(exc, "MAIL/RCPT") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise TransientSendError(f"connection lost before DATA: {exc}") from exc
        except BaseException:  # our own errors, or a cancellation mid-transaction
            smtp.close()
            raise

        # From here on the server may have the message: a lost reply is not a refusal.
        try:
            await smtp.data(payload)
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 600:
                await self._reset(smtp)
                raise _reply_error(exc, "DATA") from exc
            smtp.close()
            raise UnknownSendOutcome(f"unreadable reply to DATA: {exc}", code=exc.code) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise UnknownSendOutcome(f"connection lost during DATA: {exc}") from exc
        except BaseException:
            smtp.close()
            raise

    async def _envelope(
        self, smtp: aiosmtplib.SMTP, sender: str, recipients: Sequence[str]
    ) -> None:
        fresh = not smtp.is_connected
        if fresh:
            await self._connect(smtp)
        try:
            await smtp.mail(sender)
        except aiosmtplib.SMTPServerDisconnected:
            if fresh:
                raise
            # An idle connection the server closed unnoticed: nothing was sent yet,
            # so one more try on a new connection is safe.
            smtp.close()
            await self._connect(smtp)
            await smtp.mail(sender)
        for recipient in recipients:
            await smtp.rcpt(recipient)
