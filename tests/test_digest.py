"""canonical_json and plan_digest: the same request in any key order has one digest; any change another."""

from __future__ import annotations

import json
import math
import random
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from postqued.digest import canonical_json, plan_digest
from tests.speed import examples

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
bodies = st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=5)


def shuffled(value: Any, rnd: random.Random) -> Any:
    """The same value with every dict's keys in a random insertion order (lists untouched)."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {key: shuffled(value[key], rnd) for key in keys}
    if isinstance(value, list):
        return [shuffled(item, rnd) for item in value]
    return value


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in ``value`` (the root included)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += paths(item, (*prefix, index))
    return out


def get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A deep copy of ``value`` with the thing at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {key: replaced(item, rest, new) if key == head else item for key, item in value.items()}
    return [replaced(item, rest, new) if index == head else item for index, item in enumerate(value)]


@settings(max_examples=examples(150, 30), deadline=None)
@given(body=bodies, rnd=st.randoms(use_true_random=False))
def test_key_order_never_changes_the_digest(body: dict[str, Any], rnd: random.Random) -> None:
    other = shuffled(body, rnd)
    assert canonical_json(other) == canonical_json(body)
    assert plan_digest(other) == plan_digest(body)


@settings(max_examples=examples(150, 30), deadline=None)
@given(body=bodies, data=st.data())
def test_a_changed_leaf_changes_the_digest(body: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from([p for p in paths(body) if p]))
    old = get(body, path)
    new = data.draw(leaves)
    # 0 == False and 0.0 == -0.0 in Python, yet they are different JSON: compare encodings.
    assume(canonical_json(new) != canonical_json(old))
    assert plan_digest(replaced(body, path, new)) != plan_digest(body)


@settings(max_examples=examples(150, 30), deadline=None)
@given(body=bodies, data=st.data())
def test_an_added_or_removed_key_changes_the_digest(body: dict[str, Any], data: st.DataObject) -> None:
    dict_paths = [p for p in paths(body) if isinstance(get(body, p), dict)]
    path = data.draw(st.sampled_from(dict_paths))
    target = get(body, path)
    if target and data.draw(st.booleans()):
        gone = data.draw(st.sampled_from(sorted(target)))
        changed = replaced(body, path, {k: v for k, v in target.items() if k != gone})
    else:
        key = data.draw(st.text(max_size=6).filter(lambda k: k not in target))
        changed = replaced(body, path, {**target, key: data.draw(leaves)})
    assert plan_digest(changed) != plan_digest(body)


@settings(max_examples=examples(150, 30), deadline=None)
@given(body=bodies, data=st.data())
def test_list_order_changes_the_digest(body: dict[str, Any], data: st.DataObject) -> None:
    items = data.draw(st.lists(json_values, min_size=2, max_size=5))
    encodings = [canonical_json(item) for item in items]
    assume(len(set(encodings)) == len(encodings))  # distinct items, so any new order is a real change
    order = data.draw(st.permutations(range(len(items))))
    assume(list(order) != list(range(len(items))))
    key = data.draw(st.text(max_size=6))
    original = {**body, key: items}
    reordered = {**body, key: [items[i] for i in order]}
    assert plan_digest(reordered) != plan_digest(original)


@settings(max_examples=examples(100, 20), deadline=None)
@given(body=bodies)
def test_canonical_json_round_trips(body: dict[str, Any]) -> None:
    encoded = canonical_json(body)
    assert json.loads(encoded) == body
    assert canonical_json(json.loads(encoded)) == encoded


def test_exact_encoding() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": 1e16}, "c": -0.0}
    assert canonical_json(value) == '{"a":{"y":1e+16,"z":"é"},"b":[1,2.5,null,true],"c":-0.0}'.encode()
    assert plan_digest({}) == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def test_mappings_and_tuples_are_plain_json() -> None:
    assert canonical_json(OrderedDict([("b", (1, 2)), ("a", 0)])) == b'{"a":0,"b":[1,2]}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        canonical_json({"a": [1, {"b": bad}]})
    with pytest.raises(ValueError):
        plan_digest({"a": bad})


@pytest.mark.parametrize(
    "bad",
    [datetime(2026, 1, 1, tzinfo=UTC), b"bytes", {1, 2}, object()],
)
def test_non_json_values_are_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": bad})


def test_non_string_keys_are_refused() -> None:
    # {1: x} would silently encode like {"1": x}: two different requests, one digest.
    with pytest.raises(TypeError, match="string keys"):
        canonical_json({"a": {1: "x"}})


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValueError):
        canonical_json({"a": "\ud800"})
