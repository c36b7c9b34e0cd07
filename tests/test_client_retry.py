"""The retry matrix and the local token buckets, each row proven by the sandbox's ledger.

The sandbox and the client share a ``ManualClock``: every backoff or Retry-After wait is recorded in
``clock.sleeps`` and costs no real time. Publish rows also check that every attempt carried the same
Idempotency-Key and byte-identical body, and how many publish requests the sandbox created.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from postqued.api.retry import RetryPolicy, calculate_retry_timeout, should_retry
from postqued.errors import (
    APIError,
    BadRequestError,
    ConflictError,
    IdempotencyConflictError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from postqued.models import PublishRequest
from postqued.sandbox import LedgerEntry
from tests.clientkit import MODES, Env, client_env, secrets_free, tiktok_request, upload

LIMITS = {"upload": 20, "read": 30, "publish": 10, "delete": 20}

# --- the decision itself, row by row (pure functions: no sandbox, no clock) ------------------------

S503 = ServerError("down", status=503)
S429 = RateLimitedError("slow down", status=429)
S409 = ConflictError("conflict", status=409)
NET = TransportError("reset")


@pytest.mark.parametrize(
    ("kind", "error", "attempt", "arrived", "expected"),
    [
        ("read", S503, 0, True, True),  # reads repeat any transient failure
        ("read", NET, 1, True, True),
        ("read", S503, 2, True, False),  # the retry budget (2) is spent
        ("read", S409, 0, True, False),  # a 4xx other than 408/429 is never repeated
        ("write", NET, 0, True, True),  # an idempotent write: the same effect twice is harmless
        ("publish", S503, 0, True, True),  # same key, same bytes: PostQued replays instead of posting twice
        ("publish", S409, 0, True, False),
        ("once", S503, 0, True, False),  # no key: a second copy could post twice
        ("once", NET, 0, True, False),  # broke mid-request: it may have been processed
        ("once", NET, 0, False, True),  # never connected: it cannot have been processed
        ("once", S429, 0, True, True),  # refused by the rate limit: not processed
        ("once", S429, 2, True, False),
    ],
)
def testshould_retry(kind: Any, error: Any, attempt: int, arrived: bool, expected: bool) -> None:
    assert should_retry(kind, error, attempt=attempt, limit=2, arrived=arrived) is expected


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(None, "backoff"), (0, 0.0), (12, 12.0), (30, 30.0), (31, None), (-5, 0.0)],
)
def testcalculate_retry_timeout(retry_after: int | None, expected: Any) -> None:
    """Retry-After is honoured up to the policy's cap; beyond it the caller answers with retry_at instead."""
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, tzinfo=UTC)
    policy = RetryPolicy(max_retry_wait=30.0, rng=random.Random(7))
    error = RateLimitedError("slow down", status=429)
    error.retry_at = now + timedelta(seconds=retry_after) if retry_after is not None else None
    wait = calculate_retry_timeout(policy, error, 1, now)
    if expected == "backoff":
        assert wait is not None and 0 <= wait <= min(policy.max_delay, policy.base_delay * 2)
    else:
        assert wait == expected


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with client_env(tmp_path, retry=RetryPolicy(rng=random.Random(7))) as e:
        yield e


@pytest.fixture(params=MODES)
async def both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with client_env(tmp_path, mode=request.param) as e:
        yield e


async def live_request(env: Env, caption: str = "Retry matrix") -> PublishRequest:
    asset = await upload(env.client)
    return await env.client.scoped_request(tiktok_request(env.sb.tiktok_public_id, [asset.id], caption=caption))


def assert_one_key_one_body(entries: list[LedgerEntry], key: str, request: PublishRequest) -> None:
    assert entries, "no publish attempt reached the sandbox"
    assert {e.idempotency_key for e in entries} == {key}
    assert {e.body for e in entries} == {entries[0].body}  # byte-identical on every attempt
    assert json.loads(entries[0].body) == request.wire()  # and exactly the request's wire form


def backoffs_within_cap(sleeps: list[float], policy: RetryPolicy) -> bool:
    return all(0 <= s <= min(policy.max_delay, policy.base_delay * 2**i) for i, s in enumerate(sleeps))


# --- reads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_read_retries_a_5xx_burst(env: Env, status: int) -> None:
    env.sb.inject("status", route="integrations", times=2, status=status)
    accounts = await env.client.list_accounts(workspace_id=env.sb.workspace_id)
    assert len(accounts) == 3
    assert [e.status for e in env.sb.requests("integrations")] == [status, status, 200]
    assert len(env.clock.sleeps) == 2 and backoffs_within_cap(env.clock.sleeps, env.client.retry)


async def test_read_honours_retry_after_on_429(env: Env) -> None:
    env.sb.inject("status", route="content_list", status=429, retry_after=7)
    page = await env.client.list_content(workspace_id=env.sb.workspace_id)
    assert page.content == []
    entries = env.sb.requests("content_list")
    assert [e.status for e in entries] == [429, 200]
    assert env.clock.sleeps == [7.0]
    assert entries[1].time - entries[0].time == timedelta(seconds=7)


async def test_read_honours_the_sandbox_rate_limit(tmp_path: Path) -> None:
    """A real 429 from the sandbox's own limiter (Retry-After included), with local buckets out of the way."""
    async with client_env(
        tmp_path,
        sandbox={"rate_limits": {**LIMITS, "read": 2}},
        rate_limits={**LIMITS, "read": 1000},
        max_retry_wait=90.0,
    ) as env:
        ws = env.sb.workspace_id
        for _ in range(3):
            await env.client.list_accounts(workspace_id=ws)
        assert [e.status for e in env.sb.requests("integrations")] == [200, 200, 429, 200]
        assert env.clock.sleeps == [60.0]


@pytest.mark.parametrize("kind", ["drop_before_commit", "drop_after_commit"])
async def test_read_retries_a_dropped_connection(both: Env, kind: str) -> None:
    both.sb.inject(kind, route="context")
    workspaces = await both.client.list_workspaces()
    assert [w.id for w in workspaces] == [both.sb.workspace_id]
    entries = both.sb.requests("context")
    assert [(e.status, e.faults) for e in entries] == [(None, [kind]), (200, [])]
    assert len(both.clock.sleeps) == 1


async def test_read_retries_a_truncated_body(both: Env) -> None:
    both.sb.inject("truncate_body", route="context")
    workspaces = await both.client.list_workspaces()
    assert [w.id for w in workspaces] == [both.sb.workspace_id]
    assert [(e.status, e.faults) for e in both.sb.requests("context")] == [(200, ["truncate_body"]), (200, [])]


async def test_read_retries_408(env: Env) -> None:
    env.sb.inject("status", route="context", status=408, code="REQUEST_TIMEOUT")
    await env.client.list_workspaces()
    assert [e.status for e in env.sb.requests("context")] == [408, 200]


@pytest.mark.parametrize(
    ("kind", "params", "error", "code"),
    [
        ("status", {"status": 500}, ServerError, "INTERNAL_ERROR"),
        ("status", {"status": 429}, RateLimitedError, "RATE_LIMITED"),
        ("drop_before_commit", {}, TransportError, "NETWORK_ERROR"),
        ("truncate_body", {}, TransportError, "BAD_RESPONSE"),
    ],
)
async def test_read_gives_up_after_max_retries(
    env: Env, kind: str, params: dict[str, Any], error: type[Exception], code: str
) -> None:
    env.sb.inject(kind, route="context", times=10, **params)
    with pytest.raises(error) as caught:
        await env.client.list_workspaces()
    assert getattr(caught.value, "code", None) == code and secrets_free(caught.value)
    assert env.count("context") == 3  # max_retries=2 by default
    assert len(env.clock.sleeps) == 2


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_max_retries_is_configurable(tmp_path: Path, max_retries: int) -> None:
    async with client_env(tmp_path, max_retries=max_retries) as env:
        env.sb.inject("status", route="context", times=10, status=503)
        with pytest.raises(ServerError) as caught:
            await env.client.list_workspaces()
        assert caught.value.status == 503
        assert env.count("context") == max_retries + 1 and len(env.clock.sleeps) == max_retries


async def test_retry_after_beyond_the_cap_is_an_answer_with_retry_at(env: Env) -> None:
    env.sb.inject("status", route="integrations", status=429, retry_after=120)
    before = env.clock.now()
    with pytest.raises(RateLimitedError) as caught:
        await env.client.list_accounts(workspace_id=env.sb.workspace_id)
    error = caught.value
    assert (error.status, error.code, error.retryable) == (429, "RATE_LIMITED", True)
    assert error.retry_at == before + timedelta(seconds=120)
    assert error.retry_at.isoformat() in str(error)
    assert env.count("integrations") == 1 and env.clock.sleeps == []  # no further attempt, no wait


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "VALIDATION_ERROR", BadRequestError),
        (404, "NOT_FOUND", NotFoundError),
        (409, "INVALID_STATE", APIError),
        (422, "UNPROCESSABLE", APIError),
    ],
)
async def test_4xx_is_never_retried(env: Env, status: int, code: str, error: type[APIError]) -> None:
    env.sb.inject("status", route="context", times=3, status=status, code=code)
    with pytest.raises(error) as caught:
        await env.client.list_workspaces()
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (status, code, False)
    assert env.count("context") == 1 and env.clock.sleeps == []


async def test_idempotent_writes_retry_on_5xx(env: Env) -> None:
    env.sb.inject("status", route="content_upload", status=502)
    session = await env.client.start_upload("video.mp4", "video/mp4", 10, workspace_id=env.sb.workspace_id)
    assert session.content_id in env.sb.contents
    assert [e.status for e in env.sb.requests("content_upload")] == [502, 200]


# --- publish ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_publish_drop_after_commit_once_is_replayed(tmp_path: Path, mode: str) -> None:
    async with client_env(tmp_path, mode=mode) as env:
        request = await live_request(env)
        key = str(uuid.uuid4())
        env.sb.inject("drop_after_commit", route="publish")
        status = await env.client.publish(request, key)
        assert list(env.sb.publish_requests) == [status.id]  # exactly one publish request exists
        entries = env.sb.requests("publish")
        assert [(e.status, e.faults) for e in entries] == [(None, ["drop_after_commit"]), (200, [])]
        assert_one_key_one_body(entries, key, request)
        assert status.targets and status.targets[0].account_id == env.sb.tiktok_public_id


@pytest.mark.parametrize("mode", MODES)
async def test_publish_drop_after_commit_every_time_is_unknown(tmp_path: Path, mode: str) -> None:
    async with client_env(tmp_path, mode=mode) as env:
        request = await live_request(env)
        key = str(uuid.uuid4())
        env.sb.inject("drop_after_commit", route="publish", times=3)
        with pytest.raises(OutcomeUnknownError) as caught:
            await env.client.publish(request, key)
        assert caught.value.code == "OUTCOME_UNKNOWN" and "new key" in caught.value.next_step
        assert secrets_free(caught.value)
        entries = env.sb.requests("publish")
        assert [e.status for e in entries] == [None, None, None]
        assert_one_key_one_body(entries, key, request)
        assert len(env.sb.publish_requests) == 1  # committed once, never twice


async def test_publish_5xx_burst_retries_with_the_same_key_and_body(env: Env) -> None:
    request = await live_request(env)
    key = str(uuid.uuid4())
    env.sb.inject("status", route="publish", times=2, status=503)
    status = await env.client.publish(request, key)
    entries = env.sb.requests("publish")
    assert [e.status for e in entries] == [503, 503, 200]
    assert_one_key_one_body(entries, key, request)
    assert list(env.sb.publish_requests) == [status.id]


async def test_publish_5xx_to_the_end_is_unknown(env: Env) -> None:
    request = await live_request(env)
    key = str(uuid.uuid4())
    env.sb.inject("status", route="publish", times=3, status=500)
    with pytest.raises(OutcomeUnknownError) as caught:
        await env.client.publish(request, key)
    assert caught.value.status == 500
    entries = env.sb.requests("publish")
    assert len(entries) == 3
    assert_one_key_one_body(entries, key, request)


@pytest.mark.parametrize("mode", MODES)
async def test_publish_truncated_answer_is_retried_and_replayed(tmp_path: Path, mode: str) -> None:
    async with client_env(tmp_path, mode=mode) as env:
        request = await live_request(env)
        key = str(uuid.uuid4())
        env.sb.inject("truncate_body", route="publish")
        status = await env.client.publish(request, key)
        entries = env.sb.requests("publish")
        assert [(e.status, e.faults) for e in entries] == [(200, ["truncate_body"]), (200, [])]
        assert_one_key_one_body(entries, key, request)
        assert list(env.sb.publish_requests) == [status.id]


async def test_publish_truncated_every_time_is_unknown(env: Env) -> None:
    request = await live_request(env)
    env.sb.inject("truncate_body", route="publish", times=3)
    with pytest.raises(OutcomeUnknownError):
        await env.client.publish(request, str(uuid.uuid4()))
    assert env.count("publish") == 3 and len(env.sb.publish_requests) == 1


async def test_publish_429_waits_and_retries_with_the_same_key(env: Env) -> None:
    request = await live_request(env)
    key = str(uuid.uuid4())
    env.sb.inject("status", route="publish", status=429, retry_after=5)
    status = await env.client.publish(request, key)
    entries = env.sb.requests("publish")
    assert [e.status for e in entries] == [429, 200] and env.clock.sleeps == [5.0]
    assert_one_key_one_body(entries, key, request)
    assert list(env.sb.publish_requests) == [status.id]


async def test_publish_dropped_before_commit_is_sent_again_and_created_once(env: Env) -> None:
    request = await live_request(env)
    key = str(uuid.uuid4())
    env.sb.inject("drop_before_commit", route="publish")
    status = await env.client.publish(request, key)
    assert_one_key_one_body(env.sb.requests("publish"), key, request)
    assert list(env.sb.publish_requests) == [status.id]


async def test_publish_conflict_is_not_retried(env: Env) -> None:
    request = await live_request(env)
    key = str(uuid.uuid4())
    await env.client.publish(request, key)
    other = request.model_copy(update={"targets": [request.targets[0].model_copy(update={"caption": "Changed"})]})
    with pytest.raises(IdempotencyConflictError):
        await env.client.publish(other, key)
    assert env.count("publish") == 2 and len(env.sb.publish_requests) == 1 and env.clock.sleeps == []


async def test_publish_rate_limited_after_a_lost_answer_is_unknown_not_failed(tmp_path: Path) -> None:
    """Attempt 1 commits but its answer is lost; attempt 2 meets a long 429: the post may be live."""

    async with client_env(tmp_path, wrap=True) as env:
        sb = env.sb

        def arm_on_second(request: httpx.Request, n: int) -> None:
            if request.url.path == "/v2/publish" and len(sb.requests("publish")) == 1:
                sb.inject("status", route="publish", status=429, retry_after=600)

        assert env.hook is not None
        env.hook.before = arm_on_second
        request = await live_request(env)
        env.sb.inject("drop_after_commit", route="publish")
        with pytest.raises(OutcomeUnknownError) as caught:
            await env.client.publish(request, str(uuid.uuid4()))
        assert caught.value.status == 429
        assert [e.status for e in env.sb.requests("publish")] == [None, 429]
        assert len(env.sb.publish_requests) == 1


async def test_publish_local_limit_after_a_lost_answer_is_unknown(tmp_path: Path) -> None:
    async with client_env(tmp_path, rate_limits={**LIMITS, "publish": 1}) as env:
        request = await live_request(env)
        env.sb.inject("drop_after_commit", route="publish")
        with pytest.raises(OutcomeUnknownError):
            await env.client.publish(request, str(uuid.uuid4()))
        assert env.count("publish") == 1 and len(env.sb.publish_requests) == 1


# --- local token buckets ---------------------------------------------------------------------------


async def test_local_bucket_queues_instead_of_earning_429(tmp_path: Path) -> None:
    limits = {**LIMITS, "publish": 2}
    async with client_env(tmp_path, sandbox={"rate_limits": limits}, rate_limits=limits, max_retry_wait=120.0) as env:
        request = await live_request(env)
        for _ in range(3):
            await env.client.publish(request.model_copy(), str(uuid.uuid4()))
        entries = env.sb.requests("publish")
        assert [e.status for e in entries] == [200, 200, 200]
        assert all(e.status != 429 for e in env.sb.ledger)
        [wait] = env.clock.sleeps
        assert 60.0 <= wait <= 61.0
        assert entries[2].time - entries[0].time >= timedelta(seconds=60)
        assert len(env.sb.publish_requests) == 3


async def test_without_local_buckets_the_sandbox_answers_429(tmp_path: Path) -> None:
    """The control for the test above: the same burst with the local bucket out of the way."""
    limits = {**LIMITS, "publish": 2}
    async with client_env(tmp_path, sandbox={"rate_limits": limits}, rate_limits={**LIMITS, "publish": 1000}) as env:
        request = await live_request(env)
        for _ in range(2):
            await env.client.publish(request, str(uuid.uuid4()))
        with pytest.raises(RateLimitedError) as caught:
            await env.client.publish(request, str(uuid.uuid4()))
        assert (caught.value.status, caught.value.code) == (429, "RATE_LIMITED") and caught.value.retry_at
        assert [e.status for e in env.sb.requests("publish")] == [200, 200, 429]


async def test_local_bucket_beyond_the_cap_sends_nothing(tmp_path: Path) -> None:
    async with client_env(tmp_path, rate_limits={**LIMITS, "publish": 2}) as env:
        request = await live_request(env)
        for _ in range(2):
            await env.client.publish(request, str(uuid.uuid4()))
        with pytest.raises(RateLimitedError) as caught:
            await env.client.publish(request, str(uuid.uuid4()))
        error = caught.value
        assert error.code == "RATE_LIMITED_LOCAL" and error.status is None
        assert error.retry_at is not None
        assert timedelta(seconds=59) < error.retry_at - env.clock.now() <= timedelta(seconds=61)
        assert env.count("publish") == 2 and env.clock.sleeps == []
        assert "nothing was sent" in str(error)


async def test_buckets_are_separate(tmp_path: Path) -> None:
    async with client_env(tmp_path, rate_limits={**LIMITS, "read": 1}) as env:
        ws = env.sb.workspace_id
        await env.client.list_accounts(workspace_id=ws)
        await env.client.start_upload("a.mp4", "video/mp4", 10, workspace_id=ws)  # upload bucket: no wait
        with pytest.raises(RateLimitedError, match="RATE_LIMITED_LOCAL"):
            await env.client.list_accounts(workspace_id=ws)
        assert env.count("integrations") == 1 and env.clock.sleeps == []


async def test_a_repeated_cancel_whose_first_answer_was_lost_says_it_may_be_done(tmp_path: Path) -> None:
    """An idempotent write is repeated after a lost answer; a 409 then most likely means "already done"."""
    async with client_env(tmp_path) as env:
        client, sb = env.client, env.sb
        video = await upload(client)
        later = env.clock.now() + timedelta(days=1)
        request = await client.scoped_request(tiktok_request(sb.tiktok_public_id, [video.id], dispatch_at=later))
        status = await client.publish(request, str(uuid.uuid4()))
        target = status.targets[0].id
        assert target
        sb.inject("drop_after_commit", route="target_cancel")
        with pytest.raises(ConflictError) as caught:
            await client.cancel_target(target)
    assert [e.status for e in sb.requests("target_cancel")] == [None, 409]
    assert "may already have done it" in caught.value.describe()
