"""Small readers for answers: one field name each, a value of the wrong JSON type reads as absent.

The name read for each field is the documented one where PostQued documents the answer, otherwise ONE
assumption (the operation's ``source`` in postqued/api/operations.py says which); an answer without it is
marked unverified by the client (postqued/api/shape.py), never filled in from a list of guessed spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def obj(body: Any, key: str | None = None) -> dict[str, Any]:
    """The object under ``key`` (the body itself when ``key`` is None), or an empty one."""
    value = body.get(key) if key is not None and isinstance(body, Mapping) else body if key is None else None
    return dict(value) if isinstance(value, Mapping) else {}


def items(body: Any, key: str) -> list[dict[str, Any]]:
    """The objects of the list under ``key`` (anything that is not an object is skipped)."""
    value = body.get(key) if isinstance(body, Mapping) else None
    return [dict(x) for x in value if isinstance(x, Mapping)] if isinstance(value, list) else []


def text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def integer(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def flag(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    return [str(v) for v in value if isinstance(v, (str, int))] if isinstance(value, list) else []


def numbers(data: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> dict[str, float]:
    """The numeric fields of ``data`` (metrics) in snake_case; ``skip`` names fields that are not metrics."""
    return {
        _snake(k): v
        for k, v in data.items()
        if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def success(body: Any) -> bool:
    """``{"success": false}`` is the only answer read as not done (a bare 2xx did it)."""
    return body.get("success") is not False if isinstance(body, Mapping) else True


def rest(data: Mapping[str, Any], *used: str) -> dict[str, Any]:
    """The fields of ``data`` that no named field of the model took (kept as they came)."""
    return {k: v for k, v in data.items() if k not in used}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
