"""The sandbox's routes, built from the operations table (``postqued.api.operations``): each PostQued
operation in each API version it exists in, with the method, path, bucket, workspace placement and whether
it needs the API key that the table gives. The one route of the simulator's own is its storage endpoint
(presigned PUTs; the path is ``storage.STORAGE_PREFIX``). ``match_route`` finds the route for a request; a
known path with another method is a 405.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postqued.api.operations import Endpoint, endpoints
from postqued.sandbox.storage import STORAGE_PREFIX

# The ledger's (and the fault switches') name for an operation: the table's name in v2, "v1_<name>" in v1,
# and v1's accounts route under the name of its path, as the tests have always called it.
_V1_NAMES = {"integrations": "v1_platform_accounts"}


@dataclass(frozen=True)
class RouteSpec:
    name: str  # the ledger's and the fault switches' name for the route
    method: str
    path: str  # the template, e.g. "/v2/content/{id}"
    pattern: re.Pattern[str]
    version: str  # "v1" | "v2" | "storage"
    bucket: str | None  # None: not rate limited
    auth: bool = True
    query_scoped: bool = False  # a POST/PATCH whose workspaceId travels in the query, not the body


def _pattern(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}$")


def _spec(version: str, endpoint: Endpoint) -> RouteSpec:
    name = endpoint.name if version == "v2" else _V1_NAMES.get(endpoint.name, f"v1_{endpoint.name}")
    query_scoped = endpoint.scope == "query" and endpoint.method in ("POST", "PATCH")
    return RouteSpec(
        name,
        endpoint.method,
        endpoint.path,
        _pattern(endpoint.path),
        version,
        endpoint.bucket,
        endpoint.auth,
        query_scoped,
    )


ROUTES: tuple[RouteSpec, ...] = (
    *(_spec(version, endpoint) for version in ("v2", "v1") for endpoint in endpoints(version).values()),
    RouteSpec(
        "storage_put",
        "PUT",
        f"{STORAGE_PREFIX}{{key:path}}",
        _pattern(f"{STORAGE_PREFIX}{{key:path}}"),
        "storage",
        None,
        auth=False,
    ),
)
ROUTE_NAMES: frozenset[str] = frozenset(r.name for r in ROUTES)
BY_NAME: dict[str, RouteSpec] = {r.name: r for r in ROUTES}
assert len(BY_NAME) == len(ROUTES), "two routes share a ledger name"


def match_route(method: str, path: str) -> tuple[RouteSpec | None, dict[str, str], bool]:
    """(route, path params, path_known). ``path_known`` with no route means a wrong method (405)."""
    path_known = False
    for spec in ROUTES:
        found = spec.pattern.match(path)
        if found is None:
            continue
        if spec.method == method:
            return spec, found.groupdict(), True
        path_known = True
    return None, {}, path_known
