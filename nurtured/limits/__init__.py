"""Send limits shared by every process: a global rate, a rate per recipient domain, and a
cap per sender address and day with an optional warm-up ramp (``[limits]``, and
``[sending] rate_limit``).

The engine asks ``Limits.admit`` right before each email's start mark. An email that may
go soon waits for its slot (slots are handed out in the order asked, so waiting emails
keep their order); one whose slot is further than ``max_wait`` away, or whose sender's
day is used up, is held back: its claim becomes a deferred delivery, due again when its
slot comes or the next day starts (``nurtured.outcomes``). Nothing is dropped and a hold
does not count as a failed attempt. The state lives in Redis with ``[queue] backend =
"arq"`` (``store.RedisStore``), else in this process (``store.MemoryStore``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage

from nurtured.config import Settings
from nurtured.limits.core import Rule, Warmup, day_cap, next_day, sending_day
from nurtured.limits.store import MemoryStore, RedisStore, Store
from nurtured.mailer import Transport

__all__ = ["LimitedTransport", "Limits", "make_limits"]


class Limits:
    def __init__(
        self,
        store: Store,
        *,
        prefix: str,
        settings: Settings,
        global_rate: float | None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        limits = settings.limits
        self.store = store
        self.prefix = prefix
        self.zone = settings.sending.timezone
        self.per_domain = {domain.lower(): count for domain, count in limits.per_domain.items()}
        self.per_domain_default = limits.per_domain_default
        self.period = limits.period.total_seconds()
        self.max_wait = limits.max_wait.total_seconds()
        self.daily_cap = limits.daily_cap
        w = limits.warmup
        self.warmup = Warmup(w.start, w.first_day, w.factor) if w is not None else None
        self.global_rule = (
            Rule.per(f"{prefix}:rate", global_rate, 1.0, burst=int(max(1.0, global_rate / 10)))
            if global_rate
            else None
        )
        self.clock = clock
        self.sleep = sleep

    def domain_rules(self, recipient: str) -> list[Rule]:
        domain = recipient.rpartition("@")[2].lower()
        count = self.per_domain.get(domain, self.per_domain_default)
        return [Rule.per(f"{self.prefix}:domain:{domain}", count, self.period)] if count else []

    async def admit(self, sender: str, recipient: str, now: datetime) -> datetime | None:
        """None once ``recipient`` may be sent to (after waiting for its turn); else the
        time it is held back until. ``now`` says which day's cap counts.

        Two steps: the recipient's domain and the sender's day first, then the global
        rate once the domain's turn has come. Taken together, a domain's turn seconds
        ahead would also take the global turn that far ahead and hold up every other
        domain's email behind it."""
        domain = self.domain_rules(recipient)
        day = sending_day(now, self.zone)
        cap = day_cap(day, self.daily_cap, self.warmup)
        if domain or cap is not None:
            day_key = f"{self.prefix}:day:{sender.lower()}:{day.isoformat()}"
            decision = await self.store.admit(domain, day_key, cap, self.clock(), self.max_wait)
            if decision.capped:
                return next_day(now, self.zone)
            if not decision.go:
                return now + timedelta(seconds=decision.wait)
            if decision.wait > 0:
                await self.sleep(decision.wait)
        if self.global_rule is not None:
            rules = [self.global_rule]
            decision = await self.store.admit(rules, "", None, self.clock(), self.max_wait)
            if not decision.go:
                return now + timedelta(seconds=decision.wait)
            if decision.wait > 0:
                await self.sleep(decision.wait)
        return None

    async def close(self) -> None:
        await self.store.close()


def make_limits(settings: Settings, *, global_rate: float | None) -> Limits | None:
    """The limits ``settings`` ask for (None: none at all), in Redis for arq workers."""
    limits = settings.limits
    wanted = (
        global_rate or limits.per_domain or limits.per_domain_default or limits.daily_cap
        or limits.warmup
    )  # fmt: skip
    if not wanted:
        return None
    queue = settings.queue
    store: Store = RedisStore(queue.redis_url) if queue.backend == "arq" else MemoryStore()
    return Limits(store, prefix=f"{queue.queue_name}:limits", settings=settings,
                  global_rate=global_rate)  # fmt: skip


class LimitedTransport:
    """A transport with the limits the engine asks before each email (``limits``);
    ``send`` itself is not limited (sales alerts go out at once)."""

    def __init__(self, inner: Transport, limits: Limits) -> None:
        self.inner = inner
        self.limits = limits
        self.pool_size: int = getattr(inner, "pool_size", 1)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            await self.limits.close()

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> None:
        await self.inner.send(message, sender=sender, recipients=recipients)
