"""The split-test report: per variant of each split step, emails sent, opened (by a
human), clicked (by a human) and replied, their rates per email sent, and the two-sided
z-test p-value of each variant against the leader on the step's metric (the winner
rule's, else clicks). A section of its own: ``variants_report`` returns plain data (for
``--json`` or a page), ``format_variants`` the text table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nurtured.models import Event, EventKind
from nurtured.splits.assign import winner_ref
from nurtured.splits.counts import StepKey, VariantCounts, variant_counts
from nurtured.splits.spec import Metric
from nurtured.splits.stats import leader, versus_leader
from nurtured.streams import Catalog

_RATES = (("opened", "open_rate"), ("clicked", "click_rate"), ("replied", "reply_rate"))


async def variants_report(catalog: Catalog, since: datetime, until: datetime) -> dict[str, Any]:
    """Every step with variants (in the catalog, or sent with variants in the period)."""
    counts = await variant_counts(since=since, until=until)
    steps: dict[StepKey, dict[str, Any]] = {}
    for stream in catalog.streams.values():
        for step in stream.steps:
            if step.variants:
                rule = step.winner
                steps[(stream.id, step.content)] = {
                    "weights": {v.id: v.weight for v in step.variants},
                    "metric": rule.metric if rule else "click",
                    "rule": None if rule is None else {
                        "metric": rule.metric, "min_sample": rule.min_sample,
                        "confidence": rule.confidence,
                    },
                }  # fmt: skip
    for key, by_variant in counts.items():
        steps.setdefault(key, {"weights": {}, "metric": "click", "rule": None})
        for variant in by_variant:
            steps[key]["weights"].setdefault(variant, None)  # no longer in the file
    winners = {}
    refs = {winner_ref(key): key for key in steps}
    if refs:
        for ref, data, at in await Event.filter(
            kind=EventKind.SPLIT_WINNER, ref__in=list(refs)
        ).values_list("ref", "data", "occurred_at"):
            winners[refs[ref]] = {**(data if isinstance(data, dict) else {}), "at": at.isoformat()}
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "steps": [
            _step(key, info, counts.get(key, {}), winners.get(key))
            for key, info in sorted(steps.items())
        ],
    }


def _step(
    key: StepKey, info: dict[str, Any], counts: dict[str, VariantCounts],
    winner: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    metric: Metric = info["metric"]
    tallies = {v: counts.get(v, VariantCounts()).tally(metric) for v in info["weights"]}
    best, p_values = leader(tallies), versus_leader(tallies)
    variants = []
    for variant, weight in info["weights"].items():
        row = counts.get(variant, VariantCounts())
        figures: dict[str, float | None] = {
            "sent": row.sent, "opened": row.opened, "clicked": row.clicked, "replied": row.replied
        }  # fmt: skip
        for column, rate in _RATES:
            hits = getattr(row, column)
            figures[rate] = round(hits / row.sent, 4) if row.sent else None
        variants.append({"id": variant, "weight": weight, **figures, "leader": variant == best,
                         "p_vs_leader": round(p_values[variant], 4) if variant in p_values
                         else None})  # fmt: skip
    return {"stream": key[0], "content": key[1], "metric": metric, "rule": info["rule"],
            "winner": winner, "variants": variants}  # fmt: skip


def _p(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def format_variants(data: dict[str, Any]) -> str:
    """The split tests as text tables; "" when there are none."""
    lines: list[str] = []
    for step in data["steps"]:
        rule = step["rule"]
        about = "no winner rule"
        if rule:
            about = (f"winner rule: best {rule['metric']} rate after {rule['min_sample']} sent "
                     f"each, at {rule['confidence']:.0%} confidence")  # fmt: skip
        lines.append(f"split test {step['stream']} / {step['content']} "
                     f"(compared on {step['metric']}; {about})")  # fmt: skip
        lines.append(f"  {'variant':<14}{'sent':>7}{'opened':>8}{'open%':>8}{'clicked':>9}"
                     f"{'click%':>8}{'replied':>9}{'reply%':>8}  p vs leader")  # fmt: skip
        for v in step["variants"]:
            versus = "leader" if v["leader"] else _p(v["p_vs_leader"])
            lines.append(
                f"  {v['id']:<14}{v['sent']:>7}{v['opened']:>8}{_percent(v['open_rate']):>8}"
                f"{v['clicked']:>9}{_percent(v['click_rate']):>8}{v['replied']:>9}"
                f"{_percent(v['reply_rate']):>8}  {versus}"
            )
        winner = step["winner"]
        if winner:
            lines.append(f"  winner: {winner.get('variant')} (decided {winner['at']}, "
                         f"p {_p(winner.get('p_value'))}); only it is sent since")  # fmt: skip
        lines.append("")
    if data["steps"]:
        lines.append("p vs leader: two-sided two-proportion z-test; below 0.05 is a "
                     "difference unlikely to be chance")  # fmt: skip
    return "\n".join(lines) + ("\n" if lines else "")
