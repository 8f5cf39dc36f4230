"""The report page: GET /report behind its bearer token, and the page in a real headless
Chromium (Debian's ``chromium``, driven by playwright): no console errors, every chart
drawn, a screenshot that is not blank, nothing fetched from the network."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from nurtured.report import build
from tests.test_reports import LATER, WEEK, scenario
from tests.test_tracking import Server, serving
from tests.walk import Walk

TOKEN = "s3cret-report-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = "/usr/bin/chromium"
CHARTS = ("chart-funnel", "chart-rates", "chart-before")


@pytest.fixture
async def server(walk: Walk, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.setenv("NURTURED_API_TOKEN", TOKEN)
    async with serving(walk.app, walk.transport, now=LATER) as server:
        yield server


def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.fail("Debian's chromium is not installed: apt-get install chromium (.ci/run does)")
    return found


async def test_the_page_needs_the_token(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """401 without or with a wrong token; [report] token_env unset: the intake token; no
    token configured at all: 503; a bad period: 400. Never a 500."""
    assert (await server.request("GET", "/report"))[0] == 401
    wrong = await server.request("GET", "/report", headers={"Authorization": "Bearer nope"})
    assert wrong[0] == 401
    assert (await server.request("GET", "/report", headers={"Authorization": TOKEN}))[0] == 401
    status, headers, body = await server.request("GET", "/report", headers=AUTH)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/html")
    assert b"<svg" in body
    bad = await server.request("GET", "/report?since=yesterday", headers=AUTH)
    assert bad[0] == 400
    backwards = await server.request("GET", "/report?since=2026-12-01&until=2026-11-01",
                                     headers=AUTH)  # fmt: skip
    assert backwards[0] == 400
    monkeypatch.delenv("NURTURED_API_TOKEN")
    status, _, body = await server.request("GET", "/report", headers=AUTH)
    assert status == 503
    assert b"NURTURED_API_TOKEN" in body


async def test_a_separate_report_token(walk: Walk, monkeypatch: pytest.MonkeyPatch) -> None:
    """[report] token_env names another variable: only its token opens the page."""
    from dataclasses import replace

    settings = walk.app.settings
    report = settings.report.model_copy(update={"token_env": "NURTURED_REPORT_TOKEN"})
    app = replace(walk.app, settings=replace(settings, report=report))
    monkeypatch.setenv("NURTURED_API_TOKEN", TOKEN)
    monkeypatch.setenv("NURTURED_REPORT_TOKEN", "other")
    async with serving(app, walk.transport) as server:
        assert (await server.request("GET", "/report", headers=AUTH))[0] == 401
        ok = await server.request("GET", "/report", headers={"Authorization": "Bearer other"})
        assert ok[0] == 200


async def test_a_failing_build_is_503_not_500(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that cannot be built (here: a query that fails) is logged and answered 503."""

    async def broken(*_: object) -> object:
        raise RuntimeError("database went away")

    monkeypatch.setattr(build, "build", broken)
    status, _, body = await server.request("GET", "/report", headers=AUTH)
    assert (status, body) == (503, b"the report could not be built: see the log\n")


def test_the_page_is_self_contained() -> None:
    """No script, and no address the browser would fetch (only SVG namespace names)."""
    sales = {"stages": {}, "mql_lacking": {}, "handoffs": {}, "sla": {}, "revenue": {"won": 0}}
    page = build.html({**_empty_core(), "sales": sales})
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert "@import" not in page


def _empty_core() -> dict[str, object]:
    from nurtured.report import shape

    return {"since": "a", "until": "b", "funnel": shape.funnel([]),
            "emails": shape.email_row([0] * 8), "by_stream": {}, "by_step": {},
            "by_source": {}, "by_day": {}, "bounces": shape.bounces([]),
            "before": shape.before([]), "last_touch": shape.attribution([]),
            "paths": shape.attribution([])}  # fmt: skip


async def test_the_page_in_chromium(server: Server, walk: Walk, tmp_path: Path) -> None:
    """Served by the daemon and opened in headless Chromium: no console errors, no
    request but the page itself, three charts drawn with a size, a screenshot with
    content (written to tmp; docs/report.png is one of these)."""
    from playwright.async_api import async_playwright

    executable = chromium()
    await scenario(walk)
    url = f"{server.base}/report?since={WEEK.since.isoformat()}&until={WEEK.until.isoformat()}"
    problems: list[str] = []
    requests: list[str] = []
    shot = tmp_path / "report.png"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable,
                                           args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                                extra_http_headers=AUTH)  # fmt: skip
            page = await context.new_page()
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)  # fmt: skip
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            response = await page.goto(url.replace("+", "%2B"), wait_until="load")
            assert response is not None
            assert response.status == 200
            for chart in CHARTS:
                box = await page.locator(f"svg#{chart}").bounding_box()
                assert box is not None, chart
                assert (box["width"] > 100, box["height"] > 50) == (True, True), chart
                shapes = await page.locator(f"svg#{chart} path").count()
                assert shapes > 5, chart
            assert await page.locator("text=intro > a1").count() >= 1
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    assert problems == []
    assert [r for r in requests if not r.startswith(server.base + "/report")] == []
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 50  # not a blank (or one-colour) page
