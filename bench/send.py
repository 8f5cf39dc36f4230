"""Send pipeline: due scan + render + claim + SMTP send + record, embedded SQLite, to a
discarding aiosmtpd sink in another process; beside it, in the same run and to the same
sink with the same number of connections, the ceiling: raw aiosmtplib sending one
pre-rendered message over and over.

    python3 -m bench.send --out FILE [--quick] [--leads N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from email import policy
from pathlib import Path

import aiosmtplib

from bench.common import (
    NOW,
    STAGES,
    Figure,
    Sink,
    StageTimes,
    create_schema,
    instrument,
    log,
    profiled,
    seed,
    verdict,
    workdir,
    write_project,
)

CONNECTIONS = 8
BATCH = 500
TARGET = 0.70


def sample_message(config: Path) -> tuple[bytes, str, str]:
    """One message exactly as the engine builds it for a seeded lead: (bytes, from, to)."""
    from nurtured.app import load_app
    from nurtured.message import build_message, make_message_id
    from nurtured.tokens import new_delivery_token

    app = load_app(config)
    token = new_delivery_token()
    lead = {
        "email": "lead0@example0.com",
        "first_name": "Ada",
        "last_name": "Keller",
        "full_name": "Ada Keller",
        "title": "CFO",
        "source": "webinar",
        "interests": ["product-a"],
        "timezone": "UTC",
        "fields": {"country": "DE"},
    }
    company = {
        "name": "Company 0",
        "domain": "company0.example",
        "size": "50-200",
        "industry": "Logistics",
    }
    sender = app.settings.sender
    step = app.catalog.stream("product-a").steps[0]
    rendered = app.renderer.render(
        step.template,
        delivery_token=token,
        lead=lead,
        company=company,
        sender={"name": sender.name, "address": sender.address},
        stream={"id": "product-a", "name": "Product A"},
        step={"index": 0, "content": step.content},
    )
    message = build_message(
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        from_name=sender.name,
        from_addr=sender.address,
        to_name="Ada Keller",
        to_addr=lead["email"],
        reply_to=sender.reply_to,
        message_id=make_message_id(token, "acme.example"),
        date=NOW,
        unsubscribe_url=f"{app.settings.tracking.base_url}/u/{app.signer.sign('u', token)}",
        unsubscribe_mailto=sender.unsubscribe_mailto,
    )
    return message.as_bytes(policy=policy.SMTP), sender.address, lead["email"]


async def raw_ceiling(port: int, data: bytes, sender: str, rcpt: str, count: int) -> float:
    """Messages per second: ``CONNECTIONS`` aiosmtplib connections, pre-rendered bytes."""
    left = count

    async def worker() -> None:
        nonlocal left
        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=port,
            local_hostname="localhost",
            start_tls=False,
            use_tls=False,
            timeout=30,
        )
        await smtp.connect()
        try:
            while left > 0:
                left -= 1
                await smtp.sendmail(sender, [rcpt], data)
        finally:
            await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return count / (time.perf_counter() - started)


async def transport_only(config: Path, port: int, count: int) -> float:
    """Messages per second through nurtured's SmtpTransport (pool of 8, step-by-step
    transaction), with the message's wire bytes built beforehand, as the engine passes them."""
    from nurtured.app import load_app, make_transport

    message, sender, rcpt = sample_message(config)
    app = load_app(config)
    transport = make_transport(app.settings)
    await transport.start()
    started = time.perf_counter()
    try:
        for first in range(0, count, BATCH):
            size = min(BATCH, count - first)
            await asyncio.gather(
                *(transport.send(message, sender=sender, recipients=[rcpt]) for _ in range(size))
            )
    finally:
        await transport.close()
    return count / (time.perf_counter() - started)


async def pipeline(config: Path, times: StageTimes, profile: Path | None) -> dict[str, float]:
    from nurtured.app import load_app, make_transport
    from nurtured.db import database
    from nurtured.engine import Engine

    app = load_app(config)
    transport = make_transport(app.settings)
    async with database(app.settings.database.url):
        await transport.start()
        engine = Engine(
            settings=app.settings,
            catalog=app.catalog,
            renderer=app.renderer,
            transport=transport,
        )
        undo = instrument(times)
        cpu = time.process_time()
        started = time.perf_counter()
        try:
            with profiled(profile):
                report = await engine.run_due(NOW)
        finally:
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
            undo()
            await transport.close()
    return {"sent": report["sent"], "wall": wall, "cpu": cpu, "other": sum(report.counts.values())}


async def run(args: argparse.Namespace) -> list[Figure]:
    leads = args.leads or (1_000 if args.quick else 20_000)
    ceiling_count = 2_000 if args.quick else min(max(leads, 3_000), 20_000)
    figures: list[Figure] = []
    with workdir("send") as root, Sink() as sink:
        config = write_project(root, port=sink.port, pool_size=CONNECTIONS, batch_size=BATCH)
        await create_schema(config)
        seeded = seed(config, leads=leads, due=leads)
        log(f"send: seeded {leads} due leads in {seeded.seconds:.1f} s; sink on {sink.port}")
        data, sender, rcpt = sample_message(config)

        log(f"send: ceiling (raw aiosmtplib, {CONNECTIONS} connections, {len(data)} bytes)")
        await raw_ceiling(sink.port, data, sender, rcpt, 500)  # warm-up, not counted
        before = await raw_ceiling(sink.port, data, sender, rcpt, ceiling_count)
        log(f"send: pipeline ({leads} leads, batch {BATCH}, pool {CONNECTIONS})")
        counted = sink.count()[0]
        times = StageTimes()
        result = await pipeline(config, times, args.profile)
        accepted = sink.count()[0] - counted
        log("send: transport alone, then the ceiling again")
        alone = await transport_only(config, sink.port, ceiling_count)
        after = await raw_ceiling(sink.port, data, sender, rcpt, ceiling_count)

    ceiling = (before + after) / 2
    rate = result["sent"] / result["wall"]
    ratio = rate / ceiling
    ok = result["sent"] == leads and accepted == leads
    figures.append(
        Figure(
            "send",
            f"raw aiosmtplib ceiling ({CONNECTIONS} conns)",
            round(ceiling),
            "msg/s",
            "ceiling",
            "INFO",
            f"{before:.0f} before, {after:.0f} after the pipeline; {len(data)}-byte message",
        )
    )
    figures.append(
        Figure(
            "send",
            f"send pipeline, {leads:,} leads",
            round(rate),
            "msg/s",
            f">= {TARGET:.0%} of ceiling ({TARGET * ceiling:.0f})",
            verdict(ratio >= TARGET and ok),
            f"{ratio:.0%} of ceiling; sent {result['sent']}, sink took {accepted}"
            + ("" if ok else " (MISMATCH)"),
            {
                "ratio": ratio,
                "sent": result["sent"],
                "sink_accepted": accepted,
                "wall_s": result["wall"],
                "cpu_s": result["cpu"],
            },
        )
    )
    figures.append(
        Figure(
            "send",
            "  SmtpTransport alone (pre-built messages)",
            round(alone),
            "msg/s",
            f"ceiling {ceiling:.0f}",
            "INFO",
            f"{alone / ceiling:.0%} of ceiling",
        )
    )
    figures.append(
        Figure(
            "send",
            "  pipeline process CPU / wall",
            round(100 * result["cpu"] / result["wall"]),
            "%",
            "100% = one core busy",
            "INFO",
            "the engine runs on one event loop: near 100% means CPU-bound on its core",
        )
    )
    stages = times.stages()
    wall = result["wall"]
    sent = max(1, result["sent"])

    def stage_figure(name: str, seconds: float, note: str = "") -> Figure:
        return Figure(
            "send",
            name,
            round(1e6 * seconds / sent),
            "us/msg",
            f"{seconds / wall:.0%} of wall",
            "INFO",
            note,
        )

    notes = {
        "lease": "batches overlap: the next is prepared while one sends",
        "send": "per batch, from its emails queued to the last one tried",
    }
    for stage in STAGES:
        figures.append(stage_figure(f"  stage: {stage}", stages[stage], notes.get(stage, "")))
    figures.append(
        stage_figure(
            "    in send: build message bytes",
            times.seconds.get("send: build MIME", 0.0),
            "CPU, synchronous",
        )
    )
    transaction = times.seconds.get("send: SMTP transaction", 0.0) / sent
    figures.append(
        Figure(
            "send",
            "    in send: one SMTP transaction (MAIL, RCPT, DATA)",
            round(1e6 * transaction),
            "us",
            f"ceiling's {1e6 * CONNECTIONS / ceiling:.0f} us",
            "INFO",
            f"average over the {sent} messages, {CONNECTIONS} connections in parallel",
        )
    )
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leads", type=int, default=0, help="leads to send to (default 20000)")


if __name__ == "__main__":
    from bench.common import child_main

    child_main(run, add_arguments)
