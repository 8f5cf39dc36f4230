"""streams/*.toml loading: the objects it builds and every problem it catches, word for word."""

from __future__ import annotations

import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest

from nurtured.exceptions import ConfigError, NotFound
from nurtured.streams import Action, Catalog, Entry, load_streams, parse_action
from nurtured.timing import SendWindow

TEMPLATES = frozenset(
    {"pa-welcome", "pa-guide", "pa-roi", "shared", "lt-1", "lt-2", "pb-1", "product-a/intro"}
)

PRODUCT_A = textwrap.dedent("""
    id = "product-a"
    name = "Product A: learning"

    [entry]
    sources = ["Webinar", "white-paper"]
    interests = ["product-a"]
    priority = 10

    [[steps]]
    content = "pa-welcome"
    wait = "0h"

    [[steps]]
    content = "pa-guide"
    wait = "3d"
    window = { hours = "10:00-16:00", days = ["tue", "wed", "thu"] }

    [[steps]]
    content = "shared"
    template = "product-a/intro"
    wait = "1d12h"

    [transitions]
    on_click = { "interest:product-b" = "move:product-b", "unsubscribe-ish" = "end" }
    on_reply = "pause:14d"
    on_score = [ { at = 60, then = "end" }, { at = 30, then = "pause" } ]
    on_exhausted = "move:long-term"
""")

PRODUCT_B = textwrap.dedent("""
    id = "product-b"
    name = "Product B"
    [[steps]]
    content = "pb-1"
    [transitions]
    on_exhausted = "end"
""")

LONG_TERM = textwrap.dedent("""
    id = "long-term"
    name = "Long term"
    [entry]
    priority = 1000
    [[steps]]
    content = "lt-1"
    wait = "30d"
    [[steps]]
    content = "lt-2"
    wait = "30d"
    [transitions]
    on_exhausted = "hold"
""")

GOOD = {"product-a": PRODUCT_A, "product-b": PRODUCT_B, "long-term": LONG_TERM}


def write(root: Path, files: dict[str, str | None]) -> Path:
    """Write streams/<name>.toml for each entry (None leaves it out); return streams/."""
    directory = root / "streams"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        if text is not None:
            (directory / f"{name}.toml").write_text(textwrap.dedent(text))
    return directory


def load(root: Path, files: dict[str, str | None] | None = None) -> Catalog:
    return load_streams(write(root, files or GOOD), templates=TEMPLATES, base_dir=root)


def problems(root: Path, **changes: str | None) -> list[str]:
    """Problems from GOOD with some files replaced (or removed with None)."""
    with pytest.raises(ConfigError) as caught:
        load(root, {**GOOD, **changes})
    return [str(p) for p in caught.value.problems]


def edit(old: str, new: str, text: str = PRODUCT_A) -> str:
    assert old in text
    return text.replace(old, new, 1)


# -- what a valid load builds --------------------------------------------------------------


def test_valid_streams_load_into_frozen_objects(tmp_path: Path) -> None:
    """Steps, waits, windows, templates and transitions arrive typed; file names are relative."""
    catalog = load(tmp_path)
    assert sorted(catalog.streams) == ["long-term", "product-a", "product-b"]
    a = catalog.stream("product-a")
    assert (a.name, a.file) == ("Product A: learning", "streams/product-a.toml")
    assert [(s.index, s.content, s.template, s.wait) for s in a.steps] == [
        (0, "pa-welcome", "pa-welcome", timedelta(0)),
        (1, "pa-guide", "pa-guide", timedelta(days=3)),
        (2, "shared", "product-a/intro", timedelta(days=1, hours=12)),
    ]
    assert a.steps[0].window is None
    assert a.steps[1].window == SendWindow(time(10), time(16), frozenset({1, 2, 3}))
    assert a.content_ids == ("pa-welcome", "pa-guide", "shared")
    t = a.transitions
    assert dict(t.on_click) == {
        "interest:product-b": Action("move", target="product-b"),
        "unsubscribe-ish": Action("end"),
    }
    assert t.on_reply == Action("pause", pause_for=timedelta(days=14))
    assert t.on_score == ((60, Action("end")), (30, Action("pause")))
    assert t.on_exhausted == Action("move", target="long-term")
    assert catalog.stream("long-term").transitions.on_exhausted == Action("hold")
    with pytest.raises(AttributeError):
        a.name = "x"  # type: ignore[misc]


def test_entry_defaults_and_lowercases(tmp_path: Path) -> None:
    """[entry] lists default to empty (any), priority to 100; values match case-insensitively."""
    catalog = load(tmp_path)
    assert catalog.stream("product-a").entry == Entry(
        frozenset({"webinar", "white-paper"}), frozenset({"product-a"}), 10
    )
    assert catalog.stream("long-term").entry == Entry(frozenset(), frozenset(), 1000)
    assert catalog.stream("product-b").entry is None


def test_entry_matches() -> None:
    """Empty lists match anything; otherwise the source and one of the interests must match."""
    entry = Entry(frozenset({"webinar"}), frozenset({"product-a", "x"}), 10)
    assert entry.matches("webinar", ["product-a"])
    assert entry.matches("WEBINAR", ["other", "X"])
    assert not entry.matches("badge-scan", ["product-a"])
    assert not entry.matches(None, ["product-a"])
    assert not entry.matches("webinar", [])
    anything = Entry(frozenset(), frozenset(), 100)
    assert anything.matches(None, [])


def test_entry_stream_picks_lowest_priority_then_id(tmp_path: Path) -> None:
    """The matching stream with the lowest priority wins; ties go to the smaller id."""
    catalog = load(tmp_path)
    assert catalog.entry_stream("webinar", ["product-a"]).id == "product-a"  # type: ignore[union-attr]
    assert catalog.entry_stream("badge-scan", ["product-a"]).id == "long-term"  # type: ignore[union-attr]
    assert catalog.entry_stream(None, ()).id == "long-term"  # type: ignore[union-attr]
    tie = edit("priority = 1000", "priority = 10", LONG_TERM)
    tied = load(tmp_path, {**GOOD, "long-term": tie})
    assert tied.entry_stream("webinar", ["product-a"]).id == "long-term"  # type: ignore[union-attr]


def test_entry_stream_none_when_nothing_matches(tmp_path: Path) -> None:
    """Without a catch-all stream, a lead that fits no entry gets None."""
    only_a = {
        "product-a": edit('on_exhausted = "move:long-term"', 'on_exhausted = "end"'),
        "product-b": PRODUCT_B,
    }
    catalog = load(tmp_path, only_a)
    assert catalog.entry_stream("webinar", ["product-b"]) is None


def test_unknown_stream_is_not_found_listing_known_ids(tmp_path: Path) -> None:
    """catalog.stream() on an unknown id raises NotFound naming the ids there are."""
    with pytest.raises(NotFound, match=r"'nope' \(streams: long-term, product-a, product-b\)"):
        load(tmp_path).stream("nope")


def test_templates_and_content_lookup(tmp_path: Path) -> None:
    """template_names() lists the templates steps use; content_template() maps content."""
    catalog = load(tmp_path)
    assert catalog.template_names() == {
        "pa-welcome", "pa-guide", "product-a/intro", "pb-1", "lt-1", "lt-2",
    }  # fmt: skip
    assert catalog.content_template("shared") == "product-a/intro"
    with pytest.raises(NotFound):
        catalog.content_template("nope")


def test_content_version_is_stable_and_changes_with_steps(tmp_path: Path) -> None:
    """Same content ids give the same version on every load; adding a step changes it."""
    before = load(tmp_path).stream("long-term").content_version
    assert before == load(tmp_path).stream("long-term").content_version
    assert len(before) <= 32
    more = LONG_TERM + '\n[[steps]]\ncontent = "pb-1"\n'
    after = load(tmp_path, {**GOOD, "long-term": more}).stream("long-term").content_version
    assert after != before


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("end", Action("end")),
        ("hold", Action("hold")),
        ("pause", Action("pause")),
        ("pause:14d", Action("pause", pause_for=timedelta(days=14))),
        ("move:long-term", Action("move", target="long-term")),
        (" move:product_b ", Action("move", target="product_b")),
    ],
)
def test_parse_action(text: str, action: Action) -> None:
    """Action strings become Action objects."""
    assert parse_action(text) == action


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("stop", '"stop" is not an action'),
        ("move:", '"move:" is not an action'),
        ("move:Product A", '"move:Product A" is not an action'),
        ("end:now", '"end:now" is not an action'),
        ("pause:soon", '"soon" is not a duration'),
        ("pause:0", '"pause:0" pauses for no time'),
    ],
)
def test_parse_action_rejects(text: str, reason: str) -> None:
    """Unknown kinds, missing targets and bad pause durations are ValueErrors."""
    with pytest.raises(ValueError, match="^" + reason.replace("(", r"\(")):
        parse_action(text)


def test_files_are_named_relative_to_the_directory_parent_by_default(tmp_path: Path) -> None:
    """Without base_dir, problems name files as streams/<file>.toml."""
    directory = write(tmp_path, {**GOOD, "product-b": PRODUCT_B.replace('"end"', '"ned"')})
    with pytest.raises(ConfigError) as caught:
        load_streams(directory, templates=TEMPLATES)
    assert [p.file for p in caught.value.problems] == ["streams/product-b.toml"]


# -- every problem, word for word ------------------------------------------------------------


A = "streams/product-a.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (edit('wait = "3d"', 'wait = "3 dayz"'), 'steps[1].wait: "3 dayz" is not a duration'),
        (edit('wait = "3d"', "wait = 3"), "steps[1].wait: 3 is not a duration"),
        (edit('name = "Product A: learning"', 'nmae = "x"'), "name: required"),
        (edit('name = "Product A: learning"', 'name = ""'), "name: must not be empty"),
        (
            edit('name = "Product A: learning"', "name = 3"),
            "name: 3 is not text (put it in quotes)",
        ),
        (
            edit('id = "product-a"', 'id = "Product A"'),
            'id: "Product A" is not an id: use a-z, 0-9, "-" and "_"',
        ),
        (
            edit("priority = 10", 'priority = "high"'),
            'entry.priority: "high" is not a whole number',
        ),
        (edit("priority = 10", "priority = 10\ncolour = 1"), "entry.colour: unknown key"),
        (edit('content = "pa-guide"', 'contnet = "pa-guide"'), "steps[1].content: required"),
        (edit('wait = "0h"', 'wiat = "0h"'), "steps[0].wiat: unknown key"),
        (
            edit('content = "pa-guide"', 'content = "pa guide"'),
            'steps[1].content: "pa guide" is not a content id: use letters, digits, "-", "_", "/"',
        ),
        (
            edit('hours = "10:00-16:00"', 'hours = "10-4"'),
            'steps[1].window.hours: "10-4" is not a time range like "09:00-17:00"',
        ),
        (
            edit('days = ["tue", "wed", "thu"]', 'days = ["tue", "caturday"]'),
            'steps[1].window.days: "caturday" is not a day: use mon, tue, wed, thu, fri, sat, '
            "sun, weekdays, weekend or everyday",
        ),
        (edit(', days = ["tue", "wed", "thu"]', ""), "steps[1].window.days: required"),
        (
            edit('content = "pa-guide"', 'content = "pa-welcome"'),
            'steps[1].content: "pa-welcome" is already steps[0] in this stream',
        ),
        (
            edit('content = "pa-guide"', 'content = "pa-missing"'),
            "steps[1].content: no template templates/pa-missing.j2",
        ),
        (
            edit('template = "product-a/intro"', 'template = "product-a/outro"'),
            "steps[2].template: no template templates/product-a/outro.j2",
        ),
        (
            edit('"unsubscribe-ish" = "end"', '"interest:x" = "move:nope"'),
            'transitions.on_click."interest:x": "move:nope" names no stream '
            "(streams: long-term, product-a, product-b)",
        ),
        (
            edit('"interest:product-b" = "move:product-b"', '"interest:x" = "hold"'),
            'transitions.on_click."interest:x": "hold" is only for on_exhausted',
        ),
        (
            edit('on_reply = "pause:14d"', 'on_reply = "move:product-a"'),
            'transitions.on_reply: "move:product-a" moves leads to the stream they are in',
        ),
        (
            edit('on_reply = "pause:14d"', 'on_reply = "explode"'),
            'transitions.on_reply: "explode" is not an action: use "move:<stream id>", "pause", '
            '"pause:<duration>" or "end"',
        ),
        (
            edit('on_reply = "pause:14d"', 'on_reply = "pause:2 weeks"'),
            'transitions.on_reply: "2 weeks" is not a duration',
        ),
        (edit("at = 60", 'at = "60"'), 'transitions.on_score[0].at: "60" is not a whole number'),
        (edit('then = "end"', 'than = "end"'), "transitions.on_score[0].then: required"),
        (
            edit('on_exhausted = "move:long-term"', 'on_exhausted = "pause:3d"'),
            'transitions.on_exhausted: "pause:3d" cannot end a stream: use "end", "hold" or '
            '"move:<stream id>"',
        ),
        (edit('on_exhausted = "move:long-term"', ""), "transitions.on_exhausted: required"),
        (edit("[transitions]", "[transitons]"), "transitons: unknown key"),
    ],
)
def test_each_mistake_names_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    """Each bad stream file gives exactly its own file: key: reason."""
    found = problems(tmp_path, **{"product-a": text})
    assert f"{A}: {message}" in found
    assert all(p.startswith(A) for p in found), found


def test_missing_transitions_table_is_required(tmp_path: Path) -> None:
    """A stream without [transitions] is told it needs one (on_exhausted is required)."""
    text = PRODUCT_B.replace('[transitions]\non_exhausted = "end"', "")
    assert problems(tmp_path, **{"product-b": text}) == [
        "streams/product-b.toml: transitions: required"
    ]


def test_wrong_type_for_steps(tmp_path: Path) -> None:
    """steps must be an array of tables."""
    text = PRODUCT_B.replace('[[steps]]\ncontent = "pb-1"', 'steps = "pb-1"')
    assert problems(tmp_path, **{"product-b": text}) == [
        'streams/product-b.toml: steps: "pb-1" is not a list'
    ]


def test_stream_without_steps(tmp_path: Path) -> None:
    """A stream with no [[steps]] is rejected."""
    text = PRODUCT_B.replace('[[steps]]\ncontent = "pb-1"', "")
    assert problems(tmp_path, **{"product-b": text}) == [
        "streams/product-b.toml: steps: no steps: add at least one [[steps]] table"
    ]


def test_duplicate_stream_ids_name_both_files(tmp_path: Path) -> None:
    """Two files with one id: the second is reported, naming the first."""
    assert problems(tmp_path, **{"zz-copy": PRODUCT_B}) == [
        'streams/zz-copy.toml: id: "product-b" is also the id in streams/product-b.toml'
    ]


def test_one_content_id_must_use_one_template_everywhere(tmp_path: Path) -> None:
    """The same content id with different templates in two streams is reported."""
    text = PRODUCT_B.replace('content = "pb-1"', 'content = "shared"\ntemplate = "pb-1"')
    assert problems(tmp_path, **{"product-b": text}) == [
        'streams/product-b.toml: steps[0].template: content "shared" uses template "pb-1" here '
        'but "product-a/intro" in streams/product-a.toml: one content id is one email everywhere'
    ]


def test_shared_content_with_the_same_template_is_fine(tmp_path: Path) -> None:
    """A content id in two streams with one template is the point of skip-on-move."""
    text = PRODUCT_B.replace('content = "pb-1"', 'content = "shared"\ntemplate = "product-a/intro"')
    catalog = load(tmp_path, {**GOOD, "product-b": text})
    assert catalog.stream("product-b").content_ids == ("shared",)


def test_on_exhausted_cycle_is_reported(tmp_path: Path) -> None:
    """A exhausted -> B, B exhausted -> A can never progress: the cycle is spelled out."""
    b = PRODUCT_B.replace('on_exhausted = "end"', 'on_exhausted = "move:product-a"')
    a = edit('on_exhausted = "move:long-term"', 'on_exhausted = "move:product-b"')
    found = problems(tmp_path, **{"product-a": a, "product-b": b})
    assert found == [
        "streams/product-a.toml: transitions.on_exhausted: on_exhausted moves in a circle, "
        "leads who received everything would bounce forever: "
        "product-a -> product-b -> product-a"
    ]


def test_three_stream_cycle_reported_once(tmp_path: Path) -> None:
    """A longer cycle is reported once, starting from its smallest id."""
    lt = LONG_TERM.replace('on_exhausted = "hold"', 'on_exhausted = "move:product-a"')
    a = edit('on_exhausted = "move:long-term"', 'on_exhausted = "move:product-b"')
    b = PRODUCT_B.replace('on_exhausted = "end"', 'on_exhausted = "move:long-term"')
    found = problems(tmp_path, **{"product-a": a, "product-b": b, "long-term": lt})
    assert len(found) == 1
    assert found[0].endswith("long-term -> product-a -> product-b -> long-term")


def test_self_move_on_exhausted_is_reported_once(tmp_path: Path) -> None:
    """A stream exhausting into itself is named as a self-move, not also as a cycle."""
    lt = LONG_TERM.replace('on_exhausted = "hold"', 'on_exhausted = "move:long-term"')
    assert problems(tmp_path, **{"long-term": lt}) == [
        'streams/long-term.toml: transitions.on_exhausted: "move:long-term" moves leads to '
        "the stream they are in"
    ]


def test_unreachable_stream_is_reported(tmp_path: Path) -> None:
    """No [entry] and no transition into it: the stream can never be entered."""
    a = edit('"interest:product-b" = "move:product-b", ', "")
    assert problems(tmp_path, **{"product-a": a}) == [
        "streams/product-b.toml: unreachable: no [entry] table and no other stream moves leads here"
    ]


def test_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error is one problem with the file and the line."""
    found = problems(tmp_path, **{"product-b": 'id = "product-b"\nname = \n'})
    assert len(found) == 1
    assert found[0].startswith("streams/product-b.toml: not valid TOML: ")
    assert "line 2" in found[0]


def test_problems_from_all_files_are_collected(tmp_path: Path) -> None:
    """Every problem in every file is reported in one ConfigError."""
    a = edit('wait = "3d"', 'wait = "3 dayz"')
    lt = LONG_TERM.replace('content = "lt-2"', 'content = "lt-3"')
    assert problems(tmp_path, **{"product-a": a, "long-term": lt}) == [
        "streams/long-term.toml: steps[1].content: no template templates/lt-3.j2",
        'streams/product-a.toml: steps[1].wait: "3 dayz" is not a duration',
    ]


def test_broken_file_does_not_make_others_unreachable(tmp_path: Path) -> None:
    """When a file does not parse, references into it are not reported as well."""
    found = problems(tmp_path, **{"product-a": "id = "})
    assert len(found) == 1
    assert found[0].startswith("streams/product-a.toml: not valid TOML")


def test_no_stream_files(tmp_path: Path) -> None:
    """An empty streams/ folder is an error naming the folder."""
    (tmp_path / "streams").mkdir()
    (tmp_path / "streams" / "notes.txt").write_text("not a stream")
    with pytest.raises(ConfigError) as caught:
        load_streams(tmp_path / "streams", templates=TEMPLATES, base_dir=tmp_path)
    assert str(caught.value) == "streams: no stream files (*.toml) in it"


def test_missing_streams_directory(tmp_path: Path) -> None:
    """A streams folder that does not exist is an error naming it."""
    with pytest.raises(ConfigError) as caught:
        load_streams(tmp_path / "streams", templates=TEMPLATES, base_dir=tmp_path)
    assert str(caught.value) == "streams: no such directory"


def test_scaffold_streams_load() -> None:
    """The example project's streams load against its templates."""
    scaffold = Path(__file__).parent.parent / "nurtured" / "scaffold"
    names = {p.stem for p in (scaffold / "templates").glob("*.j2") if not p.name.startswith("_")}
    catalog = load_streams(scaffold / "streams", templates=names, base_dir=scaffold)
    assert sorted(catalog.streams) == ["long-term", "product-a", "product-b"]
