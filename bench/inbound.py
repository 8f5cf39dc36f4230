"""Inbound: messages classified per second from a real Dovecot inbox, over 2,000 mixed
messages (replies, out-of-office answers in several languages, DSN bounces, unsubscribe
requests, strangers) answering seeded deliveries.

The figure of the issue: a Dovecot of our own (``tests/dovecot.py`` starts it from a
temporary config) is given the messages by APPEND, then nurtured's IMAP reader
(``ImapSource`` + ``runner.drain`` + ``process_messages``) reads, processes and flags them
all; afterwards every message must have been processed exactly once (the results, the
events by Message-ID and the flags on the server agree). Its ceiling, in the same run:
``process_messages`` on the same messages held in memory, on a fresh database. Without
Dovecot the IMAP figure is skipped, saying so, and the in-memory one is still measured.

Stage times are wall time around each call, so the IMAP responses read while a stage
awaits the database (the next batch is fetched during the current one) count in it.

    python3 -m bench.inbound --out FILE [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench.common import (
    DiscardTransport,
    Figure,
    StageTimes,
    create_schema,
    log,
    profiled,
    seed,
    skip,
    time_functions,
    verdict,
    workdir,
    write_project,
)

TARGET = 300.0
WARM_UP = 200  # messages processed, untimed, before the two passes
# Functions nurtured.inbox.process calls, timed (looked up as its globals at call time).
STAGES = {
    "parse": "parse (MIME)",
    "_classify": "classify + extract text",
    "match_all": "match to leads",
    "react": "record (react)",
    "alert_many": "sales alerts (replies)",
}
# ImapSource methods, timed on the one instance.
SOURCE_STAGES = {
    "fetch": "waiting for SEARCH + FETCH",
    "mark": "queueing the flags STORE",
}

OUT_OF_OFFICE = (
    ("Out of office", "I am out of the office until {date} with limited access to email."),
    ("Abwesenheitsnotiz", "Ich bin bis zum {date} nicht im Büro und lese keine E-Mails."),
    ("Absence du bureau", "Je suis absent du bureau jusqu'au {date}."),
    ("Fuera de la oficina", "Estoy fuera de la oficina hasta el {date}."),
    ("Fuori ufficio", "Sono fuori ufficio fino al {date}."),
    ("Afwezig", "Ik ben afwezig tot en met {date}."),
    ("Ausente", "Estou ausente do escritório até {date}."),
)


BOUNCE = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example>
To: hello@acme.example
Date: {date}
Message-ID: <bounce{n}@mx.example>
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{n}"

--B{n}
Content-Type: text/plain

Delivery to {rcpt} failed.

--B{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; {rcpt}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diag}

--B{n}
Content-Type: text/rfc822-headers

From: hello@acme.example
To: {rcpt}
Message-ID: {ours}
Subject: Your copy of the 2026 Revenue Reporting Benchmark

--B{n}--
"""


def lead_email(i: int) -> str:
    return f"lead{i}@example{i % 97}.com"  # as bench.common.seed names them


def our_id(i: int) -> str:
    return f"<seed{i:018d}@acme.example>"


def corpus(count: int, now: datetime) -> list[bytes]:
    """``count`` messages, one per seeded lead, in a fixed mix."""
    messages = []
    for i in range(count):
        msg = EmailMessage()
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = f"<inbound{i}@mail.example{i % 97}.com>"
        msg["To"] = "Acme Analytics <replies@acme.example>"
        kind = i % 20
        if kind < 8:  # a genuine reply, quoting our email
            msg["From"] = lead_email(i)
            msg["Subject"] = "Re: Your copy of the 2026 Revenue Reporting Benchmark"
            msg["In-Reply-To"] = our_id(i)
            msg["References"] = our_id(i)
            msg.set_content(
                "Thanks, this is useful. Could we talk next Tuesday about a pilot?\n\n"
                "Best, Ada\n\nOn Mon, 23 Nov 2026 Acme Analytics <hello@acme.example> wrote:\n"
                "> Hi Ada,\n> Thanks for your interest in better revenue reporting.\n"
            )
        elif kind < 12:  # an out-of-office answer with a return date
            subject, text = OUT_OF_OFFICE[i % len(OUT_OF_OFFICE)]
            msg["From"] = lead_email(i)
            msg["Subject"] = f"{subject}: Your copy of the benchmark"
            msg["Auto-Submitted"] = "auto-replied"
            msg["In-Reply-To"] = our_id(i)
            back = (now + timedelta(days=10)).strftime("%d.%m.%Y")
            msg.set_content(text.format(date=back))
        elif kind < 15:  # an RFC 3464 bounce, written out as an MTA writes it
            hard = i % 2 == 0
            messages.append(
                BOUNCE.format(
                    date=format_datetime(now),
                    n=i,
                    rcpt=lead_email(i),
                    ours=our_id(i),
                    action="failed" if hard else "delayed",
                    status="5.1.1" if hard else "4.2.2",
                    diag="550 5.1.1 user unknown" if hard else "452 4.2.2 mailbox full",
                )
                .replace("\n", "\r\n")
                .encode()
            )
            continue
        elif kind < 17:  # an unsubscribe request in words
            msg["From"] = lead_email(i)
            msg["Subject"] = "Re: Your copy of the benchmark"
            msg["In-Reply-To"] = our_id(i)
            msg.set_content("Please remove me from your mailing list. Stop emailing me.")
        else:  # a stranger: matches nobody
            msg["From"] = f"someone{i}@elsewhere.example"
            msg["Subject"] = "Question about your product"
            msg.set_content("Hello, do you have a price list?")
        messages.append(msg.as_bytes())
    return messages


@dataclass
class Run:
    """One pass of the corpus through the inbox code."""

    seconds: float
    stages: StageTimes
    counts: Counter[str]  # status and kind:KIND counts of the Results
    checks: list[str] = field(default_factory=list)  # what was found wrong, if anything
    setup: str = ""


async def _project(root: Path, count: int, now: datetime) -> Path:
    config = write_project(root, transport="outbox")
    await create_schema(config)
    seed(config, leads=count, due=0, history=True, now=now - timedelta(days=1))
    return config


def _timed(stages: StageTimes, *owners: tuple[Any, dict[str, str]]) -> Callable[[], None]:
    """Time the named functions of each owner (a module, or an instance's methods)."""
    undos = [time_functions(owner, names, stages) for owner, names in owners]

    def undo() -> None:
        for each in reversed(undos):
            each()

    return undo


async def in_memory(root: Path, raws: list[bytes], now: datetime, profile: Path | None) -> Run:
    """``process_messages`` on the messages held in memory, in the reader's batch size."""
    from nurtured.app import Runtime, load_app
    from nurtured.db import database
    from nurtured.inbox import process, source

    config = await _project(root, len(raws), now)
    app = load_app(config)
    counts: Counter[str] = Counter()
    stages = StageTimes()
    async with database(app.settings.database.url):
        runtime = Runtime(app, DiscardTransport())
        undo = _timed(stages, (process, STAGES))
        started = time.perf_counter()
        with profiled(profile):
            for first in range(0, len(raws), source.BATCH):
                for result in await process.process_messages(
                    runtime, raws[first : first + source.BATCH]
                ):
                    counts.update((result.status, f"kind:{result.kind}"))
        seconds = time.perf_counter() - started
        undo()
    return Run(seconds, stages, counts)


async def from_dovecot(
    root: Path, raws: list[bytes], now: datetime, profile: Path | None, binary: str
) -> Run:
    """APPEND the messages to a Dovecot of our own, then time nurtured's IMAP reader
    (``ImapSource`` + ``runner.drain``) from login until every message is processed and
    flagged; afterwards check that each was processed exactly once."""
    from nurtured.app import Runtime, load_app
    from nurtured.db import database
    from nurtured.inbox import process, runner
    from nurtured.inbox.source import FLAG, UNMATCHED_FLAG, ImapSource
    from nurtured.models import Event
    from tests import dovecot

    config = await _project(root, len(raws), now)
    app = load_app(config)
    stats = process.Stats()
    stages = StageTimes()
    with dovecot.running(binary) as server:
        box = dovecot.ImapBox(server, "bench")
        client = server.connect()
        client.create(box.mailbox)
        client.logout()
        started = time.perf_counter()
        await asyncio.to_thread(box.append_many, raws)
        setup = f"APPEND of {len(raws)} took {time.perf_counter() - started:.1f} s (not timed)"
        log(f"inbound: {setup}")
        async with database(app.settings.database.url):
            runtime = Runtime(app, DiscardTransport())
            source = ImapSource(box.settings(idle=False, timeout="60s"))
            undo = _timed(stages, (process, STAGES), (source, SOURCE_STAGES))
            started = time.perf_counter()
            with profiled(profile, whole_thread=True):
                await source.open()
                try:
                    await runner.drain(runtime, source, stats)
                finally:
                    await source.close()
            seconds = time.perf_counter() - started
            undo()
            refs = Counter(
                r for (r,) in await Event.filter(ref__not_isnull=True).values_list("ref")
            )
        flags = await asyncio.to_thread(box.flags)
    counts = Counter(stats.counts)
    checks = []
    total = sum(counts[s] for s in ("recorded", "duplicate", "unmatched", "retry"))
    if total != len(raws) or counts["duplicate"] or counts["retry"]:
        checks.append(f"{total} results for {len(raws)} messages: {dict(counts)}")
    if len(refs) != counts["recorded"] or any(n != 1 for n in refs.values()):
        checks.append(f"{sum(refs.values())} events for {counts['recorded']} recorded messages")
    flagged = sum(FLAG in f for f in flags.values())
    marked = sum(UNMATCHED_FLAG in f for f in flags.values())
    if len(flags) != len(raws) or flagged != len(raws) or marked != counts["unmatched"]:
        checks.append(f"server: {len(flags)} messages, {flagged} flagged, {marked} unmatched")
    return Run(seconds, stages, counts, checks, setup)


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if not k.startswith("kind:"))


def _stage_figures(run: Run, count: int, labels: dict[str, str], where: str) -> list[Figure]:
    return [
        Figure(
            "inbound",
            f"    {where}: {label}",
            round(1e6 * run.stages.seconds[name] / count),
            "us/msg",
            f"{run.stages.seconds[name] / run.seconds:.0%} of wall",
            "INFO",
        )
        for name, label in labels.items()
        if name in run.stages.seconds
    ]


async def run(args: argparse.Namespace) -> list[Figure]:
    name = "inbound messages classified, Dovecot IMAP end to end"
    from nurtured.inbox import source
    from tests import dovecot

    count = 500 if args.quick else 2_000
    now = datetime.now(UTC).replace(microsecond=0)
    raws = corpus(count, now)
    profile = args.profile
    memory_profile = (
        profile.with_name(f"{profile.stem}-memory{profile.suffix}") if profile else None
    )
    binary = dovecot.find_binary()
    with workdir("inbound") as root:
        # Untimed, so that neither pass pays for first calls (imports, regexes, queries).
        await in_memory(root / "warm-up", corpus(WARM_UP, now), now, None)
        # Dovecot first: if either pass runs warmer it is the second, the ceiling.
        imap = (
            None
            if binary is None
            else await from_dovecot(root / "imap", raws, now, profile, binary)
        )
        memory = await in_memory(root / "memory", raws, now, memory_profile)
    ceiling = count / memory.seconds
    log(f"inbound: in memory {count} messages in {memory.seconds:.1f} s: {_summary(memory.counts)}")
    figures = []
    if imap is None:
        figures.append(
            skip("inbound", name, "Dovecot is not installed (apt-get install dovecot-imapd)")
        )
    else:
        rate = count / imap.seconds
        log(f"inbound: from Dovecot in {imap.seconds:.1f} s: {_summary(imap.counts)}")
        figures.append(Figure(
            "inbound", name, round(rate), "msg/s", f">= {TARGET:.0f}/s (ceiling {ceiling:.0f})",
            verdict(rate >= TARGET),
            f"{rate / ceiling:.0%} of the in-memory ceiling; {count} messages APPENDed, then "
            f"read by ImapSource + runner.drain ({source.BATCH} per FETCH) until all were "
            f"flagged: {_summary(imap.counts)}; alerts to a discarding transport",
        ))  # fmt: skip
        figures.append(Figure(
            "inbound", "  every message processed and flagged exactly once",
            sum(imap.counts[s] for s in ("recorded", "unmatched")), "messages",
            f"== {count}", verdict(not imap.checks),
            "; ".join(imap.checks) or "results, events by Message-ID and server flags agree",
        ))  # fmt: skip
        figures += _stage_figures(imap, count, {**SOURCE_STAGES, **STAGES}, "IMAP")
    figures.append(Figure(
        "inbound", "  in memory, no IMAP (ceiling)", round(ceiling), "msg/s", "ceiling", "INFO",
        f"process_messages on the same {count} messages, {source.BATCH} per batch: "
        f"{_summary(memory.counts)}",
    ))  # fmt: skip
    figures += _stage_figures(memory, count, STAGES, "in memory")
    return figures


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run)
