"""The benchmarks run (short mode: that they work, not their numbers), and what they rely on holds.

``python -m bench.run --short`` must exit 0 and print a row for every figure. The schema compaction that
shrinks ``tools/list`` must keep every constraint: raw and compacted schemas accept exactly the same
values. The simulated clock of the rate-limit benchmark must order sleepers like real time.
"""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from postqued_mcp.tools.common import compact_schema

ROOT = Path(__file__).resolve().parents[1]

FIGURES = [
    "Cold start: spawn -> initialize -> tools/list, stdio",
    "Per-call overhead, stdio",
    "Per-call overhead, streamable HTTP",
    "tools/list size, default toolset",
    "tools/list size, all toolsets",
    "What a model reads of tools/list, default toolset",
    "over loopback, end to end",
    "over loopback, PUT only",
    "Upload peak RSS",
    "Longest event-loop stall",
    "Rate limits: 25 publishes + 40 status reads",
    "Journal: live publish latency",
]


@pytest.mark.slow  # the benchmark smoke run (~2 min): --run-slow
def test_short_benchmark_run_prints_every_figure() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--short"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    for figure in FIGURES:
        matching = [r for r in rows if figure in r]
        assert len(matching) == 1, (figure, out.stdout)
        cells = [c.strip() for c in matching[0].strip("|").split("|")]
        assert len(cells) == 6 and all(cells), matching[0]  # figure, value, baseline, ratio, goal, verdict
        assert cells[5] in ("met", "MISSED", "-"), cells
    assert out.stdout.startswith("machine: ")


# --- tools/list compaction keeps every constraint -------------------------------------------------

PROBES: list[Any] = [
    None, True, False, 0, 1, -1, 2.5, 10**6, "", "x", "abc-DEF_123", "a b", "../x", "2026-11-25T12:00:00Z",
    "SELF_ONLY", "PUBLIC_TO_EVERYONE", "tiktok", "y" * 600, [], ["a"], [1, 2], {}, {"a": 1},
]  # fmt: skip


def _nodes(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every property schema of a tool schema and of its $defs, by path."""
    found = []
    for name, sub in schema.get("properties", {}).items():
        found.append((name, sub))
    for def_name, definition in schema.get("$defs", {}).items():
        for name, sub in definition.get("properties", {}).items():
            found.append((f"{def_name}.{name}", sub))
    return found


def _accepts(node: dict[str, Any], defs: dict[str, Any], value: Any) -> bool:
    return bool(Draft202012Validator({**node, "$defs": defs}).is_valid(value))


def _registered_schemas() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(tool, raw, compact) for the input and output schemas of every tool of every toolset."""
    import postqued_mcp.tools.common
    from postqued.settings import TOOLSETS, Settings
    from postqued_mcp.app import build_server

    def build(compact: bool) -> dict[str, Any]:
        original = postqued_mcp.tools.common.compact_schema
        if not compact:
            postqued_mcp.tools.common.compact_schema = lambda node: node
        try:
            settings = Settings.build(state_dir=Path("unused"), media_dirs=(), toolsets=frozenset(TOOLSETS))
            listed = asyncio.run(build_server(settings).list_tools())
        finally:
            postqued_mcp.tools.common.compact_schema = original
        return {t.name: t for t in listed}

    raw, compact = build(False), build(True)
    assert raw.keys() == compact.keys()
    out = []
    for name in raw:
        out.append((name, raw[name].input_schema, compact[name].input_schema))
        if raw[name].output_schema is not None:
            assert compact[name].output_schema is not None
            out.append((f"{name} (output)", raw[name].output_schema, compact[name].output_schema))
    return out


def test_compaction_accepts_exactly_the_same_values() -> None:
    checked = 0
    for tool, raw, compact in _registered_schemas():
        assert raw.get("required", []) == compact.get("required", []), tool
        raw_nodes, compact_nodes = dict(_nodes(raw)), dict(_nodes(compact))
        assert raw_nodes.keys() == compact_nodes.keys(), tool
        for path, node in raw_nodes.items():
            for value in PROBES:
                before = _accepts(node, raw.get("$defs", {}), value)
                after = _accepts(compact_nodes[path], compact.get("$defs", {}), value)
                assert before == after, (tool, path, value)
                checked += 1
    assert checked > 1000


def test_compaction_drops_titles_but_keeps_properties_named_title() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "maxLength": 100},
            "privacy": {
                "anyOf": [{"enum": ["SELF_ONLY", "PUBLIC"], "type": "string"}, {"type": "null"}],
                "default": None,
                "title": "Privacy",
            },
            "when": {"anyOf": [{"format": "date-time", "type": "string"}, {"type": "null"}], "description": "d"},
            "target": {"anyOf": [{"$ref": "#/$defs/Target"}, {"type": "null"}]},
            "flag": {"default": True, "title": "Flag", "type": "boolean"},
            "choice": {"default": {"title": "kept: data"}, "type": "object"},
        },
        "$defs": {"Target": {"title": "Target", "type": "object", "properties": {"id": {"type": "string"}}}},
    }
    before = copy.deepcopy(schema)
    out = compact_schema(schema)
    assert schema == before  # the input is not modified
    assert "title" not in out and set(out["properties"]) == set(schema["properties"])
    assert out["properties"]["title"] == {"type": "string", "maxLength": 100}
    assert out["properties"]["privacy"] == {"enum": ["SELF_ONLY", "PUBLIC", None], "type": ["string", "null"]}
    assert out["properties"]["when"] == {"description": "d", "format": "date-time", "type": ["string", "null"]}
    assert out["properties"]["target"] == {"anyOf": [{"$ref": "#/$defs/Target"}, {"type": "null"}]}
    assert out["properties"]["flag"] == {"default": True, "type": "boolean"}
    assert out["properties"]["choice"]["default"] == {"title": "kept: data"}
    assert out["$defs"]["Target"] == {"type": "object", "properties": {"id": {"type": "string"}}}


# --- the simulated clock -------------------------------------------------------------------------


async def test_sim_clock_wakes_sleepers_in_time_order() -> None:
    from bench.ratelimits import SimClock, minimum_seconds

    clock = SimClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))
        if name == "b":
            await clock.sleep(5)
            woke.append(("b2", clock.monotonic()))

    await clock.run(asyncio.gather(sleeper("a", 30), sleeper("b", 10), sleeper("c", 20), sleeper("d", 0)))
    assert woke == [("d", 0.0), ("b", 10.0), ("b2", 15.0), ("c", 20.0), ("a", 30.0)]
    assert minimum_seconds({"publish": 25, "read": 40}, {"publish": 10, "read": 30}) == 120.0
    assert minimum_seconds({"publish": 10, "read": 30}, {"publish": 10, "read": 30}) == 0.0


@pytest.mark.parametrize("size", [5 * 1024 * 1024, 4 * 1024**3 + 7])  # a 32-bit and a 64-bit free box
def test_bench_upload_file_is_a_valid_mp4(tmp_path: Path, size: int) -> None:
    from bench.upload import make_file
    from postqued.media import check_path, detect_type, probe

    local = check_path(make_file(tmp_path / "big.mp4", size), [tmp_path])
    info = probe(local, detect_type(local))
    assert local.size == size and info.mime_type == "video/mp4" and (info.width, info.height) == (320, 240)
