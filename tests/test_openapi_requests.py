"""Every v2 request the client sends, checked against PostQued's own OpenAPI document.

The document lives beside the repository (``../shared/postqued/openapi-v2.json``) and is never copied
into it; without it these tests skip. A run of every v2 client method goes through a recording
transport; each request must match an operation of the document (method and path), send only the
query parameters and headers that operation declares (values valid against their schemas), and carry a
JSON body exactly when the operation has a request body, valid against that body's schema.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator, FormatChecker  # type: ignore[import-untyped]

from postqued.api.operations import endpoints
from postqued.errors import APIError
from postqued.models import (
    PublishRequest,
    PublishTarget,
    TikTokOptions,
)
from tests.clientkit import OPENAPI_V2, PNG, Env, client_env, tiktok_request, upload

# Routes the client uses that the 2026-07-14 document predates (api-facts.md, section 6 item 4).
NOT_IN_DOCUMENT = {("GET", "/v2/mcp/context")}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --- the document as JSON Schema -------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
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


# --- a run of every v2 method ----------------------------------------------------------------------


def every_platform_request(workspace_id: str) -> PublishRequest:
    """Nine targets (the other platforms), every option set, scheduled with a non-UTC offset."""
    options: dict[str, dict[str, Any]] = {
        "facebook": {"post_type": "video", "link": "https://example.com", "title": "T", "first_comment": {"text": "c"}},
        "threads": {"reply_control": "everyone", "first_comment": {"text": "c"}},
        "linkedin": {"post_type": "article", "article_url": "https://example.com", "article_title": "A"},
        "youtube": {
            "visibility": "unlisted",
            "title": "T",
            "description": "D",
            "category_id": "22",
            "tags": ["a", "b"],
            "made_for_kids": False,
            "contains_synthetic_media": True,
        },
        "twitter": {"reply_settings": "following"},
        "pinterest": {"board_id": "b1", "title": "T", "link": "https://example.com", "alt_text": "alt"},
        "reddit": {"subreddit": "test", "kind": "video", "title": "T", "nsfw": False, "spoiler": True},
        "mastodon": {"visibility": "unlisted", "sensitive": True, "spoiler_text": "cw", "language": "en"},
        "bluesky": {},
    }
    when = datetime(2027, 1, 2, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    targets = [
        PublishTarget.model_validate(
            {
                "platform": platform,
                "account_id": str(uuid.uuid4()),
                "intent": "publish",
                "caption": f"Every platform: {platform}",
                "dispatch_at": when,
                "options": raw,
            }
        )
        for platform, raw in options.items()
    ]
    return PublishRequest(content_ids=[str(uuid.uuid4())], targets=targets, workspace_id=workspace_id)


async def run_every_v2_method(env: Env) -> None:
    client, sb = env.client, env.sb
    await client.list_workspaces()
    await client.list_accounts()
    await client.list_accounts("tiktok")
    await client.get_creator_info(sb.tiktok_public_id)
    await client.start_upload("no-size.png", "image/png", None)
    video = await upload(client)
    image = await upload(client, PNG)
    await client.list_content()
    await client.list_content(page=1, per_page=60, search="video", media_type="video")
    await client.get_content(video.id)
    await client.update_content(image.id, alt="A small test image")
    await client.update_content(image.id, filename="renamed.png")

    both = PublishRequest(
        content_ids=[video.id],
        targets=[
            PublishTarget(
                platform="tiktok",
                account_id=sb.tiktok_private_id,
                intent="draft",
                caption="Draft to the inbox",
                options=TikTokOptions(
                    privacy_level="SELF_ONLY",
                    disable_comment=True,
                    disable_duet=True,
                    disable_stitch=True,
                    auto_add_music=False,
                    video_cover_timestamp_ms=500,
                    commercial_content=False,
                    authentic_content_confirmed=True,
                ),
            ),
            PublishTarget.model_validate(
                {
                    "platform": "instagram",
                    "account_id": sb.instagram_id,
                    "intent": "publish",
                    "caption": "Reel",
                    "options": {"post_type": "reel", "first_comment": {"text": "First!"}},
                }
            ),
        ],
    )
    await client.dry_run(both)
    with pytest.raises(APIError):  # the sandbox knows none of these accounts; the body is still checked
        await client.dry_run(every_platform_request(sb.workspace_id))

    now_request = await client.scoped_request(tiktok_request(sb.tiktok_public_id, [video.id]))
    first = await client.publish(now_request, str(uuid.uuid4()))
    later = env.clock.now() + timedelta(days=1)
    scheduled_request = await client.scoped_request(
        tiktok_request(sb.tiktok_public_id, [video.id], caption="Later", dispatch_at=later)
    )
    second = await client.publish(scheduled_request, str(uuid.uuid4()))
    await client.get_publish(first.id)
    await client.list_publish()
    await client.list_publish(start_date=env.clock.now() - timedelta(days=1), end_date=later + timedelta(days=1))
    target = second.targets[0].id
    assert target
    await client.reschedule_target(target, later + timedelta(hours=3))
    await client.reschedule_target(target, later.astimezone(timezone(timedelta(hours=-5))))
    await client.reschedule_target(target, None)
    await client.cancel_target(target)
    third = await client.publish(
        await client.scoped_request(tiktok_request(sb.tiktok_public_id, [video.id], caption="3", dispatch_at=later)),
        str(uuid.uuid4()),
    )
    await client.cancel_publish(third.id)
    await client.delete_publish(second.id)
    await client.delete_content(image.id)


PUBLISHING_ROUTES = {
    "context", "integrations", "creator_info", "content_upload", "content_complete", "content_list", "content_get",
    "content_update", "content_delete", "publish", "publish_list", "publish_get", "publish_cancel", "target_cancel",
    "target_reschedule", "publish_delete",
}  # fmt: skip


async def test_every_v2_request_matches_the_document(document: dict[str, Any], tmp_path: Path) -> None:
    async with client_env(tmp_path, wrap=True) as env:
        await run_every_v2_method(env)
        assert env.hook is not None
        captured = list(zip(env.hook.requests, env.hook.bodies, strict=True))
        used_routes = {e.route for e in env.sb.ledger}
        api_requests = sum(1 for e in env.sb.ledger if e.path.startswith("/v2/"))

    # every route of the publishing surface was exercised (the other toolsets' routes: tests/test_parity*.py)
    exercised = set(endpoints("v2")) >= PUBLISHING_ROUTES and used_routes >= PUBLISHING_ROUTES
    assert exercised, PUBLISHING_ROUTES - used_routes
    report = Report()
    for request, body in captured:
        check_request(document, request, body, report)
    assert report.problems == []
    assert report.undocumented == NOT_IN_DOCUMENT
    assert len(report.operations) == len(PUBLISHING_ROUTES) - len(NOT_IN_DOCUMENT)
    # upload x3, complete x2, update x2, dry run x2, publish x3, reschedule x3
    assert report.bodies >= 15, report.bodies
    assert report.requests == api_requests >= 25  # every API request the sandbox saw was checked


def test_the_checker_is_not_vacuous(document: dict[str, Any]) -> None:
    """The conversion and the checks catch what they should (and only thanks to ``nullable`` allow null)."""
    publish = document["paths"]["/v2/publish"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    check = validator(publish, document)
    target: dict[str, Any] = {
        "platform": "tiktok",
        "accountId": str(uuid.uuid4()),
        "intent": "draft",
        "caption": "ok",
        "dispatchAt": None,
        "options": {},
    }
    assert check.is_valid({"contentIds": [], "targets": [target]})
    assert not check.is_valid({"contentIds": [], "targets": [{**target, "dispatchAt": "2026-12-01 09:00"}]})
    missing = {k: v for k, v in target.items() if k != "dispatchAt"}
    assert not check.is_valid({"contentIds": [], "targets": [missing]})
    assert not check.is_valid({"contentIds": ["not-a-uuid"], "targets": [target]})
    assert not check.is_valid({"contentIds": [], "targets": [{**target, "platform": "myspace"}]})
    assert not check.is_valid({"contentIds": [], "targets": [target] * 11})
    raw = copy.deepcopy(document["components"]["schemas"]["PublishTarget"])
    raw["properties"]["dispatchAt"].pop("nullable")
    assert not Draft4Validator(to_json_schema(raw, document)).is_valid(target)

    report = Report()
    workspace = str(uuid.uuid4())
    bad = [
        httpx.Request("GET", "http://x/v2/content", params={"workspaceId": workspace, "platform": "tiktok"}),
        httpx.Request("GET", "http://x/v2/content", params={"perPage": "61"}),
        httpx.Request("GET", "http://x/v2/publish", params={"startDate": "yesterday"}),
        httpx.Request("POST", "http://x/v2/publish/not-a-uuid/cancel"),
        httpx.Request("POST", "http://x/v2/content/upload", json={"filename": "a.mp4"}),
        httpx.Request(
            "POST", "http://x/v2/publish", json={"contentIds": [], "targets": [target]}, headers={"X-Y": "1"}
        ),
        httpx.Request("DELETE", "http://x/v2/content/" + workspace, content=b"{}"),
    ]
    for request in bad:
        check_request(document, request, request.read(), report)
    assert len(report.problems) == len(bad), report.problems


def test_datetimes_the_client_writes_are_rfc3339() -> None:
    checker = format_checker()
    for moment in (
        datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ):
        wire = tiktok_request(str(uuid.uuid4()), [], dispatch_at=moment).wire()["targets"][0]["dispatchAt"]
        assert checker.conforms(wire, "date-time"), wire
        assert datetime.fromisoformat(wire) == moment
    assert not checker.conforms("2026-12-01T09:00:00", "date-time")  # naive: no offset
