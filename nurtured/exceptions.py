"""One exception tree for nurtured.

    NurturedError
    ├── ConfigError            marketer files: config.toml, streams/*.toml, templates/
    │                          (carries every Problem found, each naming file, key, reason)
    ├── LeadError              a lead's data is unusable (bad email, unknown time zone, ...)
    ├── NotFound               a lead, stream or step named on the command line does not exist
    ├── StartupError           the machine refused what config.toml asks (a busy port, a
    │                          missing permission): one line naming the key to change
    └── SendError              one message could not be handed to the mail transport
        ├── TransientSendError     try again later (SMTP 4xx, connection refused, timeout
        │                          before DATA): the server certainly did not take the message
        ├── PermanentSendError     do not try again (SMTP 5xx)
        ├── UnknownSendOutcome     the connection broke during DATA: the server may or may
        │                          not have taken the message, so it must never be resent blindly
        ├── ClaimLost              the claim was recovered by another process before its
        │                          transaction began: not sent, the row is not ours to write
        └── HeldBack               a send limit (rate, daily cap) holds it back until a time:
                                   not sent, not an attempt; the delivery is deferred

Foreign errors (aiosmtplib, pydantic, jinja2, OS errors) are mapped into this tree with
``raise ... from``, at the edge where they occur.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a marketer's file: ``streams/a.toml: steps[2].wait: reason``."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.file}: {self.key}: {self.reason}"
        return f"{self.file}: {self.reason}"


class NurturedError(Exception):
    """Base of every error nurtured raises on purpose."""


class ConfigError(NurturedError):
    """Marketer files that cannot take effect; ``problems`` lists every one found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class LeadError(NurturedError):
    """A lead's data is unusable; the message says which field and why."""


class NotFound(NurturedError):
    """Something named by the user (lead, stream, step) does not exist."""


class StartupError(NurturedError):
    """The daemon cannot start as configured; the message names the config key to change."""

    exit_code = 3


class SendError(NurturedError):
    """A message could not be handed over. ``code`` is the SMTP reply code when there was one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class TransientSendError(SendError):
    """The server did not take the message and may later: retry with backoff."""


class PermanentSendError(SendError):
    """The server refused the message for good: record the failure, never retry."""

    @property
    def dead_address(self) -> bool:
        """True when the refusal says the recipient address does not exist (550/551/553, 5.1.x)."""
        text = f" {self}"
        if " 5.1." in text:
            return True
        if " 5.7." in text:  # policy or reputation block: the address itself may be fine
            return False
        return self.code in (550, 551, 553)


class UnknownSendOutcome(SendError):
    """The connection broke while the message was being transferred: it may have been taken."""


class ClaimLost(SendError):
    """The claim was taken back (recovered as cut off) before its transaction began:
    nothing was sent, and the delivery row is someone else's now; leave it alone."""


class HeldBack(SendError):
    """A send limit ([limits], the global rate) holds the email back until ``until``:
    nothing was sent, no attempt is counted, the delivery waits deferred."""

    def __init__(self, message: str, *, until: datetime) -> None:
        super().__init__(message)
        self.until = until
