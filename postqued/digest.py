"""Canonical JSON and the digest of a publish request.

The digest names a request by its meaning, not its spelling: the same body with its keys in any order
has the same digest, and any change to a value, a key or the order of a list gives another one. It is
the ``plan_id`` a dry run returns (the live call must match it) and the journal's key for a request.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["DIGEST_PREFIX", "canonical_json", "plan_digest"]

DIGEST_PREFIX = "sha256:"


def _normalise(value: Any, path: str) -> Any:
    """Check ``value`` is plain JSON data and turn mappings into dicts and tuples into lists."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"canonical JSON refuses the non-finite number {value!r} at {path}")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON needs string keys; got {type(key).__name__} at {path}")
            out[key] = _normalise(item, f"{path}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise TypeError(
        f"canonical JSON accepts only JSON data; got {type(value).__name__} at {path} (pass datetimes as ISO strings)"
    )


def canonical_json(value: Any) -> bytes:
    """Deterministic UTF-8 JSON: keys sorted at every level, no whitespace, floats as ``repr``.

    Raises ``ValueError`` for NaN and infinities (and for strings that are not valid Unicode, such as
    lone surrogates) and ``TypeError`` for anything that is not JSON data (datetimes, bytes, sets,
    non-string keys).
    """
    text = json.dumps(
        _normalise(value, "$"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8")


def plan_digest(body: Mapping[str, Any]) -> str:
    """``"sha256:" + hex`` of the canonical JSON of ``body``."""
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(body)).hexdigest()
