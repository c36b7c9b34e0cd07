"""Settings from the environment, an env file the user names, and ``.env`` in the working directory.

Precedence: command line flags, then the real environment, then an env file named explicitly
(``--env-file`` or ``POSTQUED_ENV_FILE``), then ``.env`` in the working folder. That last file may come with a
folder the user did not write (a cloned repository an IDE opened), so it may only supply the API key, as the
original skill keeps it there: every other variable in it is ignored, with a warning naming it, because it
could change where requests (and the key) go or weaken a safeguard.

A malformed value is a ``ConfigError`` naming the variable. A missing or malformed API key is *not* an
error here: it is reported by ``Settings.require_api_key()`` at the first call that needs it, so
``tools/list`` and ``doctor`` work without one.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, SecretStr

from postqued.errors import ConfigError
from postqued.identities import Identity, load_identities

ApiVersion = Literal["v1", "v2"]
ConfirmMode = Literal["direct", "all", "never"]

TOOLSETS: tuple[str, ...] = (
    "publishing",
    "analytics",
    "engagement",
    "approvals",
    "team",
    "providers",
    "admin",
)
DYNAMIC = "dynamic"  # not a toolset: list_toolsets and enable_toolset, so any other toolset can be added later
DEFAULT_BASE_URL = "https://api.postqued.com"
# PostQued's documented buckets (v1; v2 numbers are unknown and reuse them).
DEFAULT_RATE_LIMITS: dict[str, int] = {"upload": 20, "read": 30, "publish": 10, "delete": 20}
MAX_VIDEO_BYTES = 4 * 1024**3
MAX_IMAGE_BYTES = 20 * 1024**2


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# What a .env found in the working folder may set; see the module docstring.
WORKDIR_DOTENV_ALLOWED = frozenset({"POSTQUED_API_KEY"})

log = logging.getLogger("postqued.settings")


def default_media_dirs() -> tuple[Path, ...]:
    """The user's own media folders (videos, pictures, downloads, desktop), never home itself or a root."""
    import platformdirs

    home = Path.home()
    found: list[Path] = []
    for folder in (
        platformdirs.user_videos_dir(),
        platformdirs.user_pictures_dir(),
        platformdirs.user_downloads_dir(),
        platformdirs.user_desktop_dir(),
    ):
        path = Path(folder)
        if path not in found and path != home and not _is_root(path):
            found.append(path)
    return tuple(found)


def _is_root(path: Path) -> bool:
    resolved = path.resolve()
    return resolved == Path(resolved.anchor)


def _default_state_dir() -> Path:
    from platformdirs import user_state_dir

    return Path(user_state_dir("postqued-mcp", appauthor=False))


class Settings(BaseModel):
    """Everything the server reads from its environment. Immutable once built."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    api_version: ApiVersion = "v2"
    workspace_id: str | None = None
    media_dirs: tuple[Path, ...] = ()
    state_dir: Path = Path()
    toolsets: frozenset[str] = frozenset({"publishing", DYNAMIC})  # publishing, and the others on request
    read_only: bool = False
    sandbox: bool = False
    mcp_token: SecretStr | None = None
    journal_url: SecretStr | None = None  # postgresql://... (team deployment); it may hold a password
    identities: tuple[Identity, ...] = ()  # POSTQUED_MCP_TOKENS_FILE: one identity per HTTP token
    allowed_workspaces: tuple[str, ...] | None = None  # an identity's workspaces (None: every one the key sees)
    http_stateless: bool = False  # replicas behind a load balancer without sticky sessions
    confirm: ConfirmMode = "direct"
    max_video_bytes: int = MAX_VIDEO_BYTES
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_retries: int = 2
    max_retry_wait: float = 30.0
    timeout: float = 30.0
    rate_limits: Mapping[str, int] = DEFAULT_RATE_LIMITS
    log_level: str = "WARNING"
    # Variables a working-folder .env tried to set and that were ignored (names only; see the module docstring).
    ignored_dotenv: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: Path | None = None,
        dotenv: Path | None = Path(".env"),
        overrides: Mapping[str, object] | None = None,
    ) -> Settings:
        """Read ``POSTQUED_*`` variables; ``overrides`` (command line flags) win over every source.

        ``env_file`` is a file the user named (trusted like the environment; it must exist); ``dotenv`` is the
        working folder's ``.env``, of which only the API key is read.
        """
        real = dict(os.environ if environ is None else environ)
        env: dict[str, str] = {}
        ignored: list[str] = []
        if dotenv is not None and dotenv.is_file():
            for name, value in dotenv_values(dotenv).items():
                if value is None:
                    continue
                if name in WORKDIR_DOTENV_ALLOWED:
                    env[name] = value
                elif name.startswith("POSTQUED_") and name not in real:
                    ignored.append(name)
        if ignored:
            log.warning(
                "ignored %s from %r: a .env in the working folder may only set %s; set them in the host's "
                "environment or name the file with --env-file",
                ", ".join(sorted(ignored)),
                str(dotenv),
                ", ".join(sorted(WORKDIR_DOTENV_ALLOWED)),
            )
        named = env_file or (Path(real["POSTQUED_ENV_FILE"]).expanduser() if real.get("POSTQUED_ENV_FILE") else None)
        if named is not None:
            if not named.is_file():
                raise ConfigError(
                    f"The env file {str(named)!r} does not exist.",
                    next_step="Pass the path of an existing file to --env-file / POSTQUED_ENV_FILE, or drop it.",
                )
            env.update({k: v for k, v in dotenv_values(named).items() if v is not None})
        env.update(real)
        values: dict[str, object] = {"ignored_dotenv": tuple(sorted(ignored))}

        def get(name: str) -> str | None:
            raw = env.get(name)
            return raw.strip() if raw is not None and raw.strip() != "" else None

        if (key := get("POSTQUED_API_KEY")) is not None:
            values["api_key"] = SecretStr(key)
        if (token := get("POSTQUED_MCP_TOKEN")) is not None:
            values["mcp_token"] = SecretStr(token)
        if (journal_url := get("POSTQUED_JOURNAL_URL")) is not None:
            values["journal_url"] = SecretStr(journal_url)
        if (base := get("POSTQUED_BASE_URL")) is not None:
            values["base_url"] = base
        if (version := get("POSTQUED_API_VERSION")) is not None:
            values["api_version"] = _choice("POSTQUED_API_VERSION", version.lower(), ("v1", "v2"))
        if (ws := get("POSTQUED_WORKSPACE_ID")) is not None:
            values["workspace_id"] = ws
        if (dirs := get("POSTQUED_MEDIA_DIRS")) is not None:
            values["media_dirs"] = tuple(Path(p).expanduser() for p in dirs.split(os.pathsep) if p.strip())
        if (state := get("POSTQUED_STATE_DIR")) is not None:
            values["state_dir"] = Path(state).expanduser()
        if (toolsets := get("POSTQUED_TOOLSETS")) is not None:
            values["toolsets"] = parse_toolsets(toolsets)
        if (ro := get("POSTQUED_READ_ONLY")) is not None:
            values["read_only"] = _bool("POSTQUED_READ_ONLY", ro)
        if (stateless := get("POSTQUED_HTTP_STATELESS")) is not None:
            values["http_stateless"] = _bool("POSTQUED_HTTP_STATELESS", stateless)
        if (sb := get("POSTQUED_SANDBOX")) is not None:
            values["sandbox"] = _bool("POSTQUED_SANDBOX", sb)
        if (confirm := get("POSTQUED_CONFIRM")) is not None:
            values["confirm"] = _choice("POSTQUED_CONFIRM", confirm.lower(), ("direct", "all", "never"))
        for var, field, lo in (
            ("POSTQUED_MAX_VIDEO_BYTES", "max_video_bytes", 1),
            ("POSTQUED_MAX_IMAGE_BYTES", "max_image_bytes", 1),
            ("POSTQUED_MAX_RETRIES", "max_retries", 0),
        ):
            if (raw := get(var)) is not None:
                values[field] = _int(var, raw, lo)
        for var, field in (("POSTQUED_MAX_RETRY_WAIT", "max_retry_wait"), ("POSTQUED_TIMEOUT", "timeout")):
            if (raw := get(var)) is not None:
                values[field] = _float(var, raw)
        if (limits := get("POSTQUED_RATE_LIMITS")) is not None:
            values["rate_limits"] = _rate_limits(limits)
        if (level := get("POSTQUED_LOG_LEVEL")) is not None:
            values["log_level"] = _choice(
                "POSTQUED_LOG_LEVEL", level.upper(), ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
            )
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        if (tokens := get("POSTQUED_MCP_TOKENS_FILE")) is not None:
            served = values.get("toolsets", cls.model_fields["toolsets"].default)
            assert isinstance(served, frozenset)
            values["identities"] = load_identities(Path(tokens).expanduser(), env, toolsets=served)
        return cls.build(**values)

    @classmethod
    def build(cls, **values: object) -> Settings:
        """Construct and check settings (also the entry point for tests and embedders)."""
        if "media_dirs" not in values:
            values["media_dirs"] = default_media_dirs()
        values.setdefault("state_dir", _default_state_dir())
        settings = cls.model_validate(values)
        settings._check()
        return settings

    def _check(self) -> None:
        if roots := [str(p) for p in self.media_dirs if _is_root(p)]:
            raise ConfigError(
                f"POSTQUED_MEDIA_DIRS may not be a filesystem root ({', '.join(roots)}): uploads could read any file.",
                next_step="Name the folders that hold the media to post, e.g. ~/Movies or ~/Pictures "
                f"(separated by {os.pathsep!r}), or unset it for the default media folders.",
            )
        if self.workspace_id is not None:
            try:
                uuid.UUID(self.workspace_id)
            except ValueError:
                raise ConfigError(
                    f"POSTQUED_WORKSPACE_ID must be a workspace UUID, got {self.workspace_id!r}.",
                    next_step="Copy the id from list_workspaces (or `postqued-mcp doctor`), or unset it.",
                ) from None
        if self.journal_url is not None and urlsplit(self.journal_url.get_secret_value()).scheme not in (
            "postgresql",
            "postgres",
        ):
            raise ConfigError(
                "POSTQUED_JOURNAL_URL must be a postgresql:// URL (postgresql://user:password@host:port/db).",
                next_step="Fix POSTQUED_JOURNAL_URL, or unset it for the journal file under POSTQUED_STATE_DIR.",
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"POSTQUED_BASE_URL must be an http(s) origin, got {self.base_url!r}.",
                next_step="Set POSTQUED_BASE_URL to https://api.postqued.com (or unset it).",
            )
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigError(
                "POSTQUED_BASE_URL uses plain http on a non-loopback host; the API key would travel unencrypted.",
                next_step="Use https, or plain http only for 127.0.0.1/localhost (e.g. the sandbox).",
            )
        if self.max_video_bytes > MAX_VIDEO_BYTES or self.max_image_bytes > MAX_IMAGE_BYTES:
            raise ConfigError(
                "POSTQUED_MAX_VIDEO_BYTES / POSTQUED_MAX_IMAGE_BYTES can only lower PostQued's limits "
                f"(video {MAX_VIDEO_BYTES}, image {MAX_IMAGE_BYTES} bytes).",
                next_step="Set a value at or below PostQued's limit, or unset it.",
            )

    def for_identity(self, identity: Identity) -> Settings:
        """The settings one identity's requests run with: its key, workspaces, toolsets, read-only, confirmation."""
        allowed = identity.workspaces
        workspace = self.workspace_id
        if allowed is not None:
            workspace = allowed[0] if len(allowed) == 1 else workspace if workspace in allowed else None
        return self.model_copy(
            update={
                "api_key": identity.api_key,
                "allowed_workspaces": allowed,
                "workspace_id": workspace,
                "toolsets": identity.toolsets or self.toolsets,
                "read_only": self.read_only or identity.read_only,
                "confirm": identity.confirm or self.confirm,
                "identities": (),
            }
        )

    @property
    def origin(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def allows_plain_http_storage(self) -> bool:
        """Presigned storage URLs must be https unless the API itself is plain http on loopback."""
        parts = urlsplit(self.base_url)
        return parts.scheme == "http" and is_loopback_host(parts.hostname)

    def require_api_key(self) -> str:
        """The key, or a ConfigError that says how to set it. Never logs or returns it elsewhere."""
        if self.api_key is None:
            raise ConfigError(
                "POSTQUED_API_KEY is not set.",
                code="MISSING_API_KEY",
                next_step=(
                    "Create a key in the PostQued app (Settings -> API) and put POSTQUED_API_KEY=pq_... in the "
                    "environment or a .env file, then restart; or run with --sandbox to try it without a key."
                ),
            )
        key = self.api_key.get_secret_value()
        if not key.startswith("pq_") or len(key) < 8 or any(c.isspace() for c in key):
            raise ConfigError(
                "POSTQUED_API_KEY does not look like a PostQued key (it must start with 'pq_', no spaces).",
                code="MALFORMED_API_KEY",
                next_step="Copy the whole key from the PostQued app (Settings -> API) into POSTQUED_API_KEY.",
            )
        return key


def parse_toolsets(raw: str) -> frozenset[str]:
    """``all``, or a comma list of toolsets; ``dynamic`` adds publishing and the discovery pair (the default)."""
    names = {part.strip().lower() for part in raw.split(",") if part.strip()}
    if "all" in names:
        return frozenset(TOOLSETS) | (names & {DYNAMIC})
    unknown = sorted(names - set(TOOLSETS) - {DYNAMIC})
    if unknown or not names:
        raise ConfigError(
            f"POSTQUED_TOOLSETS has unknown toolset(s) {unknown or [raw]}.",
            next_step=f"Use {DYNAMIC!r} (the default), a comma list of {', '.join(TOOLSETS)} (with or without "
            f"{DYNAMIC!r}), or 'all'.",
        )
    return frozenset(names | {"publishing"}) if DYNAMIC in names else frozenset(names)


def _bool(var: str, raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{var} must be true or false, got {raw!r}.", next_step=f"Set {var}=true or {var}=false.")


def _choice(var: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise ConfigError(f"{var} must be one of {', '.join(allowed)}, got {raw!r}.", next_step=f"Fix {var}.")
    return raw


def _int(var: str, raw: str, lo: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if value < lo:
        raise ConfigError(f"{var} must be a whole number >= {lo}, got {raw!r}.", next_step=f"Fix {var}.")
    return value


def _float(var: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{var} must be a positive number of seconds, got {raw!r}.", next_step=f"Fix {var}.")
    return value


def _rate_limits(raw: str) -> dict[str, int]:
    limits = dict(DEFAULT_RATE_LIMITS)
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in DEFAULT_RATE_LIMITS:
            raise ConfigError(
                f"POSTQUED_RATE_LIMITS entry {part.strip()!r} is not bucket=N.",
                next_step="Use e.g. POSTQUED_RATE_LIMITS=upload=20,read=30,publish=10,delete=20.",
            )
        limits[name] = _int("POSTQUED_RATE_LIMITS", value.strip(), 1)
    return limits
