"""stderr logging for the server: stdout carries nothing but the protocol, and no secret reaches a handler."""

from __future__ import annotations

import logging
import sys

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


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("httpx", "httpcore", "mcp", "uvicorn", "uvicorn.access"):
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING))
