"""``.ci/run`` runs the README's commands exactly as the README writes them, and stops at the first failure."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_every_readme_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run it, test it", 1)[1].split("\n## ", 1)[0]
    commands = [line for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()]
    assert len(commands) == 3, commands  # the demo, the default test run, everything
    assert any(c.endswith("python -m pytest") for c in commands)
    assert any(c.endswith("python -m pytest --run-slow") for c in commands)
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "set -euo pipefail" in script
    assert [c for c in commands if c not in script] == []
