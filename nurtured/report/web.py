"""GET /report: the report page, served by the daemon behind a bearer token.

The token is the value of the environment variable named by ``[report] token_env``, else
by ``[intake] token_env``; neither set: 503 (disabled). A wrong or missing token: 401.
``?since=`` and ``?until=`` (ISO date-times) pick the period, as on the command line; a
bad one is 400. A failure while building the page is logged and answered 503, never 500.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiohttp import web

from nurtured.api import RUNTIME, authorise
from nurtured.cli_base import aware
from nurtured.exceptions import NurturedError
from nurtured.report.command import period_of

log = logging.getLogger(__name__)

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}  # fmt: skip


def _when(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    return None if value is None else aware(datetime.fromisoformat(value))


async def report_page(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    app = runtime.app  # read per request: the daemon swaps it on reload
    settings = app.settings
    denied = authorise(request, settings.report.token_env or settings.intake.token_env,
                       "the report page")  # fmt: skip
    if denied is not None:
        return denied
    try:
        since, until = _when(request, "since"), _when(request, "until")
        period = period_of(since, until, runtime.clock(), settings.report.period)
    except (ValueError, NurturedError) as exc:
        return web.Response(status=400, text=f"bad period: {exc}\n", headers=HEADERS)
    from nurtured.report import build

    try:
        data = await build.build(app, period)
        page = await asyncio.to_thread(build.html, data)
    except Exception:  # the page is a view: a failure must not take the server's answer
        log.exception("GET /report: building the report failed")
        return web.Response(status=503, text="the report could not be built: see the log\n",
                            headers=HEADERS)  # fmt: skip
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=HEADERS)


def add_routes(web_app: web.Application) -> None:
    web_app.router.add_get("/report", report_page)
