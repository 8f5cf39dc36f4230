"""Who is alive and who leads, kept in Redis, for processes on many machines.

``Leader``: one holder at a time of a key with an expiry (``[queue] liveness``). The
holder renews it every third of that; a holder that dies stops renewing and another
process takes the key once it has expired, so a singleton (the tick, the inbox reader,
the SLA timer) runs in exactly one process and comes back within ``liveness`` of its
holder's death. Renewal and release are compare-and-set scripts: a process whose key
expired (it was stopped too long) cannot renew or delete its successor's.

``Heartbeats``: every worker keeps a key of its own alive the same way and is listed in
a set. A listed worker whose key has expired is dead: the leader takes its cut-off sends
back at once (``Engine.recover(gone=...)``) rather than after the engine's lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS[1] the lease, ARGV[1] its holder, ARGV[2] its expiry in ms.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


T = TypeVar("T")


async def _done(result: Awaitable[T] | T) -> T:
    """redis-py types its async client's replies as "awaitable or not"."""
    return await result if isinstance(result, Awaitable) else result


def _ms(duration: timedelta) -> int:
    return max(1, int(duration.total_seconds() * 1000))


class Leader:
    """The leader lease ``key``, tried for by ``holder`` (the process's lease name)."""

    def __init__(self, redis: Redis, key: str, holder: str, ttl: timedelta) -> None:
        self.redis = redis
        self.key = key
        self.holder = holder
        self.ttl = ttl

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it, or renew it if we do; True when ours."""
        if await self.redis.set(self.key, self.holder, nx=True, px=_ms(self.ttl)):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        ttl = str(_ms(self.ttl))
        return bool(await _done(self.redis.eval(_RENEW, 1, self.key, self.holder, ttl)))

    async def release(self) -> None:
        await _done(self.redis.eval(_RELEASE, 1, self.key, self.holder))

    async def holder_now(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


async def lead(
    leader: Leader,
    stop: asyncio.Event,
    singletons: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> None:
    """Until ``stop``: try for the lease; while it is ours, run ``singletons(resign)``.

    ``resign`` is set when the lease is lost (not renewed in time, or Redis out of reach)
    or on ``stop``; the singletons finish what they are doing and return. On ``stop`` the
    lease is released, so a successor takes over at once rather than after the expiry.
    """
    beat = leader.ttl.total_seconds() / 3
    task: asyncio.Task[None] | None = None
    resign = asyncio.Event()
    try:
        while not stop.is_set():
            try:
                ours = await leader.acquire()
            except (RedisError, OSError) as exc:
                log.warning("leader lease %s: Redis out of reach (%s)", leader.key, exc)
                ours = False
            if ours and task is None:
                log.info("leader: %s took %s", leader.holder, leader.key)
                resign = asyncio.Event()
                task = asyncio.create_task(singletons(resign), name="nurtured-leader")
            elif not ours and task is not None:
                log.warning("leader: %s lost %s; stopping the singletons", leader.holder,
                            leader.key)  # fmt: skip
                await _stop(task, resign, leader.ttl)
                task = None
            if task is not None and task.done():  # a singleton failed: give the lease up
                failure = task.exception() if not task.cancelled() else None
                log.error("leader: singletons stopped (%s); giving up %s", failure, leader.key)
                task = None
                with contextlib.suppress(RedisError, OSError):
                    await leader.release()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=beat)
    finally:
        if task is not None:
            await _stop(task, resign, leader.ttl)
        with contextlib.suppress(RedisError, OSError):
            await leader.release()


async def _stop(task: asyncio.Task[None], resign: asyncio.Event, grace: timedelta) -> None:
    resign.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace.total_seconds())
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except Exception as exc:  # logged; the lease is given up either way
        log.error("leader: singletons failed while stopping: %s", exc)


class Heartbeats:
    """Workers' liveness: ``{prefix}:alive:{holder}`` with an expiry, listed in
    ``{prefix}:workers``."""

    def __init__(self, redis: Redis, prefix: str, ttl: timedelta) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl

    def _key(self, holder: str) -> str:
        return f"{self.prefix}:alive:{holder}"

    async def beat(self, holder: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(holder), 1, px=_ms(self.ttl))
            pipe.sadd(f"{self.prefix}:workers", holder)
            await pipe.execute()

    async def leave(self, holder: str) -> None:
        """A clean stop: nothing of ours is left to recover."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(holder))
            pipe.srem(f"{self.prefix}:workers", holder)
            await pipe.execute()

    async def gone(self) -> set[str]:
        """Listed workers whose heartbeat has expired."""
        members = sorted(
            m.decode() for m in await _done(self.redis.smembers(f"{self.prefix}:workers"))
        )
        if not members:
            return set()
        alive = await self.redis.mget([self._key(m) for m in members])
        return {m for m, value in zip(members, alive, strict=True) if value is None}

    async def forget(self, holders: set[str]) -> None:
        """Unlist dead workers once their cut-off work was taken back."""
        if holders:
            await _done(self.redis.srem(f"{self.prefix}:workers", *sorted(holders)))

    async def run(self, holder: str, stop: asyncio.Event) -> None:
        """Beat every third of the expiry until ``stop``."""
        beat = self.ttl.total_seconds() / 3
        while not stop.is_set():
            try:
                await self.beat(holder)
            except (RedisError, OSError) as exc:
                log.warning("heartbeat: Redis out of reach (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=beat)
