"""``tools/list`` size: the default toolset and ``all``, in compact JSON bytes and estimated tokens.

The baseline is the same server with the SDK's schemas as generated (``postqued_mcp.tools.schemas``'
``input_schema`` and ``output_schema`` switched off), built in the same run, so the ratio is what the rewrite
saves. Tokens are estimated as bytes / 4 (no tokenizer is installed; JSON schemas usually tokenize at 3-4
bytes per token). Two what-ifs
are printed for the size goal: without ``outputSchema`` (results stay structured, clients just cannot
validate them) and with shallow output schemas (top-level fields and types only).

What a model reads of the list (hosts show it names, descriptions and input schemas, not output schemas or
annotations) is measured in characters of compact JSON, against the cap of 12,000 that
``tests/test_agent_guidance.py`` asserts for the default toolset.

On-demand toolsets (issue 19): the default start (``dynamic``: publishing plus ``list_toolsets`` and
``enable_toolset``) against the goal of under 14,000 characters a model reads while every tool stays
reachable; then the same session after ``enable_toolset`` of each other toolset, and ``all`` at start.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Config, Row, ratio

GOAL_BYTES = 16 * 1024
MODEL_VISIBLE_CAP = 12_000  # characters of the default toolset's names, descriptions and input schemas
MODEL_VISIBLE = ("name", "description", "inputSchema")
ON_DEMAND_GOAL = 14_000  # characters a model reads at start, with every tool reachable (issue 19)


def _compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def model_visible_chars(tools: list[dict[str, Any]]) -> int:
    """Characters a model reads of ``tools/list``: each tool's name, description and input schema, compact.

    App-only tools (MCP Apps, ``_meta.ui.visibility`` without "model") are left out: hosts never show them
    to the model, and clients without Apps do not even receive them.
    """
    from postqued_mcp.tools.apps import app_only

    seen = [{key: t[key] for key in MODEL_VISIBLE if key in t} for t in tools if not app_only(t)]
    return len(json.dumps(seen, separators=(",", ":"), ensure_ascii=False))


def listed(
    toolsets: frozenset[str], *, compact: bool, state_dir: Path, enable: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The ``tools`` array exactly as ``tools/list`` serialises it (after ``enable_toolset`` of each of ``enable``)."""
    import postqued_mcp.tools.schemas as schemas
    from postqued.settings import Settings
    from postqued_mcp.app import build_server

    originals = schemas.input_schema, schemas.output_schema
    if not compact:
        schemas.input_schema = schemas.output_schema = lambda schema: schema
    try:
        built = build_server(Settings.build(state_dir=state_dir, media_dirs=(), toolsets=toolsets))
        found = asyncio.run(_enabled(built, enable)) if enable else asyncio.run(built.list_tools())
    finally:
        schemas.input_schema, schemas.output_schema = originals
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in found]


async def _enabled(built: Any, names: tuple[str, ...]) -> list[Any]:
    from mcp import Client

    async with Client(built) as client:
        for name in names:
            result = await client.call_tool("enable_toolset", {"name": name})
            assert not result.is_error, result.content
        return list((await client.list_tools()).tools)


def _shallow(schema: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        kind = sub.get("type") or ("object" if "$ref" in sub else None)
        props[name] = {"type": kind} if kind else {}
    return {"type": "object", "properties": props, "required": schema.get("required", [])}


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def run(config: Config) -> list[Row]:
    from postqued.settings import TOOLSETS, Settings

    default_toolsets: frozenset[str] = Settings.model_fields["toolsets"].default
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp:
        for label, toolsets in (("default toolset", default_toolsets), ("all toolsets", frozenset(TOOLSETS))):
            ours = listed(toolsets, compact=True, state_dir=Path(tmp))
            raw = listed(toolsets, compact=False, state_dir=Path(tmp))
            size, raw_size, n = _compact(ours), _compact(raw), len(ours)
            no_output = _compact([{k: v for k, v in t.items() if k != "outputSchema"} for t in ours])
            shallow = _compact([{**t, "outputSchema": _shallow(t.get("outputSchema") or {})} for t in ours])
            inputs = sum(_compact(t["inputSchema"]) for t in ours)
            outputs = sum(_compact(t.get("outputSchema")) for t in ours)
            default = label == "default toolset"
            rows.append(
                Row(
                    figure=f"tools/list size, {label} ({n} tools)",
                    value=f"{_kb(size)}, ~{size // 4:,} tokens, {size // n:,} B/tool",
                    baseline=f"SDK schemas as generated: {_kb(raw_size)}",
                    ratio=ratio(size, raw_size),
                    goal="< 16.0 KB compact JSON" if default else "report",
                    met=size < GOAL_BYTES if default else None,
                    notes=[
                        f"{label}: input schemas {_kb(inputs)}, output schemas {_kb(outputs)}, the rest "
                        f"(names, titles, descriptions, annotations) {_kb(size - inputs - outputs)}",
                        f"{label}: what-if without outputSchema {_kb(no_output)}; "
                        f"with shallow output schemas {_kb(shallow)}",
                    ],
                )
            )
            if default:
                seen, raw_seen = model_visible_chars(ours), model_visible_chars(raw)
                rows.append(
                    Row(
                        figure="What a model reads of tools/list, default toolset",
                        value=f"{seen:,} characters (names, descriptions, input schemas)",
                        baseline=f"SDK schemas as generated: {raw_seen:,} characters",
                        ratio=ratio(seen, raw_seen),
                        goal=f"<= {MODEL_VISIBLE_CAP:,} characters",
                        met=seen <= MODEL_VISIBLE_CAP,
                    )
                )
    rows.append(_on_demand(Path(tmp), default_toolsets, frozenset(TOOLSETS)))
    return rows


def _on_demand(state_dir: Path, default: frozenset[str], every: frozenset[str]) -> Row:
    """The default start, each toolset enabled on demand, every toolset enabled, and ``all`` at start."""
    from postqued_mcp.tools.apps import app_only

    # Tools a model can call: the card's app-only tools are hidden from models (and from hosts without Apps).
    start = [t for t in listed(default, compact=True, state_dir=state_dir) if not app_only(t)]
    at_start = [t for t in listed(every, compact=True, state_dir=state_dir) if not app_only(t)]
    discovery = {"list_toolsets", "enable_toolset"}
    others = tuple(name for name in sorted(every) if name not in default)
    notes = [
        f"dynamic (default start): {model_visible_chars(start):,} characters a model reads, "
        f"{_kb(_compact(start))} tools/list, {len(start)} tools"
    ]
    for name in others:
        after = listed(default, compact=True, state_dir=state_dir, enable=(name,))
        notes.append(
            f"dynamic + enable_toolset({name}): {model_visible_chars(after):,} characters, "
            f"{_kb(_compact(after))} tools/list, {len(after)} tools"
        )
    everything = [t for t in listed(default, compact=True, state_dir=state_dir, enable=others) if not app_only(t)]
    reachable = {t["name"] for t in everything} - discovery
    notes.append(
        f"dynamic + every toolset enabled: {model_visible_chars(everything):,} characters, "
        f"{_kb(_compact(everything))} tools/list, {len(everything)} tools"
    )
    notes.append(
        f"all at start: {model_visible_chars(at_start):,} characters, {_kb(_compact(at_start))} tools/list, "
        f"{len(at_start)} tools"
    )
    seen, total = model_visible_chars(start), len(at_start)
    ok = seen < ON_DEMAND_GOAL and reachable == {t["name"] for t in at_start}
    return Row(
        figure="On-demand toolsets: what a model reads at start",
        value=f"{seen:,} characters, {len(start)} tools; {len(reachable)} of {total} tools reachable",
        baseline=f"all toolsets at start: {model_visible_chars(at_start):,} characters",
        ratio=ratio(seen, model_visible_chars(at_start)),
        goal=f"< {ON_DEMAND_GOAL:,} characters, all {total} reachable",
        met=ok,
        notes=notes,
    )
