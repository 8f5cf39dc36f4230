"""Templates -> RenderedEmail: subject, text, HTML and the tracked links in them.

One ``templates/<content>.j2`` per content, with blocks ``subject`` and ``text``
(required) and ``html`` (optional: made from the text when absent). Two Jinja2
environments are built once over the same files: the HTML block is compiled with
autoescape, subject and text without, so lead data is escaped exactly where it is HTML.
Each block is rendered on its own, with the blocks of every template it extends
stacked behind it as Jinja does, so ``{% extends %}``, ``super()`` and ``self.x()`` work.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context
from markupsafe import Markup, escape

from nurtured.exceptions import ConfigError, Problem
from nurtured.tokens import Signer

REQUIRED_BLOCKS: Final = ("subject", "text")

SAMPLE_LEAD: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "email": "dana.whitfield@example.com",
        "first_name": "Dana",
        "last_name": "Whitfield",
        "full_name": "Dana Whitfield",
        "title": "Head of Revenue Operations",
        "source": "webinar",
        "interests": ["product-a"],
        "timezone": "America/Chicago",
        "fields": {"country": "US"},
    }
)
SAMPLE_COMPANY: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "name": "Northwind Logistics",
        "domain": "northwind.example.com",
        "size": "200-500",
        "industry": "Logistics",
    }
)
LEAD_KEYS: Final = tuple(SAMPLE_LEAD)
COMPANY_KEYS: Final = tuple(SAMPLE_COMPANY)
# A lead with nothing but an address: every template must survive it too.
_BARE_LEAD: Final[Mapping[str, Any]] = MappingProxyType({"email": "someone@example.org"})
_CHECK_LEADS: Final = (
    ("the sample lead", SAMPLE_LEAD, SAMPLE_COMPANY),
    ("a lead with only an email address", _BARE_LEAD, None),
)
_SAMPLE_SENDER: Final = {"name": "Acme Analytics", "address": "hello@acme.example"}
_SAMPLE_STREAM: Final = {"id": "sample", "name": "Sample stream"}
_SAMPLE_STEP: Final = {"index": 0, "content": "sample"}
_SAMPLE_DELIVERY: Final = "AAAAAAAAAAAAAAAAAAAAAA"

_URL = re.compile(r"<(https?://[^\s<>\"]+)>|(https?://[^\s<>\"]+)")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class TrackedLink:
    index: int
    url: str
    tag: str | None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    links: tuple[TrackedLink, ...]
    unsubscribe_url: str  # the signed /u/ URL, also the List-Unsubscribe target


class Record(dict[str, Any]):
    """A dict that names itself in errors: "'lead' has no attribute 'frist_name'"."""

    __slots__ = ("label",)

    def __init__(self, label: str, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.label = label


class _Undefined(jinja2.StrictUndefined):
    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj = self._undefined_obj
        if isinstance(obj, Record) and not self._undefined_hint:
            return f"{obj.label!r} has no attribute {self._undefined_name!r}"
        return super()._undefined_message


class _TemplateBug(Exception):
    """A template called something wrongly (e.g. link() with a non-http URL)."""


@dataclass
class _Links:
    """link() for one rendering: the same url and tag get the same index in every block."""

    base_url: str
    signer: Signer
    delivery_token: str
    found: dict[tuple[str, str | None], TrackedLink] = field(default_factory=dict)
    urls: dict[tuple[str, str | None], str] = field(default_factory=dict)  # signed, per link

    def tracked(self, url: object, tag: object) -> str:
        if not isinstance(url, str) or not _is_web_url(url):
            raise _TemplateBug(f"link(): {url!r} is not an http(s) URL")
        if tag is not None and not isinstance(tag, str):
            raise _TemplateBug(f"link(): tag {tag!r} is not a string")
        key = (url, tag)
        tracked = self.urls.get(key)
        if tracked is None:  # first use in this rendering: the text and HTML share it
            index = len(self.found)
            self.found[key] = TrackedLink(index, url, tag)
            token = self.signer.sign("c", self.delivery_token, str(index))
            tracked = self.urls[key] = f"{self.base_url}/c/{token}"
        return tracked

    def text(self, url: str, tag: str | None = None, text: str | None = None) -> str:
        tracked = self.tracked(url, tag)
        return f"{text} <{tracked}>" if text else tracked

    def html(self, url: str, tag: str | None = None, text: str | None = None) -> str:
        tracked = self.tracked(url, tag)
        return Markup('<a href="{}">{}</a>').format(tracked, text) if text else tracked


@dataclass(frozen=True)
class _Compiled:
    text: tuple[jinja2.Template, ...]  # the template, then each template it extends
    html: tuple[jinja2.Template, ...]
    has_html: bool


class Renderer:
    """Renders content templates for one templates directory; build once, render often."""

    def __init__(self, templates_dir: Path, *, base_url: str, signer: Signer) -> None:
        self.templates_dir = templates_dir
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self._label = templates_dir.name
        self._loader = jinja2.FileSystemLoader(templates_dir)
        options: dict[str, Any] = {
            "loader": self._loader,
            "undefined": _Undefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
            "auto_reload": False,
            "cache_size": -1,
            "finalize": _none_is_empty,
        }
        self._text_env = jinja2.Environment(autoescape=False, **options)  # noqa: S701
        self._html_env = jinja2.Environment(autoescape=True, **options)
        self._compiled: dict[str, _Compiled | tuple[Problem, ...]] = {}
        files = (p.relative_to(templates_dir).as_posix() for p in templates_dir.rglob("*.j2"))
        self._files = frozenset(f for f in files if not any(s[0] == "." for s in f.split("/")))
        self._names = frozenset(
            f.removesuffix(".j2") for f in self._files if not any(s[0] == "_" for s in f.split("/"))
        )

    def template_names(self) -> frozenset[str]:
        """Content templates (not "_" layouts and partials), without ".j2"."""
        return self._names

    def render(
        self,
        template: str,
        *,
        delivery_token: str,
        lead: Mapping[str, Any],
        company: Mapping[str, Any] | None,
        sender: Mapping[str, str],
        stream: Mapping[str, Any],
        step: Mapping[str, Any],
    ) -> RenderedEmail:
        """Render one email for one lead; any template failure is a ConfigError."""
        compiled = self._load(template)
        links = _Links(self.base_url, self.signer, delivery_token)
        pixel = f"{self.base_url}/o/{self.signer.sign('o', delivery_token)}.gif"
        unsubscribe = f"{self.base_url}/u/{self.signer.sign('u', delivery_token)}"
        variables = {
            "lead": _lead_record(lead),
            "company": Record("company", {k: None for k in COMPANY_KEYS} | dict(company or {})),
            "sender": Record("sender", sender),
            "stream": Record("stream", stream),
            "step": Record("step", step),
            "unsubscribe_url": unsubscribe,
            "open_pixel_url": pixel,
            "link": links.text,
        }
        # Subject and text share one context, as blocks of one template do in Jinja.
        context = self._context(compiled.text, variables)
        subject = self._block(template, context, "subject")
        text = self._block(template, context, "text").strip("\r\n") + "\n"
        if compiled.has_html:
            variables["link"] = links.html
            html = self._block(template, self._context(compiled.html, variables), "html")
        else:
            html = html_from_text(text, pixel)
        return RenderedEmail(
            one_line(subject), text, html, tuple(links.found.values()), unsubscribe
        )

    def check(self, names: Iterable[str] | None = None) -> list[Problem]:
        """Compile templates and render each for a sample lead and a bare one; every problem."""
        problems: set[Problem] = set()
        if names is None:
            names = self._names
            for partial in self._files - {f"{n}.j2" for n in names}:
                problems.update(self._compile_problems(partial))
        for name in sorted(set(names)):
            for who, lead, company in _CHECK_LEADS:
                try:
                    rendered = self.render(
                        name,
                        delivery_token=_SAMPLE_DELIVERY,
                        lead=lead,
                        company=company,
                        sender=_SAMPLE_SENDER,
                        stream=_SAMPLE_STREAM,
                        step=_SAMPLE_STEP,
                    )
                except ConfigError as exc:
                    problems.update(exc.problems)
                    break
                for block in ("subject", "text"):
                    if not getattr(rendered, block).strip():
                        problems.add(
                            self._problem(
                                f"{name}.j2", f"block {block}", f"renders empty for {who}"
                            )
                        )
        return sorted(problems)

    def _problem(self, file: str, key: str, reason: str) -> Problem:
        return Problem(f"{self._label}/{file}", key, reason)

    def _load(self, name: str) -> _Compiled:
        compiled = self._compiled.get(name)
        if compiled is None:
            try:
                compiled = self._compile(name)
            except ConfigError as exc:
                compiled = exc.problems
            self._compiled[name] = compiled
        if isinstance(compiled, tuple):
            raise ConfigError(compiled)
        return compiled

    def _compile_problems(self, file: str) -> list[Problem]:
        try:
            self._chain(file)
        except ConfigError as exc:
            return list(exc.problems)
        return []

    def _compile(self, name: str) -> _Compiled:
        file = f"{name}.j2"
        chain = self._chain(file)
        try:  # compiling finds what parsing cannot, such as an unknown filter
            text = tuple(self._text_env.get_template(f) for f in chain)
            html = tuple(self._html_env.get_template(f) for f in chain)
        except jinja2.TemplateError as exc:
            raise self._error(exc, file, "") from exc
        blocks = {block for template in text for block in template.blocks}
        missing = [b for b in REQUIRED_BLOCKS if b not in blocks]
        if missing:
            raise ConfigError([self._problem(file, "", f"missing block {b!r}") for b in missing])
        return _Compiled(text, html, "html" in blocks)

    def _chain(self, file: str) -> list[str]:
        """The file and every layout it extends, nearest first (each parsed once here)."""
        chain: list[str] = []
        current: str | None = file
        lineno = 0
        while current is not None:
            child = chain[-1] if chain else file
            if current in chain:
                reason = f"extends {current!r}, which extends it"
                raise ConfigError([self._problem(child, f"line {lineno}", reason)])
            try:
                source, filename, _ = self._loader.get_source(self._text_env, current)
                tree = self._text_env.parse(source, current, filename)
            except jinja2.TemplateNotFound as exc:
                if not chain:
                    raise ConfigError([self._problem(file, "", "no such template")]) from exc
                reason = f"extends {current!r}: no such template"
                raise ConfigError([self._problem(child, f"line {lineno}", reason)]) from exc
            except jinja2.TemplateSyntaxError as exc:
                raise self._error(exc, current, "") from exc
            chain.append(current)
            current, lineno = self._parent(tree, current)
        return chain

    def _parent(self, tree: nodes.Template, file: str) -> tuple[str | None, int]:
        extends = next(tree.find_all(nodes.Extends), None)
        if extends is None:
            return None, 0
        if isinstance(extends.template, nodes.Const) and isinstance(extends.template.value, str):
            return extends.template.value, extends.lineno
        reason = 'extends must name one template, like {% extends "_layout.j2" %}'
        raise ConfigError([self._problem(file, f"line {extends.lineno}", reason)])

    @staticmethod
    def _context(chain: tuple[jinja2.Template, ...], variables: dict[str, Any]) -> Context:
        context = chain[0].new_context(variables)
        for parent in chain[1:]:  # what {% extends %} does when the whole file renders
            for key, render in parent.blocks.items():
                context.blocks.setdefault(key, []).append(render)
        return context

    def _block(self, name: str, context: Context, block: str) -> str:
        try:
            return "".join(context.blocks[block][0](context))
        except Exception as exc:
            raise self._error(exc, f"{name}.j2", f"block {block}") from exc

    def _error(self, exc: Exception, file: str, key: str) -> ConfigError:
        """Name the template file and line where ``exc`` happened, as a marketer reads it."""
        if isinstance(exc, jinja2.TemplateSyntaxError):
            return ConfigError(
                [self._problem(exc.name or file, f"line {exc.lineno}", exc.message or str(exc))]
            )
        for template, lineno in _template_frames(exc.__traceback__):
            file, key = template.name or file, f"line {lineno}"
        if isinstance(exc, jinja2.TemplateNotFound):
            reason = f"template {exc.name!r} not found"
        elif isinstance(exc, jinja2.TemplateError | _TemplateBug):
            reason = str(exc)
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return ConfigError([self._problem(file, key, reason)])


def _none_is_empty(value: Any) -> Any:
    """``{{ company.name }}`` of a lead without a company prints nothing, never "None"."""
    return "" if value is None else value


def _template_frames(tb: TracebackType | None) -> Iterator[tuple[jinja2.Template, int]]:
    """Each traceback frame that runs template code, with its line in the template."""
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if isinstance(template, jinja2.Template):
            yield template, template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next


def _lead_record(lead: Mapping[str, Any]) -> Record:
    data: dict[str, Any] = {k: None for k in LEAD_KEYS} | {"interests": [], "fields": {}}
    data.update(lead)
    if data["full_name"] is None:
        data["full_name"] = " ".join(p for p in (data["first_name"], data["last_name"]) if p)
    data["fields"] = Record("lead.fields", data["fields"] or {})
    return Record("lead", data)


@functools.lru_cache(maxsize=4096)  # a template's links are the same for every lead
def _is_web_url(url: str) -> bool:
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def one_line(value: str) -> str:
    """Whitespace, newlines and control characters collapsed: safe for a header."""
    return " ".join(_CONTROL.sub(" ", value).split())


def html_from_text(text: str, pixel_url: str | None = None) -> str:
    """A plain HTML part for a text: escaped, paragraphs in <p>, URLs clickable."""
    paragraphs = [p for p in _PARAGRAPH.split(text.strip()) if p.strip()]
    body = "\n".join(
        f'<p style="margin:0 0 1em 0">{_linkify(p).replace(chr(10), "<br>" + chr(10))}</p>'
        for p in paragraphs
    )
    if pixel_url:
        pixel = escape(pixel_url)
        body += f'\n<img src="{pixel}" width="1" height="1" alt="" style="display:block;border:0">'
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n</head>\n'
        '<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;'
        'font-size:16px;line-height:1.5;color:#222222">\n'
        f"{body}\n</body>\n</html>\n"
    )


def _linkify(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(1) or match.group(2)
        trimmed = url if match.group(1) else url.rstrip(".,;:!?)]}'")
        out.append(str(escape(text[last : match.start()])))
        href = str(escape(trimmed))
        out.append(f'<a href="{href}">{href}</a>')
        last = match.end() if match.group(1) else match.start() + len(trimmed)
    out.append(str(escape(text[last:])))
    return "".join(out)
