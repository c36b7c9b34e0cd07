"""Every v2 request the client sends, checked against PostQued's own OpenAPI document.

The document lives beside the repository (``../shared/postqued/openapi-v2.json``) and is never copied
into it; without it these tests skip. A run of every v2 client method goes through a recording
transport; each request must match an operation of the document (method and path), send only the
query parameters and headers that operation declares (values valid against their schemas), and carry a
JSON body exactly when the operation has a request body, valid against that body's schema.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator  # type: ignore[import-untyped]

from postqued.api.operations import endpoints
from postqued.errors import APIError
from postqued.models import (
    PublishRequest,
    PublishTarget,
    TikTokOptions,
)
from tests.clientkit import PNG, Env, client_env, tiktok_request, upload
from tests.openapikit import NOT_IN_DOCUMENT, Report, check_request, format_checker, to_json_schema, validator

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
