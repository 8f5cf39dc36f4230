"""A step's ``variants`` and ``winner`` tables, and the stable choice of a lead's variant.

Pure: no I/O, no clock. A lead's variant is a SHA-256 of its address, the stream and the
step's content id mapped onto the cumulative weights, so every worker, every rerun and
every retry picks the same one without storing or reading anything first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from nurtured.exceptions import Problem
from nurtured.schema import Model, show

Metric = Literal["open", "click", "reply"]
METRICS: tuple[Metric, ...] = ("open", "click", "reply")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TEMPLATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def _variant_id(text: str) -> str:
    if len(text) > 40 or not _ID.fullmatch(text):
        raise ValueError(f'{show(text)} is not a variant id: use a-z, 0-9, "-" and "_"')
    return text


def _template(text: str) -> str:
    if len(text) > 100 or not _TEMPLATE.fullmatch(text):
        raise ValueError(f"{show(text)} is not a template name")
    return text


def _subject(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    if any(c in text for c in "\r\n\0"):
        raise ValueError("a subject is one line")
    if len(text) > 300:
        raise ValueError("longer than 300 characters")
    if "{{" in text or "{%" in text:
        raise ValueError(
            "a variant subject is plain text, used as written: for one with template "
            "expressions, give the variant a template of its own"
        )
    return text


class RawVariant(Model):
    id: Annotated[str, AfterValidator(_variant_id)]
    template: Annotated[str, AfterValidator(_template)] | None = None
    subject: Annotated[str, AfterValidator(_subject)] | None = None
    weight: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0


class RawWinner(Model):
    metric: Metric
    min_sample: Annotated[int, Field(ge=1)]
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95


@dataclass(frozen=True)
class Variant:
    id: str
    template: str  # the step's own unless the variant names one
    subject: str | None  # None: the template's subject block
    weight: float


@dataclass(frozen=True)
class WinnerRule:
    """After every variant was sent ``min_sample`` times, the one best on ``metric``
    with at least ``confidence`` (1 - p of the z-test against each other) wins."""

    metric: Metric
    min_sample: int
    confidence: float


def build_variants(raw: Sequence[RawVariant], step_template: str) -> tuple[Variant, ...]:
    return tuple(Variant(v.id, v.template or step_template, v.subject, v.weight) for v in raw)


def build_winner(raw: RawWinner | None) -> WinnerRule | None:
    return None if raw is None else WinnerRule(raw.metric, raw.min_sample, raw.confidence)


def check_variants(
    file: str,
    index: int,
    variants: Sequence[RawVariant],
    winner: RawWinner | None,
    templates: Collection[str],
) -> list[Problem]:
    """What the shape alone does not catch: too few variants, twice the same id, a
    template that does not exist, a winner rule with nothing to choose from."""
    key, problems = f"steps[{index}]", list[Problem]()
    if len(variants) == 1:
        reason = "one variant is no split test: add another or remove variants"
        problems.append(Problem(file, f"{key}.variants", reason))
    seen: dict[str, int] = {}
    for i, variant in enumerate(variants):
        if variant.id in seen:
            reason = f"{show(variant.id)} is already variants[{seen[variant.id]}]"
            problems.append(Problem(file, f"{key}.variants[{i}].id", reason))
        seen.setdefault(variant.id, i)
        if variant.template is not None and variant.template not in templates:
            reason = f"no template templates/{variant.template}.j2"
            problems.append(Problem(file, f"{key}.variants[{i}].template", reason))
    if winner is not None and not variants:
        reason = "a winner rule needs variants to choose from"
        problems.append(Problem(file, f"{key}.winner", reason))
    return problems


def split_key(email: str, stream_id: str, content_id: str) -> bytes:
    return f"{email.strip().lower()}\0{stream_id}\0{content_id}".encode()


def choose(variants: Sequence[Variant], key: bytes) -> Variant:
    """The variant for ``key`` (``split_key``), in proportion to the weights; stable."""
    point = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    point *= sum(v.weight for v in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant
    return variants[-1]
