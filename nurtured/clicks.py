"""What makes click redirects fast: verified deliveries kept in memory, and clicks and
opens written by one background writer in group commits.

``SentCache`` maps a delivery token (taken only from a verified, signed URL) to what the
tracking server needs to answer: the delivery and lead ids, when it was sent, and the
links stored when the email was rendered, each with the only URL it may redirect to.
Links never change once stored, so an entry never goes stale; a delivery not known to
be sent is not kept (its ``sent_at`` is still to come). At most ``capacity`` deliveries are
kept, the least recently used forgotten first; a miss costs two indexed reads.

``SignalWriter`` takes the click and open signals the handlers hand it and records them
through ``reactions.react``: everything waiting (up to ``BATCH``) goes into one
transaction, so while one batch commits the next one gathers. At most ``capacity``
signals wait uncommitted; a handler finding it full waits for room, first come first
served (back-pressure: nothing is ever dropped).
``close`` writes everything still waiting. A batch that fails is tried again signal by
signal, so one bad signal costs only itself (logged, like any signal not recorded).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from tortoise import connections

from nurtured.app import Runtime
from nurtured.models import Delivery
from nurtured.reactions import Outcome, Signal, react
from nurtured.tokens import Signer

log = logging.getLogger(__name__)

CACHE_DELIVERIES: Final = 5_000
WAITING_SIGNALS: Final = 1_000
# At most this many signals per transaction (reactions.react pauses every few ms of work,
# so the redirects are answered meanwhile). Under load a batch's time is mostly its few
# queries waiting their turn, hardly its size: 200 made the writer fall behind.
BATCH: Final = 500


def safe_redirect(url: str) -> bool:
    """Belt and braces: render.py only stores http(s) URLs; never redirect to anything else."""
    if any(c in url for c in "\r\n\0") or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True, slots=True)
class StoredLink:
    url: str
    tag: str | None
    safe: bool  # safe_redirect(url): a link that is not gets 404


@dataclass(frozen=True, slots=True)
class Sent:
    """A sent delivery as the tracking server needs it."""

    delivery_id: int
    lead_id: int
    sent_at: datetime | None  # None: claimed, not (known to be) sent; never kept
    links: Mapping[int, StoredLink]  # by link index


class SentCache:
    """Delivery token -> ``Sent``, least recently used forgotten first."""

    def __init__(self, capacity: int = CACHE_DELIVERIES) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Sent] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, token: str) -> Sent | None:
        """The sent delivery with ``token`` (a verified one), or None if there is none."""
        entry = self._entries.get(token)
        if entry is not None:
            self._entries.move_to_end(token)
            return entry
        entry = await _load(token)
        if entry is not None and entry.sent_at is not None:  # else its sent_at is to come
            self._entries[token] = entry
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return entry


class Verified:
    """Signed tokens lately verified, and their parts: a repeat click costs a lookup, not
    an HMAC. Only tokens ``signer`` verified are kept, and only for that signer (a reload
    with another secret starts afresh); at most ``capacity``, least recently used dropped."""

    def __init__(self, capacity: int = CACHE_DELIVERIES) -> None:
        self.capacity = capacity
        self._signer: Signer | None = None
        self._parts: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def verify(self, signer: Signer, kind: str, token: str) -> tuple[str, ...] | None:
        """``signer.verify(kind, token)``, remembered when it succeeds."""
        if signer is not self._signer:
            self._signer, self._parts = signer, OrderedDict()
        key = f"{kind}/{token}"  # "/" never occurs in a token's kind
        parts = self._parts.get(key)
        if parts is not None:
            self._parts.move_to_end(key)
            return parts
        parts = signer.verify(kind, token)
        if parts is not None:
            self._parts[key] = parts
            if len(self._parts) > self.capacity:
                self._parts.popitem(last=False)
        return parts


# One indexed read per miss, written out: building it with the ORM cost more than running it.
_LOAD = (
    'SELECT d.id, d.lead_id, d.sent_at, l."index", l.url, l.tag FROM delivery d '
    "LEFT JOIN link l ON l.delivery_id = d.id WHERE d.token = {}"
)


async def _load(token: str) -> Sent | None:
    conn = connections.get("default")
    placeholder = "$1" if conn.capabilities.dialect.startswith("postgres") else "?"
    _, rows = await conn.execute_query(_LOAD.format(placeholder), [token])
    if not rows:
        return None
    sent_at = Delivery._meta.fields_map["sent_at"].to_python_value(rows[0][2])
    links = {
        row[3]: StoredLink(row[4], row[5], safe_redirect(row[4]))
        for row in rows
        if row[3] is not None
    }
    return Sent(rows[0][0], rows[0][1], sent_at, links)


class SignalWriter:
    """Records signals in group commits from one background task; see the module doc."""

    def __init__(
        self,
        runtime: Runtime,
        on_outcome: Callable[[Outcome], None],
        *,
        capacity: int = WAITING_SIGNALS,
    ) -> None:
        self.runtime = runtime
        self.on_outcome = on_outcome
        self.capacity = capacity
        self._waiting: list[Signal] = []
        self._queued = 0  # signals ever put
        self._done = 0  # signals ever written (or given up on, logged)
        self._changed = asyncio.Condition()
        self._room = asyncio.Semaphore(capacity)  # first come, first served when full
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="nurtured-signal-writer")

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def put(self, signal: Signal) -> None:
        """Queue ``signal``; waits while ``capacity`` signals are waiting already."""
        if self._task is None or self._task.done() or self._closing:
            raise RuntimeError("the signal writer is not running")
        await self._room.acquire()
        self._waiting.append(signal)
        self._queued += 1
        if len(self._waiting) == 1:
            async with self._changed:
                self._changed.notify_all()

    async def flush(self) -> None:
        """Wait until every signal put so far is committed (or logged as not recorded)."""
        target = self._queued
        async with self._changed:
            await self._changed.wait_for(lambda: self._done >= target)

    async def close(self) -> None:
        """Write everything waiting, then stop; later ``put`` calls are refused."""
        if self._task is None:
            return
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        await self._task  # it returns once nothing is waiting
        self._task = None

    async def _run(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._waiting) or self._closing)
            if not self._waiting:
                return  # closing, and everything is written
            batch = self._waiting[:BATCH]  # what waits (up to BATCH): the next group commit
            try:
                outcomes = await self._write(batch)
            finally:  # written, or given up on and logged
                del self._waiting[: len(batch)]
                self._done += len(batch)
                for _ in batch:
                    self._room.release()
                async with self._changed:
                    self._changed.notify_all()
            for outcome in outcomes:
                try:
                    self.on_outcome(outcome)
                except Exception:
                    log.exception("lead %d: after %s", outcome.signal.lead_id, outcome.signal.kind)

    async def _write(self, batch: Sequence[Signal]) -> list[Outcome]:
        try:
            return await react(self.runtime.app, batch)
        except Exception:
            log.exception("%d signals in one transaction failed: writing them one by one",
                          len(batch))  # fmt: skip
        outcomes: list[Outcome] = []
        for signal in batch:
            try:
                outcomes += await react(self.runtime.app, [signal])
            except Exception:
                log.exception("lead %d: %s not recorded", signal.lead_id, signal.kind)
        return outcomes
