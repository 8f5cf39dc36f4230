"""The send pool: workers fed across batches, one future per batch, bugs kept as "unknown"."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from nurtured.exceptions import SendError, TransientSendError, UnknownSendOutcome
from nurtured.sending import SendPool


@dataclass
class FakeJob:
    name: str
    outcome: SendError | None = None


async def test_every_job_of_every_batch_is_tried_and_each_batch_completes() -> None:
    tried: list[str] = []
    release, others_sent = asyncio.Event(), asyncio.Event()

    async def send_one(job: FakeJob) -> None:
        if job.name == "b1":
            await release.wait()  # batch b is held up by one slow message
        tried.append(job.name)
        if {"b2", "b3"} <= set(tried):
            others_sent.set()
        if job.name == "a2":
            job.outcome = TransientSendError("451 try later")

    a = [FakeJob("a1"), FakeJob("a2")]
    b = [FakeJob("b1"), FakeJob("b2"), FakeJob("b3")]
    async with SendPool(send_one, workers=2, depth=10) as pool:
        a_sent = await pool.submit(a)
        b_sent = await pool.submit(b)
        await asyncio.wait_for(a_sent, 5)
        # The other worker goes on to b's messages while b1 waits: no idle worker at
        # the batch boundary, but b is not done until its slow message is.
        await asyncio.wait_for(others_sent.wait(), 5)
        assert not b_sent.done()
        release.set()
        await asyncio.wait_for(b_sent, 5)
    assert sorted(tried) == ["a1", "a2", "b1", "b2", "b3"]
    assert isinstance(a[1].outcome, TransientSendError)
    assert [job.outcome for job in b] == [None, None, None]


async def test_submit_waits_for_room_so_preparing_stays_one_batch_ahead() -> None:
    gate = asyncio.Event()

    async def send_one(job: FakeJob) -> None:
        await gate.wait()

    async with SendPool(send_one, workers=1, depth=2) as pool:
        await pool.submit([FakeJob("a1"), FakeJob("a2"), FakeJob("a3")])  # 1 taken, 2 queued
        second = asyncio.create_task(pool.submit([FakeJob("b1")]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not second.done()  # no room until the worker takes the next job
        gate.set()
        await asyncio.wait_for(second, 5)


async def test_an_unexpected_error_is_logged_and_the_outcome_is_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def send_one(job: FakeJob) -> None:
        if job.name == "bug":
            raise KeyError("oops")

    jobs = [FakeJob("ok"), FakeJob("bug"), FakeJob("after")]
    with caplog.at_level(logging.ERROR, logger="nurtured.sending"):
        async with SendPool(send_one, workers=1, depth=5) as pool:
            await asyncio.wait_for(await pool.submit(jobs), 5)
    assert jobs[0].outcome is None
    assert isinstance(jobs[1].outcome, UnknownSendOutcome)  # maybe sent: never resent
    assert "KeyError" in str(jobs[1].outcome)
    assert jobs[2].outcome is None  # the worker went on
    assert "sending failed unexpectedly" in caplog.text


async def test_an_empty_batch_is_done_at_once_and_leaving_waits_for_the_rest() -> None:
    tried: list[str] = []

    async def send_one(job: FakeJob) -> None:
        await asyncio.sleep(0)
        tried.append(job.name)

    async with SendPool(send_one, workers=3, depth=5) as pool:
        assert (await pool.submit([])).done()
        await pool.submit([FakeJob(str(i)) for i in range(5)])  # not awaited here
    assert sorted(tried) == ["0", "1", "2", "3", "4"]  # leaving the block tried them all
