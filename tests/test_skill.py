"""The Agent Skill (SKILL.md + references/) stays valid and true to the code.

- The frontmatter passes the Agent Skills reference validator (``skills-ref``), and a copy of the whole
  repository in a folder named after the project (``postqued-mcp``, what a fresh clone is) validates as it
  is; the frontmatter carries the OpenClaw metadata.
- SKILL.md stays within 12,000 characters and states the decision points an agent needs before its first
  call (captions on drafts, drafts vs direct posts vs scheduling, missing accounts, confirmation without
  elicitation, statuses); host set-up and curl live in references/.
- ``references/tools.md`` equals what ``scripts/gen_tools_md.py`` renders from the live ``tools/list``.
- Every tool name and every relative link (with its anchor) mentioned in SKILL.md and references/ exists;
  every client route, error code, rule code, platform and option is documented.
- Every curl example in references/curl.md and references/API.md runs against the sandbox on loopback. Convention:
  fenced ``bash`` blocks are runnable examples and run in document order in one shell (later blocks use
  the variables of earlier ones); commands that must not run here (host set-up, exports) use ``shell``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic.alias_generators import to_camel

from postqued.api.operations import endpoints
from postqued.errors import PostQuedError
from postqued.models import OPTIONS_BY_PLATFORM, PLATFORMS
from postqued.rules import ISSUE_CODES
from postqued.sandbox import SANDBOX_API_KEY, Sandbox, run_in_thread

ROOT = Path(__file__).resolve().parents[1]
SKILL_MD = ROOT / "SKILL.md"
REFERENCES = ROOT / "references"
API_MD = REFERENCES / "API.md"
CURL_MD = REFERENCES / "curl.md"
PLATFORMS_MD = REFERENCES / "platforms.md"
TOOLS_MD = REFERENCES / "tools.md"
DOCS = [SKILL_MD, *sorted(REFERENCES.glob("*.md"))]
SAMPLE_VIDEO = ROOT / "postqued" / "assets" / "sample.mp4"
SAMPLE_IMAGE = ROOT / "tests" / "fixtures" / "media" / "image.jpg"

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
CURL = re.compile(r"(?<![\w-])curl\s+-")
# The first word of every tool name (PostQued's and this server's); a backticked snake_case name that starts
# with one of them is taken as a tool name unless it is a known argument, result field, resource or prompt.
TOOL_VERBS = frozenset(
    {
        "list",
        "get",
        "upload",
        "start",
        "complete",
        "update",
        "delete",
        "publish",
        "wait",
        "cancel",
        "reschedule",
        "create",
        "search",
        "disconnect",
        "reply",
        "comment",
        "set",
        "accept",
        "decline",
        "submit",
        "request",
        "approve",
        "schedule",
        "invite",
        "revoke",
        "remove",
    }
)
# Snake_case words of the platforms that read like tool names (TikTok's fail_reason values).
NOT_TOOLS = frozenset({"publish_cancelled"})
# Codes raised only where no agent sees them (server start-up, internal journal look-ups).
INTERNAL_CODES = frozenset({"NOT_RUNNING", "MISSING_MCP_TOKEN", "JOURNAL_ENTRY_NOT_FOUND"})


# --- helpers ---------------------------------------------------------------------------------------------


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_tools_md", ROOT / "scripts" / "gen_tools_md.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _generator()


@pytest.fixture(scope="module")
def catalog(gen: ModuleType) -> Any:
    """What the live server registers (every toolset, v2 and v1), collected once for this module."""
    return asyncio.run(gen.collect())


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _frontmatter(text: str) -> str:
    assert text.startswith("---\n"), "SKILL.md must start with YAML frontmatter"
    return text.split("---", 2)[1]


def _fences(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The text outside fenced code blocks (links and inline code in prose only)."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(_text(path)), re.M):
        base = _slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        anchors.add(base if count == 0 else f"{base}-{count}")
    return anchors


def _schema_names(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                yield from value
            yield from _schema_names(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _schema_names(value)


def _norm_route(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", text)


# --- frontmatter -----------------------------------------------------------------------------------------


def _assert_valid(skills_ref: ModuleType, folder: Path) -> None:
    """The reference validator, as a library and as ``agentskills validate`` does it."""
    assert skills_ref.validate(folder) == []
    cli = subprocess.run(
        [sys.executable, "-c", "from skills_ref.cli import main; main()", "validate", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr


def test_frontmatter_passes_the_agent_skills_validator(tmp_path: Path) -> None:
    skills_ref = pytest.importorskip("skills_ref")
    skill = tmp_path / "postqued-mcp"
    skill.mkdir()
    shutil.copy(SKILL_MD, skill / "SKILL.md")
    shutil.copytree(REFERENCES, skill / "references")

    _assert_valid(skills_ref, skill)
    props = skills_ref.read_properties(skill)
    assert props.name == "postqued-mcp"
    assert props.license == "MIT"
    assert props.compatibility and len(props.compatibility) <= 500
    description = props.description
    assert len(description) <= 1024
    for word in ("upload", "publish", "schedule", "TikTok", "draft", "accounts", "creator info", "status"):
        assert word.lower() in description.lower(), f"the description should mention {word!r}"


def test_frontmatter_carries_openclaw_metadata_as_block_yaml() -> None:
    strictyaml = pytest.importorskip("strictyaml")  # what skills-ref parses with: no flow style allowed
    data = strictyaml.load(_frontmatter(_text(SKILL_MD))).data
    openclaw = data["metadata"]["openclaw"]
    assert openclaw["requires"]["env"] == ["POSTQUED_API_KEY"]
    assert openclaw["primaryEnv"] == "POSTQUED_API_KEY"


def test_a_fresh_clone_validates_as_it_is(tmp_path: Path) -> None:
    """A clone lands in a folder named after the project; the skill's name must be that name."""
    skills_ref = pytest.importorskip("skills_ref")
    clone = tmp_path / "postqued-mcp"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*", "__pycache__"))
    _assert_valid(skills_ref, clone)


def test_skill_md_stays_a_short_router() -> None:
    text = _text(SKILL_MD)
    assert len(text) <= 12_000, f"SKILL.md has {len(text):,} characters; move details into references/"
    assert "curl -" not in text and "claude_desktop_config" not in text, "curl and host set-up live in references/"


def test_skill_md_states_the_decision_points() -> None:
    prose = " ".join(_prose(_text(SKILL_MD)).split())
    for needed in (
        "Every target needs a `caption`, drafts too",  # point 1
        "Scheduled for later: do not wait",  # point 2
        "pass `confirm=true` in this same call",  # point 3
        "(`confirm` is not part of the plan",
        "`Error executing tool <name>: CODE (HTTP status): message Next step: ...`",  # point 4
        "PostQued documents drafts for no other platform",  # point 5
        'A scheduled post is `intent: "publish"`',
        "tell the user to connect that account in the PostQued app; never post to another account",  # point 6
        "read it only when an argument is refused",  # point 7
        "`pending` (accepted, nothing started)",  # point 9
        "`caption`, `account_username`",
    ):
        assert needed in prose, f"SKILL.md should say: {needed}"
    assert "before calling a tool you have not used" not in prose  # 96 KB of tools.md is not a first read


def test_readme_says_how_to_install_the_skill() -> None:
    readme = _text(ROOT / "README.md")
    assert "postqued-mcp" in readme and "references/setup.md#the-skill" in readme
    assert "## The skill" in _text(REFERENCES / "setup.md")


# --- the tool catalogue ----------------------------------------------------------------------------------


def test_tools_md_matches_the_live_tools_list(gen: ModuleType, catalog: Any) -> None:
    expected = gen.render(catalog)
    assert _text(TOOLS_MD) == expected, "references/tools.md is stale: run python scripts/gen_tools_md.py"


def test_tools_md_lists_every_registered_tool_with_its_toolset(catalog: Any) -> None:
    text = _text(TOOLS_MD)
    for tool in catalog.v2.tools:
        assert f"\n### {tool.name}\n" in text
        toolset = catalog.toolset_of.get(tool.name)
        assert toolset is not None, f"{tool.name} is in no toolset of tools.TOOLSETS"
        assert f"toolset `{toolset}`" in text


def test_every_tool_name_mentioned_exists(catalog: Any) -> None:
    tools = {t.name for t in catalog.v2.tools}
    known = set(tools)
    for tool in catalog.v2.tools:
        known.update(_schema_names(tool.input_schema))
        known.update(_schema_names(tool.output_schema or {}))
    known.update(p.name for p in catalog.v2.prompts)
    known.update(name for model in OPTIONS_BY_PLATFORM.values() for name in model.model_fields)
    known.update(NOT_TOOLS)
    unknown: list[str] = []
    for doc in DOCS:
        for span in re.findall(r"`([^`\n]+)`", _prose(_text(doc))):
            match = re.fullmatch(r"([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(\(.*\))?", span.strip())
            if not match or match.group(1).split("_", 1)[0] not in TOOL_VERBS:
                continue
            name, called = match.group(1), match.group(2) is not None
            if name not in (tools if called else known):
                unknown.append(f"{doc.relative_to(ROOT)}: `{span}`")
    assert not unknown, "names that look like tools but no tool has:\n" + "\n".join(unknown)


def test_skill_md_names_the_whole_chain() -> None:
    prose = _prose(_text(SKILL_MD))
    for tool in (
        "upload_media",
        "list_accounts",
        "get_creator_info",
        "publish_content",
        "wait_for_publish",
        "get_publish_status",
        "list_publish_journal",
        "list_workspaces",
    ):
        assert f"`{tool}" in prose, f"SKILL.md should name {tool}"


# --- links -----------------------------------------------------------------------------------------------


def test_every_relative_link_and_anchor_exists() -> None:
    broken: list[str] = []
    for doc in DOCS:
        for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", _prose(_text(doc))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            path = (doc.parent / file_part).resolve() if file_part else doc
            if not path.is_relative_to(ROOT) or not path.is_file():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file in the skill)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


# --- the references cover the code ---------------------------------------------------------------------


def test_api_md_documents_every_route_the_client_calls() -> None:
    text = _norm_route(_text(API_MD))
    missing = [
        f"{version} {name}: {route.method} {route.path}"
        for version in ("v2", "v1")
        for name, route in endpoints(version).items()
        if f"{route.method} {_norm_route(route.path)}" not in text
    ]
    assert not missing, "routes missing from references/API.md:\n" + "\n".join(missing)


def test_api_md_documents_every_error_and_rule_code() -> None:
    text = _text(API_MD)
    codes = set(ISSUE_CODES)
    stack: list[type[PostQuedError]] = [PostQuedError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls is not PostQuedError:
            codes.add(cls.default_code)
    for folder in ("postqued", "tools", "postqued_mcp"):
        for source in (ROOT / folder).glob("*.py"):
            codes.update(re.findall(r"\bcode=\"([A-Z][A-Z0-9_]+)\"", _text(source)))
    missing = sorted(c for c in codes - INTERNAL_CODES if f"`{c}`" not in text)
    assert not missing, f"codes missing from references/API.md: {missing}"


def test_platforms_md_covers_every_platform_and_option() -> None:
    text = _text(PLATFORMS_MD)
    anchors = _anchors(PLATFORMS_MD)
    missing: list[str] = []
    for platform in PLATFORMS:
        if f"`{platform}`" not in text:
            missing.append(f"platform value {platform}")
        if not any(a == platform or a.startswith(f"{platform}-") for a in anchors):
            missing.append(f"a section for {platform}")
        for name in OPTIONS_BY_PLATFORM[platform].model_fields:
            for spelling in (name, to_camel(name)):
                if f"`{spelling}`" not in text:
                    missing.append(f"{platform} option {spelling}")
    assert not missing, "missing from references/platforms.md:\n" + "\n".join(missing)


# --- the curl examples -----------------------------------------------------------------------------------


def test_every_curl_example_is_a_runnable_bash_block() -> None:
    problems: list[str] = []
    for doc in (SKILL_MD, CURL_MD, API_MD):
        for lang, body in _fences(_text(doc)):
            for line in body.splitlines():
                if not CURL.search(line):
                    continue
                if lang != "bash":
                    problems.append(f"{doc.name}: curl outside a bash block: {line.strip()}")
                elif "--fail-with-body" not in line:
                    problems.append(f"{doc.name}: curl without --fail-with-body: {line.strip()}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", [CURL_MD, API_MD], ids=lambda p: p.name)
def test_curl_examples_run_against_the_sandbox(doc: Path, tmp_path: Path) -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("curl and bash are needed to run the examples")
    blocks = [body for lang, body in _fences(_text(doc)) if lang == "bash"]
    curls = sum(len(CURL.findall(b)) for b in blocks)
    assert curls >= 5, f"{doc.name} should show the chain with curl"
    script = ["set -euo pipefail"]
    for index, body in enumerate(blocks):
        script += [f"echo '::block {index}' >&2", body]
    script.append("echo '::done' >&2")

    shutil.copy(SAMPLE_VIDEO, tmp_path / "clip.mp4")
    shutil.copy(SAMPLE_IMAGE, tmp_path / "photo.jpg")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost",
        "POSTQUED_API_KEY": SANDBOX_API_KEY,
    }
    with Sandbox(processing_seconds=0.0, moderation_seconds=0.0) as sandbox, run_in_thread(sandbox) as base_url:
        env["POSTQUED_BASE_URL"] = base_url
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        markers = re.findall(r"^::block (\d+)$", result.stderr, re.M)
        failed = blocks[int(markers[-1])] if markers else "(before the first block)"
        assert result.returncode == 0 and "::done" in result.stderr, (
            f"{doc.name}: this example failed (exit {result.returncode}):\n{failed}\n"
            f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
        )
        ledger = list(sandbox.ledger)
        assert len(ledger) >= curls, "every curl command should have reached the sandbox"
        refused = [f"{e.method} {e.path} -> {e.status}" for e in ledger if e.status is None or e.status >= 400]
        assert not refused, f"{doc.name}: the sandbox refused requests: {refused}"
        assert not [e for e in ledger if e.route == "storage_put" and e.has_auth], "the API key went to storage"
        statuses = [sandbox.publish_status(pid)["status"] for pid in sandbox.publish_requests]
        assert "completed" in statuses, f"{doc.name}: no example post reached 'completed': {statuses}"
