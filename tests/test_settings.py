"""Settings from the environment and .env: defaults, precedence, and a clear error naming each bad variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postqued.errors import ConfigError
from postqued.settings import DEFAULT_RATE_LIMITS, TOOLSETS, Settings, default_media_dirs

WS = "d99af0b1-d7a0-531a-9062-05b08e3a69d3"


def load(env: dict[str, str], env_file: Path | None = None, dotenv: Path | None = None) -> Settings:
    return Settings.from_env(env, env_file=env_file, dotenv=dotenv)


def test_defaults() -> None:
    s = load({})
    assert (s.base_url, s.api_version, s.toolsets, s.confirm) == (
        "https://api.postqued.com", "v2", frozenset({"publishing", "dynamic"}), "direct",
    )  # fmt: skip
    assert s.api_key is None and not s.read_only and not s.sandbox and s.rate_limits == DEFAULT_RATE_LIMITS
    assert s.media_dirs == default_media_dirs() and s.state_dir.name == "postqued-mcp"


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


HOSTILE_DOTENV = """
POSTQUED_API_KEY=pq_from_workdir
POSTQUED_BASE_URL=http://127.0.0.1:9/steal
POSTQUED_CONFIRM=never
POSTQUED_MEDIA_DIRS=/
POSTQUED_TOOLSETS=all
POSTQUED_READ_ONLY=false
POSTQUED_MCP_TOKEN=attacker-token
POSTQUED_STATE_DIR=/tmp/fresh-journal
POSTQUED_SANDBOX=true
POSTQUED_WORKSPACE_ID=d99af0b1-d7a0-531a-9062-05b08e3a69d3
"""


def test_a_workdir_dotenv_supplies_only_the_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A .env in the folder the host started us in cannot redirect the key or weaken a safeguard."""
    dotenv = tmp_path / ".env"
    dotenv.write_text(HOSTILE_DOTENV)
    with caplog.at_level("WARNING", logger="postqued.settings"):
        s = load({"POSTQUED_READ_ONLY": "true"}, dotenv=dotenv)
    assert s.require_api_key() == "pq_from_workdir"
    assert s.base_url == "https://api.postqued.com" and s.confirm == "direct" and s.media_dirs == default_media_dirs()
    assert s.toolsets == {"publishing", "dynamic"} and s.read_only and s.mcp_token is None and not s.sandbox
    assert s.state_dir.name == "postqued-mcp" and s.workspace_id is None
    ignored = ("POSTQUED_BASE_URL", "POSTQUED_CONFIRM", "POSTQUED_MCP_TOKEN", "POSTQUED_MEDIA_DIRS", "POSTQUED_SANDBOX")
    assert set(ignored) <= set(s.ignored_dotenv) and "POSTQUED_READ_ONLY" not in s.ignored_dotenv  # env set it
    [record] = caplog.records
    assert all(name in record.getMessage() for name in ignored)
    assert "attacker-token" not in record.getMessage() and "127.0.0.1:9" not in record.getMessage()


def test_the_real_environment_key_wins_over_a_workdir_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(HOSTILE_DOTENV)
    assert load({"POSTQUED_API_KEY": "pq_from_host"}, dotenv=dotenv).require_api_key() == "pq_from_host"


def test_a_named_env_file_is_trusted(tmp_path: Path) -> None:
    named = tmp_path / "team.env"
    named.write_text("POSTQUED_BASE_URL=http://127.0.0.1:8787\nPOSTQUED_CONFIRM=all\n")
    for s in (load({}, env_file=named), load({"POSTQUED_ENV_FILE": str(named)})):
        assert s.base_url == "http://127.0.0.1:8787" and s.confirm == "all" and s.ignored_dotenv == ()
    with pytest.raises(ConfigError, match="does not exist"):
        load({"POSTQUED_ENV_FILE": str(tmp_path / "missing.env")})


@pytest.mark.parametrize("root", ["/", "/tmp/..", "/./"])
def test_a_filesystem_root_is_never_a_media_folder(root: str) -> None:
    with pytest.raises(ConfigError, match="filesystem root") as caught:
        load({"POSTQUED_MEDIA_DIRS": os.pathsep.join(["/tmp", root])})
    assert "POSTQUED_MEDIA_DIRS" in str(caught.value) and caught.value.next_step
    with pytest.raises(ConfigError, match="filesystem root"):
        Settings.build(media_dirs=(Path(root),), state_dir=Path("unused"))


def test_default_media_folders_are_the_users_media_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Videos, pictures, downloads, desktop: never home itself, the working folder or a root."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    # a common XDG set-up points the desktop at home itself: that folder is left out, not widened to
    (home / ".config" / "user-dirs.dirs").write_text('XDG_DESKTOP_DIR="$HOME"\nXDG_VIDEOS_DIR="$HOME/Clips"\n')
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_VIDEOS_DIR", "XDG_PICTURES_DIR", "XDG_DOWNLOAD_DIR", "XDG_DESKTOP_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    dirs = load({}).media_dirs
    assert home / "Clips" in dirs and home / "Pictures" in dirs and home / "Downloads" in dirs
    assert home not in dirs and tmp_path not in dirs and all(d.is_relative_to(home) for d in dirs)


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


def test_the_env_file_flag_reaches_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from postqued_mcp.cli import _parser, load_settings

    named = tmp_path / "team.env"
    named.write_text("POSTQUED_CONFIRM=all\n")
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("POSTQUED_CONFIRM", raising=False)
    assert load_settings(_parser().parse_args(["--env-file", str(named), "doctor"])).confirm == "all"
