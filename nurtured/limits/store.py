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

# KEYS[1] the day counter ("" when no cap), KEYS[2..n+1] one GCRA key per rule, then
# KEYS[n+2..2n+1] each rule's tail. ARGV: now, max_wait, cap (-1: none), day ttl, then
# interval and tolerance per rule.
ADMIT = """
local now = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local n = (#KEYS - 1) / 2
if cap >= 0 then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if used >= cap then return {'capped', '0'} end
end
local at = now
local tats = {}
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[1 + i]) or ARGV[1])
  tats[i] = tat
  local allowed = tat - tonumber(ARGV[4 + 2 * i])
  if allowed > at then at = allowed end
end
if at - now > max_wait then
  local turn = at
  local binding = {}
  for i = 1, n do
    if tats[i] - tonumber(ARGV[4 + 2 * i]) - now > max_wait then
      binding[#binding + 1] = i
      local tail = redis.call('GET', KEYS[1 + n + i])
      if tail and tonumber(tail) > turn then turn = tonumber(tail) end
    end
  end
  for _, i in ipairs(binding) do
    local new_tail = turn + tonumber(ARGV[3 + 2 * i])
    local ttl = math.ceil((new_tail - now) * 1000) + 1000
    redis.call('SET', KEYS[1 + n + i], string.format('%.6f', new_tail), 'PX', ttl)
  end
  return {'wait', string.format('%.6f', turn - now)}
end
for i = 1, n do
  local new_tat = math.max(tats[i], at) + tonumber(ARGV[3 + 2 * i])
  local ttl = math.ceil((new_tat - now) * 1000) + 1000
  redis.call('SET', KEYS[1 + i], string.format('%.6f', new_tat), 'PX', ttl)
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
        self.tails: dict[str, float] = {}
        self.days: dict[str, int] = {}

    async def admit(
        self, rules: list[Rule], day_key: str, cap: int | None, now: float, max_wait: float
    ) -> Decision:
        tats = [self.tats.get(rule.key) for rule in rules]
        tails = [self.tails.get(rule.key) for rule in rules]
        used = self.days.get(day_key, 0)
        decision, new, new_tails = decide(tats, tails, rules, now, max_wait, used, cap)
        for rule, tail in zip(rules, new_tails, strict=True):
            if tail is not None:
                self.tails[rule.key] = tail
        if decision.go:
            for rule, tat in zip(rules, new, strict=True):
                if tat is not None:
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
        keys = [day_key, *(r.key for r in rules), *(f"{r.key}:tail" for r in rules)]
        kind, wait = await self._admit(keys=keys, args=args)
        return Decision(kind == b"go", float(wait), capped=kind == b"capped")

    async def close(self) -> None:
        await self.redis.aclose()
