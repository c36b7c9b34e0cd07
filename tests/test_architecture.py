"""The direction of imports and the size of the server's modules.

Imports flow one way: command line and transports -> MCP tools -> core (``postqued``, which never imports
``mcp``). The contracts live in pyproject.toml (``[tool.importlinter]``) and are checked here by import-linter.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600


def test_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    # import-linter's command line calls logging.config.dictConfig, which disables every logger that exists;
    # put them back so later tests (test_secrets reads the real log output) see the logging they set up.
    loggers = [x for x in logging.root.manager.loggerDict.values() if isinstance(x, logging.Logger)]
    disabled = [x.disabled for x in loggers]
    try:
        status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    finally:
        for logger, was in zip(loggers, disabled, strict=True):
            logger.disabled = was
    out = capsys.readouterr().out
    assert status == 0, out
    assert "4 kept, 0 broken" in out, out


@pytest.mark.parametrize("folder", ["postqued_mcp", "tools"])
def test_server_modules_have_one_job_each(folder: str) -> None:
    """No module of the server package or of the tools is over 600 lines."""
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / folder).glob("*.py")}
    assert sizes
    assert not {name: n for name, n in sizes.items() if n > MAX_LINES}, sizes


def test_test_modules_do_not_import_each_other() -> None:
    """Shared helpers live in support modules (tests/*kit.py, conftest.py), never in another test module."""
    offenders = {}
    for module in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        if bad := [n for n in names if n.startswith("tests.test_") or n.startswith("test_")]:
            offenders[module.name] = bad
    assert not offenders
