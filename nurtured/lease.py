"""The lease: which due enrollments a worker takes, so no two workers walk the same lead.

A batch is leased by one conditional update that also returns the rows; while leased
(``LEASE``), an enrollment is not due for anyone else, and if the worker dies the lease
simply runs out. A lease names its holder (machine, process id, process start), so a
process restarted at once on the same machine can tell its dead predecessor's leases
from a live neighbour's and recover them at start instead of after ``LEASE``. The cost
follows the due rows: an index range for the pick, then one row (one page) per leased
enrollment.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import secrets
import socket
import sqlite3
from datetime import datetime

from nurtured.enrollment import LEASE
from nurtured.models import Enrollment, EnrollmentState

DUE_STATES = (EnrollmentState.ACTIVE, EnrollmentState.PAUSED)

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_START = secrets.token_hex(2)  # tells this process from an earlier one with the same pid


def holder() -> str:
    """This process, as its leases name it: ``host-pid-start``."""
    return f"{_HOST}-{os.getpid()}-{_START}"


def holder_of(lease: str) -> str:
    """The ``host-pid-start`` part of a lease."""
    return lease.rsplit("-", 1)[0]


def new_lease() -> str:
    """``host-pid-start-random``, at most 30 characters (the column holds 32)."""
    return f"{holder()}-{secrets.token_hex(4)}"


def holder_is_dead(lease: str) -> bool:
    """True only when the lease's holder is certainly gone: a process of this machine
    that no longer runs, or an earlier process with our own pid (a container restarted).
    Anything else (another machine, a live pid, a lease of another form) is left to run
    out."""
    parts = lease.split("-")
    if len(parts) != 4 or parts[0] != _HOST or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return parts[2] != _START
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it runs, as someone else
        return False
    return False


@functools.cache
def _lease_sql(postgres: bool) -> str:
    """The lease as one statement: pick the first batch_size due rows, set their lease,
    return them. The conditional update is what makes it a lease: a concurrent worker
    that picked the same rows finds next_due_at moved on (the condition is checked again
    on the row being updated) and leases nothing of them; if we die, the lease runs out.
    Parameters: lease, leased until, the two due states, now, batch size (SQLite numbers
    them ?1, ?2, ... so one can be used twice; PostgreSQL $1, $2, ...). The columns are
    the model's, known once Tortoise is initialised; nothing else goes into the text."""
    columns = list(Enrollment._meta.fields_db_projection.values())
    if postgres:
        # The pick is MATERIALIZED so it runs once: a subquery with SKIP LOCKED may be
        # run again per row and so lease more than LIMIT. (And Tortoise's PostgreSQL
        # client returns rows only for a statement that does not start with UPDATE.)
        returning = ", ".join(f'e."{c}"' for c in columns)
        return (
            "WITH due AS MATERIALIZED (SELECT id FROM enrollment WHERE state IN ($3, $4)"  # noqa: S608
            " AND next_due_at <= $5 ORDER BY next_due_at LIMIT $6 FOR UPDATE SKIP LOCKED)"
            " UPDATE enrollment e SET lease = $1, next_due_at = $2 FROM due"
            " WHERE e.id = due.id AND e.state IN ($3, $4) AND e.next_due_at <= $5"
            f" RETURNING {returning}"
        )
    # "+" keeps the outer conditions off the (state, next_due_at) index, so the picked
    # rows are found by id, not by walking every due row.
    returning = ", ".join(f'"{c}"' for c in columns)
    return (
        "UPDATE enrollment SET lease = ?1, next_due_at = ?2 WHERE id IN (SELECT id FROM"  # noqa: S608
        " enrollment WHERE state IN (?3, ?4) AND next_due_at <= ?5 ORDER BY next_due_at"
        " LIMIT ?6) AND +state IN (?3, ?4) AND +next_due_at <= ?5"
        f" RETURNING {returning}"
    )


READ_SLICE = 100  # rows made into models between two yields to the event loop


async def lease_due(now: datetime, batch_size: int) -> list[Enrollment]:
    """Lease up to batch_size due enrollments: one UPDATE ... RETURNING (due scan,
    lease and read-back in one statement, each due row's page touched once)."""
    lease = new_lease()
    db = Enrollment._meta.db
    if db.capabilities.dialect == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        return await _lease_in_steps(now, lease, batch_size)  # no RETURNING before 3.35
    field = Enrollment._meta.fields_map["next_due_at"]
    values = [lease, field.to_db_value(now + LEASE, Enrollment), *DUE_STATES,
              field.to_db_value(now, Enrollment), batch_size]  # fmt: skip
    _, rows = await db.execute_query(_lease_sql(db.capabilities.dialect == "postgres"), values)
    leased: list[Enrollment] = []
    for start in range(0, len(rows), READ_SLICE):  # the tracking server shares this loop
        leased.extend(
            Enrollment._init_from_db(**dict(row)) for row in rows[start : start + READ_SLICE]
        )
        await asyncio.sleep(0)
    return leased


async def _lease_in_steps(now: datetime, lease: str, batch_size: int) -> list[Enrollment]:
    due_ids = (
        await Enrollment.filter(state__in=DUE_STATES, next_due_at__lte=now)
        .order_by("next_due_at")
        .limit(batch_size)
        .values_list("id", flat=True)
    )
    if not due_ids:
        return []
    await Enrollment.filter(
        id__in=list(due_ids), state__in=DUE_STATES, next_due_at__lte=now
    ).update(lease=lease, next_due_at=now + LEASE)
    return await Enrollment.filter(id__in=list(due_ids), lease=lease)
