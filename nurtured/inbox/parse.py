"""Inbound bytes -> ``Inbound``: the few decoded facts the inbox needs. Pure; never raises.

Mail from the outside is untrusted and often broken: malformed MIME, unknown charsets,
undecodable headers, gigantic or empty bodies. Everything here degrades to "less known"
(empty strings, ``None``) and notes what went wrong in ``defects``; nothing is thrown.
A body whose MIME structure is broken (a boundary that matches no delimiter line, a part
cut off, no closing delimiter) keeps the text that can be recovered from its bytes.
"""

from __future__ import annotations

import contextlib
import email
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header, decode_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value, getaddresses, parseaddr, parsedate_to_datetime
from typing import TypeVar

__all__ = ["MAX_PARSE", "MAX_TEXT", "DsnRecipient", "Inbound", "parse"]

MAX_PARSE = 10 * 1024 * 1024  # bytes of a message that are looked at; the rest is ignored
MAX_TEXT = 100_000  # characters of body text that classification and extraction see
_MSGID = re.compile(r"<[^<>\s]{1,250}>")
_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d|/blockquote)\b[^>]*>", re.IGNORECASE)
_T = TypeVar("_T")
_DELIMITER = re.compile(rb"^--[^\s]{1,200}[ \t]*\r?$", re.MULTILINE)  # a multipart delimiter
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,76}:")
_MAX_CHUNKS = 100  # parts of a broken multipart that are looked at
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")


@dataclass(frozen=True)
class DsnRecipient:
    """One per-recipient block of an RFC 3464 delivery-status report."""

    recipient: str  # Final-Recipient (else Original-Recipient), lower-cased
    action: str
    status: str
    diagnostic: str
    original: str = ""  # Original-Recipient, lower-cased: the address we sent to


@dataclass(frozen=True)
class Inbound:
    raw: bytes
    message_id: str | None = None
    subject: str = ""
    from_addr: str = ""  # lower-cased addr-spec, "" when there is none
    from_name: str = ""
    recipients: tuple[str, ...] = ()  # To, Cc, Delivered-To, ... (domains lower-cased)
    references: tuple[str, ...] = ()  # In-Reply-To first, then References newest first
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased name -> first value
    text: str = ""  # the best plain-text body (HTML made plain), at most MAX_TEXT
    date: datetime | None = None
    content_type: str = "text/plain"
    dsn: tuple[DsnRecipient, ...] = ()  # a multipart/report delivery-status
    is_report: bool = False
    returned: dict[str, str] = field(default_factory=dict)  # headers of a returned message
    report_type: str = ""  # multipart/report's report-type: "delivery-status", "feedback-report"
    feedback: dict[str, str] = field(default_factory=dict)  # an ARF report's fields, lower-cased
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def decode_text(value: object) -> str:
    """A header value as text: RFC 2047 decoded, raw 8-bit read as UTF-8 (else Latin-1)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else ""
    if isinstance(value, Header) or "=?" in text or not text.isascii():
        with contextlib.suppress(LookupError, UnicodeError, ValueError, TypeError, AssertionError):
            chunks = decode_header(value if isinstance(value, Header) else text)
            text = "".join(
                _charset_decode(c, None if cs in (None, "unknown-8bit") else cs)
                if isinstance(c, bytes)
                else c
                for c, cs in chunks
            )
    elif not isinstance(value, str):
        text = str(value)
    return " ".join(text.replace("\x00", " ").split())


def _charset_decode(payload: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except UnicodeDecodeError as exc:
            if exc.start >= len(payload) - 3 and exc.reason == "unexpected end of data":
                # A truncated part (or our own cut) ends inside a character: drop it.
                with contextlib.suppress(UnicodeDecodeError):
                    return payload[: exc.start].decode(candidate)
            continue
        except (LookupError, ValueError):
            continue
    return payload.decode("latin-1")  # never fails: every byte is a character


def html_to_text(markup: str) -> str:
    markup = _HIDDEN.sub(" ", markup)
    markup = re.sub(r"<\s*blockquote\b[^>]*>", "\n> ", markup, flags=re.IGNORECASE)
    markup = _BLOCK.sub("\n", markup)
    return html.unescape(_TAG.sub("", markup))


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset()
    return _charset_decode(payload[: MAX_TEXT * 4], charset)


def _texts(msg: Message, depth: int = 0) -> tuple[str | None, str | None]:
    """(the first text/plain part that is not an attachment, the first text/html)."""
    plain: str | None = None
    markup: str | None = None
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            if not part.is_multipart() and depth < 3:  # its parts were never found
                found = _recovered(part, depth)
                plain = plain if plain is not None else found[0]
                markup = markup if markup is not None else found[1]
            continue
        if part.get_content_type() in ("message/rfc822", "message/delivery-status"):
            continue
        if (part.get("Content-Disposition") or "").lower().startswith("attachment"):
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = _part_text(part)
        elif ctype == "text/html" and markup is None:
            markup = _part_text(part)
    return plain, markup


def _recovered(part: Message, depth: int) -> tuple[str | None, str | None]:
    """The texts of a multipart whose parts the parser could not find (its boundary is
    missing or matches none of the delimiter lines): every chunk between lines that look
    like delimiters, read as a part of its own; a chunk without headers is plain text."""
    data = part.get_payload(decode=True)  # the bytes as they came
    if not isinstance(data, bytes) or not data.strip():
        return None, None
    plain: str | None = None
    markup: str | None = None
    loose: list[str] = []
    for chunk in _DELIMITER.split(data, maxsplit=_MAX_CHUNKS)[:_MAX_CHUNKS]:
        chunk = chunk.lstrip(b"\r\n")
        if plain is not None:
            break  # the text is found; the rest is attachments and alternatives
        if not chunk.strip():
            continue
        if _HEADER_LINE.match(chunk):
            found = _texts(email.message_from_bytes(chunk), depth + 1)
            plain = plain if plain is not None else found[0]
            markup = markup if markup is not None else found[1]
        else:
            loose.append(_charset_decode(chunk[: MAX_TEXT * 4], part.get_content_charset()))
    if plain is None and markup is None and loose:
        plain = "\n".join(loose)
    return plain, markup


def _body_text(msg: Message) -> str:
    """The first text/plain part that is not an attachment, else the first text/html;
    from broken MIME (boundary mismatch, truncated parts) whatever can be recovered."""
    plain, markup = _texts(msg)
    text = plain if plain and plain.strip() else html_to_text(markup or "")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text[:MAX_TEXT]


def _dsn_address(value: object) -> str:
    """``rfc822; <Ada@Example.com>`` -> ``ada@example.com``."""
    return decode_text(value).rpartition(";")[2].strip().strip("<>").lower()


_Report = tuple[tuple[DsnRecipient, ...], dict[str, str], dict[str, str]]


def _fields(part: Message) -> dict[str, str]:
    """The header fields a message/* part carries (a returned message's, a report's)."""
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        source: Message = inner[0]
    else:
        source = HeaderParser().parsestr(_part_text(part))
    return {k.lower(): decode_text(v) for k, v in source.items() if isinstance(k, str)}


def _report_type(msg: Message) -> str:
    return collapse_rfc2231_value(msg.get_param("report-type") or "").strip().lower()


def _report(msg: Message) -> _Report:
    """What a report carries: DSN recipients, the returned message's headers and an
    RFC 5965 feedback report's fields (Feedback-Type, Original-Rcpt-To, ...)."""
    recipients: list[DsnRecipient] = []
    returned: dict[str, str] = {}
    feedback: dict[str, str] = {}
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report" and not feedback:
            feedback = _fields(part)
        elif ctype == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, str):  # some servers send it as one text block
                blocks = [HeaderParser().parsestr(b) for b in re.split(r"\n\s*\n", blocks)]
            for block in blocks if isinstance(blocks, list) else []:
                if not isinstance(block, Message):
                    continue
                status = decode_text(block.get("Status", ""))
                original = _dsn_address(block.get("Original-Recipient"))
                rcpt = _dsn_address(block.get("Final-Recipient")) or original
                if status or rcpt:
                    recipients.append(DsnRecipient(
                        recipient=rcpt,
                        action=decode_text(block.get("Action", "")).lower(),
                        status=status.split()[0] if status else "",
                        diagnostic=decode_text(block.get("Diagnostic-Code", ""))[:500],
                        original=original,
                    ))  # fmt: skip
        elif ctype in ("message/rfc822", "text/rfc822-headers") and not returned:
            returned = _fields(part)
    return tuple(recipients), returned, feedback


def _addresses(values: list[str]) -> tuple[str, ...]:
    found = []
    for _, addr in getaddresses([decode_text(v) for v in values]):
        local, at, domain = addr.strip().rpartition("@")
        addr = f"{local}{at}{domain.lower()}"  # the local part keeps its case: it may carry a token
        if at and addr not in found:
            found.append(addr)
    return tuple(found)


def _recipient_values(msg: Message) -> list[str]:
    return [str(v) for h in _RECIPIENT_HEADERS for v in msg.get_all(h, [])]


def _references(msg: Message) -> tuple[str, ...]:
    in_reply_to = _MSGID.findall(str(msg.get("In-Reply-To", "")))
    references = _MSGID.findall(" ".join(str(v) for v in msg.get_all("References", [])))
    ordered: list[str] = []
    for ref in [*in_reply_to, *reversed(references)]:
        if ref not in ordered:
            ordered.append(ref)
    return tuple(ordered[:50])


def _headers(msg: Message) -> dict[str, str]:
    return {k.lower(): decode_text(v) for k, v in reversed(msg.items()) if isinstance(k, str)}


def _date(msg: Message) -> datetime | None:
    value = msg.get("Date")
    if not value:
        return None
    date = parsedate_to_datetime(str(value))
    return date if date.tzinfo is not None else None


def parse(raw: bytes) -> Inbound:
    """Never raises: a message that cannot be read at all comes back nearly empty."""
    defects: list[str] = []
    if len(raw) > MAX_PARSE:
        defects.append(f"truncated from {len(raw)} bytes")
    try:
        msg = email.message_from_bytes(raw[:MAX_PARSE])
    except Exception as exc:  # the parser is lenient, but never trust that with input
        return Inbound(raw=raw, defects=(f"unparseable: {exc!r}",))
    defects.extend(type(d).__name__ for d in msg.defects[:10])

    def safe(name: str, step: Callable[[], _T], default: _T) -> _T:
        try:
            return step()
        except Exception as exc:  # one broken part must not hide the others
            defects.append(f"{name}: {exc!r}"[:200])
            return default

    no_report: _Report = ((), {}, {})
    headers: dict[str, str] = safe("headers", lambda: _headers(msg), {})
    ids: list[str] = safe("message_id", lambda: _MSGID.findall(str(msg.get("Message-ID", ""))), [])
    from_name, from_addr = safe("from", lambda: parseaddr(decode_text(msg.get("From", ""))),
                                ("", ""))  # fmt: skip
    date = safe("date", lambda: _date(msg), None)
    content_type = safe("content_type", msg.get_content_type, "text/plain")
    dsn, returned, feedback = safe("report", lambda: _report(msg), no_report)
    report_type = safe("report_type", lambda: _report_type(msg), "")
    return Inbound(
        raw=raw,
        message_id=ids[0] if ids else None,
        subject=safe("subject", lambda: decode_text(msg.get("Subject", "")), ""),
        from_addr=from_addr.strip().lower() if "@" in from_addr else "",
        from_name=from_name,
        recipients=safe("recipients", lambda: _addresses(_recipient_values(msg)), ()),
        references=safe("references", lambda: _references(msg), ()),
        headers=headers,
        text=safe("text", lambda: _body_text(msg), ""),
        date=date,
        content_type=content_type,
        dsn=dsn,
        is_report=content_type == "multipart/report",
        returned=returned,
        report_type=report_type,
        feedback=feedback,
        defects=tuple(defects),
    )
