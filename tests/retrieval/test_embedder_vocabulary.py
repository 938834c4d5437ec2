"""The embedding model's tokenizer: a vocabulary the windows cannot be built of is refused
when the model is loaded, naming what it lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from llm_backend.backends.embedding.embedder import Embedder
from llm_backend.backends.embedding.model_files import ModelFilesError


def test_a_vocabulary_without_cls_and_sep_is_refused_on_load(tmp_path: Path):
    # Every window is [CLS] ... [SEP]; without them a window held None and the first
    # embedding failed deep in llama.cpp's batch. The GGUF is never reached: it is absent.
    tokenizer_json = tmp_path / "tokenizer.json"
    Tokenizer(WordLevel({"[UNK]": 0, "river": 1}, unk_token="[UNK]")).save(str(tokenizer_json))
    with pytest.raises(ModelFilesError, match=r"no \[CLS\] or no \[SEP\]"):
        Embedder(tmp_path / "absent.gguf", tokenizer_json, max_tokens=8)
