"""The inbox loop for the daemon: read, process, mark, wait; reconnect with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from nurtured.app import Runtime
from nurtured.inbox.process import Stats, process_messages
from nurtured.inbox.source import ImapSource, InboxError, Item, MaildirSource, Source

__all__ = ["drain", "make_source", "run_inbox"]

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
POISON_LIMIT = 3  # a message that breaks processing this often is set aside


def make_source(runtime: Runtime, *, ssl_context: ssl.SSLContext | None = None,
                uidvalidity: dict[str, int] | None = None) -> Source | None:  # fmt: skip
    inbox = runtime.app.settings.inbox
    if inbox.source == "imap":
        return ImapSource(inbox.imap, ssl_context=ssl_context, uidvalidity=uidvalidity)
    if inbox.source == "maildir":
        poll = min(inbox.imap.poll_interval.total_seconds(), 1.0)
        return MaildirSource(runtime.app.settings.path(inbox.maildir), poll=poll)
    return None


class _Reader:
    def __init__(self, runtime: Runtime, source: Source, stats: Stats) -> None:
        self.runtime = runtime
        self.source = source
        self.stats = stats
        self.failures: dict[str, int] = {}

    async def _process(self, items: list[Item]) -> None:
        try:
            results = await process_messages(self.runtime, [item.raw for item in items])
        except InboxError:
            raise
        except Exception:
            if len(items) == 1:
                raise
            # Find the message that breaks the batch; if all fail, the database is down.
            broken = 0
            for item in items:
                try:
                    await self._process([item])
                except Exception as exc:
                    broken += 1
                    self._failed(item, exc)
            if broken == len(items):
                raise
            return
        self.stats.add(results)
        done = [i.key for i, r in zip(items, results, strict=True) if r.done and r.lead_id]
        unmatched = [i.key for i, r in zip(items, results, strict=True)
                     if r.done and not r.lead_id]  # fmt: skip
        self.retry_later.update(i.key for i, r in zip(items, results, strict=True) if not r.done)
        await self.source.mark(done, unmatched)

    def _failed(self, item: Item, exc: Exception) -> None:
        count = self.failures[item.key] = self.failures.get(item.key, 0) + 1
        self.retry_later.add(item.key)
        log.error("inbound message %s failed (%d times): %r", item.key, count, exc)

    async def drain(self) -> None:
        """Process every unmarked message; those to retry wait for the next round."""
        self.retry_later: set[str] = set()
        while True:
            items = await self.source.fetch(self.retry_later)
            if not items:
                return
            poison = [i.key for i in items if self.failures.get(i.key, 0) >= POISON_LIMIT]
            if poison:
                log.error("inbound messages %s set aside after %d failures", poison,
                          POISON_LIMIT)  # fmt: skip
                await self.source.mark([], poison)
                items = [i for i in items if i.key not in poison]
            if items:
                await self._process(items)


async def drain(runtime: Runtime, source: Source, stats: Stats | None = None) -> None:
    """Process everything waiting in an open source once (for tests and ``--once``)."""
    await _Reader(runtime, source, stats or Stats()).drain()


async def run_inbox(runtime: Runtime, stop: asyncio.Event, *,
                    ssl_context: ssl.SSLContext | None = None) -> None:  # fmt: skip
    """Read the configured inbox until ``stop`` is set; never raises for mail or server trouble.

    The settings are read again at each (re)connect, so a reload takes effect then.
    """
    stats = Stats()
    uidvalidity: dict[str, int] = {}
    failures: dict[str, int] = {}
    backoff = 1.0
    while not stop.is_set():
        source = make_source(runtime, ssl_context=ssl_context, uidvalidity=uidvalidity)
        if source is None:
            return
        reader = _Reader(runtime, source, stats)
        reader.failures = failures
        try:
            await source.open()
            backoff = 1.0
            while not stop.is_set():
                await reader.drain()
                await source.wait(stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # server, network or database trouble: try again later
            log.warning("inbox: %s; retrying in %.0f s", exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            await source.close()
    log.info("inbox stopped: %s", dict(sorted(stats.counts.items())) or "nothing read")
