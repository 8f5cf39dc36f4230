"""streams/*.toml -> frozen Stream/Step objects; all validation happens here, at load.

Every file is checked and every problem in every file is collected: one bad file rejects
the whole load, so a running daemon keeps its last good catalog.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError

from nurtured.exceptions import ConfigError, NotFound, Problem
from nurtured.schema import (
    Duration,
    Model,
    WindowTable,
    checked,
    dotted,
    problems_from,
    read_toml,
    show,
)
from nurtured.splits.spec import (
    RawVariant,
    RawWinner,
    Variant,
    WinnerRule,
    build_variants,
    build_winner,
    check_variants,
)
from nurtured.timing import SendWindow, format_duration, parse_duration

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CONTENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
ActionKind = Literal["move", "pause", "end", "hold"]


@dataclass(frozen=True)
class Action:
    """What happens to a lead: move to ``target``, pause (for ``pause_for``), end or hold."""

    kind: ActionKind
    target: str | None = None
    pause_for: timedelta | None = None

    def __str__(self) -> str:
        if self.kind == "move":
            return f"move:{self.target}"
        if self.kind == "pause" and self.pause_for is not None:
            return f"pause:{format_duration(self.pause_for)}"
        return self.kind


def parse_action(text: str) -> Action:
    """ "move:<stream>", "pause", "pause:<duration>", "end" or "hold"."""
    kind, sep, arg = text.strip().partition(":")
    if kind in ("end", "hold", "pause") and not sep:
        return Action(kind)  # type: ignore[arg-type]
    if kind == "move" and _ID.fullmatch(arg.strip()):
        return Action("move", target=arg.strip())
    if kind == "pause" and sep:
        pause_for = parse_duration(arg)
        if pause_for <= timedelta(0):
            raise ValueError(f"{show(text)} pauses for no time")
        return Action("pause", pause_for=pause_for)
    raise ValueError(
        f'{show(text)} is not an action: use "move:<stream id>", "pause", "pause:<duration>" '
        'or "end"'
    )


def _not_hold(action: Action) -> Action:
    if action.kind == "hold":
        raise ValueError('"hold" is only for on_exhausted')
    return action


def _on_exhausted(action: Action) -> Action:
    if action.kind == "pause":
        raise ValueError(f'"{action}" cannot end a stream: use "end", "hold" or "move:<stream id>"')
    return action


def _match(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def run(text: str) -> str:
        if len(text) > 100 or not pattern.fullmatch(text):
            raise ValueError(f"{show(text)} is not {what}")
        return text

    return AfterValidator(run)


AnyAction = Annotated[Action, checked(parse_action, "an action")]
EventAction = Annotated[AnyAction, AfterValidator(_not_hold)]
StreamId = Annotated[str, _match(_ID, 'an id: use a-z, 0-9, "-" and "_"')]
ContentId = Annotated[str, _match(_CONTENT, 'a content id: use letters, digits, "-", "_", "/"')]


class _Entry(Model):
    sources: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    priority: int = 100


class _Step(Model):
    content: ContentId
    template: ContentId | None = None
    wait: Duration = timedelta(0)
    window: WindowTable | None = None
    variants: list[RawVariant] = Field(default_factory=list)
    winner: RawWinner | None = None


class _Score(Model):
    at: int
    then: EventAction


class _Transitions(Model):
    on_click: dict[str, EventAction] = Field(default_factory=dict)
    on_reply: EventAction | None = None
    on_score: list[_Score] = Field(default_factory=list)
    on_exhausted: Annotated[AnyAction, AfterValidator(_on_exhausted)]


class _Stream(Model):
    id: StreamId
    name: Annotated[str, Field(min_length=1)]
    entry: _Entry | None = None
    steps: list[_Step] = Field(default_factory=list)
    transitions: _Transitions


@dataclass(frozen=True)
class Step:
    index: int
    content: str  # global across streams: a lead receives each content once
    template: str
    wait: timedelta  # after the previous email, or after entering the stream
    window: SendWindow | None  # None: the configured default
    variants: tuple[Variant, ...] = ()  # a split test: each lead gets one (splits.spec)
    winner: WinnerRule | None = None


@dataclass(frozen=True)
class Entry:
    """Which new leads start in a stream: empty sets match anything; lower priority wins."""

    sources: frozenset[str]
    interests: frozenset[str]
    priority: int

    def matches(self, source: str | None, interests: Iterable[str]) -> bool:
        if self.sources and (source or "").lower() not in self.sources:
            return False
        return not self.interests or any(i.lower() in self.interests for i in interests)

    def explain(self, source: str | None, interests: Iterable[str]) -> str:
        """Why ``matches`` says what it says, naming the field that decided."""
        wanted = [i.lower() for i in interests]
        if self.sources and (source or "").lower() not in self.sources:
            return f"source {_said(source)} is not in entry.sources {_listed(self.sources)}"
        if self.interests and not any(i in self.interests for i in wanted):
            return (f"interests {_listed(wanted) if wanted else '(none)'} have none of "
                    f"entry.interests {_listed(self.interests)}")  # fmt: skip
        by_source = f"source {_said(source)}" if self.sources else "any source"
        hit = sorted({i for i in wanted if i in self.interests})
        return f"{by_source} and {f'interest {hit[0]}' if hit else 'any interest'} match"


def _said(value: str | None) -> str:
    return f'"{value}"' if value else "(none)"


def _listed(values: Iterable[str]) -> str:
    return "[" + ", ".join(sorted(values)) + "]"


@dataclass(frozen=True)
class Transitions:
    on_click: Mapping[str, Action]  # link tag -> action
    on_reply: Action | None
    on_score: tuple[tuple[int, Action], ...]
    on_exhausted: Action

    def actions(self) -> Iterable[tuple[str, Action]]:
        """Every action with its key in the file, e.g. ``transitions.on_click."x"``."""
        for tag, action in self.on_click.items():
            yield dotted(("transitions", "on_click", tag)), action
        if self.on_reply is not None:
            yield "transitions.on_reply", self.on_reply
        for i, (_, action) in enumerate(self.on_score):
            yield f"transitions.on_score[{i}].then", action
        yield "transitions.on_exhausted", self.on_exhausted


@dataclass(frozen=True)
class Stream:
    id: str
    name: str
    file: str
    entry: Entry | None
    steps: tuple[Step, ...]
    transitions: Transitions

    @property
    def content_ids(self) -> tuple[str, ...]:
        return tuple(step.content for step in self.steps)

    @property
    def content_version(self) -> str:
        """Changes when the ordered content ids change: wakes leads held at the end."""
        return hashlib.sha256("\n".join(self.content_ids).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Catalog:
    streams: Mapping[str, Stream]

    def stream(self, stream_id: str) -> Stream:
        try:
            return self.streams[stream_id]
        except KeyError:
            known = ", ".join(sorted(self.streams)) or "none"
            raise NotFound(f"no stream {stream_id!r} (streams: {known})") from None

    def entry_stream(self, source: str | None, interests: Iterable[str]) -> Stream | None:
        """The stream a new lead starts in: lowest priority, then id, among those matching."""
        wanted = tuple(interests)
        matching = [
            (s.entry.priority, s.id, s)
            for s in self.streams.values()
            if s.entry is not None and s.entry.matches(source, wanted)
        ]
        return min(matching, key=lambda m: m[:2])[2] if matching else None

    def template_names(self) -> frozenset[str]:
        steps = [step for s in self.streams.values() for step in s.steps]
        variants = {v.template for step in steps for v in step.variants}
        return frozenset(step.template for step in steps) | variants

    def content_template(self, content_id: str) -> str:
        for stream in self.streams.values():
            for step in stream.steps:
                if step.content == content_id:
                    return step.template
        raise NotFound(f"no step sends content {content_id!r}")


def _build(raw: _Stream, file: str) -> Stream:
    entry = None
    if raw.entry is not None:
        entry = Entry(
            frozenset(s.lower() for s in raw.entry.sources),
            frozenset(i.lower() for i in raw.entry.interests),
            raw.entry.priority,
        )
    steps = tuple(
        Step(i, s.content, s.template or s.content, s.wait,
             s.window.window() if s.window else None,
             build_variants(s.variants, s.template or s.content), build_winner(s.winner))
        for i, s in enumerate(raw.steps)
    )  # fmt: skip
    t = raw.transitions
    transitions = Transitions(
        on_click=MappingProxyType(dict(t.on_click)),
        on_reply=t.on_reply,
        on_score=tuple((rule.at, rule.then) for rule in t.on_score),
        on_exhausted=t.on_exhausted,
    )
    return Stream(raw.id, raw.name, file, entry, steps, transitions)


def _check_stream(stream: Stream, raw: _Stream, templates: Collection[str]) -> list[Problem]:
    problems, file, seen = [], stream.file, dict[str, int]()
    if not stream.steps:
        problems.append(Problem(file, "steps", "no steps: add at least one [[steps]] table"))
    for step, raw_step in zip(stream.steps, raw.steps, strict=True):
        if step.content in seen:
            reason = f"{show(step.content)} is already steps[{seen[step.content]}] in this stream"
            problems.append(Problem(file, f"steps[{step.index}].content", reason))
        seen.setdefault(step.content, step.index)
        if step.template not in templates:
            key = "template" if raw_step.template else "content"
            reason = f"no template templates/{step.template}.j2"
            problems.append(Problem(file, f"steps[{step.index}].{key}", reason))
        problems.extend(
            check_variants(file, step.index, raw_step.variants, raw_step.winner, templates)
        )
    for key, action in stream.transitions.actions():
        if action.kind == "move" and action.target == stream.id:
            reason = f'"{action}" moves leads to the stream they are in'
            problems.append(Problem(file, key, reason))
    return problems


def _check_catalog(streams: list[Stream], *, complete: bool) -> list[Problem]:
    """Checks across files; with ``complete`` False (a file did not parse) references to
    other streams are not checked, since the stream they name may be in that file."""
    problems: list[Problem] = []
    by_id: dict[str, list[Stream]] = {}
    for stream in streams:
        by_id.setdefault(stream.id, []).append(stream)
    for sid, same in by_id.items():
        for stream in same[1:] if len(same) > 1 else ():
            others = ", ".join(s.file for s in same if s is not stream)
            problems.append(Problem(stream.file, "id", f"{show(sid)} is also the id in {others}"))
    first_use: dict[str, tuple[Stream, Step]] = {}
    targets: set[str] = set()
    for stream in streams:
        for step in stream.steps:
            earlier = first_use.setdefault(step.content, (stream, step))
            if earlier[1].template != step.template:
                reason = (
                    f"content {show(step.content)} uses template {show(step.template)} here "
                    f"but {show(earlier[1].template)} in {earlier[0].file}: "
                    "one content id is one email everywhere"
                )
                problems.append(Problem(stream.file, f"steps[{step.index}].template", reason))
        for key, action in stream.transitions.actions():
            if action.kind != "move" or action.target is None:
                continue
            if action.target != stream.id:
                targets.add(action.target)
            if complete and action.target not in by_id:
                known = ", ".join(sorted(by_id))
                reason = f'"{action}" names no stream (streams: {known})'
                problems.append(Problem(stream.file, key, reason))
    for stream in streams:
        if complete and stream.entry is None and stream.id not in targets:
            reason = "unreachable: no [entry] table and no other stream moves leads here"
            problems.append(Problem(stream.file, "", reason))
    return problems + _exhausted_cycles({s.id: s for s in streams})


def _exhausted_cycles(streams: Mapping[str, Stream]) -> list[Problem]:
    """A -> B -> A through on_exhausted: once a lead has everything, it bounces forever."""
    problems, done = [], set[str]()
    for start in sorted(streams):
        path: list[str] = []
        sid: str | None = start
        while sid is not None and sid in streams and sid not in done and sid not in path:
            path.append(sid)
            action = streams[sid].transitions.on_exhausted
            sid = action.target if action.kind == "move" else None
        if sid is not None and sid in path and len(path) - path.index(sid) > 1:
            cycle = path[path.index(sid) :]
            first = min(cycle)
            cycle = cycle[cycle.index(first) :] + cycle[: cycle.index(first)]
            reason = (
                "on_exhausted moves in a circle, leads who received everything would bounce "
                f"forever: {' -> '.join([*cycle, first])}"
            )
            problems.append(Problem(streams[first].file, "transitions.on_exhausted", reason))
        done.update(path)
    return problems


def load_streams(
    directory: Path, *, templates: Collection[str], base_dir: Path | None = None
) -> Catalog:
    """Read and check every ``*.toml`` in ``directory``; ConfigError lists every problem.

    ``templates`` holds the template names that exist, like "pa-welcome" or
    "product-a/intro". Problems name files relative to ``base_dir`` (default: the
    directory's parent), e.g. ``streams/product-a.toml``.
    """
    base = base_dir if base_dir is not None else directory.parent

    def rel(path: Path) -> str:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return path.as_posix()

    if not directory.is_dir():
        raise ConfigError([Problem(rel(directory), "", "no such directory")])
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ConfigError([Problem(rel(directory), "", "no stream files (*.toml) in it")])
    problems: list[Problem] = []
    streams: list[Stream] = []
    for path in files:
        file = rel(path)
        try:
            raw = _Stream.model_validate(read_toml(path, file))
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        except ValidationError as exc:
            problems.extend(problems_from(file, exc))
            continue
        stream = _build(raw, file)
        problems.extend(_check_stream(stream, raw, templates))
        streams.append(stream)
    problems.extend(_check_catalog(streams, complete=not problems))
    if problems:
        raise ConfigError(problems)
    return Catalog(MappingProxyType({s.id: s for s in sorted(streams, key=lambda s: s.id)}))
