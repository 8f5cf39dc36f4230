"""The tracking server over real HTTP: clicks, opens, unsubscribe, health and metrics."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from nurtured.app import App, Runtime, load_app
from nurtured.engine import Engine
from nurtured.models import (
    Delivery,
    Enrollment,
    EnrollmentState,
    Event,
    EventKind,
    Lead,
    LeadStatus,
)
from nurtured.tokens import Signer, new_delivery_token
from nurtured.tracking import PIXEL, WRITER, bound_port, start_server
from tests.walk import MONDAY, Walk, write_project

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
LATER = MONDAY + timedelta(hours=2)  # well past bots.click_grace after the send


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Server:
    base: str
    http: aiohttp.ClientSession
    runtime: Runtime
    clock: Clock
    web_app: web.Application

    async def flush(self) -> None:
        """Wait until every click and open answered so far is committed."""
        await self.web_app[WRITER].flush()

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"User-Agent": BROWSER, **kwargs.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers,
                                     allow_redirects=False, **kwargs) as response:  # fmt: skip
            return response.status, dict(response.headers), await response.read()


@asynccontextmanager
async def serving(app: App, transport: Any, now: datetime = LATER) -> AsyncIterator[Server]:
    """The server on a free port of 127.0.0.1 with a fixed clock, and a client for it."""
    clock = Clock(now)
    runtime = Runtime(app, transport, clock)
    runner = await start_server(runtime, listen=("127.0.0.1", 0))
    try:
        async with aiohttp.ClientSession() as http:
            yield Server(f"http://127.0.0.1:{bound_port(runner)}", http, runtime, clock, runner.app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def server(walk: Walk) -> AsyncIterator[Server]:
    async with serving(walk.app, walk.transport) as server:
        yield server


def paths(walk: Walk, address: str, kind: str) -> list[str]:
    """The /c/, /o/ or /u/ paths in the emails ``address`` received, in order."""
    found: list[str] = []
    for message in walk.received(address):
        for part in message.walk():
            if part.get_content_maintype() == "text":
                for url in re.findall(
                    rf"https?://[^\s<>\"]+/{kind}/[^\s<>\"]+", part.get_content()
                ):
                    path = urlsplit(url).path
                    if path not in found:
                        found.append(path)
    return found


async def sent_to(walk: Walk, address: str, interest: str = "a") -> Lead:
    lead = await walk.add(address, interest=interest)
    assert (await walk.engine.run_due(MONDAY))["sent"] == 1
    return lead


async def stream_of(lead: Lead) -> str | None:
    current = await Enrollment.filter(lead_id=lead.id, active_lead__not_isnull=True).first()
    return current.stream_id if current else None


async def clicks(lead: Lead) -> list[dict[str, Any]]:
    return [
        e.data for e in await Event.filter(lead_id=lead.id, kind=EventKind.CLICK).order_by("id")
    ]


async def test_click_redirects_to_the_stored_url_and_moves_the_lead(walk: Walk, server: Server
                                                                    ) -> None:  # fmt: skip
    """A human click on the "interest:b" link: 302 to its URL, the lead moves A -> B and
    then gets B's next email, never the intro it already had."""
    lead = await sent_to(walk, "ada@example.com")
    (click,) = paths(walk, "ada@example.com", "c")
    status, headers, _ = await server.request("GET", click)
    assert status == 302
    assert headers["Location"] == "https://example.com/intro"
    assert headers["Cache-Control"].startswith("no-store")
    assert headers["Referrer-Policy"] == "no-referrer"
    await server.flush()
    assert await stream_of(lead) == "b"
    (data,) = await clicks(lead)
    assert data["url"] == "https://example.com/intro"
    assert (data["tag"], data.get("machine")) == ("interest:b", None)
    assert (await Lead.get(id=lead.id)).score == 5
    current = await Enrollment.get(lead_id=lead.id, active_lead__not_isnull=True)
    assert current.position == 1  # b's intro is skipped: the lead has it
    await walk.engine.run_due(LATER + timedelta(days=1))
    assert walk.subjects("ada@example.com") == ["intro", "b1"]


@pytest.mark.parametrize(
    ("method", "agent", "at", "reason"),
    [
        ("HEAD", BROWSER, LATER, "head"),
        ("GET", BROWSER, MONDAY + timedelta(seconds=2), "early"),
        ("GET", "Mozilla/5.0 (compatible; Barracuda Sentinel)", LATER, "agent"),
        ("GET", "python-requests/2.32", LATER, "agent"),
        ("GET", "", LATER, "agent"),
        ("GET", "Mozilla/5.0 (compatible; AcmeLinkCheck 1.0)", LATER, "agent"),  # configured
    ],
)
async def test_machine_clicks_are_recorded_but_move_nobody(
    walk: Walk, tmp_path: Path, method: str, agent: str, at: datetime, reason: str
) -> None:
    """HEAD, a click within click_grace of the send, or a scanner user agent: recorded as a
    machine click (still redirected, for GET), no score, no transition."""
    config = (tmp_path / "config.toml").read_text() + '[bots]\nscanner_agents = ["AcmeLinkCheck"]\n'
    app = load_app(write_project(tmp_path, walk.sink.port, **{"config.toml": config}))
    lead = await sent_to(walk, "ada@example.com")
    (click,) = paths(walk, "ada@example.com", "c")
    async with serving(app, walk.transport, at) as server:
        status, headers, _ = await server.request(method, click, headers={"User-Agent": agent})
    assert status == 302
    assert headers["Location"] == "https://example.com/intro"
    assert await stream_of(lead) == "a"
    (data,) = await clicks(lead)
    assert (data["machine"], data["reason"]) == (True, reason)
    assert (await Lead.get(id=lead.id)).score == 0


THREE_LINKS = """\
{% block subject %}intro for {{ lead.first_name }}{% endblock %}
{% block text %}See {{ link("https://example.com/pricing") }}
and {{ link("https://example.com/b", tag="interest:b") }}
and {{ link("https://example.com/docs") }}
{% endblock %}
"""


async def test_scanner_hitting_every_link_in_a_burst_moves_nobody(walk: Walk, tmp_path: Path
                                                                  ) -> None:  # fmt: skip
    """All three links of one email within a second: the click completing the burst and
    every later one are machine; the tagged link, hit late in the burst, moves nobody."""
    config = write_project(tmp_path / "w", walk.sink.port)
    (config.parent / "templates" / "intro.j2").write_text(THREE_LINKS)
    app = load_app(config)
    engine = Engine(settings=app.settings, catalog=app.catalog, renderer=app.renderer,
                    transport=walk.transport)  # fmt: skip
    lead = await walk.add("ada@example.com")
    await engine.run_due(MONDAY)
    first, tagged, third = paths(walk, "ada@example.com", "c")
    async with serving(app, walk.transport) as server:
        for path in (first, third, tagged, first):
            assert (await server.request("GET", path))[0] == 302
            server.clock.now += timedelta(milliseconds=200)
        server.clock.now += timedelta(minutes=5)  # a human, later: counts again
        assert (await server.request("GET", first))[0] == 302
    data = await clicks(lead)
    assert [(d["link"], d.get("reason")) for d in data] == [
        (0, None), (2, None), (1, "burst"), (0, "burst"), (0, None)
    ]  # fmt: skip
    assert await stream_of(lead) == "a"


async def test_forged_altered_and_truncated_click_tokens_get_404(walk: Walk, server: Server
                                                                 ) -> None:  # fmt: skip
    """Any token this server did not make for that link is 404 and records nothing."""
    lead = await sent_to(walk, "ada@example.com")
    (click,) = paths(walk, "ada@example.com", "c")
    token = click.removeprefix("/c/")
    delivery_token, index, sig = token.split(".")
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    other = Signer(b"not-our-secret")
    app_signer = walk.app.signer
    bad = [
        f"{delivery_token}.{index}.{flipped}",  # altered signature
        f"{delivery_token}.1.{sig}",  # altered link index
        token[:-1],  # truncated
        f"{delivery_token}.{index}",  # signature cut off
        other.sign("c", delivery_token, index),  # forged with another secret
        app_signer.sign("o", delivery_token),  # an open token
        app_signer.sign("u", delivery_token),  # an unsubscribe token
        app_signer.sign("c", new_delivery_token(), "0"),  # signed, but no such delivery
        app_signer.sign("c", delivery_token, "7"),  # signed, but no such link
        app_signer.sign("c", delivery_token, "x"),
        "%00", "x" * 5000,
    ]  # fmt: skip
    for candidate in bad:
        status, headers, _ = await server.request("GET", f"/c/{candidate}")
        assert status == 404, candidate
        assert "Location" not in headers
    await server.flush()
    assert await clicks(lead) == []
    assert await stream_of(lead) == "a"


async def test_no_open_redirect(walk: Walk, server: Server) -> None:
    """Nothing in the request can change where a click goes: there is no URL parameter."""
    await sent_to(walk, "ada@example.com")
    (click,) = paths(walk, "ada@example.com", "c")
    for attempt in (f"{click}?url=https://evil.example/", f"{click}?next=//evil.example",
                    f"{click}#https://evil.example"):  # fmt: skip
        status, headers, _ = await server.request("GET", attempt)
        assert (status, headers["Location"]) == (302, "https://example.com/intro")
    for attempt in (f"{click}/https://evil.example", f"{click}%2F%2Fevil.example"):
        status, headers, _ = await server.request("GET", attempt)
        assert status == 404
        assert "Location" not in headers


async def test_open_pixel(walk: Walk, server: Server) -> None:
    """A 1x1 GIF; Gmail's and Apple's proxies are machine opens; forged tokens 404."""
    lead = await sent_to(walk, "ada@example.com")
    (pixel,) = paths(walk, "ada@example.com", "o")
    status, headers, body = await server.request("GET", pixel)
    assert (status, headers["Content-Type"], body) == (200, "image/gif", PIXEL)
    assert headers["Cache-Control"].startswith("no-store")
    proxy = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert (await server.request("GET", pixel, headers={"User-Agent": proxy}))[0] == 200
    await server.flush()
    opens = await Event.filter(lead_id=lead.id, kind=EventKind.OPEN).order_by("id")
    assert [(e.data.get("machine"), e.data.get("reason")) for e in opens] == [
        (None, None), (True, "proxy")
    ]  # fmt: skip
    assert (await Lead.get(id=lead.id)).score == 1
    token = pixel.removeprefix("/o/").removesuffix(".gif")
    for bad in (f"/o/{token[:-2]}.gif", f"/o/{token}", f"/o/{token}.png",
                f"/o/{walk.app.signer.sign('c', token.split('.')[0], '0')}.gif"):  # fmt: skip
        assert (await server.request("GET", bad))[0] == 404
    await server.flush()
    assert await Event.filter(lead_id=lead.id, kind=EventKind.OPEN).count() == 2


async def test_unsubscribe_get_asks_and_post_unsubscribes_once(walk: Walk, server: Server
                                                               ) -> None:  # fmt: skip
    """GET shows a confirm form and changes nothing (a scanner's GET unsubscribes nobody);
    the RFC 8058 one-click POST unsubscribes at once; a second POST changes nothing."""
    lead = await sent_to(walk, "ada@example.com")
    (unsubscribe,) = paths(walk, "ada@example.com", "u")
    status, headers, body = await server.request("GET", unsubscribe)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert f'<form method="post" action="{unsubscribe}">' in page
    assert "ada@example.com" in page
    assert (await server.request("HEAD", unsubscribe))[0] == 200
    assert (await Lead.get(id=lead.id)).status == LeadStatus.ACTIVE
    for _ in range(2):
        status, _, body = await server.request(
            "POST", unsubscribe, data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert status == 200
        assert b"unsubscribed" in body
    assert (await Lead.get(id=lead.id)).status == LeadStatus.UNSUBSCRIBED
    assert await stream_of(lead) is None
    assert await Event.filter(lead_id=lead.id, kind=EventKind.UNSUBSCRIBE).count() == 1
    assert (await walk.engine.run_due(MONDAY + timedelta(days=30)))["sent"] == 0
    assert "Unsubscribe</button>" not in (await server.request("GET", unsubscribe))[2].decode()


async def test_unsubscribe_with_bad_tokens_is_404(walk: Walk, server: Server) -> None:
    lead = await sent_to(walk, "ada@example.com")
    (unsubscribe,) = paths(walk, "ada@example.com", "u")
    delivery = await Delivery.get(lead_id=lead.id)
    for bad in (unsubscribe[:-1], f"/u/{walk.app.signer.sign('o', delivery.token)}",
                f"/u/{Signer(b'x').sign('u', delivery.token)}"):  # fmt: skip
        assert (await server.request("GET", bad))[0] == 404
        assert (await server.request("POST", bad, data=b"List-Unsubscribe=One-Click"))[0] == 404
    assert (await Lead.get(id=lead.id)).status == LeadStatus.ACTIVE
    assert await Event.filter(lead_id=lead.id, kind=EventKind.UNSUBSCRIBE).count() == 0


async def test_healthz(server: Server) -> None:
    assert (await server.request("GET", "/healthz"))[:1] == (200,)
    assert (await server.request("GET", "/healthz"))[2] == b"ok\n"


async def test_metrics_counts_sends_clicks_and_backlog(walk: Walk, server: Server) -> None:
    """Prometheus text: sent, failed, replies, human and machine clicks, queue, backlog."""
    await sent_to(walk, "ada@example.com")
    await walk.add("bob@example.com", now=MONDAY + timedelta(hours=1))  # due, not sent yet
    (click,) = paths(walk, "ada@example.com", "c")
    await server.request("HEAD", click)
    await server.request("GET", click)
    await server.flush()
    status, headers, body = await server.request("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    for line in (
        "# TYPE nurtured_emails_sent_total counter",
        "nurtured_emails_sent_total 1",
        "nurtured_emails_failed_total 0",
        "nurtured_replies_total 0",
        'nurtured_clicks_total{agent="human"} 1',
        'nurtured_clicks_total{agent="machine"} 1',
        "nurtured_queue_depth 0",
        "nurtured_due_backlog 1",  # bob; ada waits a day for b1
        'nurtured_deliveries{status="sent"} 1',
        'nurtured_leads{status="active"} 2',
    ):
        assert line in text.splitlines(), line


async def test_reload_takes_effect_without_restart(walk: Walk, server: Server, tmp_path: Path
                                                   ) -> None:  # fmt: skip
    """The server reads runtime.app per request: a new App's bot settings apply at once."""
    lead = await sent_to(walk, "ada@example.com")
    (click,) = paths(walk, "ada@example.com", "c")
    config = (tmp_path / "config.toml").read_text() + '[bots]\nclick_grace = "1d"\n'
    server.runtime.app = load_app(write_project(tmp_path, walk.sink.port,
                                                **{"config.toml": config}))  # fmt: skip
    await server.request("GET", click)
    await server.flush()
    assert [d["reason"] for d in await clicks(lead)] == ["early"]
    assert (await Enrollment.get(lead_id=lead.id)).state == EnrollmentState.ACTIVE


async def test_click_that_makes_a_lead_sales_ready_alerts_sales(walk: Walk, tmp_path: Path
                                                                ) -> None:  # fmt: skip
    """A human click crossing [scoring] sales_ready hands the lead to sales; the alert is
    sent after the redirect is answered (and before the server stops)."""
    config = (tmp_path / "config.toml").read_text() + "[scoring]\nsales_ready = 5\n"
    app = load_app(write_project(tmp_path, walk.sink.port, **{"config.toml": config}))
    lead = await sent_to(walk, "ada@example.com")
    (click,) = paths(walk, "ada@example.com", "c")
    async with serving(app, walk.transport) as server:
        assert (await server.request("GET", click))[0] == 302
    assert (await Lead.get(id=lead.id)).status == LeadStatus.SALES
    alerts = [m for m in walk.sink.messages if "hello@acme.example" in m.rcpt_tos]
    assert len(alerts) == 1
    assert await Event.filter(lead_id=lead.id, kind=EventKind.ALERT).count() == 1
