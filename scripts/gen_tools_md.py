"""Generate ``references/tools.md`` from the live server's ``tools/list``.

The catalog is never written by hand: every tool that ``POSTQUED_TOOLSETS=all`` registers is listed, grouped
by the toolset it belongs to (``tools.TOOLSETS``), with its title, annotations, arguments, result fields and
the PostQued routes it calls. ``tests/test_skill.py`` fails when the committed file and this output differ.

    python scripts/gen_tools_md.py           # rewrite references/tools.md
    python scripts/gen_tools_md.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS_MD = ROOT / "references" / "tools.md"
if str(ROOT) not in sys.path:  # `python scripts/gen_tools_md.py` from a checkout
    sys.path.insert(0, str(ROOT))

CONSTRAINTS: tuple[tuple[str, str], ...] = (
    ("minLength", "min length {}"),
    ("maxLength", "max length {}"),
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "min items {}"),
    ("maxItems", "max items {}"),
    ("pattern", "pattern `{}`"),
)
# Routes a tool calls without declaring them in its ToolSpec (declared routes gate registration per API
# version; list_workspaces exists in v1 too, where it answers with the one implicit workspace).
UNDECLARED_ROUTES: dict[str, tuple[str, ...]] = {"list_workspaces": ("context",)}


@dataclass
class ServerView:
    """What a client sees of one server configuration."""

    tools: list[Any]
    resources: list[Any] = field(default_factory=list)
    templates: list[Any] = field(default_factory=list)
    prompts: list[Any] = field(default_factory=list)


@dataclass
class Catalog:
    v2: ServerView
    v1_names: set[str]
    toolset_of: dict[str, str]  # tool name -> toolset name
    toolset_order: list[str]
    routes_of: dict[str, list[str]]  # tool name -> "METHOD /path" (v2), from the client's route table
    v1_routes_of: dict[str, list[str]]


async def _view(api_version: str) -> ServerView:
    from mcp import Client

    from postqued.settings import DYNAMIC, TOOLSETS, Settings
    from postqued_mcp.app import build_server

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.build(
            sandbox=True,
            api_version=api_version,
            state_dir=Path(tmp),
            media_dirs=(Path(tmp),),
            toolsets=frozenset(TOOLSETS) | {DYNAMIC},
        )
        async with Client(build_server(settings)) as client:
            tools: list[Any] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            view = ServerView(tools=tools)
            if api_version == "v2":
                view.resources = list((await client.list_resources()).resources)
                view.templates = list((await client.list_resource_templates()).resource_templates)
                view.prompts = list((await client.list_prompts()).prompts)
            return view


async def collect() -> Catalog:
    """Ask the live server (in-process, sandbox mode, every toolset) what it registers, for v2 and for v1."""
    from postqued.api.operations import endpoints
    from postqued.settings import DYNAMIC
    from postqued_mcp.tools import TOOLSETS as GROUPS
    from postqued_mcp.tools.discovery import NAMES as DISCOVERY

    v2 = await _view("v2")
    v1 = await _view("v1")
    toolset_of: dict[str, str] = {}
    routes_of: dict[str, list[str]] = {}
    v1_routes_of: dict[str, list[str]] = {}
    for toolset_name, groups in GROUPS.items():
        for group in groups:
            for spec in group.specs:
                toolset_of.setdefault(spec.name, toolset_name)
                names = spec.routes or UNDECLARED_ROUTES.get(spec.name, ())
                routes_of[spec.name] = [_route(endpoints("v2").get(r)) for r in names]
                v1_routes_of[spec.name] = [_route(endpoints("v1").get(r)) for r in names]
    for name in sorted(DISCOVERY):  # list_toolsets, enable_toolset: local, no route
        toolset_of[name], routes_of[name], v1_routes_of[name] = DYNAMIC, [], []
    return Catalog(
        v2=v2,
        v1_names={t.name for t in v1.tools},
        toolset_of=toolset_of,
        toolset_order=[*GROUPS, DYNAMIC],
        routes_of=routes_of,
        v1_routes_of=v1_routes_of,
    )


def _route(route: Any) -> str:
    return f"{route.method} {route.path}" if route is not None else "-"


# --- JSON Schema -> readable text ------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: Mapping[str, Any]) -> str:
    """A short type for a JSON Schema node: ``string``, ``integer | null``, ``array of TargetInput``..."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "enum" in schema:
        return " \\| ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']!r}`"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " \\| ".join(dict.fromkeys(type_of(s) for s in schema[key]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " \\| ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {type_of(items)}" if isinstance(items, Mapping) and items else "array"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and extra:
            return f"object of {type_of(extra)}"
        return "object"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    if kind is None:
        return "any"
    return str(kind)


def constraints_of(schema: Mapping[str, Any]) -> str:
    """minLength, maximum, maxItems... of a node, including those inside ``anyOf`` branches."""
    found: list[str] = []
    nodes = [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]
    for node in nodes:
        for key, template in CONSTRAINTS:
            if key in node:
                text = template.format(node[key])
                if text not in found:
                    found.append(text)
    return ", ".join(found)


def _default(schema: Mapping[str, Any]) -> str:
    if "default" not in schema:
        return ""
    value = schema["default"]
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, Mapping):
        if "$ref" in schema:
            yield _ref_name(schema["$ref"])
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def _field_rows(schema: Mapping[str, Any], *, with_default: bool) -> list[str]:
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    rows = []
    for name, prop in props.items():
        cells = [f"`{name}`", type_of(prop)]
        if with_default:  # arguments: what the caller must send, and what it may not
            cells += ["yes" if name in required else "no", _default(prop)]
        cells.append(_cell(prop.get("description", "")))
        if with_default:
            cells.append(_cell(constraints_of(prop)))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _table(schema: Mapping[str, Any], *, with_default: bool) -> list[str]:
    rows = _field_rows(schema, with_default=with_default)
    if not rows:
        return ["None."]
    if with_default:
        head = ["| name | type | required | default | description | constraints |", "|---|---|---|---|---|---|"]
    else:
        head = ["| field | type | description |", "|---|---|---|"]
    return head + rows


def _defs(schema: Mapping[str, Any], *, with_default: bool, prefix: str) -> list[str]:
    """The nested object types a schema refers to, in the order they are first used."""
    defs: Mapping[str, Any] = schema.get("$defs") or {}
    order: list[str] = []
    pending = list(_refs({k: v for k, v in schema.items() if k != "$defs"}))
    while pending:
        name = pending.pop(0)
        if name in order or name not in defs:
            continue
        order.append(name)
        pending.extend(_refs(defs[name]))
    out: list[str] = []
    for name in order:
        out += ["", f"{prefix} `{name}`:", ""]
        desc = defs[name].get("description")
        if desc:
            out += [_cell(desc), ""]
        out += _table(defs[name], with_default=with_default)
    return out


# --- rendering -------------------------------------------------------------------------------------------


def _hints(annotations: Any) -> dict[str, bool | None]:
    if annotations is None:
        return {"read_only": None, "destructive": None, "idempotent": None, "open_world": None}
    return {
        "read_only": annotations.read_only_hint,
        "destructive": annotations.destructive_hint,
        "idempotent": annotations.idempotent_hint,
        "open_world": annotations.open_world_hint,
    }


def _yn(value: bool | None, default: str) -> str:
    return default if value is None else ("yes" if value else "no")


def _kind(hints: Mapping[str, bool | None]) -> str:
    if hints["read_only"]:
        return "read" if hints["open_world"] is not False else "read (local)"
    if hints["destructive"]:
        return "destructive"
    return "write (idempotent)" if hints["idempotent"] else "write"


def _anchor(name: str) -> str:
    return name.lower()


def render(catalog: Catalog) -> str:
    """The whole of ``references/tools.md`` as text."""
    tools = catalog.v2.tools
    by_toolset: dict[str, list[Any]] = {}
    for tool in tools:
        by_toolset.setdefault(catalog.toolset_of.get(tool.name, "other"), []).append(tool)
    order = [t for t in catalog.toolset_order if t in by_toolset] + sorted(
        t for t in by_toolset if t not in catalog.toolset_order
    )
    # tools in the order their modules define them (the toolset's own reading order)
    spec_index = {name: i for i, name in enumerate(catalog.toolset_of)}
    for toolset in order:
        by_toolset[toolset].sort(key=lambda t: spec_index.get(t.name, len(spec_index)))

    lines = [
        "# MCP tools of postqued-mcp",
        "",
        "<!-- Generated by scripts/gen_tools_md.py from the live server's tools/list. Do not edit by hand:",
        "     run `python scripts/gen_tools_md.py` after changing a tool; tests/test_skill.py checks it. -->",
        "",
        f"{len(tools)} tools in {len(order)} toolset(s), as registered with `POSTQUED_TOOLSETS=all,dynamic` and "
        "API v2. "
        "The default start (`dynamic`) loads `publishing` plus `list_toolsets` and `enable_toolset`, which adds any "
        "other toolset on request; `POSTQUED_READ_ONLY=true` registers only the tools marked "
        "*read* below; with `POSTQUED_API_VERSION=v1` only the tools marked *v1: yes* exist. Arguments and "
        "results are snake_case; the server translates to PostQued's camelCase. Every result is structured "
        "JSON (the *result fields* below); an anticipated failure is a tool error whose text reads "
        "`CODE (HTTP status): message Next step: ...` (see [SKILL.md](../SKILL.md#when-something-fails)).",
        "",
        "Annotations are hints for the client: *read-only* tools change nothing; *destructive* ones remove or "
        "cancel something; *idempotent* ones have the same effect when repeated; *open-world* ones talk to "
        "PostQued (the others only read this machine's state).",
        "",
        "| tool | toolset | kind | v1 | title |",
        "|---|---|---|---|---|",
    ]
    for toolset in order:
        for tool in by_toolset[toolset]:
            hints = _hints(tool.annotations)
            v1 = "yes" if tool.name in catalog.v1_names else "no"
            lines.append(
                f"| [`{tool.name}`](#{_anchor(tool.name)}) | {toolset} | {_kind(hints)} | {v1} | "
                f"{_cell(tool.title or '')} |"
            )

    for toolset in order:
        lines += ["", f"## Toolset `{toolset}`"]
        for tool in by_toolset[toolset]:
            lines += _render_tool(tool, toolset, catalog)

    lines += _render_resources(catalog.v2)
    return "\n".join(lines).rstrip() + "\n"


def _render_tool(tool: Any, toolset: str, catalog: Catalog) -> list[str]:
    hints = _hints(tool.annotations)
    routes = catalog.routes_of.get(tool.name, [])
    v1_routes = catalog.v1_routes_of.get(tool.name, [])
    if hints["read_only"]:  # destructive/idempotent hints mean nothing for a tool that changes nothing
        destructive, idempotent = "no", "yes"
    else:
        destructive, idempotent = _yn(hints["destructive"], "yes"), _yn(hints["idempotent"], "no")
    out = [
        "",
        f"### {tool.name}",
        "",
        f"**{_cell(tool.title or tool.name)}** · toolset `{toolset}` · "
        f"read-only: {_yn(hints['read_only'], 'no')} · destructive: {destructive} · "
        f"idempotent: {idempotent} · open-world: {_yn(hints['open_world'], 'yes')} · "
        f"v1: {'yes' if tool.name in catalog.v1_names else 'no'}",
        "",
        inspect.cleandoc(tool.description or "").replace("\n", " "),
        "",
    ]
    if routes:
        text = ", ".join(f"`{r}`" for r in routes)
        if tool.name in catalog.v1_names and v1_routes != routes:
            shown = [r for r in v1_routes if r != "-"]
            text += "; v1: " + (", ".join(f"`{r}`" for r in shown) if shown else "none (answered locally)")
        out += [f"PostQued routes: {text}.", ""]
    elif hints["open_world"] is False:
        out += ["PostQued routes: none (reads this machine's state only).", ""]
    else:
        out += ["PostQued routes: not declared by the tool.", ""]
    schema = tool.input_schema or {}
    out += ["Arguments:", "", *_table(schema, with_default=True)]
    out += _defs(schema, with_default=True, prefix="Argument type")
    output = tool.output_schema or {}
    out += ["", "Result fields:", "", *_table(output, with_default=False)]
    out += _defs(output, with_default=False, prefix="Result type")
    return out


def _render_resources(view: ServerView) -> list[str]:
    out = ["", "## Resources and prompts", ""]
    out += [
        "Resources are read with `resources/read` and change nothing.",
        "",
        "| URI | name | description |",
        "|---|---|---|",
    ]
    for r in view.resources:
        out.append(f"| `{r.uri}` | {r.name} | {_cell(r.description or '')} |")
    for t in view.templates:
        out.append(f"| `{t.uri_template}` | {t.name} | {_cell(t.description or '')} |")
    out += ["", "| prompt | arguments | description |", "|---|---|---|"]
    for p in view.prompts:
        args = ", ".join(f"`{a.name}`{'' if a.required else ' (optional)'}" for a in p.arguments or [])
        out.append(f"| `{p.name}` | {args} | {_cell(p.description or '')} |")
    return out


async def render_tools_md() -> str:
    """Collect from the live server and render: the text ``references/tools.md`` must hold."""
    return render(await collect())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if references/tools.md is out of date")
    args = parser.parse_args(argv)
    text = asyncio.run(render_tools_md())
    current = TOOLS_MD.read_text(encoding="utf-8") if TOOLS_MD.exists() else ""
    if args.check:
        if current != text:
            print(f"{TOOLS_MD.relative_to(ROOT)} is out of date: run python scripts/gen_tools_md.py", file=sys.stderr)
            return 1
        print(f"{TOOLS_MD.relative_to(ROOT)} is up to date")
        return 0
    if current != text:
        TOOLS_MD.parent.mkdir(parents=True, exist_ok=True)
        TOOLS_MD.write_text(text, encoding="utf-8")
        print(f"wrote {TOOLS_MD.relative_to(ROOT)}")
    else:
        print(f"{TOOLS_MD.relative_to(ROOT)} already up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
