"""Delivery tokens, signed tracking tokens and the signing secret."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nurtured.exceptions import ConfigError
from nurtured.tokens import Signer, load_or_create_secret, new_delivery_token

SIGNER = Signer(b"test-secret")


def test_delivery_tokens_are_22_urlsafe_chars_and_unique() -> None:
    """A delivery token is 16 random bytes: 22 URL-safe characters, never repeated."""
    tokens = {new_delivery_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)


def test_tokens_made_at_a_time_sort_after_earlier_ones_and_stay_secret() -> None:
    """With ``now``, a token is the time as 8 hex digits (so index inserts stay local)
    plus the same 128 random bits; later tokens sort after earlier ones."""
    first = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    early = [new_delivery_token(first) for _ in range(200)]
    late = [new_delivery_token(first + timedelta(seconds=1)) for _ in range(200)]
    assert max(early) < min(late)
    assert len(set(early)) == 200
    assert all(re.fullmatch(r"[0-9a-f]{8}[A-Za-z0-9_-]{22}", t) for t in early + late)
    assert early[0][:8] == f"{int(first.timestamp()):08x}"
    # What the inbox accepts as a plus-addressed token, and fits a Reply-To local part.
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16,40}", t) for t in late)


@pytest.mark.parametrize(("kind", "parts"), [("c", ("tok", "0")), ("o", ("tok",)), ("u", ("t",))])
def test_sign_verify_round_trip(kind: str, parts: tuple[str, ...]) -> None:
    """verify returns exactly the parts that were signed, for each kind."""
    token = SIGNER.sign(kind, *parts)
    assert token.startswith(".".join(parts) + ".")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token.rsplit(".", 1)[1])
    assert SIGNER.verify(kind, token) == parts


def test_every_single_character_change_is_rejected() -> None:
    """Changing any one character of a token makes it invalid."""
    token = SIGNER.sign("c", new_delivery_token(), "3")
    for i, char in enumerate(token):
        for other in {"A", "b", "0", "-", "_", "."} - {char}:
            assert SIGNER.verify("c", token[:i] + other + token[i + 1 :]) is None


def test_truncated_and_extended_tokens_are_rejected() -> None:
    """Every prefix of a token, and the token with anything appended, is invalid."""
    token = SIGNER.sign("c", "tok", "12")
    for end in range(len(token)):
        assert SIGNER.verify("c", token[:end]) is None
    assert SIGNER.verify("c", token + "A") is None
    assert SIGNER.verify("c", token + ".x") is None
    assert SIGNER.verify("c", "x." + token) is None


def test_other_kind_or_secret_does_not_verify() -> None:
    """A click token is no unsubscribe token, and another secret's token is a forgery."""
    token = SIGNER.sign("o", "tok")
    assert SIGNER.verify("u", token) is None
    assert SIGNER.verify("c", token) is None
    assert Signer(b"other-secret").verify("o", token) is None
    assert SIGNER.verify("o", Signer(b"other-secret").sign("o", "tok")) is None


def test_parts_cannot_be_respliced() -> None:
    """Parts joined differently never verify: "a.b" is not ("a\\0b",) nor ("a.b",)."""
    sig = SIGNER.sign("c", "a", "b").rsplit(".", 1)[1]
    assert SIGNER.verify("c", f"a\0b.{sig}") is None
    assert SIGNER.verify("c", f"ab.{sig}") is None
    with pytest.raises(ValueError, match="contains"):
        SIGNER.sign("c", "a.b")
    with pytest.raises(ValueError, match="contains"):
        SIGNER.sign("c", "a\0b")


@pytest.mark.parametrize("garbage", ["", ".", "..", "abc", "a.b.c", "é.ü", "x" * 5000, "\0"])
def test_garbage_is_rejected(garbage: str) -> None:
    """Empty, malformed, non-ASCII and oversized tokens are rejected."""
    assert SIGNER.verify("c", garbage) is None


@given(st.text(st.characters(exclude_categories=())) | st.text("ABCabc012_-.", max_size=60))
def test_arbitrary_text_never_verifies_and_never_raises(text: str) -> None:
    """No text a client can send verifies, and none makes verify raise."""
    for kind in ("c", "o", "u"):
        assert SIGNER.verify(kind, text) is None


@given(
    st.lists(
        st.text(alphabet=st.characters(exclude_characters=".\0", exclude_categories=())), min_size=1
    )
)
def test_any_parts_round_trip(parts: list[str]) -> None:
    """Whatever the parts (but '.' and NUL), what is signed verifies to the same parts."""
    assert SIGNER.verify("c", SIGNER.sign("c", *parts)) == tuple(parts)


def test_empty_secret_is_refused() -> None:
    """An empty secret would make every token forgeable."""
    with pytest.raises(ValueError, match="empty"):
        Signer(b"")


def test_secret_comes_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-empty environment variable wins and no file is created."""
    monkeypatch.setenv("TEST_NURTURED_SECRET", "from-env")
    file = tmp_path / "nurtured.secret"
    assert load_or_create_secret("TEST_NURTURED_SECRET", file) == b"from-env"
    assert not file.exists()


def test_secret_file_is_created_0600_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the variable, a random secret file is made once (mode 0600) and then reused."""
    monkeypatch.setenv("TEST_NURTURED_SECRET", "")
    file = tmp_path / "nurtured.secret"
    first = load_or_create_secret("TEST_NURTURED_SECRET", file)
    assert re.fullmatch(rb"[0-9a-f]{64}", first)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert load_or_create_secret("TEST_NURTURED_SECRET", file) == first
    assert [p.name for p in tmp_path.iterdir()] == ["nurtured.secret"]  # nothing left aside


def test_empty_secret_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An emptied secret file is reported with its path, not silently replaced."""
    monkeypatch.delenv("TEST_NURTURED_SECRET", raising=False)
    file = tmp_path / "nurtured.secret"
    file.write_text("\n")
    with pytest.raises(ConfigError, match=r"nurtured\.secret: is empty"):
        load_or_create_secret("TEST_NURTURED_SECRET", file)
