"""What the HTTP server logs: an access log without tokens, bad requests in one line.

- ``AccessLog``: one INFO line per request on ``nurtured.access``, with ``/c/…``,
  ``/o/…`` and ``/u/…`` for the tracking paths (their tokens redacted) and no query
  string; written only when that logger is enabled for INFO (``nurtured -v``).
- ``ServerLog`` wraps aiohttp's server logger so that a request aiohttp cannot parse
  (garbage, TLS on the plain port, a broken header or chunk) is one WARNING line with
  the reason instead of an ERROR traceback: it is the client's fault, not ours. Errors
  in our own handlers stay ERROR with their traceback.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

from nurtured.redact import one_line, redact, redact_path

ACCESS_LOG: Final = logging.getLogger("nurtured.access")


class AccessLog(AbstractAccessLogger):
    """One line per request: remote "METHOD /path" status bytes time, tracking tokens
    redacted. Only written when ``nurtured.access`` is enabled for INFO (``-v``)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %d %d %.1fms', request.remote, request.method,
                         redact_path(request.rel_url.raw_path), response.status,
                         response.body_length, time * 1000)  # fmt: skip


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger; a request it could not parse is one WARNING line."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self._bad_request(args, exc_info)
        else:
            super().exception(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        # aiohttp logs an unknown method on a connection's first request at DEBUG, with
        # a traceback; it is a bad request like any other.
        error = kwargs.get("exc_info")
        if isinstance(error, HttpProcessingError):
            self._bad_request(args, error)
        else:
            super().debug(msg, *args, **kwargs)

    def _bad_request(self, args: tuple[object, ...], error: HttpProcessingError) -> None:
        remote = args[0] if args else "?"
        self.warning("bad HTTP request from %s: %d %s", remote, error.code,
                     redact(one_line(error.message)))  # fmt: skip
