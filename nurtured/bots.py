"""Machine or human? Clicks and opens that scanners and image proxies make.

Pure: no I/O and no clock; the time of each request is passed in. A machine signal is
still recorded (with the reason), but never scored and never acted on.

Clicks are machine when they are HEAD requests, come within ``click_grace`` of the
delivery being sent, carry a known scanner user agent (or none), or complete a burst:
every link of one email hit within ``burst``. A burst is only known once its last link
is hit, so the clicks before that one count as human; every later click on that email
inside the burst window is machine. ``BurstWindow`` keeps this state in memory, per
delivery, for one process (the one tracking server).

Opens are machine when an image proxy fetches the pixel: Gmail's and Yahoo's proxies
say so in the user agent; Apple Mail Privacy Protection fetches from Apple's own
network (17.0.0.0/8) with a bare user agent.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

# Lower-case substrings of user agents that only machines send.
SCANNER_AGENTS: Final = (
    "barracuda", "mimecast", "proofpoint", "ironport", "fortiguard", "sophos",
    "trendmicro", "trend micro", "symantec", "messagelabs", "forcepoint", "zscaler",
    "safelinks", "microsoft office existence discovery", "ms-office", "bingpreview",
    "skypeuripreview", "facebookexternalhit", "slackbot", "linkedinbot", "twitterbot",
    "whatsapp", "telegrambot", "discordbot", "googlebot", "google-safety", "headlesschrome",
    "phantomjs", "python-requests", "python-urllib", "aiohttp", "httpx", "curl/", "wget/",
    "go-http-client", "java/", "okhttp", "libwww-perl", "apache-httpclient", "urlscan",
    "virustotal", "paloalto", "cisco", "checkpoint", "spamassassin",
)  # fmt: skip
_BOT_WORD = re.compile(r"(bot|crawler|spider|scanner|preview|checker)\b", re.IGNORECASE)

IMAGE_PROXY_AGENTS: Final = ("googleimageproxy", "ggpht.com", "yahoomailproxy", "via ggpht")
APPLE_NETWORK: Final = ipaddress.ip_network("17.0.0.0/8")
BARE_AGENTS: Final = frozenset({"", "mozilla/5.0"})


@dataclass(frozen=True)
class Verdict:
    machine: bool
    reason: str | None = None  # why a machine: "head", "early", "agent", "burst", "proxy"


HUMAN: Final = Verdict(False)


def scanner_agent(user_agent: str, extra: Iterable[str] = ()) -> bool:
    """A user agent that only a scanner, crawler, preview fetcher or script sends."""
    return _scanner_agent(user_agent, tuple(extra))


@functools.lru_cache(maxsize=1024)  # few distinct agents click; each costs ~60 searches
def _scanner_agent(user_agent: str, extra: tuple[str, ...]) -> bool:
    ua = user_agent.strip().lower()
    if ua in BARE_AGENTS:
        return True
    if any(s in ua for s in SCANNER_AGENTS) or any(s.lower() in ua for s in extra if s):
        return True
    return _BOT_WORD.search(ua) is not None


def classify_click(
    *,
    method: str,
    user_agent: str,
    at: datetime,
    sent_at: datetime | None,
    click_grace: timedelta,
    extra_agents: Iterable[str] = (),
    burst: bool = False,
) -> Verdict:
    """A click's verdict; ``burst`` is what ``BurstWindow.observe`` said about it."""
    if method.upper() == "HEAD":
        return Verdict(True, "head")
    if sent_at is None or at - sent_at < click_grace:
        return Verdict(True, "early")
    if scanner_agent(user_agent, extra_agents):
        return Verdict(True, "agent")
    if burst:
        return Verdict(True, "burst")
    return HUMAN


def classify_open(
    *,
    method: str,
    user_agent: str,
    remote: str | None,
    at: datetime,
    sent_at: datetime | None,
    click_grace: timedelta,
    extra_agents: Iterable[str] = (),
) -> Verdict:
    """An open's verdict: image proxies, prefetches at delivery, and scanners are machines."""
    ua = user_agent.strip().lower()
    if method.upper() == "HEAD":
        return Verdict(True, "head")
    if any(p in ua for p in IMAGE_PROXY_AGENTS):
        return Verdict(True, "proxy")
    if _apple_network(remote) and "safari" not in ua:
        return Verdict(True, "proxy")
    if sent_at is None or at - sent_at < click_grace:
        return Verdict(True, "early")
    if ua not in BARE_AGENTS and scanner_agent(ua, extra_agents):
        return Verdict(True, "agent")
    return HUMAN


def _apple_network(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote) in APPLE_NETWORK
    except ValueError:
        return False


@dataclass
class _Recent:
    hits: dict[int, datetime] = field(default_factory=dict)  # link index -> last hit
    burst_until: datetime | None = None


class BurstWindow:
    """Recent clicks per delivery: says when one completes "every link within ``burst``".

    Bounded: at most ``capacity`` deliveries are remembered, the least recently clicked
    forgotten first.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._recent: OrderedDict[int, _Recent] = OrderedDict()

    def observe(
        self, delivery: int, link: int, links: int, at: datetime, window: timedelta
    ) -> bool:
        """Record a hit on ``link`` of ``delivery`` (which has ``links`` links) at ``at``;
        True if it is part of a burst found so far."""
        recent = self._recent.pop(delivery, None) or _Recent()
        self._recent[delivery] = recent
        while len(self._recent) > self.capacity:
            self._recent.popitem(last=False)
        recent.hits = {i: t for i, t in recent.hits.items() if abs(at - t) <= window}
        recent.hits[link] = at
        if recent.burst_until is not None and at <= recent.burst_until:
            recent.burst_until = at + window  # a scanner still at work extends its burst
            return True
        if links >= 2 and len(recent.hits) >= links:
            recent.burst_until = at + window
            return True
        return False
