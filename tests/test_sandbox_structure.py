"""The simulator's structure: its modules import each other in one direction only (no circle, type-only
imports included), and its router serves exactly the operations table."""

from __future__ import annotations

import ast
from pathlib import Path

import postqued.sandbox
from postqued.api.operations import endpoints
from postqued.sandbox.router import ROUTES
from postqued.sandbox.storage import STORAGE_PREFIX

PACKAGE = Path(postqued.sandbox.__file__).parent
PREFIX = "postqued.sandbox"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PREFIX, *parts))


def import_graph() -> dict[str, set[str]]:
    """Module -> the sandbox modules it imports anywhere in its text (module level, functions, TYPE_CHECKING)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from package import module" names a module; "from module import name" the module itself
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_sandbox_has_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 20  # the scan found the package's modules
    assert f"{PREFIX}.world" in graph[f"{PREFIX}.seed"]  # and their imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_world_state_and_handlers_sit_below_the_app() -> None:
    """The world, its records and the handlers never import the app, the Sandbox or the servers."""
    graph = import_graph()
    top = {f"{PREFIX}.{m}" for m in ("app", "core", "server", "transport")} | {PREFIX}

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    lower = [m for m in graph if m.startswith(f"{PREFIX}.handlers") or m.endswith((".world", ".records", ".seed"))]
    assert lower
    for module in lower:
        assert not reach(module) & top, module


def test_the_router_serves_exactly_the_operations_table() -> None:
    """Every operation of every API version, with the table's method, path, bucket and auth; beyond them only
    the simulator's own storage endpoint."""
    served = {(r.version, r.method, r.path): (r.bucket, r.auth) for r in ROUTES}
    expected: dict[tuple[str, str, str], tuple[str | None, bool]] = {
        (version, e.method, e.path): (e.bucket, e.auth) for version in ("v2", "v1") for e in endpoints(version).values()
    }
    expected[("storage", "PUT", f"{STORAGE_PREFIX}{{key:path}}")] = (None, False)
    assert served == expected
    assert len(ROUTES) == len(expected)  # no route twice
