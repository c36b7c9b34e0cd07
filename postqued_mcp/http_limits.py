"""Connection limits for the HTTP transport: what uvicorn does not bound by itself.

uvicorn closes a keep-alive connection that stays idle after a response, but a connection that never finishes
its request headers stays open for ever, and nothing bounds how many are open: a few hundred such sockets
use up the process's file descriptors and every legitimate call fails. ``GuardedH11Protocol`` (uvicorn's h11
protocol with two additions) closes a connection whose request headers are not complete ``header_timeout``
seconds after it opened (or after its previous response), and keeps at most ``max_connections`` open: past
that, the connection that has waited longest for its headers is closed, so clients that send a request at
once keep being served. Header size (``max_header_bytes``) and body size (``max_body_bytes``, checked by the
MCP app) are bounded too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("postqued.http")

FD_RESERVE = 64  # descriptors kept free for the journal, media files and connections to PostQued


def default_max_connections() -> int:
    """Open connections allowed: below this process's descriptor limit, so accepting never runs out."""
    if sys.platform == "win32":
        return 1000
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1000
    return max(8, min(1000, soft - FD_RESERVE))


@dataclasses.dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0  # seconds from connecting (or the previous response) to complete headers
    keep_alive: int = 5  # seconds an idle connection stays open after a response (uvicorn's own timer)
    max_connections: int = dataclasses.field(default_factory=default_max_connections)
    max_header_bytes: int = 16 * 1024  # request line and headers (h11)
    max_body_bytes: int = 1024 * 1024  # checked by the MCP app: 413 past it


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for request headers and a cap on open connections."""

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._waiting_since = 0.0

    @classmethod
    def with_limits(cls, limits: Limits) -> type[GuardedH11Protocol]:
        return type(cls.__name__, (cls,), {"limits": limits})

    # -- the header deadline ----------------------------------------------------------------------

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._waiting_since = self.loop.time()
        self._header_deadline = self.loop.call_later(self.limits.header_timeout, self._headers_too_slow)

    def _stop_waiting(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    @property
    def waiting_for_headers(self) -> bool:
        return self._header_deadline is not None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        log.debug("closing a connection whose request headers did not arrive in %ss", self.limits.header_timeout)
        self.transport.close()

    # -- uvicorn's protocol hooks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    @property
    def _request_in_progress(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_in_progress:  # uvicorn starts a cycle once the request line and headers are complete
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request at once
        if not self.transport.is_closing() and not self._request_in_progress:
            self._await_headers()  # the next request on this keep-alive connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _make_room(self) -> None:
        """Over the cap: close the connection that has waited longest for its headers (this one if none has)."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedH11Protocol) and c.waiting_for_headers and not c.transport.is_closing()
        ]
        victim = min(waiting, key=lambda c: c._waiting_since, default=self)
        victim._stop_waiting()
        victim.transport.close()


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that apply ``limits``."""
    return {
        "http": GuardedH11Protocol.with_limits(limits),
        "timeout_keep_alive": limits.keep_alive,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        # no limit_concurrency: it counts connections still sending headers and would answer legitimate
        # requests 503 under a slow-header attack; max_connections (enforced in _make_room) bounds both.
    }
