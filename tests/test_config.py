"""config.toml loading: defaults, path resolution, and every mistake as file: key: reason."""

from __future__ import annotations

import textwrap
from datetime import date, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nurtured.config import Settings, load_config
from nurtured.exceptions import ConfigError
from nurtured.timing import SendWindow

SCAFFOLD = Path(__file__).parent.parent / "nurtured" / "scaffold" / "config.toml"
NO_ENV: dict[str, str] = {}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    return load_config(write(tmp_path, text), environ=NO_ENV if environ is None else environ)


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    return [str(p) for p in caught.value.problems]


def test_empty_file_gives_every_default(tmp_path: Path) -> None:
    """An empty config.toml works: every setting has its documented default."""
    s = load(tmp_path, "")
    assert s.base_dir == tmp_path.resolve()
    assert s.config_path == tmp_path.resolve() / "config.toml"
    assert s.database.url == f"sqlite://{tmp_path.resolve()}/nurtured.db"
    assert s.mail.transport == "outbox"
    assert s.mail.outbox == tmp_path.resolve() / "outbox"
    smtp = s.mail.smtp
    assert (smtp.host, smtp.port, smtp.tls, smtp.username, smtp.password_env) == (
        "localhost", 587, "starttls", None, None,
    )  # fmt: skip
    assert (smtp.pool_size, smtp.timeout) == (4, timedelta(seconds=30))
    assert (s.sender.name, s.sender.address) == ("nurtured", "nurtured@localhost")
    assert (s.sender.reply_to, s.sender.unsubscribe_mailto) == (None, None)
    sending = s.sending
    assert sending.rate_limit == 50.0
    assert sending.timezone == ZoneInfo("UTC")
    assert sending.window == SendWindow(time(9), time(17), frozenset(range(5)))
    assert sending.holidays == frozenset()
    assert sending.batch_size == 500
    assert (sending.retry.max_attempts, sending.retry.backoff) == (5, timedelta(minutes=15))
    assert s.tracking.base_url == "http://localhost:8080"
    assert s.tracking.secret_env == "NURTURED_SECRET"
    assert s.paths.streams == tmp_path.resolve() / "streams"
    assert s.paths.templates == tmp_path.resolve() / "templates"


def test_scaffold_config_loads_with_its_values(tmp_path: Path) -> None:
    """The example config.toml loads, and every value in it arrives typed."""
    s = load(tmp_path, SCAFFOLD.read_text())
    assert s.sender.from_header == "Acme Analytics <hello@acme.example>"
    assert s.sender.reply_to == "replies@acme.example"
    assert s.sender.unsubscribe_mailto == "unsubscribe@acme.example"
    assert s.sending.timezone == ZoneInfo("Europe/Berlin")
    assert date(2026, 12, 24) in s.sending.holidays
    assert len(s.sending.holidays) == 4


def test_full_config_is_typed(tmp_path: Path) -> None:
    """Every section set explicitly arrives as the right Python type."""
    s = load(
        tmp_path,
        """
        [database]
        url = "postgres://user@db.example:5432/nurtured"
        [mail]
        transport = "smtp"
        outbox = "/var/mail/outbox"
        [mail.smtp]
        host = "smtp.example"
        port = 465
        tls = "implicit"
        username = "mailer"
        password_env = "SMTP_PASSWORD"
        pool_size = 64
        timeout = "1m30s"
        [sender]
        from = "Acme <hello@acme.example>"
        reply_to = "Replies <replies@acme.example>"
        [sending]
        rate_limit = 2.5
        timezone = "Asia/Tokyo"
        window = { hours = "00:00-24:00", days = ["Sat", "sun"] }
        holidays = ["2026-12-24", 2026-12-25]
        batch_size = 10000
        retry = { max_attempts = 1, backoff = "1h" }
        [tracking]
        base_url = "https://t.acme.example/"
        secret_env = "ACME_SECRET"
        [paths]
        streams = "marketing/streams"
        templates = "/srv/templates"
        """,
    )
    assert s.database.url == "postgres://user@db.example:5432/nurtured"
    assert s.mail.outbox == Path("/var/mail/outbox")
    assert s.mail.smtp.timeout == timedelta(seconds=90)
    assert (s.mail.smtp.tls, s.mail.smtp.port, s.mail.smtp.pool_size) == ("implicit", 465, 64)
    assert s.sender.reply_to == "replies@acme.example"
    assert s.sending.rate_limit == 2.5
    assert s.sending.window == SendWindow(time(0), time.max, frozenset({5, 6}))
    assert s.sending.holidays == frozenset({date(2026, 12, 24), date(2026, 12, 25)})
    assert s.sending.retry.backoff == timedelta(hours=1)
    assert s.tracking.base_url == "https://t.acme.example"
    assert s.paths.streams == tmp_path.resolve() / "marketing" / "streams"
    assert s.paths.templates == Path("/srv/templates")


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    """Relative sqlite, outbox and folder paths are made absolute against the config's folder."""
    sub = tmp_path / "project"
    sub.mkdir()
    path = sub / "config.toml"
    path.write_text('[database]\nurl = "sqlite://data/leads.db"\n[mail]\noutbox = "out"\n')
    s = load_config(path, environ=NO_ENV)
    assert s.database.url == f"sqlite://{sub.resolve()}/data/leads.db"
    assert s.database.url.startswith("sqlite:///")
    assert s.mail.outbox == sub.resolve() / "out"


def test_absolute_sqlite_and_memory_urls_pass_through(tmp_path: Path) -> None:
    """sqlite:///abs/path and sqlite://:memory: are kept as written."""
    assert load(tmp_path, '[database]\nurl = "sqlite:///x/y.db"').database.url == "sqlite:///x/y.db"
    memory = load(tmp_path, '[database]\nurl = "sqlite://:memory:"').database.url
    assert memory == "sqlite://:memory:"


def test_environment_overrides_database_url(tmp_path: Path) -> None:
    """NURTURED_DATABASE_URL replaces database.url (how CI points at PostgreSQL)."""
    env = {"NURTURED_DATABASE_URL": "postgres://ci@localhost:5432/test"}
    s = load(tmp_path, '[database]\nurl = "sqlite://local.db"', env)
    assert s.database.url == "postgres://ci@localhost:5432/test"
    relative = load(tmp_path, "", {"NURTURED_DATABASE_URL": "sqlite://other.db"})
    assert relative.database.url == f"sqlite://{tmp_path.resolve()}/other.db"


def test_bad_environment_database_url_says_where_it_came_from(tmp_path: Path) -> None:
    """A bad NURTURED_DATABASE_URL is reported at database.url, naming the variable."""
    found = problems(tmp_path, "", {"NURTURED_DATABASE_URL": "mysql://x/y"})
    assert found == [
        'config.toml: database.url: "mysql://x/y" is not a database URL like '
        '"sqlite://nurtured.db" or "postgres://user@host:5432/db" (from NURTURED_DATABASE_URL)'
    ]


def test_smtp_password_is_read_from_the_named_variable(tmp_path: Path) -> None:
    """password() reads the variable named by password_env, only when asked."""
    s = load(tmp_path, '[mail.smtp]\nusername = "u"\npassword_env = "SMTP_PW"')
    assert s.mail.smtp.password({"SMTP_PW": "hunter2"}) == "hunter2"
    with pytest.raises(ConfigError) as caught:
        s.mail.smtp.password({})
    assert str(caught.value) == (
        "config.toml: mail.smtp.password_env: environment variable SMTP_PW is not set"
    )


def test_username_without_password_env_is_an_error(tmp_path: Path) -> None:
    """Logging in needs a password: username alone is rejected at load."""
    assert problems(tmp_path, '[mail.smtp]\nusername = "u"') == [
        "config.toml: mail.smtp.password_env: required when username is set"
    ]


def test_smtp_transport_needs_no_smtp_table(tmp_path: Path) -> None:
    """transport = "smtp" without [mail.smtp] uses the SMTP defaults."""
    s = load(tmp_path, '[mail]\ntransport = "smtp"')
    assert (s.mail.transport, s.mail.smtp.host, s.mail.smtp.port) == ("smtp", "localhost", 587)


DB_REASON = '"mysql://x" is not a database URL like "sqlite://nurtured.db" or '
DB_REASON += '"postgres://user@host:5432/db"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mail.smtp]\nprot = 25", "mail.smtp.prot: unknown key"),
        ("[mial]\n", "mial: unknown key"),
        ('[database]\nurl = "mysql://x"', f"database.url: {DB_REASON}"),
        (
            '[mail]\ntransport = "pigeon"',
            'mail.transport: "pigeon" is not one of "outbox" or "smtp"',
        ),
        ('[mail.smtp]\nport = "abc"', 'mail.smtp.port: "abc" is not a whole number'),
        ('[mail.smtp]\nport = "587"', 'mail.smtp.port: "587" is not a whole number'),
        ("[mail.smtp]\nport = 70000", "mail.smtp.port: 70000 is too large: must be at most 65535"),
        (
            '[mail.smtp]\ntls = "ssl"',
            'mail.smtp.tls: "ssl" is not one of "starttls", "implicit" or "none"',
        ),
        ("[mail.smtp]\npool_size = 0", "mail.smtp.pool_size: 0 is too small: must be at least 1"),
        ("[mail.smtp]\npool_size = 65", "mail.smtp.pool_size: 65 is too large: must be at most 64"),
        ('[mail.smtp]\ntimeout = "soon"', 'mail.smtp.timeout: "soon" is not a duration'),
        ("[mail.smtp]\ntimeout = 30", "mail.smtp.timeout: 30 is not a duration"),
        ('[mail.smtp]\ntimeout = "0"', 'mail.smtp.timeout: "0" must be longer than 0'),
        (
            '[mail.smtp]\npassword_env = "MY-PW"',
            'mail.smtp.password_env: "MY-PW" is not an environment variable name',
        ),
        ('[sender]\nfrom = "Acme <bad>"', 'sender.from: "Acme <bad>" is not an email address'),
        ('[sender]\nfrom_address = "a@b.example"', "sender.from_address: unknown key"),
        (
            '[sender]\nreply_to = "r@acme.example\\r\\nBcc: x@evil.example"',
            r'sender.reply_to: "r@acme.example\r\nBcc: x@evil.example" contains a line break',
        ),
        (
            '[sender]\nunsubscribe_mailto = "nobody"',
            'sender.unsubscribe_mailto: "nobody" is not an email address',
        ),
        ("[sending]\nrate_limit = 0", "sending.rate_limit: 0 is too small: must be more than 0"),
        ("[sending]\nrate_limit = nan", "sending.rate_limit: nan is not a finite number"),
        ('[sending]\nrate_limit = "fast"', 'sending.rate_limit: "fast" is not a number'),
        (
            '[sending]\ntimezone = "Mars/Olympus"',
            'sending.timezone: "Mars/Olympus" is not a time zone',
        ),
        (
            '[sending]\nwindow = { hours = "9-5", days = ["mon"] }',
            'sending.window.hours: "9-5" is not a time range like "09:00-17:00"',
        ),
        (
            '[sending]\nwindow = { hours = "17:00-09:00", days = ["mon"] }',
            'sending.window.hours: "17:00-09:00" ends before it starts',
        ),
        (
            '[sending]\nwindow = { hours = "09:00-17:00", days = ["funday"] }',
            'sending.window.days: "funday" is not a day: use mon, tue, wed, thu, fri, sat, sun, '
            "weekdays, weekend or everyday",
        ),
        (
            '[sending]\nwindow = { hours = "09:00-17:00", days = "mon" }',
            'sending.window.days: "mon" is not a list of days',
        ),
        ('[sending]\nwindow = { days = ["mon"] }', "sending.window.hours: required"),
        ('[sending]\nwindow = "always"', 'sending.window: "always" is not a table'),
        (
            '[sending]\nholidays = ["2026-12-24", "24.12.2026"]',
            'sending.holidays[1]: "24.12.2026" is not a date like "2026-12-24"',
        ),
        (
            "[sending]\nholidays = [2026-12-24T10:00:00]",
            'sending.holidays[0]: 2026-12-24T10:00:00 is not a date like "2026-12-24"',
        ),
        ("[sending]\nbatch_size = 1.5", "sending.batch_size: 1.5 is not a whole number"),
        (
            "[sending]\nbatch_size = 10001",
            "sending.batch_size: 10001 is too large: must be at most 10000",
        ),
        (
            "[sending]\nretry = { max_attempts = 0 }",
            "sending.retry.max_attempts: 0 is too small: must be at least 1",
        ),
        (
            '[sending]\nretry = { backoff = "15 min" }',
            'sending.retry.backoff: "15 min" is not a duration',
        ),
        (
            '[tracking]\nbase_url = "ftp://t.example"',
            'tracking.base_url: "ftp://t.example" is not a web address like "https://t.acme.example"',
        ),
        (
            '[tracking]\nbase_url = "https://t.example/?a=1"',
            'tracking.base_url: "https://t.example/?a=1" must not have a query or fragment',
        ),
        ("[paths]\nstreams = 3", "paths.streams: 3 is not text (put it in quotes)"),
    ],
)
def test_each_mistake_names_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    """Each bad value is one Problem reading config.toml: key: reason."""
    assert problems(tmp_path, text) == [f"config.toml: {message}"]


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    """Several mistakes in one file give one ConfigError listing every one."""
    found = problems(
        tmp_path,
        """
        [mail.smtp]
        prot = 25
        [sending]
        window = { hours = "9-5", days = ["mon"] }
        timezone = "Nowhere"
        """,
    )
    assert found == [
        "config.toml: mail.smtp.prot: unknown key",
        'config.toml: sending.timezone: "Nowhere" is not a time zone',
        'config.toml: sending.window.hours: "9-5" is not a time range like "09:00-17:00"',
    ]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """Broken TOML is one Problem with the line and column."""
    found = problems(tmp_path, '[sending]\nrate_limit = 50\nwindow = { hours = "09:00-17:00"\n')
    assert len(found) == 1
    assert found[0].startswith("config.toml: not valid TOML: ")
    assert "line 3" in found[0]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError, match=r"^config\.toml: No such file"):
        load_config(tmp_path / "config.toml", environ=NO_ENV)


def test_settings_are_frozen(tmp_path: Path) -> None:
    """Settings cannot be changed after load."""
    s = load(tmp_path, "")
    with pytest.raises(AttributeError):
        s.sending.batch_size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[http]\nlisten = "everywhere"', 'http.listen: "everywhere" is not an address like'),
        ("[http]\nmax_body = 10", "http.max_body: 10 is too small: must be at least 1024"),
        ('[queue]\nredis_url = "http://x"', 'queue.redis_url: "http://x" is not a Redis URL'),
        ('[queue]\nbackend = "celery"', 'queue.backend: "celery" is not one of'),
        ('[alerts]\nto = ["sales"]', 'alerts.to[0]: "sales" is not an email address'),
        ('[scoring]\nhalf_life = "0d"', 'scoring.half_life: "0d" must be longer than 0'),
        ('[inbox.imap]\ntls = "starttls"', 'inbox.imap.tls: "starttls" is not one of'),
        ('[intake]\ntoken_env = "MY TOKEN"', 'intake.token_env: "MY TOKEN" is not an environment'),
        ("[bots]\nscanner = 1", "bots.scanner: unknown key"),
    ],
)
def test_later_sections_name_file_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    found = problems(tmp_path, text)
    assert any(p.startswith("config.toml: " + message) for p in found), found


def test_later_sections_have_working_defaults(tmp_path: Path) -> None:
    s = load(tmp_path, "")
    assert s.http.listen == ("127.0.0.1", 8080)
    assert (s.queue.backend, s.inbox.source) == ("embedded", "maildir")
    assert s.path(s.inbox.maildir) == tmp_path.resolve() / "inbox"
    assert s.scoring.half_life == timedelta(days=30)
