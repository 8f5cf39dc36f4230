"""Templates -> subject, text, HTML and tracked links; every template failure names its file."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nurtured.exceptions import ConfigError, Problem
from nurtured.render import SAMPLE_COMPANY, SAMPLE_LEAD, RenderedEmail, Renderer, TrackedLink
from nurtured.tokens import Signer

SIGNER = Signer(b"render-test-secret")
BASE = "https://t.acme.example"
SCAFFOLD_TEMPLATES = Path(__file__).parent.parent / "nurtured" / "scaffold" / "templates"
TOKEN = "AbCdEfGhIjKlMnOpQrStUv"

MakeRenderer = Callable[..., Renderer]


@pytest.fixture
def renderer(tmp_path: Path) -> MakeRenderer:
    """Write the given templates (name -> source, dedented) and build a Renderer on them."""

    def make(**files: str) -> Renderer:
        root = tmp_path / "templates"
        for name, source in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).lstrip("\n"))
        root.mkdir(exist_ok=True)
        return Renderer(root, base_url=BASE + "/", signer=SIGNER)

    return make


def render(r: Renderer, name: str = "t", **overrides: Any) -> RenderedEmail:
    args: dict[str, Any] = {
        "delivery_token": TOKEN,
        "lead": SAMPLE_LEAD,
        "company": SAMPLE_COMPANY,
        "sender": {"name": "Acme Analytics", "address": "hello@acme.example"},
        "stream": {"id": "product-a", "name": "Product A: learning"},
        "step": {"index": 2, "content": "pa-guide"},
    }
    return r.render(name, **(args | overrides))


def problems_of(r: Renderer, name: str = "t", **overrides: Any) -> tuple[Problem, ...]:
    with pytest.raises(ConfigError) as caught:
        render(r, name, **overrides)
    return caught.value.problems


SIMPLE = """
{% block subject %}Hello {{ lead.first_name }}{% endblock %}
{% block text %}
Hi {{ lead.first_name }}, see {{ link("https://acme.example/a") }}
{% endblock %}
"""


def test_every_context_variable_reaches_the_template(renderer: MakeRenderer) -> None:
    """lead, company, sender, stream, step, unsubscribe_url and open_pixel_url are available."""
    r = renderer(
        **{
            "t.j2": """
            {% block subject %}s{% endblock %}
            {% block text %}
            {{ lead.email }}|{{ lead.first_name }}|{{ lead.last_name }}|{{ lead.full_name }}
            {{ lead.title }}|{{ lead.source }}|{{ lead.interests|join(",") }}|{{ lead.timezone }}
            {{ lead.fields.plan }}
            {{ company.name }}|{{ company.domain }}|{{ company.size }}|{{ company.industry }}
            {{ sender.name }}|{{ sender.address }}|{{ stream.id }}|{{ stream.name }}
            {{ step.index }}|{{ step.content }}
            {{ unsubscribe_url }}
            {{ open_pixel_url }}
            {% endblock %}
            """
        }
    )
    lead = dict(SAMPLE_LEAD, fields={"plan": "gold"}, interests=["product-a", "product-b"])
    lines = render(r, lead=lead).text.splitlines()
    assert lines[0] == "dana.whitfield@example.com|Dana|Whitfield|Dana Whitfield"
    assert lines[1] == "Head of Revenue Operations|webinar|product-a,product-b|America/Chicago"
    assert lines[2] == "gold"
    assert lines[3] == "Northwind Logistics|northwind.example.com|200-500|Logistics"
    assert lines[4] == "Acme Analytics|hello@acme.example|product-a|Product A: learning"
    assert lines[5] == "2|pa-guide"
    assert lines[6] == f"{BASE}/u/{SIGNER.sign('u', TOKEN)}"
    assert lines[7] == f"{BASE}/o/{SIGNER.sign('o', TOKEN)}.gif"
    assert SIGNER.verify("u", lines[6].rsplit("/", 1)[1]) == (TOKEN,)


def test_lead_without_company_or_names_renders_empty_not_none(renderer: MakeRenderer) -> None:
    """company=None is a mapping of None values, and None prints as nothing, never "None"."""
    r = renderer(
        **{
            "t.j2": """
            {% block subject %}Hi {{ lead.first_name or "there" }}{% endblock %}
            {% block text %}
            [{{ company.name }}][{{ lead.full_name }}][{{ lead.interests|length }}]
            {% if company.name %}at {{ company.name }}{% else %}no company{% endif %}
            {% endblock %}
            """
        }
    )
    email = render(r, lead={"email": "x@example.org"}, company=None)
    assert email.subject == "Hi there"
    assert email.text == "[][][0]\nno company\n"


def test_undefined_field_names_file_line_and_field(renderer: MakeRenderer) -> None:
    """A misspelt field is a Problem naming the file, the line and the missing attribute."""
    r = renderer(**{"t.j2": SIMPLE.replace("Hi {{ lead.first_name }}", "Hi {{ lead.frist_name }}")})
    assert problems_of(r) == (
        Problem("templates/t.j2", "line 3", "'lead' has no attribute 'frist_name'"),
    )
    assert r.check() == [
        Problem("templates/t.j2", "line 3", "'lead' has no attribute 'frist_name'")
    ]


def test_undefined_variable_is_named(renderer: MakeRenderer) -> None:
    """An unknown top-level name in the subject says it is undefined."""
    r = renderer(**{"t.j2": SIMPLE.replace("Hello {{", "Hello {{ leed.x }}{{")})
    assert problems_of(r) == (Problem("templates/t.j2", "line 1", "'leed' is undefined"),)


@pytest.mark.parametrize("block", ["subject", "text"])
def test_missing_required_block(renderer: MakeRenderer, block: str) -> None:
    """subject and text are required: every message has a plain-text part."""
    source = SIMPLE.replace(f"block {block} ", f"block other_{block} ")
    r = renderer(**{"t.j2": source})
    assert problems_of(r) == (Problem("templates/t.j2", "", f"missing block {block!r}"),)
    assert r.check() == [Problem("templates/t.j2", "", f"missing block {block!r}")]


def test_html_is_generated_from_text_when_absent(renderer: MakeRenderer) -> None:
    """Without an html block: escaped text, paragraphs in <p>, URLs clickable, open pixel."""
    r = renderer(
        **{
            "t.j2": """
            {% block subject %}s{% endblock %}
            {% block text %}
            Hi {{ lead.first_name }} & <team>,
            read https://acme.example/a?x=1&y=2.

            Tracked: {{ link("https://acme.example/b") }}
            Bracketed <https://acme.example/c>
            {% endblock %}
            """
        }
    )
    email = render(r, lead=dict(SAMPLE_LEAD, first_name='<b>"Dana"</b>'))
    assert email.text.startswith('Hi <b>"Dana"</b> & <team>,\n')
    html = email.html
    assert "&lt;b&gt;&#34;Dana&#34;&lt;/b&gt; &amp; &lt;team&gt;,<br>" in html
    assert "<b>" not in html
    href = "https://acme.example/a?x=1&amp;y=2"
    assert f'read <a href="{href}">{href}</a>.</p>' in html
    tracked = f"{BASE}/c/{SIGNER.sign('c', TOKEN, '0')}"
    assert f'Tracked: <a href="{tracked}">{tracked}</a>' in html
    assert 'Bracketed <a href="https://acme.example/c">https://acme.example/c</a></p>' in html
    assert html.count("<p") == 2
    pixel = f"{BASE}/o/{SIGNER.sign('o', TOKEN)}.gif"
    assert f'<img src="{pixel}" width="1" height="1" alt=""' in html


def test_autoescape_applies_to_html_only(renderer: MakeRenderer) -> None:
    """Lead data is escaped in the HTML block and left as written in subject and text."""
    r = renderer(
        **{
            "t.j2": SIMPLE
            + """
            {% block html %}<p title="{{ lead.first_name }}">Hi {{ lead.first_name }}</p>
            {%- endblock %}
            """
        }
    )
    evil = "<script>alert('x')</script>"
    email = render(r, lead=dict(SAMPLE_LEAD, first_name=evil))
    assert email.subject == f"Hello {evil}"
    assert f"Hi {evil}, see" in email.text
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert email.html == f'<p title="{escaped}">Hi {escaped}</p>'


def test_links_are_indexed_tagged_and_signed(renderer: MakeRenderer) -> None:
    """link() numbers links in order, reuses the index for the same url+tag, signs the index."""
    r = renderer(
        **{
            "t.j2": """
            {% block subject %}s{% endblock %}
            {% block text %}
            {{ link("https://acme.example/a", tag="interest:product-a") }}
            {{ link("https://acme.example/b") }}
            {{ link("https://acme.example/a", tag="interest:product-a") }}
            {{ link("https://acme.example/a", tag="interest:product-b") }}
            {% endblock %}
            {% block html %}
            <a href="{{ link("https://acme.example/b") }}">b</a>
            <a href="{{ link("https://acme.example/html-only?x=1&y=2") }}">new</a>
            {% endblock %}
            """
        }
    )
    email = render(r)
    assert email.links == (
        TrackedLink(0, "https://acme.example/a", "interest:product-a"),
        TrackedLink(1, "https://acme.example/b", None),
        TrackedLink(2, "https://acme.example/a", "interest:product-b"),
        TrackedLink(3, "https://acme.example/html-only?x=1&y=2", None),
    )
    urls = email.text.split()
    assert urls[0] == urls[2] != urls[3]
    for url, index in zip(urls, [0, 1, 0, 2], strict=True):
        assert url.startswith(f"{BASE}/c/")
        assert SIGNER.verify("c", url.removeprefix(f"{BASE}/c/")) == (TOKEN, str(index))
    assert f'<a href="{urls[1]}">b</a>' in email.html
    assert f'<a href="{BASE}/c/{SIGNER.sign("c", TOKEN, "3")}">new</a>' in email.html


def test_link_with_text_makes_an_anchor_in_html(renderer: MakeRenderer) -> None:
    """link(url, text=...) gives "text <url>" in text and an escaped <a> element in HTML."""
    call = '{{ link("https://acme.example/g", text="the <guide>") }}'
    r = renderer(
        **{
            "t.j2": f"""
        {{% block subject %}}s{{% endblock %}}
        {{% block text %}}{call}{{% endblock %}}
        {{% block html %}}{call}{{% endblock %}}
        """
        }
    )
    email = render(r)
    url = f"{BASE}/c/{SIGNER.sign('c', TOKEN, '0')}"
    assert email.text == f"the <guide> <{url}>\n"
    assert email.html == f'<a href="{url}">the &lt;guide&gt;</a>'


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://acme.example/x",
        "/relative",
        "http://",
        "https://a b.example",
        "mailto:x@acme.example",
        "https://acme.example/\r\nX: y",
    ],
)
def test_non_http_link_is_a_template_error(renderer: MakeRenderer, url: str) -> None:
    """link() accepts only absolute http(s) URLs; anything else fails the render with its line."""
    r = renderer(
        **{"t.j2": SIMPLE.replace("https://acme.example/a", url.replace("\r\n", "\\r\\n"))}
    )
    (problem,) = problems_of(r)
    assert problem.file == "templates/t.j2"
    assert problem.key == "line 3"
    assert problem.reason.startswith("link(): ")
    assert problem.reason.endswith("is not an http(s) URL")


def test_subject_collapses_to_one_line(renderer: MakeRenderer) -> None:
    """Newlines, tabs and control characters in the subject (even from lead data) collapse."""
    r = renderer(
        **{
            "t.j2": """
            {% block subject %}
              Hello   {{ lead.first_name }},
              welcome	aboard
            {% endblock %}
            {% block text %}x{% endblock %}
            """
        }
    )
    email = render(r, lead=dict(SAMPLE_LEAD, first_name="Dana\r\nBcc: all@example.org\x00"))
    assert email.subject == "Hello Dana Bcc: all@example.org , welcome aboard"


def test_runtime_errors_become_problems(renderer: MakeRenderer) -> None:
    """Any exception inside a template is a ConfigError naming the file and line."""
    r = renderer(**{"t.j2": SIMPLE.replace("see {{", "{{ 1 // 0 }} {{")})
    (problem,) = problems_of(r)
    assert problem == Problem(
        "templates/t.j2", "line 3", "ZeroDivisionError: integer division or modulo by zero"
    )


def test_syntax_error_names_file_and_line(renderer: MakeRenderer) -> None:
    """A broken tag is reported with its file, line and Jinja's message."""
    r = renderer(**{"t.j2": SIMPLE.replace("see {{", "{% if %} {{"), "ok.j2": SIMPLE})
    expected = Problem(
        "templates/t.j2", "line 3", "Expected an expression, got 'end of statement block'"
    )
    assert problems_of(r) == (expected,)
    assert r.check() == [expected]
    assert render(r, "ok").subject == "Hello Dana"


def test_unknown_filter_names_file_and_line(renderer: MakeRenderer) -> None:
    """An unknown filter, found when compiling, is reported like a syntax error."""
    r = renderer(**{"t.j2": SIMPLE.replace("see {{", "{{ lead.email|shout }} {{")})
    assert problems_of(r) == (Problem("templates/t.j2", "line 3", "No filter named 'shout'."),)


def test_extends_layout_with_super_and_layout_only_blocks(renderer: MakeRenderer) -> None:
    """Blocks render through {% extends %}: inherited html, super(), self.subject()."""
    r = renderer(
        **{
            "_layout.j2": """
            {% block html %}<title>{{ self.subject() }}</title>{% block body %}{% endblock %}
            <a href="{{ unsubscribe_url }}">unsubscribe</a>{% endblock %}
            {% block text %}Footer{% endblock %}
            """,
            "t.j2": """
            {% extends "_layout.j2" %}
            {% block subject %}Hi {{ lead.first_name }}{% endblock %}
            {% block text %}Body. {{ super() }}{% endblock %}
            {% block body %}<p>{{ link("https://acme.example/x") }}</p>{% endblock %}
            """,
        }
    )
    email = render(r, lead=dict(SAMPLE_LEAD, first_name="A&B"))
    assert email.text == "Body. Footer\n"
    unsubscribe = f"{BASE}/u/{SIGNER.sign('u', TOKEN)}"
    link = f"{BASE}/c/{SIGNER.sign('c', TOKEN, '0')}"
    assert email.html == (
        f'<title>Hi A&amp;B</title><p>{link}</p><a href="{unsubscribe}">unsubscribe</a>'
    )
    assert r.template_names() == frozenset({"t"})


def test_errors_in_a_layout_name_the_layout(renderer: MakeRenderer) -> None:
    """A bad field in the layout is reported against templates/_layout.j2 and its line."""
    r = renderer(
        **{
            "_layout.j2": "{% block html %}\n{{ sender.nmae }}\n{% endblock %}\n",
            "t.j2": '{% extends "_layout.j2" %}\n' + SIMPLE,
        }
    )
    assert problems_of(r) == (
        Problem("templates/_layout.j2", "line 2", "'sender' has no attribute 'nmae'"),
    )


def test_broken_extends_are_problems(renderer: MakeRenderer) -> None:
    """A missing layout, a syntax error in it, a cycle and a computed name are each named."""
    r = renderer(
        **{
            "missing.j2": '{% extends "_nope.j2" %}\n' + SIMPLE,
            "_broken.j2": "{% block html %}{% endfor %}{% endblock %}",
            "broken.j2": '\n{% extends "_broken.j2" %}\n' + SIMPLE,
            "_a.j2": '{% extends "_b.j2" %}',
            "_b.j2": '{% extends "_a.j2" %}',
            "cycle.j2": '{% extends "_a.j2" %}\n' + SIMPLE,
            "dynamic.j2": "{% extends lead.layout %}\n" + SIMPLE,
        }
    )
    assert problems_of(r, "missing") == (
        Problem("templates/missing.j2", "line 1", "extends '_nope.j2': no such template"),
    )
    (broken,) = problems_of(r, "broken")
    assert (broken.file, broken.key) == ("templates/_broken.j2", "line 1")
    assert "endfor" in broken.reason
    assert problems_of(r, "cycle") == (
        Problem("templates/_b.j2", "line 1", "extends '_a.j2', which extends it"),
    )
    (dynamic,) = problems_of(r, "dynamic")
    assert (dynamic.file, dynamic.key) == ("templates/dynamic.j2", "line 1")
    assert problems_of(r, "nope") == (Problem("templates/nope.j2", "", "no such template"),)


def test_include_of_missing_partial_is_named(renderer: MakeRenderer) -> None:
    """An include of a partial that does not exist names the including line."""
    r = renderer(**{"t.j2": SIMPLE.replace("see {{", '{% include "_gone.j2" %}{{')})
    assert problems_of(r) == (Problem("templates/t.j2", "line 3", "template '_gone.j2' not found"),)


def test_check_renders_for_a_lead_with_nothing_but_an_email(renderer: MakeRenderer) -> None:
    """check() also renders for a bare lead: code that breaks on missing data is caught."""
    r = renderer(
        **{
            "t.j2": SIMPLE.replace("see {{", "{{ company.name.upper() }} {{"),
            "empty.j2": SIMPLE.replace("Hello {{ lead.first_name }}", "{{ lead.first_name }}"),
            "_unused.j2": "{% if %}",
        }
    )
    assert r.check(["t", "empty"]) == [
        Problem(
            "templates/empty.j2",
            "block subject",
            "renders empty for a lead with only an email address",
        ),
        Problem("templates/t.j2", "line 3", "'None' has no attribute 'upper'"),
    ]
    problems = r.check()
    assert [p.file for p in problems] == [
        "templates/_unused.j2",
        "templates/empty.j2",
        "templates/t.j2",
    ]


def test_template_names_cover_subdirectories_but_not_partials(renderer: MakeRenderer) -> None:
    """Content names are paths without .j2; files or folders starting with "_" are partials."""
    r = renderer(
        **{
            "product-a/intro.j2": SIMPLE,
            "product-a/_header.j2": "x",
            "_partials/footer.j2": "x",
            "top.j2": SIMPLE,
            "notes.txt": "not a template",
        }
    )
    assert r.template_names() == frozenset({"product-a/intro", "top"})
    assert render(r, "product-a/intro").subject == "Hello Dana"
    assert r.check() == []


def test_templates_are_compiled_once(renderer: MakeRenderer, tmp_path: Path) -> None:
    """After the first render a template is not read again: a reload needs a new Renderer."""
    r = renderer(**{"t.j2": SIMPLE})
    assert render(r).subject == "Hello Dana"
    (tmp_path / "templates" / "t.j2").write_text(SIMPLE.replace("Hello", "Changed"))
    assert render(r).subject == "Hello Dana"
    fresh = Renderer(tmp_path / "templates", base_url=BASE, signer=SIGNER)
    assert render(fresh).subject == "Changed Dana"


def test_scaffold_templates_have_no_problems() -> None:
    """The example project's templates render for the sample lead and for a bare lead."""
    r = Renderer(SCAFFOLD_TEMPLATES, base_url=BASE, signer=SIGNER)
    assert r.check() == []
    assert len(r.template_names()) >= 10


def test_scaffold_emails_are_complete(renderer: MakeRenderer) -> None:
    """Every example email has a greeting fallback, an unsubscribe link in text and HTML."""
    r = Renderer(SCAFFOLD_TEMPLATES, base_url=BASE, signer=SIGNER)
    unsubscribe = f"{BASE}/u/{SIGNER.sign('u', TOKEN)}"
    for name in sorted(r.template_names()):
        email = render(r, name, lead={"email": "x@example.org"}, company=None)
        assert email.text.startswith("Hi there,\n"), name
        assert unsubscribe in email.text, name
        assert f'href="{unsubscribe}"' in email.html, name
        assert "None" not in email.text + email.subject, name
        named = render(r, name, lead=dict(SAMPLE_LEAD, first_name="<i>Dana</i>"))
        assert "<i>Dana</i>" not in named.html, name
