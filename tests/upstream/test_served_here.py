"""One predicate for "served here" (``Backend.serving``): whatever this service's own code
answers gets the local rules - unknown fields refused in OpenAI's words, llama.cpp's
extensions range-checked - however the model is reached: pooled (any model with
``fallbacks`` is a pool), or an upstream's model whose Responses are made here
(``responses: local``). Before, only membership of the local backends counted, so such
requests dropped unknown fields silently.

The server runs the real default model, pooled by its fallbacks, and the session's live
server as an upstream; the official SDK sends the requests."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS, sdk
from tests.support.server import LiveServer

REMOTE = "remote-smol"  # the upstream's model, Responses made here over its chat


@pytest.fixture(scope="module")
def pooled(server, tmp_path_factory) -> LiveServer:
    config = f"""
upstream_catch_all: false
upstreams:
  - name: remote
    base_url: {server.api}
    models: [{REMOTE}]
    aliases: {{{REMOTE}: {MODEL}}}
    responses: local
fallbacks:
  {MODEL}: [{REMOTE}]
"""
    with LiveServer(tmp_path_factory.mktemp("served-here"), config=config) as live:
        yield live


@pytest.fixture(scope="module")
def client(pooled) -> openai.OpenAI:
    return sdk(pooled)


def test_the_model_with_fallbacks_is_a_pool(pooled):
    import httpx

    statuses = httpx.get(pooled.base_url + "/admin/models", verify=TLS).json()["data"]
    assert next(s for s in statuses if s["id"] == MODEL)["fallbacks"] == [REMOTE]


def test_an_unknown_field_for_a_pooled_local_model_is_openais_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, extra_body={"foo_unknown": 1}
        )
    assert caught.value.body["message"] == "Unrecognized request argument supplied: foo_unknown"


def test_llamas_extensions_are_range_checked_for_a_pooled_local_model(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, extra_body={"top_k": -1}
        )
    assert caught.value.body["param"] == "top_k"
    honoured = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, extra_body={"top_k": 5}
    )
    assert honoured.choices[0].message.content is not None


def test_an_unknown_field_of_a_response_made_here_for_an_upstream_model_is_openais_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=REMOTE, input="Hi", max_output_tokens=16, extra_body={"foo_unknown": 1})
    assert (caught.value.body["param"], caught.value.body["code"]) == ("foo_unknown", "unknown_parameter")
    made = client.responses.create(model=REMOTE, input="Say hi.", max_output_tokens=16)
    assert made.status in ("completed", "incomplete") and made.output_text


def test_the_upstream_models_chat_completions_stay_relayed_with_their_fields(client):
    # Relayed: the upstream (this service with a local model) answers the unknown field itself.
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=REMOTE, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, extra_body={"foo_unknown": 1}
        )
    assert caught.value.response.headers.get("x-upstream-request-id", "").startswith("req_")


def test_a_pooled_local_model_counts_input_tokens(client):
    counted = client.responses.input_tokens.count(model=MODEL, input="How many tokens is this?")
    assert counted.input_tokens > 5


def test_truncation_auto_for_an_upstream_model_whose_context_is_unknown_is_a_400_naming_it(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=REMOTE, input="Hi", max_output_tokens=16, truncation="auto")
    assert (caught.value.body["param"], caught.value.body["code"]) == ("truncation", "unsupported_parameter")
