"""Machine or human: the pure classification of clicks and opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nurtured.bots import BurstWindow, Verdict, classify_click, classify_open, scanner_agent

SENT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LATER = SENT + timedelta(hours=1)
GRACE = timedelta(seconds=5)
SECOND = timedelta(seconds=1)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def click(**overrides: object) -> Verdict:
    args: dict[str, object] = {"method": "GET", "user_agent": CHROME, "at": LATER,
                               "sent_at": SENT, "click_grace": GRACE}  # fmt: skip
    return classify_click(**(args | overrides))  # type: ignore[arg-type]


def open_(**overrides: object) -> Verdict:
    args: dict[str, object] = {"method": "GET", "user_agent": CHROME, "remote": "203.0.113.7",
                               "at": LATER, "sent_at": SENT, "click_grace": GRACE}  # fmt: skip
    return classify_open(**(args | overrides))  # type: ignore[arg-type]


def test_browser_click_after_grace_is_human() -> None:
    assert click() == Verdict(False)
    assert click(user_agent=IPHONE) == Verdict(False)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"method": "HEAD"}, "head"),
        ({"method": "head"}, "head"),
        ({"at": SENT + timedelta(seconds=4)}, "early"),
        ({"at": SENT - timedelta(seconds=30)}, "early"),  # before the send: a clock skew
        ({"sent_at": None}, "early"),  # never sent, yet clicked
        ({"user_agent": ""}, "agent"),
        ({"user_agent": "Mozilla/5.0"}, "agent"),
        ({"user_agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"}, "agent"),
        ({"user_agent": "Microsoft Office Existence Discovery"}, "agent"),
        ({"user_agent": "Mozilla/5.0 (compatible; bingbot/2.0)"}, "agent"),
        ({"user_agent": "curl/8.5.0"}, "agent"),
        ({"user_agent": "Go-http-client/1.1"}, "agent"),
        ({"burst": True}, "burst"),
    ],
)
def test_machine_clicks(overrides: dict[str, object], reason: str) -> None:
    assert click(**overrides) == Verdict(True, reason)


def test_configured_agents_are_matched_case_insensitively() -> None:
    ua = "Mozilla/5.0 AcmeGateway/3"
    assert not scanner_agent(ua)
    assert scanner_agent(ua, ["acmegateway"])
    assert click(user_agent=ua, extra_agents=["ACMEGATEWAY"]) == Verdict(True, "agent")
    assert not scanner_agent(ua, [""])  # an empty entry matches nothing


def test_click_at_exactly_the_grace_is_human() -> None:
    assert click(at=SENT + GRACE) == Verdict(False)


@pytest.mark.parametrize(
    ("overrides", "machine"),
    [
        ({}, False),
        ({"user_agent": IPHONE, "remote": "17.58.100.1"}, False),  # Safari on Apple's network
        ({"user_agent": "Mozilla/5.0", "remote": "17.58.100.1"}, True),  # Mail Privacy Prot.
        ({"user_agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"}, True),
        ({"user_agent": "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy"}, True),
        ({"user_agent": "Mozilla/5.0"}, False),  # a bare agent elsewhere: give it the benefit
        ({"remote": "not an address"}, False),
        ({"remote": None}, False),
        ({"method": "HEAD"}, True),
        ({"at": SENT + SECOND}, True),
        ({"user_agent": "python-requests/2.32"}, True),
    ],
)
def test_open_classification(overrides: dict[str, object], machine: bool) -> None:
    assert open_(**overrides).machine is machine


def test_burst_needs_every_link_within_the_window() -> None:
    """Three links hit within a second: the third hit is the burst, and so is every later
    hit while the scanner keeps going; a hit after a quiet window is human again."""
    window = BurstWindow()
    t = LATER
    assert not window.observe(1, 0, 3, t, SECOND)
    assert not window.observe(1, 1, 3, t + timedelta(milliseconds=300), SECOND)
    assert window.observe(1, 2, 3, t + timedelta(milliseconds=600), SECOND)
    assert window.observe(1, 0, 3, t + timedelta(milliseconds=900), SECOND)
    assert not window.observe(1, 0, 3, t + timedelta(seconds=10), SECOND)


def test_slow_clicks_on_every_link_are_no_burst() -> None:
    window = BurstWindow()
    for i in range(3):
        assert not window.observe(1, i, 3, LATER + i * 2 * SECOND, SECOND)


def test_one_link_emails_never_burst_and_deliveries_are_separate() -> None:
    window = BurstWindow()
    assert not window.observe(1, 0, 1, LATER, SECOND)
    assert not window.observe(1, 0, 1, LATER, SECOND)
    assert not window.observe(2, 0, 2, LATER, SECOND)
    assert not window.observe(3, 1, 2, LATER, SECOND)  # another delivery's other link


def test_burst_window_is_bounded() -> None:
    window = BurstWindow(capacity=2)
    window.observe(1, 0, 2, LATER, SECOND)
    window.observe(2, 0, 2, LATER, SECOND)
    window.observe(3, 0, 2, LATER, SECOND)  # forgets delivery 1
    assert not window.observe(1, 1, 2, LATER, SECOND)
    assert window.observe(3, 1, 2, LATER, SECOND)
