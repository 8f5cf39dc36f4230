"""Inbound: messages parsed, classified, matched and recorded per second, over 2,000 mixed
messages (replies, out-of-office answers in several languages, DSN bounces, unsubscribe
requests, strangers) answering seeded deliveries.

This measures ``nurtured.inbox.process_messages`` on messages held in memory: an upper
bound of the issue's figure, which reads them from a real Dovecot inbox (IMAP costs
come on top). Below the target here means below it with Dovecot too. Skipped, with the
reason, while ``nurtured.inbox`` is not there.

    python3 -m bench.inbound --out FILE [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

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
    workdir,
    write_project,
)

TARGET = 300.0
# Functions nurtured.inbox.process calls, timed where they exist (the module is young).
STAGES = {
    "parse": "parse (MIME)",
    "_classify": "classify + extract text",
    "match_all": "match to leads",
    "react": "record (react)",
    "alert_sales": "sales alerts (replies)",
}
CHUNK = 100

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


async def run(args: argparse.Namespace) -> list[Figure]:
    name = "inbound messages processed"
    try:
        process = importlib.import_module("nurtured.inbox.process")
        app_module = importlib.import_module("nurtured.app")
    except ImportError as exc:
        return [skip("inbound", name, f"not available yet (import nurtured.inbox: {exc})")]
    count = 500 if args.quick else 2_000
    now = datetime.now(UTC).replace(microsecond=0)
    with workdir("inbound") as root:
        config = write_project(root, transport="outbox")
        await create_schema(config)
        seed(config, leads=count, due=0, history=True, now=now - timedelta(days=1))
        raws = corpus(count, now)
        from nurtured.db import database

        app = app_module.load_app(config)
        kinds: Counter[str] = Counter()
        async with database(app.settings.database.url):
            runtime = app_module.Runtime(app, DiscardTransport())
            stages = StageTimes()
            undo = time_functions(process, STAGES, stages)
            started = time.perf_counter()
            with profiled(args.profile):
                for first in range(0, count, CHUNK):
                    chunk = raws[first : first + CHUNK]
                    for result in await process.process_messages(runtime, chunk):
                        kinds[f"{result.status}/{result.kind}"] += 1
            seconds = time.perf_counter() - started
            undo()
    rate = count / seconds
    log(f"inbound: {count} messages in {seconds:.1f} s: {dict(kinds)}")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    parts = [
        Figure(
            "inbound",
            f"  stage: {label}",
            round(1e6 * stages.seconds[name] / count),
            "us/msg",
            f"{stages.seconds[name] / seconds:.0%} of wall",
            "INFO",
        )
        for name, label in STAGES.items()
        if name in stages.seconds
    ]
    return [
        Figure(
            "inbound",
            f"{name} (in memory, no IMAP)",
            round(rate),
            "msg/s",
            f">= {TARGET:.0f}/s with Dovecot",
            "MISS" if rate < TARGET else "INFO",
            f"{count} messages in chunks of {CHUNK}: {summary}. An upper bound: the "
            "Dovecot end-to-end figure is not wired into the bench yet",
        ),
        *parts,
    ]


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run)
