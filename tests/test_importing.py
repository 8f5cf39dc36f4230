# ruff: noqa: F811  (the `home` project fixture is imported from test_cli)
"""``nurtured leads import`` reads what Excel writes and says truthfully what it did:
delimiters, encodings, the lines that repeated an address and what they changed, consent,
suppressed addresses, malformed rows, and a dry run that writes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from nurtured.cli import main
from nurtured.data.importing import detect_delimiter, parse_delimiter
from nurtured.db import close_db, open_db
from nurtured.exceptions import LeadError

from .test_cli import NOW, cmd, home  # noqa: F401

HEADER = "email,first_name,last_name,title,interest"


def write(home: Path, text: str, encoding: str = "utf-8", name: str = "in.csv") -> str:
    path = home / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def lead(home: Path, email: str) -> dict[str, object]:
    result = cmd(home, "lead", "show", email, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


def test_a_german_excel_file_semicolons_and_cp1252(home: Path) -> None:
    """Semicolon-separated cp1252 (what German Excel saves) is detected and read right."""
    path = write(home, "email;first_name;last_name;interest\r\n"
                       "jurgen@example.de;Jürgen;Müller;product-a\r\n", "cp1252")  # fmt: skip
    result = cmd(home, "leads", "import", path, "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "created 1" in result.output
    assert "read as cp1252 (Windows), semicolon-separated" in result.output
    assert lead(home, "jurgen@example.de")["name"] == "Jürgen Müller"


def test_utf8_with_a_bom_and_tabs(home: Path) -> None:
    """A BOM does not end up in the first column's name; tabs are detected."""
    path = write(home, "\ufeffemail\tfirst_name\tinterest\nzoe@example.com\tZoë\tproduct-a\n")
    result = cmd(home, "leads", "import", path, "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "read as UTF-8, tab-separated" in result.output
    assert lead(home, "zoe@example.com")["name"] == "Zoë"


def test_delimiter_and_encoding_can_be_named(home: Path) -> None:
    """--delimiter and --encoding override detection; a bad name is a clear error."""
    path = write(home, "email|first_name\nli@example.com|Lî\n", "latin-1")
    result = cmd(home, "leads", "import", path, "--delimiter", "|", "--encoding", "latin-1",
                 "--now", NOW)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert lead(home, "li@example.com")["name"] == "Lî"
    bad = cmd(home, "leads", "import", path, "--encoding", "klingon", "--now", NOW)
    assert bad.exit_code == 1
    assert "error: --encoding: 'klingon'" in bad.output
    assert parse_delimiter("semicolon") == ";"
    assert parse_delimiter("tab") == "\t"
    with pytest.raises(LeadError):
        parse_delimiter(";;")
    assert detect_delimiter("email\nada@example.com\n") == ","


def test_a_file_in_no_known_encoding_names_the_line(home: Path) -> None:
    """Bytes that neither UTF-8 nor cp1252 read: the error names the line and --encoding."""
    path = home / "bad.csv"
    path.write_bytes(b"email\nok@example.com\nbad\x81\x8d@example.com\n")
    result = cmd(home, "leads", "import", str(path), "--now", NOW)
    assert result.exit_code == 1
    assert "bad.csv:3: neither UTF-8 nor cp1252" in result.output
    assert "--encoding" in result.output


def test_duplicates_are_named_with_what_they_changed(home: Path) -> None:
    """The old summary said "duplicates 2, updated 0" while later rows overwrote: now each
    repeated line names the line it repeats and the fields it changed."""
    path = write(home, f"{HEADER}\n"
                       "ada@example.com,Ada,Lovelace,Analyst,product-a\n"
                       "bob@example.com,Bob,Byte,,product-a\n"
                       "ada@example.com,,,VP Finance,product-b\n"
                       "BOB@example.com,Bob,Byte,,product-a\n")  # fmt: skip
    result = cmd(home, "leads", "import", path, "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "created 2, updated 0, duplicates 2, invalid 0" in result.output
    assert "line 4: ada@example.com (first on line 2) updated title, interest" in result.output
    assert "line 5: bob@example.com (first on line 3) changed nothing" in result.output
    ada = lead(home, "ada@example.com")
    assert ada["title"] == "VP Finance"
    assert ada["name"] == "Ada Lovelace"


def test_duplicates_across_chunks_are_not_counted_as_updates(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeat in a later chunk is a duplicate of this import, not an update of a lead
    that was there before it (the bench said "updated 9479" for a file of new leads)."""
    monkeypatch.setattr("nurtured.data.importing.CHUNK", 2)
    rows = "".join(f"l{i}@example.com,L{i},,,product-a\n" for i in range(4))
    path = write(home, f"{HEADER}\n{rows}l0@example.com,,,CTO,\n")
    result = cmd(home, "leads", "import", path, "--now", NOW)
    assert "created 4, updated 0, duplicates 1" in result.output, result.output
    again = cmd(home, "leads", "import", path, "--now", NOW)
    assert "created 0, updated 4, duplicates 1" in again.output, again.output


def test_consent_is_honoured_like_the_api(home: Path) -> None:
    """consent no: kept, unsubscribed, never enrolled; yes: enrolled; blank: says nothing;
    anything else: the line is refused with the reason."""
    path = write(home, "email,interest,consent\n"
                       "yes@example.com,product-a,yes\n"
                       "no@example.com,product-a,no\n"
                       "blank@example.com,product-a,\n"
                       "odd@example.com,product-a,perhaps\n")  # fmt: skip
    result = cmd(home, "leads", "import", path, "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "in.csv:5: consent: 'perhaps' must be yes or no" in result.output
    assert "enrolled: long-term 2" in result.output  # no source: the catch-all
    assert "no consent (kept, never mailed): 1" in result.output
    refused = lead(home, "no@example.com")
    assert refused["status"] == "unsubscribed"
    assert refused["enrollments"] == []
    assert lead(home, "yes@example.com")["status"] == "active"


def test_malformed_rows_are_reported_and_the_rest_imported(home: Path) -> None:
    """Too many fields, a bad address, an unterminated quote: each named by its line."""
    path = write(home, f"{HEADER}\n"
                       "ok@example.com,Ok,,,product-a\n"
                       "two@example.com,a,b,c,d,e,f\n"
                       "not-an-address,,,,\n"
                       "fine@example.com,Fine,,,product-a\n"
                       '"open@example.com,Open\n')  # fmt: skip
    result = cmd(home, "leads", "import", path, "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "in.csv:3: more fields than the header has" in result.output
    assert "in.csv:4: email: 'not-an-address'" in result.output
    assert "in.csv:6:" in result.output
    assert "created 2" in result.output
    assert "invalid 3" in result.output


def test_a_suppressed_domain_is_named_and_not_enrolled(home: Path) -> None:
    """Config [suppression] domains: the line is named in the summary, not enrolled."""
    config = home / "config.toml"
    config.write_text(config.read_text().replace("domains = []", 'domains = ["rival.example"]'))
    path = write(home, "email,interest\nspy@rival.example,product-a\nok@example.com,product-a\n")
    result = cmd(home, "leads", "import", path, "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "suppressed, not enrolled: 1" in result.output
    assert "line 2: spy@rival.example (domain rival.example)" in result.output
    assert lead(home, "spy@rival.example")["enrollments"] == []


@pytest.fixture
def counts(home: Path) -> Callable[[], dict[str, int]]:
    """Rows per table of the project's database, read when called."""

    def read() -> dict[str, int]:
        async def go() -> dict[str, int]:
            from tortoise import Tortoise

            from nurtured.config import load_config

            await open_db(load_config(home / "config.toml").database.url)
            try:
                return {m._meta.db_table: await m.all().count()
                        for m in Tortoise.apps["models"].values()}  # fmt: skip
            finally:
                await close_db()

        return asyncio.run(go())

    return read


def test_dry_run_prints_the_summary_and_writes_nothing(
    home: Path, counts: Callable[[], dict[str, int]]
) -> None:
    """--dry-run: the same summary, and every table has the rows it had before."""
    cmd(home, "leads", "import", str(home / "leads.csv"), "--now", NOW)
    before = counts()
    path = write(home, f"{HEADER}\nnew@example.com,New,,,product-a\n"
                       "maria.keller@example.com,,,CEO,product-b\n")  # fmt: skip
    result = cmd(home, "leads", "import", path, "--dry-run", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "created 1, updated 1" in result.output
    assert "dry run: nothing was written" in result.output
    assert counts() == before
    assert lead(home, "maria.keller@example.com")["title"] != "CEO"
    missing = CliRunner().invoke(main, ["lead", "show", "--config", str(home / "config.toml"),
                                        "new@example.com"])  # fmt: skip
    assert missing.exit_code == 1
