"""Random delivery tokens and the HMAC-signed tokens in tracking URLs.

A signed token is ``part.part.sig``: the parts in clear, then the first 16 bytes of
HMAC-SHA256(secret, kind NUL part NUL part) in URL-safe base64. The kind ("c" click,
"o" open, "u" unsubscribe) is signed but not written, so a token made for one purpose
never verifies as another.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from datetime import datetime
from pathlib import Path

from nurtured.exceptions import ConfigError, Problem

SIG_BYTES = 16
SIG_CHARS = 22  # 16 bytes in base64 without padding
MAX_TOKEN_CHARS = 1024  # anything longer is garbage: refuse before hashing it


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_delivery_token(now: datetime | None = None) -> str:
    """One delivery's identity in URLs, Message-IDs and Reply-To addresses: the send time
    in seconds as 8 hex digits, then 16 random bytes as 22 URL-safe characters.

    The random part is the secret (128 bits). The time prefix makes new tokens sort
    after older ones, so inserting a batch of them touches the right edge of the unique
    indexes on token and Message-ID instead of a random page per row, which keeps the
    claim flat as the delivery table grows to millions of rows.
    """
    prefix = f"{int(now.timestamp()):08x}" if now is not None else ""
    return prefix + _b64(secrets.token_bytes(16))


class Signer:
    """Signs and verifies the tokens in click, open and unsubscribe URLs."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the signing secret is empty")
        self._secret = secret

    def _sig(self, kind: str, parts: tuple[str, ...] | list[str]) -> bytes:
        message = "\0".join((kind, *parts)).encode("utf-8", "surrogatepass")
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return _b64(digest[:SIG_BYTES]).encode("ascii")

    def sign(self, kind: str, *parts: str) -> str:
        """``"<parts joined by '.'>.<sig>"``; parts may not contain "." or NUL."""
        for part in (kind, *parts):
            if "." in part or "\0" in part:
                raise ValueError(f"token part {part!r} contains '.' or NUL")
        return ".".join((*parts, self._sig(kind, parts).decode("ascii")))

    def verify(self, kind: str, token: str) -> tuple[str, ...] | None:
        """The signed parts, or None for anything this signer did not make for ``kind``."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or "\0" in token:
            return None
        *parts, sig = token.split(".")
        if not parts or len(sig) != SIG_CHARS:
            return None
        expected = self._sig(kind, parts)
        if not hmac.compare_digest(expected, sig.encode("utf-8", "surrogatepass")):
            return None
        return tuple(parts)


def load_or_create_secret(env_name: str, fallback_file: Path) -> bytes:
    """The secret in ``$env_name``; else the one in ``fallback_file``, created once if missing.

    The file is created complete (written aside, then linked into place), mode 0600, so
    two processes starting at once agree on one secret and neither reads half a file.
    """
    value = os.environ.get(env_name, "")
    if value:
        return value.encode("utf-8")
    try:
        if not fallback_file.exists():
            _create_secret_file(fallback_file)
        secret = fallback_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(fallback_file), "", f"cannot use secret: {exc}")]) from exc
    if not secret:
        reason = f"is empty: delete it to have a new secret made, or set {env_name}"
        raise ConfigError([Problem(str(fallback_file), "", reason)])
    return secret.encode("ascii")


def _create_secret_file(path: Path) -> None:
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won: use its secret
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
