"""POST /api/leads: the lead intake API behind web forms.

Authorised by ``Authorization: Bearer <token>``, compared in constant time with the
value of the environment variable named by ``[intake] token_env``; while that variable
is unset or empty the API answers 503 (disabled) to everyone. The body is JSON (an
object) or a form (``application/x-www-form-urlencoded``), at most ``[http] max_body``
bytes (else 413), all in within ``[http] request_timeout`` (else 408). A body that is not
valid JSON (or nested too deeply for Python's parser) or not an object gets 400 with the
reason; bad fields get 422 ``{"errors": {"field": "reason", ...}}``, including a field
with a lone surrogate (``"\\ud800"``: no database stores it, no email carries it).

A lead is created or updated by its normalised email (201 created, 200 updated) through
the same ``intake.upsert`` as CSV imports, so new leads enroll by the streams' entry
rules. A lead whose source is one of ``[intake] sales_sources`` (a consult request) is
not nurtured: it gets the status "sales" and sales get an alert email at once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web
from tortoise.transactions import in_transaction

from nurtured.alerts import alert_sales
from nurtured.app import App, Runtime
from nurtured.data.consent import CONSENT_ERROR, parse_consent
from nurtured.enrollment import stop_lead
from nurtured.exceptions import LeadError
from nurtured.intake import (
    UNSTORABLE,
    LeadInput,
    make_input,
    normalise_email,
    printable,
    storable,
    upsert,
)
from nurtured.models import CURRENT, Enrollment, Lead, LeadStatus
from nurtured.timing import parse_timezone

log = logging.getLogger(__name__)

RUNTIME: Final = web.AppKey("runtime", Runtime)

MAX_FIELDS: Final = 50
SCALAR = (str, int, float, bool)
# Never taken from the request: they steer alerts or are set here.
RESERVED: Final = frozenset({"owner", "consent_at"})
STOPPABLE: Final = (LeadStatus.ACTIVE, LeadStatus.REPLIED)


class BodyTooLarge(Exception):
    pass


class BodyUnread(Exception):
    """The body never arrived whole: ``status`` and ``reason`` say why (a client that
    went away gets no answer, but the status is what the log says)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def authorise(
    request: web.Request, env_name: str, what: str = "the intake API"
) -> web.Response | None:
    """None when the bearer token matches; else the 503 or 401 answer."""
    expected = os.environ.get(env_name, "")
    if not expected:
        return _json_error(503, f"{what} is disabled: set {env_name} to enable it")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    )
    if ok:
        return None
    response = _json_error(401, "unknown or missing bearer token")
    response.headers["WWW-Authenticate"] = 'Bearer realm="nurtured"'
    return response


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, or BodyTooLarge as soon as it passes ``limit`` bytes, or
    BodyUnread when the client closes the connection before the end."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(16 * 1024):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
    except ConnectionError:
        expected = "?" if request.content_length is None else request.content_length
        raise BodyUnread(
            400, f"the client closed the connection after {size} of {expected} bytes"
        ) from None
    return b"".join(chunks)


async def read_body_in_time(request: web.Request, limit: int, seconds: float) -> bytes:
    """``read_body``, or BodyUnread (408) when the body is not all in after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            return await read_body(request, limit)
    except TimeoutError:
        raise BodyUnread(408, f"the body did not arrive within {seconds:g} seconds") from None


def parse_body(content_type: str, body: bytes) -> dict[str, object]:
    """JSON object or form fields; ValueError says what is wrong with the body itself."""
    if content_type == "application/json":
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"body is not valid JSON: not UTF-8 at byte {exc.start}") from exc
        except RecursionError as exc:  # json recurses per level: [[[[... 30,000 deep
            raise ValueError("body is not valid JSON here: nested too deeply") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is not valid JSON: {exc}") from exc
        except ValueError as exc:  # int() refuses a number of more than 4,300 digits
            raise ValueError("body is not valid JSON here: a number with too many digits") from exc
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return {str(k): v for k, v in data.items()}
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=MAX_FIELDS * 4)  # fmt: skip
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"body is not a valid form: {exc}") from exc
        form: dict[str, object] = {}
        for key, value in pairs:
            if key in ("interest", "interests"):
                previous = form.get("interests")
                form["interests"] = [*(previous if isinstance(previous, list) else []), value]
            else:
                form[key] = value
        return form
    raise ValueError("send application/json or application/x-www-form-urlencoded")


def check_fields(data: Mapping[str, object]) -> dict[str, str]:
    """A reason per bad field; make_input does the rest of the checking."""
    errors: dict[str, str] = {}
    if len(data) > MAX_FIELDS:
        errors["_body"] = f"at most {MAX_FIELDS} fields"
    for key, value in data.items():
        if not storable(key) or not storable(value):
            errors[printable(key)] = UNSTORABLE
        elif key in ("interest", "interests") and isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                errors[key] = "must be a string or a list of strings"
        elif value is not None and not isinstance(value, SCALAR):
            errors[key] = "must be a string"
        elif key in RESERVED:
            errors[key] = "cannot be set through the API"
    try:
        normalise_email(str(data.get("email") or ""))
    except LeadError as exc:
        errors.setdefault("email", str(exc).removeprefix("email: "))
    timezone = data.get("timezone")
    if isinstance(timezone, str) and timezone.strip() and "timezone" not in errors:
        try:
            parse_timezone(timezone.strip())
        except ValueError as exc:
            errors["timezone"] = str(exc)
    consent = data.get("consent")
    if consent is not None and parse_consent(consent) is None:
        errors.setdefault("consent", CONSENT_ERROR)
    return errors


def lead_input(data: Mapping[str, object], now: datetime) -> LeadInput:
    """The LeadInput for checked fields; consent goes into the lead's fields with its time."""
    row = dict(data)
    if "consent" in row:
        row["consent"] = "yes" if parse_consent(row["consent"]) else "no"
        row["consent_at"] = now.isoformat()
    return make_input(row)


async def save_lead(
    app: App, item: LeadInput, now: datetime, *, sales: bool
) -> tuple[Lead, bool, str | None]:
    """Upsert one lead (and hand it to sales if asked); (lead, created, current stream).

    A lead that said no to marketing email (``consent: no``) is kept but never nurtured:
    it is unsubscribed at once (sales may still contact one who asked them to).
    """
    refused = item.extra.get("consent") == "no"
    async with in_transaction():
        report, (lead,) = await upsert(
            [item], app.catalog, app.rules, now, enroll=not (sales or refused),
            suppression=app.settings.suppression, app=app,
        )  # fmt: skip
        if sales and lead.status in STOPPABLE and not report.suppressed:
            await stop_lead(lead, LeadStatus.SALES, now, reason=f"sales request ({item.source})")
        elif refused and lead.status == LeadStatus.ACTIVE:
            await stop_lead(lead, LeadStatus.UNSUBSCRIBED, now, reason="no consent to email")
        current = await Enrollment.filter(lead_id=lead.id, state__in=CURRENT).first()
    return lead, report.created > 0, current.stream_id if current else None


async def post_lead(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    app = runtime.app  # read per request: the daemon swaps it on reload
    denied = authorise(request, app.settings.intake.token_env)
    if denied is not None:
        return denied
    http = app.settings.http
    seconds = http.request_timeout.total_seconds()
    try:
        body = await read_body_in_time(request, http.max_body, seconds)
    except BodyTooLarge:
        return _json_error(413, f"body larger than {http.max_body} bytes")
    except BodyUnread as exc:
        log.info("intake: %s from %s: %s", exc.status, request.remote, exc.reason)
        response = _json_error(exc.status, exc.reason)
        response.force_close()  # the rest of the body is not worth waiting for
        return response
    try:
        data = parse_body(request.content_type, body)
    except ValueError as exc:
        status = 415 if "send application" in str(exc) else 400
        return _json_error(status, str(exc))
    errors = check_fields(data)
    now = runtime.clock()
    if not errors:
        try:
            item = lead_input(data, now)
        except LeadError as exc:
            field, _, reason = str(exc).partition(": ")
            errors[field if reason else "_body"] = reason or field
    if errors:
        return web.json_response({"errors": errors}, status=422)

    sales = item.source in {s.lower() for s in app.settings.intake.sales_sources}
    lead, created, stream = await save_lead(app, item, now, sales=sales)
    sales = sales and lead.status == LeadStatus.SALES  # not a suppressed address
    answer: dict[str, Any] = {"id": lead.id, "email": lead.email, "status": str(lead.status),
                              "stream": stream, "created": created}  # fmt: skip
    if sales:
        try:
            await alert_sales(app, runtime.transport, lead.id, "consult", now,
                              text=str(data.get("message") or ""))  # fmt: skip
            answer["alert"] = "sent"
        except Exception:  # recorded by alert_sales as an ALERT event with its error
            log.exception("consult request from %s: the sales alert failed", lead.email)
            answer["alert"] = "failed"
    log.info("intake: lead %s %s (source %r, stream %s)", lead.email,
             "created" if created else "updated", item.source, stream)  # fmt: skip
    return web.json_response(answer, status=201 if created else 200)


def add_routes(web_app: web.Application) -> None:
    web_app.router.add_post("/api/leads", post_lead)
