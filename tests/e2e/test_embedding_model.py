"""The retrieval embedding model (all-MiniLM-L6-v2) served under /v1/embeddings, through
the official SDK against a live server."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

from tests.support.clients import TLS
from tests.support.embedding import shared_embedder

EMBEDDING_MODEL = "all-minilm-l6-v2"
TEXTS = ["A man is eating food.", "A man is eating a piece of bread."]


def test_the_embedding_model_is_listed(client):
    assert EMBEDDING_MODEL in {model.id for model in client.models.list()}
    assert client.models.retrieve(EMBEDDING_MODEL).owned_by == "llm-backend:local"


def test_embeddings_are_384_normalised_dimensions_equal_to_the_retrieval_embedders(client):
    answer = client.embeddings.create(model=EMBEDDING_MODEL, input=TEXTS, encoding_format="float")
    vectors = np.array([item.embedding for item in answer.data], dtype=np.float32)
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors, shared_embedder().embed(TEXTS), atol=1e-5)
    assert answer.model == EMBEDDING_MODEL and answer.usage.prompt_tokens == answer.usage.total_tokens > 10
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.755, abs=0.01)  # the model card's pair


def test_base64_embeddings_decode_to_the_float_ones(client):
    floats = client.embeddings.create(model=EMBEDDING_MODEL, input="hello", encoding_format="float").data[0].embedding
    raw = client.embeddings.with_raw_response.create(model=EMBEDDING_MODEL, input="hello", encoding_format="base64")
    encoded = raw.http_response.json()["data"][0]["embedding"]
    assert np.allclose(np.frombuffer(base64.b64decode(encoded), dtype="<f4"), floats, atol=1e-6)


def test_dimensions_may_only_be_the_models_own(client):
    assert len(client.embeddings.create(model=EMBEDDING_MODEL, input="x", dimensions=384).data[0].embedding) == 384
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMBEDDING_MODEL, input="x", dimensions=128)
    assert caught.value.body["param"] == "dimensions"


def test_token_ids_are_openais_read_as_text_and_empty_strings_are_refused(client):
    from llm_backend.openai_tokens import encoding

    by_ids = client.embeddings.create(model=EMBEDDING_MODEL, input=[encoding().encode(text) for text in TEXTS]).data
    by_text = client.embeddings.create(model=EMBEDDING_MODEL, input=TEXTS).data
    assert np.allclose([item.embedding for item in by_ids], [item.embedding for item in by_text], atol=1e-5)
    for bad, param in (([[9906], [100300]], "input[1]"), (["ok", " "], "input[1]")):
        with pytest.raises(openai.BadRequestError) as caught:
            client.embeddings.create(model=EMBEDDING_MODEL, input=bad)
        assert caught.value.body["param"] == param


def test_the_embedding_model_does_not_chat(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=EMBEDDING_MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["code"] == "model_not_supported"


def test_without_a_served_embedding_model_vector_stores_still_search(start_server):
    # The setting empty: nothing under /v1/embeddings, but retrieval embeds with the same
    # model class, unlisted (one loader: serving/retrieval.py).
    # No chat here: the chat model is left unloaded.
    live = start_server(env={"LLM_BACKEND_EMBEDDING_MODEL": "", "LLM_BACKEND_MODEL_LOAD": "lazy"})
    sdk = openai.OpenAI(base_url=live.api, api_key="x", max_retries=0, http_client=openai.DefaultHttpxClient(verify=TLS))
    assert EMBEDDING_MODEL not in {model.id for model in sdk.models.list()}
    with pytest.raises(openai.NotFoundError):
        sdk.embeddings.create(model=EMBEDDING_MODEL, input="hello")
    store = sdk.vector_stores.create(name="no served embedder")
    for name, text in (("bread.txt", TEXTS[1]), ("cars.txt", "Engines, tyres and a gearbox.")):
        uploaded = sdk.files.create(file=(name, text.encode()), purpose="assistants")
        assert sdk.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=uploaded.id).status == "completed"
    hits = sdk.vector_stores.search(vector_store_id=store.id, query=TEXTS[0]).data
    assert hits[0].filename == "bread.txt"
