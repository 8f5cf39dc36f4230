"""nurtured.message: standards-true messages that untrusted values cannot bend."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nurtured.message import (
    build_message,
    build_message_bytes,
    check_addr_spec,
    clean_header_value,
    domain_of,
    make_message_id,
)

DATE = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=1)))
BASE_HEADERS = [
    *("From", "To", "Subject", "Date", "Message-ID"),
    *("MIME-Version", "Content-Type", "Content-Transfer-Encoding"),
]


def make(**overrides: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "subject": "Your white paper",
        "text": "Hello Ana,\nhere it is.\n",
        "html": None,
        "from_name": "Acme Marketing",
        "from_addr": "news@acme.example",
        "to_name": "Ana Lima",
        "to_addr": "ana@lead.example",
        "reply_to": None,
        "message_id": "<tok123@acme.example>",
        "date": DATE,
        "unsubscribe_url": None,
        "unsubscribe_mailto": None,
    }
    values.update(overrides)
    return build_message(**values)


def parse(msg: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(bytes(msg), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_headers_are_set_as_given() -> None:
    """Message-ID, Date, From, To, Reply-To, List-Unsubscribe(-Post) read back as set."""
    msg = parse(
        make(
            reply_to="sales@acme.example",
            unsubscribe_url="https://t.acme.example/u/abc",
            unsubscribe_mailto="unsubscribe@acme.example",
        )
    )
    assert msg["Message-ID"] == "<tok123@acme.example>"
    assert msg["Date"].datetime == DATE
    assert msg["Date"] == "Wed, 04 Mar 2026 05:06:07 +0100"
    assert msg["From"] == "Acme Marketing <news@acme.example>"
    assert msg["To"].addresses[0].addr_spec == "ana@lead.example"
    assert msg["Reply-To"] == "sales@acme.example"
    assert msg["Subject"] == "Your white paper"
    assert msg["MIME-Version"] == "1.0"
    assert msg["List-Unsubscribe"] == (
        "<https://t.acme.example/u/abc>, <mailto:unsubscribe@acme.example>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_text_only_is_a_single_utf8_part() -> None:
    """Without html the message is one text/plain UTF-8 part."""
    msg = parse(make(text="Grüße, Ana\n"))
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == "Grüße, Ana\n"


def test_html_makes_multipart_alternative_text_first() -> None:
    """With html: multipart/alternative, text/plain first, text/html second, both UTF-8."""
    msg = parse(make(text="Olá\n", html="<p>Olá</p>\n"))
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert [p.get_content().replace("\r\n", "\n") for p in parts] == ["Olá\n", "<p>Olá</p>\n"]
    assert all("MIME-Version" not in p for p in parts)


def test_wire_bytes_are_ascii_with_crlf() -> None:
    """The serialized message is 7-bit with CRLF line ends, so it needs no 8BITMIME."""
    data = bytes(make(subject="Ünïcode", to_name="Zoë", text="ção\n", html="<b>ção</b>"))
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_awkward_display_names_round_trip() -> None:
    """Names with commas, quotes and non-ASCII are encoded so they read back unchanged."""
    name = 'Doe, "JD" Jöhn'
    msg = parse(make(to_name=name, from_name="Ünited, Inc."))
    assert msg["To"].addresses[0].display_name == name
    assert msg["To"].addresses[0].addr_spec == "ana@lead.example"
    assert msg["From"].addresses[0].display_name == "Ünited, Inc."


@pytest.mark.parametrize("field", ["to_name", "from_name", "subject"])
def test_header_injection_adds_no_header(field: str) -> None:
    """A CRLF in a name or subject cannot start a header: no Bcc appears."""
    msg = parse(make(**{field: "Eve\r\nBcc: x@evil.example"}))
    assert "Bcc" not in msg
    assert sorted(msg.keys()) == sorted(BASE_HEADERS)
    assert [a.addr_spec for a in msg["To"].addresses] == ["ana@lead.example"]


def test_header_injection_in_extra_headers_is_neutralised() -> None:
    """Extra header values are cleaned too; bad names and reserved names are refused."""
    msg = parse(make(extra_headers={"X-Campaign": "q1\nBcc: x@evil.example"}))
    assert msg["X-Campaign"] == "q1 Bcc: x@evil.example"
    assert "Bcc" not in msg
    with pytest.raises(ValueError, match="header name"):
        make(extra_headers={"X-A\r\nBcc": "x"})
    with pytest.raises(ValueError, match="set by build_message"):
        make(extra_headers={"bcc": "x@evil.example"})


@pytest.mark.parametrize(
    "addr",
    [
        "ana@lead.example\r\nBcc: x@evil.example",
        "ana@lead.example, x@evil.example",
        "Ana <ana@lead.example>",
        "ana@lead.example\x00",
        "no-at-sign",
        "@lead.example",
        "ana@",
        "anä@lead.example",
        "",
    ],
)
def test_bad_addresses_are_refused(addr: str) -> None:
    """An address that is not exactly one plain addr-spec raises ValueError, never cleaned."""
    with pytest.raises(ValueError, match="address"):
        make(to_addr=addr)
    with pytest.raises(ValueError, match="address"):
        make(reply_to=addr)


def test_unsubscribe_mailto_alone_has_no_one_click_post() -> None:
    """List-Unsubscribe-Post is only added when there is an http(s) URL to POST to."""
    msg = parse(make(unsubscribe_mailto="mailto:u@acme.example?subject=unsubscribe"))
    assert msg["List-Unsubscribe"] == "<mailto:u@acme.example?subject=unsubscribe>"
    assert "List-Unsubscribe-Post" not in msg
    assert "List-Unsubscribe" not in parse(make())


def test_long_unsubscribe_url_is_never_encoded_or_split() -> None:
    """A long signed URL stays verbatim (no RFC 2047 =?utf-8?...), folded only at commas."""
    url = "https://t.acme.example/u/" + "A1b2" * 50
    raw = bytes(make(unsubscribe_url=url, unsubscribe_mailto="u@acme.example"))
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0].split(b"List-Unsubscribe:")[1]
    assert parse(make(unsubscribe_url=url))["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize(
    "url", ["ftp://x.example/u", "javascript:alert(1)", "https://x.example/a b", "https://x/a>"]
)
def test_unsubscribe_url_must_be_plain_http(url: str) -> None:
    """Only http(s) URLs without spaces or angle brackets become unsubscribe targets."""
    with pytest.raises(ValueError, match="URL"):
        make(unsubscribe_url=url)


def test_naive_date_and_bad_message_id_are_refused() -> None:
    """A date without a time zone, or a Message-ID not of the form <x@y>, raises ValueError."""
    with pytest.raises(ValueError, match="timezone"):
        make(date=datetime(2026, 1, 1))
    for bad in ["tok@acme.example", "<tok@acme.example>\r\nBcc: x@y", "<a b@c>", "<@c>"]:
        with pytest.raises(ValueError, match="Message-ID"):
            make(message_id=bad)


def test_make_message_id_and_domain_of() -> None:
    """make_message_id wraps token@domain in angle brackets; domain_of lower-cases."""
    assert make_message_id("d41.x-9", "mail.acme.example") == "<d41.x-9@mail.acme.example>"
    with pytest.raises(ValueError, match="Message-ID"):
        make_message_id("a>b", "acme.example")
    assert domain_of("Ana@Lead.EXAMPLE") == "lead.example"
    assert check_addr_spec('"a b"@lead.example') == '"a b"@lead.example'


def test_clean_header_value() -> None:
    """Controls, line separators and whitespace runs become single spaces; ends trimmed."""
    assert clean_header_value(" a\r\nb\x00c\td\u2028e\x85f   g ") == "a b c d e f g"
    assert clean_header_value('Zoë, "Z"') == 'Zoë, "Z"'


@given(name=st.text(max_size=80), subject=st.text(max_size=200))
def test_arbitrary_names_and_subjects_cannot_add_headers(name: str, subject: str) -> None:
    """For any text as names and subject, the bytes parse back with exactly our headers."""
    msg = parse(make(to_name=name, from_name=name, subject=subject))
    assert sorted(msg.keys()) == sorted(BASE_HEADERS)
    assert not msg.defects
    assert [a.addr_spec for a in msg["To"].addresses] == ["ana@lead.example"]
    assert [a.addr_spec for a in msg["From"].addresses] == ["news@acme.example"]
    assert msg["Subject"] == clean_header_value(subject)
    assert display_name(msg) == clean_header_value(name)


def display_name(msg: EmailMessage) -> str:
    """The To display name decoded per RFC 2047. (policy.default's parser puts a space
    between adjacent encoded-words in a display name, which section 6.2 says to drop.)"""
    raw = email.message_from_bytes(bytes(msg), policy=email.policy.compat32)["To"]
    if "=?" not in raw:  # plain ASCII, perhaps quoted: the parser reads it right
        return str(msg["To"].addresses[0].display_name)
    return str(make_header(decode_header(raw))).removesuffix(" <ana@lead.example>")


def test_spaces_between_non_ascii_words_survive() -> None:
    """Whitespace next to non-ASCII text is kept (the stdlib folder alone would drop it)."""
    subject = "00000000 000000000¡¡¡¡¡¡¡ࠀ𐀀𐀀 ¡"
    name = "0 000¡¡ࠀࠀࠀࠀࠀࠀࠀࠀࠀࠀࠀࠀ ¡"
    msg = parse(make(subject=subject, to_name=name))
    assert msg["Subject"] == subject
    assert display_name(msg) == name


def _both_values() -> dict[str, Any]:
    return {
        "subject": "Your white paper",
        "text": "Hello Ana,\nhere it is.\n",
        "html": "<p>Hello Ana</p>",
        "from_name": "Acme Marketing",
        "from_addr": "news@acme.example",
        "to_name": "Ana Lima",
        "to_addr": "ana@lead.example",
        "reply_to": "replies+tok123@acme.example",
        "message_id": "<tok123@acme.example>",
        "date": DATE,
        "unsubscribe_url": "https://t.acme.example/u/tok123.sig",
        "unsubscribe_mailto": "unsubscribe@acme.example",
    }


def _both(**overrides: Any) -> tuple[EmailMessage, EmailMessage]:
    """The same message from build_message (serialised) and build_message_bytes, parsed."""
    values = _both_values() | overrides
    slow = build_message(**values).as_bytes(policy=email.policy.SMTP)
    fast = build_message_bytes(**values)
    assert b"\r\n" in fast
    assert b"\n" not in fast.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 998 for line in fast.split(b"\r\n"))
    read = email.message_from_bytes
    return (
        read(slow, policy=email.policy.default),  # type: ignore[return-value]
        read(fast, policy=email.policy.default),
    )  # fmt: skip


def _same(slow: EmailMessage, fast: EmailMessage) -> None:
    assert [(k, str(v)) for k, v in slow.items() if k != "Content-Type"] == [
        (k, str(v)) for k, v in fast.items() if k != "Content-Type"
    ]
    assert slow.get_content_type() == fast.get_content_type()
    slow_parts = list(slow.iter_parts()) or [slow]
    fast_parts = list(fast.iter_parts()) or [fast]
    assert [(p.get_content_type(), p.get_content()) for p in slow_parts] == [
        (p.get_content_type(), p.get_content()) for p in fast_parts
    ]
    assert [p["Content-Transfer-Encoding"] for p in slow_parts] == [
        p["Content-Transfer-Encoding"] for p in fast_parts
    ]


@pytest.mark.parametrize(
    ("body", "cte"),
    [
        ("Hello Ana,\nhere it is: https://t.acme.example/c/x.y\n", "7bit"),
        ("<p>" + "a" * 990 + "</p>\n", "7bit"),  # 997 characters: within RFC 5322's 998
        ("<p>" + "a" * 992 + "</p>\n", "quoted-printable"),  # 999: too long a line
        ("Grüße, Ana\n", "quoted-printable"),  # not ASCII
        ("nul \x00 inside\n", "quoted-printable"),  # NUL is not 7bit
        (".a line starting with a dot\nFrom here on\n", "7bit"),  # SMTP dot-stuffs it
    ],
)
def test_parts_are_7bit_when_the_text_allows_and_quoted_printable_otherwise(
    body: str, cte: str
) -> None:
    """Both builders pick the same transfer encoding, and the content reads back as given."""
    slow, fast = _both(text=body, html=body)
    _same(slow, fast)
    for part in fast.iter_parts():
        assert part["Content-Transfer-Encoding"] == cte
        assert part.get_content().replace("\r\n", "\n") == body
    raw = build_message_bytes(**{**_both_values(), "text": body, "html": body})
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


@given(
    subject=st.text(max_size=120),
    text=st.text(max_size=400),
    html=st.one_of(st.none(), st.text(max_size=400)),
    name=st.text(max_size=60),
)
def test_fast_serialiser_equals_the_email_package(
    subject: str, text: str, html: str | None, name: str
) -> None:
    """Whatever the lead data, the send path's bytes read back as build_message's do."""
    text = text.replace("\r", "")  # line ends are normalised by both, differently for lone CRs
    html = html.replace("\r", "") if html is not None else None
    values = {"subject": subject, "text": text, "html": html, "to_name": name}
    try:
        make(**values)
    except ValueError as refused:  # what build_message refuses, the fast path refuses too
        with pytest.raises(ValueError, match=re.escape(str(refused)[:40])):
            _both(**values)
        return
    _same(*_both(**values))


def test_fast_serialiser_cannot_be_injected_and_keeps_extra_headers() -> None:
    slow, fast = _both(to_name="Eve\r\nBcc: victim@example.net", subject="Hi\nX-Evil: 1",
                       extra_headers={"X-Campaign": "spring"})  # fmt: skip
    _same(slow, fast)
    assert fast["Bcc"] is None
    assert fast["X-Evil"] is None
    assert fast["X-Campaign"] == "spring"
    with pytest.raises(ValueError, match="set by build_message"):
        _both(extra_headers={"From": "x@y.example"})


@given(
    st.text(
        alphabet=st.sampled_from("abcXYZ019!#$%&'*+/=?^_`{|}~-.@ \"\\()<>,;:[]\r\n\x00\u00e9"),
        min_size=1,
        max_size=16,
    )
)
def test_address_fast_path_agrees_with_the_rfc_5322_parser(addr: str) -> None:
    """check_addr_spec accepts a plain dot-atom address without the (slow) parser; what it
    accepts that way, the parser takes as exactly that address, and the rest still goes
    through the parser's refusals."""
    from email.headerregistry import Address

    from nurtured.message import _DOT_ATOM_ADDR

    if _DOT_ATOM_ADDR.fullmatch(addr):
        parsed = Address(addr_spec=addr)
        assert (parsed.addr_spec, bool(parsed.username), bool(parsed.domain)) == (addr, True, True)
        assert check_addr_spec(addr) == addr
    elif any(c in addr for c in "\r\n\x00\u00e9") or "@" not in addr:
        with pytest.raises(ValueError, match="address"):
            check_addr_spec(addr)
