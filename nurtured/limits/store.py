"""Where the limits' state lives: in this process (embedded), or in Redis (arq workers).

Both take one admission atomically with ``nurtured.limits.core.decide``'s rules: the
memory store by calling it (one event loop: nothing runs in between), Redis by one Lua
script (``EVALSHA``, registered through redis-py's ``register_script``), so that every
worker process on every machine shares one budget. Time comes from the caller: all
processes must have a synchronised clock (NTP), as they already need for leases.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

from nurtured.limits.core import Decision, Rule, decide

# KEYS[1] the day counter ("" when no cap), KEYS[2..] one GCRA key per rule.
# ARGV: now, max_wait, cap (-1: none), day ttl, then interval and tolerance per rule.
ADMIT = """
local now = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
if cap >= 0 then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if used >= cap then return {'capped', '0'} end
end
local at = now
local tats = {}
for i = 2, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or ARGV[1])
  tats[i] = tat
  local allowed = tat - tonumber(ARGV[4 + 2 * (i - 1)])
  if allowed > at then at = allowed end
end
if at - now > max_wait then return {'wait', string.format('%.6f', at - now)} end
for i = 2, #KEYS do
  local new_tat = math.max(tats[i], at) + tonumber(ARGV[3 + 2 * (i - 1)])
  local ttl = math.ceil((new_tat - now) * 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.6f', new_tat), 'PX', ttl)
end
if cap >= 0 then
  redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
end
return {'go', string.format('%.6f', at - now)}
"""

DAY_TTL = 3 * 86_400  # a day counter outlives its day in every time zone


class Store(Protocol):
    async def admit(
        self, rules: list[Rule], day_key: str, cap: int | None, now: float, max_wait: float
    ) -> Decision: ...
    async def close(self) -> None: ...


class MemoryStore:
    """The embedded mode's state: a dict, shared by every engine of this process."""

    def __init__(self) -> None:
        self.tats: dict[str, float] = {}
        self.days: dict[str, int] = {}

    async def admit(
        self, rules: list[Rule], day_key: str, cap: int | None, now: float, max_wait: float
    ) -> Decision:
        tats = [self.tats.get(rule.key) for rule in rules]
        decision, new = decide(tats, rules, now, max_wait, self.days.get(day_key, 0), cap)
        if decision.go:
            for rule, tat in zip(rules, new, strict=True):
                self.tats[rule.key] = tat
            if cap is not None:
                self.days[day_key] = self.days.get(day_key, 0) + 1
                for key in [k for k in self.days if k[:-10] == day_key[:-10] and k < day_key]:
                    del self.days[key]  # yesterday's counts of this sender
        return decision

    async def close(self) -> None:
        return None


class RedisStore:
    """The shared state of every worker: one Lua script per admission."""

    def __init__(self, url: str) -> None:
        self.redis: Redis = Redis.from_url(url)
        self._admit = self.redis.register_script(ADMIT)

    async def admit(
        self, rules: list[Rule], day_key: str, cap: int | None, now: float, max_wait: float
    ) -> Decision:
        args: list[float | int] = [now, max_wait, -1 if cap is None else cap, DAY_TTL]
        for rule in rules:
            args += [rule.interval, rule.tolerance]
        kind, wait = await self._admit(keys=[day_key, *(r.key for r in rules)], args=args)
        return Decision(kind == b"go", float(wait), capped=kind == b"capped")

    async def close(self) -> None:
        await self.redis.aclose()
