"""The operations table: one row per PostQued operation, the one place a route path or bucket is written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from postqued.api.operations import OPERATIONS, endpoints, supports
from postqued.sandbox.router import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
ROUTE_LITERAL = re.compile(r"^/v[12](/[\w{}.:-]+)+/?$")


def _sandbox_name(version: str, name: str) -> str:
    if version == "v2":
        return name
    return {"integrations": "v1_platform_accounts"}.get(name, f"v1_{name}")


def test_the_buckets_follow_the_one_rule() -> None:
    """read = every authenticated GET, delete = every HTTP DELETE, upload = the upload routes, publish = the
    publish POST; every other write is in no documented bucket (see the module docstring for the reasons)."""
    uploads = {"content_upload", "content_complete", "upload_image"}
    for op in OPERATIONS.values():
        if op.method == "GET":
            expected = "read" if op.auth else None
        elif op.method == "DELETE":
            expected = "delete"
        elif op.name in uploads:
            expected = "upload"
        elif op.name == "publish":
            expected = "publish"
        else:
            expected = None
        assert op.bucket == expected, op.name


@pytest.mark.parametrize(
    "name", ["content_update", "publish_cancel", "target_cancel", "target_reschedule", "engagement_delete"]
)
def test_the_five_disputed_buckets_are_settled_and_the_sandbox_agrees(name: str) -> None:
    assert OPERATIONS[name].bucket is None
    assert BY_NAME[name].bucket is None


def test_the_sandbox_meters_every_operation_as_the_table_says() -> None:
    for version in ("v2", "v1"):
        for name, endpoint in endpoints(version).items():
            assert BY_NAME[_sandbox_name(version, name)].bucket == endpoint.bucket, (version, name)


def test_every_row_is_complete() -> None:
    for op in OPERATIONS.values():
        assert op.routes, op.name
        for version, route in op.routes.items():
            assert route.path.startswith(f"/{version}/"), (op.name, route.path)
            assert route.source in ("v1-docs", "openapi", "route-map", "assumed")
        if op.kind in ("write", "publish", "once"):
            assert op.method != "GET", op.name
        if op.scope == "path":
            assert op.routes["v2"].path.startswith("/v2/workspaces/{id}"), op.name


def test_v1_has_exactly_the_documented_routes() -> None:
    assert {e.path for e in endpoints("v1").values()} == {
        "/v1/content/upload",
        "/v1/content/upload/complete",
        "/v1/content/upload-image",
        "/v1/platform-accounts",
        "/v1/content/publish",
        "/v1/content/publish/{id}",
    }
    assert supports("v1", "publish") and not supports("v1", "content_list") and not supports("v2", "upload_image")


def _route_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ROUTE_LITERAL.match(node.value)
    ]


def test_no_route_path_is_written_outside_the_table() -> None:
    """Outside postqued/api/operations.py no source writes a PostQued route (the simulator included)."""
    sources = [*ROOT.glob("postqued/**/*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("postqued_mcp/*.py")]
    found = {
        str(p.relative_to(ROOT)): hits for p in sources if p.name != "operations.py" and (hits := _route_literals(p))
    }
    assert not found
