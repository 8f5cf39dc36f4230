"""Send limits at work: shared in Redis by several processes, in-process for the engine."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from nurtured.app import load_app, make_transport
from nurtured.engine import Engine
from nurtured.exceptions import ConfigError
from nurtured.intake import make_input, upsert
from nurtured.limits import LimitedTransport, Limits
from nurtured.limits.core import Rule
from nurtured.limits.store import MemoryStore, RedisStore
from nurtured.models import Delivery, DeliveryStatus, Enrollment
from nurtured.outcomes import PassReport
from tests.walk import MONDAY, config, write_project

REDIS = os.environ.get("NURTURED_TEST_REDIS", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def redis_url() -> str:
    client = Redis.from_url(REDIS)
    try:
        await client.ping()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS}: {exc}")
    finally:
        await client.aclose()
    return REDIS


async def test_the_redis_script_decides_as_the_pure_arithmetic(redis_url: str) -> None:
    """Same admissions, same answers: the Lua script and ``decide`` are one algorithm."""
    prefix = f"t-{secrets.token_hex(4)}"
    rules = [Rule.per(f"{prefix}:g", 5, 1, burst=2), Rule.per(f"{prefix}:d", 2, 1)]
    memory, shared = MemoryStore(), RedisStore(redis_url)
    base = 1_900_000_000.0  # any fixed time: the script takes now from the caller
    try:
        for i, offset in enumerate([0, 0, 0, 0.1, 0.2, 3, 3, 3, 3, 3, 9]):
            day = f"{prefix}:day:a@b.example:2026-12-0{1 + i // 6}"
            now = base + offset
            want = await memory.admit(rules, day, 4, now, 1.2)
            got = await shared.admit(rules, day, 4, now, 1.2)
            assert (got.go, got.capped) == (want.go, want.capped), i
            assert got.wait == pytest.approx(want.wait, abs=1e-5), i
    finally:
        await shared.close()


CHILD = """
import asyncio, json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from nurtured.app import load_app, make_transport

async def main(config, recipients, start):
    settings = load_app(Path(config)).settings
    transport = make_transport(settings)
    await transport.start()
    await asyncio.sleep(max(0.0, start - time.time()))  # all processes start together
    async def one(rcpt):
        held = await transport.limits.admit(settings.sender.address, rcpt, datetime.now(UTC))
        assert held is None, held
        await transport.send(b"Subject: x\\r\\n\\r\\nbody\\r\\n", sender="b@acme.example",
                             recipients=[rcpt])
    await asyncio.gather(*(one(r) for r in recipients))
    await transport.close()
    print(json.dumps(len(recipients)))

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])))
"""


def limited_project(root: Path, port: int, extra: str) -> Path:
    return write_project(root, port, **{"config.toml": config(port) + extra})


async def test_the_per_domain_limit_holds_across_processes(
    tmp_path: Path, smtp_sink: Any, redis_url: str
) -> None:
    """Three processes send 12 emails each to a domain limited to 10 in 2 s: every email
    arrives, at the shared pace (not three times it), never more than 10 in any 2 s at
    the sink (+3 for the jitter of a loaded machine: unshared it would be 30); another
    domain is not slowed. The limit's clock is real time, so the period is small."""
    queue = f"nurtured-test-{secrets.token_hex(4)}"
    config_path = limited_project(tmp_path, smtp_sink.port, f"""
        [queue]
        backend = "arq"
        redis_url = "{redis_url}"
        queue_name = "{queue}"
        [limits]
        per_domain = {{ "slow.example" = 10 }}
        period = "2s"
        max_wait = "60s"
    """)  # fmt: skip
    start = time.time() + 4
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = []
    for n in range(3):
        rcpts = [f"p{n}-{i}@slow.example" for i in range(12)]
        rcpts += [f"p{n}-{i}@fast.example" for i in range(10)]
        args = [str(config_path), json.dumps(rcpts), str(start)]
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, *args, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        children.append(child)
    for child in children:
        out, err = await asyncio.wait_for(child.communicate(), 90)
        assert child.returncode == 0, err.decode()
        assert json.loads(out) == 22

    slow = sorted(m.at for m in smtp_sink.messages if m.rcpt_tos[0].endswith("@slow.example"))
    fast = sorted(m.at for m in smtp_sink.messages if m.rcpt_tos[0].endswith("@fast.example"))
    assert (len(slow), len(fast)) == (36, 30)
    assert slow[-1] - slow[0] >= 35 * 0.2 * 0.95  # one every 0.2 s, whoever sends it
    busiest = max(sum(1 for t in slow if first <= t < first + 2.0) for first in slow)
    assert busiest <= 13, f"{busiest} emails to slow.example within 2 s"
    for n in range(3):  # the other domain is not paced: each process's 10 went at once
        times = [m.at for m in smtp_sink.messages if m.rcpt_tos[0].startswith(f"p{n}-")
                 and m.rcpt_tos[0].endswith("@fast.example")]  # fmt: skip
        assert max(times) - min(times) < 0.9


async def test_a_daily_cap_with_warmup_defers_the_rest_to_the_next_day(
    tmp_path: Path, db: str, smtp_sink: Any
) -> None:
    """Warm-up 2 on the first day, x1.5 after: 5 due leads get 2 emails on Monday, the
    other 3 wait (deferred, not failed, no attempt counted) and go on Tuesday."""
    day = MONDAY.date().isoformat()
    app = load_app(limited_project(tmp_path, smtp_sink.port, f"""
        [limits]
        warmup = {{ start = {day}, first_day = 2, factor = 1.5 }}
    """))  # fmt: skip
    transport = make_transport(app.settings)
    assert isinstance(transport, LimitedTransport)
    await transport.start()
    items = [make_input({"email": f"lead{i}@example.com", "interest": "a"}) for i in range(5)]
    await upsert(items, app.catalog, app.rules, MONDAY)
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=transport)  # fmt: skip
    try:
        first = await engine.run_due(MONDAY)
        assert (first["sent"], first["held_back"]) == (2, 3)
        tuesday = MONDAY.replace(hour=0) + timedelta(days=1)
        held = await Delivery.filter(status=DeliveryStatus.DEFERRED).values_list(
            "attempts", "retry_at"
        )
        assert sorted(held) == [(0, tuesday)] * 3
        assert (await engine.run_due(MONDAY + timedelta(hours=13)))["sent"] == 0
        second = await engine.run_due(tuesday)
        assert (second["sent"], second["held_back"]) == (3, 0)
    finally:
        await transport.close()
    got = sorted(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert got == sorted(f"lead{i}@example.com" for i in range(5))  # each exactly once
    assert await Delivery.filter(status=DeliveryStatus.SENT, attempts=1).count() == 5


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_a_domain_over_its_rate_is_deferred_in_order_and_sent_later(
    tmp_path: Path, db: str, smtp_sink: Any
) -> None:
    """1 a minute to slow.example, max_wait 10 s: one goes, the others wait their turn
    (deferred to when the slot comes), fast.example is not held; nothing is dropped."""
    app = load_app(limited_project(tmp_path, smtp_sink.port, """
        [limits]
        per_domain = { "slow.example" = 1 }
        max_wait = "10s"
    """))  # fmt: skip
    transport = make_transport(app.settings)
    assert isinstance(transport, LimitedTransport)
    fake = FakeTime()
    transport.limits.clock, transport.limits.sleep = fake.clock, fake.sleep
    emails = ["a@slow.example", "b@slow.example", "c@fast.example", "d@fast.example"]
    await upsert([make_input({"email": e, "interest": "a"}) for e in emails], app.catalog,
                 app.rules, MONDAY)  # fmt: skip
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=transport)  # fmt: skip
    reports: list[PassReport] = []
    try:
        reports.append(await engine.run_due(MONDAY))
        due = await Enrollment.filter(lead__email="b@slow.example").values_list(
            "next_due_at", flat=True
        )
        assert due == [MONDAY + timedelta(minutes=1)]
        fake.now += 30
        reports.append(await engine.run_due(MONDAY + timedelta(seconds=30)))  # not yet due
        fake.now += 30
        reports.append(await engine.run_due(MONDAY + timedelta(minutes=1)))
    finally:
        await transport.close()
    assert [(r["sent"], r["held_back"]) for r in reports] == [(3, 1), (0, 0), (1, 0)]
    arrived = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert sorted(arrived) == sorted(emails)
    assert arrived[-1] == "b@slow.example"


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('per_domain = { "gmail.com" = 0 }', 'limits.per_domain."gmail.com": 0 is too small'),
        (
            'warmup = { start = "soon", first_day = 5, factor = 1.5 }',
            'limits.warmup.start: "soon" is not a date',
        ),
        ('period = "0s"', 'limits.period: "0s" must be longer than 0'),
        ("daily_cap = -5", "limits.daily_cap: -5 is too small"),
    ],
)
def test_bad_limits_are_refused_naming_the_key(tmp_path: Path, toml: str, problem: str) -> None:
    path = limited_project(tmp_path, 2525, f"\n        [limits]\n        {toml}\n")
    with pytest.raises(ConfigError) as caught:
        load_app(path)
    assert problem in str(caught.value)


async def test_a_domains_backlog_does_not_hold_up_other_domains(tmp_path: Path) -> None:
    """Global 10/s, slow.example 1/s: the second slow email waits its second, and the
    fast.example email after it waits only for the global rate, not behind it."""
    app = load_app(limited_project(tmp_path, 2525, """
        [limits]
        per_domain = { "slow.example" = 1 }
        period = "1s"
    """))  # fmt: skip
    fake = FakeTime()
    limits = Limits(MemoryStore(), prefix="t", settings=app.settings, global_rate=10.0,
                    clock=fake.clock, sleep=fake.sleep)  # fmt: skip
    for address in ("a@slow.example", "b@slow.example", "c@fast.example"):
        assert await limits.admit("hello@acme.example", address, MONDAY) is None
    assert fake.slept == pytest.approx([1.0, 0.1, 0.2])  # b: its domain, then the global
