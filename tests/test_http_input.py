"""Bad HTTP input over real sockets: a 4xx with a reason, never a 500 or a traceback."""

from __future__ import annotations

import logging

import pytest

from nurtured.models import Lead
from tests.test_api import AUTH, post, server
from tests.test_tracking import Server

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
