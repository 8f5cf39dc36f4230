"""Start marks: "this delivery is being handed to SMTP now", group-committed.

A claim (``claimed``) is committed for a whole batch before any of its emails is sent,
so that a delivery is never sent twice. That alone cannot tell, after a crash, the claims
whose SMTP transaction had begun (which may have been delivered: ``unknown``, never
resent) from those still waiting in the send queue (certainly not delivered: sent after
the restart). So each sender, right before its transaction, has its delivery marked
``sending`` and waits until that mark is committed.

The marks of all senders are written together: while one group is being committed, the
marks that arrive meanwhile wait and go in the next one. With N senders that is at most
one transaction per N emails, not one per email. Each group also records as ``sent``
the emails the server took since the last group, so after a crash at most the
transactions in flight (and the last one each sender finished) are ``sending``.

The UPDATE is conditional (``status = 'claimed'``): a claim that recovery took back in
the meantime (the process looked dead or its lease ran out) is not marked, and its email
is not sent (``ClaimLost``); the new owner sends it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from tortoise.transactions import in_transaction

from nurtured.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)


class StartMarks:
    """``await marks.start(id)`` before a transaction; ``marks.done(id, at)`` after one
    the server took. Done marks are not waited for: they ride in the next group, which
    the same sender's next start mark waits for, so at most two deliveries per sender
    (one in flight, one just done) are ``sending`` at any moment."""

    def __init__(self) -> None:
        self._starts: list[tuple[int, asyncio.Future[bool]]] = []
        self._done: list[int] = []
        self._done_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self.statements = 0  # groups written, for the bench and tests

    async def start(self, delivery_id: int) -> bool:
        """Mark ``delivery_id`` as handed to SMTP; True once committed, False when the
        claim is no longer ours. A database error propagates (nothing was marked)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._starts.append((delivery_id, future))
        self._kick()
        return await future

    def done(self, delivery_id: int, at: datetime) -> None:
        """``delivery_id`` was taken by the server at ``at``: record it with the next group."""
        self._done.append(delivery_id)
        self._done_at = at
        self._kick()

    async def drain(self) -> None:
        """Wait until every mark given so far is written (or failed)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def _kick(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._starts or self._done:
                starts, self._starts = self._starts, []
                done, self._done = self._done, []
                await self._write(starts, done)
        finally:
            self._task = None

    async def _write(self, starts: list[tuple[int, asyncio.Future[bool]]], done: list[int]) -> None:
        ids = {delivery_id for delivery_id, _ in starts}
        try:
            async with in_transaction():
                if done:
                    await Delivery.filter(id__in=done, status=DeliveryStatus.SENDING).update(
                        status=DeliveryStatus.SENT, sent_at=self._done_at
                    )
                marked = 0
                if ids:
                    marked = await Delivery.filter(
                        id__in=list(ids), status=DeliveryStatus.CLAIMED
                    ).update(status=DeliveryStatus.SENDING)
        except Exception as exc:  # a database error: nothing of the group was written
            if not starts:
                log.warning("sent marks not written (%s): the pass's save writes them", exc)
            for _, future in starts:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self.statements += 1
        # All or nothing for the group: when recovery took some claims back, the ones
        # that were marked stay "sending" unsent (recovered as unknown), so no email can
        # go out twice; this needs a race with recovery to happen at all.
        ours = marked == len(ids)
        if not ours:
            log.warning("%d of %d claims were taken back before sending: not sent",
                        len(ids) - marked, len(ids))  # fmt: skip
        for _, future in starts:
            if not future.done():
                future.set_result(ours)
