"""The report page's charts: matplotlib figures rendered by its SVG backend to strings,
inlined in the page (text kept as text, no fonts or images fetched, no date stamped).

matplotlib's settings are process-wide, so rendering holds a lock; the daemon renders in
a thread (``asyncio.to_thread``) to keep the event loop free.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nurtured.report.shape import RATES, STAGES

_LOCK = threading.Lock()
COLORS = ("#2b6cb0", "#2f855a", "#c05621", "#9b2c2c", "#6b46c1")
_RC: Any = {"svg.fonttype": "none", "font.family": "sans-serif", "font.size": 10,
       "axes.spines.top": False, "axes.spines.right": False}  # fmt: skip


def _svg(fig: Figure, name: str) -> str:
    """The figure as an inline <svg> element; ``name`` seeds its ids, so that two charts
    on one page never share one."""
    buffer = io.StringIO()
    salted: Any = {**_RC, "svg.hashsalt": name}
    with matplotlib.rc_context(salted):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    return svg.replace("<svg ", f'<svg class="chart" id="chart-{name}" role="img" ', 1)


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def funnel_chart(total: Mapping[str, int]) -> str:
    """Leads per stage, widest first: how far leads got."""
    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.2))
        ax = fig.subplots()
        stages = list(reversed(STAGES))
        values = [total.get(s, 0) for s in stages]
        bars = ax.barh(stages, values, color=COLORS[0])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.bar_label(bars, padding=3)
        ax.set_xlabel("leads (distinct)")
        ax.set_title("Funnel: leads per stage")
        if not any(values):
            ax.text(0.5, 0.5, "no leads in this period", ha="center", transform=ax.transAxes)
        return _svg(fig, "funnel")


def rates_chart(by_day: Mapping[str, Mapping[str, Any]]) -> str:
    """Per day of sending: the share of that day's emails opened (by people), clicked,
    replied to, unsubscribed from; emails sent as grey bars behind."""
    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.2))
        ax = fig.subplots()
        ax.set_title("Rates per email sent, by day sent")
        days = list(by_day)
        if not days:
            _empty(ax, "nothing sent in this period")
            return _svg(fig, "rates")
        x = range(len(days))
        sent = ax.twinx()
        sent.bar(x, [by_day[d]["sent"] for d in days], color="#e2e8f0", zorder=0)
        sent.set_ylabel("emails sent")
        sent.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_zorder(sent.get_zorder() + 1)
        ax.patch.set_visible(False)
        for color, rate in zip(COLORS, [r for r in RATES if r != "bounce"], strict=False):
            values = [(by_day[d]["rates"][rate] or 0) * 100 for d in days]
            ax.plot(x, values, marker="o", color=color, label=rate)
        ax.set_ylabel("% of emails sent")
        ax.set_xticks(list(x), _labels(days), rotation=45, ha="right")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        return _svg(fig, "rates")


def _labels(days: Sequence[str]) -> list[str]:
    step = max(1, len(days) // 12)  # at most about 12 labels
    return [d[5:] if i % step == 0 else "" for i, d in enumerate(days)]


def before_chart(before: Mapping[str, Mapping[str, Any]]) -> str:
    """How many emails leads had been sent before their handoff (and before a win)."""
    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.2))
        ax = fig.subplots()
        ax.set_title("Emails before handoff")
        shown = [k for k in ("handoff", "won") if before.get(k, {}).get("outcomes")]
        if not shown:
            _empty(ax, "no handoffs in this period")
            return _svg(fig, "before")
        emails = sorted({int(e) for k in shown for e in before[k]["distribution"]})
        width = 0.8 / len(shown)
        for i, kind in enumerate(shown):
            spread = before[kind]["distribution"]
            ax.bar([e + i * width for e in emails], [spread.get(str(e), 0) for e in emails],
                   width=width, color=COLORS[i], label=kind)  # fmt: skip
        ax.set_xticks([e + width * (len(shown) - 1) / 2 for e in emails], [str(e) for e in emails])
        ax.set_xlabel("emails sent before")
        ax.set_ylabel("leads")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
        return _svg(fig, "before")
