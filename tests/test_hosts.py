"""What a host installs is what works: the MCP Bundle, the registry entry, the README's host snippets.

- ``manifest.json`` passes ``mcpb validate``; ``scripts/build_bundle.sh`` (the documented command) packs a
  bundle holding what ``uv run server.py`` needs and nothing private; the bundle's command line, as the
  host resolves it (mcpb's own ``getMcpConfigForManifest``), starts the server, and the media folders the
  user picked are the ones uploads may read. ``uv`` itself is replaced by this interpreter: the test may
  not download the dependencies ``uv`` would.
- ``server.json`` passes the MCP Registry's published schema and publishing rules (``skillsaw``, which
  ships them offline), and agrees with pyproject.toml, manifest.json and the README's ``mcp-name``.
- The README's JSON for Claude Desktop, Cursor and VS Code and the ``claude mcp add`` line parse, and each
  command line starts the server (``--sandbox``) and lists its tools.

The Node tools come from ``scripts/install_node_tools.sh``; without them those tests skip, saying why.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.nodetools import REPO, TOOLS, node_tool, node_tool_env

MANIFEST = json.loads((REPO / "manifest.json").read_text(encoding="utf-8"))
SERVER_JSON = json.loads((REPO / "server.json").read_text(encoding="utf-8"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
README = (REPO / "README.md").read_text(encoding="utf-8")
FIXTURES = Path(__file__).parent / "fixtures" / "media"


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=node_tool_env(), **kwargs)


# --- the MCP Bundle ----------------------------------------------------------------------------------


def test_manifest_agrees_with_the_package() -> None:
    assert MANIFEST["name"] == PYPROJECT["project"]["name"]
    assert MANIFEST["version"] == PYPROJECT["project"]["version"]
    config = MANIFEST["user_config"]
    assert config["api_key"]["sensitive"] is True and config["api_key"]["type"] == "string"
    assert config["media_dirs"]["type"] == "directory" and config["media_dirs"]["multiple"] is True
    assert {"api_key", "media_dirs", "confirm"} <= config.keys()
    env = MANIFEST["server"]["mcp_config"]["env"]
    assert env["POSTQUED_API_KEY"] == "${user_config.api_key}" and env["POSTQUED_CONFIRM"] == "${user_config.confirm}"


def test_mcpb_validates_the_manifest() -> None:
    out = run([*node_tool("mcpb"), "validate", str(REPO / "manifest.json")])
    assert out.returncode == 0 and "passes" in out.stdout, out.stdout + out.stderr


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle built by the documented command, unpacked."""
    node_tool("mcpb")  # skips when missing
    out_dir = tmp_path_factory.mktemp("bundle")
    built = out_dir / "postqued-mcp.mcpb"
    out = run(["bash", str(REPO / "scripts" / "build_bundle.sh"), str(built)], cwd=REPO)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    unpacked = out_dir / "unpacked"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(unpacked)
    return unpacked


def test_the_bundle_holds_the_package_and_nothing_private(bundle: Path) -> None:
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert {"manifest.json", "pyproject.toml", "README.md", MANIFEST["server"]["entry_point"]} <= files
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    for path in wheel.get("only-include", wheel.get("packages", [])):  # what the package build needs
        assert path in files or any(f.startswith(f"{path}/") for f in files), path
    for private in ("tests/", ".venv/", ".node-tools/", ".git/", ".env", "bench/", "__pycache__/"):
        assert not any(f == private or f.startswith(private) or f"/{private}" in f"/{f}" for f in files), private
    assert json.loads((bundle / "manifest.json").read_text()) == MANIFEST


def host_config(bundle: Path, user_config: dict[str, Any], home: Path) -> dict[str, Any]:
    """The command line Claude Desktop builds from the manifest (mcpb's own getMcpConfigForManifest)."""
    script = """
        import { readFileSync } from "node:fs";
        import { pathToFileURL } from "node:url";
        const [lib, dir, userConfig, home] = process.argv.slice(1);
        const { getMcpConfigForManifest } = await import(pathToFileURL(lib).href);
        const manifest = JSON.parse(readFileSync(dir + "/manifest.json", "utf8"));
        const systemDirs = { HOME: home, DESKTOP: home + "/Desktop", DOCUMENTS: home + "/Documents",
                             DOWNLOADS: home + "/Downloads" };
        const config = await getMcpConfigForManifest({ manifest, extensionPath: dir, systemDirs,
            userConfig: JSON.parse(userConfig), pathSeparator: "/" });
        console.log(JSON.stringify(config));
    """
    runtime = node_tool("mcpb")[0]
    lib = (TOOLS / "@anthropic-ai" / "mcpb" / "dist" / "index.js").resolve()
    out = run([runtime, "--input-type=module", "-e", script, str(lib), str(bundle), json.dumps(user_config), str(home)])
    assert out.returncode == 0 and out.stdout.strip(), out.stderr[-2000:]
    config: dict[str, Any] = json.loads(out.stdout)
    return config


async def test_the_bundle_command_line_starts_the_server_with_the_users_folders(bundle: Path, tmp_path: Path) -> None:
    chosen, other = tmp_path / "Clips", tmp_path / "Elsewhere"
    for folder in (chosen, other):
        folder.mkdir()
        shutil.copy(FIXTURES / "video.mp4", folder / "clip.mp4")
    user = {"api_key": "pq_" + "k" * 40, "media_dirs": [str(chosen)]}  # the rest: the manifest's defaults
    config = host_config(bundle, user, tmp_path)
    args = config["args"]
    assert config["command"] == "uv" and args[:3] == ["run", "--directory", str(bundle)], config
    assert args[3] == MANIFEST["server"]["entry_point"] and args[-2:] == ["--media-dirs", str(chosen)]
    assert config["env"]["POSTQUED_API_KEY"] == user["api_key"] and config["env"]["POSTQUED_CONFIRM"] == "direct"
    # `uv run --directory D server.py ...` is `python server.py ...` in D with the project installed
    env = {**config["env"], "POSTQUED_SANDBOX": "true", "POSTQUED_STATE_DIR": str(tmp_path / "state")}
    params = StdioServerParameters(command=sys.executable, args=args[3:], env=env, cwd=str(bundle))
    async with Client(params, mode="legacy") as client:  # the handshake today's hosts use
        tools = {t.name for t in (await client.list_tools()).tools}
        inside = await client.call_tool("upload_media", {"path": str(chosen / "clip.mp4")})
        outside = await client.call_tool("upload_media", {"path": str(other / "clip.mp4")})
    assert {"upload_media", "publish_content"} <= tools
    assert not inside.is_error, inside.content
    assert outside.is_error and "POSTQUED_MEDIA_DIRS" in str(outside.content)


# --- the MCP Registry entry ---------------------------------------------------------------------------


def test_server_json_passes_the_registry_schema_and_rules(tmp_path: Path) -> None:
    shutil.copy(REPO / "server.json", tmp_path / "server.json")
    out = subprocess.run(
        [sys.executable, "-m", "skillsaw", "lint", "--strict", "--type", "mcp-registry", "--no-progress", tmp_path],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and "mcp-registry" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]


def test_server_json_agrees_with_the_package_the_bundle_and_the_readme() -> None:
    (package,) = SERVER_JSON["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == PYPROJECT["project"]["name"]
    assert package["transport"] == {"type": "stdio"}
    assert SERVER_JSON["version"] == package["version"] == PYPROJECT["project"]["version"] == MANIFEST["version"]
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert variables["POSTQUED_API_KEY"]["isSecret"] is True and variables["POSTQUED_API_KEY"]["isRequired"] is True
    assert [name for name, v in variables.items() if v.get("isSecret")] == ["POSTQUED_API_KEY"]
    assert variables["POSTQUED_CONFIRM"]["choices"] == ["direct", "all", "never"]
    # the registry proves PyPI ownership by this marker in the package's README
    assert f"mcp-name: {SERVER_JSON['name']}" in README


# --- the README's host snippets -----------------------------------------------------------------------


def snippet(host: str, language: str) -> str:
    """The first fenced block of ``language`` after the README's bold ``host`` label."""
    match = re.search(rf"\*\*{re.escape(host)}\*\*[^\n]*\n+```{language}\n(.*?)\n```", README, re.S)
    assert match, f"README has no {language} snippet for {host}"
    return match.group(1)


def stdio_entries() -> list[tuple[str, dict[str, Any]]]:
    desktop = json.loads(snippet("Claude Desktop", "json"))["mcpServers"]["postqued"]
    cursor = json.loads(snippet("Cursor", "json"))["mcpServers"]["postqued"]
    vscode_doc = json.loads(snippet("VS Code", "json"))
    vscode = vscode_doc["servers"]["postqued"]
    inputs = {i["id"] for i in vscode_doc.get("inputs", [])}
    for value in vscode.get("env", {}).values():  # every ${input:x} it uses is declared
        assert set(re.findall(r"\$\{input:([^}]+)\}", value)) <= inputs
    assert vscode["type"] == "stdio"
    words = shlex.split(snippet("Claude Code", "bash"))
    assert words[:4] == ["claude", "mcp", "add", "postqued"] and "--" in words
    env = dict(w.split("=", 1) for w in words[words.index("--env") + 1 : words.index("--")][::2] if "=" in w)
    code = {"command": words[words.index("--") + 1], "args": words[words.index("--") + 2 :], "env": env}
    return [("Claude Desktop", desktop), ("Cursor", cursor), ("VS Code", vscode), ("Claude Code", code)]


@pytest.mark.parametrize("host", ["Claude Desktop", "Cursor", "VS Code", "Claude Code"])
async def test_each_readme_snippet_starts_the_server(host: str, tmp_path: Path) -> None:
    entry = dict(stdio_entries())[host]
    assert entry["command"] == "uvx" and entry["args"][0] == "postqued-mcp", entry
    assert entry.get("env", {}).get("POSTQUED_API_KEY"), "each snippet shows where the key goes"
    # `uvx postqued-mcp` runs the package's console script; the installed one is the same program
    script = Path(sys.executable).with_name("postqued-mcp")
    env = {**entry.get("env", {}), "POSTQUED_STATE_DIR": str(tmp_path / "state")}
    params = StdioServerParameters(
        command=str(script), args=[*entry["args"][1:], "--sandbox"], env=env, cwd=str(tmp_path)
    )
    async with Client(params, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        accounts = await client.call_tool("list_accounts", {})
    assert "publish_content" in names and not accounts.is_error, accounts.content
