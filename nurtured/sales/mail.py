"""Short plain emails of the sales loop to salespeople (confirmations, reminders,
escalations): from [sender], auto-submitted, no tracking, no unsubscribe."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime

from nurtured.app import App
from nurtured.mailer import Transport
from nurtured.message import build_message_bytes, domain_of, make_message_id


async def send_note(
    app: App,
    transport: Transport,
    to: Sequence[str],
    subject: str,
    text: str,
    now: datetime,
    *,
    headers: Mapping[str, str],
) -> None:
    """Send it to ``to`` (the first in To, the rest in Cc); errors propagate."""
    sender = app.settings.sender
    message_id = make_message_id(f"note.{secrets.token_hex(8)}", domain_of(sender.address))
    extra = dict(headers)
    if len(to) > 1:
        extra["Cc"] = ", ".join(to[1:])
    data = build_message_bytes(
        subject=subject[:200], text=text, html=None, from_name=sender.name,
        from_addr=sender.address, to_name="", to_addr=to[0], reply_to=None,
        message_id=message_id, date=now, unsubscribe_url=None, unsubscribe_mailto=None,
        extra_headers=extra,
    )  # fmt: skip
    await transport.send(data, sender=sender.address, recipients=list(to))
