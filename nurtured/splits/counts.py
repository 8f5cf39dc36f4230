"""Sent, opened, clicked and replied per split-test variant, counted per email.

One delivery is one lead and one step, so a lead who opens twice counts once; opens and
clicks that scanners and image proxies made (``nurtured.bots``, marked ``machine`` on
the event) are left out. Reactions count toward the emails they answer, whenever they
came: with ``since``/``until`` the period picks the emails by when they were sent. Two
reads whatever the number of leads: the sends grouped by variant, then the reactions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.functions import Count
from tortoise.queryset import QuerySet

from nurtured.models import Delivery, DeliveryStatus, Event, EventKind
from nurtured.splits.spec import Metric
from nurtured.splits.stats import Tally

StepKey = tuple[str, str]  # (stream id, content id)
_COLUMN = {EventKind.OPEN: "opened", EventKind.CLICK: "clicked", EventKind.REPLY: "replied"}
_METRIC_COLUMN: dict[Metric, str] = {"open": "opened", "click": "clicked", "reply": "replied"}


@dataclass
class VariantCounts:
    sent: int = 0
    opened: int = 0  # by a human
    clicked: int = 0  # by a human
    replied: int = 0

    def tally(self, metric: Metric) -> Tally:
        return Tally(getattr(self, _METRIC_COLUMN[metric]), self.sent)


def _deliveries(
    query: QuerySet[Any], prefix: str, contents: Collection[str] | None,
    since: datetime | None, until: datetime | None,
) -> QuerySet[Any]:  # fmt: skip
    filters: dict[str, Any] = {f"{prefix}status": DeliveryStatus.SENT}
    if contents is not None:
        filters[f"{prefix}content_id__in"] = sorted(contents)
    if since is not None:
        filters[f"{prefix}sent_at__gte"] = since
    if until is not None:
        filters[f"{prefix}sent_at__lt"] = until
    return query.filter(**filters).exclude(**{f"{prefix}variant": ""})


async def variant_counts(
    steps: Collection[StepKey] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[StepKey, dict[str, VariantCounts]]:
    """(stream, content) -> variant id -> counts, for ``steps`` (default: every step)."""
    wanted = set(steps) if steps is not None else None
    contents = {content for _, content in wanted} if wanted is not None else None
    out: dict[StepKey, dict[str, VariantCounts]] = defaultdict(dict)
    sent = _deliveries(Delivery.all(), "", contents, since, until)
    for stream_id, content_id, variant, n in (
        await sent.annotate(n=Count("id"))
        .group_by("stream_id", "content_id", "variant")
        .values_list("stream_id", "content_id", "variant", "n")
    ):
        if wanted is None or (stream_id, content_id) in wanted:
            out[(stream_id, content_id)].setdefault(variant, VariantCounts()).sent += n
    reactions = _deliveries(
        Event.filter(kind__in=list(_COLUMN)), "delivery__", contents, since, until
    )
    seen: set[tuple[int, str]] = set()
    for delivery_id, kind, data, stream_id, content_id, variant in await reactions.values_list(
        "delivery_id", "kind", "data",
        "delivery__stream_id", "delivery__content_id", "delivery__variant",
    ):  # fmt: skip
        key = (stream_id, content_id)
        if (isinstance(data, dict) and data.get("machine")) or (delivery_id, kind) in seen:
            continue
        if wanted is not None and key not in wanted:
            continue
        seen.add((delivery_id, kind))
        counts = out[key].setdefault(variant, VariantCounts())
        column = _COLUMN[EventKind(kind)]
        setattr(counts, column, getattr(counts, column) + 1)
    return dict(out)
