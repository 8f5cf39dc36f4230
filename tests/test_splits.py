"""Split tests, the pure parts: variants and winner rules in stream files, the stable
choice of a lead's variant, the z-test and the winner rule's decision."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from nurtured.exceptions import ConfigError
from nurtured.splits.spec import Variant, WinnerRule, choose, split_key
from nurtured.splits.stats import Tally, decide, leader, p_value, versus_leader
from nurtured.streams import Catalog, load_streams

TEMPLATES = frozenset({"intro", "intro-short", "a1"})

SPLIT = """
    id = "a"
    name = "A"
    [entry]
    [[steps]]
    content = "intro"
    variants = [
        { id = "control", weight = 2 },
        { id = "short", template = "intro-short", weight = 1 },
        { id = "question", subject = "Still fighting spreadsheets?", weight = 1 },
    ]
    winner = { metric = "click", min_sample = 200, confidence = 0.95 }
    [[steps]]
    content = "a1"
    wait = "2d"
    [transitions]
    on_exhausted = "end"
"""


def load(root: Path, text: str) -> Catalog:
    (root / "streams").mkdir(exist_ok=True)
    (root / "streams" / "a.toml").write_text(textwrap.dedent(text))
    return load_streams(root / "streams", templates=TEMPLATES, base_dir=root)


def problems(root: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(root, text)
    return [str(p) for p in caught.value.problems]


def test_variants_and_winner_rule_load(tmp_path: Path) -> None:
    """Each variant keeps its id and weight; template defaults to the step's; the rule is typed."""
    catalog = load(tmp_path, SPLIT)
    step = catalog.stream("a").steps[0]
    assert step.variants == (
        Variant("control", "intro", None, 2.0),
        Variant("short", "intro-short", None, 1.0),
        Variant("question", "intro", "Still fighting spreadsheets?", 1.0),
    )
    assert step.winner == WinnerRule("click", 200, 0.95)
    assert step.content == "intro"  # the content id stays the step's: no repeat across variants
    assert catalog.stream("a").steps[1].variants == ()
    assert "intro-short" in catalog.template_names()  # so validate renders it too


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('{ id = "short", template = "intro-short", weight = 1 },', '{ id = "short", '
         'template = "gone", weight = 1 },', 'steps[0].variants[1].template: no template '
         "templates/gone.j2"),
        ('id = "question"', 'id = "short"', 'steps[0].variants[2].id: "short" is already '
         "variants[1]"),
        ("weight = 2", "weight = 0", "steps[0].variants[0].weight: 0 is too small: must be "
         "more than 0"),
        ("weight = 2", 'weight = "2"', 'steps[0].variants[0].weight: "2" is not a number'),
        ('id = "control"', 'id = "Control!"', 'steps[0].variants[0].id: "Control!" is not a '
         'variant id'),
        ('subject = "Still fighting spreadsheets?"', 'subject = "Hi {{ lead.first_name }}"',
         "steps[0].variants[2].subject: a variant subject is plain text"),
        ('metric = "click"', 'metric = "clicks"', 'steps[0].winner.metric: "clicks" is not '
         'one of "open", "click" or "reply"'),
        ("min_sample = 200", "min_sample = 0", "steps[0].winner.min_sample: 0 is too small: "
         "must be at least 1"),
        ("confidence = 0.95", "confidence = 95", "steps[0].winner.confidence: 95 is too large: "
         "must be less than 1"),
        ("weight = 1 },\n]", "weight = 1, colour = 'red' },\n]",
         "steps[0].variants[2].colour: unknown key"),
    ],
)  # fmt: skip
def test_bad_variants_are_named_by_file_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    """Every mistake in a variant or winner table is refused at load, naming file and key."""
    text = textwrap.dedent(SPLIT)
    assert old in text
    found = problems(tmp_path, text.replace(old, new, 1))
    assert any(p.startswith(f"streams/a.toml: {expected}") for p in found), found


def test_one_variant_and_a_winner_without_variants_are_refused(tmp_path: Path) -> None:
    """A single variant is no test; a winner rule needs variants to choose from."""
    text = textwrap.dedent(SPLIT)
    one = text.replace('    { id = "short", template = "intro-short", weight = 1 },\n', "")
    one = one.replace('    { id = "question", subject = "Still fighting spreadsheets?", '
                      "weight = 1 },\n", "")  # fmt: skip
    assert problems(tmp_path, one) == [
        "streams/a.toml: steps[0].variants: one variant is no split test: add another or "
        "remove variants"
    ]
    bare = text.replace('content = "a1"', 'content = "a1"\nwinner = { metric = "open", '
                        "min_sample = 10 }")  # fmt: skip
    assert problems(tmp_path, bare) == [
        "streams/a.toml: steps[1].winner: a winner rule needs variants to choose from"
    ]


VARIANTS = (Variant("a", "t", None, 5.0), Variant("b", "t", None, 3.0), Variant("c", "t", "S", 2.0))


def test_distribution_follows_the_weights_over_2000_leads() -> None:
    """5:3:2 weights over 2,000 addresses give each variant its share within 3 points."""
    picked = Counter(
        choose(VARIANTS, split_key(f"lead{i}@example.com", "a", "intro")).id for i in range(2000)
    )
    assert sum(picked.values()) == 2000
    for variant in VARIANTS:
        share = picked[variant.id] / 2000
        assert abs(share - variant.weight / 10) < 0.03, picked


def test_choice_is_stable_across_processes_and_case_of_the_address() -> None:
    """Another interpreter (another hash seed) picks the same; the step is part of the key."""
    emails = [f"lead{i}@example.com" for i in range(200)]
    here = [choose(VARIANTS, split_key(e, "a", "intro")).id for e in emails]
    code = (
        "from nurtured.splits.spec import Variant, choose, split_key\n"
        "vs = (Variant('a','t',None,5.0), Variant('b','t',None,3.0), Variant('c','t','S',2.0))\n"
        "print(''.join(choose(vs, split_key(f'lead{i}@example.com', 'a', 'intro')).id "
        "for i in range(200)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    assert there == "".join(here)
    assert here == [choose(VARIANTS, split_key(e.upper(), "a", "intro")).id for e in emails]
    other_step = [choose(VARIANTS, split_key(e, "a", "a1")).id for e in emails]
    assert other_step != here  # independent per step: not the same lead always in "a"


def test_p_value_of_the_two_proportion_z_test() -> None:
    """Known values: 10% vs 15% of 1000 each is p ~ 0.0007 (z 3.38); equal rates are p = 1."""
    assert p_value(Tally(100, 1000), Tally(150, 1000)) == pytest.approx(0.000723, abs=2e-6)
    assert p_value(Tally(100, 1000), Tally(100, 1000)) == 1.0
    assert p_value(Tally(0, 100), Tally(0, 100)) == 1.0  # no hits at all: no evidence
    assert p_value(Tally(0, 0), Tally(5, 10)) == 1.0
    assert p_value(Tally(30, 200), Tally(20, 200)) == pytest.approx(0.1305, abs=1e-3)


def test_winner_rule_waits_for_the_sample_and_the_confidence() -> None:
    """No winner below min_sample or confidence, or on a tie; then the better variant."""
    clear = {"a": Tally(20, 250), "b": Tally(50, 250)}
    assert decide(clear, min_sample=300, confidence=0.95) is None  # too few sent
    decision = decide(clear, min_sample=200, confidence=0.95)
    assert decision is not None
    assert decision.winner == "b"
    assert decision.p_value < 0.05
    close = {"a": Tally(30, 250), "b": Tally(36, 250)}
    assert decide(close, min_sample=200, confidence=0.95) is None
    assert decide({"a": Tally(30, 250), "b": Tally(30, 250)}, min_sample=1, confidence=0.6) is None
    three = {"a": Tally(20, 300), "b": Tally(60, 300), "c": Tally(55, 300)}
    assert decide(three, min_sample=200, confidence=0.95) is None  # b does not beat c yet
    assert leader(three) == "b"
    assert set(versus_leader(three)) == {"a", "c"}
