"""Pure: what counts as yes and no to marketing email (the API's and the import's
``consent`` field)."""

from __future__ import annotations

from typing import Final

CONSENT_YES: Final = frozenset({"1", "true", "yes", "on", "y", "granted"})
CONSENT_NO: Final = frozenset({"0", "false", "no", "off", "n", "denied", ""})
CONSENT_ERROR: Final = "must be yes or no (true/false, 1/0)"


def parse_consent(value: object) -> bool | None:
    """True, False, or None when ``value`` is neither a yes nor a no."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in CONSENT_YES:
        return True
    if text in CONSENT_NO:
        return False
    return None
