"""The send stage of a pass: a few workers per SMTP connection, fed across batches.

Workers take jobs from one queue that spans the batches of a pass, so the connections
stay busy at batch boundaries: the next batch's first emails go out while the previous
batch's last ones are still on the wire, and while it is being recorded and saved.
Each ``submit`` returns a future that is done once every job of that batch has been
tried (its ``outcome`` set, or left None for sent). The queue holds at most one batch,
so preparing runs at most one batch ahead of sending and memory stays flat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from nurtured.exceptions import SendError, UnknownSendOutcome

log = logging.getLogger(__name__)


class _HasOutcome(Protocol):
    outcome: SendError | None


J = TypeVar("J", bound=_HasOutcome)


class _Batch:
    __slots__ = ("done", "left")

    def __init__(self, left: int, done: asyncio.Future[None]) -> None:
        self.left = left
        self.done = done


class SendPool(Generic[J]):
    """``async with SendPool(send_one, workers) as pool: await (await pool.submit(jobs))``.

    ``send_one(job)`` sets ``job.outcome`` for a refusal; anything else it raises is a
    bug, logged, and the job's outcome becomes "unknown" (the message may have gone out:
    never resent). Leaving the block waits for every job submitted (also when cancelled:
    their claims are committed, so they must be tried and their futures completed).
    """

    def __init__(self, send_one: Callable[[J], Awaitable[None]], workers: int, depth: int) -> None:
        self._send_one = send_one
        self._count = max(1, workers)
        self._queue: asyncio.Queue[tuple[J, _Batch] | None] = asyncio.Queue(max(1, depth))
        self._workers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> SendPool[J]:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self._count)]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        for _ in self._workers:
            await self._queue.put(None)
        await asyncio.gather(*self._workers)

    async def submit(self, jobs: Sequence[J]) -> asyncio.Future[None]:
        """Queue ``jobs`` (waiting for room); the future is done when all have been tried."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not jobs:
            done.set_result(None)
            return done
        batch = _Batch(len(jobs), done)
        for job in jobs:
            await self._queue.put((job, batch))
        return done

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            job, batch = item
            try:
                await self._send_one(job)
            except Exception as exc:  # a bug, not a refusal: keep the pass and the claim
                log.exception("sending failed unexpectedly: outcome unknown, not resent")
                job.outcome = UnknownSendOutcome(f"internal error while sending: {exc!r}")
            batch.left -= 1
            if batch.left == 0:
                batch.done.set_result(None)
