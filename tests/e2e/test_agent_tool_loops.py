"""The coding agents' tool loops through a pure gateway (issue #49, item 6): Codex CLI, opencode,
Qwen Code and Continue, each with its whole default prompt (6-15k tokens: no prefill, the
upstream answers at once) and only its documented base-URL settings
(tests/support/agent_clients.py). The upstream answers with a recorded call of the client's
own shell tool (no GGUF here is tool-trained: tests/support/recorded_upstream.py); the client
runs it, sends its output back, and ends the loop with the recorded answer. Codex's Responses
are served by the gateway over the upstream's chat completions (``responses: local``).

aider sends no tools: its loop is its own edit format, a recorded answer in aider's ``whole``
format (a file name, the file's content fenced) that aider applies by writing the file.
Their turns on the local model are in test_agent_clients.py.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support import agent_clients as agents
from tests.support.clients import keyed_server
from tests.support.recorded_upstream import RecordedUpstream

# The name each client gives its shell tool: one upstream answers them all, each with its own proof.
SHELLS = {"codex": "exec_command", "opencode": "bash", "qwen": "run_shell_command", "continue": "Bash"}


@pytest.fixture(scope="module")
def marker():
    return f"loop-{uuid.uuid4().hex[:8]}"


def proof(marker: str, client: str) -> str:
    return f"echo {marker}-{client} | tee proof.txt"


@pytest.fixture(scope="module")
def recorded(marker):
    calls = {
        "exec_command": {"cmd": proof(marker, "codex")},
        "shell": {"command": ["bash", "-lc", proof(marker, "codex")]},  # Codex's other shell tool
        "bash": {"command": proof(marker, "opencode"), "description": "Write the proof file"},
        "run_shell_command": {"command": proof(marker, "qwen"), "description": "Write the proof file"},
    }
    with RecordedUpstream("Bash", {"command": proof(marker, "continue")}, final=f"Loop done ({marker}).", others=calls) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def editor(marker):
    """aider's upstream: its answer, an edit in aider's ``whole`` format (file name, fenced content)."""
    with RecordedUpstream("-", {}, final="-", side=f"proof.txt\n```\n{marker}-aider\n```\n") as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(recorded, editor, tmp_path_factory):
    config = (f"upstreams:\n  - name: recorded\n    base_url: {recorded.api}\n    api_key: sk-upstream\n"
              "    models: [coder]\n    responses: local\n"
              f"  - name: editor\n    base_url: {editor.api}\n    api_key: sk-upstream\n    models: [editor]\n")
    with keyed_server(tmp_path_factory.mktemp("gateway"), [agents.KEY], env={"LLM_BACKEND_LOCAL_MODELS": "false"}, config=config) as live:
        yield live


@pytest.mark.parametrize("client", ["codex", "opencode", "qwen", "continue"])
def test_agent_runs_a_recorded_tool_call_through_the_gateway(client, gateway, recorded, marker, tmp_path):
    permission = {"qwen": ["--yolo"], "continue": ["--allow", "Bash"]}.get(client, [])
    run = {"codex": agents.codex, "opencode": agents.opencode, "qwen": agents.qwen, "continue": agents.continue_cli}[client]
    before = len(recorded.requests)
    done = run(gateway.api, "coder", tmp_path, "Write the proof file.", *permission)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "proof.txt").read_text().strip() == f"{marker}-{client}"  # the client ran the call
    chats = [body for path, body in recorded.requests[before:] if path == "/v1/chat/completions"]
    # Its whole prompt went through: its tools, its shell among them (Codex's translated from Responses).
    first = next(body for body in chats if body.get("tools"))
    assert len(first["tools"]) >= 5 and SHELLS[client] in [tool["function"]["name"] for tool in first["tools"]]
    # The call's output came back as a tool message answering it, and the loop ended.
    last = next(body for body in chats if body["messages"][-1]["role"] == "tool")
    assert last["messages"][-2]["tool_calls"][0]["function"]["name"] == SHELLS[client]
    assert f"{marker}-{client}" in json.dumps(last["messages"][-1])
    assert f"Loop done ({marker})." in done.stdout
    if client == "codex":
        assert '"path": "/v1/responses", "status": 200' in gateway.log_path.read_text()


def test_aider_applies_a_recorded_edit_through_the_gateway(gateway, editor, marker, tmp_path):
    done = agents.aider(gateway.api, "editor", tmp_path, "Write proof.txt.")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "proof.txt").read_text().strip() == f"{marker}-aider"  # aider applied the answer's edit
    [chat] = editor.chats()
    assert chat["messages"][-1]["role"] == "user" and "Write proof.txt." in json.dumps(chat["messages"][-1])
