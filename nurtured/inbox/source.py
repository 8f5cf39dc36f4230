"""Where inbound mail is read from: an IMAP mailbox (aioimaplib) or a local Maildir.

A message is marked as processed only after its outcome is committed: on IMAP with the
keyword ``$Nurtured`` (``\\Seen`` where the server allows no keywords), then moved to
``processed_folder`` if one is set; in a Maildir by moving it to cur/ with the S flag.
New messages are those without the mark, so a crash before the mark means the message
is read again, and the database recognises it (``Event.ref``). Messages that match no
lead stay where they are, marked ``$NurturedUnmatched`` (Maildir: flagged F) for a person.

The mark lives on the server with the message, not in a UID we remember, so a change of
UIDVALIDITY (a rebuilt mailbox) loses nothing: it is logged and the search by mark simply
runs again.

On IMAP one SEARCH finds the unmarked messages (with their sizes), then they are fetched
in batches, the next batch while the current one is being processed, and the STORE of a
batch's marks goes out behind it (one command on the connection at a time), so the
reader seldom waits for the server. Every STORE has finished before the mailbox is
searched again, and ``close`` and ``wait`` let them finish first; one that failed is
raised by the next call.

aioimaplib can hang for ever when the server goes away (the lost-connection callback
fires, the pending call never returns): every call here races the call, a timeout and
that callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aioimaplib

from nurtured.config_sections import Imap

__all__ = ["FLAG", "UNMATCHED_FLAG", "ImapSource", "InboxError", "MaildirSource", "Source"]

log = logging.getLogger(__name__)

FLAG = "$Nurtured"
UNMATCHED_FLAG = "$NurturedUnmatched"
MAX_FETCH = 10 * 1024 * 1024  # bytes fetched of one message (BODY.PEEK[]<0.N>)
BATCH = 200  # messages handed over at once (one FETCH, one transaction, one STORE)
FETCH_CHUNK = 50  # messages per FETCH command
LARGE = 40 * 1024  # a message larger than this (bytes) is handed over alone
SEARCH_LIMIT = 2_000  # UIDs kept from one SEARCH; the rest are found by the next one
_T = TypeVar("_T")


class InboxError(Exception):
    """The mailbox cannot be read now (login refused, connection lost, timeout...)."""


@dataclass(frozen=True)
class Item:
    key: str  # an IMAP UID or a Maildir file name
    raw: bytes


class Source(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def fetch(self, skip: set[str]) -> list[Item]: ...
    async def mark(self, done: Sequence[str], unmatched: Sequence[str]) -> None: ...
    async def wait(self, stop: asyncio.Event) -> None: ...


class ImapSource:
    """One IMAP connection to one mailbox; ``open`` again after any InboxError."""

    def __init__(self, settings: Imap, *, ssl_context: ssl.SSLContext | None = None,
                 uidvalidity: dict[str, int] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.timeout = settings.timeout.total_seconds()
        self.ssl_context = ssl_context
        self.uidvalidity = uidvalidity if uidvalidity is not None else {}
        self.flag = FLAG
        self.client: Any = None
        self._lost = asyncio.Event()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._lock = asyncio.Lock()  # one command at a time, in the order asked (FIFO)
        self._queue: list[tuple[str, bool]] = []  # (UID, large) found, not fetched yet
        self._prefetch: asyncio.Task[list[Item]] | None = None
        self._stores: list[asyncio.Task[None]] = []

    def _connection_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def _call(self, coro: Awaitable[_T], what: str) -> _T:
        """Await ``coro`` unless the connection drops or the timeout passes first."""
        task = asyncio.ensure_future(coro)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            lost.cancel()
        if task in done:
            try:
                return task.result()
            except (aioimaplib.AioImapException, OSError, TimeoutError) as exc:
                raise InboxError(f"IMAP {what}: {exc!r}") from exc
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise InboxError(f"IMAP {what}: {'connection lost' if lost in done else 'timed out'}")

    async def _ok(self, coro: Awaitable[Any], what: str) -> Any:
        response = await self._call(coro, what)
        if response.result != "OK":
            raise InboxError(f"IMAP {what}: {response.result} {_text(response.lines)}")
        return response

    async def open(self) -> None:
        s = self.settings
        password = os.environ.get(s.password_env)
        if password is None:
            raise InboxError(f"inbox.imap: environment variable {s.password_env} is not set")
        context = self.ssl_context
        if s.tls == "implicit" and context is None:
            context = ssl.create_default_context()
        # IMAP4 with ssl_context, not IMAP4_SSL, which drops the lost-connection callback.
        self.client = aioimaplib.IMAP4(
            host=s.host,
            port=s.port,
            timeout=self.timeout,
            conn_lost_cb=self._connection_lost,
            ssl_context=context if s.tls == "implicit" else None,
        )
        await self._call(self.client.wait_hello_from_server(), "greeting")
        await self._ok(self.client.login(s.username, password), "LOGIN")
        response = await self._ok(self.client.select(s.mailbox), f"SELECT {s.mailbox}")
        lines = _text(response.lines)
        found = re.search(r"UIDVALIDITY (\d+)", lines)
        validity = int(found.group(1)) if found else 0
        previous = self.uidvalidity.get(s.mailbox)
        if previous is not None and previous != validity:
            log.warning("inbox %s: UIDVALIDITY changed %s -> %s (mailbox rebuilt); unmarked "
                        "messages are read again and recorded ones recognised by Message-ID",
                        s.mailbox, previous, validity)  # fmt: skip
        self.uidvalidity[s.mailbox] = validity
        permanent = re.search(r"PERMANENTFLAGS \(([^)]*)\)", lines)
        if permanent is not None and "\\*" not in permanent.group(1):
            log.warning("inbox %s: the server takes no keywords; using \\Seen", s.mailbox)
            self.flag = "\\Seen"
        if s.processed_folder:
            with contextlib.suppress(InboxError):  # it exists already: fine
                await self._ok(self.client.create(s.processed_folder), "CREATE")
        log.info("inbox: reading %s@%s:%d/%s", s.username, s.host, s.port, s.mailbox)

    async def close(self) -> None:
        if self.client is not None and not self._lost.is_set():
            with contextlib.suppress(InboxError):  # committed: worth flagging if we can
                await self._settle()
        for task in [*self._stores, *([self._prefetch] if self._prefetch else [])]:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self._stores, self._prefetch, self._queue = [], None, []
        client, self.client = self.client, None
        if client is None:
            return
        if not self._lost.is_set():
            with contextlib.suppress(InboxError):
                await self._call(client.logout(), "LOGOUT")
        transport = client.protocol.transport
        if transport is not None:
            transport.close()
        for task in [*client.tasks, *client.protocol.tasks, *self._tasks]:
            task.cancel()
        await asyncio.sleep(0)  # let the transport finish closing

    async def _command(self, coro: Awaitable[Any], what: str) -> Any:
        async with self._lock:
            return await self._ok(coro, what)

    async def _settle(self) -> None:
        """Wait for every STORE in flight; raise the first that failed."""
        stores, self._stores = self._stores, []
        failed = [r for r in await asyncio.gather(*stores, return_exceptions=True) if r]
        if failed:
            raise failed[0]

    def _reap(self) -> None:
        """Forget the STOREs that are done; raise the first that failed."""
        done = [t for t in self._stores if t.done()]
        self._stores = [t for t in self._stores if not t.done()]
        for task in done:
            if task.cancelled():
                raise InboxError("IMAP STORE: cancelled")
            error = task.exception()
            if error is not None:
                raise error

    async def fetch(self, skip: set[str]) -> list[Item]:
        self._reap()
        if self._prefetch is not None:
            task, self._prefetch = self._prefetch, None
            items = [item for item in await task if item.key not in skip]
            if items:
                self._start_prefetch()
                return items
        await self._settle()  # what was marked must not be found again
        await self._search(skip)
        items = await self._fetch_next()
        if items:
            self._start_prefetch()
        return items

    def _start_prefetch(self) -> None:
        if self._queue:
            self._prefetch = asyncio.ensure_future(self._fetch_next())

    async def _search(self, skip: set[str]) -> None:
        # Dovecot brings a session's view up to date after a command, not before it.
        await self._command(self.client.noop(), "NOOP")
        criteria = ("UNSEEN",) if self.flag == "\\Seen" else ("UNKEYWORD", self.flag)
        response = await self._command(self.client.uid_search(*criteria, charset=None),
                                       "SEARCH")  # fmt: skip
        uids = [u for u in _uids(response) if u not in skip][:SEARCH_LIMIT]
        large: set[str] = set()
        if uids:  # asked apart: one line back, where a FETCH of sizes is a line per message
            response = await self._command(self.client.uid_search(
                *criteria, "LARGER", str(LARGE), charset=None), "SEARCH")  # fmt: skip
            large = set(_uids(response))
        self._queue = [(u, u in large) for u in uids]

    async def _fetch_next(self) -> list[Item]:
        """The next batch of the queue: up to BATCH messages, or one large one alone."""
        queue = self._queue
        if not queue:
            return []
        take = 1
        if not queue[0][1]:  # small ones together, up to the next large one
            while take < min(BATCH, len(queue)) and not queue[take][1]:
                take += 1
        uids, self._queue = [u for u, _ in queue[:take]], queue[take:]
        items: list[Item] = []
        # Several FETCHes of FETCH_CHUNK, back to back: aioimaplib rescans a FETCH's whole
        # response for every message in it, so the cost grows with the square of its size.
        for first in range(0, len(uids), FETCH_CHUNK):
            chunk = _uid_set(uids[first : first + FETCH_CHUNK])
            response = await self._command(
                self.client.uid("fetch", chunk, f"(UID BODY.PEEK[]<0.{MAX_FETCH}>)"), "FETCH"
            )
            uid: str | None = None
            for line in response.lines:
                if isinstance(line, bytearray) and uid is not None:
                    items.append(Item(uid, bytes(line)))
                    uid = None
                elif isinstance(line, bytes):
                    found = re.search(rb"UID (\d+)", line)
                    uid = found.group(1).decode() if found else uid
        return items

    async def mark(self, done: Sequence[str], unmatched: Sequence[str]) -> None:
        """Queue the STORE of these marks (their outcomes are committed); it runs behind the
        command under way, and a failure is raised by a later call."""
        self._reap()
        if done or unmatched:
            self._stores.append(asyncio.ensure_future(self._store(done, unmatched)))

    async def _store(self, done: Sequence[str], unmatched: Sequence[str]) -> None:
        if unmatched:
            flags = f"({self.flag} {UNMATCHED_FLAG})"
            await self._command(self.client.uid("store", _uid_set(unmatched), "+FLAGS", flags),
                                "STORE")  # fmt: skip
        if not done:
            return
        uid_set = _uid_set(done)
        await self._command(self.client.uid("store", uid_set, "+FLAGS", f"({self.flag})"), "STORE")
        folder = self.settings.processed_folder
        if folder:
            if self.client.has_capability("MOVE"):
                await self._command(self.client.uid("move", uid_set, folder), "MOVE")
            else:
                await self._command(self.client.uid("copy", uid_set, folder), "COPY")
                await self._command(self.client.uid("store", uid_set, "+FLAGS", "(\\Deleted)"),
                                    "STORE")  # fmt: skip
                await self._command(self.client.uid("expunge", uid_set), "EXPUNGE")

    async def wait(self, stop: asyncio.Event) -> None:
        """Until the server pushes news (IDLE), or the poll interval passes, or stop."""
        await self._settle()
        interval = self.settings.poll_interval.total_seconds()
        idle = self.settings.idle and self.client.has_capability("IDLE")
        idle_task = None
        if idle:
            idle_task = await self._call(self.client.idle_start(timeout=interval + 60), "IDLE")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + interval
        while not stop.is_set() and not self._lost.is_set() and loop.time() < deadline:
            waiters = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._lost.wait()),
            }
            push = None
            if idle:
                push = asyncio.ensure_future(self.client.wait_server_push(timeout=interval))
                waiters.add(push)
            try:
                await asyncio.wait(waiters, timeout=deadline - loop.time(),
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
            if push is not None and push.done() and not push.cancelled():
                lines = push.result() if push.exception() is None else []
                if not isinstance(lines, list) or any(b"EXISTS" in bytes(x) for x in lines):
                    break  # new mail (or the library ended the IDLE itself)
        if self._lost.is_set():
            raise InboxError("IMAP: connection lost")
        if idle_task is not None:
            self.client.idle_done()
            await self._call(idle_task, "DONE")


def _text(lines: Sequence[Any]) -> str:
    return " ".join(bytes(x).decode("utf-8", "replace") for x in lines if isinstance(x, bytes))


def _uid_set(uids: Sequence[str]) -> str:
    """ "3:5,9" for 3 4 5 9: short command lines however many UIDs (in the order given)."""
    runs: list[list[int]] = []
    for uid in map(int, uids):
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(f"{a}:{b}" if b > a else str(a) for a, b in runs)


def _uids(response: Any) -> list[str]:
    return [u for line in response.lines if isinstance(line, bytes | bytearray)
            for u in _search_uids(bytes(line))]  # fmt: skip


def _search_uids(line: bytes) -> list[str]:
    """UIDs of a search result line: "1 2 3" (aioimaplib strips "* SEARCH"), or "SEARCH 1 2"."""
    words = line.decode("ascii", "replace").split()
    if words and words[0].upper() == "SEARCH":
        words = words[1:]
    return words if all(w.isdigit() for w in words) else []


class MaildirSource:
    """A local Maildir: new/ and unseen cur/ messages in, cur/ with S (and F) out."""

    def __init__(self, path: Path, poll: float = 1.0) -> None:
        self.path = path
        self.poll = poll

    async def open(self) -> None:
        for sub in ("new", "cur", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def _new(self, skip: set[str]) -> list[Item]:
        items = []
        for sub in ("new", "cur"):
            for entry in sorted(os.scandir(self.path / sub), key=lambda e: e.name):
                name = f"{sub}/{entry.name}"
                flags = entry.name.partition(":2,")[2]
                if entry.name.startswith(".") or "S" in flags or name in skip:
                    continue
                with contextlib.suppress(FileNotFoundError):  # taken by someone else
                    items.append(Item(name, Path(entry.path).read_bytes()))
                if len(items) >= BATCH:
                    return items
        return items

    async def fetch(self, skip: set[str]) -> list[Item]:
        return await asyncio.to_thread(self._new, skip)

    def _mark(self, done: Sequence[str], unmatched: Sequence[str]) -> None:
        for name, extra in [*((n, "S") for n in done), *((n, "FS") for n in unmatched)]:
            base, _, flags = name.partition("/")[2].partition(":2,")
            new_flags = "".join(sorted(set(flags) | set(extra)))
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.path / name, self.path / "cur" / f"{base}:2,{new_flags}")

    async def mark(self, done: Sequence[str], unmatched: Sequence[str]) -> None:
        await asyncio.to_thread(self._mark, done, unmatched)

    async def wait(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=self.poll)
