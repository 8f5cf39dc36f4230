"""The inbox against a real Dovecot: IDLE push, polling, reconnects, restarts, folders."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest

from nurtured.app import Runtime
from nurtured.config_sections import Inbox
from nurtured.inbox import process_messages, run_inbox
from nurtured.inbox import source as source_module
from nurtured.inbox.source import FLAG, UNMATCHED_FLAG, ImapSource, InboxError
from nurtured.models import Delivery, Enrollment, Event, EventKind, Lead, LeadStatus
from tests.dovecot import Dovecot, ImapBox
from tests.walk import MONDAY, Walk

CORPUS = Path(__file__).parent / "corpus"
LATER = MONDAY + timedelta(hours=1)


def reply(name: str, message_id: str) -> bytes:
    raw = (CORPUS / f"{name}.eml").read_bytes()
    return raw.replace(b"<REPLACE-ME@acme.example>", message_id.encode())


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Wait (bounded) for something a real server does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, "timed out waiting for the inbox"
        await asyncio.sleep(0.05)


def imap_runtime(walk: Walk, box: ImapBox, **imap: object) -> Runtime:
    inbox = Inbox(source="imap", imap=box.settings(**imap))
    app = dataclasses.replace(
        walk.app, settings=dataclasses.replace(walk.app.settings, inbox=inbox)
    )
    return Runtime(app, walk.transport, clock=lambda: LATER)


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_inbox(runtime, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def sent_to(walk: Walk, address: str) -> Delivery:
    await walk.add(address)
    await walk.engine.run_due(MONDAY)
    return await Delivery.get(lead__email=address)


async def replies() -> int:
    return await Event.filter(kind=EventKind.REPLY).count()


async def test_reply_end_to_end_with_idle_push(walk: Walk, imap_box: ImapBox) -> None:
    """Sent by the engine, answered into Dovecot, pushed by IDLE: matched, extracted, the
    stream stopped, sales alerted through the SMTP sink, the message flagged."""
    delivery = await sent_to(walk, "ada@example.com")
    async with running(imap_runtime(walk, imap_box, idle=True, poll_interval="60s")):
        await until(lambda: _connected(imap_box.server))
        await asyncio.to_thread(imap_box.append, reply("reply-en-outlook", delivery.message_id))
        await until(lambda: _flagged(imap_box, 1))
    lead = await Lead.get(email="ada@example.com")
    assert lead.status == LeadStatus.REPLIED
    assert await Enrollment.filter(lead_id=lead.id, active_lead__not_isnull=True).count() == 0
    event = await Event.get(kind=EventKind.REPLY)
    assert event.data["text"].startswith("Yes, this looks interesting.")
    assert event.delivery_id == delivery.id
    sent = [m.content for m in walk.sink.messages]
    alerts = [email.message_from_bytes(raw, policy=policy.default) for raw in sent
              if b"Auto-Submitted: auto-generated" in raw]  # fmt: skip
    assert len(alerts) == 1
    assert "Yes, this looks interesting." in alerts[0].get_body(("plain",)).get_content()
    assert imap_box.flags() == {1: {FLAG}}


async def test_polling_without_idle(walk: Walk, imap_box: ImapBox) -> None:
    delivery = await sent_to(walk, "ada@example.com")
    async with running(imap_runtime(walk, imap_box, idle=False, poll_interval="1s")):
        await asyncio.to_thread(imap_box.append, reply("auto-en-exchange", delivery.message_id))
        await until(lambda: _flagged(imap_box, 1))
    assert await Event.filter(kind=EventKind.AUTO_REPLY).count() == 1


async def test_reconnects_after_the_imap_process_is_killed(walk: Walk, imap_box: ImapBox) -> None:
    delivery = await sent_to(walk, "ada@example.com")
    async with running(imap_runtime(walk, imap_box, idle=True, poll_interval="60s")):
        await until(lambda: _connected(imap_box.server))
        assert imap_box.server.kill_imap_sessions() >= 1
        await asyncio.to_thread(imap_box.append, reply("reply-en-gmail", delivery.message_id))
        await until(lambda: _flagged(imap_box, 1), within=15)
    assert await replies() == 1


async def test_nothing_lost_or_double_counted_across_restarts(
    walk: Walk, imap_box: ImapBox
) -> None:
    """Committed but not flagged (a crash in between): the next run flags it, records nothing
    twice; messages arriving while stopped are read at the next start."""
    ada = await sent_to(walk, "ada@example.com")
    first = reply("reply-en-apple", ada.message_id)
    imap_box.append(first)
    runtime = imap_runtime(walk, imap_box, idle=True, poll_interval="60s")
    (result,) = await process_messages(runtime, [first])  # committed; "crash" before flagging
    assert result.status == "recorded"
    async with running(runtime):
        await until(lambda: _flagged(imap_box, 1))
    imap_box.append(
        reply("auto-de-plain", ada.message_id).replace(b"anna@beispiel.de", b"ada@example.com")
    )
    imap_box.append(b"From: nobody@gmail.com\r\nSubject: hi\r\nMessage-ID: <n@x>\r\n\r\nhi\r\n")
    async with running(runtime):
        await until(lambda: _flagged(imap_box, 3))
    assert await replies() == 1
    assert await Event.filter(kind=EventKind.AUTO_REPLY).count() == 1
    assert sum(b"Auto-Submitted: auto-generated" in m.content for m in walk.sink.messages) == 1
    assert imap_box.flags()[3] == {FLAG, UNMATCHED_FLAG}


async def test_processed_messages_move_to_a_folder(walk: Walk, imap_box: ImapBox) -> None:
    ada = await sent_to(walk, "ada@example.com")
    folder = f"{imap_box.mailbox}-done"
    imap_box.append(reply("reply-en-gmail", ada.message_id))
    imap_box.append(b"From: nobody@gmail.com\r\nSubject: hi\r\n\r\nhi\r\n")
    async with running(imap_runtime(walk, imap_box, processed_folder=folder)):
        await until(lambda: _flagged(imap_box, 1, folder))
    assert list(imap_box.flags().values()) == [{FLAG, UNMATCHED_FLAG}]  # kept for a person
    assert list(imap_box.flags(folder).values()) == [{FLAG}]


async def test_bad_password_is_an_inbox_error(imap_box: ImapBox, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:  # fmt: skip
    monkeypatch.setenv("NURTURED_TEST_IMAP_PASSWORD", "wrong")
    source = ImapSource(imap_box.settings())
    with pytest.raises(InboxError, match="LOGIN"):
        await source.open()
    await source.close()


async def test_small_messages_fetched_together_large_ones_alone(
    imap_box: ImapBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One SEARCH, then batches of up to BATCH in UID order, a large message alone; the
    STOREs queued by mark() are all done once close() returns."""
    monkeypatch.setattr(source_module, "BATCH", 3)
    small = [b"From: a@example.com\r\nSubject: s%d\r\n\r\nhi\r\n" % i for i in range(5)]
    large = b"From: a@example.com\r\nSubject: big\r\n\r\n" + b"y" * 76 + b"\r\n"
    large = large[:40] + large[40:] * 700  # about 55 kB
    imap_box.append_many([*small[:4], large, small[4]])
    source = ImapSource(imap_box.settings())
    await source.open()
    batches = []
    try:
        for _ in range(4):
            items = await source.fetch(set())
            batches.append([(item.key, item.raw) for item in items])
            await source.mark([item.key for item in items], [])
    finally:
        await source.close()
    assert [[key for key, _ in batch] for batch in batches] == [["1", "2", "3"], ["4"], ["5"],
                                                                 ["6"]]  # fmt: skip
    assert [raw for batch in batches for _, raw in batch] == [*small[:4], large, small[4]]
    assert imap_box.flags() == {n: {FLAG} for n in range(1, 7)}


async def test_a_failed_store_is_raised_and_the_message_read_again(imap_box: ImapBox) -> None:
    """The STORE after commit meets a dropped connection: the next call raises, nothing is
    flagged, and the next session reads the message again (the database knows it)."""
    imap_box.append(b"From: a@example.com\r\nSubject: hi\r\n\r\nhi\r\n")
    source = ImapSource(imap_box.settings())
    await source.open()
    try:
        (item,) = await source.fetch(set())
        assert imap_box.server.kill_imap_sessions() >= 1
        # SIGKILL lands a little later: the STORE must meet a connection known to be gone.
        await asyncio.wait_for(source._lost.wait(), timeout=10)
        await source.mark([item.key], [])
        with pytest.raises(InboxError):
            await source.fetch(set())
    finally:
        await source.close()
    assert imap_box.flags() == {1: set()}
    source = ImapSource(imap_box.settings())
    await source.open()
    try:
        assert [i.key for i in await source.fetch(set())] == ["1"]
        await source.mark(["1"], [])
        assert await source.fetch(set()) == []
    finally:
        await source.close()
    assert imap_box.flags() == {1: {FLAG}}


def test_uid_sets_are_ranges() -> None:
    assert source_module._uid_set(["3", "4", "5", "9", "11", "12"]) == "3:5,9,11:12"
    assert source_module._uid_set(["7"]) == "7"


async def _connected(server: Dovecot) -> bool:
    return bool(server.imap_pids())


async def _flagged(box: ImapBox, count: int, mailbox: str | None = None) -> bool:
    flags = await asyncio.to_thread(box.flags, mailbox)
    return sum(FLAG in f for f in flags.values()) >= count
