"""Fault switches: each injected fault is consumed by the next ``times`` matching requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS: frozenset[str] = frozenset(
    {
        "drop_after_commit",  # process and commit, then drop the connection without an answer
        "drop_before_commit",  # drop the connection without processing
        "status",  # answer params["status"] (optional params["retry_after"], params["code"])
        "slow",  # wait params["seconds"] on the sandbox clock, then carry on
        "truncate_body",  # a 2xx whose JSON body is cut in half (Content-Length matches the cut)
        "expire_upload_url",  # the next presigned URL is already expired
        "reset_put",  # storage PUT: read params["after_bytes"] bytes, then drop; nothing stored
    }
)
_ROUTE_ONLY = {
    "expire_upload_url": {"content_upload", "v1_content_upload"},
    "reset_put": {"storage_put"},
}


class ConnectionDropped(Exception):
    """Raised inside the app to drop the connection without an answer (in-process transport)."""


class ConnectionReset(Exception):
    """Raised inside the app to reset the connection mid-body (in-process transport)."""


@dataclass
class Fault:
    kind: str
    route: str  # a route name, or "*" for every route
    times: int
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.fired


class FaultBook:
    def __init__(self, routes: frozenset[str]) -> None:
        self._routes = routes  # the route names a fault may name
        self._faults: list[Fault] = []

    def add(self, kind: str, route: str, times: int, params: dict[str, Any]) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        if route != "*" and route not in self._routes:
            raise ValueError(f"unknown route {route!r}; known: {sorted(self._routes)}")
        allowed = _ROUTE_ONLY.get(kind)
        if allowed is not None and route not in allowed:
            raise ValueError(f"fault {kind!r} applies to routes {sorted(allowed)} only")
        if times < 1:
            raise ValueError("times must be at least 1")
        if kind == "status":
            status = params.get("status")
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError("a 'status' fault needs status=<400..599>")
        if kind == "slow" and not isinstance(params.get("seconds"), int | float):
            raise ValueError("a 'slow' fault needs seconds=<number>")
        if kind == "reset_put" and not isinstance(params.get("after_bytes"), int):
            raise ValueError("a 'reset_put' fault needs after_bytes=<int>")
        fault = Fault(kind, route, times, dict(params))
        self._faults.append(fault)
        return fault

    def take(self, kind: str, route: str) -> Fault | None:
        """Consume one firing of the oldest matching fault, if any."""
        for fault in self._faults:
            if fault.kind == kind and fault.route in (route, "*") and fault.remaining > 0:
                fault.fired += 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def peek(self, kind: str, route: str) -> bool:
        return any(f.kind == kind and f.route in (route, "*") and f.remaining > 0 for f in self._faults)

    @property
    def pending(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()
