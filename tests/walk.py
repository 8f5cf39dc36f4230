"""The `walk` fixture: a project of three small streams sending to a real SMTP sink.

Shared by the engine, reactions, tracking and inbox tests (registered in conftest.py).
"""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from nurtured.app import App, load_app, make_transport
from nurtured.engine import Engine
from nurtured.intake import make_input, upsert
from nurtured.mailer import Transport
from nurtured.models import (
    Lead,
)

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

STREAMS = {
    "streams/a.toml": """
        id = "a"
        name = "Stream A"
        [entry]
        interests = ["a"]
        priority = 10
        [[steps]]
        content = "intro"
        [[steps]]
        content = "a1"
        wait = "2d"
        [[steps]]
        content = "a2"
        wait = "2d"
        [transitions]
        on_click = { "interest:b" = "move:b" }
        on_exhausted = "move:b"
    """,
    "streams/b.toml": """
        id = "b"
        name = "Stream B"
        [entry]
        interests = ["b"]
        priority = 10
        [[steps]]
        content = "intro"
        [[steps]]
        content = "b1"
        wait = "1d"
        [transitions]
        on_exhausted = "move:long"
    """,
    "streams/long.toml": """
        id = "long"
        name = "Long term"
        [entry]
        priority = 1000
        [[steps]]
        content = "l1"
        wait = "30d"
        [transitions]
        on_exhausted = "hold"
    """,
}

TEMPLATE = """\
{% block subject %}CONTENT for {{ lead.first_name or "you" }}{% endblock %}
{% block text %}Hello {{ lead.first_name or "there" }},
see {{ link("https://example.com/CONTENT", tag="interest:b") }}
Unsubscribe: {{ unsubscribe_url }}
{% endblock %}
"""


def config(port: int, window: str = '{ hours = "00:00-24:00", days = ["everyday"] }') -> str:
    return f"""
        [mail]
        transport = "smtp"
        [mail.smtp]
        host = "127.0.0.1"
        port = {port}
        tls = "none"
        pool_size = 2
        timeout = "5s"
        [sender]
        from = "Acme <hello@acme.example>"
        reply_to = "replies@acme.example"
        unsubscribe_mailto = "unsubscribe@acme.example"
        [sending]
        rate_limit = 10000
        timezone = "UTC"
        window = {window}
        batch_size = 2
        retry = {{ max_attempts = 3, backoff = "15m" }}
    """


def write_project(root: Path, port: int, **extra: str) -> Path:
    files = {"config.toml": config(port), **STREAMS, **extra}
    for content in ("intro", "a1", "a2", "b1", "l1"):
        files[f"templates/{content}.j2"] = TEMPLATE.replace("CONTENT", content)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(__import__("textwrap").dedent(text))
    return root / "config.toml"


@dataclass
class Walk:
    app: App
    engine: Engine
    transport: Transport
    sink: Any

    async def add(self, address: str, interest: str = "a", tz: str = "", now: datetime = MONDAY
                  ) -> Lead:  # fmt: skip
        item = make_input({"email": address, "first_name": "Ada", "interest": interest,
                           "timezone": tz, "source": "webinar"})  # fmt: skip
        _, leads = await upsert([item], self.app.catalog, self.app.rules, now)
        return leads[0]

    def received(self, address: str) -> list[EmailMessage]:
        found = []
        for envelope in self.sink.messages:
            if address in envelope.rcpt_tos:
                found.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return found

    def subjects(self, address: str) -> list[str]:
        return [str(m["Subject"]).split(" for ")[0] for m in self.received(address)]


@pytest.fixture
async def walk(tmp_path: Path, db: str, smtp_sink: Any) -> AsyncIterator[Walk]:
    app = load_app(write_project(tmp_path, smtp_sink.port))
    transport = make_transport(app.settings)
    await transport.start()
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=transport)  # fmt: skip
    try:
        yield Walk(app, engine, transport, smtp_sink)
    finally:
        await transport.close()
