"""One identity per token for a team's HTTP server (``POSTQUED_MCP_TOKENS_FILE``).

The file is JSON and holds no secret: each token appears only as its SHA-256, and each identity names the
environment variable that holds its PostQued key (the key itself never goes into the file)::

    {"identities": [
      {"name": "alice", "token_sha256": "<64 hex>", "api_key_env": "POSTQUED_KEY_ALICE",
       "workspaces": ["<workspace uuid>"], "toolsets": ["publishing"], "read_only": false, "confirm": "direct"}
    ]}

``workspaces``, ``toolsets`` and ``confirm`` may be left out: every workspace the key sees, the server's
toolsets, the server's confirmation mode. Every journal entry records the identity that made it, and one
identity never reads another's entries (see ``postqued.journal``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from postqued.errors import ConfigError

__all__ = ["Identity", "load_identities", "match_token", "token_digest"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class Identity(BaseModel):
    """Who a token belongs to and what it may do. ``api_key`` is resolved from ``api_key_env`` at load."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    token_sha256: str = Field(repr=False)
    api_key_env: str
    api_key: SecretStr | None = None
    workspaces: tuple[str, ...] | None = None
    toolsets: frozenset[str] | None = None
    read_only: bool = False
    confirm: Literal["direct", "all", "never"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits or . _ @ - (it is stored with every journal entry)")
        return value

    @field_validator("token_sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be the token's SHA-256 as 64 hex digits (never the token itself)")
        return value.lower()

    @field_validator("api_key_env")
    @classmethod
    def _env(cls, value: str) -> str:
        if not _ENV.fullmatch(value):
            raise ValueError("must be the name of an environment variable (the key itself never goes in the file)")
        return value


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def match_token(identities: tuple[Identity, ...], token: bytes) -> Identity | None:
    """The identity whose digest matches ``token`` (every digest is compared, in constant time each)."""
    supplied = hashlib.sha256(token).hexdigest().encode()
    found: Identity | None = None
    for identity in identities:
        if hmac.compare_digest(supplied, identity.token_sha256.encode()):
            found = identity
    return found


def load_identities(path: Path, environ: Mapping[str, str], *, toolsets: frozenset[str]) -> tuple[Identity, ...]:
    """Read and check the tokens file; every problem is a ``ConfigError`` naming the file and the entry."""
    where = f"POSTQUED_MCP_TOKENS_FILE ({path})"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{where} cannot be read as JSON: {exc}.",
            next_step='Write {"identities": [...]} as README "Team deployment" shows, or unset the variable.',
        ) from None
    entries = raw.get("identities") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} needs a non-empty 'identities' list.", next_step="See README, Team deployment.")
    out: list[Identity] = []
    for n, entry in enumerate(entries):
        try:
            identity = Identity.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            raise ConfigError(f"{where}, identity #{n + 1}: {problems}.", next_step="Fix that entry.") from None
        key = environ.get(identity.api_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"{where}: identity {identity.name!r} takes its PostQued key from {identity.api_key_env}, "
                "which is not set.",
                next_step=f"Set {identity.api_key_env} in the server's environment.",
            )
        unknown = sorted((identity.toolsets or frozenset()) - toolsets)
        if unknown:
            raise ConfigError(
                f"{where}: identity {identity.name!r} names toolsets the server does not serve: {unknown}.",
                next_step="Enable them with POSTQUED_TOOLSETS, or remove them from the identity.",
            )
        out.append(identity.model_copy(update={"api_key": SecretStr(key)}))
    names = [i.name for i in out]
    digests = [i.token_sha256 for i in out]
    if len(set(names)) != len(names) or len(set(digests)) != len(digests):
        raise ConfigError(f"{where}: names and token digests must be unique.", next_step="Fix the duplicates.")
    return tuple(out)
