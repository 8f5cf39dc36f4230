"""How sure a split test is: the two-proportion z-test, and the winner rule's decision.

Pure: no I/O, no clock. The figure shown and used is the two-sided p-value of the
difference between two variants' rates (successes per email sent); "confidence" is
1 - p. Two-sided is the cautious choice: a variant must be better by a margin that
would also count had it been worse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Tally:
    hits: int  # leads who opened (or clicked, or replied)
    sent: int  # emails of this variant sent

    @property
    def rate(self) -> float:
        return self.hits / self.sent if self.sent else 0.0


def p_value(a: Tally, b: Tally) -> float:
    """Two-sided p-value of the z-test that a and b have the same rate (1.0: no evidence)."""
    if a.sent == 0 or b.sent == 0:
        return 1.0
    pooled = (a.hits + b.hits) / (a.sent + b.sent)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.sent + 1 / b.sent))
    if spread == 0:
        return 1.0
    z = (a.rate - b.rate) / spread
    return math.erfc(abs(z) / math.sqrt(2))


def leader(tallies: Mapping[str, Tally]) -> str | None:
    """The variant with the highest rate; None when there is none or it is a tie."""
    ranked = sorted(tallies.items(), key=lambda item: item[1].rate, reverse=True)
    if not ranked or (len(ranked) > 1 and ranked[0][1].rate == ranked[1][1].rate):
        return None
    return ranked[0][0]


def versus_leader(tallies: Mapping[str, Tally]) -> dict[str, float]:
    """Each other variant's p-value against the leader (empty without a leader)."""
    best = leader(tallies)
    if best is None:
        return {}
    return {v: p_value(tallies[best], t) for v, t in tallies.items() if v != best}


@dataclass(frozen=True)
class Decision:
    winner: str
    p_value: float  # the largest p-value against any other variant


def decide(tallies: Mapping[str, Tally], *, min_sample: int, confidence: float) -> Decision | None:
    """A winner once every variant was sent ``min_sample`` times and the leader beats
    each other one with 1 - p >= ``confidence``; else None (keep splitting)."""
    if len(tallies) < 2 or any(t.sent < min_sample for t in tallies.values()):
        return None
    best = leader(tallies)
    if best is None:
        return None
    worst_p = max(versus_leader(tallies).values())
    return Decision(best, worst_p) if 1 - worst_p >= confidence else None
