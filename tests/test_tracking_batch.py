"""Clicks recorded in group commits: every click counted, flushed on stop, and the cache of
verified links never redirects anywhere but to the URL stored for that link."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from nurtured.app import Runtime
from nurtured.clicks import SentCache, SignalWriter, Verified
from nurtured.models import Delivery, Enrollment, Event, EventKind, Lead, Link
from nurtured.reactions import Outcome, Signal
from nurtured.tokens import Signer
from tests.test_tracking import LATER, clicks, paths, sent_to, serving, stream_of
from tests.walk import MONDAY, Walk


async def test_concurrent_clicks_are_all_recorded(walk: Walk) -> None:
    """40 clicks at once from four leads: 40 redirects, 40 click events, each lead scored
    for its ten clicks (5 points each)."""
    leads = [await walk.add(f"lead{i}@example.com") for i in range(4)]
    assert (await walk.engine.run_due(MONDAY))["sent"] == 4
    urls = [paths(walk, lead.email, "c")[0] for lead in leads]
    async with serving(walk.app, walk.transport) as server:
        answers = await asyncio.gather(*(server.request("GET", u) for u in urls * 10))
        assert [status for status, _, _ in answers] == [302] * 40
        await server.flush()
        assert await Event.filter(kind=EventKind.CLICK).count() == 40
    for lead in leads:
        assert len(await clicks(lead)) == 10
        assert (await Lead.get(id=lead.id)).score == 50


async def test_stopping_the_server_records_every_click_answered(walk: Walk) -> None:
    """Stopped straight after the answers, without a flush: every answered click is
    committed by the time the server has stopped."""
    lead = await sent_to(walk, "ada@example.com")
    (click,) = paths(walk, "ada@example.com", "c")
    async with serving(walk.app, walk.transport) as server:
        answers = await asyncio.gather(*(server.request("GET", click) for _ in range(15)))
    assert [status for status, _, _ in answers] == [302] * 15
    assert len(await clicks(lead)) == 15


async def test_close_writes_what_waits(walk: Walk) -> None:
    """Signals queued but not yet written when the writer closes are all written, and
    their outcomes handed back in order."""
    lead = await sent_to(walk, "ada@example.com")
    delivery = await Delivery.get(lead_id=lead.id)
    outcomes: list[Outcome] = []
    writer = SignalWriter(Runtime(walk.app, walk.transport), outcomes.append, capacity=100)
    writer.start()
    for i in range(30):  # put never yields while there is room: the writer has not run
        signal = Signal(lead.id, EventKind.OPEN, LATER + timedelta(seconds=i), delivery.id)
        await writer.put(signal)
    assert writer.waiting == 30
    assert await Event.filter(kind=EventKind.OPEN).count() == 0
    await writer.close()
    assert writer.waiting == 0
    assert await Event.filter(lead_id=lead.id, kind=EventKind.OPEN).count() == 30
    assert [o.score for o in outcomes] == list(range(1, 31))  # handed back in order


async def test_tagged_clicks_in_one_batch_still_move_their_leads(walk: Walk) -> None:
    """Three leads click their "interest:b" link at once: each moves A -> B, and B's
    intro is skipped, because they have it."""
    leads = [await walk.add(f"lead{i}@example.com") for i in range(3)]
    await walk.engine.run_due(MONDAY)
    async with serving(walk.app, walk.transport) as server:
        urls = [paths(walk, lead.email, "c")[0] for lead in leads]
        answers = await asyncio.gather(*(server.request("GET", u) for u in urls))
        assert {status for status, _, _ in answers} == {302}
    for lead in leads:
        assert await stream_of(lead) == "b"
        current = await Enrollment.get(lead_id=lead.id, active_lead__not_isnull=True)
        assert current.position == 1
        (data,) = await clicks(lead)
        assert data["tag"] == "interest:b"


async def test_cache_redirects_only_to_the_url_stored_for_that_link(walk: Walk) -> None:
    """With one delivery cached, another delivery's click goes to its own stored URL; a
    signed index with no link, or an open token, is 404 and records nothing."""
    ada = await sent_to(walk, "ada@example.com")
    bob = await walk.add("bob@example.com", interest="b")
    await walk.engine.run_due(MONDAY)
    (ada_click,) = paths(walk, "ada@example.com", "c")
    (bob_click,) = paths(walk, "bob@example.com", "c")
    ada_delivery = await Delivery.get(lead_id=ada.id)
    await Link.filter(delivery__lead_id=bob.id).update(url="https://example.com/bob")
    signer = walk.app.signer
    async with serving(walk.app, walk.transport) as server:
        for _ in range(2):  # the second time from the cache
            status, headers, _ = await server.request("GET", ada_click)
            assert (status, headers["Location"]) == (302, "https://example.com/intro")
            status, headers, _ = await server.request("GET", bob_click)
            assert (status, headers["Location"]) == (302, "https://example.com/bob")
        for bad in (
            signer.sign("c", ada_delivery.token, "1"),
            signer.sign("o", ada_delivery.token),
        ):
            status, headers, _ = await server.request("GET", f"/c/{bad}")
            assert (status, "Location" in headers) == (404, False)
        await server.flush()
    assert [d["url"] for d in await clicks(ada)] == ["https://example.com/intro"] * 2
    assert [d["url"] for d in await clicks(bob)] == ["https://example.com/bob"] * 2


async def test_sent_cache_keeps_only_sent_deliveries_and_is_bounded(walk: Walk) -> None:
    """A delivery not known to be sent is answered but not kept (its sent_at is still to
    come); at most ``capacity`` deliveries are kept, the least recently used dropped."""
    leads = [await walk.add(f"lead{i}@example.com") for i in range(3)]
    await walk.engine.run_due(MONDAY)
    tokens = [(await Delivery.get(lead_id=lead.id)).token for lead in leads]
    cache = SentCache(capacity=2)
    await Delivery.filter(token=tokens[0]).update(sent_at=None)
    first = await cache.get(tokens[0])
    assert first is not None
    assert first.sent_at is None
    assert len(cache) == 0
    for token in tokens[1:]:
        entry = await cache.get(token)
        assert entry is not None
        assert entry.links[0].url == "https://example.com/intro"
    await Delivery.filter(token=tokens[0]).update(sent_at=MONDAY)
    assert (await cache.get(tokens[0])) is not None
    assert len(cache) == 2
    assert await cache.get("no-such-token") is None


def test_verified_tokens_are_remembered_only_when_good_and_per_signer() -> None:
    """A token verified once answers from memory; a forged one is never kept; another
    signer (a reload with a new secret) starts afresh and rejects the old tokens."""
    old, new = Signer(b"old secret"), Signer(b"new secret")
    verified = Verified(capacity=2)
    token = old.sign("c", "tok", "0")
    assert verified.verify(old, "c", token) == ("tok", "0")
    assert verified.verify(old, "c", token) == ("tok", "0")
    assert verified.verify(old, "o", token) is None  # signed for clicks only
    assert verified.verify(old, "c", token[:-1] + "A") is None
    assert verified.verify(new, "c", token) is None
    assert verified.verify(new, "c", new.sign("c", "tok", "0")) == ("tok", "0")
