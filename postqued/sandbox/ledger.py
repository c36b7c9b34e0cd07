"""The request ledger: every request that reached the sandbox, in arrival order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class LedgerEntry:
    method: str
    path: str
    route: str  # a route name from router.ROUTES, or "unknown"
    query: dict[str, str]
    time: datetime
    has_auth: bool  # an Authorization header was present (its value is never kept)
    idempotency_key: str | None = None
    body: bytes = b""  # storage PUT bodies are not kept: see body_size
    body_size: int = 0
    workspace_id: str | None = None
    status: int | None = None  # None: the connection was dropped without an answer
    faults: list[str] = field(default_factory=list)  # fault kinds applied to this request

    @property
    def dropped(self) -> bool:
        return self.status is None
