"""Checking requests against PostQued's own OpenAPI document (``../shared/postqued/openapi-v2.json``).

``check_request`` matches a request to a documented operation and validates its path, query, headers and body;
``Report`` collects what a run sent. The ``document`` fixture (tests/conftest.py) loads the document or skips.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator, FormatChecker  # type: ignore[import-untyped]

from tests.clientkit import OPENAPI_V2

# Routes the client uses that the 2026-07-14 document predates (api-facts.md, section 6 item 4).
NOT_IN_DOCUMENT = {("GET", "/v2/mcp/context")}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --- the document as JSON Schema -------------------------------------------------------------------


def load_document() -> dict[str, Any]:
    """PostQued's OpenAPI document (the ``document`` fixture); the test skips when it is absent."""
    if not OPENAPI_V2.is_file():
        pytest.skip(f"{OPENAPI_V2} is absent (it is kept beside the repository, never inside it)")
    loaded: dict[str, Any] = json.loads(OPENAPI_V2.read_text(encoding="utf-8"))
    return loaded


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))  # ValueError: not a real moment
    return True


def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(_UUID.match(value))


def format_checker() -> FormatChecker:
    """``date-time`` (RFC 3339, offset required) and ``uuid``, without optional jsonschema extras."""
    checker = FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_date_time)
    checker.checks("uuid")(_uuid)
    return checker


def to_json_schema(node: Any, document: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (Draft 4 semantics): inline ``$ref``, translate ``nullable``."""
    if isinstance(node, list):
        return [to_json_schema(item, document, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/") and ref not in seen, ref
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        return to_json_schema(target, document, (*seen, ref))
    out = {key: to_json_schema(value, document, seen) for key, value in node.items() if key != "example"}
    if out.pop("nullable", False):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def validator(schema: Any, document: dict[str, Any]) -> Draft4Validator:
    converted = to_json_schema(schema, document)
    Draft4Validator.check_schema(converted)
    return Draft4Validator(converted, format_checker=format_checker())


def find_operation(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(template, operation, path params) of the most specific documented path that matches."""
    candidates: list[tuple[int, str, dict[str, str]]] = []
    for template, item in document["paths"].items():
        if method.lower() not in item:
            continue
        names = re.findall(r"\{(\w+)\}", template)
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        found = re.match(regex, path)
        if found is not None:
            candidates.append((len(names), template, found.groupdict()))
    assert candidates, f"{method} {path} is not in the OpenAPI document"
    _n, template, params = min(candidates)
    return template, document["paths"][template][method.lower()], params


def parameters(document: dict[str, Any], template: str, operation: dict[str, Any]) -> list[dict[str, Any]]:
    shared = document["paths"][template].get("parameters", [])
    return [to_json_schema(p, document) for p in [*shared, *operation.get("parameters", [])]]


def coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


# --- checking one request --------------------------------------------------------------------------

_STANDARD_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "authorization",  # the API-key scheme the document does not list (api-facts.md, section 6 item 1)
    "content-type",
    "content-length",
}


@dataclass
class Report:
    requests: int = 0
    bodies: int = 0
    operations: set[tuple[str, str]] = field(default_factory=set)
    undocumented: set[tuple[str, str]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def check_request(document: dict[str, Any], request: httpx.Request, body: bytes, report: Report) -> None:
    method, path = request.method, request.url.path
    if not path.startswith("/v2/"):
        return  # presigned storage, not the API
    report.requests += 1
    if (method, path) in NOT_IN_DOCUMENT:
        report.undocumented.add((method, path))
        assert not body and not request.url.query
        return
    template, operation, path_values = find_operation(document, method, path)
    report.operations.add((method, template))
    where = f"{method} {path}"
    declared = parameters(document, template, operation)

    for param in declared:
        if param["in"] == "path":
            errors = list(validator(param["schema"], document).iter_errors(path_values[param["name"]]))
            report.problems += [f"{where}: path {param['name']}: {e.message}" for e in errors]

    query_schemas = {p["name"]: p for p in declared if p["in"] == "query"}
    sent = dict(request.url.params.multi_items())
    if len(sent) != len(request.url.params.multi_items()):
        report.problems.append(f"{where}: a query parameter is repeated")
    for name, value in sent.items():
        if name not in query_schemas:
            report.problems.append(f"{where}: query parameter {name!r} is not declared")
            continue
        schema = query_schemas[name].get("schema", {})
        errors = list(validator(schema, document).iter_errors(coerce(value, schema)))
        report.problems += [f"{where}: query {name}={value!r}: {e.message}" for e in errors]
    for name, param in query_schemas.items():
        if param.get("required") and name not in sent:
            report.problems.append(f"{where}: required query parameter {name!r} missing")

    header_names = {p["name"].lower() for p in declared if p["in"] == "header"}
    for name in request.headers:
        if name.lower() not in _STANDARD_HEADERS and name.lower() not in header_names:
            report.problems.append(f"{where}: header {name!r} is not declared")

    request_body = operation.get("requestBody")
    if request_body is None:
        if body:
            report.problems.append(f"{where}: sends a body the operation does not take")
        return
    if not body:
        if request_body.get("required"):
            report.problems.append(f"{where}: the required body is missing")
        return
    media = request.headers.get("content-type", "").split(";")[0].strip()
    if media not in request_body["content"]:
        report.problems.append(f"{where}: content type {media!r} not in {list(request_body['content'])}")
        return
    schema = request_body["content"][media]["schema"]
    errors = list(validator(schema, document).iter_errors(json.loads(body)))
    report.problems += [f"{where}: body {list(e.absolute_path)}: {e.message}" for e in errors]
    report.bodies += 1
