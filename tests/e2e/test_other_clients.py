"""Three real clients of the Responses API and chat streaming that are not OpenAI's SDKs,
from their published packages, against the session's live server:

- the Vercel AI SDK's OpenAI provider (npm ``ai`` + ``@ai-sdk/openai``, pinned in
  tests/node): its own fetch and SSE parser; it found that assistant history sent as
  ``{role, content: [output_text]}`` (no ``type``, ``id``, ``status``, ``annotations``,
  ``logprobs``) was refused, now in spec/leniency.py's table;
- LangChain's ``ChatOpenAI(use_responses_api=True)`` (PyPI ``langchain-openai``): its own
  request shapes (history, tools, tool results as items);
- LiteLLM as a client (PyPI ``litellm``, in its own venv: it needs ``openai`` < 3, this
  project's tests use 3; the Makefile's LITELLM_VENV, shared with the pool bench).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

from tests.conftest import MODEL

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
LITELLM_PYTHON = Path(os.environ.get("LITELLM_VENV", ROOT / ".bench-litellm")) / "bin" / "python"


def test_the_vercel_ai_sdk_streams_responses_sends_history_and_tools_and_streams_chat(server):
    assert shutil.which("node") and (NODE_DIR / "node_modules" / "ai").is_dir(), "run `make test` (it installs tests/node)"
    result = subprocess.run(
        ["node", "ai_sdk.mjs", server.api, MODEL], cwd=NODE_DIR, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(seen["responsesDeltas"]) >= 3 and seen["responsesUsage"]["outputTokens"] > 0
    assert seen["responsesFinish"] in ("stop", "length")
    assert seen["historyResponseId"].startswith("resp_")
    assert seen["historyToolCalls"] and seen["historyToolCalls"][0]["name"] == "get_weather"
    assert len(seen["chatDeltas"]) >= 2 and seen["chatUsage"]["outputTokens"] > 0


def test_langchain_chat_openai_on_the_responses_api(server):
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(location: str) -> str:
        """Get the current weather for a location."""
        return "sunny"

    llm = ChatOpenAI(model=MODEL, base_url=server.api, api_key="anything", use_responses_api=True, max_tokens=48)
    answer = llm.invoke([HumanMessage("My name is Alice."), AIMessage("Hello Alice!"), HumanMessage("What is my name?")])
    assert answer.text and answer.response_metadata["id"].startswith("resp_") and answer.usage_metadata["output_tokens"] > 0

    streamed = list(llm.stream("Count from 1 to 5."))
    assert len(streamed) >= 3 and "".join(chunk.text for chunk in streamed)

    # Greedy: sampled arguments can ramble past max_tokens (1 in 40 did), leaving an incomplete call.
    greedy = ChatOpenAI(model=MODEL, base_url=server.api, api_key="anything", use_responses_api=True, max_tokens=48, temperature=0)
    call = greedy.bind_tools([get_weather], tool_choice="get_weather").invoke("What's the weather in Paris?")
    [tool_call] = call.tool_calls
    assert tool_call["name"] == "get_weather" and "location" in tool_call["args"]
    # The call and its result go back as items (function_call, function_call_output).
    after = llm.bind_tools([get_weather]).invoke(
        [HumanMessage("What's the weather in Paris?"), call, ToolMessage("sunny", tool_call_id=tool_call["id"])]
    )
    assert after.response_metadata["status"] in ("completed", "incomplete")

    chat = ChatOpenAI(model=MODEL, base_url=server.api, api_key="anything", max_tokens=8, stream_usage=True)
    chunks = list(chat.stream("Say hello."))
    assert len(chunks) >= 3 and any(chunk.usage_metadata for chunk in chunks)


LITELLM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import litellm
    base, model = sys.argv[1], sys.argv[2]
    seen = {}
    chunks = list(litellm.completion(model="openai/" + model, api_base=base, api_key="x", stream=True,
                                     messages=[{"role": "user", "content": "Say hello."}], max_tokens=8))
    seen["chat"] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    response = litellm.responses(model="openai/" + model, api_base=base, api_key="x", input="Say hello.",
                                 max_output_tokens=16)
    seen["response_id"] = response.id
    seen["response_text"] = response.output[0].content[0].text
    events = list(litellm.responses(model="openai/" + model, api_base=base, api_key="x", stream=True,
                                    input="Count from 1 to 5.", max_output_tokens=16))
    seen["event_types"] = [e.type for e in events]
    print(json.dumps(seen))
    """
)


def test_litellm_as_a_client_streams_chat_and_makes_and_streams_responses(server):
    assert LITELLM_PYTHON.exists(), "run `make test` (it installs LiteLLM in its own venv)"
    result = subprocess.run(
        [str(LITELLM_PYTHON), "-c", LITELLM_SCRIPT, server.api, MODEL],
        capture_output=True, text=True, timeout=240, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["chat"] and seen["response_id"].startswith("resp_") and seen["response_text"]
    assert seen["event_types"][0] == "response.created" and seen["event_types"][-1] in ("response.completed", "response.incomplete")
    assert "response.output_text.delta" in seen["event_types"]
