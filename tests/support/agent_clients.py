"""The coding agents a user points at this service (issue #49), each run headless as a new user
would: installed from its registry (npm in tests/node, aider in its own venv, .agents-venv),
pointed at a server with only its documented base-URL settings, in a home of its own under the
test's folder (never the real home), its stdin closed.

Each function runs one turn (``prompt``) in ``workdir`` and returns the finished process;
``extra`` are the client's own options a test adds (the local turns shrink each client's
prompt with them: tests/e2e/test_agent_clients.py says why). What each client needs beyond
the base URL, and why, is commented where it is set: the switches that keep a run off the
network (update checks, model catalogues, plugin installs), which these clients try at start.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "tests" / "node" / "node_modules" / ".bin"
AIDER = Path(os.environ.get("AGENTS_VENV", ROOT / ".agents-venv")) / "bin" / "aider"
KEY = "sk-agents-7f2"
TIMEOUT = 180


def run(argv: list[str], workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    assert Path(argv[0]).exists(), f"{argv[0]} is missing: run `make test` (it installs the clients)"
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), **env}
    return subprocess.run(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)


def codex(api: str, model: str, workdir: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess:
    """``codex exec``: a provider in ``$CODEX_HOME/config.toml`` (Responses, its only wire now)."""
    codex_home = workdir / "home" / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "llm-backend"\n\n[model_providers.llm-backend]\n'
        f'name = "llm-backend"\nbase_url = "{api}"\nwire_api = "responses"\nenv_key = "LLM_BACKEND_API_KEY"\n'
    )
    # Its commands run unsandboxed in the test's folder: Codex's Linux sandbox (bubblewrap) needs
    # user namespaces, which a CI container may not give.
    argv = [str(BIN / "codex"), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", *extra, prompt]
    return run(argv, workdir, {"CODEX_HOME": str(codex_home), "LLM_BACKEND_API_KEY": KEY})


def codex_openai(api: str, model: str, workdir: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess:
    """``codex exec`` with its built-in OpenAI provider pointed here (``openai_base_url``), as a
    user who changes only the base URL runs it: the Responses WebSocket mode, the items' own
    metadata, and compaction as a ``compaction_trigger`` item (``remote_compaction_v2``)."""
    codex_home = workdir / "home" / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    argv = [str(BIN / "codex"), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
            "-m", model, "-c", f"openai_base_url={api}", *extra, prompt]
    return run(argv, workdir, {"CODEX_HOME": str(codex_home), "CODEX_API_KEY": KEY})


def codex_shrunk(folder: Path, instructions: str) -> list[str]:
    """Codex's own options for a prompt a small model can take: its instructions replaced by
    ``instructions`` (written in ``folder``), its context switches off, its tool features
    disabled (tests/e2e/test_agent_clients.py says why)."""
    (folder / "instructions.md").write_text(instructions)
    return [
        "-c", f"model_instructions_file={folder / 'instructions.md'}", "-c", "include_permissions_instructions=false",
        "-c", "include_environment_context=false", "-c", "include_apps_instructions=false",
        "-c", "skills.include_instructions=false", "-c", "web_search=disabled",
        *[arg for feature in ("multi_agent", "goals", "view_image", "unified_exec", "shell_tool", "apps", "plugins")
          for arg in ("--disable", feature)],
    ]


def opencode(
    api: str, model: str, workdir: Path, prompt: str, *extra: str, agents: dict | None = None, builtin: bool = False
) -> subprocess.CompletedProcess:
    """``opencode run``: a provider of the AI SDK's openai-compatible kind in ``opencode.json``
    (chat completions); with ``builtin``, its own ``openai`` provider given this ``baseURL``
    (the Responses API, as it talks to OpenAI)."""
    options = {"baseURL": api, "apiKey": KEY}
    provider = {"openai": {"options": options, "models": {model: {}}}} if builtin else {
        "llm-backend": {"npm": "@ai-sdk/openai-compatible", "name": "llm-backend", "options": options, "models": {model: {}}}
    }
    config = {"provider": provider, "model": f"{next(iter(provider))}/{model}", "agent": agents or {}}
    (workdir / "opencode.json").write_text(json.dumps(config))
    env = {
        # Off the network: models.dev's catalogue, the update check, and the npm install of its
        # plugin package into the config folder (it goes on without it: a warning in its log).
        "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1", "OPENCODE_DISABLE_SHARE": "1", "npm_config_offline": "true",
    }
    return run([str(BIN / "opencode"), "run", "--pure", *extra, prompt], workdir, env)


def qwen(api: str, model: str, workdir: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess:
    """Qwen Code: ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``OPENAI_MODEL`` and ``--auth-type openai``.
    The prompt goes first: its list options (``--exclude-tools``) would take it as one more item."""
    env = {"OPENAI_BASE_URL": api, "OPENAI_API_KEY": KEY, "OPENAI_MODEL": model,
           "QWEN_CODE_SUPPRESS_YOLO_WARNING": "1"}
    return run([str(BIN / "qwen"), prompt, "--auth-type", "openai", *extra], workdir, env)


def continue_cli(api: str, model: str, workdir: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess:
    """Continue's ``cn -p``: a model of provider ``openai`` with its ``apiBase`` in a config file."""
    config = workdir / "continue.yaml"
    config.write_text(
        "name: llm-backend\nversion: 0.0.1\nschema: v1\nmodels:\n"
        f"  - name: {model}\n    provider: openai\n    model: {model}\n    apiBase: {api}\n"
        f"    apiKey: {KEY}\n    roles: [chat]\n"
    )
    return run([str(BIN / "cn"), "-p", "--config", str(config), *extra, prompt], workdir, {})


def aider(api: str, model: str, workdir: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess:
    """``aider --message``: ``--openai-api-base`` and ``--model openai/<id>``. Its model metadata
    file (its documented way to describe a model it does not know) keeps it from fetching
    LiteLLM's price list from GitHub at start; no git, update check or analytics."""
    metadata = workdir / "aider-models.json"
    metadata.write_text(json.dumps({f"openai/{model}": {
        "max_input_tokens": 2048, "max_output_tokens": 512, "input_cost_per_token": 0, "output_cost_per_token": 0,
        "litellm_provider": "openai", "mode": "chat"}}))
    argv = [str(AIDER), "--openai-api-base", api, "--openai-api-key", KEY, "--model", f"openai/{model}",
            "--model-metadata-file", str(metadata), "--no-git", "--no-check-update", "--analytics-disable",
            "--no-show-release-notes", "--no-pretty", "--no-fancy-input", "--yes-always", "--map-tokens", "0",
            *extra, "--message", prompt]
    return run(argv, workdir, {})
