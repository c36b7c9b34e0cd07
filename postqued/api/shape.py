"""Answers checked against the fields the project reads (``expects`` in postqued/api/operations.py).

An answer that lacks an expected field is still used, never a crash: the result carries ``unverified``
(which fields were missing, and the names, never the values, of the fields the answer had instead), and
one WARNING names the operation and the missing fields. ``shape`` is what ``doctor --contract`` reports:
field names and JSON types only, so no id, username, URL or caption ever leaves the machine in a report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from postqued.errors import BadResponseError

log = logging.getLogger("postqued.shape")

MAX_NAMES = 60  # an answer's field names reported at most (a huge answer stays a short note)


# PostQued's answer lacked fields this server reads (``missing_fields``); ``answer_fields``: the answer's own
# field names, never values. (A comment, not a docstring: it would repeat in every tool's output schema.)
class Unverified(BaseModel):
    shape_verified: Literal[False] = False
    operation: str
    missing_fields: list[str]
    answer_fields: list[str]


class Checked(BaseModel):
    """A result read from one answer: ``unverified`` is set when that answer lacked an expected field."""

    unverified: Unverified | None = Field(default=None, description="Set when the answer's shape was unexpected.")


T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Listing(Checked, Generic[T]):
    """A list read from one answer."""

    items: list[T] = Field(default_factory=list)


class Found(list[T]):
    """A list read from one answer, carrying that answer's ``unverified`` note (None: every field was there)."""

    def __init__(self, items: Iterable[T] = (), unverified: Unverified | None = None) -> None:
        super().__init__(items)
        self.unverified = unverified


def _present(body: Any, path: list[str]) -> bool:
    if not path:
        return True
    head, rest = path[0], path[1:]
    if head.endswith("[]"):
        value = body.get(head[:-2]) if isinstance(body, Mapping) else None
        return isinstance(value, list) and all(_present(item, rest) for item in value)
    return isinstance(body, Mapping) and head in body and _present(body[head], rest)


def missing_fields(body: Any, expects: Iterable[str]) -> list[str]:
    """The expected paths (``a.b``, ``a[].b``: every item of list ``a``) that ``body`` lacks; null counts as there."""
    return [path for path in expects if not _present(body, path.split("."))]


def field_names(body: Any, prefix: str = "") -> list[str]:
    """Every field name in ``body`` as a path (``a``, ``a.b``, ``a[].c``), names only, at most MAX_NAMES."""
    names: list[str] = []

    def walk(value: Any, at: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if len(names) >= MAX_NAMES:
                    return
                path = f"{at}.{key}" if at else str(key)
                names.append(path)
                walk(inner, path)
        elif isinstance(value, list):
            for item in value[:1]:  # the first item stands for the list's shape
                walk(item, f"{at}[]")

    walk(body, prefix)
    return names


def shape(value: Any) -> Any:
    """``value`` with every leaf replaced by its JSON type name; lists keep only their first item's shape."""
    if isinstance(value, Mapping):
        return {str(k): shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def check(operation: str, body: Any, expects: Iterable[str]) -> Unverified | None:
    """None when ``body`` has every expected field; else the note for the result and ONE warning in the log."""
    missing = missing_fields(body, expects)
    if not missing:
        return None
    log.warning("PostQued's answer to %s lacks the expected field(s) %s", operation, ", ".join(missing))
    return Unverified(operation=operation, missing_fields=missing, answer_fields=field_names(body))


def read_model(model: type[M], data: Mapping[str, Any], operation: str, note: Unverified | None = None) -> M:
    """``data`` as ``model``. A field of the wrong type is left out (and added to ``note``'s missing fields,
    with one WARNING); an answer still unreadable without it (e.g. no id) is BAD_RESPONSE: sent, not refused.
    """
    try:
        found = model.model_validate(data)
        if note is not None and "unverified" in model.model_fields:
            found = found.model_copy(update={"unverified": note})
        return found
    except ValidationError as exc:
        bad = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"] and str(e["loc"][0]) in data})
    log.warning("PostQued's answer to %s has malformed field(s) %s", operation, ", ".join(bad) or "(none)")
    kept = {k: v for k, v in data.items() if k not in bad}
    try:
        found = model.model_validate(kept)
    except ValidationError:
        raise BadResponseError(
            f"PostQued's answer to {operation} lacks what this server needs to read it "
            f"(fields: {', '.join(field_names(data)[:12]) or 'none'})."
        ) from None
    missing = [*(note.missing_fields if note else []), *bad]
    unverified = Unverified(operation=operation, missing_fields=missing, answer_fields=field_names(data))
    if "unverified" in model.model_fields:
        return found.model_copy(update={"unverified": unverified})
    return found
