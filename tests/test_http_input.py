"""Bad HTTP input over real sockets: a 4xx with a reason, never a 500 or a traceback;
unmailable addresses refused at intake; no delivery token in any log line."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from asyncio import StreamReader, StreamWriter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from nurtured.models import Delivery, Lead
from nurtured.redact import redact, redact_path
from nurtured.tokens import new_delivery_token
from tests.test_api import AUTH, TOKEN, post, server
from tests.test_tracking import Server, paths, sent_to, serving
from tests.walk import MONDAY, Walk

__all__ = ["server"]  # the fixture, used by name

JSON = {**AUTH, "Content-Type": "application/json"}


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at ERROR or above, or with a traceback: what bad input must never cause."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"email": "a@example.com", "x": ' + b"[" * 30_000, "nested too deeply"),
        (b'{"email": "a@example.com", "n": ' + b"1" * 5_000 + b"}", "too many digits"),
        (b'{"email": "a@example.com"', "Expecting"),
        (b'{"email": "\xff@example.com"}', "not UTF-8"),
        (b"", "Expecting value"),
        (b'"a string"', "must be a JSON object"),
        (b"[1, 2]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
    ids=["deep-list", "deep-field", "5000-digits", "truncated", "not-utf8", "empty", "string",
         "list", "null"],
)  # fmt: skip
async def test_invalid_json_is_a_400_with_the_reason(
    server: Server, caplog: pytest.LogCaptureFixture, body: bytes, reason: str
) -> None:
    """Deep nesting (json's RecursionError), a 5,000-digit number, broken or non-object
    JSON: 400 and what is wrong, nothing stored, nothing logged as an error."""
    assert len(body) < server.runtime.app.settings.http.max_body
    status, answer = await post(server, headers=JSON, data=body)
    assert status == 400
    assert reason in answer["error"]
    assert await Lead.all().count() == 0
    assert tracebacks(caplog) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"email": "s@example.com", "first_name": "\\ud800x"}', "first_name"),
        (b'{"email": "s@example.com", "utm_source": "x\\udfff"}', "utm_source"),
        (b'{"email": "s@example.com", "interests": ["a", "\\ud83d"]}', "interests"),
        (b'{"email": "s\\ud800@example.com"}', "email"),
        (b'{"email": "s@example.com", "timezone": "Europe/\\ud800"}', "timezone"),
        (b'{"email": "s@example.com", "k\\ud800": "v"}', "k\\ud800"),
    ],
    ids=["first_name", "extra", "interests", "email", "timezone", "key"],
)
async def test_lone_surrogate_is_a_422_naming_the_field(
    server: Server, caplog: pytest.LogCaptureFixture, body: bytes, field: str
) -> None:
    """A lone surrogate (valid JSON, not valid Unicode) cannot be stored or mailed: 422
    naming the field, never a 500 at the database write."""
    status, answer = await post(server, headers=JSON, data=body)
    assert status == 422
    assert "surrogate" in answer["errors"][field]
    assert await Lead.all().count() == 0
    assert tracebacks(caplog) == []


class Seen(logging.Handler):
    """Notes the records of some loggers at INFO or above, and says when one came."""

    def __init__(self, *names: str) -> None:
        super().__init__(logging.DEBUG)
        self.names = names
        self.records: list[logging.LogRecord] = []
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in self.names and record.levelno >= logging.INFO:
            self.records.append(record)
            self.event.set()


@pytest.fixture
def seen(caplog: pytest.LogCaptureFixture) -> Iterator[Seen]:
    caplog.set_level(logging.DEBUG)
    handler = Seen("nurtured.api", "aiohttp.server")
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


@asynccontextmanager
async def connection(server: Server) -> AsyncIterator[tuple[StreamReader, StreamWriter]]:
    """A raw TCP connection to the server."""
    url = urlsplit(server.base)
    assert url.hostname is not None
    assert url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head(length: int | None = None, *extra: str) -> bytes:
    lines = ["POST /api/leads HTTP/1.1", "Host: x", f"Authorization: Bearer {TOKEN}",
             "Content-Type: application/json", *extra]  # fmt: skip
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_client_gone_mid_body_is_one_info_line_and_the_server_goes_on(
    server: Server, caplog: pytest.LogCaptureFixture, seen: Seen
) -> None:
    """Content-Length 1000, 10 bytes, then the socket closes: no traceback, no error."""
    async with connection(server) as (_, writer):
        writer.write(head(1000) + b'{"email": ')
        await writer.drain()
    await asyncio.wait_for(seen.event.wait(), 5)
    assert tracebacks(caplog) == []
    (record,) = seen.records
    assert record.levelno == logging.INFO
    assert "closed the connection after 10 of 1000 bytes" in record.getMessage()
    assert (await server.request("GET", "/healthz"))[0] == 200
    assert await Lead.all().count() == 0


@pytest.fixture
async def quick(walk: Walk, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """The server with ``[http] request_timeout`` at half a second."""
    monkeypatch.setenv("NURTURED_API_TOKEN", TOKEN)
    settings = walk.app.settings
    http = settings.http.model_copy(update={"request_timeout": timedelta(milliseconds=500)})
    app = dataclasses.replace(walk.app, settings=dataclasses.replace(settings, http=http))
    async with serving(app, walk.transport) as server:
        yield server


async def test_half_sent_request_headers_are_closed_after_the_timeout(quick: Server) -> None:
    """Headers begun, never finished: the server closes the connection, no answer."""
    async with connection(quick) as (reader, writer):
        writer.write(b"POST /api/leads HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # EOF: closed by the server


async def test_half_sent_body_gets_408_after_the_timeout(
    quick: Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with connection(quick) as (reader, writer):
        writer.write(head(1000) + b'{"email": ')
        await writer.drain()
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert status.startswith(b"HTTP/1.1 408 "), status
    assert tracebacks(caplog) == []
    assert await Lead.all().count() == 0


PUNY = "ascii@xn--bcher-kva.example.com"


@pytest.mark.parametrize("given", [PUNY, "Ascii@Bücher.example.com", "ascii@BÜCHER.example.com"])
async def test_idn_domain_is_stored_and_mailed_as_punycode(
    walk: Walk, server: Server, given: str
) -> None:
    """An internationalised domain, in either form, is one lead stored in its ASCII form
    and mailed there: RCPT and To carry the punycode."""
    status, body = await post(server, json={"email": given, "interest": "a"})
    assert (status, body["email"], body["stream"]) == (201, PUNY, "a")
    assert (await post(server, json={"email": "ascii@bücher.example.com"}))[0] == 200
    assert [lead.email for lead in await Lead.all()] == [PUNY]
    assert (await walk.engine.run_due(server.clock.now))["sent"] == 1
    (envelope,) = walk.sink.messages
    assert envelope.rcpt_tos == (PUNY,)
    (message,) = walk.received(PUNY)
    assert message["To"].addresses[0].addr_spec == PUNY


async def test_non_ascii_local_part_is_refused_with_the_reason(server: Server) -> None:
    status, body = await post(server, json={"email": "jürgen@bücher.example.com"})
    assert status == 422
    assert "local part is not ASCII" in body["errors"]["email"]
    assert "SMTPUTF8" in body["errors"]["email"]
    assert await Lead.all().count() == 0


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and traceback, as any handler would write them, but those
    of the SMTP sink's own log ("mail.log"): the mail server is not nurtured."""
    formatter = logging.Formatter("%(name)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records if r.name != "mail.log")


async def test_no_delivery_token_reaches_a_log_line(
    walk: Walk, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Send, click, open, unsubscribe (page and one-click), with tracking paths forged
    too, all logged at DEBUG: no token in any record, the SQL parameters included; the
    access log has each request, its tracking path redacted."""
    caplog.set_level(logging.DEBUG)
    lead = await sent_to(walk, "t@example.com")
    tracking = [*paths(walk, lead.email, "c"), *paths(walk, lead.email, "o"),
                *paths(walk, lead.email, "u")]  # fmt: skip
    assert len(tracking) == 3
    for path in tracking:
        for method in ("GET", "HEAD", "POST") if path.startswith("/u/") else ("GET", "HEAD"):
            assert (await server.request(method, path))[0] in (200, 302)
        assert (await server.request("GET", path[:-3] + "AAA"))[0] == 404
    await server.flush()
    (delivery,) = await Delivery.all()
    secrets = {delivery.token, *(p.split("/")[2].removesuffix(".gif") for p in tracking)}
    text = logged(caplog)
    assert "tortoise.db_client" in {r.name for r in caplog.records}  # SQL was logged
    for secret in secrets:
        assert secret not in text
    access = [r.getMessage() for r in caplog.records if r.name == "nurtured.access"]
    assert len(access) == 3 + 3 + 4  # per path: each method, then a forged token
    assert any('"GET /c/…" 302' in line for line in access)
    assert any('"POST /u/…" 200' in line for line in access)


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (b"GARBAGE\r\n\r\n", "Invalid method encountered: b'GARBAGE'"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32), "HTTPS traffic"),
        (b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", "Invalid header token"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n", "Invalid method"),
        (head(None, "Transfer-Encoding: chunked") + b"zz\r\nxx\r\n", "chunk size"),
    ],
    ids=["garbage", "tls", "bad-header", "second-request", "bad-chunk"],
)
async def test_malformed_request_is_one_warning_line(
    server: Server, caplog: pytest.LogCaptureFixture, request_bytes: bytes, reason: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with connection(server) as (reader, writer):
        writer.write(request_bytes)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
    assert b"HTTP/1.0 400 Bad Request" in answer
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelname for r in records] == ["WARNING"]
    assert records[0].exc_info is None
    message = records[0].getMessage()
    assert message.startswith("bad HTTP request from 127.0.0.1: 400 ")
    assert reason in message
    assert "\n" not in message
    assert tracebacks(caplog) == []
    assert (await server.request("GET", "/healthz"))[0] == 200


async def test_malformed_request_line_with_a_token_logs_no_token(
    walk: Walk, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    lead = await sent_to(walk, "t@example.com")
    (path,) = paths(walk, lead.email, "u")
    caplog.set_level(logging.DEBUG)
    async with connection(server) as (reader, writer):
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nX: \x01{path}\r\n\r\n".encode())
        await writer.drain()
        assert b" 400 " in await asyncio.wait_for(reader.read(), 5)
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1
    assert path.split("/")[2] not in logged(caplog)


async def test_repeated_form_keys_last_one_wins_interests_add_up(server: Server) -> None:
    """A form repeating a key is no error: the last value wins (a hidden "no" before a
    checkbox works), repeated interest fields add up."""
    form = ("email=first@example.com&email=last@example.com&first_name=A&first_name=B"
            "&interest=a&interest=b&consent=no&consent=yes")  # fmt: skip
    headers = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    status, body = await post(server, headers=headers, data=form.encode())
    assert (status, body["email"]) == (201, "last@example.com")
    lead = await Lead.get(email="last@example.com")
    assert (lead.first_name, lead.interests, lead.extra["consent"]) == ("B", ["a", "b"], "yes")


async def test_over_long_fields_are_cut_or_refused(server: Server) -> None:
    """Under max_body a field may still be huge: names are cut to their limits, other
    fields to 1,000 characters, field names to 64; an over-long address is a 422."""
    status, _ = await post(server, json={"email": "x" * 5_000 + "@example.com"})
    assert status == 422
    status, body = await post(server, json={
        "email": "long@example.com", "first_name": "F" * 20_000, "company": "C" * 5_000,
        "notes": "n" * 20_000, "k" * 5_000: "v",
    })  # fmt: skip
    assert status == 201
    lead = await Lead.get(id=body["id"])
    assert lead.first_name == "F" * 100
    assert lead.extra["notes"] == "n" * 1_000
    assert lead.extra["k" * 64] == "v"


async def test_header_injection_in_a_name_never_reaches_a_header(
    walk: Walk, server: Server
) -> None:
    """CR/LF in a name become spaces at intake: the email goes to the lead alone, with
    no injected header, and the name stays on one line."""
    status, body = await post(server, json={
        "email": "bob@example.com", "first_name": "Bob\r\nBcc: victim@example.net",
        "last_name": "\nX-Injected: 1", "company": "Evil\r\n\r\nbody", "interest": "a",
    })  # fmt: skip
    assert status == 201
    lead = await Lead.get(id=body["id"])
    assert (lead.first_name, lead.last_name) == ("Bob Bcc: victim@example.net", "X-Injected: 1")
    assert (await walk.engine.run_due(server.clock.now))["sent"] == 1
    (envelope,) = walk.sink.messages
    assert envelope.rcpt_tos == ("bob@example.com",)
    (message,) = walk.received("bob@example.com")
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["bob@example.com"]
    assert message["Subject"] == "intro for Bob Bcc: victim@example.net"


async def test_handler_failure_stays_an_error_with_its_traceback_token_redacted(
    walk: Walk, server: Server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own failure (the database refusing an unsubscribe, injected: a real one says
    "Key (token)=(...)") is still an ERROR with its traceback, and the 500 makes the
    sender retry; the token in the exception's text is redacted."""
    lead = await sent_to(walk, "t@example.com")
    (path,) = paths(walk, lead.email, "u")
    (delivery,) = await Delivery.all()

    async def refuse(*_: object) -> None:
        raise RuntimeError(f"duplicate key: Key (token)=({delivery.token}) already exists")

    monkeypatch.setattr("nurtured.tracking.react", refuse)
    caplog.set_level(logging.DEBUG)
    assert (await server.request("POST", path))[0] == 500
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.name == "aiohttp.server"
    assert error.exc_info is not None
    text = logged(caplog)
    assert "Key (token)=(<token>) already exists" in text
    assert delivery.token not in text


def test_redact_hides_tokens_and_keeps_words() -> None:
    token = new_delivery_token(MONDAY)
    signed = f"{token}.3.{new_delivery_token()}"
    text = f"'{token}' /u/{signed} nurtured-signal-writer content_version_abc12"
    assert redact(text) == (
        "'<token>' /u/<token>.3.<token> nurtured-signal-writer content_version_abc12"
    )
    assert redact_path(f"/o/{token}.gif") == "/o/…"
    assert redact_path("/api/leads") == "/api/leads"
