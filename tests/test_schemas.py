"""Every tool schema is portable, and portability changed no contract.

Input schemas use the subset every host reads (no ``null``, no ``type`` arrays, no ``$ref``, no empty
schemas); output schemas stay exact but never use ``type`` arrays or untyped schemas. Checked here by the
project's own rules for every toolset, and by MCP Inspector's ``--strict`` lint where Node 22 and the
Inspector are installed (``scripts/install_node_tools.sh``; skipped, saying why, where they are not).
The rewritten schemas accept exactly what the generated ones accept, except ``null`` for an optional
argument, which the server treats as omitted.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import mcp.types as mt
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from mcp import Client

from bench.toolslist import listed
from postqued.settings import TOOLSETS, Settings
from postqued_mcp.app import build_server
from postqued_mcp.tools.schemas import SchemaError, compact_schema, input_schema, portability_problems
from tests.nodetools import REPO, node_tool, node_tool_env

ALL = frozenset(TOOLSETS)
DEFAULT: frozenset[str] = Settings.model_fields["toolsets"].default  # publishing + list_toolsets, enable_toolset

PROBES: list[Any] = [
    None, True, False, 0, 1, -1, 2.5, 10**6, "", "x", "abc-DEF_123", "a b", "../x", "2026-11-25T12:00:00Z",
    "SELF_ONLY", "PUBLIC_TO_EVERYONE", "tiktok", "y" * 600, [], ["a"], [1, 2], {}, {"a": 1},
    "00000000-0000-4000-8000-000000000000",
]  # fmt: skip


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """tool name -> (as the SDK generates it, as advertised), every toolset."""
    state = tmp_path_factory.mktemp("state")
    raw = {t["name"]: t for t in listed(ALL, compact=False, state_dir=state)}
    ours = {t["name"]: t for t in listed(ALL, compact=True, state_dir=state)}
    assert raw.keys() == ours.keys() and len(ours) >= 60
    return {name: (raw[name], ours[name]) for name in ours}


@pytest.mark.parametrize("toolsets", [DEFAULT, ALL | {"dynamic"}], ids=["default", "all"])
def test_every_advertised_schema_is_portable(toolsets: frozenset[str], tmp_path: Path) -> None:
    tools = listed(toolsets, compact=True, state_dir=tmp_path)
    assert [p for t in tools for p in portability_problems(t)] == []


def test_the_check_finds_what_the_sdk_generates(schemas: dict[str, Any]) -> None:
    """Without the rewrite the same check finds every problem class (so a pass above means something)."""
    problems = [p for raw, _ in schemas.values() for p in portability_problems(raw)]
    for kind in ("$ref/$defs", "null (an optional argument"):
        assert any(kind in p for p in problems), kind


@pytest.mark.parametrize(
    ("schema", "kind", "problem"),
    [
        ({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}, "input", "type is an array"),
        ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}, "input", "null"),
        ({"type": "object", "properties": {"a": {"enum": ["x", None], "type": "string"}}}, "input", "null"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "string"}}},
            "input",
            "$ref",
        ),
        ({"type": "object", "properties": {"a": {}}}, "input", "empty schema"),
        ({"type": "object", "properties": {"a": True}}, "input", "bare true"),
        ({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}, "output", "type is an array"),
        ({"type": "object", "properties": {"a": {"description": "anything"}}}, "output", "empty schema"),
        ({"type": "object", "properties": {"a": {"$ref": "https://x/s.json"}}}, "output", "points outside"),
    ],
)
def test_the_check_names_each_rule(schema: dict[str, Any], kind: str, problem: str) -> None:
    tool = {"name": "t", "inputSchema": schema} if kind == "input" else {"name": "t", "inputSchema": {"type": "object"}}
    if kind == "output":
        tool["outputSchema"] = schema
    found = portability_problems(tool)
    assert found and all(problem in f for f in found), found


def test_output_schemas_may_say_null_with_anyof_and_refer_to_their_defs() -> None:
    out = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]},
            "m": {"additionalProperties": True, "type": "object"},
        },
        "$defs": {"A": {"type": "object", "properties": {"x": {"type": "string"}}}},
    }
    assert portability_problems({"name": "t", "inputSchema": {"type": "object"}, "outputSchema": out}) == []


def _accepts(schema: dict[str, Any], value: Any) -> bool:
    return bool(Draft202012Validator(schema).is_valid(value))


def test_rewritten_schemas_accept_the_same_values_except_null_for_optional_arguments(schemas: dict[str, Any]) -> None:
    checked = 0
    for name, (raw, ours) in schemas.items():
        raw_in, our_in = raw["inputSchema"], ours["inputSchema"]
        assert raw_in.get("required", []) == our_in.get("required", []), name
        assert raw_in["properties"].keys() == our_in["properties"].keys(), name
        defs = raw_in.get("$defs", {})
        for prop, sub in our_in["properties"].items():
            for value in PROBES:
                before = _accepts({**raw_in["properties"][prop], "$defs": defs}, value)
                after = _accepts(sub, value)
                if value is None and prop not in our_in.get("required", []):
                    assert not after, (name, prop)  # advertised without null; sent anyway, it means "omitted"
                else:
                    assert before == after, (name, prop, value)
                checked += 1
        if "outputSchema" in raw:
            raw_out, our_out = raw["outputSchema"], ours["outputSchema"]
            for prop, sub in raw_out["properties"].items():
                for value in PROBES:
                    before = _accepts({**sub, "$defs": raw_out.get("$defs", {})}, value)
                    after = _accepts({**our_out["properties"][prop], "$defs": our_out.get("$defs", {})}, value)
                    assert before == after, (name, "output", prop, value)
                    checked += 1
    assert checked > 5000


def test_nested_models_are_inlined_with_their_constraints(schemas: dict[str, Any]) -> None:
    target = schemas["publish_content"][1]["inputSchema"]["properties"]["targets"]["items"]
    assert target["type"] == "object" and {"platform", "account_id", "intent", "caption"} <= set(target["required"])
    assert target["properties"]["dispatch_at"] == {
        "description": target["properties"]["dispatch_at"]["description"],
        "format": "date-time",
        "type": "string",
    }


def test_compaction_drops_titles_and_null_defaults_but_keeps_properties_named_title() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "maxLength": 100},
            "when": {"anyOf": [{"format": "date-time", "type": "string"}, {"type": "null"}], "default": None},
            "flag": {"default": True, "title": "Flag", "type": "boolean"},
            "choice": {"default": {"title": "kept: data"}, "type": "object"},
        },
    }
    before = copy.deepcopy(schema)
    out = compact_schema(schema)
    assert schema == before  # the input is not modified
    assert out == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 100},
            "when": {"anyOf": [{"format": "date-time", "type": "string"}, {"type": "null"}]},
            "flag": {"default": True, "type": "boolean"},
            "choice": {"default": {"title": "kept: data"}, "type": "object"},
        },
    }


def test_a_required_argument_that_may_be_null_is_refused_at_registration() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["a"],
    }
    with pytest.raises(SchemaError, match="'a' is required but may be null"):
        input_schema(schema)
    recursive = {
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/N"}},
        "$defs": {"N": {"properties": {"n": {"$ref": "#/$defs/N"}}}},
    }
    with pytest.raises(SchemaError, match="recursive"):
        input_schema(recursive)


# --- explicit null from a client ------------------------------------------------------------------


async def test_null_for_an_optional_argument_means_omitted_and_for_a_required_one_names_it(tmp_path: Path) -> None:
    configured = Settings.build(state_dir=tmp_path, media_dirs=(tmp_path,), sandbox=True)
    async with Client(build_server(configured)) as client:
        omitted = await client.call_tool("list_publish_journal", {})
        nulls = await client.call_tool("list_publish_journal", {"limit": None, "status": None})
        assert not omitted.is_error and not nulls.is_error, nulls.content
        assert nulls.structured_content == omitted.structured_content
        accounts = await client.call_tool("list_accounts", {"platform": None, "workspace_id": None})
        assert not accounts.is_error and (accounts.structured_content or {})["accounts"]
        refused = await client.call_tool("get_publish_status", {"publish_id": None})
    assert refused.is_error
    text = refused.content[0]
    assert isinstance(text, mt.TextContent) and "publish_id" in text.text


# --- MCP Inspector, the tool hosts' developers run ---------------------------------------------------


@pytest.mark.parametrize("toolsets", ["dynamic", "all"])
def test_mcp_inspector_strict_finds_no_portability_problem(toolsets: str, tmp_path: Path) -> None:
    inspector = node_tool("inspector-cli")
    out = subprocess.run(
        [
            *inspector,
            "--strict",
            "--method",
            "tools/list",
            "-e",
            f"POSTQUED_STATE_DIR={tmp_path}",
            "-e",
            f"POSTQUED_TOOLSETS={toolsets}",
            sys.executable,
            str(REPO / "server.py"),
            "--sandbox",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=node_tool_env(),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"tools"' in out.stdout and "list_accounts" in out.stdout  # it did list the tools
    assert "Warning" not in out.stderr and "Error" not in out.stderr, out.stderr[-3000:]
