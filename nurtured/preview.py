"""``nurtured preview``: one step rendered exactly as it would be sent, shown or sent
once to a tester (``--to``) as a test.

A test send goes through the configured transport (outbox or SMTP) with "[TEST] " before
the subject and an ``X-Nurtured-Test: 1`` header. It writes nothing to the database: no
delivery, no event, no link. Its token starts with "test" and has no delivery row, so its
tracked links, pixel and unsubscribe URL record nothing for anyone (the tracking server
answers them as it answers any unknown delivery, 404). Its Reply-To carries the same
token (no delivery matches it) and its envelope sender is the plain From address (not a
bounce address of the inbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from nurtured.app import App, load_app, make_transport
from nurtured.db import database
from nurtured.exceptions import NotFound, NurturedError
from nurtured.message import build_message, domain_of, make_message_id
from nurtured.queries import find_lead
from nurtured.render import SAMPLE_COMPANY, SAMPLE_LEAD, RenderedEmail
from nurtured.schema import parse_address
from nurtured.splits.spec import Variant
from nurtured.streams import Step, Stream
from nurtured.tokens import new_delivery_token
from nurtured.views import company_view, lead_view

TEST_PREFIX = "[TEST] "
TEST_HEADER = "X-Nurtured-Test"
TEST_DELIVERY_PREFIX = "test"  # no delivery has such a token: links and replies match nothing


def find_step(stream: Stream, step: str) -> Step:
    """A step by content id, or by its index as written in errors (steps[N])."""
    for candidate in stream.steps:
        if candidate.content == step:
            return candidate
    if step.isdigit() and int(step) < len(stream.steps):
        return stream.steps[int(step)]
    known = ", ".join(f"{s.index}:{s.content}" for s in stream.steps)
    raise NotFound(f"stream {stream.id!r} has no step {step!r} (steps: {known})")


def find_variant(stream: Stream, step: Step, name: str | None) -> Variant | None:
    """The named variant; without a name the first one (None for a step without any)."""
    if name is None:
        return step.variants[0] if step.variants else None
    for variant in step.variants:
        if variant.id == name:
            return variant
    known = ", ".join(v.id for v in step.variants) or "none: the step is no split test"
    raise NotFound(f"step {step.content!r} of {stream.id!r} has no variant {name!r} "
                   f"(variants: {known})")  # fmt: skip


def _render(
    app: App, stream: Stream, step: Step, variant: Variant | None, token: str,
    lead: Mapping[str, Any], company: Mapping[str, Any] | None,
) -> RenderedEmail:  # fmt: skip
    sender = app.settings.sender
    rendered = app.renderer.render(
        variant.template if variant else step.template, delivery_token=token, lead=lead,
        company=company, sender={"name": sender.name, "address": sender.address},
        stream={"id": stream.id, "name": stream.name},
        step={"index": step.index, "content": step.content},
    )  # fmt: skip
    if variant is not None and variant.subject is not None:
        rendered = RenderedEmail(variant.subject, rendered.text, rendered.html,
                                 rendered.links, rendered.unsubscribe_url)  # fmt: skip
    return rendered


def _message(
    app: App, rendered: RenderedEmail, token: str, to_name: str, to_addr: str, subject: str
) -> EmailMessage:
    sender = app.settings.sender
    return build_message(
        subject=subject, text=rendered.text, html=rendered.html,
        from_name=sender.name, from_addr=sender.address, to_name=to_name, to_addr=to_addr,
        reply_to=sender.reply_to_for(token),
        message_id=make_message_id(token, domain_of(sender.address)),
        date=datetime.now(UTC), unsubscribe_url=rendered.unsubscribe_url,
        unsubscribe_mailto=sender.unsubscribe_mailto,
    )  # fmt: skip


async def render_preview(
    config_path: Path,
    stream_id: str,
    step_name: str,
    lead_email: str | None,
    raw: bool,
    echo: Callable[[str], object],
    *,
    to: str | None = None,
    variant_name: str | None = None,
) -> None:
    app = load_app(config_path)
    stream = app.catalog.stream(stream_id)
    step = find_step(stream, step_name)
    variant = find_variant(stream, step, variant_name)
    test_to = _test_address(to) if to is not None else None
    lead, company = dict(SAMPLE_LEAD), dict(SAMPLE_COMPANY)
    if lead_email:
        async with database(app.settings.database.url):
            row = await find_lead(lead_email)
            lead, company = lead_view(row), company_view(row)
    if test_to is not None:
        message = await send_test(app, stream, step, variant, lead, company, test_to)
        shown = f", variant {variant.id}" if variant else ""
        echo(f"test email sent to {test_to[1]} ({app.settings.mail.transport}): "
             f"{message['Subject']} [{stream.id} {step.index}:{step.content}{shown}; "
             f"for {lead['email']}]")  # fmt: skip
        return
    token = new_delivery_token()
    rendered = _render(app, stream, step, variant, token, lead, company)
    to_name = str(lead.get("full_name") or "")
    message = _message(app, rendered, token, to_name, str(lead["email"]), rendered.subject)
    if raw:
        echo(message.as_string())
        return
    if variant is not None:
        others = ", ".join(v.id for v in step.variants)
        echo(f"Variant: {variant.id} (of {others}; pick one with --variant)")
    for header in ("From", "To", "Reply-To", "Subject"):
        if message[header]:
            echo(f"{header}: {message[header]}")
    echo(f"\n{rendered.text}")
    echo("----- HTML -----")
    echo(rendered.html)
    for link in rendered.links:
        echo(f"link {link.index}: {link.url}" + (f"  [tag {link.tag}]" if link.tag else ""))


async def send_test(
    app: App, stream: Stream, step: Step, variant: Variant | None,
    lead: Mapping[str, Any], company: Mapping[str, Any] | None, to: tuple[str, str],
) -> EmailMessage:  # fmt: skip
    """Render ``step`` for ``lead`` and send it once to ``to`` (name, address) through the
    configured transport, marked as a test; nothing is written to the database."""
    token = TEST_DELIVERY_PREFIX + new_delivery_token()
    rendered = _render(app, stream, step, variant, token, lead, company)
    name, addr = to
    message = _message(app, rendered, token, name, addr, TEST_PREFIX + rendered.subject)
    message[TEST_HEADER] = "1"
    transport = make_transport(app.settings)
    await transport.start()
    try:
        await transport.send(message, sender=app.settings.sender.address, recipients=[addr])
    finally:
        await transport.close()
    return message


def _test_address(text: str) -> tuple[str, str]:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise NurturedError(f"--to: {exc}") from None
