"""Every ``PostQuedClient`` method against the sandbox, in-process and over loopback, for v2 and v1.

Each test gets a fresh sandbox on a ``ManualClock`` shared with the client; the sandbox's ledger is the
witness of what went over the wire (routes, query, bodies, headers).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from postqued.api.operations import endpoints, supports
from postqued.client import PostQuedClient
from postqued.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    IdempotencyConflictError,
    LocalError,
    MissingIdempotencyKeyError,
    NotFoundError,
    PermissionDeniedError,
    PostQuedError,
    SubscriptionRequiredError,
)
from postqued.models import PublishRequest, PublishStatus, PublishTarget, parse_upload_session, v1_object_key
from postqued.sandbox import SANDBOX_API_KEY
from tests.clientkit import (
    MODES,
    PNG,
    VIDEO,
    Env,
    client_env,
    json_body,
    make_settings,
    secrets_free,
    tiktok_request,
    upload,
)


@pytest.fixture(params=MODES)
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with client_env(tmp_path, mode=request.param) as e:
        yield e


@pytest.fixture(params=MODES)
async def env_v1(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with client_env(tmp_path, mode=request.param, api_version="v1") as e:
        yield e


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Env]:
    async with client_env(tmp_path) as e:
        yield e


async def published(env: Env, **kw: Any) -> tuple[PublishStatus, str]:
    """One uploaded video published live to the public TikTok account: (answer, idempotency key)."""
    asset = await upload(env.client)
    key = str(uuid.uuid4())
    request = await env.client.scoped_request(tiktok_request(env.sb.tiktok_public_id, [asset.id], **kw))
    return await env.client.publish(request, key), key


# --- workspaces ------------------------------------------------------------------------------------


async def test_list_workspaces_reads_the_context_once(env: Env) -> None:
    workspaces = await env.client.list_workspaces()
    assert [(w.id, w.name, w.organization_id) for w in workspaces] == [
        (env.sb.workspace_id, "Sandbox Workspace", env.sb.organization_id)
    ]
    assert workspaces[0].organization_name == "Sandbox Organization" and workspaces[0].role == "admin"
    assert await env.client.list_workspaces() == workspaces  # cached
    assert env.count("context") == 1
    await env.client.list_workspaces(refresh=True)
    entries = env.sb.requests("context")
    assert len(entries) == 2 and all(e.has_auth and e.status == 200 for e in entries)


async def test_resolve_workspace_single_explicit_and_from_settings(env: Env, tmp_path: Path) -> None:
    assert await env.client.resolve_workspace() == env.sb.workspace_id
    assert await env.client.resolve_workspace("chosen-by-caller") == "chosen-by-caller"
    assert env.count("context") == 1  # the explicit id needed no request, the single one is cached
    settings = make_settings(tmp_path, env.base_url, workspace_id=env.sb.workspace_id)
    async with PostQuedClient(settings, transport=env.client._transport, clock=env.clock) as pinned:
        assert await pinned.resolve_workspace() == env.sb.workspace_id
        accounts = await pinned.list_accounts()
    assert len(accounts) == 3
    assert env.count("context") == 1  # POSTQUED_WORKSPACE_ID wins without asking the API


async def test_resolve_workspace_ambiguous_asks(tmp_path: Path) -> None:
    async with client_env(tmp_path, sandbox={"extra_workspace": True}) as env:
        extra = env.sb.extra_workspace_id
        assert extra is not None
        with pytest.raises(LocalError) as caught:
            await env.client.resolve_workspace()
        assert caught.value.code == "WORKSPACE_AMBIGUOUS"
        assert env.sb.workspace_id in str(caught.value) and extra in str(caught.value)
        assert "workspace_id" in caught.value.next_step
        # every scoped call refuses before sending anything but the context read
        with pytest.raises(LocalError, match="WORKSPACE_AMBIGUOUS"):
            await env.client.list_accounts()
        assert [e.route for e in env.sb.ledger] == ["context"]
        client_accounts = await env.client.list_accounts(workspace_id=extra)
        assert [a.username for a in client_accounts] == ["@sandbox_client"]
        assert env.sb.requests("integrations")[-1].query["workspaceId"] == extra
        assert await env.client.resolve_workspace(extra) == extra


# --- accounts --------------------------------------------------------------------------------------


async def test_list_accounts_and_platform_filter(env: Env) -> None:
    accounts = await env.client.list_accounts()
    by_name = {a.username: a for a in accounts}
    assert set(by_name) == {"@sandbox_creator", "@sandbox_private", "@sandbox_insta"}
    creator = by_name["@sandbox_creator"]
    assert creator.id == env.sb.tiktok_public_id and creator.platform == "tiktok"
    assert creator.external_account_id == "sandbox-tt-1001" and creator.created_at is not None
    assert {a.username for a in await env.client.list_accounts("tiktok")} == {"@sandbox_creator", "@sandbox_private"}
    assert [a.id for a in await env.client.list_accounts("instagram")] == [env.sb.instagram_id]
    assert await env.client.list_accounts("youtube") == []
    queries = [e.query for e in env.sb.requests("integrations")]
    # v2 documents no platform parameter: the filter is applied locally, the scope always sent
    assert queries == [{"workspaceId": env.sb.workspace_id}] * 4


async def test_get_creator_info(env: Env) -> None:
    public = await env.client.get_creator_info(env.sb.tiktok_public_id)
    assert public.creator_username == "sandbox_creator" and public.creator_nickname == "Sandbox Creator"
    assert public.privacy_level_options == ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    assert public.max_video_post_duration_sec == 600 and not public.duet_disabled
    private = await env.client.get_creator_info(env.sb.tiktok_private_id)
    assert "PUBLIC_TO_EVERYONE" not in private.privacy_level_options
    assert private.duet_disabled and private.stitch_disabled and not private.comment_disabled
    assert private.max_video_post_duration_sec == 180
    entry = env.sb.requests("creator_info")[0]
    assert entry.path == f"/v2/integrations/{env.sb.tiktok_public_id}/creator-info"
    assert entry.query == {"workspaceId": env.sb.workspace_id}
    with pytest.raises(BadRequestError) as caught:
        await env.client.get_creator_info(env.sb.instagram_id)
    assert (caught.value.code, caught.value.status) == ("UNSUPPORTED_PLATFORM", 400)
    with pytest.raises(NotFoundError):
        await env.client.get_creator_info(str(uuid.uuid4()))


# --- content ---------------------------------------------------------------------------------------


async def test_upload_start_put_complete(env: Env) -> None:
    path, mime, _w, _h, _d = VIDEO
    data = path.read_bytes()
    session = await env.client.start_upload(path.name, mime, len(data))
    assert session.url.startswith(f"{env.base_url}/_storage/") and session.method == "PUT"
    assert session.headers == {"Content-Type": mime} and session.key.endswith(f"{session.content_id}.mp4")
    assert "signature" not in repr(session)  # the presigned URL is a credential
    start = env.sb.requests("content_upload")[0]
    assert json_body(start) == {
        "filename": "video.mp4",
        "contentType": "video/mp4",
        "fileSize": len(data),
        "workspaceId": env.sb.workspace_id,
    }
    put = await env.client.storage.put(session.url, content=data, headers=session.headers)
    assert put.status_code == 200
    [stored] = env.sb.requests("storage_put")
    assert not stored.has_auth and stored.status == 200 and stored.body_size == len(data)
    assert env.sb.storage_size(session.key) == len(data)

    asset = await upload(env.client)
    assert asset.status == "ready" and asset.media_type == "video" and asset.mime_type == mime
    assert asset.size == len(data) and asset.duration_ms == 2000 and asset.filename == "video.mp4"
    complete = json_body(env.sb.requests("content_complete")[0])
    assert complete["workspaceId"] == env.sb.workspace_id and complete["durationMs"] == 2000

    image = await upload(env.client, PNG)
    assert (image.media_type, image.width, image.height, image.duration_ms) == ("image", 50, 30, None)
    assert all(not e.has_auth for e in env.sb.requests("storage_put"))
    assert all(e.has_auth for e in env.api_entries())


async def test_content_library_list_get_update_delete(env: Env) -> None:
    video = await upload(env.client)
    image = await upload(env.client, PNG)
    page = await env.client.list_content()
    assert {a.id for a in page.content} == {video.id, image.id}
    assert (page.pagination.page, page.pagination.per_page, page.pagination.total) == (1, 24, 2)
    images = await env.client.list_content(media_type="image", per_page=1, page=1, search="IMAGE")
    assert [a.id for a in images.content] == [image.id] and images.pagination.pages == 1
    assert env.sb.requests("content_list")[-1].query == {
        "page": "1",
        "perPage": "1",
        "search": "IMAGE",
        "mediaType": "image",
        "workspaceId": env.sb.workspace_id,
    }
    assert (await env.client.list_content(page=2, per_page=1)).content != []

    got = await env.client.get_content(video.id)
    assert got.id == video.id and got.size == video.size and got.url and got.url.endswith(f"/{video.id}/file")
    updated = await env.client.update_content(video.id, alt="A cat on a piano", filename="cat.mp4")
    assert (updated.alt, updated.filename) == ("A cat on a piano", "cat.mp4")
    assert json_body(env.sb.requests("content_update")[0]) == {
        "filename": "cat.mp4",
        "alt": "A cat on a piano",
        "workspaceId": env.sb.workspace_id,
    }
    assert (await env.client.get_content(video.id)).alt == "A cat on a piano"

    assert await env.client.delete_content(video.id) is True
    delete = env.sb.requests("content_delete")[0]
    assert delete.method == "DELETE" and delete.query == {"workspaceId": env.sb.workspace_id}
    with pytest.raises(NotFoundError) as caught:
        await env.client.get_content(video.id)
    assert caught.value.status == 404 and caught.value.code == "NOT_FOUND"
    assert [a.id for a in (await env.client.list_content()).content] == [image.id]


async def test_ids_that_could_change_the_path_are_refused_locally(local: Env) -> None:
    for bad in ("../v2/mcp/context", "a/b", "x?workspaceId=1", "", "%2e%2e", "a" * 101):
        with pytest.raises(LocalError) as caught:
            await local.client.get_content(bad, workspace_id=local.sb.workspace_id)
        assert caught.value.code == "INVALID_ID"
    assert local.sb.ledger == []


# --- publishing ------------------------------------------------------------------------------------


async def test_dry_run_validates_without_creating(env: Env) -> None:
    asset = await upload(env.client)
    request = tiktok_request(env.sb.tiktok_public_id, [asset.id])
    answer = await env.client.dry_run(request)
    assert answer["dryRun"] is True and answer["valid"] is True
    assert [t["accountId"] for t in answer["targets"]] == [env.sb.tiktok_public_id]
    [entry] = env.sb.requests("publish")
    assert entry.idempotency_key is None and entry.status == 200
    body = json_body(entry)
    assert body["dryRun"] is True and body["workspaceId"] == env.sb.workspace_id
    assert body["targets"][0]["dispatchAt"] is None  # always sent, null for now
    assert body["targets"][0]["options"] == {"privacyLevel": "PUBLIC_TO_EVERYONE"}
    assert env.sb.publish_requests == {}

    bad = tiktok_request(env.sb.tiktok_public_id, [asset.id], privacy="FOLLOWER_OF_CREATOR")
    with pytest.raises(BadRequestError) as caught:
        await env.client.dry_run(bad)
    assert (caught.value.code, caught.value.status) == ("PRIVACY_LEVEL_OPTION_MISMATCH", 400)
    assert "FOLLOWER_OF_CREATOR" in caught.value.message
    assert env.count("publish") == 2 and env.sb.publish_requests == {}


async def test_publish_get_list_lifecycle(env: Env) -> None:
    status, key = await published(env)
    assert list(env.sb.publish_requests) == [status.id]
    assert status.status == "pending" and not status.terminal
    assert [(t.account_id, t.status, t.intent) for t in status.targets] == [
        (env.sb.tiktok_public_id, "queued", "publish")
    ]
    [entry] = env.sb.requests("publish")
    assert entry.idempotency_key == key and "dryRun" not in json_body(entry)

    again = await env.client.get_publish(status.id)
    assert again.id == status.id and again.targets[0].id == status.targets[0].id
    env.clock.advance(10)
    done = await env.client.get_publish(status.id)
    assert done.status == "completed" and done.terminal
    assert done.targets[0].status == "published" and done.targets[0].provider_post_id
    assert env.sb.requests("publish_get")[-1].query == {"workspaceId": env.sb.workspace_id}

    listed = await env.client.list_publish()
    assert [p.id for p in listed] == [status.id] and listed[0].status == "completed"
    now = env.clock.now()
    in_range = await env.client.list_publish(start_date=now - timedelta(hours=1), end_date=now)
    assert [p.id for p in in_range] == [status.id]
    assert env.sb.requests("publish_list")[-1].query == {
        "startDate": (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "endDate": now.isoformat().replace("+00:00", "Z"),
        "workspaceId": env.sb.workspace_id,
    }
    later = await env.client.list_publish(start_date=now + timedelta(days=1), end_date=now + timedelta(days=2))
    assert later == []


async def test_list_publish_one_date_is_refused_locally(local: Env) -> None:
    now = local.clock.now()
    with pytest.raises(LocalError) as only_start:
        await local.client.list_publish(start_date=now)
    with pytest.raises(LocalError) as only_end:
        await local.client.list_publish(end_date=now)
    for caught in (only_start, only_end):
        assert caught.value.code == "INVALID_DATE_RANGE" and caught.value.status is None
    assert local.sb.ledger == []


async def test_cancel_reschedule_and_delete(env: Env) -> None:
    asset = await upload(env.client)
    when = env.clock.now() + timedelta(hours=2)
    first, _key = await published(env, dispatch_at=when)
    target = first.targets[0]
    assert target.status == "scheduled" and target.id
    assert json_body(env.sb.requests("publish")[0])["targets"][0]["dispatchAt"] == when.isoformat().replace(
        "+00:00", "Z"
    )

    later = when + timedelta(hours=1)
    moved = await env.client.reschedule_target(target.id, later)
    assert moved["success"] is True and moved["target"]["status"] == "scheduled"
    assert json_body(env.sb.requests("target_reschedule")[0]) == {
        "dispatchAt": later.isoformat().replace("+00:00", "Z"),
        "workspaceId": env.sb.workspace_id,
    }
    with pytest.raises(LocalError, match="INVALID_DISPATCH_AT"):
        await env.client.reschedule_target(target.id, later.replace(tzinfo=None))
    assert env.count("target_reschedule") == 1  # the naive time never left
    with pytest.raises(BadRequestError) as past:
        await env.client.reschedule_target(target.id, env.clock.now() - timedelta(minutes=1))
    assert past.value.code == "INVALID_DISPATCH_AT"

    canceled = await env.client.cancel_target(target.id)
    assert canceled["target"]["status"] == "canceled"
    cancel_entry = env.sb.requests("target_cancel")[0]
    assert cancel_entry.query == {"workspaceId": env.sb.workspace_id} and cancel_entry.body == b""
    with pytest.raises(ConflictError) as conflict:
        await env.client.cancel_target(target.id)
    assert (conflict.value.status, conflict.value.code) == (409, "INVALID_STATE")
    assert env.count("target_cancel") == 2  # a 409 is never retried

    request = await env.client.scoped_request(
        tiktok_request(env.sb.tiktok_private_id, [asset.id], privacy="SELF_ONLY", dispatch_at=when)
    )
    second = await env.client.publish(request, str(uuid.uuid4()))
    now_target = second.targets[0].id
    assert now_target
    assert (await env.client.reschedule_target(now_target, None))["target"]["dispatchAt"] is None
    assert json_body(env.sb.requests("target_reschedule")[-1])["dispatchAt"] is None
    whole = await env.client.cancel_publish(second.id)
    assert whole["canceledTargetIds"] == [now_target] and whole["publish"]["status"] == "canceled"
    assert env.sb.requests("publish_cancel")[-1].query == {"workspaceId": env.sb.workspace_id}

    deleted = await env.client.delete_publish(first.id)
    assert deleted == {"success": True}
    with pytest.raises(NotFoundError):
        await env.client.get_publish(first.id)
    assert [p.id for p in await env.client.list_publish()] == [second.id]


# --- v1 --------------------------------------------------------------------------------------------


async def test_v1_every_method(env_v1: Env) -> None:
    sb, client = env_v1.sb, env_v1.client
    workspaces = await client.list_workspaces()
    assert len(workspaces) == 1 and workspaces[0].id == "default"
    assert await client.resolve_workspace() is None
    assert sb.ledger == []  # v1 has one implicit workspace: nothing to ask

    accounts = await client.list_accounts("tiktok")
    assert {a.username for a in accounts} == {"@sandbox_creator", "@sandbox_private"}
    assert {a.platform for a in accounts} == {"tiktok"} and accounts.unverified is None
    [instagram] = await client.list_accounts("instagram")
    assert instagram.platform == "instagram"
    assert len(await client.list_accounts()) == 2  # v1 is always asked with the documented ?platform=
    assert [e.query for e in sb.requests("v1_platform_accounts")] == [
        {"platform": p} for p in ("tiktok", "instagram", "tiktok")
    ]

    video = await upload(client)
    assert video.status == "ready" and video.duration_ms == 2000
    assert "workspaceId" not in json_body(sb.requests("v1_content_upload")[0])
    assert "workspaceId" not in json_body(sb.requests("v1_content_complete")[0])
    [put] = sb.requests("storage_put")
    assert not put.has_auth and put.status == 200

    path, mime, *_ = PNG
    image = await client.upload_image_v1(path.name, mime, path.read_bytes())
    assert image.id in sb.contents and image.status == "ready" and (image.width, image.height) == (50, 30)
    [multipart] = sb.requests("v1_upload_image")
    assert multipart.has_auth and multipart.idempotency_key is None

    request = await client.scoped_request(tiktok_request(sb.tiktok_public_id, [video.id], workspace_id="ignored"))
    assert request.workspace_id is None
    key = str(uuid.uuid4())
    status = await client.publish(request, key)
    assert status.id in sb.publish_requests and status.status == "pending"
    [entry] = sb.requests("v1_publish")
    assert entry.idempotency_key == key and entry.path == "/v1/content/publish"
    assert json_body(entry) == request.wire()  # no dryRun, no workspaceId
    env_v1.clock.advance(10)
    got = await client.get_publish(status.id)
    assert got.id == status.id and got.status == "completed" and got.terminal
    assert sb.requests("v1_publish_get")[0].path == f"/v1/content/publish/{status.id}"
    assert {e.route for e in sb.ledger} <= {
        "v1_platform_accounts",
        "v1_content_upload",
        "v1_content_complete",
        "v1_upload_image",
        "v1_publish",
        "v1_publish_get",
        "storage_put",
    }


async def test_v1_answers_exactly_as_documented(env_v1: Env) -> None:
    """The sandbox answers v1 as the original skill shows it, and the client needs nothing more."""
    sb, client = env_v1.sb, env_v1.client
    listed = (await client.api.get("/v1/platform-accounts", params={"platform": "tiktok"})).json()
    assert listed["accounts"] and all(set(a) == {"id", "username"} for a in listed["accounts"])
    body = {"filename": "clip.mp4", "contentType": "video/mp4", "fileSize": 10}
    answer = (await client.api.post("/v1/content/upload", json=body)).json()
    assert set(answer) == {"contentId", "upload"} and set(answer["upload"]) == {"url", "method", "headers"}
    session = await client.start_upload("clip.mp4", "video/mp4", 10)
    # the key is read from the URL in its documented form content/<user-id>/<content-id>.<ext>
    assert session.key == sb.contents[session.content_id].key and session.key.startswith("content/")
    assert session.key.endswith(f"/{session.content_id}.mp4")


def test_the_v1_object_key_is_read_only_in_its_documented_form() -> None:
    cid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    url = f"https://storage.postqued.com/bucket/content/user-7/{cid}.mp4?X-Amz-Signature=abc"
    assert v1_object_key(url, cid) == f"content/user-7/{cid}.mp4"
    assert v1_object_key(f"https://s.example/uploads/{cid}.mp4", cid) is None
    assert v1_object_key("https://s.example/content/user-7/other.mp4", cid) is None
    with pytest.raises(ValueError, match=r"no upload\.key"):
        parse_upload_session({"contentId": cid, "upload": {"url": f"https://s.example/x/{cid}.mp4"}})


def _tiktok(account_id: str, **options: Any) -> PublishRequest:
    target = PublishTarget(platform="tiktok", account_id=account_id, intent="draft", caption="Hi", options=options)
    return PublishRequest(content_ids=[], targets=[target])


async def test_v1_is_sent_no_tiktok_option_its_docs_do_not_list(env_v1: Env) -> None:
    account = env_v1.sb.tiktok_public_id
    with pytest.raises(LocalError) as caught:
        await env_v1.client.scoped_request(_tiktok(account, privacy_level="SELF_ONLY", photo_cover_index=1))
    assert caught.value.code == "INVALID_OPTIONS" and "'photoCoverIndex'" in caught.value.message
    assert env_v1.sb.ledger == []
    documented = _tiktok(account, privacy_level="SELF_ONLY", auto_add_music=True, video_cover_timestamp_ms=5)
    assert (await env_v1.client.scoped_request(documented)).workspace_id is None


async def test_v1_refuses_v2_only_operations_without_sending(tmp_path: Path) -> None:
    async with client_env(tmp_path, api_version="v1") as env:
        client, cid = env.client, str(uuid.uuid4())
        now = env.clock.now()
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "get_creator_info": lambda: client.get_creator_info(cid),
            "list_content": lambda: client.list_content(),
            "get_content": lambda: client.get_content(cid),
            "update_content": lambda: client.update_content(cid, alt="x"),
            "delete_content": lambda: client.delete_content(cid),
            "dry_run": lambda: client.dry_run(tiktok_request(cid, [cid])),
            "list_publish": lambda: client.list_publish(start_date=now, end_date=now),
            "cancel_publish": lambda: client.cancel_publish(cid),
            "cancel_target": lambda: client.cancel_target(cid),
            "reschedule_target": lambda: client.reschedule_target(cid, None),
            "delete_publish": lambda: client.delete_publish(cid),
        }
        for name, call in calls.items():
            with pytest.raises(LocalError) as caught:
                await call()
            assert caught.value.code == "UNSUPPORTED_IN_API_VERSION", name
            assert "v2" in caught.value.next_step
        assert env.sb.ledger == []
    assert not supports("v1", "content_list") and supports("v1", "upload_image") and not supports("v2", "upload_image")


async def test_v2_refuses_the_v1_image_upload(local: Env) -> None:
    path, mime, *_ = PNG
    with pytest.raises(LocalError) as caught:
        await local.client.upload_image_v1(path.name, mime, path.read_bytes())
    assert caught.value.code == "UNSUPPORTED_IN_API_VERSION"
    assert local.sb.ledger == []


def test_route_tables_match_the_sandbox() -> None:
    """Every route the client knows is served by the sandbox under the same name (v1 names prefixed)."""
    from postqued.sandbox.router import match_route

    v1_names = {"integrations": "v1_platform_accounts"}
    for version in ("v2", "v1"):
        for name, route in endpoints(version).items():
            spec, _params, _known = match_route(route.method, route.path.replace("{id}", str(uuid.uuid4())))
            expected = name if version == "v2" else v1_names.get(name, f"v1_{name}")
            assert spec is not None and spec.name == expected, (version, name)


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_wrong_key_is_an_authentication_error(tmp_path: Path, mode: str) -> None:
    wrong = "pq_wrong_key_0000000000"
    async with client_env(tmp_path, mode=mode, api_key=SecretStr(wrong)) as env:
        with pytest.raises(AuthenticationError) as caught:
            await env.client.list_accounts(workspace_id=env.sb.workspace_id)
        error = caught.value
        assert (error.status, error.code, error.retryable) == (401, "UNAUTHORIZED", False)
        assert "UNAUTHORIZED" in str(error) and "401" in str(error)
        assert wrong not in str(error) and secrets_free(error)
        assert env.count("integrations") == 1  # never retried


async def test_missing_or_malformed_key_is_a_config_error_before_sending(tmp_path: Path) -> None:
    for key, code in ((None, "MISSING_API_KEY"), (SecretStr("sk_live_abc"), "MALFORMED_API_KEY")):
        async with client_env(tmp_path, api_key=key) as env:
            with pytest.raises(ConfigError) as caught:
                await env.client.list_workspaces()
            assert caught.value.code == code and "sk_live_abc" not in str(caught.value)
            assert env.sb.ledger == []


async def test_subscription_required(tmp_path: Path) -> None:
    async with client_env(tmp_path, sandbox={"subscription_active": False}) as env:
        asset = await upload(env.client)
        request = await env.client.scoped_request(tiktok_request(env.sb.tiktok_public_id, [asset.id]))
        for call in (lambda: env.client.dry_run(request), lambda: env.client.publish(request, str(uuid.uuid4()))):
            with pytest.raises(SubscriptionRequiredError) as caught:
                await call()
            assert (caught.value.status, caught.value.code) == (402, "SUBSCRIPTION_REQUIRED")
            assert "402" in str(caught.value) and secrets_free(caught.value)
        assert env.count("publish") == 2 and env.sb.publish_requests == {}


async def test_foreign_workspace_is_permission_denied(env: Env) -> None:
    foreign = str(uuid.uuid4())
    with pytest.raises(PermissionDeniedError) as caught:
        await env.client.list_accounts(workspace_id=foreign)
    assert (caught.value.status, caught.value.code) == (403, "FORBIDDEN")
    assert "FORBIDDEN (HTTP 403)" in str(caught.value) and secrets_free(caught.value)
    assert env.sb.requests("integrations")[0].query == {"workspaceId": foreign}


async def test_not_found_and_validation_errors(env: Env) -> None:
    errors: list[PostQuedError] = []
    with pytest.raises(NotFoundError) as missing:
        await env.client.get_publish(str(uuid.uuid4()))
    errors.append(missing.value)
    asset = await upload(env.client)
    bad = await env.client.scoped_request(
        tiktok_request(env.sb.tiktok_public_id, [asset.id], privacy=None)  # a direct post needs privacy
    )
    with pytest.raises(BadRequestError) as invalid:
        await env.client.publish(bad, str(uuid.uuid4()))
    errors.append(invalid.value)
    assert invalid.value.code == "VALIDATION_ERROR" and "privacyLevel" in invalid.value.message
    with pytest.raises(BadRequestError) as empty:
        await env.client.update_content(asset.id)
    errors.append(empty.value)
    assert empty.value.code == "EMPTY_UPDATE"
    assert env.count("publish") == 1 and env.count("publish_get") == 1 and env.count("content_update") == 1
    for error in errors:
        assert f"{error.code} (HTTP {error.status})" in str(error) and secrets_free(error)
        assert not error.retryable


async def test_idempotency_conflict_is_not_retried(env: Env) -> None:
    status, key = await published(env)
    asset_id = json_body(env.sb.requests("publish")[0])["contentIds"][0]
    other = await env.client.scoped_request(tiktok_request(env.sb.tiktok_public_id, [asset_id], caption="Different"))
    with pytest.raises(IdempotencyConflictError) as caught:
        await env.client.publish(other, key)
    error = caught.value
    assert (error.status, error.code, error.retryable) == (409, "IDEMPOTENCY_CONFLICT", False)
    assert "IDEMPOTENCY_CONFLICT (HTTP 409)" in str(error) and secrets_free(error)
    assert env.count("publish") == 2 and list(env.sb.publish_requests) == [status.id]


async def test_missing_idempotency_key(env: Env) -> None:
    asset = await upload(env.client)
    request = await env.client.scoped_request(tiktok_request(env.sb.tiktok_public_id, [asset.id]))
    with pytest.raises(MissingIdempotencyKeyError) as caught:
        await env.client.call("publish", body=request, idempotency_key=None)
    assert (caught.value.status, caught.value.code) == (400, "MISSING_IDEMPOTENCY_KEY")
    assert "MISSING_IDEMPOTENCY_KEY (HTTP 400)" in str(caught.value) and secrets_free(caught.value)
    assert env.count("publish") == 1 and env.sb.publish_requests == {}


# --- the two HTTP clients --------------------------------------------------------------------------


async def test_api_and_storage_clients_never_follow_redirects(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/elsewhere":
            return httpx.Response(200, json={"workspaces": [{"id": "stolen"}]})
        return httpx.Response(302, headers={"Location": "http://evil.localhost/elsewhere"})

    settings = make_settings(tmp_path)
    async with PostQuedClient(settings, transport=httpx.MockTransport(handler)) as client:
        assert client.api.follow_redirects is False and client.storage.follow_redirects is False
        assert "authorization" not in client.storage.headers
        assert client.api.headers["authorization"] == f"Bearer {SANDBOX_API_KEY}"
        answer = await client.storage.put("http://sandbox.localhost/_storage/k?signature=abc", content=b"xyz")
        assert answer.status_code == 302 and len(seen) == 1
        assert "authorization" not in seen[0].headers
        with pytest.raises(APIError) as caught:
            await client.delete_content("abc", workspace_id="ws")
        # a redirect is neither followed nor mistaken for success
        assert (caught.value.status, caught.value.code) == (302, "UNEXPECTED_REDIRECT")
        assert [r.url.path for r in seen] == ["/_storage/k", "/v2/content/abc"]
