"""The BANTFO gate (pure)."""

from __future__ import annotations

from nurtured.sales.gate import criteria_state, missing_criteria, says_yes

TITLES = ["VP", "Head of", "CTO", "Director"]
BANT = ["budget", "authority", "need", "timing"]


def test_field_values_that_say_yes_or_no() -> None:
    assert [says_yes(v) for v in ("yes", "Q2", "50k", True, 3)] == [True] * 5
    assert [says_yes(v) for v in ("", "no", "Unknown", "nein", None, False, 0)] == [False] * 7


def test_nothing_required_means_the_score_alone_hands_off() -> None:
    assert missing_criteria([], {}) == []


def test_missing_criteria_in_required_order() -> None:
    fields = {"budget": "yes", "timing": "no"}
    assert missing_criteria(BANT, fields) == ["authority", "need", "timing"]


def test_authority_from_the_title_unless_a_field_says_otherwise() -> None:
    assert missing_criteria(["authority"], {}, title="VP Sales", authority_titles=TITLES) == []
    assert missing_criteria(["authority"], {}, title="Head of IT", authority_titles=TITLES) == []
    # Whole words only: "Vpn engineer" is no VP.
    assert missing_criteria(["authority"], {}, title="VPN engineer", authority_titles=TITLES) == [
        "authority"
    ]
    assert missing_criteria(
        ["authority"], {"authority": "no"}, title="CTO", authority_titles=TITLES
    ) == ["authority"]


def test_fit_holds_unless_disqualified_or_denied() -> None:
    assert missing_criteria(["fit"], {}) == []
    assert missing_criteria(["fit"], {}, disqualified=True) == ["fit"]
    assert missing_criteria(["fit"], {"fit": "no"}) == ["fit"]


def test_criteria_state_for_the_alert() -> None:
    state = criteria_state(
        BANT, {"budget": "yes", "need": "reporting"}, title="CTO", authority_titles=TITLES
    )
    assert state == {"budget": True, "authority": True, "need": True, "timing": False}
