"""Loading the marketer's files into one validated whole, and making the mail transport."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nurtured.config import Settings, load_config
from nurtured.exceptions import ConfigError, Problem
from nurtured.fit.settings import check_fit_streams
from nurtured.limits import LimitedTransport, make_limits
from nurtured.mailer import MaildirOutbox, SmtpTransport, Transport
from nurtured.render import Renderer
from nurtured.scheduler import SendRules
from nurtured.splits.assign import SplitTests
from nurtured.streams import Catalog, load_streams
from nurtured.tokens import Signer, load_or_create_secret

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class App:
    """Settings, streams and templates that were validated together."""

    settings: Settings
    catalog: Catalog
    renderer: Renderer
    signer: Signer

    @property
    def rules(self) -> SendRules:
        sending = self.settings.sending
        return SendRules(sending.window, sending.timezone, sending.holidays)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """What the daemon's parts share while it runs: the current App (replaced when the
    marketer's files change and load cleanly), the mail transport and the clock (tests
    pass their own), and what the passes know of split tests (winners, last checks)."""

    app: App
    transport: Transport
    clock: Callable[[], datetime] = field(default=utcnow)
    splits: SplitTests = field(default_factory=SplitTests)


def load_app(config_path: Path) -> App:
    """Load config.toml, streams/ and templates/, and check every template renders.

    Raises ConfigError listing every problem in every file; nothing takes effect unless
    everything is valid.
    """
    if not config_path.exists():
        raise ConfigError(
            [Problem(str(config_path), "", "no such file (create one with `nurtured init`)")]
        )
    settings = load_config(config_path)
    secret = load_or_create_secret(
        settings.tracking.secret_env, settings.base_dir / "nurtured.secret"
    )
    signer = Signer(secret)
    problems: list[Problem] = []
    templates_dir = settings.paths.templates
    if not templates_dir.is_dir():
        raise ConfigError([Problem(_rel(templates_dir, settings), "", "no such directory")])
    renderer = Renderer(templates_dir, base_url=settings.tracking.base_url, signer=signer)
    catalog: Catalog | None = None
    try:
        catalog = load_streams(
            settings.paths.streams,
            templates=renderer.template_names(),
            base_dir=settings.base_dir,
        )
    except ConfigError as exc:
        problems.extend(exc.problems)
    if catalog is not None:
        problems.extend(_check_handoff_streams(settings, catalog))
    used = catalog.template_names() if catalog else renderer.template_names()
    problems.extend(renderer.check(used))
    if problems or catalog is None:
        raise ConfigError(sorted(set(problems)))
    return App(settings, catalog, renderer, signer)


def make_transport(settings: Settings) -> Transport:
    """The mail transport of ``settings``, with the send limits the engine asks
    (``nurtured.limits``; the global rate applies to SMTP only)."""
    mail = settings.mail
    inner: Transport
    if mail.transport == "outbox":
        inner = MaildirOutbox(mail.outbox)
        limits = make_limits(settings, global_rate=None)
        return LimitedTransport(inner, limits) if limits else inner
    smtp = mail.smtp
    inner = SmtpTransport(
        host=smtp.host,
        port=smtp.port,
        tls=smtp.tls,
        username=smtp.username,
        password=smtp.password() if smtp.username else None,
        pool_size=smtp.pool_size,
        timeout=smtp.timeout.total_seconds(),
        rate_limit=None,  # shared by every process: in the limits
    )
    limits = make_limits(settings, global_rate=settings.sending.rate_limit)
    return LimitedTransport(inner, limits) if limits else inner


def _rel(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.base_dir))
    except ValueError:
        return str(path)


def _check_handoff_streams(settings: Settings, catalog: Catalog) -> list[Problem]:
    """[handoff] and [fit] rules name streams: each must exist."""
    file, handoff = _rel(settings.config_path, settings), settings.handoff
    problems = check_fit_streams(file, settings.fit, catalog.streams)
    named = {"handoff.collect_stream": handoff.collect_stream}
    named.update({f"handoff.returns.{k}": v for k, v in handoff.returns.items()})
    return problems + [
        Problem(file, key, f'"{stream}" is not a stream (streams: {", ".join(catalog.streams)})')
        for key, stream in named.items()
        if stream is not None and stream not in catalog.streams
    ]
