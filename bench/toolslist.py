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


def _compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def model_visible_chars(tools: list[dict[str, Any]]) -> int:
    """Characters a model reads of ``tools/list``: each tool's name, description and input schema, compact."""
    seen = [{key: t[key] for key in MODEL_VISIBLE if key in t} for t in tools]
    return len(json.dumps(seen, separators=(",", ":"), ensure_ascii=False))


def listed(toolsets: frozenset[str], *, compact: bool, state_dir: Path) -> list[dict[str, Any]]:
    """The ``tools`` array exactly as ``tools/list`` serialises it."""
    import postqued_mcp.tools.schemas as schemas
    from postqued.settings import Settings
    from postqued_mcp.app import build_server

    originals = schemas.input_schema, schemas.output_schema
    if not compact:
        schemas.input_schema = schemas.output_schema = lambda schema: schema
    try:
        built = build_server(Settings.build(state_dir=state_dir, media_dirs=(), toolsets=toolsets))
        found = asyncio.run(built.list_tools())
    finally:
        schemas.input_schema, schemas.output_schema = originals
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in found]


def _shallow(schema: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        kind = sub.get("type") or ("object" if "$ref" in sub else None)
        props[name] = {"type": kind} if kind else {}
    return {"type": "object", "properties": props, "required": schema.get("required", [])}


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def run(config: Config) -> list[Row]:
    from postqued.settings import TOOLSETS

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp:
        for label, toolsets in (("default toolset", frozenset({"publishing"})), ("all toolsets", frozenset(TOOLSETS))):
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
    return rows
