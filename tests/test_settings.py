"""Settings from the environment and .env: defaults, precedence, and a clear error naming each bad variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postqued.errors import ConfigError
from postqued.settings import DEFAULT_RATE_LIMITS, TOOLSETS, Settings

WS = "d99af0b1-d7a0-531a-9062-05b08e3a69d3"


def load(env: dict[str, str], env_file: Path | None = None) -> Settings:
    return Settings.from_env(env, env_file=env_file)


def test_defaults() -> None:
    s = load({})
    assert (s.base_url, s.api_version, s.toolsets, s.confirm) == (
        "https://api.postqued.com", "v2", frozenset({"publishing"}), "direct",
    )  # fmt: skip
    assert s.api_key is None and not s.read_only and not s.sandbox and s.rate_limits == DEFAULT_RATE_LIMITS
    assert s.media_dirs == (Path.home(), Path.cwd()) and s.state_dir.name == "postqued-mcp"


def test_every_variable_is_read() -> None:
    s = load(
        {
            "POSTQUED_API_KEY": "pq_live_abc123",
            "POSTQUED_BASE_URL": "http://127.0.0.1:8787",
            "POSTQUED_API_VERSION": "V1",
            "POSTQUED_WORKSPACE_ID": WS,
            "POSTQUED_MEDIA_DIRS": os.pathsep.join(["/tmp/a", "~/b"]),
            "POSTQUED_STATE_DIR": "/tmp/state",
            "POSTQUED_TOOLSETS": "publishing, analytics",
            "POSTQUED_READ_ONLY": "yes",
            "POSTQUED_SANDBOX": "1",
            "POSTQUED_MCP_TOKEN": "s3cr3t-t0ken",
            "POSTQUED_CONFIRM": "all",
            "POSTQUED_MAX_VIDEO_BYTES": "1000",
            "POSTQUED_MAX_IMAGE_BYTES": "2000",
            "POSTQUED_MAX_RETRIES": "0",
            "POSTQUED_RATE_LIMITS": "publish=5",
            "POSTQUED_LOG_LEVEL": "debug",
        }
    )
    assert s.require_api_key() == "pq_live_abc123" and s.api_version == "v1" and s.workspace_id == WS
    assert s.media_dirs == (Path("/tmp/a"), Path.home() / "b") and s.state_dir == Path("/tmp/state")
    assert s.toolsets == {"publishing", "analytics"} and s.read_only and s.sandbox and s.confirm == "all"
    assert (s.max_video_bytes, s.max_image_bytes, s.max_retries, s.log_level) == (1000, 2000, 0, "DEBUG")
    assert s.rate_limits == {**DEFAULT_RATE_LIMITS, "publish": 5} and s.allows_plain_http_storage
    assert s.mcp_token is not None and "s3cr3t" not in repr(s) and "pq_live" not in repr(s)  # no secret in reprs


def test_all_toolsets() -> None:
    assert load({"POSTQUED_TOOLSETS": "all"}).toolsets == frozenset(TOOLSETS)


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("POSTQUED_API_KEY=pq_from_file\nPOSTQUED_CONFIRM=never\n")
    s = load({"POSTQUED_CONFIRM": "all"}, env_file=dotenv)
    assert s.require_api_key() == "pq_from_file" and s.confirm == "all"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POSTQUED_API_VERSION", "v3"),
        ("POSTQUED_WORKSPACE_ID", "my workspace"),
        ("POSTQUED_TOOLSETS", "publishing,nope"),
        ("POSTQUED_READ_ONLY", "maybe"),
        ("POSTQUED_SANDBOX", "2"),
        ("POSTQUED_CONFIRM", "sometimes"),
        ("POSTQUED_MAX_VIDEO_BYTES", "lots"),
        ("POSTQUED_MAX_IMAGE_BYTES", "0"),
        ("POSTQUED_MAX_RETRIES", "-1"),
        ("POSTQUED_MAX_RETRY_WAIT", "inf"),
        ("POSTQUED_TIMEOUT", "-3"),
        ("POSTQUED_RATE_LIMITS", "publish:5"),
        ("POSTQUED_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_malformed_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({variable: value})
    assert variable in str(caught.value) and "Next step" in str(caught.value)


def test_base_url_must_be_https_unless_loopback() -> None:
    with pytest.raises(ConfigError, match="POSTQUED_BASE_URL"):
        load({"POSTQUED_BASE_URL": "http://api.example.com"})
    with pytest.raises(ConfigError, match="POSTQUED_BASE_URL"):
        load({"POSTQUED_BASE_URL": "ftp://api.postqued.com"})
    assert not load({"POSTQUED_BASE_URL": "https://api.example.com"}).allows_plain_http_storage


def test_limits_can_only_be_lowered() -> None:
    with pytest.raises(ConfigError, match="only lower"):
        load({"POSTQUED_MAX_IMAGE_BYTES": str(21 * 1024**2)})


@pytest.mark.parametrize(("key", "code"), [(None, "MISSING_API_KEY"), ("sk_live_123", "MALFORMED_API_KEY")])
def test_key_problems_wait_for_the_first_call(key: str | None, code: str) -> None:
    s = load({"POSTQUED_API_KEY": key} if key else {})  # building settings never fails on the key
    with pytest.raises(ConfigError) as caught:
        s.require_api_key()
    assert caught.value.code == code and "POSTQUED_API_KEY" in str(caught.value)
    assert "sk_live_123" not in str(caught.value)
