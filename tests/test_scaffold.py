"""The example project that `nurtured init` writes, and its copy at the top of the repository."""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from nurtured.config import _Config

REPO = Path(__file__).parent.parent
SCAFFOLD = REPO / "nurtured" / "scaffold"
TOP_LEVEL = {"config.toml": "config.toml", "leads.csv": "examples/leads.csv"}
TAG = re.compile(r"""tag=["']([^"']+)["']""")


def scaffold_files() -> list[str]:
    return sorted(p.relative_to(SCAFFOLD).as_posix() for p in SCAFFOLD.rglob("*") if p.is_file())


def streams() -> dict[str, dict[str, Any]]:
    loaded = {}
    for path in sorted((SCAFFOLD / "streams").glob("*.toml")):
        with path.open("rb") as handle:
            loaded[path.stem] = tomllib.load(handle)
    return loaded


def template_of(step: dict[str, Any]) -> Path:
    return SCAFFOLD / "templates" / f"{step.get('template', step['content'])}.j2"


@pytest.mark.parametrize("name", scaffold_files())
def test_top_level_copy_is_identical(name: str) -> None:
    """Each scaffold file has a byte-identical copy at the repository top (examples/ for CSV)."""
    copy = REPO / TOP_LEVEL.get(name, name)
    assert copy.read_bytes() == (SCAFFOLD / name).read_bytes(), f"{copy} differs from scaffold"


@pytest.mark.parametrize("folder", ["streams", "templates"])
def test_top_level_has_no_extra_files(folder: str) -> None:
    """The top-level streams/ and templates/ hold nothing the scaffold lacks."""
    top = {p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*") if p.is_file()}
    assert top == {f for f in scaffold_files() if f.startswith(f"{folder}/")}


def test_three_streams_with_ids_matching_file_names() -> None:
    """product-a, product-b and long-term; each file's id is its name."""
    loaded = streams()
    assert sorted(loaded) == ["long-term", "product-a", "product-b"]
    assert all(stream["id"] == name for name, stream in loaded.items())


def test_every_step_has_a_template_and_every_template_is_used() -> None:
    """Each step's content has its template file; no content template is left unused."""
    used = set()
    for name, stream in streams().items():
        for i, step in enumerate(stream["steps"]):
            assert template_of(step).is_file(), f"streams/{name}.toml: steps[{i}]"
            used.add(template_of(step).name)
    templates = {p.name for p in (SCAFFOLD / "templates").glob("*.j2")}
    assert {t for t in templates if not t.startswith("_")} == used


def test_product_streams_share_content_and_link_to_each_other() -> None:
    """A shared content id shows skip-on-move; each on_click tag is on a link in that stream."""
    loaded = streams()
    contents = {name: [s["content"] for s in st["steps"]] for name, st in loaded.items()}
    assert set(contents["product-a"]) & set(contents["product-b"])
    assert not set(contents["long-term"]) & (
        set(contents["product-a"]) | set(contents["product-b"])
    )
    for name, stream in loaded.items():
        tags = {t for s in stream["steps"] for t in TAG.findall(template_of(s).read_text())}
        for tag, action in stream["transitions"].get("on_click", {}).items():
            assert tag in tags, f"{name}: no link tagged {tag!r} for {action!r}"
            assert action.removeprefix("move:") in loaded


def test_stream_shapes() -> None:
    """Product streams move to long-term when done; long-term is the catch-all and holds."""
    loaded = streams()
    for name in ("product-a", "product-b"):
        assert 4 <= len(loaded[name]["steps"]) <= 5
        assert loaded[name]["transitions"]["on_exhausted"] == "move:long-term"
        assert loaded[name]["entry"]["interests"] == [name]
    long_term = loaded["long-term"]
    assert long_term["entry"] == {"sources": [], "interests": [], "priority": 1000}
    assert long_term["transitions"]["on_exhausted"] == "hold"
    assert {s["wait"] for s in long_term["steps"]} == {"30d"}


def test_config_shows_every_setting() -> None:
    """config.toml carries every section and key of the schema, with the embedded defaults."""
    with (SCAFFOLD / "config.toml").open("rb") as handle:
        config = tomllib.load(handle)
    assert config["database"] == {"url": "sqlite://nurtured.db"}
    assert config["mail"]["transport"] == "outbox"
    assert set(config["mail"]["smtp"]) == {"host", "port", "tls", "pool_size", "timeout"}
    assert set(config["sender"]) == {"from", "reply_to", "unsubscribe_mailto", "plus_address"}
    assert set(config["sending"]) == {
        "rate_limit",
        "timezone",
        "window",
        "holidays",
        "batch_size",
        "retry",
    }
    assert config["tracking"] == {
        "base_url": "http://localhost:8080",
        "secret_env": "NURTURED_SECRET",
    }
    assert config["paths"] == {"streams": "streams", "templates": "templates"}
    assert set(config) == set(_Config.model_fields)  # every section is shown
    assert config["queue"]["backend"] == "embedded"
    assert config["inbox"]["source"] == "maildir"
    text = (SCAFFOLD / "config.toml").read_text()
    assert '# username = "mailer"' in text
    assert '# password_env = "NURTURED_SMTP_PASSWORD"' in text


def test_example_leads() -> None:
    """leads.csv: the documented header, example domains, varied sources and time zones."""
    with (SCAFFOLD / "leads.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == [
        "email",
        "first_name",
        "last_name",
        "company",
        "title",
        "source",
        "interest",
        "timezone",
    ]
    assert 6 <= len(rows) <= 10
    assert all(re.fullmatch(r"[a-z.]+@example\.(com|org)", r["email"]) for r in rows)
    zones = {r["timezone"] for r in rows}
    assert {"", "America/New_York", "Asia/Tokyo"} <= zones
    assert len({r["source"] for r in rows}) >= 4
    assert {"product-a", "product-b", ""} <= {r["interest"] for r in rows}
