"""One request as the handlers see it (``Ctx``), the answer they give (``Reply``) and the body checks they share."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request

from postqued.sandbox.common import ApiFail
from postqued.sandbox.faults import FaultBook
from postqued.sandbox.ledger import LedgerEntry
from postqued.sandbox.records import Workspace
from postqued.sandbox.router import RouteSpec
from postqued.sandbox.storage import Storage
from postqued.sandbox.world import World


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = "application/json"
    file: Path | None = None  # streamed from disk instead of ``body``


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Reply(status, body, dict(headers or {}))


def error_reply(fail: ApiFail) -> Reply:
    return json_reply(fail.body(), fail.status, fail.headers)


class Drop(Exception):
    """Raised by a handler to end the connection without an answer (``reset``: mid-body)."""

    def __init__(self, *, reset: bool = False) -> None:
        super().__init__("drop")
        self.reset = reset


@dataclass
class Ctx:
    """One request: what arrived, the matched route, and the simulator's parts a handler may use."""

    request: Request
    spec: RouteSpec
    params: dict[str, str]
    entry: LedgerEntry
    body: bytes
    world: World
    storage: Storage
    faults: FaultBook
    api_key: str
    _json: dict[str, Any] | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return str(self.request.base_url).rstrip("/")

    def now(self) -> datetime:
        return self.world.clock.now()

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def json(self) -> dict[str, Any]:
        if self._json is None:
            try:
                data = json.loads(self.body or b"null")
            except (ValueError, UnicodeDecodeError):
                raise ApiFail(400, "INVALID_JSON", "The request body is not valid JSON") from None
            if not isinstance(data, dict):
                raise ApiFail(400, "VALIDATION_ERROR", "The request body must be a JSON object")
            self._json = data
        return self._json

    def workspace(self) -> Workspace:
        """v2: the explicit workspaceId (JSON body of a POST/PATCH, else the query); v1: the default workspace."""
        world = self.world
        if self.spec.version == "v1":
            return world.default_workspace
        wid: Any = None
        if self.request.method in ("POST", "PATCH") and not self.spec.query_scoped:
            wid = self.json().get("workspaceId")
        if wid is None:
            wid = self.query("workspaceId")
        if not wid:
            raise ApiFail(
                400,
                "MISSING_WORKSPACE_SCOPE",
                "Missing explicit machine scope: pass workspaceId (see GET /v2/mcp/context)",
            )
        workspace = world.workspaces.get(wid) if isinstance(wid, str) else None
        if workspace is None:
            raise ApiFail(403, "FORBIDDEN", "Workspace access denied")
        return workspace

    def path_workspace(self) -> Workspace:
        """The workspace named by the path's ``{id}`` (team routes)."""
        workspace = self.world.workspaces.get(self.params["id"])
        if workspace is None:
            raise ApiFail(403, "FORBIDDEN", "Workspace access denied")
        return workspace

    def int_query(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise invalid(name, f"must be an integer from {low} to {high}")
        return value


Handler = Callable[[Ctx], Awaitable[Reply]]


def by_name(*handlers: Handler) -> dict[str, Handler]:
    """Handlers registered under their own names, which are the names of the routes they answer."""
    return {handler.__name__: handler for handler in handlers}


def invalid(path: str, message: str, code: str = "VALIDATION_ERROR") -> ApiFail:
    return ApiFail(400, code, f"{path}: {message}", issues=[{"path": path, "message": message}])


def text_field(body: dict[str, Any], name: str, *, limit: int = 10_000) -> str:
    """A required non-empty string field of at most ``limit`` characters."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(name, "is required (a non-empty string)")
    if len(value) > limit:
        raise invalid(name, f"must be at most {limit} characters")
    return value


def optional_text_field(body: dict[str, Any], name: str, *, limit: int = 10_000) -> str | None:
    return None if body.get(name) is None else text_field(body, name, limit=limit)


def required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiFail(
            400,
            "VALIDATION_ERROR",
            f"{name}: is required (a non-empty string)",
            issues=[{"path": name, "message": "is required"}],
        )
    return value


def optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(name, "must be a non-negative integer")
    return value
