"""The ``Sandbox``: one simulated PostQued tenant with its clock, state, storage, faults and ledger."""

from __future__ import annotations

import weakref
from typing import Any

import httpx

from postqued.clock import Clock, SystemClock
from postqued.sandbox.app import SandboxApp
from postqued.sandbox.faults import Fault, FaultBook
from postqued.sandbox.ledger import LedgerEntry
from postqued.sandbox.limits import DEFAULT_LIMITS, RateLimiter
from postqued.sandbox.records import Account, ContentAsset, PublishRequest
from postqued.sandbox.router import ROUTE_NAMES
from postqued.sandbox.seed import connect_account, new_world
from postqued.sandbox.storage import Storage
from postqued.sandbox.transport import SandboxTransport

SANDBOX_API_KEY = "pq_sandbox_0123456789abcdef"


class Sandbox:
    """A faithful PostQued v1 + v2 simulator. ``sb.app`` is the ASGI app; ``sb.transport()`` serves it in-process."""

    def __init__(
        self,
        clock: Clock | None = None,
        rate_limits: dict[str, int] | None = DEFAULT_LIMITS,
        processing_seconds: float = 2.0,
        moderation_seconds: float = 1.0,
        extra_workspace: bool = False,
        subscription_active: bool = True,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.api_key = SANDBOX_API_KEY
        self.world = new_world(
            self.clock,
            processing_seconds=processing_seconds,
            moderation_seconds=moderation_seconds,
            extra_workspace=extra_workspace,
            subscription_active=subscription_active,
        )
        self.storage = Storage()
        self.faults = FaultBook(ROUTE_NAMES)
        self.limiter = RateLimiter(rate_limits, self.clock)
        self.ledger: list[LedgerEntry] = []
        self.app = SandboxApp(
            world=self.world,
            storage=self.storage,
            faults=self.faults,
            limiter=self.limiter,
            ledger=self.ledger,
            api_key=self.api_key,
        )
        self._cleanup = weakref.finalize(self, self.storage.close)

    # -- seeded tenancy -----------------------------------------------------------------------------------

    @property
    def organization_id(self) -> str:
        return self.world.organization.id

    @property
    def workspace_id(self) -> str:
        return self.world.default_workspace.id

    @property
    def extra_workspace_id(self) -> str | None:
        return self.world.extra_workspace.id if self.world.extra_workspace else None

    @property
    def accounts(self) -> list[Account]:
        return list(self.world.accounts.values())

    @property
    def tiktok_public_id(self) -> str:
        return self._account_id("@sandbox_creator")

    @property
    def tiktok_private_id(self) -> str:
        return self._account_id("@sandbox_private")

    @property
    def instagram_id(self) -> str:
        return self._account_id("@sandbox_insta")

    def _account_id(self, username: str) -> str:
        return next(a.id for a in self.world.accounts.values() if a.username == username)

    @property
    def subscription_active(self) -> bool:
        return self.world.subscription_active

    @subscription_active.setter
    def subscription_active(self, value: bool) -> None:
        self.world.subscription_active = value

    # -- state for tests ----------------------------------------------------------------------------------

    @property
    def publish_requests(self) -> dict[str, PublishRequest]:
        return self.world.publish_requests

    @property
    def contents(self) -> dict[str, ContentAsset]:
        return self.world.contents

    def publish_status(self, publish_id: str) -> dict[str, Any]:
        """The request as ``GET /v2/publish/{id}`` would show it now (``publish`` object)."""
        self.world.advance()
        return self.world.render_request(self.world.publish_requests[publish_id], self.clock.now())

    def requests(self, route: str) -> list[LedgerEntry]:
        return [entry for entry in self.ledger if entry.route == route]

    def storage_sha256(self, key: str) -> str | None:
        stored = self.storage.get(key)
        return stored.sha256 if stored else None

    def storage_size(self, key: str) -> int | None:
        stored = self.storage.get(key)
        return stored.size if stored else None

    # -- switches -----------------------------------------------------------------------------------------

    def inject(self, kind: str, *, route: str, times: int = 1, **params: Any) -> Fault:
        """Arm a fault for the next ``times`` requests to ``route`` (a route name, or ``"*"``)."""
        return self.faults.add(kind, route, times, params)

    def set_provider_outcome(
        self, account_id: str, status: str = "failed", reason: str = "file_format_check_failed"
    ) -> None:
        """The next target dispatched for this account ends ``failed`` with ``reason``."""
        self.world.force_outcome(account_id, status, reason)

    def connect_account(self, platform: str, username: str, *, workspace_id: str | None = None) -> str:
        """Connect one more account (e.g. Reddit, LinkedIn, Pinterest); returns its id."""
        return connect_account(self.world, platform, username, workspace_id=workspace_id)

    # -- serving ------------------------------------------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        return SandboxTransport(self.app)

    def close(self) -> None:
        """Remove the stored bytes (also done automatically when the sandbox is garbage-collected)."""
        self._cleanup()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
