# ruff: noqa: F811  (the `home` project fixture is imported from test_cli)
"""The data commands from the command line: suppress, leads merge, lead set email=,
lead export and lead erase."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from nurtured.cli import main

from .test_cli import NOW, cmd, home  # noqa: F401


def suppress(home: Path, *args: str) -> Result:
    config = ["--config", str(home / "config.toml")]
    now = ["--now", NOW] if args[0] in ("add", "import") else []
    return CliRunner().invoke(main, ["suppress", args[0], *config, *now, *args[1:]])


def test_suppress_add_list_import_remove(home: Path) -> None:
    """Entries are added, listed with config ones, imported from a file, and removed."""
    config = home / "config.toml"
    config.write_text(config.read_text().replace("domains = []", 'domains = ["rival.example"]'))
    added = suppress(home, "add", "Ada@Example.com", "@spam.example", "--reason", "asked")
    assert added.exit_code == 0, added.output
    assert "2 added, 0 already there" in added.output
    (home / "list.txt").write_text("email\nada@example.com\n# a comment\nnot an entry\nx.example\n")
    imported = suppress(home, "import", str(home / "list.txt"))
    assert "list.txt:4:" in imported.output
    assert "1 added, 1 already there, 1 invalid" in imported.output
    listed = suppress(home, "list", "--json")
    rows = {(r["kind"], r["value"], r["from"]) for r in json.loads(listed.output)}
    assert rows == {("domain", "rival.example", "config"), ("address", "ada@example.com",
                    "database"), ("domain", "spam.example", "database"),
                    ("domain", "x.example", "database")}  # fmt: skip
    assert "config.toml" in suppress(home, "remove", "rival.example").output
    assert "removed" in suppress(home, "remove", "ada@example.com").output
    bad = suppress(home, "add", "nonsense")
    assert bad.exit_code == 1
    assert "error: 'nonsense' is not a domain" in bad.output


def test_merge_set_email_export_and_erase(home: Path, tmp_path: Path) -> None:
    """leads merge, lead set email=, lead export and lead erase, end to end."""
    for address in ("a@one.example", "b@two.example", "c@three.example"):
        assert cmd(home, "leads", "add", address, "--first-name", "Quentin",
                   "--interest", "product-b", "--now", NOW).exit_code == 0  # fmt: skip
    merged = cmd(home, "leads", "merge", "a@one.example", "b@two.example", "--now", NOW)
    assert merged.exit_code == 0, merged.output
    assert "b@two.example merged into a@one.example" in merged.output
    assert cmd(home, "lead", "show", "b@two.example").exit_code == 1
    moved = cmd(home, "lead", "set", "a@one.example", "email=c@three.example", "budget=yes",
                "--now", NOW)  # fmt: skip
    assert moved.exit_code == 0, moved.output
    assert "merged in" in moved.output
    shown = json.loads(cmd(home, "lead", "show", "c@three.example", "--json").output)
    assert shown["name"] == "Quentin"
    out = tmp_path / "export.json"
    exported = cmd(home, "lead", "export", "c@three.example", "-o", str(out), "--now", NOW)
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text())["leads"][0]["email"] == "c@three.example"
    erased = cmd(home, "lead", "erase", "c@three.example", "--yes", "--now", NOW)
    assert erased.exit_code == 0, erased.output
    assert cmd(home, "lead", "show", "c@three.example").exit_code == 1
    again = cmd(home, "leads", "add", "c@three.example", "--interest", "product-b", "--now", NOW)
    assert "suppressed (erased): not enrolled" in again.output
