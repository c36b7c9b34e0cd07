"""The wheel installs only uniquely named packages, and what it installs runs on its own.

The repository keeps ``server.py`` and ``tools/`` at its top (the skill folder's layout); the wheel must carry
``postqued`` and ``postqued_mcp`` (with the tools as ``postqued_mcp.tools``) and never a generic top-level
``server`` or ``tools`` that would collide with other distributions in site-packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as ``pip install .`` builds it (the PEP 517 hook of the project's backend, no network)."""
    out = tmp_path_factory.mktemp("dist")
    code = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"
    built = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return out / built.stdout.strip().splitlines()[-1]


def test_wheel_installs_only_uniquely_named_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"postqued", "postqued_mcp", "postqued_mcp-0.1.0.dist-info"}, top
    # the tools come from the repository's tools/, under the package's name
    expected = {p.name for p in (ROOT / "tools").glob("*.py")}
    assert {Path(n).name for n in names if n.startswith("postqued_mcp/tools/")} == expected
    assert "postqued/assets/sample.mp4" in names
    entry_points = zipfile.ZipFile(wheel).read("postqued_mcp-0.1.0.dist-info/entry_points.txt").decode()
    assert "postqued-mcp = postqued_mcp.cli:main" in entry_points


@pytest.mark.slow  # a demo in a fresh process from the unpacked wheel: --run-slow
def test_the_unpacked_wheel_runs_the_demo_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    """``postqued-mcp demo`` from the wheel's files alone: no module is loaded from the checkout."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys\n"
        "from postqued_mcp.cli import main\n"
        "status = main(['demo'])\n"
        "ours = {n: m.__file__ for n, m in list(sys.modules.items()) if n.split('.')[0] in "
        "('postqued', 'postqued_mcp', 'tools', 'server')}\n"
        "print('MODULES', sorted({n.split('.')[0] for n in ours}), file=sys.stderr)\n"
        f"outside = [f for f in ours.values() if f is None or not f.startswith({str(site)!r})]\n"
        "print('OUTSIDE', outside, file=sys.stderr)\n"
        "raise SystemExit(status)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTQUED_")}
    env["PYTHONPATH"] = str(site)  # ahead of site-packages, where the editable checkout is
    env["POSTQUED_STATE_DIR"] = str(tmp_path / "state")
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "demo passed" in run.stdout
    assert "MODULES ['postqued', 'postqued_mcp']" in run.stderr, run.stderr  # no top-level tools or server
    assert "OUTSIDE []" in run.stderr, run.stderr
