"""The tracking server (aiohttp): signed click redirects, the open pixel, unsubscribe,
plus the intake API (api.py), /healthz and /metrics.

Routes:

    GET  /c/<token>       302 to the URL stored for that link when the email was rendered
    GET  /o/<token>.gif   a 1x1 transparent GIF
    GET  /u/<token>       a page with a confirm button; it changes nothing
    POST /u/<token>       unsubscribes at once (the page's form and RFC 8058 one-click)
    POST /api/leads       lead intake (api.py)
    GET  /healthz         "ok" when the database answers, else 503
    GET  /metrics         Prometheus text format (metrics.py)
    GET  /report          the report page, behind a bearer token (report/web.py)

Tokens are verified (HMAC, constant time) before anything else; an altered, forged or
truncated token gets 404 and nothing is recorded. A click never redirects anywhere but
to its stored Link.url: the URL is not in the request at all, and the delivery and its
links come from the database (kept in memory afterwards by clicks.SentCache, keyed by
the verified token; stored links never change).

Clicks and opens are classified by bots.py and handed to one background writer
(clicks.SignalWriter), which records them through reactions.react in group commits:
everything waiting goes into one transaction. The redirect or pixel is answered without
waiting for that commit: it acknowledges nothing (the visitor is owed their page, not a
receipt), and waiting would cost every click a transaction. What that means:

- stopping the server (SIGTERM, ``runner.cleanup()``) commits every signal waiting after
  the last request is answered, so after a clean stop the click events equal the
  redirects answered;
- a crash (kill -9, power loss) loses the signals answered but not yet committed: never
  more than ``clicks.WAITING_SIGNALS`` (1,000), under load a fraction of a second's worth;
- when that many wait, handlers wait for room (back-pressure): nothing is dropped;
- a failed batch is tried again signal by signal; a signal that still fails is logged
  and the visitor has their page anyway.

No log line holds a token: the access log (INFO on ``nurtured.access``) shows ``/c/…``,
``/o/…`` and ``/u/…``, and redact.guard_logs filters the SQL the drivers log at DEBUG. A
request aiohttp cannot parse is one WARNING line (httplog.ServerLog).

Unsubscribing (POST /u/) is not batched: it is committed before the answer goes out, and
a failure is a 500, so the sender of a one-click request retries. The App is read from
the Runtime on every request, so a reload takes effect at once.
"""

from __future__ import annotations

import asyncio
import base64
import html
import logging
from collections.abc import Awaitable
from typing import Any, Final

from aiohttp import web
from aiohttp.log import server_logger
from tortoise import connections

from nurtured import api, metrics
from nurtured.alerts import alert_sales
from nurtured.api import RUNTIME
from nurtured.app import Runtime
from nurtured.bots import BurstWindow, Verdict, classify_click, classify_open
from nurtured.clicks import SentCache, SignalWriter, Verified
from nurtured.httplog import ACCESS_LOG, AccessLog, ServerLog
from nurtured.models import Delivery, EventKind, Lead, LeadStatus
from nurtured.reactions import Outcome, Signal, react
from nurtured.redact import guard_logs
from nurtured.report import web as report_web

log = logging.getLogger(__name__)

BURSTS: Final = web.AppKey("bursts", BurstWindow)
TASKS: Final[web.AppKey[set[asyncio.Task[None]]]] = web.AppKey("tasks")
SENT: Final = web.AppKey("sent", SentCache)
WRITER: Final = web.AppKey("writer", SignalWriter)
VERIFIED: Final = web.AppKey("verified", Verified)

PIXEL: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE: Final = {
    "Cache-Control": "no-store, max-age=0",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
PAGE_HEADERS: Final = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
UA_LIMIT: Final = 300


def _not_found() -> web.Response:
    return web.Response(status=404, text="not found\n", headers=NO_STORE)


def _user_agent(request: web.Request) -> str:
    return request.headers.get("User-Agent", "")[:UA_LIMIT]


async def _delivery(request: web.Request, kind: str, token: str) -> Delivery | None:
    """The delivery a verified token names, or None for any bad or unknown token."""
    parts = request.app[RUNTIME].app.signer.verify(kind, token)
    if parts is None:
        return None
    return await Delivery.get_or_none(token=parts[0])


def _spawn(web_app: web.Application, job: Awaitable[None]) -> None:
    async def run() -> None:
        await job

    task = asyncio.create_task(run())
    web_app[TASKS].add(task)
    task.add_done_callback(web_app[TASKS].discard)


def _after(web_app: web.Application, outcome: Outcome) -> None:
    """What a recorded signal asks for after the commit: a sales alert, in the background."""
    if outcome.alert:
        _spawn(web_app, _alert(web_app[RUNTIME], outcome))


async def _alert(runtime: Runtime, outcome: Outcome) -> None:
    assert outcome.alert is not None
    try:
        await alert_sales(runtime.app, runtime.transport, outcome.signal.lead_id, outcome.alert,
                          runtime.clock())  # fmt: skip
    except Exception:  # alert_sales recorded the failure as an ALERT event
        log.exception("lead %d: sales alert (%s) failed", outcome.signal.lead_id, outcome.alert)


def _data(request: web.Request, verdict: Verdict, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"user_agent": _user_agent(request), **extra}
    if request.method != "GET":
        data["method"] = request.method
    if verdict.reason:
        data["reason"] = verdict.reason
    return data


async def click(request: web.Request) -> web.StreamResponse:
    web_app = request.app
    runtime = web_app[RUNTIME]
    parts = web_app[VERIFIED].verify(runtime.app.signer, "c", request.match_info["token"])
    if parts is None or len(parts) != 2 or not parts[1].isdigit():
        return _not_found()
    sent = await web_app[SENT].get(parts[0])
    index = int(parts[1])
    link = sent.links.get(index) if sent is not None else None
    if sent is None or link is None or not link.safe:
        return _not_found()
    now = runtime.clock()
    bots = runtime.app.settings.bots
    burst = web_app[BURSTS].observe(sent.delivery_id, index, len(sent.links), now, bots.burst)
    verdict = classify_click(
        method=request.method,
        user_agent=_user_agent(request),
        at=now,
        sent_at=sent.sent_at,
        click_grace=bots.click_grace,
        extra_agents=bots.scanner_agents,
        burst=burst,
    )
    data = _data(request, verdict, url=link.url, link=index)
    await web_app[WRITER].put(Signal(sent.lead_id, EventKind.CLICK, now, sent.delivery_id,
                                     tag=link.tag, machine=verdict.machine, data=data))  # fmt: skip
    return web.Response(status=302, headers={"Location": link.url, **NO_STORE})


async def pixel(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    web_app = request.app
    runtime = web_app[RUNTIME]
    token = name.removesuffix(".gif")
    parts = web_app[VERIFIED].verify(runtime.app.signer, "o", token) if token != name else None
    sent = await web_app[SENT].get(parts[0]) if parts else None
    if sent is None:
        return _not_found()
    now = runtime.clock()
    bots = runtime.app.settings.bots
    verdict = classify_open(
        method=request.method,
        user_agent=_user_agent(request),
        remote=request.remote,
        at=now,
        sent_at=sent.sent_at,
        click_grace=bots.click_grace,
        extra_agents=bots.scanner_agents,
    )
    signal = Signal(sent.lead_id, EventKind.OPEN, now, sent.delivery_id, machine=verdict.machine,
                    data=_data(request, verdict))  # fmt: skip
    await web_app[WRITER].put(signal)
    return web.Response(body=PIXEL, content_type="image/gif", headers=NO_STORE)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    """A small HTML page; ``body`` is markup made here, with every input escaped."""
    text = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;max-width:32em;margin:3em auto;'
        f'padding:0 1em;line-height:1.5">\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n'
    )
    return web.Response(text=text, status=status, content_type="text/html", headers=PAGE_HEADERS)


async def unsubscribe_page(request: web.Request) -> web.StreamResponse:
    """GET: a confirm button only; a link scanner's GET unsubscribes nobody."""
    delivery = await _delivery(request, "u", request.match_info["token"])
    if delivery is None:
        return _not_found()
    lead = await Lead.get(id=delivery.lead_id)
    if lead.status == LeadStatus.UNSUBSCRIBED:
        return _page("You are unsubscribed", f"<p>{html.escape(lead.email)} gets no more emails "
                     "from us.</p>")  # fmt: skip
    action = html.escape(request.path, quote=True)
    form = (
        f"<p>Stop all emails to <strong>{html.escape(lead.email)}</strong>?</p>\n"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit" style="font-size:1.1em;padding:.5em 1.2em">Unsubscribe</button>'
        "</form>"
    )
    return _page("Unsubscribe", form)


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    """POST: unsubscribe at once (RFC 8058 one-click, or the page's button); idempotent."""
    delivery = await _delivery(request, "u", request.match_info["token"])
    if delivery is None:
        return _not_found()
    runtime = request.app[RUNTIME]
    lead = await Lead.get(id=delivery.lead_id)
    if lead.status != LeadStatus.UNSUBSCRIBED:
        signal = Signal(lead.id, EventKind.UNSUBSCRIBE, runtime.clock(), delivery.id,
                        data={"via": "web", "user_agent": _user_agent(request)})  # fmt: skip
        await react(runtime.app, [signal])  # must not fail silently: a 500 makes them retry
        log.info("lead %s unsubscribed (delivery %s)", lead.email, delivery.content_id)
    return _page("You are unsubscribed", f"<p>{html.escape(lead.email)} gets no more emails "
                 "from us.</p>")  # fmt: skip


async def healthz(request: web.Request) -> web.StreamResponse:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:
        log.warning("healthz: database unreachable: %s", exc)
        return web.Response(status=503, text="database unreachable\n", headers=NO_STORE)
    return web.Response(text="ok\n", headers=NO_STORE)


async def metrics_page(request: web.Request) -> web.StreamResponse:
    text = await metrics.render(request.app[RUNTIME].clock())
    response = web.Response(text=text, headers=NO_STORE)
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    return response


async def _start_writer(web_app: web.Application) -> None:
    web_app[WRITER].start()


async def _finish(web_app: web.Application) -> None:
    """On stopping, after the last request: commit every signal waiting, then let the
    alerts they asked for go out."""
    await web_app[WRITER].close()
    pending = web_app[TASKS]
    tasks = list(pending)
    if tasks:
        await asyncio.wait(tasks, timeout=30)


def make_web_app(runtime: Runtime) -> web.Application:
    """The aiohttp application: tracking routes, the intake API, health and metrics."""
    web_app = web.Application(client_max_size=runtime.app.settings.http.max_body)
    web_app[RUNTIME] = runtime
    web_app[BURSTS] = BurstWindow()
    web_app[TASKS] = set()
    web_app[SENT] = SentCache()
    web_app[VERIFIED] = Verified()
    web_app[WRITER] = SignalWriter(runtime, lambda outcome: _after(web_app, outcome))
    router = web_app.router
    router.add_get("/c/{token}", click)  # add_get answers HEAD too: a machine click
    router.add_get("/o/{name}", pixel)
    router.add_get("/u/{token}", unsubscribe_page)
    router.add_post("/u/{token}", unsubscribe)
    router.add_get("/healthz", healthz)
    router.add_get("/metrics", metrics_page)
    api.add_routes(web_app)
    report_web.add_routes(web_app)
    web_app.on_startup.append(_start_writer)
    web_app.on_cleanup.append(_finish)
    return web_app


async def start_server(runtime: Runtime, *, listen: tuple[str, int] | None = None) -> web.AppRunner:
    """Serve on ``listen`` (default ``[http] listen``; port 0 picks a free port, see
    ``bound_port``). Stop it with ``await runner.cleanup()``."""
    http = runtime.app.settings.http
    host, port = listen or http.listen
    guard_logs()  # the paths and the queries carry click and unsubscribe tokens
    # keepalive_timeout runs from the connection's start (and from each answer) until a
    # request's headers are all in: aiohttp's limit for a client that sends half a
    # request and waits.
    runner = web.AppRunner(
        make_web_app(runtime),
        shutdown_timeout=5,
        keepalive_timeout=http.request_timeout.total_seconds(),
        access_log_class=AccessLog,
        access_log=ACCESS_LOG,
        logger=ServerLog(server_logger),
    )
    await runner.setup()
    # With arq, several `nurtured run` on one machine may share the port (the kernel
    # spreads the connections); each is stateless, so any of them answers any request.
    shared = runtime.app.settings.queue.backend == "arq"
    site = web.TCPSite(runner, host, port, reuse_port=shared or None)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the server listens on (useful when it was started on port 0)."""
    address: Any = runner.addresses[0]
    return int(address[1])
