"""POST /api/leads over real HTTP: auth, validation, idempotent upsert, consult routing."""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from datetime import timedelta
from email import policy
from typing import Any

import pytest

from nurtured.models import Enrollment, Event, EventKind, Lead, LeadStatus
from tests.test_tracking import Server, serving
from tests.walk import MONDAY, Walk

TOKEN = "s3cret-intake-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def server(walk: Walk, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.setenv("NURTURED_API_TOKEN", TOKEN)
    async with serving(walk.app, walk.transport) as server:
        yield server


async def post(server: Server, headers: dict[str, str] | None = None, **kwargs: Any
               ) -> tuple[int, Any]:  # fmt: skip
    async with server.http.post(server.base + "/api/leads", headers=AUTH if headers is None
                                else headers, **kwargs) as response:  # fmt: skip
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def current_stream(lead_id: int) -> str | None:
    enrollment = await Enrollment.filter(lead_id=lead_id, active_lead__not_isnull=True).first()
    return enrollment.stream_id if enrollment else None


async def test_json_lead_is_created_and_enrolled_then_updated_by_email(server: Server) -> None:
    """The same address twice (differently cased) is one lead: 201 then 200."""
    status, body = await post(server, json={
        "email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace",
        "company": "Analytical Engines", "title": "CTO", "source": "webinar",
        "interests": ["a"], "timezone": "Europe/London", "consent": True,
    })  # fmt: skip
    assert status == 201
    assert body["email"] == "ada@example.com"
    assert (body["stream"], body["status"], body["created"]) == ("a", "active", True)
    status, again = await post(server, json={"email": " ADA@example.com ", "title": "CEO"})
    assert status == 200
    assert (again["id"], again["stream"], again["created"]) == (body["id"], "a", False)
    (lead,) = await Lead.all()
    assert (lead.first_name, lead.title, lead.source, lead.timezone) == (
        "Ada", "CEO", "webinar", "Europe/London"
    )  # fmt: skip
    assert lead.extra["consent"] == "yes"
    assert lead.extra["consent_at"].startswith("2026-11-23T12:00")
    assert await Enrollment.filter(lead_id=lead.id).count() == 1


async def test_form_post_creates_an_enrolled_lead(server: Server) -> None:
    """A web form (urlencoded, repeated interest fields) enrolls by the entry rules."""
    status, body = await post(
        server, data={"email": "bo@example.com", "interest": "b", "source": "white-paper",
                      "consent": "on", "utm_campaign": "spring"},
        headers={**AUTH},
    )  # fmt: skip
    assert status == 201
    assert body["stream"] == "b"
    lead = await Lead.get(email="bo@example.com")
    assert lead.interests == ["b"]
    assert lead.extra == {"consent": "yes", "consent_at": lead.extra["consent_at"],
                          "utm_campaign": "spring"}  # fmt: skip
    assert await current_stream(lead.id) == "b"


async def test_lead_without_consent_is_kept_but_never_mailed(walk: Walk, server: Server) -> None:
    """consent: no -> the lead is stored, unsubscribed at once, in no stream."""
    status, body = await post(server, json={"email": "no@example.com", "interests": ["a"],
                                            "consent": False})  # fmt: skip
    assert status == 201
    assert (body["status"], body["stream"]) == ("unsubscribed", None)
    await walk.engine.run_due(MONDAY + timedelta(days=1))
    assert walk.received("no@example.com") == []


async def test_consult_request_goes_to_sales_with_an_alert(walk: Walk, server: Server) -> None:
    """A sales source is not nurtured: status "sales", no stream, an alert email to sales."""
    status, body = await post(server, json={
        "email": "cara@bigco.example", "first_name": "Cara", "company": "BigCo",
        "source": "consult", "interest": "a", "message": "Please call me about pricing",
    })  # fmt: skip
    assert status == 201
    assert (body["status"], body["stream"], body["alert"]) == ("sales", None, "sent")
    lead = await Lead.get(email="cara@bigco.example")
    assert lead.status == LeadStatus.SALES
    assert await current_stream(lead.id) is None
    (alert,) = walk.sink.messages
    assert alert.rcpt_tos == ("hello@acme.example",)
    message = email.message_from_bytes(alert.content, policy=policy.default)
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "cara@bigco.example" in content
    assert "Please call me about pricing" in content
    assert await Event.filter(lead_id=lead.id, kind=EventKind.ALERT).count() == 1
    assert (await walk.engine.run_due(server.clock.now))["sent"] == 0


async def test_nurtured_lead_asking_for_a_consult_leaves_its_stream(server: Server) -> None:
    status, body = await post(server, json={"email": "dan@example.com", "interest": "a"})
    assert (status, body["stream"]) == (201, "a")
    status, body = await post(server, json={"email": "dan@example.com", "source": "Consult"})
    assert (status, body["status"], body["stream"]) == (200, "sales", None)


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"email": "required"}),
        ({"email": "not-an-address"}, {"email": ...}),
        ({"email": "a@example.com", "timezone": "Mars/Olympus"}, {"timezone": ...}),
        ({"email": "x", "timezone": "Nowhere/Land", "consent": "maybe"},
         {"email": ..., "timezone": ..., "consent": ...}),
        ({"email": "a@example.com", "first_name": {"nested": 1}}, {"first_name": ...}),
        ({"email": "a@example.com", "interests": ["a", 3]}, {"interests": ...}),
        ({"email": "a@example.com", "owner": "me@evil.example"}, {"owner": ...}),
    ],
)  # fmt: skip
async def test_bad_fields_get_422_with_a_reason_each(
    server: Server, payload: dict[str, Any], errors: dict[str, Any]
) -> None:
    status, body = await post(server, json=payload)
    assert status == 422
    assert set(body["errors"]) == set(errors)
    for field, reason in errors.items():
        assert body["errors"][field]
        if reason is not ...:
            assert body["errors"][field] == reason
    assert await Lead.all().count() == 0


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": b"[1, 2]", "headers": {**AUTH, "Content-Type": "application/json"}}, 400),
        ({"data": b"{nope", "headers": {**AUTH, "Content-Type": "application/json"}}, 400),
        ({"data": b"email=a@example.com", "headers": {**AUTH, "Content-Type": "text/plain"}}, 415),
    ],
)
async def test_bad_bodies(server: Server, kwargs: dict[str, Any], status: int) -> None:
    assert (await post(server, **kwargs))[0] == status


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}],
)  # fmt: skip
async def test_unknown_token_gets_401(server: Server, headers: dict[str, str]) -> None:
    status, body = await post(server, headers=headers, json={"email": "a@example.com"})
    assert status == 401
    assert "token" in body["error"]
    assert await Lead.all().count() == 0


async def test_api_is_disabled_without_a_token(server: Server, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:  # fmt: skip
    """With the token variable unset nobody gets in: 503 naming the variable."""
    monkeypatch.delenv("NURTURED_API_TOKEN")
    status, body = await post(server, json={"email": "a@example.com"})
    assert status == 503
    assert "NURTURED_API_TOKEN" in body["error"]


async def test_oversized_bodies_get_413(server: Server) -> None:
    """Over [http] max_body: 413, whether the length is declared or the body is chunked."""
    big = {"email": "a@example.com", "notes": "x" * (70 * 1024)}
    assert (await post(server, json=big))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.com", "notes": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    headers = {**AUTH, "Content-Type": "application/json"}
    assert (await post(server, headers=headers, data=chunks()))[0] == 413
    assert await Lead.all().count() == 0


async def test_consult_lead_is_kept_when_the_alert_fails(walk: Walk, server: Server) -> None:
    """The lead is committed first; a failed alert is recorded and reported, not lost."""
    walk.sink.fail_next("554 5.7.1 refused", at="data")
    status, body = await post(server, json={"email": "eve@example.com", "source": "consult"})
    assert (status, body["status"], body["alert"]) == (201, "sales", "failed")
    (event,) = await Event.filter(kind=EventKind.ALERT)
    assert event.data["error"]


async def test_a_suppressed_address_is_stored_but_neither_enrolled_nor_alerted(
    walk: Walk, server: Server
) -> None:
    """Suppression beats the API: no stream, and a consult request alerts nobody."""
    from nurtured.data import suppression

    await suppression.add([suppression.parse_entry("blocked.example")], MONDAY)
    status, body = await post(server, json={"email": "x@blocked.example", "interests": ["a"]})
    assert status == 201
    assert body["stream"] is None
    status, body = await post(server, json={"email": "y@blocked.example", "source": "consult"})
    assert status == 201
    assert "alert" not in body
    assert walk.sink.messages == []
