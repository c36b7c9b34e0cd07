"""stderr logging for the server: stdout carries nothing but the protocol, and no secret reaches a handler."""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable

from postqued.errors import redact


class _RedactingFilter(logging.Filter):
    """Last line of defence: no key, bearer token or presigned query string reaches a log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        # Tracebacks carry exception messages (URLs, headers); formatters reuse the cached exc_text.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RepeatFilter(logging.Filter):
    """One line per kind of message per ``window`` seconds; the next one says how many were dropped.

    A kind is the logger, the level and the message's first line: under a flood (the accept loop's "Too many
    open files", a client that repeats a bad request) the log grows by a line per window, not per event.
    """

    def __init__(self, window: float = 10.0, *, clock: Callable[[], float] = time.monotonic, kinds: int = 256) -> None:
        super().__init__()
        self.window, self.clock, self.kinds = window, clock, kinds
        self._seen: OrderedDict[tuple[str, int, str], tuple[float, int]] = OrderedDict()  # kind -> (shown at, dropped)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, record.getMessage().partition("\n")[0][:200])
        now = self.clock()
        shown_at, dropped = self._seen.get(kind, (None, 0))
        if shown_at is not None and now - shown_at < self.window:
            self._seen[kind] = (shown_at, dropped + 1)
            return False
        if dropped:
            record.msg, record.args = (
                f"{record.getMessage()} ({dropped} more like this in the last {self.window:g} s)",
                None,
            )
        self._seen[kind] = (now, 0)
        self._seen.move_to_end(kind)
        while len(self._seen) > self.kinds:
            self._seen.popitem(last=False)
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter())
    handler.addFilter(_RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("httpx", "httpcore", "mcp", "uvicorn", "uvicorn.access"):
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING))
