"""``nurtured preview``: one step rendered exactly as it would be sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from nurtured.app import load_app
from nurtured.db import database
from nurtured.exceptions import NotFound
from nurtured.message import build_message, domain_of, make_message_id
from nurtured.queries import find_lead
from nurtured.render import SAMPLE_COMPANY, SAMPLE_LEAD
from nurtured.streams import Step, Stream
from nurtured.tokens import new_delivery_token
from nurtured.views import company_view, lead_view


def find_step(stream: Stream, step: str) -> Step:
    """A step by content id, or by its index as written in errors (steps[N])."""
    for candidate in stream.steps:
        if candidate.content == step:
            return candidate
    if step.isdigit() and int(step) < len(stream.steps):
        return stream.steps[int(step)]
    known = ", ".join(f"{s.index}:{s.content}" for s in stream.steps)
    raise NotFound(f"stream {stream.id!r} has no step {step!r} (steps: {known})")


async def render_preview(
    config_path: Path,
    stream_id: str,
    step_name: str,
    lead_email: str | None,
    raw: bool,
    echo: Callable[[str], object],
) -> None:
    app = load_app(config_path)
    stream = app.catalog.stream(stream_id)
    step = find_step(stream, step_name)
    lead, company = dict(SAMPLE_LEAD), dict(SAMPLE_COMPANY)
    if lead_email:
        async with database(app.settings.database.url):
            row = await find_lead(lead_email)
            lead, company = lead_view(row), company_view(row)
    sender = app.settings.sender
    token = new_delivery_token()
    rendered = app.renderer.render(
        step.template, delivery_token=token, lead=lead, company=company,
        sender={"name": sender.name, "address": sender.address},
        stream={"id": stream.id, "name": stream.name},
        step={"index": step.index, "content": step.content},
    )  # fmt: skip
    message = build_message(
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        from_name=sender.name, from_addr=sender.address,
        to_name=str(lead.get("full_name") or ""), to_addr=str(lead["email"]),
        reply_to=sender.reply_to_for(token),
        message_id=make_message_id(token, domain_of(sender.address)),
        date=datetime.now(UTC), unsubscribe_url=rendered.unsubscribe_url,
        unsubscribe_mailto=sender.unsubscribe_mailto,
    )  # fmt: skip
    if raw:
        echo(message.as_string())
        return
    for header in ("From", "To", "Reply-To", "Subject"):
        if message[header]:
            echo(f"{header}: {message[header]}")
    echo(f"\n{rendered.text}")
    echo("----- HTML -----")
    echo(rendered.html)
    for link in rendered.links:
        echo(f"link {link.index}: {link.url}" + (f"  [tag {link.tag}]" if link.tag else ""))
