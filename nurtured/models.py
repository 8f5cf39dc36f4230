"""Tortoise models and the str enums of their states.

The no-repeat guarantee lives in ``Delivery``: UNIQUE (lead, content_id), claimed before
the SMTP transaction. ``Enrollment.active_lead`` is a nullable UNIQUE copy of the lead id
that is set only while the enrollment is active or paused, so one lead can have at most
one current stream on every backend (NULLs never collide).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, overload

from tortoise import fields
from tortoise.fields.data import T_DATETIME
from tortoise.models import Model


class DatetimeField(fields.DatetimeField[T_DATETIME]):
    """Tortoise's DatetimeField, reading SQLite's ISO text with ``datetime.fromisoformat``
    first: eight times faster than the ``iso8601`` parser the ORM uses, which was a tenth
    of the send pipeline's CPU (five dates per lead read). Anything else, and any text
    ``fromisoformat`` refuses, goes to the ORM's own conversion unchanged. To migrations
    it is the plain field: same type, same columns."""

    @overload
    def __init__(
        self: DatetimeField[datetime],
        auto_now: bool = False,
        auto_now_add: bool = False,
        *,
        null: Literal[False] = False,
        **kwargs: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: DatetimeField[datetime | None],
        auto_now: bool = False,
        auto_now_add: bool = False,
        *,
        null: Literal[True],
        **kwargs: Any,
    ) -> None: ...

    def __init__(self, auto_now: bool = False, auto_now_add: bool = False, **kwargs: Any) -> None:
        # The overloads above type null= for the models; mypy cannot match the base's
        # self-typed overloads from this generic subclass, so it is told to trust it.
        super().__init__(auto_now, auto_now_add, **kwargs)  # type: ignore[misc]

    def to_python_value(self, value: Any) -> datetime | None:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # else the ORM's parser has its say
                value = datetime.fromisoformat(value)
        result: datetime | None = super().to_python_value(value)
        return result

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        _, args, kwargs = super().deconstruct()
        return "tortoise.fields.data.DatetimeField", args, kwargs


class LeadStatus(StrEnum):
    ACTIVE = "active"  # being nurtured (or waiting to be)
    REPLIED = "replied"  # a human answered: the stream stopped, sales has it
    SALES = "sales"  # handed to sales
    UNSUBSCRIBED = "unsubscribed"  # opted out: never mailed again
    BOUNCED = "bounced"  # the address is dead: never mailed again
    MERGED = "merged"  # merged into another lead; holds only rows that could not move


MAILABLE = (LeadStatus.ACTIVE,)


class LeadStage(StrEnum):
    """Where a lead stands in the funnel; every change is a STAGE event with its cause."""

    NEW = "new"  # known, not mailed yet
    NURTURING = "nurturing"  # in a stream
    MQL = "mql"  # crossed sales_ready; waits for the handoff criteria (BANTFO)
    SQL = "sql"  # handed to sales: an owner and an SLA deadline
    ACCEPTED = "accepted"  # the owner took it
    RETURNED = "returned"  # sales gave it back, with a reason: nurtured again
    WON = "won"  # a customer (with an amount)
    LOST = "lost"  # sales closed it as lost: nurtured again, long term
    DISQUALIFIED = "disqualified"  # failed a fit rule: never nurtured
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class HandoffState(StrEnum):
    OPEN = "open"  # handed off, the owner has not acted yet (the SLA clock runs)
    ACCEPTED = "accepted"  # the owner took it (the SLA is met)
    RETURNED = "returned"
    WON = "won"
    LOST = "lost"


OPEN_HANDOFFS = (HandoffState.OPEN, HandoffState.ACCEPTED)


class EnrollmentState(StrEnum):
    ACTIVE = "active"  # next_due_at is when its next step is due
    PAUSED = "paused"  # next_due_at is when it resumes
    HELD = "held"  # exhausted with on_exhausted = "hold": waits for new steps
    ENDED = "ended"  # left the stream (moved, ended, exhausted, stopped)


CURRENT = (EnrollmentState.ACTIVE, EnrollmentState.PAUSED, EnrollmentState.HELD)


class DeliveryStatus(StrEnum):
    CLAIMED = "claimed"  # committed before sending; its SMTP transaction has not begun
    SENDING = "sending"  # handed to SMTP: the transaction is (or was) under way
    SENT = "sent"  # the server took it
    DEFERRED = "deferred"  # 4xx: will be retried at retry_at with the same Message-ID
    FAILED = "failed"  # 5xx or out of retries: never retried
    UNKNOWN = "unknown"  # cut off mid-transaction: maybe delivered, never resent blindly


class EventKind(StrEnum):
    ENROLLED = "enrolled"
    MOVED = "moved"
    PAUSED = "paused"
    RESUMED = "resumed"
    EXHAUSTED = "exhausted"
    ENDED = "ended"
    SEND_FAILED = "send_failed"
    SEND_UNKNOWN = "send_unknown"
    BOUNCE = "bounce"
    CLICK = "click"
    OPEN = "open"
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    UNSUBSCRIBE = "unsubscribe"
    FORWARD = "forward"  # a colleague wrote or the email was forwarded
    COMPLAINT = "complaint"  # a feedback-loop (ARF) spam complaint: unsubscribed at once
    SALES_READY = "sales_ready"
    ALERT = "alert"  # sales were alerted
    UNMATCHED = "unmatched"
    STAGE = "stage"  # the lead's stage changed: data has from, to and cause
    HANDOFF = "handoff"  # handed to sales: owner, deadline, criteria
    SALES_ACTION = "sales_action"  # accept / return / won / lost / later, by reply or CLI
    SLA = "sla"  # a reminder or escalation was sent
    MERGED = "merged"  # another lead's history joined this one: data has from_lead
    EXPORTED = "exported"  # everything held was exported (no personal data on the event)
    ERASED = "erased"  # personal data removed; a hashed suppression entry kept
    SPLIT_WINNER = "split_winner"  # a split test's winner rule chose; data says why
    FIT = "fit"  # a fit rule disqualified or routed the lead (data: rule, then, cause)


class Company(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    # nurtured.fit.companies.company_key(name): one per company however it is spelled.
    key = fields.CharField(max_length=200, null=True, db_index=True)
    domain = fields.CharField(max_length=253, null=True)
    size = fields.CharField(max_length=50, null=True)
    industry = fields.CharField(max_length=100, null=True)
    created_at = DatetimeField()

    class Meta:
        table = "company"


class Lead(Model):
    id = fields.IntField(primary_key=True)
    # Stored lower-cased and trimmed: the unique key, case-insensitively.
    email = fields.CharField(max_length=254, unique=True)
    first_name = fields.CharField(max_length=100, default="")
    last_name = fields.CharField(max_length=100, default="")
    title = fields.CharField(max_length=200, default="")
    company: fields.ForeignKeyNullableRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="leads", null=True, on_delete=fields.SET_NULL
    )
    company_id: int | None
    source = fields.CharField(max_length=100, default="")
    interests: fields.JSONField[list[str]] = fields.JSONField(default=list)
    timezone = fields.CharField(max_length=64, default="")
    extra: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    status = fields.CharEnumField(LeadStatus, max_length=20, default=LeadStatus.ACTIVE)
    # Behaviour points as of score_at (they halve every scoring.half_life), rounded;
    # score_value is the same unrounded, so it always equals the sum of its causes.
    score = fields.IntField(default=0)
    score_at = DatetimeField(null=True)
    score_value = fields.FloatField(null=True)
    profile_score = fields.IntField(default=0, db_default=0)  # profile points: they do not decay
    stage = fields.CharEnumField(LeadStage, max_length=20, default=LeadStage.NEW)
    created_at = DatetimeField()
    updated_at = DatetimeField()

    class Meta:
        table = "lead"


class Enrollment(Model):
    id = fields.IntField(primary_key=True)
    lead: fields.ForeignKeyRelation[Lead] = fields.ForeignKeyField(
        "models.Lead", related_name="enrollments", on_delete=fields.CASCADE, db_index=True
    )
    lead_id: int
    active_lead = fields.IntField(null=True, unique=True)
    stream_id = fields.CharField(max_length=100)
    state = fields.CharEnumField(EnrollmentState, max_length=10, default=EnrollmentState.ACTIVE)
    position = fields.IntField(default=0)  # index of the next step to consider
    next_due_at = DatetimeField(null=True)
    lease = fields.CharField(max_length=32, null=True)  # who is working on it now
    content_version = fields.CharField(max_length=32, default="")  # for "hold" wake-ups
    entered_at = DatetimeField()
    left_at = DatetimeField(null=True)
    reason = fields.CharField(max_length=200, default="")

    class Meta:
        table = "enrollment"
        indexes = (("state", "next_due_at"),)


class Delivery(Model):
    id = fields.IntField(primary_key=True)
    lead: fields.ForeignKeyRelation[Lead] = fields.ForeignKeyField(
        "models.Lead", related_name="deliveries", on_delete=fields.CASCADE
    )
    lead_id: int
    content_id = fields.CharField(max_length=100)
    stream_id = fields.CharField(max_length=100)
    step_index = fields.IntField()
    token = fields.CharField(max_length=32, unique=True)  # in Message-ID, links, Reply-To
    message_id = fields.CharField(max_length=300, unique=True)
    subject = fields.CharField(max_length=500, default="")
    variant = fields.CharField(max_length=40, default="")  # split test: "" when none
    status = fields.CharEnumField(DeliveryStatus, max_length=10, default=DeliveryStatus.SENDING)
    attempts = fields.IntField(default=0)
    claimed_at = DatetimeField()
    sent_at = DatetimeField(null=True)
    retry_at = DatetimeField(null=True)
    error = fields.TextField(default="")

    class Meta:
        table = "delivery"
        unique_together = (("lead", "content_id"),)
        indexes = (("status", "retry_at"),)


class Link(Model):
    """A tracked link as rendered into one delivery: the only URLs a click may redirect to."""

    id = fields.IntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[Delivery] = fields.ForeignKeyField(
        "models.Delivery", related_name="links", on_delete=fields.CASCADE
    )
    delivery_id: int
    index = fields.IntField()
    url = fields.TextField()
    tag = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "link"
        unique_together = (("delivery", "index"),)


class Event(Model):
    id = fields.IntField(primary_key=True)
    lead: fields.ForeignKeyRelation[Lead] = fields.ForeignKeyField(
        "models.Lead", related_name="events", on_delete=fields.CASCADE
    )
    lead_id: int
    delivery: fields.ForeignKeyNullableRelation[Delivery] = fields.ForeignKeyField(
        "models.Delivery", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    delivery_id: int | None
    kind = fields.CharEnumField(EventKind, max_length=20)
    stream_id = fields.CharField(max_length=100, default="")
    data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    occurred_at = DatetimeField()
    # What caused it outside, when it must count once: an inbound Message-ID, say.
    ref = fields.CharField(max_length=300, null=True, unique=True)

    class Meta:
        table = "event"
        indexes = (("lead_id", "occurred_at"),)


class Handoff(Model):
    """One handoff of a lead to sales, from the alert to accept, return, won or lost."""

    id = fields.IntField(primary_key=True)
    lead: fields.ForeignKeyRelation[Lead] = fields.ForeignKeyField(
        "models.Lead", related_name="handoffs", on_delete=fields.CASCADE
    )
    lead_id: int
    owner = fields.CharField(max_length=254)  # the salesperson's address
    state = fields.CharEnumField(HandoffState, max_length=10, default=HandoffState.OPEN)
    handed_at = DatetimeField()
    deadline = DatetimeField()  # in working hours of the sales calendar
    reminded_at = DatetimeField(null=True)
    escalated_at = DatetimeField(null=True)
    acted_at = DatetimeField(null=True)  # the owner's first action (the SLA is met)
    closed_at = DatetimeField(null=True)
    reason = fields.TextField(default="")
    category = fields.CharField(max_length=20, default="")  # budget, authority, ..., other
    amount = fields.DecimalField(max_digits=14, decimal_places=2, null=True)
    currency = fields.CharField(max_length=8, default="")
    cause = fields.CharField(max_length=100, default="")  # score, source, cli, reply
    alert_id = fields.CharField(max_length=300, null=True, unique=True)  # its Message-ID

    class Meta:
        table = "handoff"
        indexes = (("state", "deadline"),)


class SuppressionKind(StrEnum):
    ADDRESS = "address"  # a normalised address
    DOMAIN = "domain"  # a whole domain, its subdomains too
    HASH = "hash"  # the salted sha256 of an erased lead's normalised address


class Suppression(Model):
    """Addresses and domains never mailed, whatever a stream, move or import says."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(SuppressionKind, max_length=10)
    value = fields.CharField(max_length=254)
    reason = fields.CharField(max_length=200, default="")
    created_at = DatetimeField()

    class Meta:
        table = "suppression"
        unique_together = (("kind", "value"),)


class Setting(Model):
    """Install-wide values kept with the data (the suppression hash salt)."""

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.TextField()

    class Meta:
        table = "setting"


class ScoreChange(Model):
    """One change of a lead's score: which rule, how many points, and why."""

    id = fields.IntField(primary_key=True)
    lead: fields.ForeignKeyRelation[Lead] = fields.ForeignKeyField(
        "models.Lead", related_name="score_changes", on_delete=fields.CASCADE
    )
    lead_id: int
    at = DatetimeField()
    rule = fields.CharField(max_length=100)  # "click", "tag:interest:", "title", ...
    points = fields.IntField()
    decays = fields.BooleanField(default=True)  # behaviour decays; profile points do not
    cause = fields.CharField(max_length=300, default="")

    class Meta:
        table = "score_change"
        indexes = (("lead_id", "at"),)
