"""The ORM-free row helpers and the datetime field, on SQLite and (scripts/test) PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.fields.data import DatetimeField as TortoiseDatetimeField

from nurtured.db import Checkpointer, close_db, insert_rows, open_db, sqlite_path, update_rows
from nurtured.models import Delivery, DeliveryStatus, Enrollment, Lead, Link

T0 = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)


async def _lead(email: str = "ada@example.com") -> Lead:
    return await Lead.create(email=email, created_at=T0, updated_at=T0)


def _delivery(lead: Lead, content: str, token: str) -> dict[str, object]:
    return {
        "lead_id": lead.id,
        "content_id": content,
        "stream_id": "s",
        "step_index": 0,
        "token": token,
        "message_id": f"<{token}@acme.example>",
        "status": DeliveryStatus.SENDING,
        "claimed_at": T0,
    }


async def test_insert_rows_fills_defaults_and_converts_values(db: str) -> None:
    lead = await _lead()
    await insert_rows(Delivery, [_delivery(lead, "intro", "tok1")])
    stored = await Delivery.get(token="tok1")
    assert (stored.lead_id, stored.content_id, stored.status) == (lead.id, "intro", "sending")
    assert stored.claimed_at == T0
    # Left out, so the model's defaults: as Delivery(...) would have stored them.
    assert (stored.attempts, stored.error, stored.subject) == (0, "", "")
    assert stored.sent_at is None
    assert stored.retry_at is None


async def test_insert_rows_ignoring_conflicts_skips_only_the_clashing_rows(db: str) -> None:
    lead = await _lead()
    await insert_rows(Delivery, [_delivery(lead, "intro", "first")])
    # Same (lead, content) as the stored row: skipped; the other row goes in.
    await insert_rows(
        Delivery,
        [_delivery(lead, "intro", "second"), _delivery(lead, "a1", "third")],
        ignore_conflicts=True,
    )
    rows = await Delivery.all().order_by("id").values_list("content_id", "token")
    assert rows == [("intro", "first"), ("a1", "third")]
    delivery = await Delivery.get(token="third")
    links = [
        {"delivery_id": delivery.id, "index": i, "url": f"https://x.example/{i}"} for i in (0, 1)
    ]
    await insert_rows(Link, links, ignore_conflicts=True)
    await insert_rows(Link, links, ignore_conflicts=True)  # a second time: nothing new
    stored = await Link.filter(delivery_id=delivery.id).order_by("index").values_list("url", "tag")
    assert stored == [("https://x.example/0", None), ("https://x.example/1", None)]


async def test_insert_rows_without_ignoring_conflicts_raises(db: str) -> None:
    from tortoise.exceptions import IntegrityError

    lead = await _lead()
    await insert_rows(Delivery, [_delivery(lead, "intro", "first")])
    with pytest.raises(IntegrityError):
        await insert_rows(Delivery, [_delivery(lead, "intro", "again")])


async def test_insert_rows_with_nothing_to_insert_runs_no_statement(db: str) -> None:
    await insert_rows(Delivery, [], ignore_conflicts=True)
    assert await Delivery.all().count() == 0


async def test_update_rows_from_plain_rows(db: str) -> None:
    lead = await _lead()

    class Row:
        def __init__(self, id: int, score: int) -> None:
            self.id, self.score = id, score

    await update_rows(Lead, [Row(lead.id, 42)], ["score"])
    assert (await Lead.get(id=lead.id)).score == 42


async def test_datetimes_read_back_exactly_and_aware(db: str) -> None:
    lead = await _lead()
    later = T0 + timedelta(days=3, microseconds=1)
    await Enrollment.create(lead=lead, stream_id="s", position=0, next_due_at=later, entered_at=T0)
    enrollment = await Enrollment.get(lead_id=lead.id)
    assert enrollment.next_due_at == later
    assert enrollment.entered_at == T0
    assert enrollment.next_due_at is not None
    assert enrollment.next_due_at.tzinfo is not None
    assert enrollment.left_at is None


def test_datetime_field_reads_text_fast_and_falls_back_to_the_orm() -> None:
    field = Lead._meta.fields_map["created_at"]
    assert field.to_python_value("2026-11-23 09:30:15.123456+00:00") == T0
    assert field.to_python_value("2026-11-23T10:30:15.123456+01:00") == T0
    assert field.to_python_value(T0) == T0
    assert field.to_python_value(None) is None
    with pytest.raises(Exception, match="Unable to parse"):  # the ORM's own parser's error
        field.to_python_value("not a date")


def test_datetime_field_is_the_plain_field_to_migrations() -> None:
    ours = Enrollment._meta.fields_map["left_at"].deconstruct()
    plain = TortoiseDatetimeField(null=True).deconstruct()
    assert ours == plain


async def test_sqlite_checkpoints_are_done_beside_the_commits(tmp_path: Path) -> None:
    """Commits no longer copy the log into the database file; the Checkpointer does, from
    its own connection, and the log then starts over instead of growing."""
    url = f"sqlite://{tmp_path}/wal.db"
    await open_db(url)
    try:
        # The daemon's own Checkpointer runs every 0.5 s: stopped here, so that on a busy
        # machine it neither empties the log early nor makes the checkpoints below busy.
        from nurtured import db as db_module

        assert db_module._checkpointer is not None
        await db_module._checkpointer.close()
        conn = connections.get("default")
        _, rows = await conn.execute_query("PRAGMA wal_autocheckpoint")
        assert rows[0][0] == 0
        lead = await _lead()
        rows_in = [
            _delivery(lead, f"c{i}", f"t{i}") | {"subject": "s" * 450} for i in range(10_000)
        ]
        await insert_rows(Delivery, rows_in)  # well past SQLite's 1,000-page default
        wal = tmp_path / "wal.db-wal"
        grown = wal.stat().st_size
        assert grown > 1000 * 4096  # nobody checkpointed during the commit
        checkpointer = Checkpointer(str(tmp_path / "wal.db"))
        busy, pages, copied = await asyncio.to_thread(checkpointer.checkpoint)
        assert (busy, copied) == (0, pages)
        assert pages > 1000
        await _lead("grace@example.com")  # the next write starts the log over
        assert wal.stat().st_size <= grown
        busy, pages, copied = await asyncio.to_thread(checkpointer.checkpoint)
        assert pages < 10  # only the last write's pages
        await checkpointer.close()
        assert await Delivery.all().count() == 10_000
    finally:
        await close_db()


def test_sqlite_path_of_urls() -> None:
    assert sqlite_path("sqlite:///var/lib/nurtured/db.sqlite3") == "/var/lib/nurtured/db.sqlite3"
    assert sqlite_path("sqlite://data/nurtured.db") == "data/nurtured.db"
    assert sqlite_path("sqlite://:memory:") is None
    assert sqlite_path("postgres://u@127.0.0.1:5432/db") is None
