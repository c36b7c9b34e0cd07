"""Shared fixtures: a sandbox on a manual clock, settings confined to tmp_path, the MCP server and a client."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from postqued_mcp.app import build_server
from tests import speed
from tests.openapikit import load_document

# Property tests are reproducible in the default run (HYPOTHESIS_PROFILE=long in the fuzz suites explores).
hypothesis.settings.register_profile("reproducible", derandomize=True, database=None, deadline=None)
hypothesis.settings.load_profile("reproducible")

FIXTURES = Path(__file__).parent / "fixtures" / "media"
SHARED_OPENAPI = Path(__file__).resolve().parents[1].parent / "shared" / "postqued" / "openapi-v2.json"


_LEFT_OUT = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="run everything (what CI runs): the tests marked slow too, and property tests with all their examples",
    )


def pytest_configure(config: pytest.Config) -> None:
    speed.THOROUGH = bool(config.getoption("--run-slow"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --run-slow, the tests marked slow are deselected (and counted in the summary)."""
    if speed.THOROUGH:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
        config.stash[_LEFT_OUT] = len(slow)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if left_out := config.stash.get(_LEFT_OUT, 0):
        terminalreporter.write_line(
            f"{left_out} slow tests left out (and fewer property examples): --run-slow runs all"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Every coroutine test runs under anyio (fixtures and test share one task, as the MCP SDK needs)."""
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """PostQued's OpenAPI document, kept beside the repository (never inside it); the test skips without it."""
    return load_document()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sandbox(clock: ManualClock) -> Iterator[Sandbox]:
    with Sandbox(clock=clock) as sb:
        yield sb


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """An allowed media folder holding copies of the real fixtures."""
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("video.mp4", "image.jpg", "image.png", "rotated.mp4", "video.webm"):
        shutil.copy(FIXTURES / name, folder / name)
    return folder


@pytest.fixture
def settings(tmp_path: Path, media_dir: Path) -> Settings:
    return Settings.build(state_dir=tmp_path / "state", media_dirs=(media_dir,), log_level="WARNING")


def make_client(settings: Settings, sandbox: Sandbox, clock: ManualClock, **client_kw: Any) -> Client:
    return Client(build_server(settings, sandbox=sandbox, clock=clock), **client_kw)


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both the modern handshake and the legacy initialize handshake that current hosts speak."""
    return str(request.param)


@pytest.fixture
async def mcp(settings: Settings, sandbox: Sandbox, clock: ManualClock, mode: str) -> AsyncIterator[Client]:
    async with make_client(settings, sandbox, clock, mode=mode) as client:
        yield client
