"""The JSON Schemas a host sees: portable, compact, and checked.

Hosts and model APIs differ in how much JSON Schema they understand. Several reject or mangle ``type``
arrays and ``anyOf`` with ``null`` in a tool's input, cannot follow ``$ref``, or treat an empty schema as
an error. So every tool's *input* schema is written in the subset all of them read: ``$ref`` inlined, no
``null`` anywhere (an optional argument is simply not required; a client that sends ``null`` anyway gets
the default, see ``NullMeansOmitted``), titles dropped. *Output* schemas stay exact (a nullable field
is ``anyOf: [X, {"type": "null"}]``, local ``$ref`` kept) but never use ``type`` arrays or untyped
schemas. ``portability_problems`` checks both rules; the tests run it over every toolset, and MCP
Inspector's ``--strict`` lint where Node 22 is installed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.mcpserver import MCPServer

_NAME_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})  # keys are names, not keywords
_DATA = frozenset({"default", "const", "enum", "examples", "required"})  # values are data, not schemas
_NULL: dict[str, Any] = {"type": "null"}
_BOOLEAN_OK = frozenset({"additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems"})
# keywords that constrain a value (MCP Inspector's list): a schema with none of them accepts anything
_CONSTRAINING = frozenset(
    {
        *("type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
        *("maxLength", "minLength", "pattern", "format", "contentMediaType", "contentEncoding", "contentSchema"),
        *("maxItems", "minItems", "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties"),
        *("required", "dependentRequired", "allOf", "anyOf", "oneOf", "not", "items", "prefixItems", "contains"),
        *("additionalItems", "unevaluatedItems", "properties", "patternProperties", "additionalProperties"),
        *("unevaluatedProperties", "propertyNames", "dependentSchemas", "dependencies", "$ref"),
    }
)


class SchemaError(ValueError):
    """A tool's signature cannot be advertised portably (a bug in the tool, raised at registration)."""


def _map(node: Any, fn: Any) -> Any:
    """Apply ``fn`` to every subschema of ``node`` (not to data such as ``enum`` or ``default``)."""
    if isinstance(node, list):
        return [fn(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _NAME_MAPS and isinstance(value, dict):
            out[key] = {name: fn(sub) for name, sub in value.items()}
        elif key in _DATA:
            out[key] = value
        else:
            out[key] = fn(value)
    return out


def compact_schema(node: Any) -> Any:
    """The same JSON Schema in fewer bytes: ``title`` annotations and ``"default": null`` go, every constraint stays."""
    if isinstance(node, dict):
        node = {
            k: v for k, v in node.items() if not ((k == "title" and isinstance(v, str)) or (k, v) == ("default", None))
        }
    return _map(node, compact_schema)


def _inline(node: Any, defs: Mapping[str, Any], stack: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        name = ref.removeprefix("#/$defs/")
        if name == ref or name not in defs:
            raise SchemaError(f"cannot inline $ref {ref!r}")
        if name in stack:
            raise SchemaError(f"recursive model {name!r} cannot be inlined")
        target = _inline(defs[name], defs, (*stack, name))
        return {**target, **_inline({k: v for k, v in node.items() if k != "$ref"}, defs, stack)}
    if isinstance(node, dict):
        node = {k: v for k, v in node.items() if k not in ("$defs", "definitions")}
    return _map(node, lambda sub: _inline(sub, defs, stack))


def _non_null(node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``node`` without its ``null`` alternative, and whether it had one."""
    branches = node.get("anyOf")
    if isinstance(branches, list) and _NULL in branches:
        rest = [b for b in branches if b != _NULL]
        siblings = {k: v for k, v in node.items() if k != "anyOf"}
        return ({**rest[0], **siblings} if len(rest) == 1 else {**siblings, "anyOf": rest}), True
    kind = node.get("type")
    if isinstance(kind, list) and "null" in kind:
        kinds = [k for k in kind if k != "null"]
        out = {**node, "type": kinds[0] if len(kinds) == 1 else kinds}
        if isinstance(out.get("enum"), list):
            out["enum"] = [v for v in out["enum"] if v is not None]
        return out, True
    return node, False


def _without_null(node: Any) -> Any:
    """Every property made non-null; a property that is nullable *and* required cannot be, so it is an error."""
    node = _map(node, _without_null)
    if isinstance(node, dict) and isinstance(node.get("properties"), dict):
        required = set(node.get("required", ()))
        properties: dict[str, Any] = {}
        for name, sub in node["properties"].items():
            plain, was_nullable = _non_null(sub) if isinstance(sub, dict) else (sub, False)
            if was_nullable and name in required:
                raise SchemaError(f"argument {name!r} is required but may be null: give it a default instead")
            if plain.get("default", 0) is None:
                plain = {k: v for k, v in plain.items() if k != "default"}
            properties[name] = plain
        node = {**node, "properties": properties}
    return node


def input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's argument schema in the subset every host reads (see the module docstring)."""
    out: dict[str, Any] = compact_schema(_without_null(_inline(schema, schema.get("$defs", {}))))
    return out


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's result schema, exact and compact (pydantic already writes nullable fields as ``anyOf``)."""
    out: dict[str, Any] = compact_schema(schema)
    return out


# --- the check -----------------------------------------------------------------------------------


def _walk(node: Any, path: str, parent_key: str | None, kind: str, found: list[str]) -> None:
    if isinstance(node, bool):
        if parent_key not in _BOOLEAN_OK:
            found.append(f"{path}: a bare {str(node).lower()} where a schema is expected")
        return
    if not isinstance(node, dict):
        return
    kind_value = node.get("type")
    if isinstance(kind_value, list):
        found.append(f"{path}: type is an array {kind_value}")
    if not (set(node) & _CONSTRAINING) and parent_key != "not":
        found.append(f"{path}: an empty schema accepts any value")
    ref = node.get("$ref")
    if kind == "input":
        if ref is not None or "$defs" in node or "definitions" in node:
            found.append(f"{path}: $ref/$defs (inline it)")
        if kind_value == "null" or None in node.get("enum", ()) or ("const" in node and node["const"] is None):
            found.append(f"{path}: null (an optional argument is simply not required)")
    elif isinstance(ref, str) and not ref.startswith("#/$defs/"):
        found.append(f"{path}: $ref {ref!r} points outside the schema")
    for key, value in node.items():
        if key in _NAME_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, f"{path}.{key}.{name}", key, kind, found)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            for i, sub in enumerate(value):
                _walk(sub, f"{path}.{key}[{i}]", key, kind, found)
        elif key not in _DATA and isinstance(value, dict | bool) and key not in ("description", "format"):
            _walk(value, f"{path}.{key}", key, kind, found)


def portability_problems(tool: Mapping[str, Any]) -> list[str]:
    """What a strict host would reject or misread in one ``tools/list`` entry (its JSON form); [] when portable."""
    found: list[str] = []
    _walk(tool.get("inputSchema"), f"{tool.get('name')}.inputSchema", None, "input", found)
    if tool.get("outputSchema") is not None:
        _walk(tool["outputSchema"], f"{tool.get('name')}.outputSchema", None, "output", found)
    return found


# --- the server side -----------------------------------------------------------------------------


def advertise(server: MCPServer[Any], name: str) -> None:
    """Rewrite a registered tool's advertised schemas (its arguments are still validated by its pydantic model)."""
    tool = server._tool_manager.get_tool(name)
    if tool is None:
        return
    try:
        tool.parameters = input_schema(tool.parameters)
    except SchemaError as exc:
        raise SchemaError(f"tool {name}: {exc}") from None
    if tool.description:  # docstring indentation is bytes the model pays for and never reads
        tool.description = " ".join(tool.description.split())
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = output_schema(tool.fn_metadata.output_schema)


class NullMeansOmitted:
    """Server middleware: a ``tools/call`` argument sent as ``null`` counts as omitted when it is optional.

    The advertised schemas have no ``null`` (see above), yet some clients send ``null`` for every argument
    they leave out; they get the argument's default, exactly as if they had omitted it. A required argument
    sent as ``null`` still fails validation, naming the argument.
    """

    def __init__(self, server: MCPServer[Any]) -> None:
        self.server = server

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params
        if ctx.method == "tools/call" and params and isinstance(params.get("arguments"), dict):
            name = params.get("name")
            tool = self.server._tool_manager.get_tool(name) if isinstance(name, str) else None
            if tool is not None:
                required = set(tool.parameters.get("required", ()))
                sent: dict[str, Any] = params["arguments"]
                arguments = {k: v for k, v in sent.items() if v is not None or k in required}
                if arguments != sent:
                    ctx = dataclasses.replace(ctx, params={**params, "arguments": arguments})
        return await call_next(ctx)
