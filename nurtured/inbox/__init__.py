"""Inbound mail: replies, auto-replies, bounces, unsubscribe requests, forwards, complaints.

source.py    IMAP (aioimaplib) or a local Maildir: read new messages, mark them after commit
parse.py     bytes -> Inbound (pure, never raises)
classify.py  Inbound -> reply | auto-reply (+ return date) | bounce | unsubscribe | forward
             | complaint (a feedback-loop report)
bounce.py    DSNs and non-standard bounce notices -> hard | soft | policy (pure)
lang.py      the language a message is written in, and its calendar order (pure)
phrases.py   the phrase patterns of the seven languages (pure)
extract.py   the new text of a reply (mail-parser-reply)
match.py     Inbound -> lead and delivery (thread, token, sender, company)
process.py   the glue: parse -> classify -> match -> react (one transaction) -> alert
runner.py    run_inbox: the daemon's loop over a source, with reconnects and backoff
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nurtured.inbox.process import Result, Stats, process_messages
    from nurtured.inbox.runner import run_inbox

__all__ = ["Result", "Stats", "process_messages", "run_inbox"]


def __getattr__(name: str) -> Any:
    """The glue is imported when asked for, so that the pure modules of this package
    (parse, classify, dates, intent) can be imported without the I/O behind it."""
    if name in ("Result", "Stats", "process_messages"):
        from nurtured.inbox import process

        return getattr(process, name)
    if name == "run_inbox":
        from nurtured.inbox import runner

        return runner.run_inbox
    raise AttributeError(name)
